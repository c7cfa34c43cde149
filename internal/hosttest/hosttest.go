// Package hosttest holds the checks host-side tests (harness, scenarios)
// make of a virtual card in the host's terms (minidriver/fs formats). It
// sits above minidriver, so the card's own tests must not import it;
// internal/gidstest is their card-only counterpart.
package hosttest

import (
	"bytes"
	"testing"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/vcard/gids"
)

// CheckClean checks, by the card's own view rather than through PC/SC,
// that card is as harness/cardclean leaves one: no keys, the PIN tries
// back at 3, the masterfile as initialised, and the cardid it had before
// (cardID) kept.
func CheckClean(t testing.TB, card *gids.Card, cardID []byte) {
	t.Helper()
	if refs := card.KeyRefs(); len(refs) != 0 {
		t.Errorf("keys left on the card: % X", refs)
	}
	if n := card.PINTriesLeft(); n != 3 {
		t.Errorf("PIN tries %d, want 3", n)
	}
	mf, err := fs.InitialMasterFile().Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := card.DO(0xA000, 0xDF1F); !bytes.Equal(got, mf) {
		t.Errorf("masterfile not restored: % X", got)
	}
	if got, _ := card.DO(0xA012, 0xDF20); !bytes.Equal(got, cardID) {
		t.Errorf("cardid changed: % X -> % X", cardID, got)
	}
}
