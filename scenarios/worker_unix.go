//go:build unix

package scenarios

import "syscall"

// closeOnExec keeps an inherited descriptor out of the processes the
// worker starts (its stack helper, pcscd): the progress pipe must close
// when the worker exits, not when its last grandchild does.
func closeOnExec(fd uintptr) { syscall.CloseOnExec(int(fd)) }
