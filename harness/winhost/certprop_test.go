package winhost_test

import (
	"crypto/x509/pkix"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/winerr"
)

// The delay model's shape under the default knobs (ledger row
// H-PROP-DELAY): never before PropagationDelay, never past the cap, most
// within a few seconds, and a tail past ten seconds; each card handled
// before adds PropagationPerReader.
func TestPropagationDelayModel(t *testing.T) {
	k := winhost.DefaultKnobs()
	r := rand.New(rand.NewPCG(7, 7))
	var ds []time.Duration
	for range 4000 {
		ds = append(ds, k.PropagationDelaySample(r, 0))
	}
	slices.Sort(ds)
	median, p99, max := ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
	if ds[0] < k.PropagationDelay || max > k.PropagationMaxDelay {
		t.Errorf("range %v..%v outside %v..%v", ds[0], max, k.PropagationDelay, k.PropagationMaxDelay)
	}
	if median < 2*time.Second || median > 5*time.Second {
		t.Errorf("median %v, want a few seconds", median)
	}
	if p99 < 10*time.Second {
		t.Errorf("99th percentile %v: no long tail", p99)
	}
	a, b := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
	for range 100 {
		d0, d3 := k.PropagationDelaySample(a, 0), k.PropagationDelaySample(b, 3)
		if d3 != min(d0+3*k.PropagationPerReader, k.PropagationMaxDelay) {
			t.Fatalf("per-reader cost: %v with 0 before, %v with 3", d0, d3)
		}
	}
	k.PropagationMaxDelay = 0
	if d := k.PropagationDelaySample(rand.New(rand.NewPCG(1, 1)), 100); d < 100*time.Second {
		t.Errorf("no cap: %v", d)
	}
}

// The same host seed gives the same delays; another seed other delays.
func TestPropagationDelaySeeded(t *testing.T) {
	delays := func(seed uint64) []string {
		k := winhost.DefaultKnobs()
		h := winhost.New(winhost.Config{Knobs: &k, Seed: seed, UserPIN: testPIN})
		c := newCard(t, [16]byte{byte(seed)})
		ctx := t.Context()
		if err := h.InsertCard(ctx, readerName, winhost.FromReader(c.reader), minidriver.Options{}); err != nil {
			t.Fatal(err)
		}
		var out []string
		for range 5 {
			if err := h.Logon(ctx, user, winhost.LogonOptions{}); err != nil {
				t.Fatal(err)
			}
			h.Logoff()
		}
		for _, e := range h.Events() {
			if e.Kind == winhost.EvPropagateScheduled {
				out = append(out, e.Detail)
			}
		}
		return out
	}
	a, b, c := delays(3), delays(3), delays(4)
	if len(a) != 5 || !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Errorf("seed 3: %v\nseed 3 again: %v\nseed 4: %v", a, b, c)
	}
}

// Which provider propagation writes (ledger row H-PROP-PROVIDER): the KSP
// for every certificate since the 2025-10-14 update; Base CSP for RSA
// under the old rule or the registry override.
func TestPropagationProvider(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(k *winhost.Knobs)
		want string
	}{
		{"windows-11-2025", func(k *winhost.Knobs) {}, winhost.ProviderKSP},
		{"windows-10-legacy", func(k *winhost.Knobs) { k.PropagationProviderRule = winhost.ProviderCSPForRSA }, winhost.ProviderCAPI},
		{"DisableCapiOverrideForRSA=0", func(k *winhost.Knobs) { k.PropagationCSPOverrideForRSA = true }, winhost.ProviderCAPI},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.mod)
			_, cert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
			e.insert(minidriver.Options{})
			e.logon()
			sc, ok := e.my().FindCert(cert)
			if !ok || sc.ProvInfo == nil || sc.ProvInfo.Provider != tt.want {
				t.Fatalf("propagated %v with %+v, want %s", ok, sc.ProvInfo, tt.want)
			}
		})
	}
	for _, name := range []string{"windows-10-legacy", "windows-7"} {
		if k, err := winhost.ProfileKnobs(name); err != nil || k.PropagationProviderRule != winhost.ProviderCSPForRSA {
			t.Errorf("%s: %v %v", name, k.PropagationProviderRule, err)
		}
	}
	if _, err := winhost.ProfileKnobs("windows-95"); !errors.Is(err, winhost.ErrUnknownProfile) {
		t.Errorf("unknown profile: %v", err)
	}
}

// Triggers (ledger row H-PROP-TRIGGERS): logon and insertion, and a
// restart of CertPropSvc; nothing while it is stopped; a write to the card
// is no trigger.
func TestPropagationTriggers(t *testing.T) {
	e := newEnv(t)
	_, cert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{})
	e.logon()
	if _, ok := e.my().FindCert(cert); !ok {
		t.Fatal("logon did not propagate")
	}
	e.my().Delete(winhost.Thumbprint(cert))
	e.settle()
	if _, ok := e.my().FindCert(cert); ok {
		t.Fatal("propagated without a trigger")
	}
	e.h.RestartCertPropService(e.ctx)
	if e.h.PendingPropagations() != 1 {
		t.Fatalf("%d pending after a CertPropSvc restart", e.h.PendingPropagations())
	}
	e.settle()
	if _, ok := e.my().FindCert(cert); !ok {
		t.Fatal("a CertPropSvc restart did not propagate")
	}
	e.my().Delete(winhost.Thumbprint(cert))
	e.h.StopCertPropService()
	e.reinsert()
	e.settle()
	if _, ok := e.my().FindCert(cert); ok {
		t.Fatal("propagated while CertPropSvc was stopped")
	}
	e.h.RestartCertPropService(e.ctx)
	e.settle()
	if _, ok := e.my().FindCert(cert); !ok {
		t.Fatal("not propagated after the restart")
	}
}

// CertEnroll's request dummy goes into the new container's certificate
// file; propagation on another host files it into REQUEST (not My), where
// InstallResponse finds it and replaces the card file; rollback deletes it
// (ledger row H-PROP-REQUEST).
func TestRequestDummyTravelsOnTheCard(t *testing.T) {
	e := newEnv(t)
	e.insert(minidriver.Options{})
	e.logon()
	p := e.proc("certreq.exe", winhost.ProcessOptions{})
	ctr, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
	if err != nil {
		t.Fatal(err)
	}
	dummy, err := p.CreateRequest(e.ctx, ctr.GUID, winhost.RequestOptions{Subject: pkix.Name{CommonName: "alice"}, Enrollment: winhost.EnrollmentProperty{RequestID: 7, CAName: "test CA"}})
	if err != nil {
		t.Fatal(err)
	}
	onCard := e.cardCerts(p)
	if c := onCard[ctr.GUID]; c == nil || !c.Equal(dummy.Cert) {
		t.Fatalf("the card's certificate file for %s is %v, want the dummy", ctr.GUID, c)
	}

	// The card goes to another machine of the same user.
	e.remove()
	k := e.h.Knobs()
	other := winhost.New(winhost.Config{Name: "other", Knobs: &k, Seed: 2, UserPIN: testPIN})
	if err := other.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := other.Logon(e.ctx, user, winhost.LogonOptions{}); err != nil {
		t.Fatal(err)
	}
	other.Clock().Advance(time.Minute)
	u := other.Profile(user)
	req, ok := u.Request().FindCert(dummy.Cert)
	if !ok || req.Enrollment == nil || req.Enrollment.RequestID != 7 || req.ProvInfo == nil || req.ProvInfo.Container != ctr.GUID {
		t.Fatalf("REQUEST on the other host: %v %+v", ok, req)
	}
	if _, ok := u.My().FindCert(dummy.Cert); ok {
		t.Fatal("the dummy was propagated into My")
	}
	issued := issue(t, ctr.PublicKey, "alice")
	op := other.StartProcess("certreq.exe", winhost.ProcessOptions{})
	if _, err := op.InstallResponse(e.ctx, issued, winhost.InstallResponseOptions{}); err != nil {
		t.Fatalf("InstallResponse on the other host: %v", err)
	}
	if u.Request().Len() != 0 {
		t.Error("the dummy stayed in REQUEST")
	}
	certs, err := op.CardCertificates(e.ctx, readerName)
	if err != nil || len(certs) != 1 || !certs[0].Cert.Equal(issued) {
		t.Fatalf("card after InstallResponse: %v %v", certs, err)
	}

	// Rollback deletes the container with its dummy.
	p2 := other.StartProcess("certreq.exe", winhost.ProcessOptions{})
	c2, err := p2.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
	if err != nil {
		t.Fatal(err)
	}
	d2, err := p2.CreateRequest(e.ctx, c2.GUID, winhost.RequestOptions{Subject: pkix.Name{CommonName: "alice 2"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.AbortRequest(e.ctx, d2); err != nil {
		t.Fatal(err)
	}
	certs, _ = p2.CardCertificates(e.ctx, readerName)
	if len(certs) != 1 || u.Request().Len() != 0 {
		t.Fatalf("after rollback: %d certificates on the card, %d in REQUEST", len(certs), u.Request().Len())
	}
}

// Without the card copy, the install on another machine works only with a
// roaming profile (ledger row H-PROP-REQUEST).
func TestRequestRoamingProfile(t *testing.T) {
	for _, roam := range []bool{false, true} {
		e := newEnv(t, func(k *winhost.Knobs) { k.RoamingProfile = roam })
		share := winhost.NewRoaming()
		k := e.h.Knobs()
		a := winhost.New(winhost.Config{Name: "A", Clock: e.h.Clock(), Knobs: &k, Seed: 1, UserPIN: testPIN, Roaming: share})
		b := winhost.New(winhost.Config{Name: "B", Clock: e.h.Clock(), Knobs: &k, Seed: 2, UserPIN: testPIN, Roaming: share})
		if err := a.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{}); err != nil {
			t.Fatal(err)
		}
		if err := a.Logon(e.ctx, user, winhost.LogonOptions{}); err != nil {
			t.Fatal(err)
		}
		p := a.StartProcess("certreq.exe", winhost.ProcessOptions{})
		ctr, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.CreateRequest(e.ctx, ctr.GUID, winhost.RequestOptions{Subject: pkix.Name{CommonName: "alice"}, NoCardCopy: true}); err != nil {
			t.Fatal(err)
		}
		a.Logoff()
		a.RemoveCard(readerName)
		if err := b.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{}); err != nil {
			t.Fatal(err)
		}
		if err := b.Logon(e.ctx, user, winhost.LogonOptions{}); err != nil {
			t.Fatal(err)
		}
		b.Clock().Advance(time.Minute)
		_, err = b.StartProcess("certreq.exe", winhost.ProcessOptions{}).InstallResponse(e.ctx, issue(t, ctr.PublicKey, "alice"), winhost.InstallResponseOptions{})
		if roam && err != nil {
			t.Errorf("roaming: %v", err)
		}
		if !roam && !errors.Is(err, winerr.CRYPT_E_NOT_FOUND) {
			t.Errorf("not roaming: %v, want CRYPT_E_NOT_FOUND", err)
		}
	}
}
