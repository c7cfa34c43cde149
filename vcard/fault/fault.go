// Package fault wraps a card with misbehaviour for fault-injection
// scenarios: the card side of "writers that forget to bump counters" and
// of cards that cannot persist what hosts write.
package fault

import (
	"fmt"
	"sort"
	"sync"

	"github.com/cardharness/cardharness/vcard"
)

// Names of the faults, as scenario files and --fault flags spell them.
const (
	// DropCardCFWrites answers PUT DATA to cardcf (A010/DF22) with 9000
	// without storing it: every writer's counter bumps are lost, as on a
	// card whose cardcf cannot be written. Hosts then keep serving what
	// they cached (docs/reference/minidriver-semantics.md T2).
	DropCardCFWrites = "drop-cardcf-writes"
)

var known = map[string]string{
	DropCardCFWrites: "PUT DATA to cardcf answers 9000 but stores nothing",
}

// Names lists the known faults.
func Names() []string {
	out := make([]string, 0, len(known))
	for n := range known {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Known reports whether name is a fault.
func Known(name string) bool { _, ok := known[name]; return ok }

// Card serialises access to the wrapped card (a card may be driven by a
// vpcd link and by in-process connections at once) and applies faults.
type Card struct {
	mu     sync.Mutex
	inner  vcard.Card
	faults map[string]bool
	// Dropped counts commands the faults swallowed.
	Dropped int
}

// Wrap wraps c with the named faults (none is fine: the lock alone).
func Wrap(c vcard.Card, names ...string) (*Card, error) {
	f := &Card{inner: c, faults: map[string]bool{}}
	for _, n := range names {
		if !Known(n) {
			return nil, fmt.Errorf("unknown card fault %q (known: %v)", n, Names())
		}
		f.faults[n] = true
	}
	return f, nil
}

// Inner returns the wrapped card.
func (f *Card) Inner() vcard.Card { return f.inner }

func (f *Card) ATR() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inner.ATR()
}

func (f *Card) PowerOn()  { f.mu.Lock(); defer f.mu.Unlock(); f.inner.PowerOn() }
func (f *Card) PowerOff() { f.mu.Lock(); defer f.mu.Unlock(); f.inner.PowerOff() }
func (f *Card) Reset()    { f.mu.Lock(); defer f.mu.Unlock(); f.inner.Reset() }

// Process implements vcard.Card.
func (f *Card) Process(cmd []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults[DropCardCFWrites] && isCardCFWrite(cmd) {
		f.Dropped++
		return []byte{0x90, 0x00}
	}
	return f.inner.Process(cmd)
}

// isCardCFWrite matches an unchained PUT DATA A010 whose data starts with
// the DF22 tag (cardcf is 6 bytes; nobody chains it).
func isCardCFWrite(cmd []byte) bool {
	return len(cmd) >= 7 && cmd[0]&0x10 == 0 && cmd[1] == 0xDB && cmd[2] == 0xA0 && cmd[3] == 0x10 &&
		cmd[5] == 0xDF && cmd[6] == 0x22
}
