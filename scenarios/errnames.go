package scenarios

import (
	"errors"
	"strconv"
	"strings"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/winerr"
)

// Windows error names in expect: {error: ...}: any name winerr or the CA
// knows, or a hex value.

func validErrorName(name string) bool {
	_, ok := lookupErrorName(name)
	return ok
}

func errorCode(name string) uint32 {
	c, _ := lookupErrorName(name)
	return c
}

func lookupErrorName(name string) (uint32, bool) {
	if c, ok := winerr.ByName(name); ok {
		return uint32(c), true
	}
	if c, ok := caCodeByName(name); ok {
		return c, true
	}
	lower := strings.ToLower(name)
	if !strings.HasPrefix(lower, "0x") {
		return 0, false
	}
	v, err := strconv.ParseUint(lower[2:], 16, 32)
	return uint32(v), err == nil
}

// errorNames lists every name expect: {error: ...} accepts (for
// suggestions).
func errorNames() []string {
	names := append([]string{"none"}, winerr.Names()...)
	for _, c := range caCodes {
		names = append(names, c.Name())
	}
	return names
}

// caCodes are the CA's status codes that are not (yet) in winerr, so that
// a code the CA returns can be named in a scenario.
var caCodes = []ca.Code{
	ca.ERROR_INVALID_DATA, ca.E_ACCESSDENIED, ca.ERROR_NOT_FOUND, ca.NTE_BAD_SIGNATURE,
	ca.CRYPT_E_AUTH_ATTR_MISSING, ca.CRYPT_E_HASH_VALUE, ca.CRYPT_E_SIGNER_NOT_FOUND,
	ca.CRYPT_E_REVOKED, ca.CERT_E_EXPIRED, ca.CERT_E_CHAINING, ca.CERTSRV_E_BAD_REQUESTSUBJECT,
	ca.CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE, ca.CERTSRV_E_ENROLL_DENIED, ca.CERTSRV_E_TEMPLATE_DENIED,
	ca.CERTSRV_E_ADMIN_DENIED_REQUEST, ca.CERTSRV_E_UNSUPPORTED_CERT_TYPE, ca.CERTSRV_E_NO_CERT_TYPE,
	ca.CERTSRV_E_BAD_RENEWAL_SUBJECT, ca.CERTSRV_E_BAD_TEMPLATE_VERSION, ca.CERTSRV_E_SIGNATURE_COUNT,
	ca.CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY,
}

func caCodeByName(name string) (uint32, bool) {
	for _, c := range caCodes {
		if c.Name() == name {
			return uint32(c), true
		}
	}
	return 0, false
}

// codeOf extracts the Windows code of an error, from winerr or the CA.
func codeOf(err error) (uint32, bool) {
	var c winerr.Code
	if errors.As(err, &c) {
		return uint32(c), true
	}
	if cc := ca.CodeOf(err); cc != 0 {
		return uint32(cc), true
	}
	// Errors that match a code through an Is method (winhost.Error).
	for _, n := range winerr.Names() {
		c, _ := winerr.ByName(n)
		if errors.Is(err, c) {
			return uint32(c), true
		}
	}
	return 0, false
}
