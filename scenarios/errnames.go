package scenarios

import (
	"github.com/cardharness/cardharness/winerr"
)

// The scenario's names for Windows codes are winerr's (a name or a hex
// value); an error's code is what it unwraps to.

func validErrorName(name string) bool { _, ok := winerr.Parse(name); return ok }

func errorCode(name string) uint32 { c, _ := winerr.Parse(name); return uint32(c) }

func codeOf(err error) (uint32, bool) { c, ok := winerr.FromError(err); return uint32(c), ok }

// errorNames lists every name expect: {error: ...} accepts (for
// suggestions).
func errorNames() []string { return append([]string{"none"}, winerr.Names()...) }
