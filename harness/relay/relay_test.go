package relay

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/winerr"
)

func TestSubmitRenewalFoundingShape(t *testing.T) {
	e := newEnv(t, nil)
	resp, body, err := post(t, e.client(&e.cred), e.srv.URL()+PathSubmit, "text/plain", e.renewalCMC(t, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	r := decodeResult(t, body)
	if resp.StatusCode != 200 || r.Disposition != "CR_DISP_ISSUED" || r.DispositionValue != 3 || r.Status != "0x00000000" {
		t.Fatalf("HTTP %d %+v", resp.StatusCode, r)
	}
	der, err := base64.StdEncoding.DecodeString(r.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.PublicKeyEqual(cert.PublicKey, testKey(t, 1).Public()) || cert.CheckSignatureFrom(e.ca.Certificate()) != nil {
		t.Error("the certificate is not the new key's, issued by the CA")
	}
	if ex := e.srv.Exchanges(); len(ex) != 1 || ex[0].Requester != alice || !ex[0].Submitted {
		t.Errorf("exchanges %+v", ex)
	}
}

// TestRegInfoTemplateThroughRelay: the founding document adds the
// template as a RegInfo pair, without the extension.
func TestRegInfoTemplateThroughRelay(t *testing.T) {
	e := newEnv(t, nil)
	der, err := ca.BuildRenewal(ca.RenewalRequest{OldCert: e.old, OldKey: testKey(t, 0), NewKey: testKey(t, 1),
		OmitTemplate: true, RegInfo: map[string]string{"CertificateTemplate": tmplSCL.Name}})
	if err != nil {
		t.Fatal(err)
	}
	_, body, err := post(t, e.client(&e.cred), e.srv.URL()+PathSubmit, "", der)
	if err != nil {
		t.Fatal(err)
	}
	if r := decodeResult(t, body); r.Disposition != "CR_DISP_ISSUED" {
		t.Errorf("%+v", r)
	}
}

func TestClientCertificateRequired(t *testing.T) {
	e := newEnv(t, nil)
	before := e.ca.IssuedCount()
	for _, path := range []string{PathSubmit, PathSimpleEnroll, PathSimpleReenroll, PathFullCMC} {
		resp, body, err := post(t, e.client(nil), e.srv.URL()+path, "application/pkcs10", []byte{1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "client certificate") {
			t.Errorf("%s without a client certificate: HTTP %d %s", path, resp.StatusCode, body)
		}
	}
	if e.ca.IssuedCount() != before || len(e.srv.Exchanges()) != 0 {
		t.Error("a request without a client certificate reached the CA")
	}
}

func TestWrongCARefused(t *testing.T) {
	e := newEnv(t, nil)
	other, err := ca.New(ca.Options{Name: "Another CA", Clock: e.clk.Now, Key: testKey(t, 5), Templates: []ca.Template{sclTemplate()}})
	if err != nil {
		t.Fatal(err)
	}
	foreign := e.enroll(t, other, 2, alice, tmplSCL)
	cred := tls.Certificate{Certificate: [][]byte{foreign.Raw}, PrivateKey: testKey(t, 2)}
	_, _, err = post(t, e.client(&cred), e.srv.URL()+PathSubmit, "", e.renewalCMC(t, 1, nil))
	if err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
	// A revoked certificate of the right CA is refused the same way.
	e.ca.Revoke(e.old.SerialNumber)
	if _, _, err := post(t, e.client(&e.cred), e.srv.URL()+PathSubmit, "", e.renewalCMC(t, 1, nil)); err == nil {
		t.Fatal("a revoked certificate was accepted")
	}
	if len(e.srv.Exchanges()) != 0 {
		t.Errorf("refused handshakes reached the handler: %+v", e.srv.Exchanges())
	}
}

func TestIdentityMapping(t *testing.T) {
	cases := []struct {
		name      string
		requester string
		tmpl      ca.TemplateID
		identity  func(*x509.Certificate) (string, error)
		want      string
		status    int
	}{
		{"UPN from the SAN", alice, tmplSCL, nil, alice, 200},
		{"common name without SAN", "bob", ca.TemplateID{Name: "Plain"}, nil, "bob", 200},
		{"custom mapping", alice, tmplSCL, func(c *x509.Certificate) (string, error) { return `CONTOSO\alice`, nil }, `CONTOSO\alice`, 200},
		{"mapping refuses", alice, tmplSCL, func(c *x509.Certificate) (string, error) { return "", errors.New("not in the directory") }, "", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Identity = tc.identity })
			cert := e.enroll(t, e.ca, 3, tc.requester, tc.tmpl)
			cred := tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: testKey(t, 3)}
			csr, err := ca.BuildCSR(testKey(t, 1), cert.Subject, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, body, err := post(t, e.client(&cred), e.srv.URL()+PathSubmit, "", csr)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			var got string
			if ex := e.srv.Exchanges(); len(ex) > 0 {
				got = ex[0].Requester
			}
			if got != tc.want {
				t.Errorf("requester %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPendingRetrievedDaysLater(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PendApproveAfter = 72 * time.Hour })
	e.srv.Inject(CAPend)
	c := e.client(&e.cred)
	_, body, err := post(t, c, e.srv.URL()+PathSubmit, "", e.renewalCMC(t, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	r := decodeResult(t, body)
	if r.Disposition != "CR_DISP_UNDER_SUBMISSION" || r.RequestID == 0 || r.Certificate != "" {
		t.Fatalf("%+v", r)
	}
	retrieve := func(c *http.Client, id string) (int, SubmitResult) {
		resp, err := c.Get(e.srv.URL() + PathRetrieve + "?id=" + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return resp.StatusCode, SubmitResult{}
		}
		return resp.StatusCode, decodeResult(t, b)
	}
	id := strconv.Itoa(r.RequestID)
	e.clk.Advance(24 * time.Hour)
	if _, r := retrieve(c, id); r.Disposition != "CR_DISP_UNDER_SUBMISSION" {
		t.Errorf("a day later: %+v", r)
	}
	e.clk.Advance(48 * time.Hour)
	_, r2 := retrieve(c, id)
	if r2.Disposition != "CR_DISP_ISSUED" || r2.Certificate == "" {
		t.Errorf("three days later: %+v", r2)
	}
	// Only the submitter retrieves; bad IDs are 400.
	bob := e.enroll(t, e.ca, 3, "bob@contoso.test", tmplSCL)
	bobCred := tls.Certificate{Certificate: [][]byte{bob.Raw}, PrivateKey: testKey(t, 3)}
	if st, _ := retrieve(e.client(&bobCred), id); st != http.StatusNotFound {
		t.Errorf("bob retrieving alice's request: HTTP %d", st)
	}
	for _, bad := range []string{"", "x", "-1", "99999999999999999999"} {
		if st, _ := retrieve(c, bad); st != http.StatusBadRequest {
			t.Errorf("id=%q: HTTP %d, want 400", bad, st)
		}
	}
}

// TestFaults: every injected fault, what the client sees and whether the
// CA issued; then the next request succeeds.
func TestFaults(t *testing.T) {
	type seen struct {
		HTTP        int // 0: transport error
		Disposition string
		Status      winerr.Code
		CAIssued    bool
	}
	cases := []struct {
		f    Fault
		want seen
	}{
		{HTTP500, seen{HTTP: 500}},
		{DropAfterIssue, seen{HTTP: 0, CAIssued: true}},
		{Timeout, seen{HTTP: 0}},
		{CADeny, seen{HTTP: 200, Disposition: "CR_DISP_DENIED", Status: winerr.CERTSRV_E_ADMIN_DENIED_REQUEST}},
		{CAPend, seen{HTTP: 200, Disposition: "CR_DISP_UNDER_SUBMISSION"}},
		{LookupAfterImpersonation, seen{HTTP: 502, Disposition: "CR_DISP_ERROR", Status: winerr.ERROR_FILE_NOT_FOUND}},
		{DelegatedCertRequest, seen{HTTP: 200, Disposition: "CR_DISP_ERROR", Status: winerr.ERROR_NO_SUCH_USER}},
	}
	if len(cases) != len(Faults()) {
		t.Fatalf("%d cases for %d faults", len(cases), len(Faults()))
	}
	for _, tc := range cases {
		t.Run(tc.f.String(), func(t *testing.T) {
			e := newEnv(t, nil)
			e.srv.Inject(tc.f)
			c := e.client(&e.cred)
			if tc.f == Timeout {
				c.Timeout = 300 * time.Millisecond // the client gives up; the relay holds until then
			}
			issued := e.ca.IssuedCount()
			resp, body, err := post(t, c, e.srv.URL()+PathSubmit, "", e.renewalCMC(t, 1, nil))
			var got seen
			if err == nil {
				got.HTTP = resp.StatusCode
				if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
					r := decodeResult(t, body)
					got.Disposition, got.Status = r.Disposition, r.StatusCode()
				}
			}
			got.CAIssued = e.ca.IssuedCount() > issued
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			// The retry (a new key, as after a rollback) succeeds.
			c.Timeout = 0
			_, body, err = post(t, c, e.srv.URL()+PathSubmit, "", e.renewalCMC(t, 2, nil))
			if err != nil {
				t.Fatal(err)
			}
			if r := decodeResult(t, body); r.Disposition != "CR_DISP_ISSUED" {
				t.Errorf("retry: %+v", r)
			}
		})
	}
}

func TestLookupAfterImpersonationConfig(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LookupCAAfterImpersonation = true })
	resp, body, err := post(t, e.client(&e.cred), e.srv.URL()+PathSubmit, "", e.renewalCMC(t, 1, nil))
	if err != nil {
		t.Fatal(err)
	}
	if r := decodeResult(t, body); resp.StatusCode != 502 || r.StatusCode() != winerr.ERROR_FILE_NOT_FOUND {
		t.Errorf("HTTP %d %+v", resp.StatusCode, r)
	}
}
