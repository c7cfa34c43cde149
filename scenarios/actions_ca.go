package scenarios

import (
	"crypto/x509/pkix"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/winhost"
)

// caFields is the result of a request the test CA answered (caResult).
var caFields = []Field{
	{Name: "disposition", Type: String, Doc: "issued, denied or pending"},
	{Name: "request_id", Type: Int, Doc: "the CA's request ID"},
	{Name: "renewal", Type: Bool, Doc: "the CA treated the request as a renewal"},
	{Name: "as_new_request", Type: Bool, Doc: "a renewal the CA processed under new-request rules"},
	{Name: "cert", Type: Cert, Doc: "the issued certificate"},
	{Name: "subject", Type: String, Doc: "its subject CN"},
}

// renewalArgs are the process arguments of a CMC renewal on the card:
// the certificate being renewed, its container and the new key's, then
// more.
func renewalArgs(more ...Arg) []Arg {
	return processArgs(append([]Arg{
		{Name: "old-cert", Type: Cert, Required: true, Doc: "the certificate being renewed"},
		{Name: "old-guid", Type: GUID, Required: true, Doc: "its container"},
		{Name: "new-guid", Type: GUID, Required: true, Doc: "the new key's container"},
	}, more...)...)
}

// The test CA (harness/ca): issuance from a PKCS#10 and CMC renewal, with
// the AD CS status codes.
func init() {
	argTemplate := Arg{Name: "template", Type: String, Default: "User", Doc: "the certificate template (User renews on a valid existing certificate)"}
	argRequester := Arg{Name: "requester", Type: String, Default: "user", Doc: "who submits the request"}
	register(&Action{
		Name: "ca-issue", Actor: ActorCA,
		Doc:     "the test CA issues a certificate from a PKCS#10",
		Args:    []Arg{{Name: "csr", Type: CSR, Required: true, Doc: "a PKCS#10 saved from make-csr or writer-make-csr"}, argTemplate, argRequester},
		Result:  caFields,
		Errors:  []string{"NTE_BAD_SIGNATURE", "ERROR_INVALID_DATA", "CERTSRV_E_UNSUPPORTED_CERT_TYPE"},
		Example: "{do: ca-issue, csr: $req.csr, save: issued}",
		Run:     caIssue,
	}, &Action{
		Name: "ca-renew", Actor: ActorCA,
		Doc: "build a CMC renewal request on the card (new key signs as primary by SKI, old key by issuer+serial) and submit it",
		Args: renewalArgs(argTemplate, argRequester,
			Arg{Name: "fault", Type: Enum, Values: renewalFaultNames(), Doc: "build a malformed request on purpose"}),
		Result:  caFields,
		Errors:  []string{"CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE", "CRYPT_E_SIGNER_NOT_FOUND", "NTE_BAD_SIGNATURE", "ERROR_INVALID_DATA", "CERT_E_EXPIRED", "CRYPT_E_REVOKED"},
		Example: "{do: ca-renew, host: desktop, old-cert: $oldcert.cert, old-guid: $old.guid, new-guid: $new.guid, save: renewed}",
		Run:     onProcess(caRenew),
	})
}

func caIssue(e *env, s *stepCtx) (Values, error) {
	csr, err := savedAs[[]byte](s, "csr", "csr", "not a PKCS#10 (save the result of make-csr)")
	if err != nil {
		return nil, err
	}
	cca, err := e.getCA()
	if err != nil {
		return nil, err
	}
	resp, err := cca.IssueFromCSR(csr, e.template(s.str("template")), s.str("requester"))
	return caResult(resp, err)
}

func caRenew(e *env, s *stepCtx, p *winhost.Process) (Values, error) {
	req, err := renewalRequest(e, s, p)
	if err != nil {
		return nil, err
	}
	req.Template = e.template(s.str("template"))
	if fn, ok := renewalFaults[s.str("fault")]; ok {
		fn(&req)
	}
	der, err := ca.BuildRenewal(req)
	if err != nil {
		return nil, err
	}
	cca, err := e.getCA()
	if err != nil {
		return nil, err
	}
	resp, err := cca.SubmitRenewal(der, s.str("requester"))
	return caResult(resp, err)
}

// renewalRequest is the renewal the step asks for: the certificate being
// renewed (old-cert), signed by its container's key (old-guid) and by the
// new key (new-guid), both keys on the card behind the step's process.
func renewalRequest(e *env, s *stepCtx, p *winhost.Process) (ca.RenewalRequest, error) {
	old, err := s.cert("old-cert")
	if err != nil {
		return ca.RenewalRequest{}, err
	}
	oldKey, err := p.Signer(e.ctx, s.str("old-guid"))
	if err != nil {
		return ca.RenewalRequest{}, err
	}
	newKey, err := p.Signer(e.ctx, s.str("new-guid"))
	if err != nil {
		return ca.RenewalRequest{}, err
	}
	return ca.RenewalRequest{OldCert: old, OldKey: oldKey, NewKey: newKey}, nil
}

// parseSubject reads "CN=...,O=...".
func parseSubject(s string) (pkix.Name, error) {
	var n pkix.Name
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return n, fmt.Errorf("subject %s: want attributes such as CN=name,O=org", quote(s))
		}
		switch strings.ToUpper(k) {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "C":
			n.Country = append(n.Country, v)
		default:
			return n, fmt.Errorf("subject attribute %s not supported (CN, O, OU, C)", quote(k))
		}
	}
	return n, nil
}

func caResult(resp *ca.Response, err error) (Values, error) {
	if err != nil {
		return nil, err
	}
	r := Values{"disposition": strings.ToLower(resp.Disposition.String()), "request_id": resp.RequestID, "renewal": resp.Renewal, "as_new_request": resp.AsNewRequest}
	if resp.Cert != nil {
		r["cert"] = resp.Cert
		r["subject"] = resp.Cert.Subject.CommonName
	}
	if resp.Status != nil {
		return r, resp.Status
	}
	return r, nil
}

// renewalFaults are the malformed renewal requests ca-renew can build.
var renewalFaults = map[string]func(*ca.RenewalRequest){
	"no-renewal-attribute": func(r *ca.RenewalRequest) { r.OmitRenewalAttribute = true },
	"no-old-signer":        func(r *ca.RenewalRequest) { r.OmitOldSigner = true },
	"no-template":          func(r *ca.RenewalRequest) { r.OmitTemplate = true },
	"two-requests":         func(r *ca.RenewalRequest) { r.TwoRequests = true },
	"same-key":             func(r *ca.RenewalRequest) { r.NewKey = r.OldKey },
	"old-signed-by-new":    func(r *ca.RenewalRequest) { r.SignOldWith = r.NewKey },
	"corrupt-csr":          func(r *ca.RenewalRequest) { r.CorruptCSRSignature = true },
}

func renewalFaultNames() []string { return slices.Sorted(maps.Keys(renewalFaults)) }
