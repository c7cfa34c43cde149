// Package gidstest makes initialised virtual GIDS cards for tests: the
// "new card, initialise it, fail the test on error" opening that many
// packages' tests need.
package gidstest

import (
	"testing"

	"github.com/cardharness/cardharness/vcard/gids"
)

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
