package fs

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cardharness/cardharness/internal/testutil"
)

func TestCardAppsVectors(t *testing.T) {
	testutil.CheckVectors(t, ParseCardApps, CardApps.Bytes, []testutil.Vector[CardApps]{
		{Name: "empty", In: nil, Want: CardApps{}},
		{Name: "after initialize (§3.2)", In: testutil.Hex(t, hexCardApps), Want: CardApps{"mscp"}},
		{Name: "two apps, one filling the record", In: []byte("mscp\x00\x00\x00\x00abcdefgh"), Want: CardApps{"mscp", "abcdefgh"}},
	}, equateEmpty)
	enc, _ := InitialCardApps().Bytes()
	if !bytes.Equal(enc, testutil.Hex(t, hexCardApps)) {
		t.Errorf("InitialCardApps = % X", enc)
	}
	if got := (CardApps{"mscp", "other"}).Index("MSCP"); got != 0 {
		t.Errorf("Index(MSCP) = %d", got)
	}
	if got := InitialCardApps().Index("x"); got != -1 {
		t.Errorf("Index(x) = %d", got)
	}
}

func TestCardAppsErrors(t *testing.T) {
	checkParseErrors(t, ParseCardApps, []formatErrCase[[]byte]{
		{"seven bytes", testutil.Hex(t, "6D 73 63 70 00 00 00"), FormatError{File: "cardapps", Offset: 0}, "7 bytes"},
		{"nine bytes", testutil.Hex(t, "6D 73 63 70 00 00 00 00 00"), FormatError{File: "cardapps", Offset: 8}, "9 bytes"},
		{"empty record", testutil.Cat(testutil.Hex(t, hexCardApps), zeros(8)), FormatError{File: "cardapps", Offset: 8}, "record 1 name: empty"},
		{"non-ASCII", []byte("ms\xe9p\x00\x00\x00\x00"), FormatError{File: "cardapps", Offset: 2}, "record 0 name: byte E9"},
	})
	_, err := CardApps{"mscp", "ninechars"}.Bytes()
	checkFormatErr(t, err, FormatError{File: "cardapps", Offset: 8}, "record 1 name \"ninechars\": 9 characters, at most 8")
	_, err = CardApps{""}.Bytes()
	checkFormatErr(t, err, FormatError{File: "cardapps", Offset: 0}, "record 0 name: empty")
}

func TestCardID(t *testing.T) {
	in := testutil.Hex(t, "00112233445566778899AABBCCDDEEFF")
	id, err := ParseCardID(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := id.String(); got != "00112233445566778899aabbccddeeff" {
		t.Errorf("String() = %q", got)
	}
	if !bytes.Equal(id.Bytes(), in) {
		t.Errorf("Bytes() = % X", id.Bytes())
	}
	_, err = ParseCardID(in[:15])
	checkFormatErr(t, err, FormatError{File: "cardid", Offset: 15}, "15 bytes, want 16")
	_, err = ParseCardID(testutil.Cat(in, []byte{0}))
	checkFormatErr(t, err, FormatError{File: "cardid", Offset: 16}, "17 bytes, want 16")
	a, b := RandomCardID(), RandomCardID()
	if a == b || a == (CardID{}) {
		t.Errorf("RandomCardID returned %v and %v", a, b)
	}
}

func TestAlgID(t *testing.T) {
	for bits, id := range map[int]byte{1024: 0x06, 2048: 0x07, 3072: 0x08, 4096: 0x09} {
		got, err := AlgID(bits)
		if err != nil || got != id {
			t.Errorf("AlgID(%d) = %02X, %v", bits, got, err)
		}
		back, err := AlgIDBits(id)
		if err != nil || back != bits {
			t.Errorf("AlgIDBits(%02X) = %d, %v", id, back, err)
		}
	}
	for _, bits := range []int{0, 256, 512, 1536, 8192, -2048} {
		if _, err := AlgID(bits); !errors.Is(err, ErrKeySize) {
			t.Errorf("AlgID(%d) error %v", bits, err)
		}
	}
	for _, id := range []byte{0x00, 0x05, 0x0A, 0x0C, 0x0E, 0x47, 0x87} {
		if _, err := AlgIDBits(id); !errors.Is(err, ErrKeySize) {
			t.Errorf("AlgIDBits(%02X) error %v", id, err)
		}
	}
}

func TestConsistencyErrorString(t *testing.T) {
	if got := (&ConsistencyError{Container: -1, Msg: "m"}).Error(); got != "fs: cmapfile/keymap: m" {
		t.Error(got)
	}
	if got := (&ConsistencyError{Container: 3, Msg: "m"}).Error(); got != "fs: cmapfile/keymap: container 3: m" {
		t.Error(got)
	}
}
