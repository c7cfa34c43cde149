package fs

import (
	"encoding/binary"
	"strings"
)

// CardCFSize is the size of the Base CSP part of cardcf.
const CardCFSize = 6

// CardCF is the cardcf file (CARD_CACHE_FILE_FORMAT). The zero value is
// what gids-tool --initialize writes.
type CardCF struct {
	// Version is 0 on GIDS cards (and written as 0 by Windows) although
	// cardmod.h's current version is 1; both are accepted. It is never a
	// freshness signal.
	Version             byte
	PinsFreshness       byte
	ContainersFreshness uint16
	FilesFreshness      uint16
	// Extra holds the bytes after the first six: MS-FS reserves a DWORD
	// per cardapps entry there. No implementation writes them and OpenSC
	// 0.23 cannot read a cardcf longer than 6 bytes, but a reader must
	// not destroy what another application stored, so they are kept
	// verbatim and written back by Bytes. nil when the file is 6 bytes.
	Extra []byte
}

// ParseCardCF decodes a cardcf file. Trailing bytes are kept in Extra
// without interpretation (not even a DWORD-multiple check: preserving
// them is the point).
func ParseCardCF(b []byte) (CardCF, error) {
	if len(b) < CardCFSize {
		return CardCF{}, formatErr("cardcf", len(b), "%d bytes, want at least %d", len(b), CardCFSize)
	}
	if b[0] > 1 {
		return CardCF{}, formatErr("cardcf", 0, "bVersion %d (0 and 1 are accepted)", b[0])
	}
	c := CardCF{
		Version:             b[0],
		PinsFreshness:       b[1],
		ContainersFreshness: binary.LittleEndian.Uint16(b[2:]),
		FilesFreshness:      binary.LittleEndian.Uint16(b[4:]),
	}
	if len(b) > CardCFSize {
		c.Extra = append([]byte(nil), b[CardCFSize:]...)
	}
	return c, nil
}

// Bytes encodes c, Extra included.
func (c CardCF) Bytes() []byte {
	b := make([]byte, CardCFSize, CardCFSize+len(c.Extra))
	b[0] = c.Version
	b[1] = c.PinsFreshness
	binary.LittleEndian.PutUint16(b[2:], c.ContainersFreshness)
	binary.LittleEndian.PutUint16(b[4:], c.FilesFreshness)
	return append(b, c.Extra...)
}

// The Bump methods increment one counter, wrapping as the on-card
// integer does (OpenSC writes back the low 16 bits; the PIN byte wraps
// at 256). Hosts compare for inequality, so wrapping is harmless except
// after exactly 2^16 (2^8) changes between two looks.

// BumpPins increments PinsFreshness (PIN change, unblock, admin key
// change; docs/reference/minidriver-semantics.md §1.2).
func (c *CardCF) BumpPins() { c.PinsFreshness++ }

// BumpContainers increments ContainersFreshness (container created or
// deleted, key generated or imported).
func (c *CardCF) BumpContainers() { c.ContainersFreshness++ }

// BumpFiles increments FilesFreshness (any file created, written or
// deleted, cmapfile included).
func (c *CardCF) BumpFiles() { c.FilesFreshness++ }

// Bump increments every counter in cats once.
func (c *CardCF) Bump(cats Category) {
	if cats&CategoryPins != 0 {
		c.BumpPins()
	}
	if cats&CategoryContainers != 0 {
		c.BumpContainers()
	}
	if cats&CategoryFiles != 0 {
		c.BumpFiles()
	}
}

// Category is a set of cardcf freshness counters. Which counters a cached
// item depends on is unknown for Windows (docs/reference/minidriver-semantics.md §2.8,
// "freshness granularity"), so the host model takes it as a knob: compare
// with AllCategories for the whole-snapshot model, or with the item's own
// category for the per-counter model.
type Category uint8

const (
	CategoryPins Category = 1 << iota
	CategoryContainers
	CategoryFiles

	AllCategories = CategoryPins | CategoryContainers | CategoryFiles
)

func (s Category) String() string {
	if s == 0 {
		return "none"
	}
	var parts []string
	for _, c := range []struct {
		bit  Category
		name string
	}{{CategoryPins, "pins"}, {CategoryContainers, "containers"}, {CategoryFiles, "files"}} {
		if s&c.bit != 0 {
			parts = append(parts, c.name)
			s &^= c.bit
		}
	}
	if s != 0 {
		parts = append(parts, "unknown")
	}
	return strings.Join(parts, "|")
}

// Diff returns the counters whose values differ between c and o. Only
// inequality matters: hosts do not order counters (they wrap), and
// Version and Extra are not freshness for Base CSP.
func (c CardCF) Diff(o CardCF) Category {
	var d Category
	if c.PinsFreshness != o.PinsFreshness {
		d |= CategoryPins
	}
	if c.ContainersFreshness != o.ContainersFreshness {
		d |= CategoryContainers
	}
	if c.FilesFreshness != o.FilesFreshness {
		d |= CategoryFiles
	}
	return d
}

// Changed reports whether any freshness counter differs, i.e. whether a
// host holding snapshot c must treat everything it cached as stale when
// the card now says o.
func (c CardCF) Changed(o CardCF) bool { return c.Diff(o) != 0 }

// ChangedIn reports whether any counter in cats differs.
func (c CardCF) ChangedIn(o CardCF, cats Category) bool { return c.Diff(o)&cats != 0 }
