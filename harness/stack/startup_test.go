package stack_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/harness/stack"
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
