// Package winerr holds the Windows error codes that smart-card middleware
// returns, as typed values: the minidriver API (SCARD_*), the CSPs (NTE_*),
// CryptoAPI (CRYPT_E_*) and certificate services (CERTSRV_E_*). A bug
// report that says "0x8009200B" should match a harness assertion that says
// CRYPT_E_NO_KEY_PROPERTY, so every code carries both its name and its hex
// value, and compares with errors.Is.
package winerr

import "fmt"

// Code is a Windows HRESULT / SCARD status as returned by the API.
type Code uint32

// The codes the harness produces or expects. Values are from winerror.h
// and winscard.h (the names are the Windows names, hence the underscores).
const (
	// Smart card subsystem (SCARD_*): minidriver and WinSCard results.
	SCARD_E_CANCELLED              Code = 0x80100002
	SCARD_E_INVALID_PARAMETER      Code = 0x80100004
	SCARD_E_NO_SMARTCARD           Code = 0x8010000C
	SCARD_E_NOT_TRANSACTED         Code = 0x80100016
	SCARD_E_FILE_NOT_FOUND         Code = 0x80100024
	SCARD_E_DIR_NOT_FOUND          Code = 0x80100023
	SCARD_E_WRITE_TOO_MANY         Code = 0x80100028
	SCARD_E_INVALID_CHV            Code = 0x8010002A
	SCARD_E_NO_KEY_CONTAINER       Code = 0x80100030
	SCARD_E_UNSUPPORTED_FEATURE    Code = 0x80100022
	SCARD_E_NO_ACCESS              Code = 0x80100027
	SCARD_W_SECURITY_VIOLATION     Code = 0x8010006A
	SCARD_W_WRONG_CHV              Code = 0x8010006B
	SCARD_W_CHV_BLOCKED            Code = 0x8010006C
	SCARD_W_REMOVED_CARD           Code = 0x80100069
	SCARD_W_CARD_NOT_AUTHENTICATED Code = 0x8010006F
	SCARD_W_CACHE_ITEM_NOT_FOUND   Code = 0x80100070
	SCARD_W_CACHE_ITEM_STALE       Code = 0x80100071
	SCARD_W_CACHE_ITEM_TOO_BIG     Code = 0x80100072
	SCARD_F_INTERNAL_ERROR         Code = 0x80100001

	// CSP / KSP (NTE_*).
	NTE_BAD_SIGNATURE             Code = 0x80090006
	NTE_BAD_KEY                   Code = 0x80090003
	NTE_BAD_PUBLIC_KEY            Code = 0x80090015
	NTE_BAD_KEYSET                Code = 0x80090016
	NTE_SILENT_CONTEXT            Code = 0x80090022
	NTE_TOKEN_KEYSET_STORAGE_FULL Code = 0x80090023
	NTE_NO_KEY                    Code = 0x8009000D
	NTE_EXISTS                    Code = 0x8009000F
	NTE_NOT_FOUND                 Code = 0x80090011

	// CryptoAPI.
	CRYPT_E_NO_KEY_PROPERTY Code = 0x8009200B
	CRYPT_E_NOT_FOUND       Code = 0x80092004
	CRYPT_E_REVOKED         Code = 0x80092010

	// Certificate services (the test CA).
	CERTSRV_E_BAD_REQUESTSUBJECT         Code = 0x80094001
	CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE Code = 0x8009400E
	CERTSRV_E_TEMPLATE_DENIED            Code = 0x80094012
	CERT_E_EXPIRED                       Code = 0x800B0101
	ERROR_INVALID_DATA                   Code = 0x8007000D
)

var names = map[Code]string{
	SCARD_E_CANCELLED: "SCARD_E_CANCELLED", SCARD_E_INVALID_PARAMETER: "SCARD_E_INVALID_PARAMETER",
	SCARD_E_NO_SMARTCARD: "SCARD_E_NO_SMARTCARD", SCARD_E_NOT_TRANSACTED: "SCARD_E_NOT_TRANSACTED",
	SCARD_E_FILE_NOT_FOUND: "SCARD_E_FILE_NOT_FOUND", SCARD_E_DIR_NOT_FOUND: "SCARD_E_DIR_NOT_FOUND",
	SCARD_E_WRITE_TOO_MANY: "SCARD_E_WRITE_TOO_MANY", SCARD_E_INVALID_CHV: "SCARD_E_INVALID_CHV",
	SCARD_E_NO_KEY_CONTAINER: "SCARD_E_NO_KEY_CONTAINER", SCARD_E_UNSUPPORTED_FEATURE: "SCARD_E_UNSUPPORTED_FEATURE",
	SCARD_E_NO_ACCESS: "SCARD_E_NO_ACCESS", SCARD_W_SECURITY_VIOLATION: "SCARD_W_SECURITY_VIOLATION",
	SCARD_W_WRONG_CHV: "SCARD_W_WRONG_CHV", SCARD_W_CHV_BLOCKED: "SCARD_W_CHV_BLOCKED",
	SCARD_W_REMOVED_CARD: "SCARD_W_REMOVED_CARD", SCARD_W_CARD_NOT_AUTHENTICATED: "SCARD_W_CARD_NOT_AUTHENTICATED",
	SCARD_W_CACHE_ITEM_NOT_FOUND: "SCARD_W_CACHE_ITEM_NOT_FOUND", SCARD_W_CACHE_ITEM_STALE: "SCARD_W_CACHE_ITEM_STALE",
	SCARD_W_CACHE_ITEM_TOO_BIG: "SCARD_W_CACHE_ITEM_TOO_BIG", SCARD_F_INTERNAL_ERROR: "SCARD_F_INTERNAL_ERROR",
	NTE_BAD_SIGNATURE: "NTE_BAD_SIGNATURE", NTE_BAD_KEY: "NTE_BAD_KEY", NTE_BAD_PUBLIC_KEY: "NTE_BAD_PUBLIC_KEY",
	NTE_BAD_KEYSET: "NTE_BAD_KEYSET", NTE_SILENT_CONTEXT: "NTE_SILENT_CONTEXT",
	NTE_TOKEN_KEYSET_STORAGE_FULL: "NTE_TOKEN_KEYSET_STORAGE_FULL", NTE_NO_KEY: "NTE_NO_KEY",
	NTE_EXISTS: "NTE_EXISTS", NTE_NOT_FOUND: "NTE_NOT_FOUND",
	CRYPT_E_NO_KEY_PROPERTY: "CRYPT_E_NO_KEY_PROPERTY", CRYPT_E_NOT_FOUND: "CRYPT_E_NOT_FOUND",
	CRYPT_E_REVOKED: "CRYPT_E_REVOKED", CERTSRV_E_BAD_REQUESTSUBJECT: "CERTSRV_E_BAD_REQUESTSUBJECT",
	CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE: "CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE",
	CERTSRV_E_TEMPLATE_DENIED:            "CERTSRV_E_TEMPLATE_DENIED", CERT_E_EXPIRED: "CERT_E_EXPIRED",
	ERROR_INVALID_DATA: "ERROR_INVALID_DATA",
}

// Name is the Windows name ("CRYPT_E_NO_KEY_PROPERTY"), or the hex value
// for a code this package does not know.
func (c Code) Name() string {
	if n, ok := names[c]; ok {
		return n
	}
	return fmt.Sprintf("0x%08X", uint32(c))
}

// Error gives name and value: "CRYPT_E_NO_KEY_PROPERTY (0x8009200B)".
func (c Code) Error() string { return fmt.Sprintf("%s (0x%08X)", c.Name(), uint32(c)) }

// String is Error.
func (c Code) String() string { return c.Error() }

// ByName finds a code by its Windows name, for scenario files.
func ByName(name string) (Code, bool) {
	for c, n := range names {
		if n == name {
			return c, true
		}
	}
	return 0, false
}

// Names lists every known name (for error messages that list choices).
func Names() []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, n)
	}
	return out
}
