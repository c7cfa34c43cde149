package apdu

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cardharness/cardharness/internal/testutil"
)

var cmpCommand = cmpopts.EquateEmpty()

func TestParseCommandVectors(t *testing.T) {
	long := testutil.Seq(300)
	testutil.CheckVectors(t, ParseCommand, Command.Bytes, []testutil.Vector[Command]{
		{Name: "case 1 logout", In: testutil.Hex(t, "00 20 00 82"),
			Want: Command{INS: 0x20, P2: 0x82}},
		{Name: "case 1 activate", In: testutil.Hex(t, "00 44 00 00"),
			Want: Command{INS: 0x44}},
		{Name: "case 2S Le=00 is 256", In: testutil.Hex(t, "00 C0 00 00 00"),
			Want: Command{INS: 0xC0, Ne: 256, HasLe: true}},
		{Name: "case 2S Le=0E", In: testutil.Hex(t, "00 C0 00 00 0E"),
			Want: Command{INS: 0xC0, Ne: 14, HasLe: true}},
		{Name: "case 3S verify", In: testutil.Hex(t, "00 20 00 80 06 31 32 33 34 35 36"),
			Want: Command{INS: 0x20, P2: 0x80, Data: []byte("123456")}},
		{Name: "case 3S generate (no Le)", In: testutil.Hex(t, "00 47 00 00 08 AC 06 80 01 07 83 01 81"),
			Want: Command{INS: 0x47, Data: testutil.Hex(t, "AC 06 80 01 07 83 01 81")}},
		{Name: "case 4S select GIDS", In: testutil.Hex(t, "00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00"),
			Want: Command{INS: 0xA4, P1: 4, Data: testutil.Hex(t, "A0 00 00 03 97 42 54 46 59"), Ne: 256, HasLe: true}},
		{Name: "case 4S windows generate Le=8C", In: testutil.Hex(t, "00 47 00 00 08 AC 06 80 01 06 83 01 81 8C"),
			Want: Command{INS: 0x47, Data: testutil.Hex(t, "AC 06 80 01 06 83 01 81"), Ne: 0x8C, HasLe: true}},
		{Name: "case 4S Lc=FF", In: append(append(testutil.Hex(t, "10 DB A0 10 FF"), testutil.Seq(255)...), 0x00),
			Want: Command{CLA: 0x10, INS: 0xDB, P1: 0xA0, P2: 0x10, Data: testutil.Seq(255), Ne: 256, HasLe: true}},
		{Name: "case 2E Le=0000 is 65536", In: testutil.Hex(t, "00 CB 3F FF 00 00 00"),
			Want: Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Ne: 65536, HasLe: true, Extended: true}},
		{Name: "case 2E Le=0100", In: testutil.Hex(t, "00 CB 3F FF 00 01 00"),
			Want: Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Ne: 256, HasLe: true, Extended: true}},
		{Name: "case 3E Lc=0003", In: testutil.Hex(t, "00 DB A0 10 00 00 03 DF 23 00"),
			Want: Command{INS: 0xDB, P1: 0xA0, P2: 0x10, Data: testutil.Hex(t, "DF 23 00"), Extended: true}},
		{Name: "case 3E Lc=012C", In: append(testutil.Hex(t, "00 2A 80 86 00 01 2C"), long...),
			Want: Command{INS: 0x2A, P1: 0x80, P2: 0x86, Data: long, Extended: true}},
		{Name: "case 4E Le=0000", In: append(append(testutil.Hex(t, "00 2A 9E 9A 00 01 2C"), long...), 0, 0),
			Want: Command{INS: 0x2A, P1: 0x9E, P2: 0x9A, Data: long, Ne: 65536, HasLe: true, Extended: true}},
		{Name: "case 4E Le=0200", In: testutil.Hex(t, "00 2A 9E 9A 00 00 02 AB CD 02 00"),
			Want: Command{INS: 0x2A, P1: 0x9E, P2: 0x9A, Data: testutil.Hex(t, "AB CD"), Ne: 512, HasLe: true, Extended: true}},
	}, cmpCommand)
}

func TestParseCommandDataIsCopy(t *testing.T) {
	in := testutil.Hex(t, "00 20 00 80 02 31 32")
	c, err := ParseCommand(in)
	if err != nil {
		t.Fatal(err)
	}
	in[5] = 'X'
	if string(c.Data) != "12" {
		t.Errorf("Data aliases the input: %q", c.Data)
	}
}

func TestParseCommandErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		field  string
		offset int
	}{
		{"empty", "", "header", 0},
		{"3 bytes", "00 A4 04", "header", 3},
		{"short Lc beyond data", "00 DB A0 10 05 01 02", "data length", 5},
		{"short Lc=FF with one byte", "00 DB A0 10 FF 01", "data length", 5},
		{"short two trailing bytes", "00 20 00 80 02 31 32 00 00", "data length", 7},
		{"extended truncated 00 xx", "00 CB 3F FF 00 01", "Le", 5},
		{"extended Lc=0000 with data", "00 DB A0 10 00 00 00 01", "Lc", 5},
		{"extended Lc=0000 with Le", "00 DB A0 10 00 00 00 01 00", "Lc", 5},
		{"extended Lc beyond data", "00 DB A0 10 00 01 00 01 02 03", "data length", 7},
		{"extended one Le byte", "00 DB A0 10 00 00 02 AA BB 01", "Le", 9},
		{"extended three trailing bytes", "00 DB A0 10 00 00 02 AA BB 01 02 03", "data length", 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testutil.Hex(t, tt.in)
			c, err := ParseCommand(in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseCommand(% X) = %+v, %v; want *ParseError", in, c, err)
			}
			if pe.Field != tt.field || pe.Offset != tt.offset {
				t.Errorf("got field %q offset %d (%v), want %q offset %d", pe.Field, pe.Offset, pe, tt.field, tt.offset)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field", err)
			}
		})
	}
}

func TestCommandBytes(t *testing.T) {
	tests := []struct {
		name string
		c    Command
		want string
	}{
		{"short case 4 Ne=256", Command{INS: 0xCB, P1: 0x3F, P2: 0xFF, Data: []byte{0x5C, 0}, Ne: 256},
			"00 CB 3F FF 02 5C 00 00"},
		{"Ne>256 forces extended", Command{INS: 0xCB, Ne: 257},
			"00 CB 00 00 00 01 01"},
		{"Extended flag honoured", Command{INS: 0xCB, Data: []byte{1}, Ne: 1, Extended: true},
			"00 CB 00 00 00 00 01 01 00 01"},
		{"case 1 ignores Extended", Command{INS: 0x44, Extended: true},
			"00 44 00 00"},
		{"Ne implies Le without HasLe", Command{INS: 0xC0, Ne: 0x0E},
			"00 C0 00 00 0E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if want := testutil.Hex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("Bytes() = % X, want % X", got, want)
			}
		})
	}

	bad := []struct {
		name  string
		c     Command
		field string
	}{
		{"too much data", Command{Data: make([]byte, 65536)}, "data length"},
		{"negative Ne", Command{Ne: -1}, "Le"},
		{"Ne too big", Command{Ne: 65537}, "Le"},
		{"HasLe without Ne", Command{HasLe: true}, "Le"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Bytes()
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Field != tt.field {
				t.Errorf("Bytes() error = %v, want ParseError on %q", err, tt.field)
			}
		})
	}
}

func TestChained(t *testing.T) {
	for cla, want := range map[byte]bool{0x00: false, 0x10: true, 0x1C: true, 0x0C: false} {
		if got := (Command{CLA: cla}).Chained(); got != want {
			t.Errorf("CLA %02X Chained() = %v", cla, got)
		}
	}
}

func TestResponse(t *testing.T) {
	testutil.CheckVectors(t, ParseResponse, testutil.NoError(Response.Bytes), []testutil.Vector[Response]{
		{Name: "SW only", In: testutil.Hex(t, "90 00"), Want: Response{SW: SWOK}},
		{Name: "data", In: testutil.Hex(t, "DF 23 00 90 00"), Want: Response{Data: testutil.Hex(t, "DF 23 00"), SW: SWOK}},
		{Name: "61xx", In: testutil.Hex(t, "01 02 61 0E"), Want: Response{Data: []byte{1, 2}, SW: 0x610E}},
	})
	for _, in := range [][]byte{nil, {0x90}} {
		_, err := ParseResponse(in)
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Field != "SW" {
			t.Errorf("ParseResponse(% X) error = %v, want ParseError on SW", in, err)
		}
	}
	if got := Err(SWFileNotFound).Bytes(); !bytes.Equal(got, []byte{0x6A, 0x82}) {
		t.Errorf("Err(6A82).Bytes() = % X", got)
	}
}

func TestShort(t *testing.T) {
	tests := []struct {
		data []byte
		le   bool
		want string
	}{
		{nil, false, "00 A4 04 00"},
		{nil, true, "00 A4 04 00 00"},
		{[]byte{0x3F, 0xFF}, false, "00 A4 04 00 02 3F FF"},
		{[]byte{0x3F, 0xFF}, true, "00 A4 04 00 02 3F FF 00"},
	}
	for _, tt := range tests {
		if got := Short(0x00, 0xA4, 0x04, 0x00, tt.data, tt.le); !bytes.Equal(got, testutil.Hex(t, tt.want)) {
			t.Errorf("Short(% X, %v) = % X, want %s", tt.data, tt.le, got, tt.want)
		}
	}
}
