package gidstest

import (
	"testing"

	"github.com/cardharness/cardharness/vcard/gids"
)

func TestNewIsInitialised(t *testing.T) {
	c := New(t, gids.Options{}, gids.InitParams{PIN: "123456", CardID: [16]byte{7}})
	if left := c.PINTriesLeft(); left <= 0 {
		t.Errorf("PIN tries left %d: the card was not initialised", left)
	}
}
