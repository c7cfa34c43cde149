//go:build windows

package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// lockRegion is the byte LockFileEx locks: far beyond the PID, because a
// locked range cannot be read by other processes on Windows and the PID
// must stay readable.
const lockRegion = 1 << 30

// lockDir takes an exclusive, non-blocking LockFileEx lock on dir's lock
// file.
func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	ol := &windows.Overlapped{Offset: lockRegion}
	err = windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if err != nil {
		defer f.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
			return nil, &LockedError{Dir: dir, PID: readPID(f)}
		}
		return nil, fmt.Errorf("store: lock %s: %w", f.Name(), err)
	}
	writePID(f)
	return &dirLock{f: f}, nil
}
