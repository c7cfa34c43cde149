package relay

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/ca"
)

// estBody checks the headers RFC 7030 §4 prescribes and decodes the
// base64 body.
func estBody(t *testing.T, resp *http.Response, body []byte, contentType string) []byte {
	t.Helper()
	if got := resp.Header.Get("Content-Type"); got != contentType {
		t.Errorf("Content-Type %q, want %q", got, contentType)
	}
	if got := resp.Header.Get("Content-Transfer-Encoding"); got != "base64" {
		t.Errorf("Content-Transfer-Encoding %q, want base64", got)
	}
	der, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(body)))
	if err != nil {
		t.Fatalf("body is not base64: %v", err)
	}
	return der
}

func TestESTCACerts(t *testing.T) {
	e := newEnv(t, nil)
	resp, err := e.client(nil).Get(e.srv.URL() + PathCACerts) // no client certificate needed (RFC 7030 §4.1.1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d %s", resp.StatusCode, body)
	}
	certs, err := ca.ParseCertsOnly(estBody(t, resp, body, "application/pkcs7-mime"))
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || !certs[0].Equal(e.ca.Certificate()) {
		t.Errorf("cacerts holds %d certificates, want the CA's", len(certs))
	}
}

func TestESTSimpleEnrollAndReenroll(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(&e.cred)
	for _, tc := range []struct {
		path    string
		subject pkix.Name
	}{
		{PathSimpleEnroll, pkix.Name{CommonName: "alice second device"}},
		{PathSimpleReenroll, e.old.Subject},
	} {
		t.Run(tc.path, func(t *testing.T) {
			csr, err := ca.BuildCSRRaw(testKey(t, 1), e.old.RawSubject, nil)
			if tc.path == PathSimpleEnroll {
				csr, err = ca.BuildCSR(testKey(t, 1), tc.subject, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, body, err := post(t, c, e.srv.URL()+tc.path, "application/pkcs10", csr)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("HTTP %d %s", resp.StatusCode, body)
			}
			certs, err := ca.ParseCertsOnly(estBody(t, resp, body, "application/pkcs7-mime; smime-type=certs-only"))
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) != 1 || !ca.PublicKeyEqual(certs[0].PublicKey, testKey(t, 1).Public()) {
				t.Fatalf("got %d certificates, want the new key's", len(certs))
			}
			if tmpl, _ := ca.TemplateOf(certs[0]); !tmpl.OID.Equal(tmplSCL.OID) {
				t.Errorf("template %v, want the renewed certificate's %v", tmpl, tmplSCL)
			}
		})
	}
}

func TestESTFullCMC(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client(&e.cred)
	const ct = "application/pkcs7-mime; smime-type=CMC-request"
	resp, body, err := post(t, c, e.srv.URL()+PathFullCMC, ct, e.renewalCMC(t, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d %s", resp.StatusCode, body)
	}
	r, err := ca.ParseCMCResponse(estBody(t, resp, body, "application/pkcs7-mime; smime-type=CMC-response"), e.ca.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != ca.CMCSuccess || len(r.Certificates) != 1 || !ca.PublicKeyEqual(r.Certificates[0].PublicKey, testKey(t, 1).Public()) {
		t.Errorf("success response: %+v", r)
	}
	// A denial is still a 200 with a CMC response saying failed (RFC 7030 §4.3.2).
	e.srv.Inject(CADeny)
	resp, body, err = post(t, c, e.srv.URL()+PathFullCMC, ct, e.renewalCMC(t, 2, nil))
	if err != nil {
		t.Fatal(err)
	}
	r, err = ca.ParseCMCResponse(estBody(t, resp, body, "application/pkcs7-mime; smime-type=CMC-response"), e.ca.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || r.Status != ca.CMCFailed || r.FailInfo != ca.CMCFailBadRequest || len(r.Certificates) != 0 ||
		!strings.Contains(r.StatusString, "CR_DISP_DENIED") {
		t.Errorf("denial: HTTP %d %+v", resp.StatusCode, r)
	}
	// Pending: status pending with a token.
	e.srv.Inject(CAPend)
	_, body, _ = post(t, c, e.srv.URL()+PathFullCMC, ct, e.renewalCMC(t, 2, nil))
	if r, err = ca.ParseCMCResponse(estBody(t, resp, body, "application/pkcs7-mime; smime-type=CMC-response"), e.ca.Certificate()); err != nil || r.Status != ca.CMCPending || len(r.PendToken) == 0 {
		t.Errorf("pending: %+v %v", r, err)
	}
}

// TestESTPendingRetry: RFC 7030 §4.2.3: 202 with Retry-After, and the
// same request repeated later gets the certificate.
func TestESTPendingRetry(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PendApproveAfter = 48 * time.Hour })
	c := e.client(&e.cred)
	csr, err := ca.BuildCSRRaw(testKey(t, 1), e.old.RawSubject, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Inject(CAPend)
	var codes []int
	for _, wait := range []time.Duration{0, time.Hour, 48 * time.Hour} {
		e.clk.Advance(wait)
		resp, _, err := post(t, c, e.srv.URL()+PathSimpleReenroll, "application/pkcs10", csr)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 202 && resp.Header.Get("Retry-After") == "" {
			t.Error("202 without Retry-After")
		}
	}
	if want := []int{202, 202, 200}; !equalInts(codes, want) {
		t.Errorf("HTTP codes %v, want %v", codes, want)
	}
	if n := len(e.srv.Exchanges()); n != 3 || e.srv.Exchanges()[2].RequestID != e.srv.Exchanges()[0].RequestID {
		t.Errorf("the retries were not retrievals of the first request: %+v", e.srv.Exchanges())
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBadHTTPInput: clear 4xx answers naming what is wrong, nothing
// reaches the CA.
func TestBadHTTPInput(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	c := e.client(&e.cred)
	csr, err := ca.BuildCSRRaw(testKey(t, 1), e.old.RawSubject, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherSubject, err := ca.BuildCSR(testKey(t, 1), pkix.Name{CommonName: "mallory"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		mention                      string
	}{
		{"unknown path", "GET", "/nope", "", "", 404, "no endpoint"},
		{"GET on simpleenroll", "GET", PathSimpleEnroll, "", "", 405, "method not allowed"},
		{"PUT on submit", "PUT", PathSubmit, "", "", 405, "method not allowed"},
		{"wrong content type", "POST", PathSimpleEnroll, "text/plain", b64(csr), 415, "application/pkcs10"},
		{"fullcmc without smime-type", "POST", PathFullCMC, "application/pkcs7-mime", "AAAA", 415, "CMC-request"},
		{"not base64", "POST", PathSubmit, "", "%%%not base64", 400, "not base64"},
		{"empty body", "POST", PathSubmit, "", "", 400, "empty body"},
		{"not a PKCS#10", "POST", PathSimpleEnroll, "application/pkcs10", b64([]byte("hello")), 400, "not a PKCS#10"},
		{"reenroll with another subject", "POST", PathSimpleReenroll, "application/pkcs10", b64(otherSubject), 400, "RFC 7030 §4.2.2"},
		{"body too large", "POST", PathSubmit, "", strings.Repeat("A", 8192), 413, "larger than 4096"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.srv.URL()+tc.path, bytes.NewBufferString(tc.body))
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.mention) {
				t.Errorf("HTTP %d %q, want %d mentioning %q", resp.StatusCode, body, tc.status, tc.mention)
			}
		})
	}
	if n := len(e.srv.Exchanges()); n != 0 {
		t.Errorf("%d bad requests reached the CA", n)
	}
}
