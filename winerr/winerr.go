// Package winerr is the one vocabulary of Windows error codes in the
// module: the minidriver API and WinSCard (SCARD_*), the CSPs and KSPs
// (NTE_*), CryptoAPI (CRYPT_E_*, CERT_E_*), certificate services
// (CERTSRV_E_*) and the Win32 errors AD CS reports as HRESULTs. A bug
// report that says "0x8009200B" should match a harness assertion that says
// CRYPT_E_NO_KEY_PROPERTY, so every code carries both its name and its hex
// value.
//
// Every error type of the module that stands for a Windows result
// (minidriver.CardError, winhost.Error, ca.RequestError) unwraps to its
// Code, so there is one way to ask:
//
//	var code winerr.Code
//	if errors.As(err, &code) { ... }  // or winerr.FromError(err)
//	errors.Is(err, winerr.NTE_BAD_KEYSET)
//
// Provenance: the values are the Windows SDK's (winerror.h, scarderr.h);
// each block below names the public Microsoft page that lists them, and
// each constant says where the harness returns it. Tags as in
// docs/reference/minidriver-semantics.md: [S] a public source states that
// Windows returns this code in this case, [SDK] the Windows SDK sample
// enterprise policy module (template.cpp) returns it there, [I] the
// mapping is inferred by the harness.
package winerr

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// Code is a Windows HRESULT / SCARD status as returned by the API.
type Code uint32

// Smart card subsystem (SCARD_*): minidriver and WinSCard results. Source:
// "Smart Card Return Values" in Microsoft Learn, Authentication Return
// Values (https://learn.microsoft.com/windows/win32/secauthn/authentication-return-values),
// defined in scarderr.h. minidriver/errors.go maps card status words to
// them (the status word each constant's note names).
const (
	SCARD_F_INTERNAL_ERROR         Code = 0x80100001 // status word with no better mapping [I]
	SCARD_E_CANCELLED              Code = 0x80100002 // the (scripted) user cancelled the PIN prompt
	SCARD_E_INVALID_PARAMETER      Code = 0x80100004 // 6700/6A80/6A86 from the card
	SCARD_E_NO_SMARTCARD           Code = 0x8010000C // no card in the reader
	SCARD_E_NOT_TRANSACTED         Code = 0x80100016 // not returned by the harness; a name for scenarios and knobs
	SCARD_E_UNSUPPORTED_FEATURE    Code = 0x80100022 // not returned by the harness; a name for scenarios and knobs
	SCARD_E_DIR_NOT_FOUND          Code = 0x80100023 // CardEnumFiles of a missing directory
	SCARD_E_FILE_NOT_FOUND         Code = 0x80100024 // 6A82/6A88: file or data object missing
	SCARD_E_NO_ACCESS              Code = 0x80100027 // not returned by the harness; a name for scenarios and knobs
	SCARD_E_WRITE_TOO_MANY         Code = 0x80100028 // 6A84: the card is full
	SCARD_E_INVALID_CHV            Code = 0x8010002A // not returned by the harness; a name for scenarios and knobs
	SCARD_E_NO_KEY_CONTAINER       Code = 0x80100030 // no valid container at that index
	SCARD_W_REMOVED_CARD           Code = 0x80100069 // the card left the reader under an open key handle
	SCARD_W_SECURITY_VIOLATION     Code = 0x8010006A // 6982: security status not satisfied
	SCARD_W_WRONG_CHV              Code = 0x8010006B // 63Cx: wrong PIN (see minidriver.WrongPINError)
	SCARD_W_CHV_BLOCKED            Code = 0x8010006C // 6983 or 63C0: PIN blocked
	SCARD_W_CARD_NOT_AUTHENTICATED Code = 0x8010006F // not returned by the harness; a name for scenarios and knobs
	SCARD_W_CACHE_ITEM_NOT_FOUND   Code = 0x80100070 // SCardReadCache: no such item
	SCARD_W_CACHE_ITEM_STALE       Code = 0x80100071 // SCardReadCache: freshness differs
	SCARD_W_CACHE_ITEM_TOO_BIG     Code = 0x80100072 // SCardWriteCache: item over the limit
)

// CSP / KSP (NTE_*). Source: "COM Error Codes (Security and Setup)" in
// Microsoft Learn (https://learn.microsoft.com/windows/win32/com/com-error-codes-4),
// defined in winerror.h.
const (
	// NTE_BAD_KEY: the key does not fit the operation (host model).
	NTE_BAD_KEY Code = 0x80090003
	// NTE_BAD_SIGNATURE: a signature does not verify: the PKCS#10
	// self-signature (proof of possession) or a SignerInfo signature
	// (e.g. the old certificate is claimed but another key signed) [I].
	NTE_BAD_SIGNATURE Code = 0x80090006
	// NTE_BAD_ALGID: a hash the provider does not sign with (host model).
	NTE_BAD_ALGID Code = 0x80090008
	// NTE_BAD_PROV_TYPE "Invalid provider type specified": CryptAcquireContext
	// with a provider type outside 1..999, which is what a CryptoAPI
	// acquisition of a key whose CRYPT_KEY_PROV_INFO names a KSP
	// (dwProvType 0) passes (host model, docs/windows-fidelity.md H-ACQ-API).
	NTE_BAD_PROV_TYPE Code = 0x80090014
	// NTE_BAD_PROVIDER "Invalid provider specified": a CNG acquisition of a
	// property that names a CSP, when the model is told the KSP cannot open
	// it (docs/windows-fidelity.md H-ACQ-API).
	NTE_BAD_PROVIDER Code = 0x80090013
	// NTE_NO_KEY: the container holds no key of that spec.
	NTE_NO_KEY Code = 0x8009000D
	// NTE_EXISTS: the container already exists.
	NTE_EXISTS Code = 0x8009000F
	// NTE_NOT_FOUND: no such key or container (KSP).
	NTE_NOT_FOUND Code = 0x80090011
	// NTE_BAD_PUBLIC_KEY: the certificate's key is not the container's.
	NTE_BAD_PUBLIC_KEY Code = 0x80090015
	// NTE_BAD_KEYSET: no container of that name on any card (CSP).
	NTE_BAD_KEYSET Code = 0x80090016
	// NTE_SILENT_CONTEXT: the operation needs UI but the context is silent.
	NTE_SILENT_CONTEXT Code = 0x80090022
	// NTE_TOKEN_KEYSET_STORAGE_FULL: no room for another container.
	NTE_TOKEN_KEYSET_STORAGE_FULL Code = 0x80090023
)

// CryptoAPI (CRYPT_E_*, CERT_E_*). Source: as NTE_* above.
const (
	// CRYPT_E_SIGNER_NOT_FOUND: a SignerInfo's sid names neither the
	// PKCS#10 key nor a certificate in the message, or the primary
	// (SubjectKeyIdentifier) signature by the PKCS#10 key is missing;
	// CryptMsg's code, AD CS status inferred [I].
	CRYPT_E_SIGNER_NOT_FOUND Code = 0x8009100E
	// CRYPT_E_AUTH_ATTR_MISSING: a SignerInfo lacks signedAttrs, the
	// content-type or the message-digest attribute; CryptMsg's code for
	// that condition, AD CS status inferred [I].
	CRYPT_E_AUTH_ATTR_MISSING Code = 0x80091006
	// CRYPT_E_HASH_VALUE: messageDigest differs from the hash of the
	// eContent; CryptMsg's code, AD CS status inferred [I].
	CRYPT_E_HASH_VALUE Code = 0x80091007
	// CRYPT_E_NOT_FOUND: no such certificate or property in a store.
	CRYPT_E_NOT_FOUND Code = 0x80092004
	// CRYPT_E_NO_KEY_PROPERTY: CryptAcquireCertificatePrivateKey on a
	// certificate without CERT_KEY_PROV_INFO (the founding report's
	// 0x8009200B) [S].
	CRYPT_E_NO_KEY_PROPERTY Code = 0x8009200B
	// CRYPT_E_REVOKED: the certificate being renewed (or an enrollment
	// agent's certificate) is revoked [I].
	CRYPT_E_REVOKED Code = 0x80092010
	// CERT_E_EXPIRED: the certificate being renewed is outside its validity
	// period at the CA's (virtual) time [I].
	CERT_E_EXPIRED Code = 0x800B0101
	// CERT_E_CHAINING: the certificate being renewed was not issued by this
	// CA [I].
	CERT_E_CHAINING Code = 0x800B010A
)

// Certificate services (CERTSRV_E_*), as the test CA (harness/ca) reports
// them in a request's status. Source: as NTE_* above; where AD CS uses
// each one is in the constant's note.
const (
	// CERTSRV_E_BAD_REQUESTSUBJECT: [SDK] _EnforceReenrollment: the UPN in
	// the old certificate's SAN is missing or differs from the requester's.
	// Used for every failed subject/identity condition of MS-WCCE
	// 3.2.2.6.2.1.4.8 (a reason, not a final status) and for a request
	// that ends up without any subject [I].
	CERTSRV_E_BAD_REQUESTSUBJECT Code = 0x80094001
	// CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE: MS-WCCE 3.2.1.4.2.1.4.2.1/2:
	// the renewal-certificate attribute 1.3.6.1.4.1.311.13.1 does not hold
	// the certificate that signed the request [S]. Also when no
	// certificate-based signer exists at all, or the attribute is not one
	// decodable certificate [I].
	CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE Code = 0x8009400E
	// CERTSRV_E_ENROLL_DENIED: the requester is unknown to the directory
	// (ca.Options.RequesterIdentity said no) [I; AD CS uses it when the
	// CA's own ACL denies enrollment].
	CERTSRV_E_ENROLL_DENIED Code = 0x80094011
	// CERTSRV_E_TEMPLATE_DENIED: [SDK] the template ACL check
	// (CACertTypeAccessCheck) fails: E_ACCESSDENIED is mapped to this code.
	CERTSRV_E_TEMPLATE_DENIED Code = 0x80094012
	// CERTSRV_E_ADMIN_DENIED_REQUEST: a certificate manager denied a
	// pending request (CA.Deny) [S winerror text].
	CERTSRV_E_ADMIN_DENIED_REQUEST Code = 0x80094014
	// CERTSRV_E_UNSUPPORTED_CERT_TYPE: [SDK] the requested template is not
	// one this CA issues (IsRequestedTemplate). [SDK] _EnforceReenrollment
	// also returns it when the old certificate's template OID differs from
	// the current template (a reason there, not a final status).
	CERTSRV_E_UNSUPPORTED_CERT_TYPE Code = 0x80094800
	// CERTSRV_E_NO_CERT_TYPE: the request carries no template information
	// (no 1.3.6.1.4.1.311.21.7 / 1.3.6.1.4.1.311.20.2 extension and no
	// template given at submission). The well-known enterprise-CA answer
	// to a request without template; S16 "template ext missing" [I for the
	// renewal case].
	CERTSRV_E_NO_CERT_TYPE Code = 0x80094801
	// CERTSRV_E_BAD_RENEWAL_SUBJECT: [SDK] _EnforceEnrollOnBehalfOfAllowed:
	// a v2 template that requires no RA signature, and the request names a
	// requester other than the caller (enroll on behalf of).
	CERTSRV_E_BAD_RENEWAL_SUBJECT Code = 0x80094806
	// CERTSRV_E_BAD_TEMPLATE_VERSION: [SDK] _EnforceMinimumTemplateVersion:
	// the request asks for a newer template version than the CA has.
	CERTSRV_E_BAD_TEMPLATE_VERSION Code = 0x80094807
	// CERTSRV_E_SIGNATURE_COUNT: [SDK] _EnforceSignaturePolicy: fewer
	// accepted RA (enrollment agent) signatures than the template requires.
	CERTSRV_E_SIGNATURE_COUNT Code = 0x8009480A
	// CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY: AD CS returns it when the template
	// requires renewal with the same key and the request has another one
	// [S winerror text]. The test CA also returns it for the opposite
	// policy (a renewal reusing the old key where the template wants a new
	// one, docs/reference/minidriver-semantics.md §4.2 check 11) [I].
	CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY Code = 0x80094816
)

// Win32 errors and generic HRESULTs AD CS reports as request status
// (HRESULT_FROM_WIN32). Source: Microsoft Learn "System Error Codes"
// (https://learn.microsoft.com/windows/win32/debug/system-error-codes) and
// "Common HRESULT Values"
// (https://learn.microsoft.com/windows/win32/seccrypto/common-hresult-values).
const (
	// E_ACCESSDENIED, HRESULT_FROM_WIN32(5). A renew-on-behalf-of request
	// (MS-WCCE 3.2.2.6.2.1.2.4) sent to a CA that does not allow them; the
	// spec only says "a nonzero error" [I].
	E_ACCESSDENIED Code = 0x80070005
	// ERROR_INVALID_DATA, HRESULT_FROM_WIN32(13). MS-WCCE 3.2.1.4.2.1.4.2.2:
	// the CMC is not a SignedData over id-cct-PKIData holding exactly one
	// PKCS#10 [S]. Also used for every other structural defect of the CMS
	// (undecodable DER, content-type attribute not matching eContentType,
	// unsupported algorithm) [I].
	ERROR_INVALID_DATA Code = 0x8007000D
	// ERROR_NOT_FOUND, HRESULT_FROM_WIN32(1168). [SDK] _EnforceReenrollment:
	// the old certificate has no certificate-template extension or no SAN.
	// It is a reason the "valid existing certificate" shortcut is not taken,
	// never a final status (the request falls back to new-request rules).
	ERROR_NOT_FOUND Code = 0x80070490
)

// info is a code's name and the message text Windows shows for it
// (shortened from the FormatMessage text).
type info struct{ name, text string }

// table holds every constant above; TestEveryConstantNamed (go/ast over
// this file) fails if one is missing.
var table = map[Code]info{
	SCARD_F_INTERNAL_ERROR:         {"SCARD_F_INTERNAL_ERROR", "an internal consistency check failed"},
	SCARD_E_CANCELLED:              {"SCARD_E_CANCELLED", "the action was cancelled"},
	SCARD_E_INVALID_PARAMETER:      {"SCARD_E_INVALID_PARAMETER", "one or more of the supplied parameters could not be properly interpreted"},
	SCARD_E_NO_SMARTCARD:           {"SCARD_E_NO_SMARTCARD", "the operation requires a smart card, but no smart card is in the device"},
	SCARD_E_NOT_TRANSACTED:         {"SCARD_E_NOT_TRANSACTED", "an attempt was made to end a non-existent transaction"},
	SCARD_E_UNSUPPORTED_FEATURE:    {"SCARD_E_UNSUPPORTED_FEATURE", "this smart card does not support the requested feature"},
	SCARD_E_DIR_NOT_FOUND:          {"SCARD_E_DIR_NOT_FOUND", "the specified directory does not exist in the smart card"},
	SCARD_E_FILE_NOT_FOUND:         {"SCARD_E_FILE_NOT_FOUND", "the specified file does not exist in the smart card"},
	SCARD_E_NO_ACCESS:              {"SCARD_E_NO_ACCESS", "access is denied to the file"},
	SCARD_E_WRITE_TOO_MANY:         {"SCARD_E_WRITE_TOO_MANY", "the card cannot be written to because it is full"},
	SCARD_E_INVALID_CHV:            {"SCARD_E_INVALID_CHV", "the supplied PIN is incorrect"},
	SCARD_E_NO_KEY_CONTAINER:       {"SCARD_E_NO_KEY_CONTAINER", "the requested key container does not exist on the smart card"},
	SCARD_W_REMOVED_CARD:           {"SCARD_W_REMOVED_CARD", "the smart card has been removed"},
	SCARD_W_SECURITY_VIOLATION:     {"SCARD_W_SECURITY_VIOLATION", "access was denied because of a security violation"},
	SCARD_W_WRONG_CHV:              {"SCARD_W_WRONG_CHV", "the card cannot be accessed because the wrong PIN was presented"},
	SCARD_W_CHV_BLOCKED:            {"SCARD_W_CHV_BLOCKED", "the maximum number of PIN entry attempts has been reached"},
	SCARD_W_CARD_NOT_AUTHENTICATED: {"SCARD_W_CARD_NOT_AUTHENTICATED", "no PIN was presented to the smart card"},
	SCARD_W_CACHE_ITEM_NOT_FOUND:   {"SCARD_W_CACHE_ITEM_NOT_FOUND", "the requested item could not be found in the cache"},
	SCARD_W_CACHE_ITEM_STALE:       {"SCARD_W_CACHE_ITEM_STALE", "the requested cache item is too old and was deleted from the cache"},
	SCARD_W_CACHE_ITEM_TOO_BIG:     {"SCARD_W_CACHE_ITEM_TOO_BIG", "the new cache item exceeds the maximum per-item size defined for the cache"},

	NTE_BAD_KEY:                   {"NTE_BAD_KEY", "bad key"},
	NTE_BAD_SIGNATURE:             {"NTE_BAD_SIGNATURE", "invalid signature"},
	NTE_BAD_ALGID:                 {"NTE_BAD_ALGID", "invalid algorithm specified"},
	NTE_BAD_PROV_TYPE:             {"NTE_BAD_PROV_TYPE", "invalid provider type specified"},
	NTE_BAD_PROVIDER:              {"NTE_BAD_PROVIDER", "invalid provider specified"},
	NTE_NO_KEY:                    {"NTE_NO_KEY", "key does not exist"},
	NTE_EXISTS:                    {"NTE_EXISTS", "object already exists"},
	NTE_NOT_FOUND:                 {"NTE_NOT_FOUND", "object was not found"},
	NTE_BAD_PUBLIC_KEY:            {"NTE_BAD_PUBLIC_KEY", "provider's public key is invalid"},
	NTE_BAD_KEYSET:                {"NTE_BAD_KEYSET", "keyset does not exist"},
	NTE_SILENT_CONTEXT:            {"NTE_SILENT_CONTEXT", "provider could not perform the action since the context was acquired as silent"},
	NTE_TOKEN_KEYSET_STORAGE_FULL: {"NTE_TOKEN_KEYSET_STORAGE_FULL", "the security token does not have storage space available for an additional container"},

	CRYPT_E_SIGNER_NOT_FOUND:  {"CRYPT_E_SIGNER_NOT_FOUND", "cannot find the original signer"},
	CRYPT_E_AUTH_ATTR_MISSING: {"CRYPT_E_AUTH_ATTR_MISSING", "a required signed attribute is missing"},
	CRYPT_E_HASH_VALUE:        {"CRYPT_E_HASH_VALUE", "the hash value is not correct"},
	CRYPT_E_NOT_FOUND:         {"CRYPT_E_NOT_FOUND", "cannot find object or property"},
	CRYPT_E_NO_KEY_PROPERTY:   {"CRYPT_E_NO_KEY_PROPERTY", "cannot find the certificate and private key for decryption"},
	CRYPT_E_REVOKED:           {"CRYPT_E_REVOKED", "the certificate has been revoked"},
	CERT_E_EXPIRED:            {"CERT_E_EXPIRED", "the certificate is not within its validity period"},
	CERT_E_CHAINING:           {"CERT_E_CHAINING", "the certificate does not chain to this CA"},

	CERTSRV_E_BAD_REQUESTSUBJECT:         {"CERTSRV_E_BAD_REQUESTSUBJECT", "the request subject is invalid"},
	CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE: {"CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE", "the request contains an invalid renewal certificate attribute"},
	CERTSRV_E_ENROLL_DENIED:              {"CERTSRV_E_ENROLL_DENIED", "the CA does not allow this requester to enroll"},
	CERTSRV_E_TEMPLATE_DENIED:            {"CERTSRV_E_TEMPLATE_DENIED", "the template does not allow this requester to enroll"},
	CERTSRV_E_ADMIN_DENIED_REQUEST:       {"CERTSRV_E_ADMIN_DENIED_REQUEST", "the request was denied by a certificate manager"},
	CERTSRV_E_UNSUPPORTED_CERT_TYPE:      {"CERTSRV_E_UNSUPPORTED_CERT_TYPE", "the requested template is not supported by this CA"},
	CERTSRV_E_NO_CERT_TYPE:               {"CERTSRV_E_NO_CERT_TYPE", "the request contains no certificate template information"},
	CERTSRV_E_BAD_RENEWAL_SUBJECT:        {"CERTSRV_E_BAD_RENEWAL_SUBJECT", "the request was made on behalf of another subject and the template requires no signature to authorise that"},
	CERTSRV_E_BAD_TEMPLATE_VERSION:       {"CERTSRV_E_BAD_TEMPLATE_VERSION", "the requested template version is newer than the CA's"},
	CERTSRV_E_SIGNATURE_COUNT:            {"CERTSRV_E_SIGNATURE_COUNT", "the request lacks the required number of authorised signatures"},
	CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY:     {"CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY", "the renewal's public key violates the template's key policy"},

	E_ACCESSDENIED:     {"E_ACCESSDENIED", "access denied"},
	ERROR_INVALID_DATA: {"ERROR_INVALID_DATA", "the data is invalid"},
	ERROR_NOT_FOUND:    {"ERROR_NOT_FOUND", "element not found"},
}

var byName = func() map[string]Code {
	m := make(map[string]Code, len(table))
	for c, i := range table {
		m[i.name] = c
	}
	return m
}()

// Name is the Windows name ("CRYPT_E_NO_KEY_PROPERTY"), or the hex value
// for a code this package does not know.
func (c Code) Name() string {
	if i, ok := table[c]; ok {
		return i.name
	}
	return fmt.Sprintf("0x%08X", uint32(c))
}

// Known reports whether the code is one of this package's constants.
func (c Code) Known() bool { _, ok := table[c]; return ok }

// Text is the message Windows gives for the code (shortened), or "".
func (c Code) Text() string { return table[c].text }

// Error gives name and value: "CRYPT_E_NO_KEY_PROPERTY (0x8009200B)".
func (c Code) Error() string { return fmt.Sprintf("%s (0x%08X)", c.Name(), uint32(c)) }

// String is Error.
func (c Code) String() string { return c.Error() }

// ByName finds a code by its Windows name, for scenario files.
func ByName(name string) (Code, bool) {
	c, ok := byName[name]
	return c, ok
}

// Parse reads a code as a scenario file writes it: a Windows name
// ("CRYPT_E_NO_KEY_PROPERTY") or a hex value ("0x8009200B").
func Parse(s string) (Code, bool) {
	if c, ok := byName[s]; ok {
		return c, true
	}
	if len(s) < 3 || (s[:2] != "0x" && s[:2] != "0X") {
		return 0, false
	}
	v, err := strconv.ParseUint(s[2:], 16, 32)
	if err != nil {
		return 0, false
	}
	return Code(v), true
}

// Names lists every known name, sorted (for error messages that list
// choices, and for the test that every name can be used in a scenario).
func Names() []string {
	out := make([]string, 0, len(table))
	for _, i := range table {
		out = append(out, i.name)
	}
	sort.Strings(out)
	return out
}

// FromError is the Windows code err carries (through any wrapping), the
// same as errors.As(err, &code).
func FromError(err error) (Code, bool) {
	var c Code
	if errors.As(err, &c) {
		return c, true
	}
	return 0, false
}
