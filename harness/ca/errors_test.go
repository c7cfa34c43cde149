package ca

import (
	"errors"
	"testing"

	"github.com/cardharness/cardharness/winerr"
)

// codeOf is the Windows code a status carries, 0 for none (nil).
func codeOf(err error) winerr.Code {
	c, _ := winerr.FromError(err)
	return c
}

func TestRequestErrorUnwrapsToCode(t *testing.T) {
	cause := errors.New("asn1: syntax error")
	err := error(wrapErr(winerr.CERTSRV_E_UNSUPPORTED_CERT_TYPE, 5, cause, "template %q", "X"))
	var code winerr.Code
	if !errors.As(err, &code) || code != winerr.CERTSRV_E_UNSUPPORTED_CERT_TYPE {
		t.Errorf("errors.As gave %v, want CERTSRV_E_UNSUPPORTED_CERT_TYPE", code)
	}
	if !errors.Is(err, cause) {
		t.Error("the cause is not reachable with errors.Is")
	}
	want := `CERTSRV_E_UNSUPPORTED_CERT_TYPE (0x80094800): the requested template is not supported by this CA [check 5]: template "X": asn1: syntax error`
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q\nwant      %q", got, want)
	}
}
