// Package gidstest makes initialised virtual GIDS cards for tests: the
// "new card, initialise it, fail the test on error" opening that many
// packages' tests need.
package gidstest

import (
	"testing"

	"github.com/cardharness/cardharness/vcard/gids"
)

// OwnPIN and OwnAdminKey are credentials other than the GIDS defaults
// (PIN 123456, an all-zero admin key), for the tests that must show a
// tool uses the credentials it is told rather than the defaults.
const OwnPIN = "31415926"

var OwnAdminKey = [24]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98,
	0x76, 0x54, 0x32, 0x10, 0x0F, 0x1E, 0x2D, 0x3C, 0x4B, 0x5A, 0x69, 0x78}

// New returns a card made with opts and initialised with p (as
// gids-tool --initialize would), failing the test on error.
func New(t testing.TB, opts gids.Options, p gids.InitParams) *gids.Card {
	t.Helper()
	card, err := gids.New(opts)
	if err != nil {
		t.Fatalf("gids.New: %v", err)
	}
	if err := card.Initialize(p); err != nil {
		t.Fatalf("gids: Initialize: %v", err)
	}
	return card
}
