//go:build !unix && !windows

package store

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir cannot lock on this platform (no flock or LockFileEx): it only
// records the PID, and two cards on one directory are not detected.
func lockDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	writePID(f)
	return &dirLock{f: f}, nil
}
