package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cardharness/cardharness/winerr"
)

// Identity is what the test CA's "directory" knows about a requester.
type Identity struct {
	// Name is the account name (DOMAIN\user), compared case-insensitively
	// with the requester name in an enroll-on-behalf-of request.
	Name string
	// UPN and Email are compared with the old certificate's SAN
	// (MS-WCCE 3.2.2.6.2.1.4.8) and put into the SAN of certificates from
	// templates where the CA builds the subject.
	UPN   string
	Email string
	// Subject is the DER subject the directory yields for templates
	// without CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT. Nil: the old certificate's
	// subject for renewals, the request's subject otherwise [I].
	Subject []byte
}

// Template is a certificate template as the CA enforces it.
type Template struct {
	// ID names the template (OID for v2+, Name for v1; both allowed).
	ID TemplateID
	// ValidExistingCertificate is CT_FLAG_PREVIOUS_APPROVAL_VALIDATE_REENROLLMENT
	// (msPKI-Enrollment-Flag 0x40), "For reenrollment: Valid existing
	// certificate": a renewal meeting MS-WCCE 3.2.2.6.2.1.4.8 skips manager
	// approval and RA signatures. False is "Same criteria as for
	// enrollment".
	ValidExistingCertificate bool
	// PendAllRequests is CT_FLAG_PEND_ALL_REQUESTS (msPKI-Enrollment-Flag
	// 0x2), "CA certificate manager approval": requests processed under
	// new-request rules are pended.
	PendAllRequests bool
	// EnrolleeSuppliesSubject is CT_FLAG_ENROLLEE_SUPPLIES_SUBJECT
	// (msPKI-Certificate-Name-Flag 0x1). Without it the CA ignores the
	// request's subject (MS-WCCE 3.2.2.6.2.1.4.5.9).
	EnrolleeSuppliesSubject bool
	// AllowSameKey lets a renewal certify the old key again (Dogtag-style
	// knob). Without it, and without RequireSameKey, reusing the key is
	// denied with winerr.CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY [I, §4.2 check 11].
	AllowSameKey bool
	// RequireSameKey is CT_FLAG_REQUIRE_SAME_KEY_RENEWAL
	// (msPKI-Private-Key-Flag 0x80): a renewal must keep the key.
	RequireSameKey bool
	// RequiredSignatures is msPKI-RA-Signature: authorised (enrollment
	// agent) signatures needed under new-request rules.
	RequiredSignatures int
	// SignaturePolicies are the application policies (EKUs) an RA
	// signer's certificate must carry (msPKI-RA-Application-Policies);
	// nil means Certificate Request Agent.
	SignaturePolicies []asn1.ObjectIdentifier
	// Validity of issued certificates; 0 means one year.
	Validity time.Duration
	// Extensions are put into every certificate from this template
	// (e.g. KU, EKU), replacing requested ones with the same OID.
	Extensions []pkix.Extension
	// Enroll is the template ACL; nil lets everyone enroll.
	Enroll func(Identity) bool
	// ApprovalDelay: a certificate manager approves requests this
	// template pends (PendAllRequests) this long after submission, on the
	// CA's virtual clock; Retrieve after that returns the certificate,
	// issued at retrieval time [I: a manager's delay is a scenario input].
	// 0: pending until CA.Approve, CA.Deny or CA.IssueOutOfBand.
	ApprovalDelay time.Duration
}

func (t *Template) v2() bool { return len(t.ID.OID) > 0 }

// Options configure a CA.
type Options struct {
	// Name is the CA's common name.
	Name string
	// Key signs certificates; nil generates an RSA-2048 key.
	Key crypto.Signer
	// Clock is the virtual clock every validity decision uses; nil is time.Now.
	Clock func() time.Time
	// Rand is used for serial numbers and key generation; nil is crypto/rand.
	Rand io.Reader
	// Templates the CA issues.
	Templates []Template
	// RequesterIdentity resolves a requester name (the caller's name given
	// at submission, a requestername from an enroll-on-behalf-of request,
	// or a UPN taken from an old certificate for renew-on-behalf-of) to
	// its directory entry; false means unknown. Nil: every name is known,
	// Name is the name and a name containing '@' is also the UPN.
	RequesterIdentity func(requester string) (Identity, bool)
	// AllowRenewOnBehalfOf is Config_CA_Allow_RenewOnBehalfOf_Requests
	// (MS-WCCE 3.2.2.6.2.1.2.4).
	AllowRenewOnBehalfOf bool
	// ClockSkew backdates NotBefore of issued certificates.
	ClockSkew time.Duration
	// CAValidity is the validity of the CA certificate; 0 means 20 years.
	CAValidity time.Duration
	// FailDelegatedCertRequests is the CA profile of the founding
	// document's second bug: a CMC request with a certificate-based
	// signature, submitted by a server impersonating the user
	// (SubmitOptions.Delegated), fails with winerr.ERROR_NO_SUCH_USER
	// (0x80070525), disposition Error.
	FailDelegatedCertRequests bool
}

// SubmitOptions are the per-request inputs besides the request bytes.
type SubmitOptions struct {
	// Requester is the authenticated caller (DCOM/HTTP identity).
	Requester string
	// Template stands for the CertificateTemplate request attribute
	// (certreq -attrib); zero: take the template from the request.
	Template TemplateID
	// RenewOnBehalfOf is the 0x00200000 flag of ICertRequestD::Request: the
	// old certificate, not the caller, identifies the end entity.
	RenewOnBehalfOf bool
	// Delegated: the caller is a server impersonating Requester (the
	// relay), not Requester's own process (Options.FailDelegatedCertRequests).
	Delegated bool
	// Inject imposes a decision on this request once every check passed
	// (fault injection: a manager pends or denies it).
	Inject Injected
}

// Response is the CA's answer to one request.
type Response struct {
	Disposition Disposition
	RequestID   int
	// Cert is the issued certificate (Issued only).
	Cert *x509.Certificate
	// PKCS7 is a certs-only PKCS#7 with Cert and the CA certificate.
	PKCS7 []byte
	// Status is a *RequestError when Denied, nil otherwise.
	Status error
	// Renewal: the request was a verified renewal of OldCert.
	Renewal bool
	OldCert *x509.Certificate
	// AsNewRequest: the issuance decision used new-request rules: no
	// renewal attribute, a "Same criteria" template, or a failed condition
	// of CT_FLAG_PREVIOUS_APPROVAL_VALIDATE_REENROLLMENT (RenewalStatus).
	AsNewRequest bool
	// RenewalStatus says why a renewal was not authorised by the old
	// certificate (a *RequestError), nil when it was or does not apply.
	RenewalStatus error
	// Template is the CA template the request was processed under.
	Template TemplateID
	// EndEntity is the identity the certificate is for (the caller, or the
	// end entity of an enroll- or renew-on-behalf-of request).
	EndEntity Identity
	// Explanation lists the decisions taken, for people and reports.
	Explanation string
}

// CA is an in-memory AD CS-like enterprise CA. It is safe for concurrent use.
type CA struct {
	opts Options
	key  crypto.Signer
	cert *x509.Certificate

	mu        sync.Mutex
	templates []Template
	nextID    int
	pending   map[int]*pendingRequest
	done      map[int]*Response // issued or decided by a manager
	issued    map[string]*x509.Certificate
	revoked   map[string]time.Time
}

type pendingRequest struct {
	resp *Response
	plan *issuePlan
	// approveAt is when a manager approves (Template.ApprovalDelay); zero: never by itself.
	approveAt time.Time
}

// New creates a CA with a self-signed certificate valid from Clock().
func New(opts Options) (*CA, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Name == "" {
		opts.Name = "cardharness test CA"
	}
	if opts.CAValidity == 0 {
		opts.CAValidity = 20 * 365 * 24 * time.Hour
	}
	c := &CA{opts: opts, key: opts.Key, pending: map[int]*pendingRequest{},
		done: map[int]*Response{}, issued: map[string]*x509.Certificate{}, revoked: map[string]time.Time{}}
	c.templates = slices.Clone(opts.Templates)
	if c.key == nil {
		k, err := rsa.GenerateKey(opts.Rand, 2048)
		if err != nil {
			return nil, err
		}
		c.key = k
	}
	ski, err := SubjectKeyID(c.key.Public())
	if err != nil {
		return nil, err
	}
	serial, err := c.serial()
	if err != nil {
		return nil, err
	}
	now := opts.Clock().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.Name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(opts.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}
	der, err := x509.CreateCertificate(opts.Rand, tmpl, tmpl, c.key.Public(), c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: CA certificate: %w", err)
	}
	if c.cert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	return c, nil
}

// Certificate is the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// Now is the CA's virtual time.
func (c *CA) Now() time.Time { return c.opts.Clock() }

// SetTemplate adds a template or replaces the one with the same ID (an
// administrator editing the template).
func (c *CA) SetTemplate(t Template) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.templates {
		if c.templates[i].ID.Matches(t.ID) {
			c.templates[i] = t
			return
		}
	}
	c.templates = append(c.templates, t)
}

// Revoke marks serial revoked from now (virtual clock) on.
func (c *CA) Revoke(serial *big.Int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revoked[serial.Text(16)] = c.opts.Clock()
}

// IsRevoked reports whether serial is revoked at the CA's current time.
func (c *CA) IsRevoked(serial *big.Int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isRevoked(serial)
}

func (c *CA) isRevoked(serial *big.Int) bool {
	t, ok := c.revoked[serial.Text(16)]
	return ok && !c.opts.Clock().Before(t)
}

// SubmitRenewal submits a CMC request (docs/reference/minidriver-semantics.md §4) from
// requester. The Response is always non-nil when err is nil; err reports
// a failure of the CA itself, never a problem of the request.
func (c *CA) SubmitRenewal(cmcDER []byte, requester string) (*Response, error) {
	return c.SubmitCMC(cmcDER, SubmitOptions{Requester: requester})
}

// IssueFromCSR submits a plain PKCS#10 (first enrollment). A zero template
// takes the template from the request's extensions.
func (c *CA) IssueFromCSR(csrDER []byte, template TemplateID, requester string) (*Response, error) {
	return c.SubmitPKCS10(csrDER, SubmitOptions{Requester: requester, Template: template})
}

// Submit accepts either a PKCS#10 or a CMC request.
func (c *CA) Submit(der []byte, opts SubmitOptions) (*Response, error) {
	if _, err := ParseCSR(der); err == nil {
		return c.SubmitPKCS10(der, opts)
	}
	return c.SubmitCMC(der, opts)
}

// SubmitPKCS10 processes a plain PKCS#10 under new-request rules. A
// renewal attribute in a bare PKCS#10 is not authenticated by anything
// and is ignored [I].
func (c *CA) SubmitPKCS10(der []byte, opts SubmitOptions) (*Response, error) {
	csr, err := ParseCSR(der)
	if err != nil {
		return c.reject(wrapErr(winerr.ERROR_INVALID_DATA, 1, err, "PKCS#10")), nil
	}
	if err := csr.CheckSignature(); err != nil {
		return c.reject(wrapErr(winerr.NTE_BAD_SIGNATURE, 2, err, "PKCS#10 self-signature")), nil
	}
	return c.process(csr, nil, opts)
}

// SubmitCMC processes a CMC request: checks 1-6 (ParseRenewal, Verify),
// then the CA policy (checks 7-12) with AD CS-like dispositions.
func (c *CA) SubmitCMC(der []byte, opts SubmitOptions) (*Response, error) {
	p, err := ParseRenewal(der)
	if err != nil {
		return c.reject(asRequestError(err)), nil
	}
	v, err := p.Verify()
	if err != nil {
		return c.reject(asRequestError(err)), nil
	}
	return c.process(v.CSR, v, opts)
}

func asRequestError(err error) *RequestError {
	var re *RequestError
	if errors.As(err, &re) {
		return re
	}
	return wrapErr(winerr.ERROR_INVALID_DATA, 1, err, "")
}

func (c *CA) reject(err *RequestError) *Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	return &Response{Disposition: Denied, RequestID: c.nextID, Status: err, Explanation: "denied: " + err.Error()}
}

// decision accumulates a response.
type decision struct {
	resp  *Response
	notes []string
}

func (d *decision) note(format string, args ...any) {
	d.notes = append(d.notes, fmt.Sprintf(format, args...))
}

func (d *decision) deny(err *RequestError) *Response {
	d.resp.Disposition, d.resp.Status = Denied, err
	d.note("denied: %v", err)
	d.resp.Explanation = strings.Join(d.notes, "; ")
	return d.resp
}

// policyRequest is one request as the policy checks see it; the checks
// fill in what later checks need (old, subject, tmpl, ...).
type policyRequest struct {
	csr  *CSR
	v    *Verification // nil for a bare PKCS#10
	opts SubmitOptions
	d    *decision
	now  time.Time

	caller  Identity          // the authenticated requester
	subject Identity          // the identity the certificate is for
	old     *x509.Certificate // the certificate being renewed, nil for a new request
	eobo    bool              // enroll on behalf of
	tmpl    *Template
}

// policyCheck is one numbered check of docs/reference/minidriver-semantics.md §4.2; a
// non-nil result denies the request.
type policyCheck func(c *CA, r *policyRequest) *RequestError

// policyChecks run in this order, before the issuance plan is made; the
// order decides which error a request with several faults gets.
var policyChecks = []policyCheck{
	(*CA).checkRequester,        // 12: the caller is in the directory
	(*CA).checkRenewalAttribute, // 3: renewal or new request
	(*CA).checkOldCertificate,   // 7: chains, valid, not revoked
	(*CA).checkRenewOnBehalfOf,  // 12: MS-WCCE 3.2.2.6.2.1.2.4
	(*CA).checkEnrollOnBehalfOf, // 12: requestername
	(*CA).checkTemplate,         // 8: known template, version
	(*CA).checkTemplateACL,      // 12: template ACL, EOBO on v2 templates
	(*CA).checkKeyPolicy,        // 11: same or new key
}

func (c *CA) process(csr *CSR, v *Verification, opts SubmitOptions) (*Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextID++
	d := &decision{resp: &Response{RequestID: c.nextID}}
	r := &policyRequest{csr: csr, v: v, opts: opts, d: d, now: c.opts.Clock()}
	if opts.Delegated && (c.opts.FailDelegatedCertRequests || opts.Inject.FailDelegatedCert) && v != nil && len(v.CertSigners) > 0 {
		d.resp.Disposition, d.resp.Status = Error, reqErr(winerr.ERROR_NO_SUCH_USER, 0,
			"delegated request from %q with a certificate-based signature: this CA profile fails it", opts.Requester)
		d.note("error: %v", d.resp.Status)
		d.resp.Explanation = strings.Join(d.notes, "; ")
		return d.resp, nil
	}
	for _, check := range policyChecks {
		if err := check(c, r); err != nil {
			return d.deny(err), nil
		}
	}
	plan, err := c.plan(csr, r.tmpl, r.subject, r.old, d)
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			return d.deny(re), nil
		}
		return nil, err
	}
	authorised := c.checkReenrollment(r)
	d.resp.AsNewRequest = !authorised
	if opts.Inject.Deny != 0 {
		return d.deny(reqErr(opts.Inject.Deny, 0, "denied by an injected decision")), nil
	}
	if !authorised {
		if err := c.checkSignatures(r); err != nil {
			return d.deny(err), nil
		}
	}
	if !authorised && r.tmpl.PendAllRequests || opts.Inject.Pend {
		return c.pend(r, plan), nil
	}
	if err := c.issue(d.resp, plan); err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			return d.deny(re), nil
		}
		return nil, err
	}
	d.note("issued serial %x", d.resp.Cert.SerialNumber)
	d.resp.Explanation = strings.Join(d.notes, "; ")
	c.done[d.resp.RequestID] = d.resp
	return d.resp, nil
}

// pend keeps the request for a certificate manager; with an approval
// delay (Template.ApprovalDelay, Injected.ApproveAfter) the manager
// approves it that long after submission.
func (c *CA) pend(r *policyRequest, plan *issuePlan) *Response {
	d := r.d
	d.resp.Disposition = Pending
	if r.opts.Inject.Pend {
		d.note("pended by an injected decision")
	} else {
		d.note("CT_FLAG_PEND_ALL_REQUESTS: pending certificate manager approval")
	}
	pr := &pendingRequest{resp: d.resp, plan: plan}
	delay := r.tmpl.ApprovalDelay
	if r.opts.Inject.ApproveAfter > 0 {
		delay = r.opts.Inject.ApproveAfter
	}
	if delay > 0 {
		pr.approveAt = r.now.Add(delay)
		d.note("a certificate manager approves at %s", pr.approveAt.Format(time.RFC3339))
	}
	d.resp.Explanation = strings.Join(d.notes, "; ")
	c.pending[d.resp.RequestID] = pr
	return d.resp
}

// checkRequester: the authenticated caller must be in the directory
// (check 12).
func (c *CA) checkRequester(r *policyRequest) *RequestError {
	caller, ok := c.identity(r.opts.Requester)
	if !ok {
		return reqErr(winerr.CERTSRV_E_ENROLL_DENIED, 12, "requester %q unknown", r.opts.Requester)
	}
	r.caller, r.subject = caller, caller
	return nil
}

// checkRenewalAttribute (check 3): a verified renewal names the old
// certificate; without the attribute the request is a new request, not an
// error. Signer checks 4-6 were done by Verify.
func (c *CA) checkRenewalAttribute(r *policyRequest) *RequestError {
	d := r.d
	if r.v != nil && r.v.Renewal {
		r.old = r.v.OldCert
		d.resp.Renewal, d.resp.OldCert = true, r.old
		d.note("renewal of serial %x", r.old.SerialNumber)
		return nil
	}
	d.resp.AsNewRequest = true
	if r.v != nil {
		d.note("no renewal attribute: processed as a new request (MS-WCCE 3.2.1.4.2.1.4.2.2)")
	}
	if r.opts.RenewOnBehalfOf {
		return reqErr(winerr.ERROR_INVALID_DATA, 3, "renew-on-behalf-of flag on a request that is not a renewal")
	}
	if r.v == nil && r.csr.HasRenewalAttribute() {
		d.note("renewal attribute in a bare PKCS#10 ignored (nothing authenticates it)")
	}
	return nil
}

// checkOldCertificate (check 7): the renewed certificate chains to this
// CA, is inside its validity at the CA's time and is not revoked.
func (c *CA) checkOldCertificate(r *policyRequest) *RequestError {
	old := r.old
	if old == nil {
		return nil
	}
	if err := old.CheckSignatureFrom(c.cert); err != nil || !bytes.Equal(old.RawIssuer, c.cert.RawSubject) {
		return wrapErr(winerr.CERT_E_CHAINING, 7, err, "old certificate (issuer %q) was not issued by this CA", old.Issuer)
	}
	if r.now.Before(old.NotBefore) || r.now.After(old.NotAfter) {
		return reqErr(winerr.CERT_E_EXPIRED, 7, "old certificate valid %s..%s, CA time %s",
			old.NotBefore.Format(time.RFC3339), old.NotAfter.Format(time.RFC3339), r.now.Format(time.RFC3339))
	}
	if c.isRevoked(old.SerialNumber) {
		return reqErr(winerr.CRYPT_E_REVOKED, 7, "old certificate serial %x is revoked", old.SerialNumber)
	}
	return nil
}

// checkRenewOnBehalfOf (check 12): with the renew-on-behalf-of flag the
// old certificate, not the caller, identifies the end entity.
func (c *CA) checkRenewOnBehalfOf(r *policyRequest) *RequestError {
	if r.old == nil || !r.opts.RenewOnBehalfOf {
		return nil
	}
	if !c.opts.AllowRenewOnBehalfOf {
		return reqErr(winerr.E_ACCESSDENIED, 12, "renew-on-behalf-of requests are not allowed on this CA (MS-WCCE 3.2.2.6.2.1.2.4)")
	}
	id, ok := c.identityFromCert(r.old)
	if !ok {
		return reqErr(winerr.CERTSRV_E_BAD_RENEWAL_SUBJECT, 12, "renew on behalf of: cannot identify the end entity of the old certificate")
	}
	r.caller, r.subject = id, id
	r.d.note("renew on behalf of %q: the old certificate's key authenticates the request (MS-WCCE 3.2.2.6.2.1.2.4)", id.Name)
	return nil
}

// checkEnrollOnBehalfOf (check 12): a requestername RegInfo pair naming
// someone other than the caller makes the request enroll-on-behalf-of.
func (c *CA) checkEnrollOnBehalfOf(r *policyRequest) *RequestError {
	if r.v != nil {
		if rn := r.v.RegInfo["requestername"]; rn != "" && !strings.EqualFold(rn, r.caller.Name) {
			id, ok := c.identity(rn)
			if !ok {
				return reqErr(winerr.CERTSRV_E_ENROLL_DENIED, 12, "requestername %q unknown", rn)
			}
			r.eobo, r.subject = true, id
			r.d.note("enroll on behalf of %q by %q", id.Name, r.caller.Name)
		}
	}
	r.d.resp.EndEntity = r.subject
	return nil
}

// checkTemplate (check 8, the part that applies to every request): the
// request names a template this CA issues, in a version it has.
func (c *CA) checkTemplate(r *policyRequest) *RequestError {
	tid, err := c.requestedTemplate(r)
	if err != nil {
		return err
	}
	tmpl := c.findTemplate(tid)
	if tmpl == nil {
		return reqErr(winerr.CERTSRV_E_UNSUPPORTED_CERT_TYPE, 8, "template %s is not issued by this CA", tid)
	}
	r.tmpl = tmpl
	r.d.resp.Template = tmpl.ID
	if len(tid.OID) > 0 && tmpl.v2() && (tid.Major > tmpl.ID.Major || tid.Major == tmpl.ID.Major && tid.Minor > tmpl.ID.Minor) {
		return reqErr(winerr.CERTSRV_E_BAD_TEMPLATE_VERSION, 8, "request wants %s, CA has v%d.%d", tid, tmpl.ID.Major, tmpl.ID.Minor)
	}
	return nil
}

// requestedTemplate is the template the request asks for: the
// CertificateTemplate attribute given at submission, else a CMC RegInfo
// name-value pair CertificateTemplate (how the founding document sends
// it; MS-WCCE's request attributes travel as such pairs), else the
// template extension. The pair wins over the extension, as a request
// attribute does in AD CS [I].
func (c *CA) requestedTemplate(r *policyRequest) (TemplateID, *RequestError) {
	if !r.opts.Template.IsZero() {
		return r.opts.Template, nil
	}
	if r.v != nil {
		if name, ok := regInfoValue(r.v.RegInfo, RegInfoCertificateTemplate); ok {
			t, err := ParseTemplateName(name)
			if err != nil {
				return TemplateID{}, wrapErr(winerr.ERROR_INVALID_DATA, 8, err, "RegInfo %s", RegInfoCertificateTemplate)
			}
			r.d.note("template %s from the RegInfo pair %s", t, RegInfoCertificateTemplate)
			return t, nil
		}
	}
	t, ok, err := r.csr.Template()
	if err != nil {
		return TemplateID{}, wrapErr(winerr.ERROR_INVALID_DATA, 8, err, "template extension")
	}
	if !ok {
		return TemplateID{}, reqErr(winerr.CERTSRV_E_NO_CERT_TYPE, 8, "no certificate template extension in the request (InheritExtensionsFlag does not copy it)")
	}
	return t, nil
}

// checkTemplateACL (check 12): the template ACL lets the caller enroll,
// and a v2 template asked for on behalf of someone requires an RA
// signature.
func (c *CA) checkTemplateACL(r *policyRequest) *RequestError {
	tmpl := r.tmpl
	if tmpl.Enroll != nil && !tmpl.Enroll(r.caller) {
		return reqErr(winerr.CERTSRV_E_TEMPLATE_DENIED, 12, "%q may not enroll for %s", r.caller.Name, tmpl.ID)
	}
	if r.eobo && tmpl.v2() && tmpl.RequiredSignatures == 0 {
		return reqErr(winerr.CERTSRV_E_BAD_RENEWAL_SUBJECT, 12, "on behalf of %q, but template %s requires no RA signature", r.subject.Name, tmpl.ID)
	}
	return nil
}

// checkKeyPolicy (check 11): a renewal keeps or changes the key as the
// template says.
func (c *CA) checkKeyPolicy(r *policyRequest) *RequestError {
	if r.old == nil {
		return nil
	}
	same := PublicKeyEqual(r.csr.PublicKey, r.old.PublicKey)
	switch {
	case r.tmpl.RequireSameKey && !same:
		return reqErr(winerr.CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY, 11, "template requires renewal with the same key")
	case same && !r.tmpl.RequireSameKey && !r.tmpl.AllowSameKey:
		return reqErr(winerr.CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY, 11, "renewal reuses the old key")
	}
	return nil
}

// checkReenrollment (checks 9 and 10): whether the old certificate
// authorises the renewal ("Valid existing certificate" and the conditions
// of MS-WCCE 3.2.2.6.2.1.4.8). A failed condition is not a denial: it is
// recorded in RenewalStatus and new-request rules apply.
func (c *CA) checkReenrollment(r *policyRequest) bool {
	d := r.d
	switch {
	case r.old != nil && r.tmpl.ValidExistingCertificate:
		if err := reenrollmentConditions(r.tmpl, r.csr, r.old, r.subject); err != nil {
			d.resp.RenewalStatus = err
			d.note("CT_FLAG_PREVIOUS_APPROVAL_VALIDATE_REENROLLMENT not enforced (%v): new-request rules", err)
			return false
		}
		d.note("valid existing certificate: conditions of MS-WCCE 3.2.2.6.2.1.4.8 met, approval and RA signatures skipped")
		return true
	case r.old != nil:
		d.note("template %s: \"Same criteria as for enrollment\": new-request rules", r.tmpl.ID)
	}
	return false
}

// checkSignatures (check 12, new-request rules): enough accepted RA
// signatures for the template.
func (c *CA) checkSignatures(r *policyRequest) *RequestError {
	required := r.tmpl.RequiredSignatures
	if r.eobo && !r.tmpl.v2() && required == 0 {
		required = 1 // v1 template, enroll on behalf of: an agent signature is needed [I]
	}
	if required == 0 {
		return nil
	}
	n := c.acceptedSignatures(r.v, r.tmpl, r.old)
	if n < required {
		return reqErr(winerr.CERTSRV_E_SIGNATURE_COUNT, 12, "%d accepted RA signatures, template requires %d", n, required)
	}
	r.d.note("%d RA signature(s) accepted", n)
	return nil
}

// reenrollmentConditions checks MS-WCCE 3.2.2.6.2.1.4.8. The codes follow
// the SDK policy module's _EnforceReenrollment.
func reenrollmentConditions(tmpl *Template, csr *CSR, old *x509.Certificate, id Identity) *RequestError {
	if !tmpl.v2() {
		return reqErr(winerr.CERTSRV_E_UNSUPPORTED_CERT_TYPE, 8, "template %s has no template OID (v1)", tmpl.ID)
	}
	ext, ok := findExtension(old.Extensions, OIDCertificateTemplate)
	if !ok {
		return reqErr(winerr.ERROR_NOT_FOUND, 8, "old certificate has no certificate template extension")
	}
	oldT, err := ParseTemplateExtension(ext)
	if err != nil {
		return wrapErr(winerr.ERROR_INVALID_DATA, 8, err, "old certificate template extension")
	}
	if !oldT.OID.Equal(tmpl.ID.OID) {
		return reqErr(winerr.CERTSRV_E_UNSUPPORTED_CERT_TYPE, 8, "old certificate is from template %s, request is for %s", oldT.OID, tmpl.ID.OID)
	}
	if tmpl.EnrolleeSuppliesSubject {
		if csr.EmptySubject() || !bytes.Equal(csr.RawSubject, old.RawSubject) {
			return reqErr(winerr.CERTSRV_E_BAD_REQUESTSUBJECT, 9, "request subject differs from the old certificate's")
		}
		return nil
	}
	san, ok := findExtension(old.Extensions, oidSubjectAltName)
	if !ok {
		return reqErr(winerr.ERROR_NOT_FOUND, 9, "old certificate has no SAN")
	}
	upns, emails, ok := sanIdentities(san.Value)
	if !ok {
		return reqErr(winerr.ERROR_INVALID_DATA, 9, "old certificate SAN is malformed")
	}
	if len(upns) == 0 && len(emails) == 0 {
		return reqErr(winerr.CERTSRV_E_BAD_REQUESTSUBJECT, 9, "old certificate SAN has neither a UPN nor an rfc822Name")
	}
	for _, u := range upns {
		if id.UPN == "" || !strings.EqualFold(u, id.UPN) {
			return reqErr(winerr.CERTSRV_E_BAD_REQUESTSUBJECT, 9, "old certificate UPN %q is not the requester's (%q)", u, id.UPN)
		}
	}
	for _, e := range emails {
		if id.Email == "" || !strings.EqualFold(e, id.Email) {
			return reqErr(winerr.CERTSRV_E_BAD_REQUESTSUBJECT, 9, "old certificate rfc822Name %q is not the requester's (%q)", e, id.Email)
		}
	}
	return nil
}

// acceptedSignatures counts RA signatures: verified certificate-based
// signers other than the renewed certificate, issued by this CA, valid,
// not revoked, carrying every required application policy.
func (c *CA) acceptedSignatures(v *Verification, tmpl *Template, old *x509.Certificate) int {
	if v == nil {
		return 0
	}
	policies := tmpl.SignaturePolicies
	if policies == nil {
		policies = []asn1.ObjectIdentifier{OIDCertificateRequestAgt}
	}
	now := c.opts.Clock()
	n := 0
	for _, cs := range v.CertSigners {
		cert := cs.Cert
		if old != nil && bytes.Equal(cert.Raw, old.Raw) {
			continue
		}
		if cert.CheckSignatureFrom(c.cert) != nil || now.Before(cert.NotBefore) || now.After(cert.NotAfter) || c.isRevoked(cert.SerialNumber) {
			continue
		}
		ekus := ekuOIDs(cert)
		if slices.ContainsFunc(policies, func(p asn1.ObjectIdentifier) bool {
			return !slices.ContainsFunc(ekus, p.Equal)
		}) {
			continue
		}
		n++
	}
	return n
}

func ekuOIDs(cert *x509.Certificate) []asn1.ObjectIdentifier {
	e, ok := findExtension(cert.Extensions, oidExtKeyUsage)
	if !ok {
		return nil
	}
	var oids []asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(e.Value, &oids); err != nil || len(rest) != 0 {
		return nil
	}
	return oids
}

// issuePlan is everything needed to sign the certificate, fixed at
// submission so that a pending request issues the same way on approval.
type issuePlan struct {
	pub      crypto.PublicKey
	subject  []byte
	exts     []pkix.Extension
	validity time.Duration
}

// Request extensions the CA never copies: it sets these itself.
var caControlled = []asn1.ObjectIdentifier{
	oidSubjectKeyID, oidAuthorityKeyID, oidBasicConstraints, oidCRLDistribution, oidAuthorityInfo,
	oidCAVersion, oidPrevCACertHash, oidNTDSCASecurity, OIDCertificateTemplate, OIDCertTypeName, oidSubjectAltName,
}

func (c *CA) plan(csr *CSR, tmpl *Template, id Identity, old *x509.Certificate, d *decision) (*issuePlan, error) {
	p := &issuePlan{pub: csr.PublicKey, validity: tmpl.Validity}
	if p.validity == 0 {
		p.validity = 365 * 24 * time.Hour
	}
	// Subject (MS-WCCE 3.2.2.6.2.1.4.5.9; the directory is Identity).
	switch {
	case tmpl.EnrolleeSuppliesSubject && !csr.EmptySubject():
		p.subject = csr.RawSubject
	case tmpl.EnrolleeSuppliesSubject && old != nil:
		p.subject = old.RawSubject
		d.note("empty request subject: copied from the old certificate")
	case tmpl.EnrolleeSuppliesSubject:
		return nil, reqErr(winerr.CERTSRV_E_BAD_REQUESTSUBJECT, 9, "enrollee supplies subject, but the request subject is empty")
	case id.Subject != nil:
		p.subject = id.Subject
	case old != nil:
		p.subject = old.RawSubject
		if !bytes.Equal(csr.RawSubject, old.RawSubject) {
			d.note("request subject ignored (CA builds the subject): old certificate's subject used")
		}
	default:
		p.subject = csr.RawSubject
	}
	// Extensions: the request's, minus CA-controlled ones, then the
	// template's, then SAN and the template extension.
	for _, e := range csr.Extensions {
		if !slices.ContainsFunc(caControlled, e.Id.Equal) && !slices.ContainsFunc(p.exts, func(x pkix.Extension) bool { return x.Id.Equal(e.Id) }) {
			p.exts = append(p.exts, e)
		}
	}
	for _, x := range tmpl.Extensions {
		if i := slices.IndexFunc(p.exts, func(e pkix.Extension) bool { return e.Id.Equal(x.Id) }); i >= 0 {
			p.exts[i] = x
		} else {
			p.exts = append(p.exts, x)
		}
	}
	reqSAN, hasReqSAN := findExtension(csr.Extensions, oidSubjectAltName)
	switch {
	case !tmpl.EnrolleeSuppliesSubject && (id.UPN != "" || id.Email != ""):
		var emails []string
		if id.Email != "" {
			emails = append(emails, id.Email)
		}
		san, err := SANExtension(id.UPN, emails...)
		if err != nil {
			return nil, err
		}
		p.exts = append(p.exts, san)
	case hasReqSAN:
		p.exts = append(p.exts, reqSAN)
	case old != nil:
		if san, ok := findExtension(old.Extensions, oidSubjectAltName); ok {
			p.exts = append(p.exts, san)
		}
	}
	te, err := tmpl.ID.Extension()
	if err != nil {
		return nil, err
	}
	p.exts = append(p.exts, te)
	return p, nil
}

func (c *CA) issue(resp *Response, p *issuePlan) error {
	serial, err := c.serial()
	if err != nil {
		return err
	}
	ski, err := SubjectKeyID(p.pub)
	if err != nil {
		return err
	}
	now := c.opts.Clock().Truncate(time.Second)
	notAfter := now.Add(p.validity)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter // never beyond the CA (SDK _ApplyExpirationTime)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		RawSubject:      p.subject,
		NotBefore:       now.Add(-c.opts.ClockSkew),
		NotAfter:        notAfter,
		SubjectKeyId:    ski,
		ExtraExtensions: p.exts,
	}
	der, err := x509.CreateCertificate(c.opts.Rand, tmpl, c.cert, p.pub, c.key)
	if err != nil {
		return fmt.Errorf("ca: signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		// Request extensions that x509 cannot parse back (a malformed KU,
		// EKU, ...): the request's fault, not the CA's [I].
		return wrapErr(winerr.ERROR_INVALID_DATA, 0, err, "the certificate built from this request does not parse")
	}
	p7, err := EncodeCertsOnly(cert, c.cert)
	if err != nil {
		return err
	}
	resp.Disposition, resp.Cert, resp.PKCS7, resp.Status = Issued, cert, p7, nil
	c.issued[serial.Text(16)] = cert
	return nil
}

func (c *CA) serial() (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := io.ReadFull(c.opts.Rand, b); err != nil {
			return nil, fmt.Errorf("ca: serial: %w", err)
		}
		b[0] &= 0x7F
		if s := new(big.Int).SetBytes(b); s.Sign() > 0 {
			return s, nil
		}
	}
}

// Approve issues a pending request (certificate manager approval).
func (c *CA) Approve(requestID int) (*Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.approve(requestID, Issued, "approved by a certificate manager")
}

// IssueOutOfBand issues a pending request by another route (a certificate
// manager's resubmission whose certificate is handed over separately):
// RetrievePending then answers CR_DISP_ISSUED_OUT_OF_BAND with the
// certificate [I: when AD CS sets this disposition is not documented
// beyond "issued separately"].
func (c *CA) IssueOutOfBand(requestID int) (*Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.approve(requestID, IssuedOutOfBand, "issued out of band")
}

func (c *CA) approve(requestID int, disp Disposition, how string) (*Response, error) {
	return c.decide(requestID, func(p *pendingRequest, resp *Response) error {
		if err := c.issue(resp, p.plan); err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				return err
			}
			resp.Disposition, resp.Status = Denied, re
			resp.Explanation += "; approved, but " + re.Error()
		} else {
			resp.Disposition = disp
			resp.Explanation += fmt.Sprintf("; %s; issued serial %x", how, resp.Cert.SerialNumber)
		}
		return nil
	})
}

// Deny denies a pending request (certificate manager).
func (c *CA) Deny(requestID int) (*Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.decide(requestID, func(_ *pendingRequest, resp *Response) error {
		resp.Disposition = Denied
		resp.Status = reqErr(winerr.CERTSRV_E_ADMIN_DENIED_REQUEST, 0, "denied by a certificate manager")
		resp.Explanation += "; denied by a certificate manager"
		return nil
	})
}

// decide is a certificate manager's decision on pending request
// requestID (c.mu held): fn fills in a copy of its response, which then
// leaves the pending requests for the decided ones. An error from fn
// leaves the request pending.
func (c *CA) decide(requestID int, fn func(p *pendingRequest, resp *Response) error) (*Response, error) {
	p, ok := c.pending[requestID]
	if !ok {
		return nil, fmt.Errorf("ca: request %d is not pending", requestID)
	}
	resp := *p.resp
	if err := fn(p, &resp); err != nil {
		return nil, err
	}
	delete(c.pending, requestID)
	c.done[requestID] = &resp
	return &resp, nil
}

// Retrieve returns the current state of a pending request, or of one that
// was issued or decided by a manager (ICertRequest::RetrievePending).
// Requests denied at submission are not kept. A pending request whose
// template's ApprovalDelay has passed on the CA's clock is approved (and
// issued) now; an issued certificate revoked since reads as Revoked.
func (c *CA) Retrieve(requestID int) (*Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pending[requestID]; ok {
		if p.approveAt.IsZero() || c.opts.Clock().Before(p.approveAt) {
			r := *p.resp
			return &r, nil
		}
		if _, err := c.approve(requestID, Issued, "approved by a certificate manager at "+p.approveAt.Format(time.RFC3339)); err != nil {
			return nil, err
		}
	}
	if r, ok := c.done[requestID]; ok {
		cp := *r
		if cp.Disposition.HasCertificate() && c.isRevoked(cp.Cert.SerialNumber) {
			cp.Disposition = Revoked
			cp.Explanation += "; certificate revoked since"
		}
		return &cp, nil
	}
	return nil, fmt.Errorf("ca: request %d not found", requestID)
}

func (c *CA) identity(name string) (Identity, bool) {
	if c.opts.RequesterIdentity != nil {
		id, ok := c.opts.RequesterIdentity(name)
		if ok && id.Name == "" {
			id.Name = name
		}
		return id, ok
	}
	id := Identity{Name: name}
	if strings.Contains(name, "@") {
		id.UPN = name
	}
	return id, true
}

// identityFromCert finds the end entity of a certificate by the UPN (or
// else rfc822Name) in its SAN.
func (c *CA) identityFromCert(cert *x509.Certificate) (Identity, bool) {
	san, ok := findExtension(cert.Extensions, oidSubjectAltName)
	if !ok {
		return Identity{}, false
	}
	upns, emails, ok := sanIdentities(san.Value)
	if !ok {
		return Identity{}, false
	}
	for _, n := range append(upns, emails...) {
		if id, ok := c.identity(n); ok {
			return id, true
		}
	}
	return Identity{}, false
}

func (c *CA) findTemplate(id TemplateID) *Template {
	for i := range c.templates {
		if c.templates[i].ID.Matches(id) {
			t := c.templates[i]
			return &t
		}
	}
	return nil
}
