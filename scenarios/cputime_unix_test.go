//go:build unix

package scenarios

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used so
// far: benchmarks report it next to wall time, because on a shared
// machine a suite that waits (timeouts, a tool's start-up) and one that
// computes look alike in ns/op.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
