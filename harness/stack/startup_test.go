package stack_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/testcard"
)

// A stack whose pcscd fails at start-up reports it, although its
// start-up cards were already dialling (the early connections of
// spinConnect): nothing waits for a reader that never comes.
func TestStartWithCardsReportsPcscdFailure(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "pcscd")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'pcscd: cannot start' >&2\nexit 3\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := stack.Start(context.Background(), stack.Config{Pcscd: fake, Cards: []vcard.Card{&testcard.Echo{}, &testcard.Echo{}}})
	if err == nil {
		st.Close()
		t.Fatal("Start with a pcscd that exits at once succeeded")
	}
	for _, want := range []string{"pcscd exited during start-up", "exit status 3", "pcscd: cannot start"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start error lacks %q:\n%v", want, err)
		}
	}
}

// BenchmarkStart: a stack's start-up, empty and with cards. The cards'
// connections are made while pcscd starts, so that pcscd finds them at its
// first presence check; "make bench" prints the ratio to an empty stack
// (about 1 when that works, about 15 when every card waits for pcscd's
// next poll, 400 ms later).
func BenchmarkStart(b *testing.B) {
	for _, n := range []int{0, 1, 4} {
		b.Run(map[int]string{0: "empty", 1: "one-card", 4: "four-cards"}[n], func(b *testing.B) {
			for b.Loop() {
				cards := make([]vcard.Card, n)
				for i := range cards {
					cards[i] = &testcard.Echo{}
				}
				st, err := stack.Start(context.Background(), stack.Config{Cards: cards, Slots: max(2, n)})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// Restart gives the stack a new pcscd that holds only the new cards, in
// slots 0, 1, ... as on a stack of its own: the old pcscd is gone, the old
// cards are out, a context from before does not survive, and the new
// cards answer through the same socket path.
func TestRestartGivesAFreshPcscd(t *testing.T) {
	old := &testcard.Echo{}
	st := cardtest.StartConfig(t, stack.Config{Cards: []vcard.Card{old}, Slots: 4})
	sock := st.SocketPath()
	before := testutil.PcscdProcesses(st.Dir())
	if len(before) != 1 {
		t.Fatalf("pcscd processes before the restart: %q", before)
	}
	oldClient, err := pcsc.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer oldClient.Close()
	if _, err := oldClient.Readers(); err != nil {
		t.Fatal(err)
	}

	a, b := &testcard.Echo{}, &testcard.Echo{}
	if err := st.Restart(context.Background(), []vcard.Card{a, b}); err != nil {
		t.Fatal(err)
	}
	after := testutil.PcscdProcesses(st.Dir())
	if len(after) != 1 || after[0] == before[0] {
		t.Fatalf("pcscd processes: %q before the restart, %q after; want one new one", before, after)
	}
	if st.SocketPath() != sock {
		t.Errorf("socket path moved from %s to %s", sock, st.SocketPath())
	}
	if _, err := oldClient.Readers(); err == nil {
		t.Error("a context of the old pcscd still lists readers after the restart")
	}
	c := cardtest.Client(t)
	slots := st.Slots()
	for i, want := range []bool{true, true, false, false} {
		_, present, err := c.EventCount(slots[i].Reader)
		if err != nil {
			t.Fatal(err)
		}
		if present != want {
			t.Errorf("slot %d (%s): present %v, want %v", i, slots[i].Reader, present, want)
		}
	}
	for i, card := range []*testcard.Echo{a, b} {
		tr, err := c.Connect(context.Background(), slots[i].Reader)
		if err != nil {
			t.Fatalf("slot %d: %v", i, err)
		}
		resp, err := tr.Transmit(context.Background(), []byte{0x00, 0xDB, 0x3F, 0xFF, 0x01, byte(i)})
		tr.Close()
		if err != nil || len(resp) != 3 || resp[0] != byte(i) {
			t.Errorf("slot %d: response % X, %v", i, resp, err)
		}
		if n := card.Stats().Commands; n != 1 {
			t.Errorf("card %d saw %d commands, want 1", i, n)
		}
	}
	if n := old.Stats().Commands; n != 0 {
		t.Errorf("the card from before the restart saw %d commands", n)
	}
	if err := st.Err(); err != nil {
		t.Errorf("the restart was taken for a death: %v", err)
	}
}
