package fault

import (
	"bytes"
	"testing"

	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/vcard/gids"
)

func TestDropCardCFWrites(t *testing.T) {
	g := gidstest.New(t, gids.Options{}, gids.InitParams{PIN: "123456"})
	c, err := Wrap(g, DropCardCFWrites)
	if err != nil {
		t.Fatal(err)
	}
	c.Process([]byte{0x00, 0x20, 0x00, 0x80, 0x06, '1', '2', '3', '4', '5', '6'})
	resp := c.Process([]byte{0x00, 0xDB, 0xA0, 0x10, 0x09, 0xDF, 0x22, 0x06, 0, 0, 9, 0, 9, 0})
	if !bytes.Equal(resp, []byte{0x90, 0x00}) {
		t.Fatalf("dropped write answered % X", resp)
	}
	if v, _ := g.DO(0xA010, 0xDF22); !bytes.Equal(v, make([]byte, 6)) || c.Dropped != 1 {
		t.Errorf("cardcf % X after a dropped write (dropped %d)", v, c.Dropped)
	}
	// Other writes to A010 go through.
	c.Process([]byte{0x00, 0xDB, 0xA0, 0x10, 0x0B, 0xDF, 0x21, 0x08, 'm', 's', 'c', 'p', 0, 0, 0, 1})
	if v, _ := g.DO(0xA010, 0xDF21); v[7] != 1 {
		t.Errorf("cardapps write was swallowed too: % X", v)
	}
	if _, err := Wrap(g, "nope"); err == nil {
		t.Error("unknown fault accepted")
	}
}
