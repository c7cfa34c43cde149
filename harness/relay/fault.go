package relay

import (
	"fmt"
	"strings"
)

// Fault is a failure injected into one request (Server.Inject).
type Fault int

const (
	NoFault Fault = iota
	// HTTP500: the relay answers 500 before contacting the CA.
	HTTP500
	// DropAfterIssue: the CA issues, then the relay closes the connection
	// without answering: a certificate issued but never received.
	DropAfterIssue
	// Timeout: the relay holds the request without contacting the CA
	// until the client gives up (or Config.Hold passes: 504).
	Timeout
	// CADeny: the CA denies the request (CERTSRV_E_ADMIN_DENIED_REQUEST).
	CADeny
	// CAPend: the CA pends the request (CR_DISP_UNDER_SUBMISSION); with
	// Config.PendApproveAfter a manager approves it that much later.
	CAPend
	// LookupAfterImpersonation: the relay looks the CA up after
	// impersonating the user and fails with ERROR_FILE_NOT_FOUND.
	LookupAfterImpersonation
	// DelegatedCertRequest: the CA profile that fails delegated
	// certificate-based requests with ERROR_NO_SUCH_USER (0x80070525).
	DelegatedCertRequest
)

var faultNames = []string{
	NoFault: "none", HTTP500: "http-500", DropAfterIssue: "drop-after-issue", Timeout: "timeout",
	CADeny: "ca-deny", CAPend: "ca-pend", LookupAfterImpersonation: "lookup-after-impersonation",
	DelegatedCertRequest: "delegated-0x80070525",
}

func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// ParseFault reads a fault name as String prints it.
func ParseFault(s string) (Fault, error) {
	for i, n := range faultNames {
		if strings.EqualFold(s, n) {
			return Fault(i), nil
		}
	}
	return 0, fmt.Errorf("relay: unknown fault %q (one of %s)", s, strings.Join(faultNames, ", "))
}

// Faults lists every fault but NoFault.
func Faults() []Fault {
	out := make([]Fault, 0, len(faultNames)-1)
	for i := 1; i < len(faultNames); i++ {
		out = append(out, Fault(i))
	}
	return out
}
