package fs

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

func TestCardCFVectors(t *testing.T) {
	testutil.CheckVectors(t, ParseCardCF, testutil.NoError(CardCF.Bytes), []testutil.Vector[CardCF]{
		{Name: "after gids-tool --initialize (§3.2)", In: testutil.Hex(t, "00 00 00 00 00 00"), Want: CardCF{}},
		{Name: "after one 2048-bit key generation (§3.5)", In: testutil.Hex(t, "00 00 01 00 02 00"),
			Want: CardCF{ContainersFreshness: 1, FilesFreshness: 2}},
		{Name: "after also storing its certificate (§3.5)", In: testutil.Hex(t, "00 00 01 00 04 00"),
			Want: CardCF{ContainersFreshness: 1, FilesFreshness: 4}},
		{Name: "written by the Windows inbox minidriver (semantics §1.1)", In: testutil.Hex(t, "00 00 19 00 4B 00"),
			Want: CardCF{ContainersFreshness: 0x19, FilesFreshness: 0x4B}},
		{Name: "version 1 (cardmod.h current)", In: testutil.Hex(t, "01 07 34 12 78 56"),
			Want: CardCF{Version: 1, PinsFreshness: 7, ContainersFreshness: 0x1234, FilesFreshness: 0x5678}},
		{Name: "per-application DWORDs preserved", In: testutil.Hex(t, "00 01 02 00 03 00 AA BB CC DD 01"),
			Want: CardCF{PinsFreshness: 1, ContainersFreshness: 2, FilesFreshness: 3, Extra: []byte{0xAA, 0xBB, 0xCC, 0xDD, 0x01}}},
	})
}

func TestCardCFExtraIsCopied(t *testing.T) {
	in := testutil.Hex(t, "00 00 00 00 00 00 11 22 33 44")
	c, err := ParseCardCF(in)
	if err != nil {
		t.Fatal(err)
	}
	in[6] = 0xFF
	if c.Extra[0] != 0x11 {
		t.Error("Extra aliases the input")
	}
}

func TestCardCFErrors(t *testing.T) {
	checkParseErrors(t, ParseCardCF, []formatErrCase[[]byte]{
		{"empty", nil, FormatError{File: "cardcf", Offset: 0}, "0 bytes, want at least 6"},
		{"five bytes", testutil.Hex(t, "00 00 01 00 02"), FormatError{File: "cardcf", Offset: 5}, "5 bytes"},
		{"version 2", testutil.Hex(t, "02 00 00 00 00 00"), FormatError{File: "cardcf", Offset: 0}, "bVersion 2"},
		{"version FF", testutil.Hex(t, "FF 00 00 00 00 00 00 00"), FormatError{File: "cardcf", Offset: 0}, "bVersion 255"},
	})
}

func TestCardCFBumpWraps(t *testing.T) {
	c := CardCF{Version: 1, PinsFreshness: 0xFF, ContainersFreshness: 0xFFFF, FilesFreshness: 0xFFFF}
	c.BumpPins()
	c.BumpContainers()
	c.BumpFiles()
	if d := cmp.Diff(CardCF{Version: 1}, c); d != "" {
		t.Errorf("after wrap (-want +got):\n%s", d)
	}
	// OpenSC's sequence for a key generation then a certificate store
	// (docs/reference/gids-protocol.md §3.5): files, containers, files, then files twice.
	var s CardCF
	s.BumpFiles()
	s.BumpContainers()
	s.BumpFiles()
	if got := s.Bytes(); !bytes.Equal(got, testutil.Hex(t, "00 00 01 00 02 00")) {
		t.Errorf("after key generation % X", got)
	}
	s.Bump(CategoryFiles)
	s.Bump(CategoryFiles)
	if got := s.Bytes(); !bytes.Equal(got, testutil.Hex(t, "00 00 01 00 04 00")) {
		t.Errorf("after certificate store % X", got)
	}
	s.Bump(AllCategories)
	if d := cmp.Diff(CardCF{PinsFreshness: 1, ContainersFreshness: 2, FilesFreshness: 5}, s); d != "" {
		t.Errorf("Bump(all) (-want +got):\n%s", d)
	}
}

func TestCardCFChanged(t *testing.T) {
	base := CardCF{PinsFreshness: 3, ContainersFreshness: 10, FilesFreshness: 20}
	tests := []struct {
		name  string
		other CardCF
		diff  Category
	}{
		{"identical", base, 0},
		{"version differs only", CardCF{Version: 1, PinsFreshness: 3, ContainersFreshness: 10, FilesFreshness: 20}, 0},
		{"extra differs only", CardCF{PinsFreshness: 3, ContainersFreshness: 10, FilesFreshness: 20, Extra: []byte{1, 2, 3, 4}}, 0},
		{"pins", CardCF{PinsFreshness: 4, ContainersFreshness: 10, FilesFreshness: 20}, CategoryPins},
		{"containers", CardCF{PinsFreshness: 3, ContainersFreshness: 11, FilesFreshness: 20}, CategoryContainers},
		{"files", CardCF{PinsFreshness: 3, ContainersFreshness: 10, FilesFreshness: 21}, CategoryFiles},
		{"lower is also a change (inequality, not order)", CardCF{PinsFreshness: 3, ContainersFreshness: 9, FilesFreshness: 19},
			CategoryContainers | CategoryFiles},
		{"all", CardCF{}, AllCategories},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := base.Diff(tt.other); got != tt.diff {
				t.Errorf("Diff = %v, want %v", got, tt.diff)
			}
			if got := tt.other.Diff(base); got != tt.diff {
				t.Errorf("Diff is not symmetric: %v", got)
			}
			if got := base.Changed(tt.other); got != (tt.diff != 0) {
				t.Errorf("Changed = %v", got)
			}
			for _, c := range []Category{CategoryPins, CategoryContainers, CategoryFiles} {
				if got, want := base.ChangedIn(tt.other, c), tt.diff&c != 0; got != want {
					t.Errorf("ChangedIn(%v) = %v, want %v", c, got, want)
				}
			}
		})
	}
	// A full wrap is invisible; that is the documented ABA case.
	wrapped := base
	for range 1 << 16 {
		wrapped.BumpFiles()
	}
	if base.Changed(wrapped) {
		t.Error("2^16 bumps should be indistinguishable from none")
	}
}

func TestCategoryString(t *testing.T) {
	for c, want := range map[Category]string{
		0:                                  "none",
		CategoryPins:                       "pins",
		CategoryContainers | CategoryFiles: "containers|files",
		AllCategories:                      "pins|containers|files",
		0x80 | CategoryPins:                "pins|unknown",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(c), got, want)
		}
	}
}
