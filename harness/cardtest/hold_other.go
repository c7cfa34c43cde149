//go:build !unix

package cardtest

import "os"

// goOnSignals: no SIGUSR1 here; a hold lasts its whole duration.
var goOnSignals []os.Signal

const goOnHint = "pid %d; it ends when the duration is over"
