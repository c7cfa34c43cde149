//go:build !unix

package scenarios

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
