package fs

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

// asciiGUID lays out an ASCII name as wszGuid by hand (each character
// followed by 00, zero-filled to 80 bytes), independently of the code
// under test.
func asciiGUID(s string) []byte {
	b := make([]byte, 80)
	for i := 0; i < len(s); i++ {
		b[2*i] = s[i]
	}
	return b
}

func TestContainerMapVectors(t *testing.T) {
	// docs/reference/gids-protocol.md §5.2 step 6: "… 03 00 00 00 00 08" = flags 03,
	// sig 0, kx 2048, for the key labelled key2048 in the peer suite.
	opensc2048 := testutil.Cat(asciiGUID("key2048"), testutil.Hex(t, "03 00 00 00 00 08"))
	// A Windows-created container name (GA MinidriverTest, §3.6), a
	// signature key of 1024 bits, valid but not default.
	windows := testutil.Cat(asciiGUID("257f0362-2ee7-44f5-9885-36fa490f30c1"), testutil.Hex(t, "01 00 00 04 00 00"))
	// Non-ASCII name with a surrogate pair (U+1F511 KEY), to pin UTF-16.
	nonASCII := testutil.Cat(testutil.Hex(t, "6B 00 E9 00 3D D8 11 DD"), zeros(72), testutil.Hex(t, "01 00 00 08 00 00"))

	testutil.CheckVectors(t, ParseContainerMap, ContainerMap.Bytes, []testutil.Vector[ContainerMap]{
		{Name: "empty cmapfile after initialize (§3.2)", In: nil, Want: ContainerMap{}},
		{Name: "2048-bit exchange key, flags 03", In: opensc2048,
			Want: ContainerMap{{GUID: "key2048", Flags: 0x03, KeyExchangeKeySizeBits: 2048}}},
		{Name: "reserved zeroed record (§5.2 step 3)", In: zeros(86), Want: ContainerMap{{}}},
		{Name: "deleted first, Windows second", In: testutil.Cat(zeros(86), windows),
			Want: ContainerMap{{}, {GUID: "257f0362-2ee7-44f5-9885-36fa490f30c1", Flags: 0x01, SigKeySizeBits: 1024}}},
		{Name: "39-character name fills the field", In: testutil.Cat(asciiGUID(strings.Repeat("x", 39)), testutil.Hex(t, "01 00 00 08 00 00")),
			Want: ContainerMap{{GUID: strings.Repeat("x", 39), Flags: 1, SigKeySizeBits: 2048}}},
		{Name: "UTF-16 with a surrogate pair", In: nonASCII,
			Want: ContainerMap{{GUID: "ké\U0001F511", Flags: 1, SigKeySizeBits: 2048}}},
		{Name: "unknown flag bits and bReserved are kept", In: testutil.Cat(asciiGUID("a"), testutil.Hex(t, "F1 5A 00 00 00 08")),
			Want: ContainerMap{{GUID: "a", Flags: 0xF1, Reserved: 0x5A, KeyExchangeKeySizeBits: 2048}}},
	}, equateEmpty)
}

func TestContainerMapIgnoresUnitsAfterTerminator(t *testing.T) {
	rec := testutil.Cat(asciiGUID("ab"), testutil.Hex(t, "01 00 00 08 00 00"))
	rec[10] = 'Z' // after the NUL at unit 2
	m, err := ParseContainerMap(rec)
	if err != nil {
		t.Fatal(err)
	}
	if m[0].GUID != "ab" {
		t.Errorf("GUID = %q", m[0].GUID)
	}
	enc, _ := m.Bytes()
	if enc[10] != 0 {
		t.Error("garbage after the terminator was written back")
	}
}

func TestContainerMapParseErrors(t *testing.T) {
	tail := testutil.Hex(t, "01 00 00 08 00 00")
	noNUL := testutil.Cat(bytes.Repeat([]byte{'A', 0}, 40), tail)
	backslash := testutil.Cat(asciiGUID(`ab\c`), tail)
	loneHigh := testutil.Cat(testutil.Hex(t, "61 00 3D D8 62 00"), zeros(74), tail)
	loneLow := testutil.Cat(testutil.Hex(t, "61 00 62 00 11 DD"), zeros(74), tail)
	highAtEnd := testutil.Cat(testutil.Hex(t, "3D D8"), zeros(78), tail)
	checkParseErrors(t, ParseContainerMap, []formatErrCase[[]byte]{
		{"85 bytes", zeros(85), FormatError{File: "cmapfile", Offset: 0}, "85 trailing bytes"},
		{"one record and one byte", zeros(87), FormatError{File: "cmapfile", Offset: 86}, "1 trailing bytes"},
		{"no terminator in record 0", noNUL, FormatError{File: "cmapfile", Offset: 0}, "record 0 wszGuid: no NUL terminator"},
		{"no terminator in record 1", testutil.Cat(zeros(86), noNUL), FormatError{File: "cmapfile", Offset: 86}, "record 1 wszGuid: no NUL terminator"},
		{"backslash", testutil.Cat(zeros(86), zeros(86), backslash), FormatError{File: "cmapfile", Offset: 172 + 4}, `record 2 wszGuid: '\' at code unit 2`},
		{"unpaired high surrogate", loneHigh, FormatError{File: "cmapfile", Offset: 2}, "record 0 wszGuid: unpaired high surrogate D83D"},
		{"unpaired low surrogate", loneLow, FormatError{File: "cmapfile", Offset: 4}, "record 0 wszGuid: unpaired low surrogate DD11"},
		{"high surrogate before the terminator", highAtEnd, FormatError{File: "cmapfile", Offset: 0}, "unpaired high surrogate"},
	})
}

func TestContainerMapEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		guid string
		msg  string
	}{
		{"40 characters", strings.Repeat("g", 40), "record 1 wszGuid: 40 UTF-16 code units, at most 39"},
		{"38 characters plus a pair", strings.Repeat("g", 38) + "\U0001F511", "40 UTF-16 code units"},
		{"NUL", "a\x00b", "record 1 wszGuid: contains NUL"},
		{"backslash", `a\b`, `contains '\'`},
		{"invalid UTF-8", "a\xffb", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ContainerMap{{}, {GUID: tt.guid, Flags: ContainerValid}}
			_, err := m.Bytes()
			checkFormatErr(t, err, FormatError{File: "cmapfile", Offset: 86}, tt.msg)
		})
	}
}

func TestContainerMapHelpers(t *testing.T) {
	m := ContainerMap{
		{GUID: "a", Flags: 0x01, KeyExchangeKeySizeBits: 2048},
		{},
		{GUID: "c", Flags: 0x03, SigKeySizeBits: 1024},
		{GUID: "d", Flags: 0x02}, // default bit but invalid
	}
	if got := m.Default(); got != 2 {
		t.Errorf("Default = %d, want 2", got)
	}
	for i, want := range []bool{true, false, true, false} {
		if got := m.Valid(i); got != want {
			t.Errorf("Valid(%d) = %v", i, got)
		}
	}
	if m.Valid(-1) || m.Valid(4) {
		t.Error("Valid out of range")
	}
	if got := m.FirstFree(); got != 1 {
		t.Errorf("FirstFree = %d, want 1 (first invalid record)", got)
	}
	if err := m.SetDefault(0); err != nil {
		t.Fatal(err)
	}
	want := ContainerMap{
		{GUID: "a", Flags: 0x03, KeyExchangeKeySizeBits: 2048},
		{},
		{GUID: "c", Flags: 0x01, SigKeySizeBits: 1024},
		{GUID: "d", Flags: 0x00},
	}
	if d := cmp.Diff(want, m); d != "" {
		t.Errorf("after SetDefault(0) (-want +got):\n%s", d)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate after SetDefault: %v", err)
	}
	checkFormatErr(t, m.SetDefault(1), FormatError{File: "cmapfile", Offset: 86 + 80}, "record 1 bFlags: not a valid container")
	checkFormatErr(t, m.SetDefault(4), FormatError{File: "cmapfile"}, "no such record")
	checkFormatErr(t, m.Zero(-1), FormatError{File: "cmapfile"}, "no such record")

	if err := m.Zero(0); err != nil {
		t.Fatal(err)
	}
	if len(m) != 4 || m[0] != (ContainerRecord{}) {
		t.Errorf("Zero must keep the slot and zero it: %+v", m)
	}
	if got := m.Default(); got != -1 {
		t.Errorf("Default after deleting it = %d", got)
	}
	if got := m.FirstFree(); got != 0 {
		t.Errorf("FirstFree = %d, want 0", got)
	}

	full := make(ContainerMap, MaxContainerIndex)
	for i := range full {
		full[i].Flags = ContainerValid
	}
	if got := full.FirstFree(); got != MaxContainerIndex {
		t.Errorf("FirstFree on %d valid records = %d (append)", len(full), got)
	}
	full = append(full, ContainerRecord{Flags: ContainerValid})
	if got := full.FirstFree(); got != -1 {
		t.Errorf("FirstFree with key reference FF used = %d, want -1", got)
	}
	if got := (ContainerMap{}).FirstFree(); got != 0 {
		t.Errorf("FirstFree on empty = %d", got)
	}
}

func TestContainerRecordKey(t *testing.T) {
	tests := []struct {
		r    ContainerRecord
		spec KeySpec
		bits int
		ok   bool
	}{
		{ContainerRecord{Flags: 1, KeyExchangeKeySizeBits: 2048}, AT_KEYEXCHANGE, 2048, true},
		{ContainerRecord{Flags: 3, SigKeySizeBits: 1024}, AT_SIGNATURE, 1024, true},
		{ContainerRecord{Flags: 1, SigKeySizeBits: 1024, KeyExchangeKeySizeBits: 1024}, 0, 0, false},
		{ContainerRecord{Flags: 1}, 0, 0, false},
		{ContainerRecord{Flags: 2, KeyExchangeKeySizeBits: 2048}, 0, 0, false},
	}
	for _, tt := range tests {
		spec, bits, ok := tt.r.Key()
		if spec != tt.spec || bits != tt.bits || ok != tt.ok {
			t.Errorf("%+v.Key() = %v %d %v", tt.r, spec, bits, ok)
		}
	}
}

func TestContainerMapValidate(t *testing.T) {
	kx := func(name string, flags byte) ContainerRecord {
		return ContainerRecord{GUID: name, Flags: flags, KeyExchangeKeySizeBits: 2048}
	}
	tests := []struct {
		name string
		m    ContainerMap
		want *FormatError
		msg  string
	}{
		{"empty", ContainerMap{}, nil, ""},
		{"only deleted records", ContainerMap{{}, {}}, nil, ""},
		{"one default", ContainerMap{kx("a", 3), {}, kx("b", 1)}, nil, ""},
		{"no default (OpenSC after deleting container 0)", ContainerMap{{}, kx("b", 1)},
			&FormatError{File: "cmapfile", Offset: 0}, "no valid default container"},
		{"two defaults", ContainerMap{kx("a", 3), kx("b", 3)},
			&FormatError{File: "cmapfile", Offset: 86 + 80}, "record 1 bFlags 03: second default container (record 0"},
		{"default on invalid record", ContainerMap{kx("a", 3), {Flags: 2}},
			&FormatError{File: "cmapfile", Offset: 86 + 80}, "record 1 bFlags 02: default bit on an invalid record"},
		{"duplicate names", ContainerMap{kx("a", 3), {}, kx("a", 1)},
			&FormatError{File: "cmapfile", Offset: 172}, `record 2 wszGuid: "a" already names valid record 0`},
		{"duplicate name on an invalid record is fine", ContainerMap{kx("a", 3), {GUID: "a"}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFormatErrOrNil(t, tt.m.Validate(), tt.want, tt.msg)
		})
	}
}
