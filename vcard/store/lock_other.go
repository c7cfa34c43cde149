//go:build !unix && !windows

package store

import "os"

// lockFile cannot lock on this platform (no flock or LockFileEx): lockDir
// only records the PID, and two cards on one directory are not detected.
func lockFile(*os.File) error { return nil }
