package ca

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

// OpenSSL is the independent parser: its view of our CMS must match ours.

func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	testutil.NeedTool(t, "openssl", "openssl")
	cmd := exec.Command("openssl", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String() + errb.String(), err
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenSSLCMSPrint(t *testing.T) {
	e := newEnv(t, nil)
	der, err := BuildRenewal(e.renewal(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := openssl(t, "cms", "-cmsout", "-print", "-inform", "DER", "-in", writeTemp(t, "renewal.der", der))
	if err != nil {
		t.Fatalf("openssl cms -print: %v\n%s", err, out)
	}
	certPart, signerPart, ok := strings.Cut(out, "signerInfos:")
	if !ok {
		t.Fatalf("no signerInfos in:\n%s", out)
	}
	// One block per SignerInfo, keyed by its version line.
	type signer struct {
		Version string
		SID     string
		Serial  string
	}
	var signers []signer
	sidRE := regexp.MustCompile(`d\.(subjectKeyIdentifier|issuerAndSerialNumber):`)
	serialRE := regexp.MustCompile(`serialNumber: (\d+)`)
	for _, block := range regexp.MustCompile(`(?m)^\s+version: `).Split(signerPart, -1)[1:] {
		var s signer
		s.Version, _, _ = strings.Cut(block, "\n")
		if m := sidRE.FindStringSubmatch(block); m != nil {
			s.SID = m[1]
		}
		if m := serialRE.FindStringSubmatch(block); m != nil && s.SID == "issuerAndSerialNumber" {
			s.Serial = m[1]
		}
		signers = append(signers, s)
	}
	want := []signer{
		{Version: "3", SID: "subjectKeyIdentifier"},
		{Version: "1", SID: "issuerAndSerialNumber", Serial: e.old.SerialNumber.String()},
	}
	if d := cmp.Diff(want, signers); d != "" {
		t.Errorf("openssl's signerInfos (-want +got):\n%s\n%s", d, signerPart)
	}
	for _, s := range []string{
		"contentType: pkcs7-signedData (1.2.840.113549.1.7.2)",
		"eContentType: id-cct-PKIData (1.3.6.1.5.5.7.12.2)",
		"serialNumber: " + e.old.SerialNumber.String(),
		"subject: O=Contoso, CN=Alice Example",
		"issuer: CN=Contoso Test CA",
	} {
		if !strings.Contains(certPart, s) {
			t.Errorf("openssl output lacks %q:\n%s", s, certPart)
		}
	}
	if n := strings.Count(signerPart, "OBJECT:id-cct-PKIData (1.3.6.1.5.5.7.12.2)"); n != 2 {
		t.Errorf("%d content-type attributes with id-cct-PKIData, want 2", n)
	}
}

// OpenSSL also verifies both signatures. It needs a certificate for the
// SKI signer: a throwaway self-signed one for the new key with that SKI.
func TestOpenSSLCMSVerify(t *testing.T) {
	e := newEnv(t, nil)
	newKey := testKey(t, kNew)
	ski, err := SubjectKeyID(newKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "new key"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), SubjectKeyId: ski}
	helper, err := x509.CreateCertificate(nil, tmpl, tmpl, newKey.Public(), newKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile := writeTemp(t, "newkey.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: helper}))

	for _, tc := range []struct {
		name string
		mod  func(*RenewalRequest)
		ok   bool
	}{
		{"well-formed", func(*RenewalRequest) {}, true},
		{"reversed signers", func(r *RenewalRequest) { r.ReverseSigners = true }, true},
		{"old signer digest corrupted", func(r *RenewalRequest) { r.CorruptDigest = OldSigner }, false},
		{"old certificate signed by another key", func(r *RenewalRequest) { r.SignOldWith = testKey(t, kOther) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.renewal(t)
			tc.mod(&r)
			der, err := BuildRenewal(r)
			if err != nil {
				t.Fatal(err)
			}
			content := filepath.Join(t.TempDir(), "pkidata.der")
			out, err := openssl(t, "cms", "-verify", "-noverify", "-inform", "DER", "-in", writeTemp(t, "r.der", der),
				"-certfile", certFile, "-out", content)
			if (err == nil) != tc.ok {
				t.Fatalf("openssl verify ok=%v, want %v:\n%s", err == nil, tc.ok, out)
			}
			if !tc.ok {
				return
			}
			got, err := os.ReadFile(content)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParseRenewal(der)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, p.SignedData.EContent) {
				t.Error("openssl's eContent differs from ours")
			}
		})
	}
}

func TestOpenSSLCertsOnly(t *testing.T) {
	e := newEnv(t, nil)
	der, err := EncodeCertsOnly(e.old, e.ca.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	out, err := openssl(t, "pkcs7", "-inform", "DER", "-print_certs", "-noout", "-in", writeTemp(t, "chain.p7b", der))
	if err != nil {
		t.Fatalf("openssl pkcs7: %v\n%s", err, out)
	}
	if got := strings.Count(out, "subject="); got != 2 || !strings.Contains(out, "Alice Example") || !strings.Contains(out, "Contoso Test CA") {
		t.Errorf("openssl pkcs7 -print_certs:\n%s", out)
	}
}
