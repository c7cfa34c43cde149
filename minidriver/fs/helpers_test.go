package fs

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func zeros(n int) []byte { return make([]byte, n) }

// Vectors quoted in docs/reference/gids-protocol.md and docs/reference/minidriver-semantics.md.
const (
	// docs/reference/gids-protocol.md §3.3, "Complete initial value (141 bytes …)".
	hexInitialMasterFile = `01 6D 73 63 70 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 A0 00 00 00
00 00 00 00 00 00 00 00 63 61 72 64 69 64 00 00 00 00 00 20 DF 00 00 12 A0 00 00 00 00 00 00 00 00 00
00 00 63 61 72 64 61 70 70 73 00 00 00 21 DF 00 00 10 A0 00 00 00 00 00 00 00 00 00 00 00 63 61 72 64
63 66 00 00 00 00 00 22 DF 00 00 10 A0 00 00 6D 73 63 70 00 00 00 00 00 63 6D 61 70 66 69 6C 65 00 00
00 23 DF 00 00 10 A0 00 00`
	// docs/reference/gids-protocol.md §3.3, the record appended for the first
	// certificate: `6D 73 63 70 00×5 | 6B 78 63 30 30 00×4 | 00 00 |
	// 24 DF 00 00 | 10 A0 00 00`.
	hexKxc00Record = `6D 73 63 70 00 00 00 00 00  6B 78 63 30 30 00 00 00 00  00 00  24 DF 00 00  10 A0 00 00`
	// docs/reference/gids-protocol.md §3.3, record 2 of the initial value.
	hexCardIDRecord = `00 00 00 00 00 00 00 00 00  63 61 72 64 69 64 00 00 00  00 00  20 DF 00 00  12 A0 00 00`
	// docs/reference/gids-protocol.md §3.6, `DF 20 0D 01 01 00 00 00 07 9A 81 B0 FF FF 00 00`.
	hexKeyMapOne = `01 01 00 00 00 07 9A 81 B0 FF FF 00 00`
	// docs/reference/gids-protocol.md §5.5, keymap record 0 after deletion.
	hexKeyRecordDeleted = `00 00 00 00 00 00 FF FF FF FF 00 00`
	// docs/reference/gids-protocol.md §3.2 / §2.14, cardapps after initialize.
	hexCardApps = `6D 73 63 70 00 00 00 00`
)

var equateEmpty = cmpopts.EquateEmpty()

// checkFormatErr asserts err is a *FormatError with want's File and
// Offset and a message containing msg (the record/field it names).
// checkFormatErrOrNil is checkFormatErr for tables where a nil want means
// the input is valid.
func checkFormatErrOrNil(t *testing.T, err error, want *FormatError, msg string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	checkFormatErr(t, err, *want, msg)
}

func checkFormatErr(t *testing.T, err error, want FormatError, msg string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want *FormatError", err, err)
	}
	if d := cmp.Diff(want, *fe, cmpopts.IgnoreFields(FormatError{}, "Msg")); d != "" {
		t.Errorf("FormatError mismatch (-want +got):\n%s\nmessage: %s", d, fe.Msg)
	}
	if !strings.Contains(fe.Msg, msg) {
		t.Errorf("message %q does not contain %q", fe.Msg, msg)
	}
	if !strings.HasPrefix(fe.Error(), "fs: "+want.File+": ") {
		t.Errorf("Error() = %q", fe.Error())
	}
}

// formatErrCase is one row of an error table: doing the test's operation
// on in must fail as checkFormatErr(want, msg) says.
type formatErrCase[In any] struct {
	name string
	in   In
	want FormatError
	msg  string
}

// checkParseErrors runs a table of inputs parse must refuse, one subtest
// a row.
func checkParseErrors[T any](t *testing.T, parse func([]byte) (T, error), tests []formatErrCase[[]byte]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(tt.in)
			checkFormatErr(t, err, tt.want, tt.msg)
		})
	}
}
