package fs

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

func TestInitialMasterFile(t *testing.T) {
	want := testutil.Hex(t, hexInitialMasterFile)
	if len(want) != 141 {
		t.Fatalf("vector is %d bytes", len(want))
	}
	got, err := InitialMasterFile().Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("InitialMasterFile().Bytes() =\n% X\nwant\n% X", got, want)
	}
	// Record 2 as spelled out in §3.3.
	if rec := want[1+28 : 1+56]; !bytes.Equal(rec, testutil.Hex(t, hexCardIDRecord)) {
		t.Errorf("vector record 2 = % X", rec)
	}
}

func TestMasterFileVectors(t *testing.T) {
	initial := testutil.Hex(t, hexInitialMasterFile)
	withCert := testutil.Cat(initial, testutil.Hex(t, hexKxc00Record))
	testutil.CheckVectors(t, ParseMasterFile, MasterFile.Bytes, []testutil.Vector[MasterFile]{
		{Name: "version byte only", In: []byte{0x01}, Want: MasterFile{}},
		{Name: "initial 141 bytes (§3.3)", In: initial, Want: InitialMasterFile()},
		{Name: "169 bytes after one certificate (§3.3)", In: withCert,
			Want: append(InitialMasterFile(), MasterRecord{Dir: "mscp", Name: "kxc00", DO: 0xDF24, EF: 0xA010})},
		{Name: "eight-character names", In: testutil.Cat([]byte{1}, []byte("abcdefgh\x0012345678\x00\x00\x00\x30\xDF\x00\x00\x10\xA0\x00\x00")),
			Want: MasterFile{{Dir: "abcdefgh", Name: "12345678", DO: 0xDF30, EF: 0xA010}}},
	}, equateEmpty)
	if n := len(withCert); n != 0xA9 {
		t.Errorf("masterfile after one certificate is %d bytes, the trace says DF 1F 81 A9", n)
	}
}

// TestMasterFileCreateCertificate replays gids_create_file for the first
// certificate: it must produce the observed 169-byte masterfile.
func TestMasterFileCreateCertificate(t *testing.T) {
	m := InitialMasterFile()
	r, err := m.Create("mscp", CertFileName(0, AT_KEYEXCHANGE))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(MasterRecord{Dir: "mscp", Name: "kxc00", DO: 0xDF24, EF: 0xA010}, r); d != "" {
		t.Errorf("Create (-want +got):\n%s", d)
	}
	got, _ := m.Bytes()
	if want := testutil.Cat(testutil.Hex(t, hexInitialMasterFile), testutil.Hex(t, hexKxc00Record)); !bytes.Equal(got, want) {
		t.Errorf("masterfile =\n% X\nwant\n% X", got, want)
	}
}

func TestMasterFileFreeDO(t *testing.T) {
	m := InitialMasterFile()
	for i, want := range []uint16{0xDF24, 0xDF25, 0xDF26} {
		r, err := m.Create("mscp", CertFileName(i, AT_SIGNATURE))
		if err != nil {
			t.Fatal(err)
		}
		if r.DO != want {
			t.Errorf("certificate %d got DO %04X, want %04X", i, r.DO, want)
		}
	}
	// Freed tags are reused lowest first.
	if _, ok := m.Remove("mscp", "ksc01"); !ok {
		t.Fatal("Remove ksc01")
	}
	if do, _ := m.FreeDO(0xA010); do != 0xDF25 {
		t.Errorf("FreeDO after removing DF25 = %04X", do)
	}
	// Tags are per EF: DF20 in A012 (cardid) and DO 0 of the directory
	// record in A000 do not count for A010, and an EF with no files
	// starts at DF21.
	if do, _ := m.FreeDO(0xA012); do != 0xDF21 {
		t.Errorf("FreeDO(A012) = %04X", do)
	}
	if do, _ := InitialMasterFile().FreeDO(0xA013); do != 0xDF21 {
		t.Errorf("FreeDO(A013) = %04X", do)
	}
	// Exhaustion: every tag DF21..DFFE used.
	var full MasterFile
	for do := FirstFileDO; do <= LastFileDO; do++ {
		full = append(full, MasterRecord{Dir: "d", Name: "f", DO: do, EF: 0xA010})
	}
	_, err := full.FreeDO(0xA010)
	checkFormatErr(t, err, FormatError{File: "masterfile"}, "no free DO in EF A010")
	_, err = full.Create("mscp", "x")
	checkFormatErr(t, err, FormatError{File: "masterfile"}, "no free DO")
}

func TestMasterFileLookup(t *testing.T) {
	m := InitialMasterFile()
	tests := []struct {
		dir, name string
		want      int
	}{
		{"mscp", "cmapfile", 4},
		{"MSCP", "CmapFile", 4},
		{"", "cardcf", 3},
		{"", "CARDID", 1},
		{"mscp", "", 0},
		{"", "cmapfile", -1},
		{"mscp", "cardcf", -1},
		{"\u212Ascp", "cmapfile", -1}, // KELVIN SIGN must not fold to k
	}
	for _, tt := range tests {
		if got := m.Index(tt.dir, tt.name); got != tt.want {
			t.Errorf("Index(%q, %q) = %d, want %d", tt.dir, tt.name, got, tt.want)
		}
		r, ok := m.Lookup(tt.dir, tt.name)
		if ok != (tt.want >= 0) || (ok && r != m[tt.want]) {
			t.Errorf("Lookup(%q, %q) = %+v, %v", tt.dir, tt.name, r, ok)
		}
	}
	if got := m.IndexDO(0xA010, 0xDF22); got != 3 {
		t.Errorf("IndexDO(A010, DF22) = %d", got)
	}
	if got := m.IndexDO(0xA000, 0); got != -1 {
		t.Errorf("IndexDO must skip directory records, got %d", got)
	}
}

func TestMasterFileRemoveShifts(t *testing.T) {
	m := InitialMasterFile()
	for _, n := range []string{"kxc00", "ksc01", "kxc02"} {
		if _, err := m.Create("mscp", n); err != nil {
			t.Fatal(err)
		}
	}
	r, ok := m.Remove("MSCP", "KSC01")
	if !ok || r.DO != 0xDF25 {
		t.Fatalf("Remove = %+v, %v", r, ok)
	}
	want := append(InitialMasterFile(),
		MasterRecord{Dir: "mscp", Name: "kxc00", DO: 0xDF24, EF: 0xA010},
		MasterRecord{Dir: "mscp", Name: "kxc02", DO: 0xDF26, EF: 0xA010})
	if d := cmp.Diff(want, m); d != "" {
		t.Errorf("after Remove (-want +got):\n%s", d)
	}
	if _, ok := m.Remove("mscp", "ksc01"); ok {
		t.Error("second Remove succeeded")
	}
	if _, err := m.RemoveAt(len(m)); err == nil {
		t.Error("RemoveAt out of range succeeded")
	}
	// Removing the certificate brings the file back to the initial bytes.
	m.Remove("mscp", "kxc00")
	m.Remove("mscp", "kxc02")
	got, _ := m.Bytes()
	if !bytes.Equal(got, testutil.Hex(t, hexInitialMasterFile)) {
		t.Errorf("after removing all certificates: % X", got)
	}
}

func TestMasterFileAddErrors(t *testing.T) {
	tests := []formatErrCase[MasterRecord]{
		{"duplicate path, other case", MasterRecord{Dir: "MSCP", Name: "CMAPFILE", DO: 0xDF30, EF: 0xA010},
			FormatError{File: "masterfile", Offset: 141}, `record 5: "MSCP"/"CMAPFILE" already exists as record 4`},
		{"duplicate directory", MasterRecord{Dir: "mscp", EF: 0xA000},
			FormatError{File: "masterfile", Offset: 141}, "already exists as record 0"},
		{"DO already used", MasterRecord{Dir: "mscp", Name: "kxc00", DO: 0xDF22, EF: 0xA010},
			FormatError{File: "masterfile", Offset: 141 + 20}, "EF A010 DO DF22 already holds record 3"},
		{"nine-character name", MasterRecord{Dir: "mscp", Name: "abcdefghi", DO: 0xDF30, EF: 0xA010},
			FormatError{File: "masterfile", Offset: 141 + 9}, "record 5 file name \"abcdefghi\": 9 characters, at most 8"},
		{"nine-character directory", MasterRecord{Dir: "abcdefghi", Name: "x", DO: 0xDF30, EF: 0xA010},
			FormatError{File: "masterfile", Offset: 141}, "record 5 directory"},
		{"non-ASCII name", MasterRecord{Dir: "mscp", Name: "k\u00e9", DO: 0xDF30, EF: 0xA010},
			FormatError{File: "masterfile", Offset: 141 + 9 + 1}, "byte C3 is not printable ASCII"},
		{"slash in name", MasterRecord{Dir: "mscp", Name: "a/b", DO: 0xDF30, EF: 0xA010},
			FormatError{File: "masterfile", Offset: 141 + 9 + 1}, "byte 2F"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := InitialMasterFile()
			checkFormatErr(t, m.Add(tt.in), tt.want, tt.msg)
			if len(m) != 5 {
				t.Errorf("failed Add changed the file: %d records", len(m))
			}
		})
	}
	// Bytes refuses what Add refuses, for records set directly.
	m := append(InitialMasterFile(), MasterRecord{Dir: "mscp", Name: "toolongname"})
	_, err := m.Bytes()
	checkFormatErr(t, err, FormatError{File: "masterfile", Offset: 141 + 9}, "record 5 file name")
}

func TestMasterFileParseErrors(t *testing.T) {
	initial := testutil.Hex(t, hexInitialMasterFile)
	rec := func(mod func([]byte)) []byte {
		b := testutil.Cat([]byte{1}, testutil.Hex(t, hexCardIDRecord), testutil.Hex(t, hexKxc00Record))
		mod(b)
		return b
	}
	checkParseErrors(t, ParseMasterFile, []formatErrCase[[]byte]{
		{"empty", nil, FormatError{File: "masterfile", Offset: 0}, "empty"},
		{"version 00", testutil.Cat([]byte{0}, initial[1:]), FormatError{File: "masterfile", Offset: 0}, "version 00, want 01"},
		{"version 02", []byte{2}, FormatError{File: "masterfile", Offset: 0}, "version 02"},
		{"partial record", initial[:140], FormatError{File: "masterfile", Offset: 113}, "27 trailing bytes"},
		{"one extra byte", testutil.Cat(initial, []byte{0}), FormatError{File: "masterfile", Offset: 141}, "1 trailing bytes"},
		{"directory without NUL", rec(func(b []byte) { copy(b[29:], "abcdefghi") }),
			FormatError{File: "masterfile", Offset: 29}, "record 1 directory: no NUL terminator in 9 bytes"},
		{"file name without NUL", rec(func(b []byte) { copy(b[1+9:], "cardidxyz") }),
			FormatError{File: "masterfile", Offset: 10}, "record 0 file name: no NUL terminator"},
		{"control character", rec(func(b []byte) { b[29+9+1] = 0x07 }),
			FormatError{File: "masterfile", Offset: 39}, "record 1 file name: byte 07 is not printable ASCII"},
		{"high-bit byte", rec(func(b []byte) { b[29] = 0xE9 }),
			FormatError{File: "masterfile", Offset: 29}, "record 1 directory: byte E9"},
		{"DO high half set", rec(func(b []byte) { b[29+22] = 1 }),
			FormatError{File: "masterfile", Offset: 49}, "record 1 DO tag 0001DF24 does not fit two bytes"},
		{"EF high half set", rec(func(b []byte) { b[1+27] = 0x80 }),
			FormatError{File: "masterfile", Offset: 25}, "record 0 EF 8000A012"},
	})
}

func TestMasterFileIgnoresPaddingAndTail(t *testing.T) {
	b := testutil.Cat([]byte{1}, testutil.Hex(t, hexKxc00Record))
	b[1+7] = 'x'   // after the NUL of "mscp"
	b[1+18] = 0xAA // alignment bytes
	b[1+19] = 0xBB
	m, err := ParseMasterFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(MasterFile{{Dir: "mscp", Name: "kxc00", DO: 0xDF24, EF: 0xA010}}, m); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	enc, _ := m.Bytes()
	if !bytes.Equal(enc, testutil.Cat([]byte{1}, testutil.Hex(t, hexKxc00Record))) {
		t.Errorf("Bytes() = % X", enc)
	}
}

func TestMasterFileValidate(t *testing.T) {
	if err := InitialMasterFile().Validate(); err != nil {
		t.Fatal(err)
	}
	dupName := append(InitialMasterFile(), MasterRecord{Name: "CardCF", DO: 0xDF30, EF: 0xA010})
	checkFormatErr(t, dupName.Validate(), FormatError{File: "masterfile", Offset: 141}, `record 5: ""/"CardCF" duplicates record 3`)
	dupDO := append(InitialMasterFile(), MasterRecord{Dir: "mscp", Name: "kxc00", DO: 0xDF23, EF: 0xA010})
	checkFormatErr(t, dupDO.Validate(), FormatError{File: "masterfile", Offset: 161}, "EF A010 DO DF23 already holds record 4")
}
