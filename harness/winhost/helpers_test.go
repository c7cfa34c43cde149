package winhost_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/gids"
)

const (
	testPIN    = "123456"
	readerName = "Virtual GIDS 0"
	user       = "alice"
	keyBits    = 1024 // key generation on the virtual card is slow; size does not matter here
)

var adminKey = [24]byte{}

// vcard is a virtual GIDS card in an in-process reader.
type vcard struct {
	card   *gids.Card
	reader *pcsc.Reader
}

func newCard(t *testing.T, id [16]byte) *vcard {
	t.Helper()
	card := gidstest.New(t, gids.Options{}, gids.InitParams{PIN: testPIN, AdminKey: adminKey, CardID: id})
	return &vcard{card: card, reader: pcsc.NewReader(card)}
}

// reinit is the re-personalisation of T4/S3: the card is wiped and
// initialised again with cardid id.
func (v *vcard) reinit(t *testing.T, id [16]byte) {
	t.Helper()
	if err := v.card.FactoryReset(); err != nil {
		t.Fatal(err)
	}
	if err := v.card.Initialize(gids.InitParams{PIN: testPIN, AdminKey: adminKey, CardID: id}); err != nil {
		t.Fatal(err)
	}
}

// oob runs f as an out-of-band tool (PKCS#11, vendor tool, our offline
// writer) on its own connection, user PIN verified (§2.4).
func (v *vcard) oob(t *testing.T, f func(c *minidriver.Card)) {
	t.Helper()
	ctx := context.Background()
	conn := v.reader.Connect()
	defer conn.Close()
	c, err := minidriver.Acquire(ctx, conn, minidriver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AuthenticatePIN(ctx, testPIN); err != nil {
		t.Fatalf("out-of-band writer: %v", err)
	}
	f(c)
	_ = c.Deauthenticate(ctx)
}

// oobRaw is oob without the PIN (admin tools, cardcf readers).
func (v *vcard) oobRaw(t *testing.T, f func(c *minidriver.Card)) {
	t.Helper()
	conn := v.reader.Connect()
	defer conn.Close()
	c, err := minidriver.Acquire(context.Background(), conn, minidriver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f(c)
}

func (v *vcard) cardcf(t *testing.T) fs.CardCF {
	t.Helper()
	var cf fs.CardCF
	v.oobRaw(t, func(c *minidriver.Card) {
		var err error
		if cf, err = c.CardCF(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	return cf
}

// enroll is the offline enrollment writer: container + key on the card,
// certificate issued and written, every write under policy pol.
func (v *vcard) enroll(t *testing.T, guid, cn string, pol minidriver.Bump) (int, *x509.Certificate) {
	t.Helper()
	ctx := context.Background()
	var idx int
	var cert *x509.Certificate
	v.oob(t, func(c *minidriver.Card) {
		var err error
		idx, err = c.CreateContainer(ctx, minidriver.ContainerSpec{GUID: guid, KeySpec: fs.AT_KEYEXCHANGE, Bits: keyBits}, pol)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.ContainerInfo(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		cert = issue(t, info.PublicKey, cn)
		if err := c.WriteCertificate(ctx, idx, fs.AT_KEYEXCHANGE, cert.Raw, pol); err != nil {
			t.Fatal(err)
		}
	})
	return idx, cert
}

// writeCert writes cert for container idx out of band.
func (v *vcard) writeCert(t *testing.T, idx int, cert *x509.Certificate, pol minidriver.Bump) {
	t.Helper()
	v.oob(t, func(c *minidriver.Card) {
		if err := c.WriteCertificate(context.Background(), idx, fs.AT_KEYEXCHANGE, cert.Raw, pol); err != nil {
			t.Fatal(err)
		}
	})
}

func (v *vcard) publicKey(t *testing.T, idx int) *rsa.PublicKey {
	t.Helper()
	pub, ok := v.card.PublicKey(byte(fs.FirstKeyRef + idx))
	if !ok {
		t.Fatalf("no key at index %d", idx)
	}
	return pub
}

// --- a software CA ---

var (
	caOnce   sync.Once
	caKey    *rsa.PrivateKey
	caCert   *x509.Certificate
	caSerial int64
	caMu     sync.Mutex
)

var oidSmartCardLogon = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}

func softwareCA(t *testing.T) {
	caOnce.Do(func() {
		var err error
		caKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cardharness test CA"},
			NotBefore: winhost.DefaultStart.Add(-24 * time.Hour), NotAfter: winhost.DefaultStart.Add(10 * 365 * 24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
		if err != nil {
			panic(err)
		}
		caCert, _ = x509.ParseCertificate(der)
	})
}

// issue makes a smart-card-logon certificate for pub.
func issue(t *testing.T, pub *rsa.PublicKey, cn string) *x509.Certificate {
	t.Helper()
	return issueWith(t, pub, cn, nil)
}

// issueWith is issue with the template changed by mod.
func issueWith(t *testing.T, pub *rsa.PublicKey, cn string, mod func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	softwareCA(t)
	caMu.Lock()
	caSerial++
	serial := caSerial + 100
	caMu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(serial),
		Subject:            pkix.Name{CommonName: cn},
		NotBefore:          winhost.DefaultStart.Add(-time.Hour),
		NotAfter:           winhost.DefaultStart.Add(365 * 24 * time.Hour),
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidSmartCardLogon},
	}
	if mod != nil {
		mod(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func softwareKey(t *testing.T) *rsa.PublicKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return &k.PublicKey
}

// --- host environment ---

type env struct {
	t    *testing.T
	ctx  context.Context
	h    *winhost.Host
	card *vcard
}

// newHost is a host with the default knobs, except that propagation runs
// exactly PropagationDelay after its trigger: tests that are about the
// delay model set its knobs themselves.
func newHost(t *testing.T, mods ...func(k *winhost.Knobs)) *winhost.Host {
	k := winhost.DefaultKnobs()
	k.PropagationJitter, k.PropagationTail, k.PropagationPerReader = 0, 0, 0
	for _, m := range mods {
		m(&k)
	}
	return winhost.New(winhost.Config{Name: t.Name(), Knobs: &k, Seed: 1, UserPIN: testPIN})
}

func newEnv(t *testing.T, mods ...func(k *winhost.Knobs)) *env {
	t.Helper()
	return &env{t: t, ctx: context.Background(), h: newHost(t, mods...), card: newCard(t, [16]byte{})}
}

func (e *env) insert(opts minidriver.Options) {
	e.t.Helper()
	if err := e.h.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), opts); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) remove() {
	e.t.Helper()
	if err := e.h.RemoveCard(readerName); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) reinsert() {
	e.t.Helper()
	e.remove()
	e.insert(minidriver.Options{})
}

func (e *env) logon() {
	e.t.Helper()
	if err := e.h.Logon(e.ctx, user, winhost.LogonOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.settle()
}

// settle lets asynchronous work (propagation) run.
func (e *env) settle() { e.h.Clock().Advance(time.Minute) }

func (e *env) my() *winhost.CertStore { return e.h.Profile(user).My() }

func (e *env) proc(name string, opts winhost.ProcessOptions) *winhost.Process {
	return e.h.StartProcess(name, opts)
}

// cardCerts returns the GUID → certificate view a process has of the card.
func (e *env) cardCerts(p *winhost.Process) map[string]*x509.Certificate {
	e.t.Helper()
	cs, err := p.CardCertificates(e.ctx, readerName)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*x509.Certificate{}
	for _, c := range cs {
		out[c.ProvInfo.Container] = c.Cert
	}
	return out
}

// signAndVerify signs with k and checks the signature under cert.
func signAndVerify(t *testing.T, ctx context.Context, k *winhost.KeyHandle, cert *x509.Certificate) error {
	t.Helper()
	d := sha256.Sum256([]byte("to be signed"))
	sig, err := k.Sign(ctx, d[:], crypto.SHA256)
	if err != nil {
		return err
	}
	return winhost.VerifyWithCertificate(cert, crypto.SHA256, d[:], sig)
}

func withProv(c *x509.Certificate, guid string) winhost.StoreCert {
	return winhost.StoreCert{Cert: c, ProvInfo: &winhost.KeyProvInfo{Provider: winhost.ProviderCAPI, Container: guid, KeySpec: fs.AT_KEYEXCHANGE}}
}

func sameCert(a, b *x509.Certificate) bool { return a != nil && b != nil && a.Equal(b) }

// delta is after - before, field by field.
func delta(before, after winhost.Stats) winhost.Stats {
	return winhost.Stats{
		Transactions:      after.Transactions - before.Transactions,
		CacheHits:         after.CacheHits - before.CacheHits,
		CacheStale:        after.CacheStale - before.CacheStale,
		CacheMisses:       after.CacheMisses - before.CacheMisses,
		CacheTooBig:       after.CacheTooBig - before.CacheTooBig,
		CardReads:         after.CardReads - before.CardReads,
		PINPrompts:        after.PINPrompts - before.PINPrompts,
		InsertCardDialogs: after.InsertCardDialogs - before.InsertCardDialogs,
	}
}

var bumpVariants = []struct {
	name string
	pol  minidriver.Bump
}{{"correct", minidriver.BumpCorrect}, {"faulty", minidriver.BumpNone}}

// variants runs a transition test twice, as subtests "correct" and
// "faulty": f's second argument says which (the faulty client, or the
// faulty precondition, of docs/reference/minidriver-semantics.md §2.8).
func variants(t *testing.T, f func(t *testing.T, faulty bool)) {
	t.Helper()
	t.Run("correct", func(t *testing.T) { f(t, false) })
	t.Run("faulty", func(t *testing.T) { f(t, true) })
}

// signedInWithCard is the opening of the enrollment-path tests: a fresh
// host and card, the user signed in, the card inserted, and certreq.exe
// running.
func signedInWithCard(t *testing.T) (*env, *winhost.Process) {
	t.Helper()
	e := newEnv(t)
	e.logon()
	e.insert(minidriver.Options{})
	return e, e.proc("certreq.exe", winhost.ProcessOptions{})
}

// generate creates a key container as Base CSP's CryptGenKey does,
// failing the test on error.
func (e *env) generate(p *winhost.Process) winhost.Container {
	e.t.Helper()
	c, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// acquire is CryptAcquireCertificatePrivateKey with no flags, failing the
// test on error.
func (e *env) acquire(p *winhost.Process, sc winhost.StoreCert) *winhost.KeyHandle {
	e.t.Helper()
	// ALLOW_NCRYPT: what KB5073121 asks applications to pass, so that a
	// certificate propagated with the KSP (the default profile) opens.
	k, err := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{AllowNCrypt: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// cachedByApp is the opening of the cache tests: alice's certificate is
// enrolled on the card (with a correct bump), the card inserted, and
// app.exe has read the card's certificates once, so the host's caches
// hold them.
func (e *env) cachedByApp() *winhost.Process {
	e.t.Helper()
	e.card.enroll(e.t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{})
	p := e.proc("app.exe", winhost.ProcessOptions{})
	e.cardCerts(p)
	return p
}

// statsOfRead is what one more read of the card's certificates costs p
// (transactions, cache hits and misses, card reads).
func (e *env) statsOfRead(p *winhost.Process) winhost.Stats {
	e.t.Helper()
	before := p.Stats()
	e.cardCerts(p)
	return delta(before, p.Stats())
}
