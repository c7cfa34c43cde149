package relay

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/vclock"
)

var (
	// The tests' CA serves the template `cardharness relay` serves.
	tmplSCL = SmartcardLogonTemplate
	alice   = "alice@contoso.test"

	keyOnce sync.Once
	keyPool []*rsa.PrivateKey
)

// testKey returns one of a few RSA-2048 keys generated once per binary.
func testKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		for range 6 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keyPool = append(keyPool, k)
		}
	})
	return keyPool[i]
}

type env struct {
	clk  *vclock.Clock
	ca   *ca.CA
	srv  *Server
	old  *x509.Certificate // alice's card certificate (key 0)
	cred tls.Certificate   // alice's TLS client credential
}

func sclTemplate() ca.Template { return DefaultTemplates()[0] }

// peer is alice's certificate as a verified TLS peer chain.
func (e *env) peer() []*x509.Certificate { return []*x509.Certificate{e.old} }

func newEnv(t testing.TB, mod func(*Config)) *env {
	t.Helper()
	clk := vclock.New(time.Now().Truncate(time.Second))
	c, err := ca.New(ca.Options{Name: "Relay Test CA", Clock: clk.Now, Key: testKey(t, 4),
		Templates: []ca.Template{sclTemplate(), {ID: ca.TemplateID{Name: "Plain"}, EnrolleeSuppliesSubject: true}}})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{clk: clk, ca: c}
	e.old = e.enroll(t, c, 0, alice, tmplSCL)
	e.cred = tls.Certificate{Certificate: [][]byte{e.old.Raw}, PrivateKey: testKey(t, 0)}
	cfg := Config{CA: c, ESTTemplate: tmplSCL}
	if mod != nil {
		mod(&cfg)
	}
	if e.srv, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	clk.Advance(200 * 24 * time.Hour)
	return e
}

// enroll issues a certificate for key i to requester from c.
func (e *env) enroll(t testing.TB, c *ca.CA, i int, requester string, tmpl ca.TemplateID) *x509.Certificate {
	t.Helper()
	te, err := tmpl.Extension()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ca.BuildCSR(testKey(t, i), pkix.Name{CommonName: requester}, []pkix.Extension{te})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.IssueFromCSR(csr, ca.TemplateID{}, requester)
	if err != nil || resp.Disposition != ca.Issued {
		t.Fatalf("enroll %s: %v %v", requester, resp.Disposition, err)
	}
	return resp.Cert
}

// client returns an HTTPS client trusting the relay's CA, presenting
// cred (if any).
func (e *env) client(cred *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(e.ca.Certificate())
	cfg := &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12}
	if cred != nil {
		cfg.Certificates = []tls.Certificate{*cred}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// renewalCMC builds alice's CMC renewal with key newKey.
func (e *env) renewalCMC(t testing.TB, newKey int, reg map[string]string) []byte {
	t.Helper()
	der, err := ca.BuildRenewal(ca.RenewalRequest{OldCert: e.old, OldKey: testKey(t, 0), NewKey: testKey(t, newKey),
		Template: tmplSCL, RegInfo: reg})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func post(t *testing.T, c *http.Client, url, contentType string, body []byte) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(base64.StdEncoding.EncodeToString(body)))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func decodeResult(t *testing.T, b []byte) SubmitResult {
	t.Helper()
	var r SubmitResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, b)
	}
	return r
}
