package winhost_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/relay"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/winerr"
)

var (
	relayTmpl   = relay.SmartcardLogonTemplate // what `cardharness relay` serves
	relayCAOnce sync.Once
	relayCAKey  *rsa.PrivateKey
)

// relayEnv is a host with alice signed in, her card enrolled through the
// host (a container, its certificate on the card and in My), the test CA
// on the host's clock and a relay in front of it.
type relayEnv struct {
	*env
	ca    *ca.CA
	srv   *relay.Server
	roots *x509.CertPool
	old   winhost.StoreCert
}

func newRelayEnv(t *testing.T, cfg func(*relay.Config), knobs ...func(*winhost.Knobs)) *relayEnv {
	t.Helper()
	relayCAOnce.Do(func() { relayCAKey = softwareKeyPriv(t) })
	e := &relayEnv{env: newEnv(t, knobs...)}
	c, err := ca.New(ca.Options{Name: "Relay CA", Key: relayCAKey, Clock: e.h.Clock().Now, Templates: relay.DefaultTemplates()})
	if err != nil {
		t.Fatal(err)
	}
	e.ca = c
	rc := relay.Config{CA: c}
	if cfg != nil {
		cfg(&rc)
	}
	if e.srv, err = relay.New(rc); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.srv.Close() })
	e.roots = x509.NewCertPool()
	e.roots.AddCert(c.Certificate())
	e.insert(minidriver.Options{})
	e.logon()
	// First enrollment through the host, by another process.
	p := e.proc("enroll", winhost.ProcessOptions{})
	cont, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits, Default: true})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := p.Signer(e.ctx, cont.GUID)
	if err != nil {
		t.Fatal(err)
	}
	te, _ := relayTmpl.Extension()
	csr, err := ca.BuildCSR(signer, pkix.Name{CommonName: "Alice"}, []pkix.Extension{te})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.IssueFromCSR(csr, ca.TemplateID{}, "alice@contoso.test")
	if err != nil || resp.Disposition != ca.Issued {
		t.Fatalf("first enrollment: %v %v", resp.Disposition, err)
	}
	if e.old, err = p.InstallCertificate(e.ctx, resp.Cert, winhost.InstallOptions{ContainerGUID: cont.GUID}); err != nil {
		t.Fatal(err)
	}
	p.Exit()
	e.h.Clock().Advance(200 * 24 * time.Hour)
	return e
}

func softwareKeyPriv(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// state is what "exactly as before" compares: the card's containers and
// the user's stores.
type state struct {
	Containers []string
	My         []string
	Request    []string
}

func (e *relayEnv) state(t *testing.T) state {
	t.Helper()
	p := e.proc("inspect", winhost.ProcessOptions{})
	defer p.Exit()
	cs, err := p.Containers(e.ctx, readerName)
	if err != nil {
		t.Fatal(err)
	}
	var s state
	for _, c := range cs {
		s.Containers = append(s.Containers, c.GUID)
	}
	for _, c := range e.my().Certificates() {
		s.My = append(s.My, c.Thumbprint())
	}
	for _, c := range e.h.Profile(user).Request().Certificates() {
		s.Request = append(s.Request, c.Thumbprint())
	}
	return s
}

func (e *relayEnv) opts(order winhost.CallOrder) winhost.RelayRenewalOptions {
	return winhost.RelayRenewalOptions{Old: e.old, URL: e.srv.URL(), RootCAs: e.roots, Template: relayTmpl, Order: order, Bits: keyBits}
}

// TestRenewThroughRelayPrompts: the founding document's counts. Windows
// 7's single session-token cache (SingleTokenPINCache) gives three prompts in
// the logical order and two with the connection opened first; with
// per-provider caches it is two either way; a TLS stack sharing the
// process's cache needs one.
func TestRenewThroughRelayPrompts(t *testing.T) {
	win7 := func(k *winhost.Knobs) { k.SingleTokenPINCache = true }
	shared := func(k *winhost.Knobs) { k.SchannelPINCache = winhost.SchannelSharesProcessCache }
	cases := []struct {
		name  string
		knobs []func(*winhost.Knobs)
		order winhost.CallOrder
		want  int
	}{
		{"session token (windows 7), logical", []func(*winhost.Knobs){win7}, winhost.LogicalOrder, 3},
		{"session token (windows 7), connect first", []func(*winhost.Knobs){win7}, winhost.ConnectFirst, 2},
		{"per-provider caches, logical", nil, winhost.LogicalOrder, 2},
		{"per-provider caches, connect first", nil, winhost.ConnectFirst, 2},
		{"profile windows-7, logical", []func(*winhost.Knobs){profile("windows-7")}, winhost.LogicalOrder, 3},
		{"profile windows-7, connect first", []func(*winhost.Knobs){profile("windows-7")}, winhost.ConnectFirst, 2},
		{"profile windows-11-2025, logical", []func(*winhost.Knobs){profile("windows-11-2025")}, winhost.LogicalOrder, 2},
		{"TLS shares the CSP cache, logical", []func(*winhost.Knobs){shared}, winhost.LogicalOrder, 1},
		{"TLS shares the CSP cache, connect first", []func(*winhost.Knobs){shared}, winhost.ConnectFirst, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newRelayEnv(t, nil, tc.knobs...)
			p := e.proc("renewal client", winhost.ProcessOptions{})
			res, err := p.RenewThroughRelay(e.ctx, e.opts(tc.order))
			if err != nil {
				t.Fatal(err)
			}
			if res.Prompts != tc.want || res.Handshakes != 1 || res.Disposition != ca.Issued {
				t.Errorf("prompts %d (want %d), handshakes %d (want 1), %s", res.Prompts, tc.want, res.Handshakes, res.Disposition.CRName())
			}
			// The handshake was signed on the card with the old key: the
			// relay saw alice's identity from the old certificate.
			if ex := e.srv.Exchanges(); len(ex) != 1 || ex[0].Requester != "alice@contoso.test" {
				t.Errorf("relay exchanges %+v", ex)
			}
			s := e.state(t)
			want := state{Containers: []string{res.NewContainer}, My: []string{res.New.Thumbprint()}}
			if d := cmp.Diff(want, s); d != "" {
				t.Errorf("after the renewal (-want +got):\n%s", d)
			}
			if !ca.PublicKeyEqual(res.New.Cert.PublicKey, res.New.Cert.PublicKey) || res.New.ProvInfo == nil || res.New.ProvInfo.Container != res.NewContainer {
				t.Errorf("new My entry %+v", res.New.ProvInfo)
			}
		})
	}
}

func profile(name string) func(*winhost.Knobs) {
	return func(k *winhost.Knobs) {
		p, err := winhost.ProfileKnobs(name)
		if err != nil {
			panic(err)
		}
		*k = p
	}
}

// TestRenewThroughRelayFaults: every relay fault leaves the card and the
// stores as before; a retry then succeeds.
func TestRenewThroughRelayFaults(t *testing.T) {
	cases := []struct {
		f    relay.Fault
		code winerr.Code // 0: no CA status (transport or HTTP failure)
	}{
		{relay.HTTP500, winerr.HTTP_E_STATUS_SERVER_ERROR},
		{relay.DropAfterIssue, winerr.ERROR_WINHTTP_CONNECTION_ERROR},
		{relay.Timeout, winerr.ERROR_WINHTTP_TIMEOUT},
		{relay.CADeny, winerr.CERTSRV_E_ADMIN_DENIED_REQUEST},
		{relay.CAPend, winerr.E_PENDING}, // pending, and this client does not wait: rolled back
		{relay.LookupAfterImpersonation, winerr.ERROR_FILE_NOT_FOUND},
		{relay.DelegatedCertRequest, winerr.ERROR_NO_SUCH_USER},
	}
	for _, tc := range cases {
		t.Run(tc.f.String(), func(t *testing.T) {
			e := newRelayEnv(t, nil)
			before := e.state(t)
			issued := e.ca.IssuedCount()
			e.srv.Inject(tc.f)
			p := e.proc("renewal client", winhost.ProcessOptions{})
			o := e.opts(winhost.LogicalOrder)
			o.Timeout = 2 * time.Second // only the timeout fault waits for it
			res, err := p.RenewThroughRelay(e.ctx, o)
			var re *winhost.RelayError
			if err == nil || !errors.As(err, &re) || !res.RolledBack {
				t.Fatalf("err %v, rolled back %v", err, res.RolledBack)
			}
			if tc.code != 0 && !errors.Is(err, tc.code) {
				t.Errorf("error %v does not carry %v", err, tc.code)
			}
			if d := cmp.Diff(before, e.state(t)); d != "" {
				t.Errorf("after %s (-before +after):\n%s", tc.f, d)
			}
			if tc.f == relay.DropAfterIssue && e.ca.IssuedCount() != issued+1 {
				t.Errorf("drop after issue: the CA issued %d certificates, want 1 (issued, never received)", e.ca.IssuedCount()-issued)
			}
			res, err = p.RenewThroughRelay(e.ctx, o)
			if err != nil || res.Disposition != ca.Issued {
				t.Fatalf("retry: %v %v", res.Disposition, err)
			}
		})
	}
}

// TestRenewThroughRelayPendingDaysLater: the CA pends; three days later
// on the virtual clock the host retrieves, installs and deletes the old.
func TestRenewThroughRelayPendingDaysLater(t *testing.T) {
	e := newRelayEnv(t, func(c *relay.Config) { c.PendApproveAfter = 72 * time.Hour })
	e.srv.Inject(relay.CAPend)
	p := e.proc("renewal client", winhost.ProcessOptions{})
	o := e.opts(winhost.LogicalOrder)
	o.KeepPending = true
	res, err := p.RenewThroughRelay(e.ctx, o)
	if err != nil || res.Pending == nil || res.Disposition != ca.Pending {
		t.Fatalf("%v %v", res.Disposition, err)
	}
	if s := e.state(t); len(s.Containers) != 2 || len(s.Request) != 1 {
		t.Errorf("while pending: %+v, want both containers and the dummy", s)
	}
	e.h.Clock().Advance(24 * time.Hour)
	res2, err := p.CompletePendingRenewal(e.ctx, res.Pending)
	if err != nil || res2.Disposition != ca.Pending {
		t.Fatalf("a day later: %v %v", res2.Disposition, err)
	}
	e.h.Clock().Advance(48 * time.Hour)
	res3, err := p.CompletePendingRenewal(e.ctx, res.Pending)
	if err != nil || res3.Disposition != ca.Issued {
		t.Fatalf("three days later: %v %v", res3.Disposition, err)
	}
	want := state{Containers: []string{res.NewContainer}, My: []string{res3.New.Thumbprint()}}
	if d := cmp.Diff(want, e.state(t)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestRenewThroughRelayOldComesBack: deleting the old certificate only
// from My lets certificate propagation bring it back at the next
// insertion; deleting it from the card too does not.
func TestRenewThroughRelayOldComesBack(t *testing.T) {
	for _, tc := range []struct {
		del      winhost.OldCertDeletion
		wantBack bool
	}{{winhost.DeleteOldFromMyOnly, true}, {winhost.DeleteOldFromMyAndCard, false}} {
		e := newRelayEnv(t, nil)
		p := e.proc("renewal client", winhost.ProcessOptions{})
		o := e.opts(winhost.LogicalOrder)
		o.DeleteOld = tc.del
		res, err := p.RenewThroughRelay(e.ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := e.my().Find(e.old.Thumbprint()); ok {
			t.Fatal("the old certificate is still in My right after the renewal")
		}
		e.reinsert()
		e.settle()
		_, back := e.my().Find(e.old.Thumbprint())
		_, newThere := e.my().Find(res.New.Thumbprint())
		if back != tc.wantBack || !newThere {
			t.Errorf("deletion %d: old back in My %v (want %v), new in My %v", tc.del, back, tc.wantBack, newThere)
		}
	}
}
