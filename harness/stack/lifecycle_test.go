package stack_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/testcard"
)

func startIn(t *testing.T, dir string) *stack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := stack.Start(ctx, stack.Config{Dir: dir, Cards: []vcard.Card{&testcard.Echo{}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestPcscdDeathIsReported kills a stack's pcscd: the stack must say so
// (Done, Err, Close) instead of running on without a reader.
func TestPcscdDeathIsReported(t *testing.T) {
	dir := filepath.Join(os.TempDir(), "chx-death-"+strconv.Itoa(os.Getpid()))
	st := startIn(t, dir)
	if err := st.Err(); err != nil {
		t.Fatalf("Err of a running stack: %v", err)
	}
	pids := testutil.PcscdProcesses(dir)
	if len(pids) != 1 {
		t.Fatalf("pcscd processes for %s: %v, want one", dir, pids)
	}
	f, _, _ := strings.Cut(pids[0], " ")
	pid, _ := strconv.Atoi(f)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the stack did not notice that its pcscd was killed (Done still open after 20s)")
	}
	err := st.Err()
	if !errors.Is(err, stack.ErrDied) || !strings.Contains(err.Error(), "pcscd exited unexpectedly (signal: killed)") {
		t.Fatalf("Err after pcscd was killed: %v, want ErrDied naming pcscd and the signal", err)
	}
	if cerr := st.Close(); !errors.Is(cerr, stack.ErrDied) {
		t.Errorf("Close after the death: %v, want the ErrDied", cerr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s left behind after a death and Close: %v", dir, err)
	}
}

// TestCloseIsNotADeath: a stack closed on purpose reports no error.
func TestCloseIsNotADeath(t *testing.T) {
	st := startIn(t, "")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.Done():
	default:
		t.Fatal("Done still open after Close")
	}
	if err := st.Err(); err != nil {
		t.Errorf("Err after Close: %v", err)
	}
}

// TestStackDirIsPrivate: an existing directory with mode 0755 is narrowed
// to 0700, and nothing the stack creates in it is open to group or others
// (pcscd makes its socket 0666).
func TestStackDirIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "st")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	st := startIn(t, dir)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("stack directory mode %#o, want 0700", perm)
	}
	sock, err := os.Stat(st.SocketPath())
	if err != nil || sock.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("pcscd socket %s: %v", st.SocketPath(), err)
	}
	var seen int
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		seen++
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: group or others can use it", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 8 { // dir, run, pcscd.comm, conf, reader.conf, drivers, a driver, logs, helper.sock
		t.Errorf("walked only %d entries in %s", seen, dir)
	}
}

// TestStackRefusesDirItCannotMakePrivate: a directory of another user
// and a symbolic link are refused, naming the reason.
func TestStackRefusesDirItCannotMakePrivate(t *testing.T) {
	base := t.TempDir()
	foreign := filepath.Join(base, "foreign")
	if os.Geteuid() == 0 {
		if err := os.Mkdir(foreign, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	} else {
		foreign = "/" // root's, whoever we are
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, want string }{
		{foreign, "not to you"},
		{link, "symbolic link"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := stack.Start(ctx, stack.Config{Dir: tc.dir})
		cancel()
		if err == nil {
			st.Close()
			t.Errorf("stack in %s started; want a refusal", tc.dir)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("stack in %s: %v, want it to say %q", tc.dir, err, tc.want)
		}
	}
	if fi, err := os.Stat(foreign); err == nil && foreign != "/" && fi.Mode().Perm() != 0o755 {
		t.Errorf("the refused directory's mode changed to %v", fi.Mode())
	}
}

// TestEjectFreesTheSlot: an ejected card leaves the reader and the slot
// takes another card (the soak restarts killed cards this way).
func TestEjectFreesTheSlot(t *testing.T) {
	st := cardtest.Start(t, &testcard.Echo{})
	w, err := pcsc.Watch(st.Slots()[0].Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()
	waitEvent(t, w, pcsc.CardInserted)
	if err := st.Eject(0); err != nil {
		t.Fatal(err)
	}
	if st.Slots()[0].Link != nil {
		t.Fatal("slot 0 still has a link after Eject")
	}
	waitEvent(t, w, pcsc.CardRemoved)
	second := &testcard.Echo{}
	if _, err := st.Insert(0, second); err != nil {
		t.Fatalf("Insert into the ejected slot: %v", err)
	}
	waitEvent(t, w, pcsc.CardInserted)
	card := cardtest.Connect(t, st, 0)
	if _, err := card.Transmit(context.Background(), []byte{0x00, 0xCA, 0x00, 0x00, 0x01}); err != nil {
		t.Fatal(err)
	}
	if second.Stats().Commands == 0 {
		t.Error("the APDU did not reach the card inserted after Eject")
	}
	if err := st.Eject(0); err != nil {
		t.Error(err)
	}
	if err := st.Eject(0); err != nil {
		t.Errorf("ejecting an empty slot: %v", err)
	}
}
