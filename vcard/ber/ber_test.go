package ber

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cardharness/cardharness/internal/testutil"
)

var equateEmpty = cmpopts.EquateEmpty()

// rsaPubKey builds the GIDS public-key template 7F49 { 81 modulus, 82
// exponent } exactly as docs/reference/gids-protocol.md §2.10 shows it.
func rsaPubKey(t *testing.T, hdr string, mod []byte, modHdr string) []byte {
	return testutil.Cat(testutil.Hex(t, hdr), testutil.Hex(t, modHdr), mod, testutil.Hex(t, "82 03 01 00 01"))
}

func TestParseVectors(t *testing.T) {
	mod1024, mod2048 := testutil.Seq(128), testutil.Seq(256)
	pk1024 := rsaPubKey(t, "7F 49 81 88", mod1024, "81 81 80")
	pk2048 := rsaPubKey(t, "7F 49 82 01 09", mod2048, "81 82 01 00")
	cert := testutil.Seq(679)

	tests := []struct {
		name      string
		in        []byte
		want      []TLV
		canonical bool // Encode of the result reproduces the input
	}{
		{"empty input", nil, nil, true},
		{"cardcf DO", testutil.Hex(t, "DF 22 06 00 00 00 00 00 00"),
			[]TLV{{0xDF22, make([]byte, 6)}}, true},
		{"empty DO", testutil.Hex(t, "DF 23 00"), []TLV{{0xDF23, nil}}, true},
		{"A010 after initialize: three DOs back to back",
			testutil.Hex(t, "DF 21 08 6D 73 63 70 00 00 00 00 DF 22 06 00 00 00 00 00 00 DF 23 00"),
			[]TLV{{0xDF21, testutil.Hex(t, "6D 73 63 70 00 00 00 00")}, {0xDF22, make([]byte, 6)}, {0xDF23, nil}}, true},
		{"DF24 certificate with 82 length", testutil.Cat(testutil.Hex(t, "DF 24 82 02 A7"), cert),
			[]TLV{{0xDF24, cert}}, true},
		{"7F49 1024-bit key, 81 lengths", pk1024,
			[]TLV{{0x7F49, pk1024[4:]}}, true},
		{"7F49 2048-bit key, 82 lengths", pk2048,
			[]TLV{{0x7F49, pk2048[5:]}}, true},
		{"FMD with 5F2F", testutil.Hex(t, "64 09 5F 2F 01 60 7F 65 02 80 00"),
			[]TLV{{0x64, testutil.Hex(t, "5F 2F 01 60 7F 65 02 80 00")}}, true},
		{"FCI", testutil.Hex(t, "61 12 4F 0B A0 00 00 03 97 42 54 46 59 02 01 73 03 40 01 C0"),
			[]TLV{{0x61, testutil.Hex(t, "4F 0B A0 00 00 03 97 42 54 46 59 02 01 73 03 40 01 C0")}}, true},
		{"three-byte tag", testutil.Hex(t, "9F 81 02 01 AA"), []TLV{{0x9F8102, []byte{0xAA}}}, true},
		{"four-byte tag", testutil.Hex(t, "DF 81 82 03 00"), []TLV{{0xDF818203, nil}}, true},
		{"127-byte value, short length", testutil.Cat(testutil.Hex(t, "53 7F"), testutil.Seq(127)), []TLV{{0x53, testutil.Seq(127)}}, true},
		{"non-minimal 81 05", testutil.Hex(t, "DF 23 81 02 AA BB"), []TLV{{0xDF23, testutil.Hex(t, "AA BB")}}, false},
		{"non-minimal 82 0002", testutil.Hex(t, "DF 23 82 00 02 AA BB"), []TLV{{0xDF23, testutil.Hex(t, "AA BB")}}, false},
		{"non-minimal 83", testutil.Hex(t, "DF 23 83 00 00 02 AA BB"), []TLV{{0xDF23, testutil.Hex(t, "AA BB")}}, false},
		{"non-minimal 84", testutil.Hex(t, "DF 23 84 00 00 00 02 AA BB"), []TLV{{0xDF23, testutil.Hex(t, "AA BB")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d := cmp.Diff(tt.want, got, equateEmpty); d != "" {
				t.Fatalf("Parse (-want +got):\n%s", d)
			}
			var enc []byte
			for _, tlv := range got {
				enc = Append(enc, tlv.Tag, tlv.Value)
			}
			if tt.canonical && !bytes.Equal(enc, tt.in) {
				t.Errorf("re-encoding\n % X\nwant\n % X", enc, tt.in)
			}
			again, err := Parse(enc)
			if err != nil {
				t.Fatalf("Parse(re-encoding): %v", err)
			}
			if d := cmp.Diff(got, again, equateEmpty); d != "" {
				t.Errorf("round trip (-first +second):\n%s", d)
			}
		})
	}
}

// TestNestedPublicKey walks the 7F49 template the way OpenSC does
// (docs/reference/gids-protocol.md §2.10): find 7F49, then 81 and 82 inside it.
func TestNestedPublicKey(t *testing.T) {
	mod := testutil.Seq(256)
	pk := rsaPubKey(t, "7F 49 82 01 09", mod, "81 82 01 00")
	v, ok, err := Find(pk, 0x7F49)
	if err != nil || !ok {
		t.Fatalf("Find 7F49: %v %v", ok, err)
	}
	if !IsConstructed(0x7F49) {
		t.Error("7F49 must be constructed")
	}
	n, ok, err := Find(v, 0x81)
	if err != nil || !ok || !bytes.Equal(n, mod) {
		t.Errorf("modulus: ok=%v err=%v len=%d", ok, err, len(n))
	}
	e, ok, err := Find(v, 0x82)
	if err != nil || !ok || !bytes.Equal(e, []byte{1, 0, 1}) {
		t.Errorf("exponent: % X ok=%v err=%v", e, ok, err)
	}
	// Built with Encode, the same template must come out byte for byte.
	built := Encode(0x7F49, testutil.Cat(Encode(0x81, mod), Encode(0x82, []byte{1, 0, 1})))
	if !bytes.Equal(built, pk) {
		t.Errorf("Encode built\n % X\nwant\n % X", built, pk)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		offset int
		msg    string // substring of the message
	}{
		{"00 padding", "00 DF 23 00", 0, "padding"},
		{"FF padding", "FF", 0, "padding"},
		{"padding after an object", "DF 23 00 00", 3, "padding"},
		{"truncated tag", "DF", 1, "tag truncated"},
		{"truncated multi-byte tag", "DF 81", 2, "tag truncated"},
		{"tag longer than 4 bytes", "DF 81 81 81 01 00", 0, "longer than 4"},
		{"missing length", "DF 23", 2, "missing length"},
		{"indefinite length", "DF 23 80 00 00", 2, "indefinite"},
		{"truncated 81", "DF 23 81", 2, "needs 1 more"},
		{"truncated 82", "DF 23 82 01", 2, "needs 2 more"},
		{"85 form", "DF 23 85 00 00 00 00 01 AA", 2, "not supported"},
		{"value beyond buffer", "DF 23 05 01 02", 2, "exceeds"},
		{"81 value beyond buffer", "7F 49 81 88 81 81 80", 2, "exceeds"},
		{"second object broken", "DF 23 00 DF 24 03 01", 5, "exceeds"},
		{"huge 84 length", "DF 23 84 FF FF FF FF 00", 2, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testutil.Hex(t, tt.in)
			got, err := Parse(in)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(% X) = %v, %v; want *Error", in, got, err)
			}
			if e.Offset != tt.offset || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got %v, want offset %d and %q", e, tt.offset, tt.msg)
			}
		})
	}

	// The GIDS public-key request: A5's value is a tag list (7F 49 80),
	// not a TLV, so strict parsing of it must fail while ParseTag reads it.
	req := testutil.Hex(t, "70 08 84 01 81 A5 03 7F 49 80")
	outer, err := Parse(req)
	if err != nil || len(outer) != 1 || outer[0].Tag != 0x70 {
		t.Fatalf("outer: %v %v", outer, err)
	}
	a5, ok, err := Find(outer[0].Value, 0xA5)
	if err != nil || !ok {
		t.Fatalf("A5: %v %v", ok, err)
	}
	if _, err := Parse(a5); err == nil {
		t.Error("7F 49 80 parsed as a TLV")
	}
	if tag, n, err := ParseTag(a5); err != nil || tag != 0x7F49 || n != 2 {
		t.Errorf("ParseTag(% X) = %X, %d, %v", a5, tag, n, err)
	}
}

func TestParseOne(t *testing.T) {
	in := testutil.Hex(t, "DF 23 00 DF 22 01 AA")
	tlv, rest, err := ParseOne(in)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(TLV{Tag: 0xDF23}, tlv, equateEmpty); d != "" {
		t.Errorf("first (-want +got):\n%s", d)
	}
	if !bytes.Equal(rest, in[3:]) {
		t.Errorf("rest = % X", rest)
	}
	if _, _, err := ParseOne(nil); err == nil {
		t.Error("ParseOne(nil) succeeded")
	}
}

func TestParseAppendDoesNotClobber(t *testing.T) {
	in := testutil.Hex(t, "DF 22 01 AA DF 23 00")
	tlvs, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(tlvs[0].Value, 0xEE)
	if in[4] != 0xDF {
		t.Errorf("append to a value overwrote the next object: % X", in)
	}
}

func TestFind(t *testing.T) {
	seqIn := testutil.Hex(t, "DF 21 01 11 DF 22 01 22 DF 22 01 33")
	tests := []struct {
		name    string
		in      []byte
		tag     uint32
		want    []byte
		ok, err bool
	}{
		{"first", seqIn, 0xDF21, []byte{0x11}, true, false},
		{"first of duplicates", seqIn, 0xDF22, []byte{0x22}, true, false},
		{"absent", seqIn, 0xDF24, nil, false, false},
		{"empty input", nil, 0xDF24, nil, false, false},
		{"found before garbage", testutil.Hex(t, "DF 21 01 11 00 00"), 0xDF21, []byte{0x11}, true, false},
		{"garbage before target", testutil.Hex(t, "DF 21 09 11 DF 22 01 22"), 0xDF22, nil, false, true},
		{"not recursive", testutil.Hex(t, "70 03 84 01 81"), 0x84, nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok, err := Find(tt.in, tt.tag)
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if ok != tt.ok || !bytes.Equal(v, tt.want) {
				t.Errorf("Find = % X, %v; want % X, %v", v, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestEncodeLength(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{0, "00"}, {1, "01"}, {0x7F, "7F"},
		{0x80, "81 80"}, {0x88, "81 88"}, {0xFF, "81 FF"},
		{0x100, "82 01 00"}, {0x109, "82 01 09"}, {0x2A7, "82 02 A7"}, {0xFFFF, "82 FF FF"},
		{0x10000, "83 01 00 00"}, {0xFFFFFF, "83 FF FF FF"},
		{0x1000000, "84 01 00 00 00"}, {0xFFFFFFFF, "84 FF FF FF FF"},
	}
	for _, tt := range tests {
		got := EncodeLength(tt.n)
		if want := testutil.Hex(t, tt.want); !bytes.Equal(got, want) {
			t.Errorf("EncodeLength(%#x) = % X, want % X", tt.n, got, want)
		}
		n, used, err := ParseLength(got)
		if err != nil || n != tt.n || used != len(got) {
			t.Errorf("ParseLength(% X) = %d, %d, %v", got, n, used, err)
		}
	}
	for _, n := range []int{-1, 0x100000000} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("EncodeLength(%d) did not panic", n)
				}
			}()
			EncodeLength(n)
		}()
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name  string
		tag   uint32
		value []byte
		want  []byte
	}{
		{"empty DO", 0xDF23, nil, testutil.Hex(t, "DF 23 00")},
		{"one-byte tag", 0x84, []byte{0x81}, testutil.Hex(t, "84 01 81")},
		{"5F2F", 0x5F2F, []byte{0x60}, testutil.Hex(t, "5F 2F 01 60")},
		{"128 bytes gets 81", 0xDF24, testutil.Seq(128), testutil.Cat(testutil.Hex(t, "DF 24 81 80"), testutil.Seq(128))},
		{"256 bytes gets 82", 0x81, testutil.Seq(256), testutil.Cat(testutil.Hex(t, "81 82 01 00"), testutil.Seq(256))},
		{"three-byte tag", 0x9F8102, []byte{0xAA}, testutil.Hex(t, "9F 81 02 01 AA")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Encode(tt.tag, tt.value); !bytes.Equal(got, tt.want) {
				t.Errorf("Encode = % X, want % X", got, tt.want)
			}
			prefix := []byte{0xEE}
			if got := Append(prefix, tt.tag, tt.value); !bytes.Equal(got, testutil.Cat(prefix, tt.want)) {
				t.Errorf("Append = % X", got)
			}
		})
	}
}

func TestTags(t *testing.T) {
	tests := []struct {
		tag         uint32
		bytes       string
		constructed bool
		valid       bool
	}{
		{0x84, "84", false, true},
		{0x70, "70", true, true},
		{0xA5, "A5", true, true},
		{0x62, "62", true, true},
		{0x5F2F, "5F 2F", false, true},
		{0x7F49, "7F 49", true, true},
		{0xDF24, "DF 24", false, true},
		{0xBF8102, "BF 81 02", true, true},
		{0x00, "00", false, false},
		{0xFF, "FF", true, false},
		{0x5F, "5F", false, false},      // announces a second byte
		{0x4F2F, "4F 2F", false, false}, // 4F is a one-byte tag
		{0x5F81, "5F 81", false, false}, // continuation bit on the last byte
		{0x1F2F3F, "1F 2F 3F", false, false},
	}
	for _, tt := range tests {
		if got := TagBytes(tt.tag); !bytes.Equal(got, testutil.Hex(t, tt.bytes)) {
			t.Errorf("TagBytes(%X) = % X", tt.tag, got)
		}
		if got := IsConstructed(tt.tag); got != tt.constructed {
			t.Errorf("IsConstructed(%X) = %v", tt.tag, got)
		}
		if got := ValidTag(tt.tag); got != tt.valid {
			t.Errorf("ValidTag(%X) = %v", tt.tag, got)
		}
	}
}
