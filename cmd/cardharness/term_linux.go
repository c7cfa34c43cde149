package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal: f is a terminal (a live progress line makes sense there,
// not in a log file or a pipe).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
