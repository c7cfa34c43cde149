package tools_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/harness/relay"
	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/harness/tools"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/pcsc"
)

// engineConf is an OpenSSL configuration that loads libp11's pkcs11
// engine (Debian libengine-pkcs11-openssl) over OpenSC's PKCS#11 module
// and limits TLS client signatures to PKCS#1 v1.5: OpenSC 0.23's GIDS
// driver offers no RSA-PSS (README "The relay").
const engineConf = `openssl_conf = openssl_init
[openssl_init]
engines = engine_section
ssl_conf = ssl_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = @ENGINE@
MODULE_PATH = @MODULE@
PIN = 123456
init = 0
[ssl_section]
system_default = tls_defaults
[tls_defaults]
ClientSignatureAlgorithms = RSA+SHA256:RSA+SHA384:RSA+SHA512
`

// TestPublicToolingRenewsThroughRelay: a client nobody here wrote (curl
// with the pkcs11 engine over OpenSC) renews the card's certificate
// through the relay's EST /simplereenroll, authenticating with the card's
// old key in TLS 1.2; pkcs11-tool writes the new certificate to the
// card; the host model sees it after reinsertion and signs with it.
func TestPublicToolingRenewsThroughRelay(t *testing.T) {
	var paths []string
	for _, pat := range []string{"/usr/lib/*/engines-3/pkcs11.so", "/usr/lib/*/opensc-pkcs11.so"} {
		m, _ := filepath.Glob(pat)
		if len(m) == 0 {
			t.Fatalf("%s missing: apt-get install libengine-pkcs11-openssl opensc-pkcs11 (or make deps)", pat)
		}
		paths = append(paths, m[0])
	}
	st, p := peerOnStack(t)
	conf := p.write("openssl.cnf", []byte(strings.NewReplacer("@ENGINE@", paths[0], "@MODULE@", paths[1]).Replace(engineConf)))
	p.r.Env = append(p.r.Env, "OPENSSL_CONF="+conf)

	c, err := ca.New(ca.Options{Name: "cardharness relay CA", Templates: relay.DefaultTemplates()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relay.New(relay.Config{CA: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	caPath := p.write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate().Raw}))
	const user = "alice@contoso.test"

	// The old key and certificate, made with OpenSC and OpenSSL.
	mustContain(t, "keygen old", p.run("pkcs11-tool", "--login", "--pin", "123456", "--keypairgen", "--key-type", "rsa:2048", "--label", "old"), "Key pair generated")
	p.run("openssl", "req", "-new", "-engine", "pkcs11", "-keyform", "engine", "-key", "pkcs11:object=old;type=private",
		"-subj", "/CN="+user, "-outform", "DER", "-out", p.file("old.csr"))
	resp, err := c.IssueFromCSR(p.read("old.csr"), relay.SmartcardLogonTemplate, user)
	if err != nil || resp.Disposition != ca.Issued {
		t.Fatalf("old certificate: %v %v", resp.Disposition.CRName(), err)
	}
	old := resp.Cert
	p.write("old.der", old.Raw)
	p.run("pkcs11-tool", "--login", "--pin", "123456", "--write-object", p.file("old.der"), "--type", "cert", "--label", "old", "--id", idOf(t, p, "old"))
	oldID := idOf(t, p, "old")

	// The new key, its PKCS#10 with the old subject (RFC 7030 §4.2.2).
	mustContain(t, "keygen new", p.run("pkcs11-tool", "--login", "--pin", "123456", "--keypairgen", "--key-type", "rsa:2048", "--label", "new"), "Key pair generated")
	newID := idOf(t, p, "new")
	p.run("openssl", "req", "-new", "-engine", "pkcs11", "-keyform", "engine", "-key", "pkcs11:object=new;type=private",
		"-subj", "/CN="+user, "-outform", "DER", "-out", p.file("new.csr"))
	p.write("new.csr.b64", []byte(base64.StdEncoding.EncodeToString(p.read("new.csr"))))

	// curl authenticates with the old key on the card (TLS 1.2, PKCS#1
	// v1.5) and posts the PKCS#10 to /simplereenroll.
	p.run("curl", "--silent", "--show-error", "--fail",
		"--engine", "pkcs11", "--cert-type", "ENG", "--cert", "pkcs11:object=old;type=cert",
		"--key-type", "ENG", "--key", "pkcs11:object=old;type=private",
		"--cacert", caPath, "--tlsv1.2", "--tls-max", "1.2",
		"-H", "Content-Type: application/pkcs10", "--data-binary", "@"+p.file("new.csr.b64"),
		"--dump-header", p.file("headers.txt"), "--output", p.file("new.p7.b64"),
		srv.URL()+relay.PathSimpleReenroll)
	headers := strings.ToLower(string(p.read("headers.txt")))
	mustContain(t, "EST response headers", headers, "content-type: application/pkcs7-mime; smime-type=certs-only", "content-transfer-encoding: base64")
	if ex := srv.Exchanges(); len(ex) != 1 || ex[0].Requester != user || ex[0].Path != relay.PathSimpleReenroll {
		t.Fatalf("relay exchanges %+v, want one simplereenroll by %s", ex, user)
	}
	p7, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(p.read("new.p7.b64"))))
	if err != nil {
		t.Fatal(err)
	}
	p.write("new.p7", p7)
	// OpenSSL reads the certs-only PKCS#7 too.
	p.run("openssl", "pkcs7", "-inform", "DER", "-in", p.file("new.p7"), "-print_certs", "-out", p.file("new.pem"))
	blk, _ := pem.Decode(p.read("new.pem"))
	if blk == nil {
		t.Fatal("openssl pkcs7 -print_certs wrote no certificate")
	}
	newCert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if newCert.CheckSignatureFrom(c.Certificate()) != nil || newCert.Subject.CommonName != user || ca.PublicKeyEqual(newCert.PublicKey, old.PublicKey) {
		t.Fatalf("the new certificate is not a CA-signed certificate for a new key of %s", user)
	}

	// pkcs11-tool writes it next to the new key; the old certificate goes.
	p.write("new.der", newCert.Raw)
	p.run("pkcs11-tool", "--login", "--pin", "123456", "--write-object", p.file("new.der"), "--type", "cert", "--label", "new", "--id", newID)
	p.run("pkcs11-tool", "--login", "--pin", "123456", "--delete-object", "--type", "cert", "--id", oldID)

	// The host model: the card inserted (again), the user signed in,
	// propagation puts the new certificate into My and its key signs.
	hostSeesRenewal(t, st, newCert, old)

	tls13Limitation(t, p, st, conf, caPath, srv.URL())
}

// tls13Limitation pins down what the README says about OpenSC 0.23's
// GIDS driver: it offers no RSA-PSS (CKM_RSA_PKCS_PSS), so an OpenSSL
// client that is free to choose signs the handshake with PSS and the
// module refuses ("Mechanism invalid") even in TLS 1.2; and TLS 1.3
// allows no PKCS#1 v1.5 CertificateVerify, so a client limited to it
// sends no certificate at all and the relay answers 401.
func tls13Limitation(t *testing.T, p *peer, st *stack.Stack, conf, caPath, url string) {
	full, _ := os.ReadFile(conf)
	plain := p.write("no-sigalgs.cnf", []byte(strings.Replace(strings.Split(string(full), "[ssl_section]")[0], "ssl_conf = ssl_section\n", "", 1)))
	curl := func(cnf string, extra ...string) (*tools.Result, error) {
		r := &tools.Runner{Env: append(append([]string{}, st.Env()...), "OPENSSL_CONF="+cnf), Dir: p.dir}
		args := append([]string{"--silent", "--show-error", "--output", "/dev/null", "--write-out", "%{http_code}",
			"--engine", "pkcs11", "--cert-type", "ENG", "--cert", "pkcs11:object=new;type=cert",
			"--key-type", "ENG", "--key", "pkcs11:object=new;type=private", "--cacert", caPath}, extra...)
		return r.Run(context.Background(), "curl", append(args, url+relay.PathRetrieve+"?id=1")...)
	}
	res, err := curl(plain, "--tlsv1.2", "--tls-max", "1.2")
	if err == nil || !strings.Contains(res.Output(), "Mechanism invalid") {
		t.Errorf("TLS 1.2 with PSS allowed: want OpenSC to refuse the PSS signature (Mechanism invalid), got %v %s", err, res.Output())
	}
	res, err = curl(conf, "--tlsv1.3")
	if err != nil || strings.TrimSpace(res.Stdout) != "401" {
		t.Errorf("TLS 1.3 limited to PKCS#1 v1.5: want no client certificate sent (HTTP 401), got %v %q", err, res.Output())
	}
	res, err = curl(conf, "--tlsv1.2", "--tls-max", "1.2")
	if err != nil || strings.TrimSpace(res.Stdout) != "404" { // authenticated: request 1 is not alice's
		t.Errorf("TLS 1.2 with PKCS#1 v1.5: want an authenticated answer (HTTP 404 for a foreign request ID), got %v %q", err, res.Output())
	}
}

// hostSeesRenewal inserts the stack's card into a host model, lets
// certificate propagation run and checks My holds newCert (not old) and
// that its private key, acquired through CERT_KEY_PROV_INFO, signs.
func hostSeesRenewal(t *testing.T, st *stack.Stack, newCert, old *x509.Certificate) {
	t.Helper()
	ctx := context.Background()
	readerName := st.Slots()[0].Reader
	src := func() (pcsc.Transport, error) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cardtest.Client(t).Connect(cctx, readerName)
	}
	h := winhost.New(winhost.Config{UserPIN: "123456"})
	for i := range 2 { // inserted, removed, inserted again
		if err := h.InsertCard(ctx, readerName, src, minidriver.Options{}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := h.RemoveCard(readerName); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := h.Logon(ctx, "alice", winhost.LogonOptions{}); err != nil {
		t.Fatal(err)
	}
	h.Clock().Advance(time.Minute)
	my := h.Profile("alice").My()
	sc, ok := my.FindCert(newCert)
	if !ok {
		t.Fatalf("after reinsertion My holds %d certificates, not the renewed one", my.Len())
	}
	if _, ok := my.FindCert(old); ok {
		t.Error("the old certificate, deleted from the card, was propagated")
	}
	pr := h.StartProcess("signer", winhost.ProcessOptions{})
	k, err := pr.AcquireCertificatePrivateKey(ctx, sc, winhost.AcquireFlags{CompareKey: true, AllowNCrypt: true}) // propagation names the KSP (windows-11-2025)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("renewed through the relay"))
	sig, err := k.Sign(ctx, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := winhost.VerifyWithCertificate(newCert, crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("the renewed key's signature does not verify: %v", err)
	}
}

// idOf finds the PKCS#11 ID of the private key labelled label.
func idOf(t *testing.T, p *peer, label string) string {
	t.Helper()
	out := p.run("pkcs11-tool", "--login", "--pin", "123456", "-O", "--type", "privkey")
	blocks := strings.Split(out, "Private Key Object")
	for _, b := range blocks {
		if strings.Contains(b, "label:      "+label+"\n") {
			for _, line := range strings.Split(b, "\n") {
				if id, ok := strings.CutPrefix(strings.TrimSpace(line), "ID:"); ok {
					return strings.TrimSpace(id)
				}
			}
		}
	}
	t.Fatalf("no private key labelled %q:\n%s", label, out)
	return ""
}
