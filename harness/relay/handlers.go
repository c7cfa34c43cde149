package relay

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/winerr"
)

// Paths.
const (
	PathSubmit         = "/certsrv/submit"
	PathRetrieve       = "/certsrv/retrieve"
	PathCACerts        = "/.well-known/est/cacerts"
	PathSimpleEnroll   = "/.well-known/est/simpleenroll"
	PathSimpleReenroll = "/.well-known/est/simplereenroll"
	PathFullCMC        = "/.well-known/est/fullcmc"
)

// Content types of RFC 7030 §4.
const (
	ctPKCS7     = "application/pkcs7-mime"
	ctCertsOnly = "application/pkcs7-mime; smime-type=certs-only"
	ctCMCResp   = "application/pkcs7-mime; smime-type=CMC-response"
	ctPKCS10    = "application/pkcs10"
)

// Handler serves every endpoint (usable with httptest.NewUnstartedServer
// and TLSConfig).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathSubmit, s.handleSubmit)
	mux.HandleFunc(PathRetrieve, s.handleRetrieve)
	mux.HandleFunc(PathCACerts, s.handleCACerts)
	mux.HandleFunc(PathSimpleEnroll, s.handleEST(false))
	mux.HandleFunc(PathSimpleReenroll, s.handleEST(true))
	mux.HandleFunc(PathFullCMC, s.handleFullCMC)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpError(w, http.StatusNotFound, "relay: no endpoint %q (try %s, %s or %s)", r.URL.Path, PathSubmit, PathRetrieve, "/.well-known/est/...")
	})
	return mux
}

// SubmitResult is the JSON answer of the founding document's interface.
type SubmitResult struct {
	Disposition      string `json:"disposition"`       // CR_DISP_* name
	DispositionValue int    `json:"disposition_value"` // its number
	Message          string `json:"message"`           // what certreq prints with it
	RequestID        int    `json:"request_id,omitempty"`
	Status           string `json:"status"`                // HRESULT, "0x00000000" when none
	StatusText       string `json:"status_text,omitempty"` // the CA's explanation of the status
	Certificate      string `json:"certificate,omitempty"` // base64 DER
	PKCS7            string `json:"pkcs7,omitempty"`       // base64 certs-only with the CA certificate
}

// Status is the HRESULT of the result's status field.
func (r SubmitResult) StatusCode() winerr.Code {
	v, _ := strconv.ParseUint(strings.TrimPrefix(r.Status, "0x"), 16, 32)
	return winerr.Code(v)
}

// DispositionOf is the ca.Disposition of the result.
func (r SubmitResult) DispositionOf() ca.Disposition { return ca.Disposition(r.DispositionValue) }

func resultOf(resp *ca.Response) SubmitResult {
	out := SubmitResult{Disposition: resp.Disposition.CRName(), DispositionValue: int(resp.Disposition),
		Message: resp.Disposition.Message(), RequestID: resp.RequestID, Status: "0x00000000"}
	if resp.Status != nil {
		out.Status = fmt.Sprintf("0x%08X", uint32(codeOf(resp.Status)))
		out.StatusText = resp.Status.Error()
	}
	if resp.Cert != nil && resp.Disposition.HasCertificate() {
		out.Certificate = base64.StdEncoding.EncodeToString(resp.Cert.Raw)
		out.PKCS7 = base64.StdEncoding.EncodeToString(resp.PKCS7)
	}
	return out
}

func failure(d ca.Disposition, code winerr.Code, text string) *ca.Response {
	return &ca.Response{Disposition: d, Status: &ca.RequestError{Code: code, Detail: text}}
}

func httpError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	fmt.Fprintf(w, format+"\n", args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBase64 reads a bounded base64 body (line breaks allowed: RFC 7030 §4
// "base64 encoding"), answering the 4xx itself on failure.
func (s *Server) readBase64(w http.ResponseWriter, r *http.Request, what string) ([]byte, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, "relay: %s %s: body larger than %d bytes", r.Method, r.URL.Path, mbe.Limit)
		} else {
			httpError(w, http.StatusBadRequest, "relay: %s %s: reading body: %v", r.Method, r.URL.Path, err)
		}
		return nil, false
	}
	clean := bytes.Map(func(c rune) rune {
		if c == '\r' || c == '\n' || c == ' ' || c == '\t' {
			return -1
		}
		return c
	}, buf.Bytes())
	if len(clean) == 0 {
		httpError(w, http.StatusBadRequest, "relay: %s %s: empty body, want a base64 %s", r.Method, r.URL.Path, what)
		return nil, false
	}
	der, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		httpError(w, http.StatusBadRequest, "relay: %s %s: body is not base64 (%v), want a base64 %s", r.Method, r.URL.Path, err, what)
		return nil, false
	}
	return der, true
}

func methodIs(w http.ResponseWriter, r *http.Request, m string) bool {
	if r.Method != m {
		w.Header().Set("Allow", m)
		httpError(w, http.StatusMethodNotAllowed, "relay: %s %s: method not allowed, use %s", r.Method, r.URL.Path, m)
		return false
	}
	return true
}

// posted is a request-submitting POST as readPost accepted it.
type posted struct {
	requester  string
	clientCert *x509.Certificate
	der        []byte
}

// readPost is the opening the request-submitting handlers share, in this
// order: POST only (405), an identified client (401/403), the content
// type when mediaType is not "" (415; the founding-document interface
// names none), and the base64 body, which holds what. When it returns
// false it has written the error answer.
func (s *Server) readPost(w http.ResponseWriter, r *http.Request, mediaType, smimeType, what string) (posted, bool) {
	if !methodIs(w, r, http.MethodPost) {
		return posted{}, false
	}
	requester, clientCert, ok := s.authenticate(w, r)
	if !ok || mediaType != "" && !contentTypeIs(w, r, mediaType, smimeType) {
		return posted{}, false
	}
	der, ok := s.readBase64(w, r, what)
	if !ok {
		return posted{}, false
	}
	return posted{requester, clientCert, der}, true
}

// authenticate answers 401/403 itself when the client is not identified.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, *x509.Certificate, bool) {
	name, cert, err := s.requesterOf(r)
	switch {
	case errors.Is(err, errNoClientCert):
		httpError(w, http.StatusUnauthorized, "relay: %s %s: %v", r.Method, r.URL.Path, err)
		return "", nil, false
	case err != nil:
		httpError(w, http.StatusForbidden, "relay: %s %s: %v", r.Method, r.URL.Path, err)
		return "", nil, false
	}
	return name, cert, true
}

// outcome is the relay's handling of one submission.
type outcome struct {
	resp    *ca.Response
	status  int  // HTTP status for the founding-document interface
	dropped bool // the connection was dropped (DropAfterIssue) or abandoned (Timeout)
}

// submit runs one request through the relay's path to the CA with the
// next injected fault: impersonate the user, look up the CA, submit.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, requester, path string, der []byte, opts ca.SubmitOptions, pkcs10 bool) outcome {
	f := s.nextFault()
	ex := Exchange{Path: path, Requester: requester, Fault: f}
	o := s.submitWith(w, r, f, requester, der, opts, pkcs10)
	if o.resp != nil {
		ex.Disposition, ex.RequestID = o.resp.Disposition, o.resp.RequestID
		ex.Submitted = o.resp.RequestID != 0
	}
	if !o.dropped {
		ex.HTTPStatus = o.status
	}
	s.record(ex)
	return o
}

func (s *Server) submitWith(w http.ResponseWriter, r *http.Request, f Fault, requester string, der []byte, opts ca.SubmitOptions, pkcs10 bool) outcome {
	switch f {
	case HTTP500:
		return outcome{status: http.StatusInternalServerError}
	case Timeout:
		select {
		case <-r.Context().Done():
			return outcome{dropped: true, resp: failure(ca.Incomplete, winerr.ERROR_TIMEOUT, "the client gave up")}
		case <-s.closing:
		case <-timeAfter(s.cfg.Hold):
		}
		return outcome{status: http.StatusGatewayTimeout, resp: failure(ca.Incomplete, winerr.ERROR_TIMEOUT, "the relay timed out waiting for the CA")}
	case LookupAfterImpersonation:
		return outcome{status: http.StatusBadGateway, resp: failure(ca.Error, winerr.ERROR_FILE_NOT_FOUND,
			"the CA configuration was looked up after impersonating "+requester+" and is not readable with that token (look the CA up first)")}
	}
	if s.cfg.LookupCAAfterImpersonation {
		return outcome{status: http.StatusBadGateway, resp: failure(ca.Error, winerr.ERROR_FILE_NOT_FOUND,
			"the CA configuration was looked up after impersonating "+requester+" and is not readable with that token (look the CA up first)")}
	}
	opts.Requester, opts.Delegated = requester, true
	switch f {
	case CADeny:
		opts.Inject.Deny = winerr.CERTSRV_E_ADMIN_DENIED_REQUEST
	case CAPend:
		opts.Inject.Pend, opts.Inject.ApproveAfter = true, s.pendApproveAfter()
	case DelegatedCertRequest:
		opts.Inject.FailDelegatedCert = true
	}
	var resp *ca.Response
	var err error
	switch {
	case pkcs10:
		resp, err = s.ca.SubmitPKCS10(der, opts)
	default:
		resp, err = s.ca.Submit(der, opts)
	}
	if err != nil {
		return outcome{status: http.StatusBadGateway, resp: failure(ca.Error, winerr.SCARD_F_INTERNAL_ERROR, err.Error())}
	}
	s.mu.Lock()
	s.owners[resp.RequestID] = requester
	s.mu.Unlock()
	if f == DropAfterIssue {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return outcome{resp: resp, dropped: true}
			}
		}
		return outcome{resp: resp, status: http.StatusBadGateway}
	}
	return outcome{resp: resp, status: http.StatusOK}
}

// --- the founding document's interface ---

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	p, ok := s.readPost(w, r, "", "", "CMC or PKCS#10 request")
	if !ok {
		return
	}
	o := s.submit(w, r, p.requester, PathSubmit, p.der, ca.SubmitOptions{}, false)
	switch {
	case o.dropped:
	case o.resp == nil:
		httpError(w, o.status, "relay: injected failure (HTTP %d)", o.status)
	default:
		writeJSON(w, o.status, resultOf(o.resp))
	}
}

func (s *Server) handleRetrieve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		httpError(w, http.StatusMethodNotAllowed, "relay: %s %s: method not allowed, use GET", r.Method, r.URL.Path)
		return
	}
	requester, _, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	idText := r.URL.Query().Get("id")
	id, err := strconv.Atoi(idText)
	if err != nil || id <= 0 {
		httpError(w, http.StatusBadRequest, "relay: %s: query parameter id=%q is not a request ID (a positive integer)", PathRetrieve, idText)
		return
	}
	s.mu.Lock()
	owner, known := s.owners[id]
	s.mu.Unlock()
	if !known || owner != requester {
		// The same answer for unknown and foreign IDs: no probing.
		httpError(w, http.StatusNotFound, "relay: %s: no request %d submitted by %s", PathRetrieve, id, requester)
		return
	}
	resp, err := s.ca.Retrieve(id)
	if err != nil {
		httpError(w, http.StatusNotFound, "relay: %s: %v", PathRetrieve, err)
		return
	}
	s.record(Exchange{Path: PathRetrieve, Requester: requester, HTTPStatus: http.StatusOK, Disposition: resp.Disposition, RequestID: id})
	writeJSON(w, http.StatusOK, resultOf(resp))
}

// --- EST (RFC 7030) ---

// writeBase64 writes an EST body: base64 in 64-character lines with
// Content-Transfer-Encoding: base64 (RFC 7030 §4.1.3, RFC 7030 §4.2.3,
// RFC 7030 §4.3.2).
func writeBase64(w http.ResponseWriter, status int, contentType string, der []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Transfer-Encoding", "base64")
	w.WriteHeader(status)
	enc := base64.StdEncoding.EncodeToString(der)
	var b strings.Builder
	for len(enc) > 64 {
		b.WriteString(enc[:64])
		b.WriteString("\r\n")
		enc = enc[64:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
	_, _ = w.Write([]byte(b.String()))
}

// contentTypeIs checks the media type (and smime-type, when wanted).
func contentTypeIs(w http.ResponseWriter, r *http.Request, mediaType, smimeType string) bool {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mt == mediaType && (smimeType == "" || strings.EqualFold(params["smime-type"], smimeType)) {
		return true
	}
	want := mediaType
	if smimeType != "" {
		want += "; smime-type=" + smimeType
	}
	httpError(w, http.StatusUnsupportedMediaType, "relay: %s %s: Content-Type %q, want %q (RFC 7030 §4)", r.Method, r.URL.Path, r.Header.Get("Content-Type"), want)
	return false
}

func (s *Server) handleCACerts(w http.ResponseWriter, r *http.Request) {
	if !methodIs(w, r, http.MethodGet) {
		return
	}
	p7, err := ca.EncodeCertsOnly(s.ca.Certificate())
	if err != nil {
		httpError(w, http.StatusInternalServerError, "relay: cacerts: %v", err)
		return
	}
	writeBase64(w, http.StatusOK, ctPKCS7, p7)
}

// handleEST serves simpleenroll and simplereenroll (RFC 7030 §4.2).
func (s *Server) handleEST(reenroll bool) http.HandlerFunc {
	path := PathSimpleEnroll
	if reenroll {
		path = PathSimpleReenroll
	}
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.readPost(w, r, ctPKCS10, "", "PKCS#10")
		if !ok {
			return
		}
		csr, err := ca.ParseCSR(p.der)
		if err != nil {
			httpError(w, http.StatusBadRequest, "relay: %s: body is not a PKCS#10: %v", path, err)
			return
		}
		opts := ca.SubmitOptions{}
		if _, named, _ := csr.Template(); !named {
			opts.Template = s.cfg.ESTTemplate
			if reenroll {
				if t, ok := ca.TemplateOf(p.clientCert); ok {
					opts.Template = t
				}
			}
		}
		if reenroll && !bytes.Equal(csr.RawSubject, p.clientCert.RawSubject) {
			// RFC 7030 §4.2.2: the subject MUST be the certificate's.
			httpError(w, http.StatusBadRequest, "relay: %s: the PKCS#10 subject differs from the certificate being renewed (RFC 7030 §4.2.2)", path)
			return
		}
		// A repeated request for the same key by the same client is the
		// retry of a pending one (RFC 7030 §4.2.3).
		key := p.requester + "|" + spkiHash(csr)
		s.mu.Lock()
		id, pendingBefore := s.estPend[key]
		s.mu.Unlock()
		var o outcome
		if pendingBefore {
			resp, err := s.ca.Retrieve(id)
			if err != nil {
				httpError(w, http.StatusNotFound, "relay: %s: %v", path, err)
				return
			}
			o = outcome{resp: resp, status: http.StatusOK}
			s.record(Exchange{Path: path, Requester: p.requester, HTTPStatus: http.StatusOK, Disposition: resp.Disposition, RequestID: id})
		} else {
			o = s.submit(w, r, p.requester, path, p.der, opts, true)
		}
		switch {
		case o.dropped:
			return
		case o.resp == nil:
			httpError(w, o.status, "relay: injected failure (HTTP %d)", o.status)
			return
		}
		resp := o.resp
		s.mu.Lock()
		if resp.Disposition == ca.Pending {
			s.estPend[key] = resp.RequestID
		} else {
			delete(s.estPend, key)
		}
		s.mu.Unlock()
		switch {
		case resp.Disposition == ca.Issued || resp.Disposition == ca.IssuedOutOfBand:
			p7, err := ca.EncodeCertsOnly(resp.Cert)
			if err != nil {
				httpError(w, http.StatusInternalServerError, "relay: %s: %v", path, err)
				return
			}
			writeBase64(w, http.StatusOK, ctCertsOnly, p7)
		case resp.Disposition == ca.Pending:
			// RFC 7030 §4.2.3: 202 with Retry-After; the client repeats
			// the same request.
			w.Header().Set("Retry-After", "60")
			httpError(w, http.StatusAccepted, "%s: request %d pending", resp.Disposition.CRName(), resp.RequestID)
		case o.status != http.StatusOK:
			httpError(w, o.status, "%s: %v", resp.Disposition.CRName(), resp.Status)
		case resp.Disposition == ca.Error || resp.Disposition == ca.Incomplete:
			httpError(w, http.StatusBadGateway, "%s: %v", resp.Disposition.CRName(), resp.Status)
		default:
			httpError(w, http.StatusForbidden, "%s: %v", resp.Disposition.CRName(), resp.Status)
		}
	}
}

func spkiHash(csr *ca.CSR) string {
	spki, _ := x509.MarshalPKIXPublicKey(csr.PublicKey)
	h := sha256.Sum256(spki)
	return hex.EncodeToString(h[:])
}

// handleFullCMC serves /fullcmc (RFC 7030 §4.3): a CA decision, whatever
// it is, is a 200 with a CMC Full PKI Response; only relay failures are
// HTTP errors.
func (s *Server) handleFullCMC(w http.ResponseWriter, r *http.Request) {
	p, ok := s.readPost(w, r, ctPKCS7, "CMC-request", "CMC request")
	if !ok {
		return
	}
	o := s.submit(w, r, p.requester, PathFullCMC, p.der, ca.SubmitOptions{}, false)
	switch {
	case o.dropped:
		return
	case o.resp == nil || o.status != http.StatusOK:
		msg := "injected failure"
		if o.resp != nil {
			msg = fmt.Sprintf("%s: %v", o.resp.Disposition.CRName(), o.resp.Status)
		}
		httpError(w, o.status, "relay: %s", msg)
		return
	}
	body, err := s.ca.EncodeCMCResponse(o.resp)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "relay: fullcmc: %v", err)
		return
	}
	writeBase64(w, http.StatusOK, ctCMCResp, body)
}

func codeOf(err error) winerr.Code {
	c, _ := winerr.FromError(err)
	return c
}
