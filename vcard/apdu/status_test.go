package apdu

import (
	"errors"
	"fmt"
	"testing"
)

func TestStatusStrings(t *testing.T) {
	tests := []struct {
		sw   Status
		want string
	}{
		{SWOK, "9000 success"},
		{SWFileNotFound, "6A82 file or application not found"},
		{SWWrongLength, "6700 wrong length"},
		{RetriesLeft(2), "63C2 verification failed, 2 retries left"},
		{BytesRemaining(14), "610E 14 response bytes available"},
		{BytesRemaining(300), "6100 256 or more response bytes available"},
		{ExactLength(16), "6C10 wrong Le, 16 bytes available"},
		{0x6A99, "6A99 wrong parameters P1-P2"},
		{0x9123, "9123 normal processing (proprietary)"},
		{0x0000, "0000 invalid status word"},
	}
	for _, tt := range tests {
		if got := tt.sw.Error(); got != tt.want {
			t.Errorf("%04X.Error() = %q, want %q", uint16(tt.sw), got, tt.want)
		}
		if got := tt.sw.String(); got != tt.want {
			t.Errorf("%04X.String() = %q, want %q", uint16(tt.sw), got, tt.want)
		}
	}
}

func TestStatusBuilders(t *testing.T) {
	tests := []struct {
		got, want Status
	}{
		{RetriesLeft(0), 0x63C0},
		{RetriesLeft(3), 0x63C3},
		{RetriesLeft(15), 0x63CF},
		{RetriesLeft(99), 0x63CF},
		{RetriesLeft(-1), 0x63C0},
		{BytesRemaining(1), 0x6101},
		{BytesRemaining(255), 0x61FF},
		{BytesRemaining(256), 0x6100},
		{BytesRemaining(100000), 0x6100},
		{ExactLength(256), 0x6C00},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %04X, want %04X", uint16(tt.got), uint16(tt.want))
		}
	}
	if s := Status(0x6A82); s.SW1() != 0x6A || s.SW2() != 0x82 {
		t.Errorf("SW1/SW2 = %02X %02X", s.SW1(), s.SW2())
	}
	if !SWOK.OK() || BytesRemaining(5).OK() || SWFileNotFound.OK() {
		t.Error("OK() must be true for 9000 only")
	}
	if n, ok := RetriesLeft(2).Retries(); !ok || n != 2 {
		t.Errorf("Retries() = %d, %v", n, ok)
	}
	if _, ok := SWVerifyFailed.Retries(); ok {
		t.Error("6300 has no retry counter")
	}
}

func TestStatusErrorsIs(t *testing.T) {
	wrap := func(s Status) error { return fmt.Errorf("handler: %w", s) }
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"exact wrapped", wrap(SWFileNotFound), SWFileNotFound, true},
		{"different wrapped", wrap(SWFileNotFound), SWReferencedDataNotFound, false},
		{"63Cx is verify failed", wrap(RetriesLeft(2)), SWVerifyFailed, true},
		{"63C0 is verify failed", RetriesLeft(0), SWVerifyFailed, true},
		{"6300 is itself", SWVerifyFailed, SWVerifyFailed, true},
		{"one-way", SWVerifyFailed, RetriesLeft(2), false},
		{"63Cx is not another 63Cx", RetriesLeft(1), RetriesLeft(2), false},
		{"6983 is not verify failed", SWAuthMethodBlocked, SWVerifyFailed, false},
		{"61xx family", wrap(BytesRemaining(14)), SWBytesRemaining, true},
		{"6Cxx family", ExactLength(14), SWWrongLe, true},
		{"6A82 not 6A00 family", SWFileNotFound, Status(0x6A00), false},
		{"non-status target", SWFileNotFound, errors.New("x"), false},
	}
	for _, tt := range tests {
		if got := errors.Is(tt.err, tt.target); got != tt.want {
			t.Errorf("%s: errors.Is(%v, %v) = %v", tt.name, tt.err, tt.target, got)
		}
	}
	var sw Status
	if !errors.As(wrap(SWSecurityStatusNotSatisfied), &sw) || sw != SWSecurityStatusNotSatisfied {
		t.Errorf("errors.As gave %v", sw)
	}
}

// TestStatusConstants pins the numeric values, since a typo in a status
// constant would silently change what the card tells OpenSC.
func TestStatusConstants(t *testing.T) {
	want := map[Status]uint16{
		SWOK: 0x9000, SWBytesRemaining: 0x6100, SWDataCorrupted: 0x6281, SWEndOfFile: 0x6282,
		SWTerminated: 0x6285, SWVerifyFailed: 0x6300, SWMemoryFailure: 0x6581,
		SWWrongLength: 0x6700, SWLogicalChannelNotSupported: 0x6881, SWSMNotSupported: 0x6882,
		SWLastCommandExpected: 0x6883, SWChainingNotSupported: 0x6884,
		SWCommandNotAllowed: 0x6900, SWIncompatibleFileStructure: 0x6981,
		SWSecurityStatusNotSatisfied: 0x6982, SWAuthMethodBlocked: 0x6983,
		SWReferenceDataNotUsable: 0x6984, SWConditionsNotSatisfied: 0x6985,
		SWCommandNotAllowedNoCurrentEF: 0x6986, SWWrongData: 0x6A80, SWFuncNotSupported: 0x6A81,
		SWFileNotFound: 0x6A82, SWRecordNotFound: 0x6A83, SWNotEnoughMemory: 0x6A84,
		SWIncorrectP1P2: 0x6A86, SWLcInconsistentWithP1P2: 0x6A87,
		SWReferencedDataNotFound: 0x6A88, SWFileExists: 0x6A89, SWWrongP1P2: 0x6B00,
		SWWrongLe: 0x6C00, SWINSNotSupported: 0x6D00, SWCLANotSupported: 0x6E00, SWUnknown: 0x6F00,
	}
	for s, v := range want {
		if uint16(s) != v {
			t.Errorf("constant %v = %04X, want %04X", s, uint16(s), v)
		}
	}
}
