//go:build !unix

package scenarios

func closeOnExec(uintptr) {}
