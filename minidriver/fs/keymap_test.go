package fs

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

func TestKeyMapVectors(t *testing.T) {
	valid0 := KeyRecord{State: 1, AlgID: 0x07, KeyType: 0x9A, KeyRef: 0xB081, Unknown: 0xFFFF}
	tests := []struct {
		name  string
		in    []byte
		want  KeyMap
		exact bool // Bytes reproduces the input
	}{
		{"zero-length DO written by Windows (DF20 00)", nil, KeyMap{}, true},
		{"version byte only", []byte{0x01}, KeyMap{}, false},
		{"one 2048-bit exchange key (§3.6)", testutil.Hex(t, hexKeyMapOne), KeyMap{valid0}, true},
		{"deleted record (§5.5)", testutil.Cat([]byte{1}, testutil.Hex(t, hexKeyRecordDeleted)), KeyMap{DeletedKeyRecord()}, true},
		{"deleted, then a 1024-bit signature key at index 1",
			testutil.Cat([]byte{1}, testutil.Hex(t, hexKeyRecordDeleted), testutil.Hex(t, "01 00 00 00 06 9C 82 B0 FF FF 00 00")),
			KeyMap{DeletedKeyRecord(), {State: 1, AlgID: 0x06, KeyType: 0x9C, KeyRef: 0xB082, Unknown: 0xFFFF}}, true},
		{"odd values are kept", testutil.Hex(t, "01 FE FF FF FF 0E 01 34 12 78 56 00 00"),
			KeyMap{{State: -2, AlgID: 0x0E, KeyType: 0x01, KeyRef: 0x1234, Unknown: 0x5678}}, true},
		{"padding bytes are ignored", testutil.Hex(t, "01 01 00 00 00 07 9A 81 B0 FF FF AA BB"), KeyMap{valid0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeyMap(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, equateEmpty); d != "" {
				t.Errorf("ParseKeyMap (-want +got):\n%s", d)
			}
			enc := got.Bytes()
			if tt.exact && !bytes.Equal(enc, tt.in) {
				t.Errorf("Bytes() = % X, want % X", enc, tt.in)
			}
			again, err := ParseKeyMap(enc)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(got, again, equateEmpty); d != "" {
				t.Errorf("re-parse (-first +second):\n%s", d)
			}
		})
	}
	if n := len(testutil.Hex(t, hexKeyMapOne)); n != 0x0D {
		t.Errorf("keymap vector is %d bytes, trace says DF 20 0D", n)
	}
}

func TestNewKeyRecord(t *testing.T) {
	r, err := NewKeyRecord(0, AT_KEYEXCHANGE, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if got := (KeyMap{r}).Bytes(); !bytes.Equal(got, testutil.Hex(t, hexKeyMapOne)) {
		t.Errorf("NewKeyRecord(0, kx, 2048) encodes as % X", got)
	}
	if got := (KeyMap{DeletedKeyRecord()}).Bytes(); !bytes.Equal(got[1:], testutil.Hex(t, hexKeyRecordDeleted)) {
		t.Errorf("DeletedKeyRecord encodes as % X", got)
	}
	r, err = NewKeyRecord(MaxContainerIndex, AT_SIGNATURE, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(KeyRecord{State: 1, AlgID: 0x09, KeyType: 0x9C, KeyRef: 0xB0FF, Unknown: 0xFFFF}, r); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, bad := range []struct {
		index int
		spec  KeySpec
		bits  int
	}{{-1, AT_SIGNATURE, 2048}, {MaxContainerIndex + 1, AT_SIGNATURE, 2048}, {0, 3, 2048}, {0, AT_KEYEXCHANGE, 1536}} {
		if _, err := NewKeyRecord(bad.index, bad.spec, bad.bits); err == nil {
			t.Errorf("NewKeyRecord(%d, %v, %d) succeeded", bad.index, bad.spec, bad.bits)
		}
	}
	if _, err := NewKeyRecord(0, AT_SIGNATURE, 512); !errors.Is(err, ErrKeySize) {
		t.Errorf("bad size error %v does not wrap ErrKeySize", err)
	}
}

func TestKeyMapParseErrors(t *testing.T) {
	one := testutil.Hex(t, hexKeyMapOne)
	checkParseErrors(t, ParseKeyMap, []formatErrCase[[]byte]{
		{"version 00", testutil.Cat([]byte{0}, one[1:]), FormatError{File: "keymap", Offset: 0}, "version 00, want 01"},
		{"version 02 alone", []byte{2}, FormatError{File: "keymap", Offset: 0}, "version 02"},
		{"record short by one", one[:12], FormatError{File: "keymap", Offset: 1}, "11 trailing bytes"},
		{"one byte too many", testutil.Cat(one, []byte{0}), FormatError{File: "keymap", Offset: 13}, "1 trailing bytes"},
	})
}

func TestKeyMapValidate(t *testing.T) {
	good, _ := NewKeyRecord(1, AT_KEYEXCHANGE, 2048)
	mod := func(f func(*KeyRecord)) KeyMap {
		r := good
		f(&r)
		return KeyMap{DeletedKeyRecord(), r}
	}
	tests := []struct {
		name string
		m    KeyMap
		want *FormatError
		msg  string
	}{
		{"good", KeyMap{DeletedKeyRecord(), good}, nil, ""},
		{"all-zero deleted record", KeyMap{{}}, nil, ""},
		{"state 2", mod(func(r *KeyRecord) { r.State = 2 }), &FormatError{File: "keymap", Offset: 13}, "record 1 state: 2"},
		{"algid 0A", mod(func(r *KeyRecord) { r.AlgID = 0x0A }), &FormatError{File: "keymap", Offset: 17}, "record 1 algid: 0A"},
		{"key type 00", mod(func(r *KeyRecord) { r.KeyType = 0 }), &FormatError{File: "keymap", Offset: 18}, "record 1 key type: 00"},
		{"key reference of index 0", mod(func(r *KeyRecord) { r.KeyRef = 0xB081 }), &FormatError{File: "keymap", Offset: 19}, "record 1 key reference: B081, want B082"},
		{"unknown field 0000", mod(func(r *KeyRecord) { r.Unknown = 0 }), &FormatError{File: "keymap", Offset: 21}, "record 1 unknown field: 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFormatErrOrNil(t, tt.m.Validate(), tt.want, tt.msg)
		})
	}
}

func TestCheckConsistent(t *testing.T) {
	kx0, _ := NewKeyRecord(0, AT_KEYEXCHANGE, 2048)
	sig1, _ := NewKeyRecord(1, AT_SIGNATURE, 1024)
	cm := ContainerMap{
		{GUID: "a", Flags: 3, KeyExchangeKeySizeBits: 2048},
		{GUID: "b", Flags: 1, SigKeySizeBits: 1024},
		{},
	}
	km := KeyMap{kx0, sig1, DeletedKeyRecord()}
	if err := CheckConsistent(cm, km); err != nil {
		t.Fatal(err)
	}
	if err := CheckConsistent(ContainerMap{}, KeyMap{}); err != nil {
		t.Fatal(err)
	}
	with := func(i int, c *ContainerRecord, k *KeyRecord) (ContainerMap, KeyMap) {
		cm2, km2 := append(ContainerMap(nil), cm...), append(KeyMap(nil), km...)
		if c != nil {
			cm2[i] = *c
		}
		if k != nil {
			km2[i] = *k
		}
		return cm2, km2
	}
	kr := func(state int32, alg, typ byte, ref uint16) *KeyRecord {
		return &KeyRecord{State: state, AlgID: alg, KeyType: typ, KeyRef: ref, Unknown: 0xFFFF}
	}
	tests := []struct {
		name string
		cm   ContainerMap
		km   KeyMap
		want ConsistencyError
	}{
		{"keymap shorter (cmapfile reserved a record, §5.2 step 3)", cm, km[:2],
			ConsistencyError{Container: -1, Msg: "cmapfile has 3 records, keymap 2"}},
		{"empty keymap, one deleted container", ContainerMap{{}}, KeyMap{},
			ConsistencyError{Container: -1, Msg: "cmapfile has 1 records, keymap 0"}},
		{"key left behind", cm, KeyMap{kx0, sig1, *kr(1, 7, 0x9A, 0xB083)},
			ConsistencyError{Container: 2, Msg: "cmapfile record is not valid but keymap state is 1"}},
		{"key missing", func() ContainerMap { c, _ := with(1, nil, nil); return c }(), KeyMap{kx0, DeletedKeyRecord(), DeletedKeyRecord()},
			ConsistencyError{Container: 1, Msg: "cmapfile record is valid but keymap state is 0"}},
		{"both sizes set", func() ContainerMap {
			c, _ := with(0, &ContainerRecord{GUID: "a", Flags: 3, SigKeySizeBits: 2048, KeyExchangeKeySizeBits: 2048}, nil)
			return c
		}(), km, ConsistencyError{Container: 0, Msg: "cmapfile record has sig 2048 / exchange 2048 bits; exactly one must be set"}},
		{"key type mismatch", cm, KeyMap{*kr(1, 7, 0x9C, 0xB081), sig1, DeletedKeyRecord()},
			ConsistencyError{Container: 0, Msg: "cmapfile says AT_KEYEXCHANGE, keymap key type is 9C"}},
		{"size mismatch", cm, KeyMap{kx0, *kr(1, 7, 0x9C, 0xB082), DeletedKeyRecord()},
			ConsistencyError{Container: 1, Msg: "cmapfile says 1024 bits, keymap algid is 07"}},
		{"unknown algid", cm, KeyMap{kx0, *kr(1, 0x0C, 0x9C, 0xB082), DeletedKeyRecord()},
			ConsistencyError{Container: 1, Msg: "cmapfile says 1024 bits, keymap algid is 0C"}},
		{"key reference of another container", cm, KeyMap{kx0, *kr(1, 6, 0x9C, 0xB081), DeletedKeyRecord()},
			ConsistencyError{Container: 1, Msg: "keymap key reference B081, want B082"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckConsistent(tt.cm, tt.km)
			var ce *ConsistencyError
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v (%T), want *ConsistencyError", err, err)
			}
			if d := cmp.Diff(tt.want, *ce); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestOpenSCKeyLifecycle replays OpenSC's key generation and deletion
// (docs/reference/gids-protocol.md §5.2, §5.5) on parsed files and checks every file
// against the observed bytes.
func TestOpenSCKeyLifecycle(t *testing.T) {
	var cf CardCF
	cm, _ := ParseContainerMap(nil)
	km, _ := ParseKeyMap(nil)

	// Generation: reserve a zeroed record (files+1), create the key EF
	// (containers+1, keymap), then fill the record (files+1).
	i := cm.FirstFree()
	if i != 0 {
		t.Fatalf("FirstFree = %d", i)
	}
	cf.BumpFiles()
	cm = append(cm, ContainerRecord{})
	cf.BumpContainers()
	r, _ := NewKeyRecord(i, AT_KEYEXCHANGE, 2048)
	km = append(km, r)
	cf.BumpFiles()
	cm[i] = ContainerRecord{GUID: "key2048", Flags: ContainerValid | ContainerDefault, KeyExchangeKeySizeBits: 2048}

	if got := cf.Bytes(); !bytes.Equal(got, testutil.Hex(t, "00 00 01 00 02 00")) {
		t.Errorf("cardcf % X", got)
	}
	if got := km.Bytes(); !bytes.Equal(got, testutil.Hex(t, hexKeyMapOne)) {
		t.Errorf("keymap % X", got)
	}
	if got, _ := cm.Bytes(); !bytes.Equal(got[80:], testutil.Hex(t, "03 00 00 00 00 08")) {
		t.Errorf("cmapfile record tail % X", got[80:])
	}
	if err := CheckConsistent(cm, km); err != nil {
		t.Error(err)
	}
	if err := cm.Validate(); err != nil {
		t.Error(err)
	}

	// Deletion.
	cf.BumpContainers()
	km[0] = DeletedKeyRecord()
	cf.BumpFiles()
	if err := cm.Zero(0); err != nil {
		t.Fatal(err)
	}
	if got := km.Bytes(); !bytes.Equal(got, testutil.Cat([]byte{1}, testutil.Hex(t, hexKeyRecordDeleted))) {
		t.Errorf("keymap after delete % X", got)
	}
	if got, _ := cm.Bytes(); !bytes.Equal(got, zeros(86)) {
		t.Errorf("cmapfile after delete % X", got)
	}
	if err := CheckConsistent(cm, km); err != nil {
		t.Error(err)
	}
	if cm.FirstFree() != 0 {
		t.Error("deleted slot is not reused")
	}
}
