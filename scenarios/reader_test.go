package scenarios

import (
	"context"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/vcard/gids"
)

// TestReaderModeAgainstACardInAReader plays the real-card case: the card
// sits in a reader of a pcscd this process reaches (here a private stack,
// standing in for a plastic card in a USB reader). Steps that need card
// internals are skipped and reported; the rest runs through PC/SC.
func TestReaderModeAgainstACardInAReader(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs a pcscd stack")
	}
	card := gidstest.New(t, gids.Options{}, gids.InitParams{PIN: "123456"})
	st := cardtest.Start(t, card)
	t.Setenv("PCSCLITE_CSOCK_NAME", st.SocketPath())
	sc, err := Ref{Path: "testdata/reader-mode.yaml"}.load()
	if err != nil {
		t.Fatal(err)
	}
	r := RunOne(context.Background(), sc, Options{Reader: st.Slots()[0].Reader})
	if r.Status != Pass {
		t.Fatalf("%s: %s\n%s", r.Status, r.Failure, r.Diff)
	}
	if len(r.Skipped) != 1 || !strings.Contains(r.Skipped[0], "reinitialize") || !strings.Contains(r.Skipped[0], "card internals") {
		t.Errorf("skipped steps: %q, want the reinitialize step", r.Skipped)
	}
	if !strings.HasPrefix(r.Stack, "reader ") {
		t.Errorf("result stack %q", r.Stack)
	}
}
