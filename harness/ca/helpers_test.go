package ca

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test keys: RSA-2048, generated once with openssl into testdata so that
// every test binary (and every fuzz worker) sees the same keys, CA and
// certificates.
const (
	kCA = iota
	kCA2
	kOld
	kNew
	kOther
	kAgent
	kAlt
	kOld2
)

var (
	keysOnce sync.Once
	keys     []*rsa.PrivateKey
)

func testKey(tb testing.TB, i int) *rsa.PrivateKey {
	tb.Helper()
	keysOnce.Do(func() {
		data, err := os.ReadFile("testdata/rsa2048-keys.pem")
		if err != nil {
			panic(err)
		}
		for {
			var b *pem.Block
			b, data = pem.Decode(data)
			if b == nil {
				break
			}
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				panic(err)
			}
			keys = append(keys, k.(*rsa.PrivateKey))
		}
	})
	if i >= len(keys) {
		tb.Fatalf("test key %d missing (have %d)", i, len(keys))
	}
	return keys[i]
}

// clock is a virtual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// deterministic randomness for serial numbers.
func detRand(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

var (
	// A v2 template like a copy of "Smartcard Logon".
	tmplSCL = TemplateID{OID: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 8, 4711, 1, 2, 3, 4, 5, 101}, Major: 100, Minor: 3, Name: "CardharnessSmartcardLogon"}
	// Another v2 template on the same CA.
	tmplOther = TemplateID{OID: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 8, 4711, 1, 2, 3, 4, 5, 102}, Major: 100, Minor: 1, Name: "CardharnessUser"}
	// A v1 template (name only).
	tmplV1 = TemplateID{Name: "SmartcardUser"}

	oidClientAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

const (
	alice     = "alice@contoso.test"
	aliceNT   = `CONTOSO\alice`
	webServer = `CONTOSO\websrv`
)

func directory(name string) (Identity, bool) {
	switch strings.ToLower(name) {
	case alice, strings.ToLower(aliceNT):
		return Identity{Name: aliceNT, UPN: alice}, true
	case strings.ToLower(webServer):
		return Identity{Name: webServer, UPN: "websrv$@contoso.test"}, true
	case "bob@contoso.test":
		return Identity{Name: `CONTOSO\bob`, UPN: "bob@contoso.test"}, true
	}
	return Identity{}, false
}

func ekuExt(oids ...asn1.ObjectIdentifier) pkix.Extension {
	v, err := asn1.Marshal(oids)
	if err != nil {
		panic(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: v}
}

func sclTemplate() Template {
	return Template{
		ID:                       tmplSCL,
		ValidExistingCertificate: true,
		Validity:                 365 * 24 * time.Hour,
		Extensions:               []pkix.Extension{ekuExt(OIDSmartcardLogon, oidClientAuth)},
	}
}

// env is a CA with alice's old smart-card certificate, 300 days later.
type env struct {
	clk   *clock
	ca    *CA
	old   *x509.Certificate
	opts  Options
	agent *x509.Certificate
}

func newEnv(tb testing.TB, mod func(*Options)) *env {
	tb.Helper()
	clk := &clock{t: t0}
	opts := Options{
		Name:              "Contoso Test CA",
		Key:               testKey(tb, kCA),
		Clock:             clk.Now,
		Rand:              detRand(1),
		RequesterIdentity: directory,
		Templates: []Template{sclTemplate(),
			{ID: tmplOther, ValidExistingCertificate: true, PendAllRequests: true},
			{ID: tmplV1}},
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{clk: clk, ca: c, opts: opts}
	e.old = e.enroll(tb, c, testKey(tb, kOld), alice, tmplSCL)
	clk.Advance(300 * 24 * time.Hour)
	return e
}

// enroll issues a first certificate (plain PKCS#10) to requester.
func (e *env) enroll(tb testing.TB, c *CA, key crypto.Signer, requester string, tmpl TemplateID, exts ...pkix.Extension) *x509.Certificate {
	tb.Helper()
	te, err := tmpl.Extension()
	if err != nil {
		tb.Fatal(err)
	}
	subject := pkix.Name{CommonName: "Alice Example", Organization: []string{"Contoso"}}
	if requester != alice {
		subject = pkix.Name{CommonName: requester}
	}
	csr, err := BuildCSR(key, subject, append([]pkix.Extension{te}, exts...))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := c.IssueFromCSR(csr, TemplateID{}, requester)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.Disposition == Pending {
		if resp, err = c.Approve(resp.RequestID); err != nil {
			tb.Fatal(err)
		}
	}
	if resp.Disposition != Issued {
		tb.Fatalf("first enrollment: %v %v (%s)", resp.Disposition, resp.Status, resp.Explanation)
	}
	return resp.Cert
}

// issueAgent gives the web server an enrollment agent certificate.
func (e *env) issueAgent(tb testing.TB, withEKU bool) {
	tb.Helper()
	var exts []pkix.Extension
	if withEKU {
		exts = append(exts, ekuExt(OIDCertificateRequestAgt))
	} else {
		exts = append(exts, ekuExt(oidClientAuth))
	}
	e.ca.SetTemplate(Template{ID: TemplateID{Name: "EnrollmentAgent"}})
	e.agent = e.enroll(tb, e.ca, testKey(tb, kAgent), webServer, TemplateID{Name: "EnrollmentAgent"}, exts...)
}

func (e *env) renewal(tb testing.TB) RenewalRequest {
	return RenewalRequest{OldCert: e.old, OldKey: testKey(tb, kOld), NewKey: testKey(tb, kNew), Template: tmplSCL}
}

// submitRenewal builds the env's renewal request and submits it as alice;
// an error building or submitting fails the test (a disposition other than
// Issued is the caller's to check).
func (e *env) submitRenewal(tb testing.TB) *Response {
	tb.Helper()
	der, err := BuildRenewal(e.renewal(tb))
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := e.ca.SubmitRenewal(der, alice)
	if err != nil {
		tb.Fatal(err)
	}
	return resp
}
