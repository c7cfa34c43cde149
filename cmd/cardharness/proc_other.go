//go:build !linux

package main

import "syscall"

// dieWithParent: no parent-death signal outside Linux (and no stack there
// either: exec fails earlier with stack.ErrUnsupported).
func dieWithParent() *syscall.SysProcAttr { return nil }
