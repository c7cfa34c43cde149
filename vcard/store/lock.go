package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockName is the lock file OpenDir keeps in the state directory. It holds
// the PID of the process that last locked the directory; the lock itself
// is an OS file lock (flock on Unix, LockFileEx on Windows), which the
// kernel releases when the holder exits, however it dies. A stale PID in
// the file is therefore harmless: it is read only when the lock is taken.
const LockName = "card.lock"

// ErrLocked: the state directory is in use by another store (another card
// process, or another card in this process).
var ErrLocked = errors.New("store: state directory in use")

// LockedError is returned by OpenDir when another store holds dir. PID is
// the holder's process ID as it wrote it into the lock file (0 if it has
// not yet done so). It matches ErrLocked with errors.Is.
type LockedError struct {
	Dir string
	PID int
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("PID %d", e.PID)
		if e.PID == os.Getpid() {
			who += " (this process)"
		}
	}
	return fmt.Sprintf("store: state directory %s is in use by %s: two cards on one state would overwrite each other; stop the other card or use another directory", e.Dir, who)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// errHeld is what a platform's lockFile returns when another open file
// holds the lock.
var errHeld = errors.New("lock held")

// lockDir takes an exclusive, non-blocking lock on dir's lock file
// (lockFile: flock on Unix, LockFileEx on Windows) and writes this
// process's PID into it; a lock someone holds is a LockedError naming
// the holder's PID.
func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := lockFile(f); err != nil {
		defer f.Close()
		if errors.Is(err, errHeld) {
			return nil, &LockedError{Dir: dir, PID: readPID(f)}
		}
		return nil, fmt.Errorf("store: lock %s: %w", f.Name(), err)
	}
	writePID(f)
	return &dirLock{f: f}, nil
}

// dirLock is a held lock; Close releases it.
type dirLock struct{ f *os.File }

func (l *dirLock) Close() error { return l.f.Close() }

// writePID records the holder in the lock file (best effort: the lock is
// what counts, the PID only makes the refusal readable).
func writePID(f *os.File) {
	if err := f.Truncate(0); err != nil {
		return
	}
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	_ = f.Sync()
}

// readPID reads the holder's PID from the lock file; 0 if unknown.
func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
