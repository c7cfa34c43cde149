//go:build unix

package cardtest

import (
	"os"
	"syscall"
)

// goOnSignals end a hold early.
var goOnSignals = []os.Signal{syscall.SIGUSR1}

const goOnHint = "kill -USR1 %d to go on"
