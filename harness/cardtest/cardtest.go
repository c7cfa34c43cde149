// Package cardtest starts a private pcscd stack with virtual cards for a Go
// test, the way httptest starts a server: one call, cleaned up with the test.
//
//	st := cardtest.Start(t, &testcard.Echo{}, &testcard.Echo{})
//	client := cardtest.Client(t)
//	card, _ := client.Connect(ctx, st.Slots()[0].Reader)
//
// libpcsclite reads PCSCLITE_CSOCK_NAME once per process, so a test process
// can talk to one stack at a time. Start therefore puts every stack of a
// process at the same path (derived from the process ID), which lets tests
// start and close stacks one after another; two at once fail with a clear
// error. Run tests that need parallel stacks in separate packages or
// processes.
package cardtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
)

// Dir is where this process's stacks live.
func Dir() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("cardharness-test-%d", os.Getpid()))
}

// Start starts a stack with cards in slots 0, 1, ... (and at least 4
// slots), binds this process's PC/SC client to it, and closes it when the
// test ends. A missing component fails the test with what to install.
func Start(t testing.TB, cards ...vcard.Card) *stack.Stack {
	t.Helper()
	return StartConfig(t, stack.Config{Cards: cards})
}

// StartConfig is Start with a full configuration; cfg.Dir is overridden.
func StartConfig(t testing.TB, cfg stack.Config) *stack.Stack {
	t.Helper()
	cfg.Dir = Dir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := stack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("cardtest: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("cardtest: close stack: %v", err)
		}
	})
	if err := pcsc.UseSocket(st.SocketPath()); err != nil {
		t.Fatalf("cardtest: %v", err)
	}
	return st
}

// Client returns a PC/SC client of the current stack, released with the
// test.
func Client(t testing.TB) *pcsc.Client {
	t.Helper()
	c, err := pcsc.NewClient()
	if err != nil {
		t.Fatalf("cardtest: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Connect connects to the card in slot (10 s at most), closed with the
// test.
func Connect(t testing.TB, st *stack.Stack, slot int) *pcsc.Card {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	card, err := Client(t).Connect(ctx, st.Slots()[slot].Reader)
	if err != nil {
		t.Fatalf("cardtest: connect to slot %d: %v", slot, err)
	}
	t.Cleanup(func() { card.Close() })
	return card
}
