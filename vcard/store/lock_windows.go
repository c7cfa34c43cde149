//go:build windows

package store

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockRegion is the byte LockFileEx locks: far beyond the PID, because a
// locked range cannot be read by other processes on Windows and the PID
// must stay readable.
const lockRegion = 1 << 30

// lockFile takes an exclusive, non-blocking LockFileEx lock on f.
func lockFile(f *os.File) error {
	ol := &windows.Overlapped{Offset: lockRegion}
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errHeld
	}
	return err
}
