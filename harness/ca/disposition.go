package ca

import (
	"fmt"
	"strings"
)

// The dispositions besides Denied, Issued and Pending (errors.go), with
// AD CS's CR_DISP_* numbers (certcli.h) so that every value a client of
// ICertRequest::Submit / RetrievePending can see has a name here.
const (
	// Incomplete: CR_DISP_INCOMPLETE, the request did not complete. The
	// zero Disposition, so a Response nobody decided reads as incomplete;
	// the relay answers it when the CA did not answer in time [I].
	Incomplete Disposition = 0
	// Error: CR_DISP_ERROR, the CA failed the request without a policy
	// decision (Response.Status carries the HRESULT), e.g. a CA profile
	// failing delegated certificate-based requests (Options.FailDelegatedCertRequests).
	Error Disposition = 1
	// IssuedOutOfBand: CR_DISP_ISSUED_OUT_OF_BAND, a certificate manager
	// issued the pending request by another route (CA.IssueOutOfBand);
	// RetrievePending still returns the certificate.
	IssuedOutOfBand Disposition = 4
	// Revoked: CR_DISP_REVOKED, RetrievePending of a request whose
	// certificate has been revoked since; the certificate is still returned.
	Revoked Disposition = 6
)

var crNames = []struct {
	d                  Disposition
	goName, name, text string
}{
	{Incomplete, "Incomplete", "CR_DISP_INCOMPLETE", "request did not complete"},
	{Error, "Error", "CR_DISP_ERROR", "request failed"},
	{Denied, "Denied", "CR_DISP_DENIED", "request denied"},
	{Issued, "Issued", "CR_DISP_ISSUED", "certificate issued"},
	{IssuedOutOfBand, "IssuedOutOfBand", "CR_DISP_ISSUED_OUT_OF_BAND", "certificate issued separately"},
	{Pending, "Pending", "CR_DISP_UNDER_SUBMISSION", "request taken under submission"},
	{Revoked, "Revoked", "CR_DISP_REVOKED", "certificate revoked"},
}

// String is the constant's Go name ("Issued", "IssuedOutOfBand"); CRName
// is the certcli.h one.
func (d Disposition) String() string {
	for _, n := range crNames {
		if n.d == d {
			return n.goName
		}
	}
	return fmt.Sprintf("Disposition(%d)", int(d))
}

// CRName is the certcli.h name ("CR_DISP_ISSUED"), what certreq and the
// relay's founding-document interface print.
func (d Disposition) CRName() string {
	for _, n := range crNames {
		if n.d == d {
			return n.name
		}
	}
	return fmt.Sprintf("CR_DISP_%d", int(d))
}

// Message is the short text certreq shows with the disposition.
func (d Disposition) Message() string {
	for _, n := range crNames {
		if n.d == d {
			return n.text
		}
	}
	return "unknown disposition"
}

// HasCertificate reports whether a response with this disposition
// carries a certificate.
func (d Disposition) HasCertificate() bool {
	return d == Issued || d == IssuedOutOfBand || d == Revoked
}

// ParseDisposition accepts a CR_DISP_* name, with or without the prefix,
// case-insensitively ("CR_DISP_ISSUED", "issued", "under_submission";
// "pending" for Pending).
func ParseDisposition(s string) (Disposition, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if u == "PENDING" {
		return Pending, nil
	}
	for _, n := range crNames {
		if u == n.name || "CR_DISP_"+u == n.name {
			return n.d, nil
		}
	}
	names := make([]string, len(crNames))
	for i, n := range crNames {
		names[i] = n.name
	}
	return 0, fmt.Errorf("ca: unknown disposition %q (one of %s)", s, strings.Join(names, ", "))
}
