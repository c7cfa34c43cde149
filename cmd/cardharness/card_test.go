package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardharness/cardharness/internal/vpcdtest"
	"github.com/cardharness/cardharness/vcard/gids"
)

// fakeVPCD is the reader side of the vpcd protocol, for driving
// `cardharness card` without pcscd, with the one connection the card made.
type fakeVPCD struct {
	*vpcdtest.Reader
	t *testing.T
	c net.Conn
}

func newFakeVPCD(t *testing.T) *fakeVPCD {
	return &fakeVPCD{Reader: vpcdtest.NewReader(t), t: t}
}

func (f *fakeVPCD) accept() {
	f.t.Helper()
	f.c = f.Accept()
}

func (f *fakeVPCD) xfer(payload ...byte) []byte {
	f.t.Helper()
	return vpcdtest.Xfer(f.t, f.c, payload...)
}

func startCard(t *testing.T, args ...string) (*fakeVPCD, func()) {
	f := newFakeVPCD(t)
	cmd := cardharness(append([]string{"card", "--vpcd", f.Addr()}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.accept()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("card did not stop on SIGTERM; stderr: %s", stderr.String())
		}
	}
	return f, stop
}

var selectGIDS = []byte{0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59, 0x00}

func TestCardCommandServesGIDS(t *testing.T) {
	f, stop := startCard(t)
	defer stop()
	if atr := f.xfer(0x04); !bytes.Equal(atr, gids.DefaultATR) {
		t.Errorf("ATR % X, want % X", atr, gids.DefaultATR)
	}
	if resp := f.xfer(selectGIDS...); !bytes.Equal(resp[len(resp)-2:], []byte{0x90, 0x00}) || !bytes.HasPrefix(resp, []byte{0x61, 0x12, 0x4F, 0x0B}) {
		t.Errorf("SELECT GIDS: % X, want the FCI and 9000", resp)
	}
}

func TestCardStatePersistsAcrossRestart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	f, stop := startCard(t, "--state", state, "--profile", "initialized", "--cardid", "000102030405060708090A0B0C0D0E0F")
	resp := f.xfer(selectGIDS...)
	if !bytes.HasSuffix(resp, []byte{0x90, 0x00}) {
		t.Fatalf("SELECT: % X", resp)
	}
	// One wrong PIN: the try counter must survive the restart.
	if resp := f.xfer(0x00, 0x20, 0x00, 0x80, 0x04, '9', '9', '9', '9'); !bytes.Equal(resp, []byte{0x63, 0xC2}) {
		t.Fatalf("wrong PIN: % X", resp)
	}
	stop()
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state directory: %v", err)
	}

	f, stop = startCard(t, "--state", state, "--profile", "initialized", "--cardid", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")
	defer stop()
	f.xfer(selectGIDS...)
	// PIN status 7F71: tries left 2 of 3.
	resp = f.xfer(0x00, 0xCB, 0x3F, 0xFF, 0x04, 0x5C, 0x02, 0x7F, 0x71, 0x00)
	if !bytes.Equal(resp, []byte{0x7F, 0x71, 0x06, 0x97, 0x01, 0x02, 0x93, 0x01, 0x03, 0x90, 0x00}) {
		t.Errorf("PIN status after restart: % X, want 2 tries left", resp)
	}
	// The cardid is the one of the first start: --profile does not
	// re-initialise a card that has state.
	resp = f.xfer(0x00, 0xCB, 0xA0, 0x12, 0x04, 0x5C, 0x02, 0xDF, 0x20, 0x00)
	want := append([]byte{0xDF, 0x20, 0x10}, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x90, 0x00)
	if !bytes.Equal(resp, want) {
		t.Errorf("cardid after restart: % X", resp)
	}
}

// Issue 8 finding 4: a second card on the same --state directory is
// refused with an error naming the first one's PID, and the first card
// keeps working.
func TestCardRefusesALockedStateDir(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	f := newFakeVPCD(t)
	first := cardharness("card", "--vpcd", f.Addr(), "--state", state, "--profile", "initialized")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		first.Process.Signal(syscall.SIGTERM)
		first.Wait()
	}()
	f.accept()
	f.xfer(selectGIDS...)

	f2 := newFakeVPCD(t)
	second := cardharness("card", "--vpcd", f2.Addr(), "--state", state)
	var stderr bytes.Buffer
	second.Stderr = &stderr
	done := make(chan error, 1)
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("second card on the same --state exited 0")
		}
	case <-time.After(10 * time.Second):
		second.Process.Kill()
		<-done
		t.Fatalf("second card on the same --state kept running; stderr: %s", stderr.String())
	}
	msg := stderr.String()
	if !strings.Contains(msg, state) || !strings.Contains(msg, fmt.Sprintf("PID %d", first.Process.Pid)) {
		t.Errorf("stderr %q does not name the state directory and PID %d", msg, first.Process.Pid)
	}
	if resp := f.xfer(selectGIDS...); !bytes.HasSuffix(resp, []byte{0x90, 0x00}) {
		t.Errorf("first card after the refused second: % X", resp)
	}
}

// TestCardSeedFlag: without --seed a card gets no key seed (real random
// keys); with it, each card of a stack its own, the same on every run.
func TestCardSeedFlag(t *testing.T) {
	var unseeded cardSpec
	if unseeded.keySeed(0) != nil {
		t.Error("a card without --seed has a key seed: its keys would not be random")
	}
	s := cardSpec{seed: 7}
	if a, b := s.keySeed(0), s.keySeed(1); bytes.Equal(a, b) || a == nil {
		t.Errorf("cards 0 and 1 of --seed 7 have key seeds %q and %q: want two different ones", a, b)
	}
	if !bytes.Equal(s.keySeed(1), (&cardSpec{seed: 7}).keySeed(1)) {
		t.Error("the same --seed gives different key seeds")
	}
}
