package ca

import (
	"fmt"

	"github.com/cardharness/cardharness/winerr"
)

// The codes the CA reports are winerr's: each winerr constant's note says
// where AD CS (or this CA, for an inferred mapping) uses it.

// RequestError is the status of a request the CA did not issue, or the
// reason a renewal was not authorised by the old certificate
// (Response.RenewalStatus). Match it with errors.Is against a Code or
// errors.As into *RequestError or winerr.Code.
type RequestError struct {
	Code winerr.Code
	// Check is the number of the check in docs/reference/minidriver-semantics.md
	// §4.2 (1-12) that failed, 0 when none applies (e.g. admin denial).
	Check int
	// Detail says what exactly was wrong, for people.
	Detail string
	// Err is an underlying error (a DER or crypto error), if any.
	Err error
}

func (e *RequestError) Error() string {
	s := e.Code.Error()
	if t := e.Code.Text(); t != "" {
		s += ": " + t
	}
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

// Unwrap hands callers the winerr.Code (errors.As(err, &code)) and the
// underlying error.
func (e *RequestError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Code, e.Err}
	}
	return []error{e.Code}
}

func reqErr(code winerr.Code, check int, format string, args ...any) *RequestError {
	return &RequestError{Code: code, Check: check, Detail: fmt.Sprintf(format, args...)}
}

func wrapErr(code winerr.Code, check int, err error, format string, args ...any) *RequestError {
	return &RequestError{Code: code, Check: check, Detail: fmt.Sprintf(format, args...), Err: err}
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
