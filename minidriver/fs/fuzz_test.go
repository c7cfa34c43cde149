package fs

import (
	"bytes"
	"compress/zlib"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

// checkFuzzErr requires a parser error to be a *FormatError for the right
// file with an offset inside (or just past) the input.
func checkFuzzErr(t *testing.T, err error, file string, in []byte) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FormatError", err, err)
	}
	if fe.File != file || fe.Offset < 0 || fe.Offset > len(in) || fe.Msg == "" {
		t.Fatalf("bad error %#v for %d-byte input", fe, len(in))
	}
}

// roundTrip is what the fuzz targets of the fixed-layout formats check of
// a parsed value: it encodes to the input's length, re-parses to an equal
// value, and its encoding is a fixed point.
func roundTrip[T interface{ Bytes() ([]byte, error) }](t *testing.T, in []byte, v T, parse func([]byte) (T, error)) {
	t.Helper()
	enc, err := v.Bytes()
	if err != nil {
		t.Fatalf("Bytes() of a parsed %T: %v", v, err)
	}
	if len(enc) != len(in) {
		t.Fatalf("length %d → %d", len(in), len(enc))
	}
	again, err := parse(enc)
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	if d := cmp.Diff(v, again, equateEmpty); d != "" {
		t.Fatalf("(-first +second):\n%s", d)
	}
	if enc2, _ := again.Bytes(); !bytes.Equal(enc, enc2) {
		t.Fatal("encoding is not a fixed point")
	}
}

// fuzzFormat is the fuzz target of an fs format: parse the input; an
// error must be a *FormatError for file (checkFuzzErr), and a value must
// pass check, which holds what the format promises of what it parsed
// (roundTrip for the formats with a checked encoder).
func fuzzFormat[T any](f *testing.F, file string, parse func([]byte) (T, error), check func(t *testing.T, in []byte, v T)) {
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := parse(in)
		if err != nil {
			checkFuzzErr(t, err, file, in)
			return
		}
		check(t, in, v)
	})
}

func FuzzCardCF(f *testing.F) {
	testutil.AddHexSeeds(f, "000000000000", "000001000200", "000019004B00", "010734127856AABBCCDD", "02", "020000000000")
	fuzzFormat(f, "cardcf", ParseCardCF, func(t *testing.T, in []byte, c CardCF) {
		// Every byte of cardcf is kept, so the encoding is exact.
		enc := c.Bytes()
		if !bytes.Equal(enc, in) {
			t.Fatalf("Bytes() = % X, input % X", enc, in)
		}
		again, err := ParseCardCF(enc)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(c, again); d != "" {
			t.Fatalf("(-first +second):\n%s", d)
		}
		if c.Changed(again) || c.Diff(again) != 0 {
			t.Fatal("a value differs from itself")
		}
		b := c
		b.BumpFiles()
		if !c.ChangedIn(b, CategoryFiles) || c.ChangedIn(b, CategoryPins|CategoryContainers) {
			t.Fatal("BumpFiles changed the wrong category")
		}
	})
}

func FuzzContainerMap(f *testing.F) {
	f.Add([]byte{})
	f.Add(testutil.Cat(asciiGUID("key2048"), testutil.Hex(f, "03 00 00 00 00 08")))
	f.Add(testutil.Cat(zeros(86), asciiGUID("257f0362-2ee7-44f5-9885-36fa490f30c1"), testutil.Hex(f, "01 00 00 04 00 00")))
	f.Add(testutil.Cat(testutil.Hex(f, "6B 00 E9 00 3D D8 11 DD"), zeros(72), testutil.Hex(f, "01 00 00 08 00 00")))
	f.Add(testutil.Cat(testutil.Hex(f, "61 00 3D D8 62 00"), zeros(74), testutil.Hex(f, "01 00 00 08 00 00")))
	f.Add(zeros(85))
	fuzzFormat(f, "cmapfile", ParseContainerMap, func(t *testing.T, in []byte, m ContainerMap) {
		roundTrip(t, in, m, ParseContainerMap)
		// The helpers must not panic and must agree with each other.
		_ = m.Validate()
		if d := m.Default(); d >= 0 && !m[d].IsDefault() {
			t.Fatalf("Default() = %d, not a default", d)
		}
		if i := m.FirstFree(); i >= 0 && m.Valid(i) {
			t.Fatalf("FirstFree() = %d is valid", i)
		}
		if v := m.FirstFree(); len(m) > 0 && v >= 0 && v < len(m) {
			if err := m.Zero(v); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzMasterFile(f *testing.F) {
	f.Add(testutil.Hex(f, hexInitialMasterFile))
	f.Add(testutil.Cat(testutil.Hex(f, hexInitialMasterFile), testutil.Hex(f, hexKxc00Record)))
	f.Add([]byte{1})
	f.Add([]byte{2})
	f.Add([]byte{})
	f.Add(testutil.Cat([]byte{1}, []byte("abcdefghi"), zeros(19)))
	fuzzFormat(f, "masterfile", ParseMasterFile, func(t *testing.T, in []byte, m MasterFile) {
		roundTrip(t, in, m, ParseMasterFile)
		_ = m.Validate()
		for _, r := range m {
			if i := m.Index(r.Dir, r.Name); i < 0 {
				t.Fatalf("Index(%q, %q) did not find a parsed record", r.Dir, r.Name)
			}
		}
		if do, err := m.FreeDO(EFEveryoneReadUserWriteAc); err == nil {
			if do < FirstFileDO || do > LastFileDO || m.IndexDO(EFEveryoneReadUserWriteAc, do) >= 0 {
				t.Fatalf("FreeDO = %04X is not free", do)
			}
		}
	})
}

func FuzzKeyMap(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(testutil.Hex(f, hexKeyMapOne))
	f.Add(testutil.Cat([]byte{1}, testutil.Hex(f, hexKeyRecordDeleted), testutil.Hex(f, "01 00 00 00 06 9C 82 B0 FF FF 00 00")))
	f.Add(testutil.Hex(f, "02 01 00 00 00 07 9A 81 B0 FF FF 00"))
	fuzzFormat(f, "keymap", ParseKeyMap, func(t *testing.T, in []byte, m KeyMap) {
		enc := m.Bytes()
		again, err := ParseKeyMap(enc)
		if err != nil {
			t.Fatalf("re-parse of % X: %v", enc, err)
		}
		if d := cmp.Diff(m, again, equateEmpty); d != "" {
			t.Fatalf("(-first +second):\n%s", d)
		}
		if !bytes.Equal(enc, again.Bytes()) {
			t.Fatal("encoding is not a fixed point")
		}
		// Only the padding bytes (and a lone version byte) are not kept.
		if len(m) > 0 && len(enc) != len(in) {
			t.Fatalf("length %d → %d", len(in), len(enc))
		}
		_ = m.Validate()
		_ = CheckConsistent(make(ContainerMap, len(m)), m)
	})
}

func FuzzDecodeCert(f *testing.F) {
	der := []byte("0\x82\x01\x00 not really DER but any bytes compress")
	enc, _ := EncodeCert(der)
	f.Add(enc)
	var best bytes.Buffer
	w, _ := zlib.NewWriterLevel(&best, zlib.BestCompression)
	w.Write(der)
	w.Close()
	f.Add(certFile(uint16(len(der)), best.Bytes()))
	f.Add(certFile(uint16(len(der)+1), best.Bytes()))
	f.Add(testutil.Cat(enc, []byte{0}))
	f.Add(testutil.Hex(f, "02 00 B1 02 78 9C"))
	f.Add(testutil.Hex(f, "01 00 00 00 78 9C 03 00 00 00 00 01"))
	f.Add([]byte{})
	fuzzFormat(f, "certificate", DecodeCert, func(t *testing.T, in []byte, got []byte) {
		if len(got) == 0 || len(got) > MaxCertSize || len(got) != int(in[2])|int(in[3])<<8 {
			t.Fatalf("decoded %d bytes, header % X", len(got), in[:4])
		}
		enc, err := EncodeCert(got)
		if err != nil {
			t.Fatalf("EncodeCert of a decoded certificate: %v", err)
		}
		again, err := DecodeCert(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !bytes.Equal(got, again) {
			t.Fatal("round trip changed the certificate")
		}
	})
}
