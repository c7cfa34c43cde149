//go:build !linux

package main

import "os"

// isTerminal: no live progress line outside Linux.
func isTerminal(*os.File) bool { return false }
