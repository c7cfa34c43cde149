// Package ca is cardharness's test certification authority: it issues
// certificates from PKCS#10 requests and processes CMC renewal requests the
// way an Active Directory Certificate Services enterprise CA does, so that
// scenarios can reproduce Windows smart-card enrollment and renewal bugs
// (docs/reference/minidriver-semantics.md §3.2, §4, scenarios S16 and S17).
//
// # Client side
//
// BuildRenewal builds the CMC renewal CertEnroll sends
// (docs/reference/minidriver-semantics.md §4.1): a SignedData v3 over id-cct-PKIData with one
// PKCS#10 that carries the renewal-certificate attribute
// (1.3.6.1.4.1.311.13.1 = DER of the old certificate) and an
// extensionRequest with the template extension added explicitly,
// signed twice: by the new key (SignerInfo v3, sid = SubjectKeyIdentifier,
// proof of possession) and by the old key (SignerInfo v1, sid =
// issuer+serial of the old certificate, authorisation). Every signature goes
// through crypto.Signer, so both keys can live on a (virtual) card. Fault
// knobs on RenewalRequest produce each malformed variant of S16. BuildCSR
// builds a plain PKCS#10 for a first enrollment.
//
// The whole CMS layer is hand-written on golang.org/x/crypto/cryptobyte: the
// public Go pkcs7 packages silently drop a SignerInfo identified by
// SubjectKeyIdentifier, and crypto/x509 drops the renewal attribute.
//
// # CA side
//
// CA.SubmitRenewal runs, in this order (numbers are the checks of
// docs/reference/minidriver-semantics.md §4.2; tags as there: [S] a source states it, [SDK]
// the Windows SDK sample enterprise policy module does it, [I] inferred):
//
//  1. ContentInfo is signedData, eContentType id-cct-PKIData, exactly one
//     TaggedRequest, a PKCS#10; else ERROR_INVALID_DATA [S MS-WCCE
//     3.2.1.4.2.1.4.2.2].
//  2. The PKCS#10 self-signature verifies; else NTE_BAD_SIGNATURE [I].
//  3. Every SignerInfo resolves by sid (never by position) and verifies with
//     content-type and message-digest signed attributes (checks 4-6); a
//     primary signer by the PKCS#10 key must exist [S CMC signer docs; codes I].
//  4. Renewal attribute absent: the request is a new request, not an error
//     [S]. Present but not the certificate of a verified signer:
//     CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE [S].
//  5. The old certificate was issued by this CA, is valid at the virtual
//     clock's time and not revoked; else CERT_E_CHAINING, CERT_E_EXPIRED,
//     CRYPT_E_REVOKED (denied) [I].
//  6. Template from SubmitOptions.Template, else a CMC RegInfo pair
//     CertificateTemplate (name or dotted OID), else the template
//     extension: missing
//     CERTSRV_E_NO_CERT_TYPE, unknown CERTSRV_E_UNSUPPORTED_CERT_TYPE, newer
//     version CERTSRV_E_BAD_TEMPLATE_VERSION, ACL CERTSRV_E_TEMPLATE_DENIED
//     [SDK].
//  7. Enroll on behalf of without an RA-signature requirement on a v2
//     template: CERTSRV_E_BAD_RENEWAL_SUBJECT [SDK].
//  8. Key policy: same key without AllowSameKey, or a new key with
//     RequireSameKey: CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY [I].
//  9. With CT_FLAG_PREVIOUS_APPROVAL_VALIDATE_REENROLLMENT ("valid existing
//     certificate") the conditions of MS-WCCE 3.2.2.6.2.1.4.8 are checked:
//     old certificate has the template extension with the current template
//     OID; with enrollee-supplied subject the request subject equals the old
//     one; otherwise the old SAN's UPN/rfc822Name equal the requester's
//     directory entry. All met: issued, skipping manager approval and RA
//     signatures [S]. Any failure is not a denial: the flag is simply not
//     enforced and new-request rules apply (Response.AsNewRequest,
//     Response.RenewalStatus) [S spec wording; SDK falls back the same way].
//     This is how a server submitting a user's renewal with its own identity
//     ends up under new-request rules (check 12) [I].
//  10. New-request rules ("same criteria", no renewal attribute, or a failed
//     condition): RA signatures (CERTSRV_E_SIGNATURE_COUNT) [SDK], then
//     CT_FLAG_PEND_ALL_REQUESTS pends the request [SDK]; otherwise issued.
//
// Dispositions are AD CS's seven CR_DISP_* values (Disposition.CRName):
// Issued, Denied, Pending (CR_DISP_UNDER_SUBMISSION), Error (the CA failed
// the call: a delegated certificate-signed request on a CA with
// Options.FailDelegatedCertRequests, 0x80070525), IssuedOutOfBand
// (CA.IssueOutOfBand), Revoked (Retrieve after CA.Revoke) and Incomplete
// (the zero value, what a relay answers when the CA never decided).
// Pending requests are retrieved later with CA.Retrieve; a template's
// ApprovalDelay lets a manager approve them days later on the virtual
// clock.
//
// Issued certificates take their validity from the CA's virtual clock
// (Options.Clock), never beyond the CA certificate. Response.PKCS7 is a
// degenerate certs-only PKCS#7 (EncodeCertsOnly) with the chain.
//
// Bare § citations in this package refer to docs/reference/minidriver-semantics.md.
package ca
