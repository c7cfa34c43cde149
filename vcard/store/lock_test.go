package store

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/internal/testutil"
)

// Issue 8 finding 4: two cards on one state directory overwrote each
// other. OpenDir locks the directory; a second user is refused with an
// error naming the holder.
func TestOpenDirLocksTheDirectory(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenDir(dir)
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("second OpenDir: %v, want a *LockedError", err)
	}
	if le.PID != os.Getpid() || le.Dir != dir {
		t.Errorf("lock error names PID %d, dir %q; want %d, %q", le.PID, le.Dir, os.Getpid(), dir)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(os.Getpid())) || !strings.Contains(msg, dir) {
		t.Errorf("message %q does not name the holder's PID and the directory", msg)
	}
	if err := s.Update(func(tx *Tx) error { tx.Put("k", []byte("v")); return nil }); err != nil {
		t.Fatalf("the holder cannot write after a refused second open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s2, err := OpenDir(dir)
	if err != nil {
		t.Fatalf("OpenDir after Close: %v", err)
	}
	defer s2.Close()
	if v, ok := s2.Get("k"); !ok || string(v) != "v" {
		t.Errorf("state after reopen: %q %v", v, ok)
	}
	// In-memory stores have nothing to lock.
	if err := NewMemory().Close(); err != nil {
		t.Errorf("Close of a memory store: %v", err)
	}
}

const lockChildEnv = "CARDHARNESS_STORE_LOCK_CHILD"

// lockChild holds dir's lock until killed (run from TestMain).
func lockChild(dir string) {
	if _, err := OpenDir(dir); err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	fmt.Println("holding")
	select {}
}

// Another process's lock is refused with its PID, and released when that
// process dies, even by SIGKILL (the PID left in the lock file is stale
// then and does not matter).
func TestOpenDirLockedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := testutil.StartChild(t, "holding", lockChildEnv+"="+dir)
	_, err := OpenDir(dir)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != cmd.Process.Pid {
		t.Fatalf("OpenDir while another process holds it: %v, want a *LockedError naming PID %d", err, cmd.Process.Pid)
	}
	testutil.KillChild(cmd)
	s, err := OpenDir(dir)
	if err != nil {
		t.Fatalf("OpenDir after the holder was killed: %v", err)
	}
	s.Close()
}
