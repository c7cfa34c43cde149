package fs

import (
	"crypto/rand"
	"encoding/hex"
)

// CardAppsRecordSize is the size of one cardapps entry: an application
// directory name, NUL-padded. Eight characters fill it with no terminator.
const CardAppsRecordSize = 8

// CardApps is the cardapps file: the application directories on the card,
// in order. A position here is also the index of the application's DWORD
// in cardcf's Extra.
type CardApps []string

// InitialCardApps returns the content every GIDS profile writes:
// "mscp\0\0\0\0", Base CSP's directory.
func InitialCardApps() CardApps { return CardApps{"mscp"} }

// ParseCardApps decodes a cardapps file. Each entry must have a non-empty
// printable-ASCII name; bytes after a NUL are ignored like in the
// masterfile.
func ParseCardApps(b []byte) (CardApps, error) {
	if len(b)%CardAppsRecordSize != 0 {
		return nil, formatErr("cardapps", len(b)-len(b)%CardAppsRecordSize,
			"%d bytes is not a multiple of the %d-byte record", len(b), CardAppsRecordSize)
	}
	a := make(CardApps, len(b)/CardAppsRecordSize)
	for i := range a {
		base := i * CardAppsRecordSize
		field := b[base : base+CardAppsRecordSize]
		n := 0
		for n < len(field) && field[n] != 0 {
			if !nameByte(field[n]) {
				return nil, formatErr("cardapps", base+n, "record %d name: byte %02X is not printable ASCII", i, field[n])
			}
			n++
		}
		if n == 0 {
			return nil, formatErr("cardapps", base, "record %d name: empty", i)
		}
		a[i] = string(field[:n])
	}
	return a, nil
}

// Bytes encodes a.
func (a CardApps) Bytes() ([]byte, error) {
	b := make([]byte, len(a)*CardAppsRecordSize)
	for i, name := range a {
		base := i * CardAppsRecordSize
		if name == "" {
			return nil, formatErr("cardapps", base, "record %d name: empty", i)
		}
		if err := checkName(name, CardAppsRecordSize, "cardapps", "name", i, base); err != nil {
			return nil, err
		}
		copy(b[base:], name)
	}
	return b, nil
}

// Index returns the position of application name (case-insensitive), or
// -1.
func (a CardApps) Index(name string) int {
	for i, n := range a {
		if equalFoldASCII(n, name) {
			return i
		}
	}
	return -1
}

// CardIDSize is the size of cardid.
const CardIDSize = 16

// CardID is the cardid file: 16 opaque bytes that key every host cache
// together with cardcf. Re-initialising a card without changing it lets
// hosts serve data cached from the previous content
// (docs/reference/minidriver-semantics.md §2.8 T4, T5).
type CardID [CardIDSize]byte

// ParseCardID decodes a cardid file, which must be exactly 16 bytes
// (MS-FS; OpenSC would accept any length as a serial number, but hosts
// use it as a GUID-sized cache key).
func ParseCardID(b []byte) (CardID, error) {
	var id CardID
	if len(b) != CardIDSize {
		return id, formatErr("cardid", min(len(b), CardIDSize), "%d bytes, want %d", len(b), CardIDSize)
	}
	copy(id[:], b)
	return id, nil
}

// RandomCardID returns a fresh random cardid, what every (re)initialised
// virtual card needs.
func RandomCardID() CardID {
	var id CardID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return id
}

// Bytes returns the file content.
func (id CardID) Bytes() []byte { return append([]byte(nil), id[:]...) }

// String returns the 32 lower-case hex digits OpenSC shows as the serial
// number.
func (id CardID) String() string { return hex.EncodeToString(id[:]) }
