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
// start and close stacks one after another; a second stack while one runs
// (parallel tests) fails the second test with a message naming the first.
// Run tests that need parallel stacks in separate packages or processes.
//
// Debugging hold: with the test flag -cardtest.hold=DURATION (like
// httptest's -httptest.serve), every stack, once started, is held for
// DURATION before the test goes on: cardtest prints its
// PCSCLITE_CSOCK_NAME and readers on stderr so that pcsc_scan, opensc-tool
// or pkcs11-tool can be pointed at it; `kill -USR1 PID` (printed too) lets
// the test continue early. For example:
//
//	go test -v ./mypkg -run TestEnroll -cardtest.hold=10m
//
// (-v: without it go test shows a passing package's output only at the end).
package cardtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
)

// hold is -cardtest.hold. Registered only when the command line mentions
// it, as httptest does, so that importing cardtest adds no flag to
// binaries that never ask for it.
var hold *time.Duration

func init() {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-cardtest.hold") || strings.HasPrefix(a, "--cardtest.hold") {
			hold = flag.Duration("cardtest.hold", 0, "after starting each stack, print its PCSCLITE_CSOCK_NAME and wait this long (or until SIGUSR1) so tools can be pointed at it")
			return
		}
	}
}

// active names the test whose stack is running, "" when none is.
var active struct {
	sync.Mutex
	name string
}

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
	active.Lock()
	if active.name != "" {
		first := active.name
		active.Unlock()
		t.Fatalf("cardtest: %s starts a stack while the stack of %s is still running; "+
			"libpcsclite reads PCSCLITE_CSOCK_NAME once per process, so one test process uses one stack at a time: "+
			"do not start stacks from parallel tests (t.Parallel) of one package, close the first stack before starting the next, "+
			"or put the tests in separate packages (processes)", t.Name(), first)
	}
	active.name = t.Name()
	active.Unlock()
	release := func() {
		active.Lock()
		active.name = ""
		active.Unlock()
	}
	cfg.Dir = Dir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := stack.Start(ctx, cfg)
	if err != nil {
		release()
		t.Fatalf("cardtest: %v", err)
	}
	t.Cleanup(func() {
		defer release()
		if err := st.Close(); err != nil {
			t.Errorf("cardtest: close stack: %v", err)
		}
	})
	if err := pcsc.UseSocket(st.SocketPath()); err != nil {
		t.Fatalf("cardtest: %v", err)
	}
	if hold != nil && *hold > 0 {
		holdStack(t, st, *hold)
	}
	return st
}

// holdStack prints where the stack is and waits for d, SIGUSR1 or the end
// of the test's context. It writes to stderr directly: t.Log output only
// appears when the test ends.
func holdStack(t testing.TB, st *stack.Stack, d time.Duration) {
	usr1 := make(chan os.Signal, 1)
	if len(goOnSignals) > 0 {
		signal.Notify(usr1, goOnSignals...)
		defer signal.Stop(usr1)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cardtest: holding the stack of %s for %v ("+goOnHint+"):\n", t.Name(), d, os.Getpid())
	fmt.Fprintf(&b, "  export PCSCLITE_CSOCK_NAME=%s\n", st.SocketPath())
	for _, sl := range st.Slots() {
		card := "empty"
		if sl.Link != nil {
			card = "card"
		}
		fmt.Fprintf(&b, "  reader %q (%s)\n", sl.Reader, card)
	}
	fmt.Fprint(os.Stderr, b.String())
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-usr1:
	case <-t.Context().Done():
	}
	fmt.Fprintf(os.Stderr, "cardtest: %s goes on\n", t.Name())
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
