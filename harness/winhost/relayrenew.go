package winhost

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/relay"
	"github.com/cardharness/cardharness/winerr"
)

// The founding document's renewal over the internet, on the host model:
// build the CMC renewal from the old certificate (new key in a new
// container, renewal attribute, template), connect to the relay with the
// old certificate as TLS client credential, submit, install the response,
// delete the old certificate from My and from the card; on any failure
// roll back (delete the new container and the request dummy), or aborted
// attempts fill the card.

// CallOrder is the order of the renewal's calls, which decides the PIN
// prompts on hosts whose PIN caches overwrite each other.
type CallOrder int

const (
	// LogicalOrder: build the request, connect, submit, install. On a host
	// whose caches overwrite each other (Knobs.SingleTokenPINCache,
	// Windows 7) the
	// handshake's PIN supersedes the CSP's, and installing prompts again:
	// three prompts.
	LogicalOrder CallOrder = iota
	// ConnectFirst: a dummy call opens the connection first (the handshake
	// prompts), then the request is built (the CSP prompts) and submitted
	// on the open connection (no new handshake): two prompts.
	ConnectFirst
)

func (o CallOrder) String() string {
	if o == ConnectFirst {
		return "connect-first"
	}
	return "logical"
}

// OldCertDeletion is what happens to the renewed certificate.
type OldCertDeletion int

const (
	// DeleteOldFromMyAndCard: the old certificate leaves My and its
	// container leaves the card (the default flag moves to the new one).
	DeleteOldFromMyAndCard OldCertDeletion = iota
	// DeleteOldFromMyOnly: only the My entry goes; certificate
	// propagation brings it back at the next insertion.
	DeleteOldFromMyOnly
	// KeepOld leaves both.
	KeepOld
)

// RelayRenewalOptions configure Process.RenewThroughRelay.
type RelayRenewalOptions struct {
	// Old is the certificate to renew, a My entry with CERT_KEY_PROV_INFO.
	Old StoreCert
	// URL is the relay's base URL; RootCAs verify it.
	URL     string
	RootCAs *x509.CertPool
	// Template is sent as the template extension and as a RegInfo pair
	// CertificateTemplate (the founding document's way); zero: the old
	// certificate's template extension only.
	Template ca.TemplateID
	Order    CallOrder
	// DeleteOld: what happens to the old certificate once the new one is in.
	DeleteOld OldCertDeletion
	// KeepPending: a pending answer keeps the new container and the
	// request dummy for CompletePendingRenewal; without it the renewal is
	// rolled back like a failure (a client that cannot wait).
	KeepPending bool
	// Timeout is the receive timeout of each HTTP request (real time;
	// TLSOptions.Timeout); 0: none.
	Timeout time.Duration
	// Bits of the new key; 0: the old key's size.
	Bits int
}

// RelayRenewalResult is the outcome of a renewal through the relay.
type RelayRenewalResult struct {
	Disposition ca.Disposition
	RequestID   int
	// New is the installed certificate (Issued).
	New StoreCert
	// NewContainer is the new key's container (Issued or kept pending).
	NewContainer string
	// Pending is set when the request is pending and KeepPending held it.
	Pending *PendingRenewal
	// RolledBack: a failure removed the new container and the dummy.
	RolledBack bool
	// Prompts is the PIN prompts the renewal cost the process (all APIs);
	// Handshakes the TLS handshakes with client authentication.
	Prompts, Handshakes int
}

// PendingRenewal is a renewal waiting for the CA (CR_DISP_UNDER_SUBMISSION):
// the new container and the request dummy stay until it completes.
type PendingRenewal struct {
	RequestID int
	Dummy     StoreCert
	NewGUID   string
	opts      RelayRenewalOptions
}

// RelayError is a renewal failure between the host and the CA: an HTTP
// error, a dropped connection, a timeout, or a disposition other than
// issued. It unwraps to the CA's status code when there is one.
type RelayError struct {
	Stage       string // "connect", "submit", "retrieve"
	HTTPStatus  int    // 0: no HTTP answer
	Disposition ca.Disposition
	Status      winerr.Code
	Detail      string
	Err         error
}

func (e *RelayError) Error() string {
	s := "renewal through the relay: " + e.Stage
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(": HTTP %d", e.HTTPStatus)
	}
	if e.Status != 0 || e.HTTPStatus == http.StatusOK {
		s += ": " + e.Disposition.CRName()
	}
	if e.Status != 0 {
		s += " " + e.Status.Error()
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *RelayError) Unwrap() []error {
	var out []error
	if e.Status != 0 {
		out = append(out, e.Status)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

func (p *Process) promptTotal() int {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return p.stats.PINPrompts
}

// RenewThroughRelay runs the founding document's renewal. On any failure
// (an error is returned) the new container and the request dummy are
// removed: the card and the stores are as before.
func (p *Process) RenewThroughRelay(ctx context.Context, opts RelayRenewalOptions) (res RelayRenewalResult, err error) {
	prompts0 := p.promptTotal()
	var tc *TLSClient
	defer func() {
		res.Prompts = p.promptTotal() - prompts0
		if tc != nil {
			res.Handshakes = tc.Handshakes()
			tc.Close()
		}
	}()
	old := opts.Old
	if old.Cert == nil || old.ProvInfo == nil {
		return res, newErr("renewal", winerr.CRYPT_E_NO_KEY_PROPERTY, errors.New("the old certificate has no CERT_KEY_PROV_INFO"))
	}
	tc, err = p.NewTLSClient(ctx, TLSOptions{Cert: old, RootCAs: opts.RootCAs, Timeout: opts.Timeout})
	if err != nil {
		return res, err
	}
	if opts.Order == ConnectFirst {
		if err := dummyCall(ctx, tc, opts.URL); err != nil {
			return res, err
		}
	}

	// Build the request: a new key in a new container, the dummy in
	// REQUEST, the CMC signed by both keys.
	bits := opts.Bits
	if bits == 0 {
		bits = p.oldBits(old)
	}
	reader := p.readerOf(old)
	cont, err := p.GenerateKeyPair(ctx, GenerateRequest{Reader: reader, Bits: bits})
	if err != nil {
		return res, err
	}
	var dummy StoreCert
	rollback := func(cause error) (RelayRenewalResult, error) {
		res.RolledBack = true
		var rbErr error
		if dummy.Cert != nil {
			rbErr = p.AbortRequest(ctx, dummy)
		} else {
			rbErr = p.DeleteContainer(ctx, cont.GUID, DeleteOptions{})
		}
		if rbErr != nil {
			return res, errors.Join(cause, fmt.Errorf("rollback: %w", rbErr))
		}
		return res, cause
	}
	dummy, err = p.CreateRequest(ctx, cont.GUID, RequestOptions{Subject: old.Cert.Subject})
	if err != nil {
		return rollback(err)
	}
	der, err := p.buildRenewal(ctx, old, cont.GUID, opts.Template)
	if err != nil {
		return rollback(err)
	}

	// Connect (unless the dummy call did) and submit.
	r, err := postSubmit(ctx, tc, opts.URL, der)
	if err != nil {
		return rollback(err)
	}
	res.Disposition, res.RequestID = r.DispositionOf(), r.RequestID
	pr := &PendingRenewal{RequestID: r.RequestID, Dummy: dummy, NewGUID: cont.GUID, opts: opts}
	switch {
	case r.DispositionOf() == ca.Pending && opts.KeepPending:
		res.Pending, res.NewContainer = pr, cont.GUID
		return res, nil
	case !r.DispositionOf().HasCertificate() || r.DispositionOf() == ca.Revoked:
		return rollback(resultErr("submit", http.StatusOK, r))
	}
	return p.finishRenewal(ctx, pr, r, res, rollback)
}

// CompletePendingRenewal retrieves a pending renewal (days later, on the
// virtual clock) and, once issued, installs it and deletes the old
// certificate as RenewThroughRelay would have. Still pending: the result
// says so and nothing changes. Denied or failed: rolled back.
func (p *Process) CompletePendingRenewal(ctx context.Context, pr *PendingRenewal) (res RelayRenewalResult, err error) {
	prompts0 := p.promptTotal()
	opts := pr.opts
	tc, err := p.NewTLSClient(ctx, TLSOptions{Cert: opts.Old, RootCAs: opts.RootCAs, Timeout: opts.Timeout})
	if err != nil {
		return res, err
	}
	defer func() {
		res.Prompts = p.promptTotal() - prompts0
		res.Handshakes = tc.Handshakes()
		tc.Close()
	}()
	rollback := func(cause error) (RelayRenewalResult, error) {
		res.RolledBack = true
		if rbErr := p.AbortRequest(ctx, pr.Dummy); rbErr != nil {
			return res, errors.Join(cause, fmt.Errorf("rollback: %w", rbErr))
		}
		return res, cause
	}
	r, err := getRetrieve(ctx, tc, opts.URL, pr.RequestID)
	if err != nil {
		return res, err // a transport failure: the request is still pending at the CA
	}
	res.Disposition, res.RequestID = r.DispositionOf(), r.RequestID
	switch {
	case r.DispositionOf() == ca.Pending:
		res.Pending, res.NewContainer = pr, pr.NewGUID
		return res, nil
	case !r.DispositionOf().HasCertificate() || r.DispositionOf() == ca.Revoked:
		return rollback(resultErr("retrieve", http.StatusOK, r))
	}
	return p.finishRenewal(ctx, pr, r, res, rollback)
}

// finishRenewal installs the issued certificate and deletes the old one.
func (p *Process) finishRenewal(ctx context.Context, pr *PendingRenewal, r relay.SubmitResult, res RelayRenewalResult,
	rollback func(error) (RelayRenewalResult, error)) (RelayRenewalResult, error) {
	certDER, err := base64.StdEncoding.DecodeString(r.Certificate)
	if err != nil {
		return rollback(&RelayError{Stage: "install", Detail: "the certificate in the answer is not base64", Err: err})
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return rollback(&RelayError{Stage: "install", Detail: "the certificate in the answer does not parse", Err: err})
	}
	sc, err := p.InstallResponse(ctx, cert, InstallResponseOptions{})
	if err != nil {
		return rollback(err)
	}
	res.New, res.NewContainer = sc, pr.NewGUID
	old := pr.opts.Old
	switch pr.opts.DeleteOld {
	case DeleteOldFromMyAndCard:
		if err := p.DeleteContainer(ctx, old.ProvInfo.Container, DeleteOptions{MoveDefaultTo: pr.NewGUID}); err != nil {
			return res, fmt.Errorf("renewal: the new certificate is installed, deleting the old container failed: %w", err)
		}
		fallthrough
	case DeleteOldFromMyOnly:
		if u := p.h.CurrentUser(); u != nil {
			u.My().Delete(old.Thumbprint())
		}
	}
	return res, nil
}

func (p *Process) oldBits(old StoreCert) int {
	if k, ok := old.Cert.PublicKey.(interface{ Size() int }); ok {
		return k.Size() * 8
	}
	return 2048
}

// readerOf is the reader holding the old certificate's container ("" if
// none is known: GenerateKeyPair then takes the first card).
func (p *Process) readerOf(old StoreCert) string {
	k, err := p.OpenKey(context.Background(), old.ProvInfo.Container)
	if err != nil {
		return ""
	}
	return k.Reader()
}

func (p *Process) buildRenewal(ctx context.Context, old StoreCert, newGUID string, tmpl ca.TemplateID) ([]byte, error) {
	oldKey, err := p.Signer(ctx, old.ProvInfo.Container)
	if err != nil {
		return nil, err
	}
	newKey, err := p.Signer(ctx, newGUID)
	if err != nil {
		return nil, err
	}
	req := ca.RenewalRequest{OldCert: old.Cert, OldKey: oldKey, NewKey: newKey, Template: tmpl}
	if !tmpl.IsZero() {
		name := tmpl.Name
		if name == "" {
			name = tmpl.OID.String()
		}
		req.RegInfo = map[string]string{ca.RegInfoCertificateTemplate: name}
	}
	return ca.BuildRenewal(req)
}

// dummyCall opens the connection with a request that needs no card
// operation besides the handshake (EST cacerts).
func dummyCall(ctx context.Context, tc *TLSClient, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+relay.PathCACerts, nil)
	if err != nil {
		return err
	}
	resp, err := tc.Do(req)
	if err != nil {
		var we *Error
		if errors.As(err, &we) {
			return &RelayError{Stage: "connect", Status: we.Code, Err: err}
		}
		return &RelayError{Stage: "connect", Status: transportCode(err), Err: err}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &RelayError{Stage: "connect", HTTPStatus: resp.StatusCode, Status: httpCode(resp.StatusCode)}
	}
	return nil
}

func postSubmit(ctx context.Context, tc *TLSClient, url string, der []byte) (relay.SubmitResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+relay.PathSubmit,
		bytes.NewBufferString(base64.StdEncoding.EncodeToString(der)))
	if err != nil {
		return relay.SubmitResult{}, err
	}
	req.Header.Set("Content-Type", "text/plain")
	return doResult(tc, req, "submit")
}

func getRetrieve(ctx context.Context, tc *TLSClient, url string, id int) (relay.SubmitResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+relay.PathRetrieve+"?id="+strconv.Itoa(id), nil)
	if err != nil {
		return relay.SubmitResult{}, err
	}
	return doResult(tc, req, "retrieve")
}

// transportCode is the WinHTTP code of a request that got no answer.
func transportCode(err error) winerr.Code {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return winerr.ERROR_WINHTTP_TIMEOUT
	}
	return winerr.ERROR_WINHTTP_CONNECTION_ERROR
}

// httpCode is the HTTP_E_STATUS_* code of an HTTP error answer.
func httpCode(status int) winerr.Code { return winerr.Code(0x80190000 + uint32(status)) }

func doResult(tc *TLSClient, req *http.Request, stage string) (relay.SubmitResult, error) {
	resp, err := tc.Do(req)
	if err != nil {
		var we *Error
		if errors.As(err, &we) { // the card refused the handshake signature
			return relay.SubmitResult{}, &RelayError{Stage: stage, Status: we.Code, Err: err}
		}
		return relay.SubmitResult{}, &RelayError{Stage: stage, Status: transportCode(err), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return relay.SubmitResult{}, &RelayError{Stage: stage, HTTPStatus: resp.StatusCode, Err: err}
	}
	var r relay.SubmitResult
	if jerr := json.Unmarshal(body, &r); jerr != nil {
		return relay.SubmitResult{}, &RelayError{Stage: stage, HTTPStatus: resp.StatusCode, Status: httpCode(resp.StatusCode), Detail: string(bytes.TrimSpace(body))}
	}
	if resp.StatusCode != http.StatusOK && r.StatusCode() == 0 {
		e := resultErr(stage, resp.StatusCode, r)
		e.Status = httpCode(resp.StatusCode)
		return r, e
	}
	if resp.StatusCode != http.StatusOK {
		return r, resultErr(stage, resp.StatusCode, r)
	}
	return r, nil
}

func resultErr(stage string, status int, r relay.SubmitResult) *RelayError {
	e := &RelayError{Stage: stage, HTTPStatus: status, Disposition: r.DispositionOf(), Status: r.StatusCode(), Detail: r.StatusText}
	if e.Status == 0 && r.DispositionOf() == ca.Pending {
		e.Status, e.Detail = winerr.E_PENDING, fmt.Sprintf("request %d pending, and the client does not wait", r.RequestID)
	}
	return e
}
