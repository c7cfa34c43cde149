package ca

import (
	"errors"
	"fmt"
)

// Code is a Windows HRESULT as AD CS reports it in a request's status
// (certutil shows it as "0x8009400e (-2146875378 CERTSRV_E_...)").
//
// Every constant documents where AD CS, or the Windows component the CA
// relies on, uses it. Tags as in reference/minidriver-semantics.md:
// [S] a public source states that AD CS returns this code in this case,
// [SDK] the Windows SDK sample enterprise policy module (template.cpp)
// returns it there (the shipping policy module derives from that sample,
// but is not public), [I] the mapping is inferred by this package.
//
// Code implements error, so errors.Is(err, ca.CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE)
// works on any error wrapping a *RequestError.
type Code uint32

// The constants keep their winerror.h names so they can be searched for
// together with Windows logs.
const (
	// ERROR_INVALID_DATA, HRESULT_FROM_WIN32(13). MS-WCCE 3.2.1.4.2.1.4.2.2:
	// the CMC is not a SignedData over id-cct-PKIData holding exactly one
	// PKCS#10 [S]. Also used here for every other structural defect of the
	// CMS (undecodable DER, content-type attribute not matching
	// eContentType, unsupported algorithm) [I].
	ERROR_INVALID_DATA Code = 0x8007000D
	// E_ACCESSDENIED, HRESULT_FROM_WIN32(5). A renew-on-behalf-of request
	// (MS-WCCE 3.2.2.6.2.1.2.4) sent to a CA that does not allow them; the
	// spec only says "a nonzero error" [I].
	E_ACCESSDENIED Code = 0x80070005
	// ERROR_NOT_FOUND, HRESULT_FROM_WIN32(1168). [SDK] _EnforceReenrollment:
	// the old certificate has no certificate-template extension or no SAN.
	// It is a reason the "valid existing certificate" shortcut is not taken,
	// never a final status (the request falls back to new-request rules).
	ERROR_NOT_FOUND Code = 0x80070490
	// NTE_BAD_SIGNATURE: a signature does not verify: the PKCS#10
	// self-signature (proof of possession) or a SignerInfo signature
	// (e.g. the old certificate is claimed but another key signed) [I].
	NTE_BAD_SIGNATURE Code = 0x80090006
	// CRYPT_E_AUTH_ATTR_MISSING: a SignerInfo lacks signedAttrs, the
	// content-type or the message-digest attribute; CryptMsg's code for
	// that condition, AD CS status inferred [I].
	CRYPT_E_AUTH_ATTR_MISSING Code = 0x80091006
	// CRYPT_E_HASH_VALUE: messageDigest differs from the hash of the
	// eContent; CryptMsg's code, AD CS status inferred [I].
	CRYPT_E_HASH_VALUE Code = 0x80091007
	// CRYPT_E_SIGNER_NOT_FOUND: a SignerInfo's sid names neither the
	// PKCS#10 key nor a certificate in the message, or the primary
	// (SubjectKeyIdentifier) signature by the PKCS#10 key is missing [I].
	CRYPT_E_SIGNER_NOT_FOUND Code = 0x8009100E
	// CRYPT_E_REVOKED: the certificate being renewed (or an enrollment
	// agent's certificate) is revoked [I].
	CRYPT_E_REVOKED Code = 0x80092010
	// CERT_E_EXPIRED: the certificate being renewed is outside its validity
	// period at the CA's (virtual) time [I].
	CERT_E_EXPIRED Code = 0x800B0101
	// CERT_E_CHAINING: the certificate being renewed was not issued by this
	// CA [I].
	CERT_E_CHAINING Code = 0x800B010A
	// CERTSRV_E_BAD_REQUESTSUBJECT: [SDK] _EnforceReenrollment: the UPN in
	// the old certificate's SAN is missing or differs from the requester's.
	// Used here for every failed subject/identity condition of MS-WCCE
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
	// (Options.RequesterIdentity said no) [I; AD CS uses it when the CA's
	// own ACL denies enrollment].
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
	// [S winerror text]. This CA also returns it for the opposite policy
	// (a renewal reusing the old key where the template wants a new one,
	// minidriver-semantics §4.2 check 11) [I].
	CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY Code = 0x80094816
)

var codeText = map[Code][2]string{
	ERROR_INVALID_DATA:                   {"ERROR_INVALID_DATA", "the data is invalid"},
	E_ACCESSDENIED:                       {"E_ACCESSDENIED", "access denied"},
	ERROR_NOT_FOUND:                      {"ERROR_NOT_FOUND", "element not found"},
	NTE_BAD_SIGNATURE:                    {"NTE_BAD_SIGNATURE", "invalid signature"},
	CRYPT_E_AUTH_ATTR_MISSING:            {"CRYPT_E_AUTH_ATTR_MISSING", "a required signed attribute is missing"},
	CRYPT_E_HASH_VALUE:                   {"CRYPT_E_HASH_VALUE", "the hash value is not correct"},
	CRYPT_E_SIGNER_NOT_FOUND:             {"CRYPT_E_SIGNER_NOT_FOUND", "cannot find the original signer"},
	CRYPT_E_REVOKED:                      {"CRYPT_E_REVOKED", "the certificate has been revoked"},
	CERT_E_EXPIRED:                       {"CERT_E_EXPIRED", "the certificate is not within its validity period"},
	CERT_E_CHAINING:                      {"CERT_E_CHAINING", "the certificate does not chain to this CA"},
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
}

// Name is the winerror.h name, or "" for a code this package does not use.
func (c Code) Name() string { return codeText[c][0] }

func (c Code) Error() string {
	if c == 0 {
		return "S_OK (0x00000000)"
	}
	if t, ok := codeText[c]; ok {
		return fmt.Sprintf("%s (0x%08X): %s", t[0], uint32(c), t[1])
	}
	return fmt.Sprintf("HRESULT 0x%08X", uint32(c))
}

// RequestError is the status of a request the CA did not issue, or the
// reason a renewal was not authorised by the old certificate
// (Response.RenewalStatus). Match it with errors.Is against a Code or
// errors.As into *RequestError.
type RequestError struct {
	Code Code
	// Check is the number of the check in reference/minidriver-semantics.md
	// §4.2 (1-12) that failed, 0 when none applies (e.g. admin denial).
	Check int
	// Detail says what exactly was wrong, for people.
	Detail string
	// Err is an underlying error (a DER or crypto error), if any.
	Err error
}

func (e *RequestError) Error() string {
	s := e.Code.Error()
	if e.Check != 0 {
		s += fmt.Sprintf(" [check %d]", e.Check)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap lets errors.Is see both the Code and the underlying error.
func (e *RequestError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Code, e.Err}
	}
	return []error{e.Code}
}

func reqErr(code Code, check int, format string, args ...any) *RequestError {
	return &RequestError{Code: code, Check: check, Detail: fmt.Sprintf(format, args...)}
}

func wrapErr(code Code, check int, err error, format string, args ...any) *RequestError {
	return &RequestError{Code: code, Check: check, Detail: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the Code carried by err (through any wrapping), or 0.
func CodeOf(err error) Code {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Code
	}
	var c Code
	if errors.As(err, &c) {
		return c
	}
	return 0
}

// Disposition is the outcome of a request. The values are AD CS's CR_DISP_*
// numbers (certcli.h), so they print the same as in certutil output.
type Disposition int

const (
	// Denied: CR_DISP_DENIED. Response.Status says why.
	Denied Disposition = 2
	// Issued: CR_DISP_ISSUED. Response.Cert is the new certificate.
	Issued Disposition = 3
	// Pending: CR_DISP_UNDER_SUBMISSION, waiting for a certificate manager
	// (CA.Approve / CA.Deny).
	Pending Disposition = 5
)

func (d Disposition) String() string {
	switch d {
	case Denied:
		return "Denied"
	case Issued:
		return "Issued"
	case Pending:
		return "Pending"
	}
	return fmt.Sprintf("Disposition(%d)", int(d))
}
