package main

import "syscall"

// dieWithParent makes a child get SIGTERM when we die, however we die.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
