package winhost_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/winerr"
)

// Logon EKU rules (ledger row H-LOGON-FILTER): without
// AllowCertificatesWithNoEKU only the smart-card-logon EKU; with it also
// no EKU, All Purpose and Client Authentication.
func TestLogonEKURules(t *testing.T) {
	variants := []struct {
		name       string
		eku        []x509.ExtKeyUsage
		unknown    []asn1.ObjectIdentifier
		off, allow bool
	}{
		{"smart-card logon", nil, []asn1.ObjectIdentifier{oidSmartCardLogon}, true, true},
		{"no EKU", nil, nil, false, true},
		{"All Purpose", []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, nil, false, true},
		{"Client Authentication", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, false, true},
		{"Server Authentication", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, nil, false, false},
	}
	for _, allow := range []bool{false, true} {
		e := newEnv(t, func(k *winhost.Knobs) { k.LogonAllowNoEKU = allow })
		e.insert(minidriver.Options{})
		p := e.proc("x", winhost.ProcessOptions{})
		c, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range variants {
			cert := issueWith(t, c.PublicKey, v.name, func(c *x509.Certificate) { c.ExtKeyUsage, c.UnknownExtKeyUsage = v.eku, v.unknown })
			if _, err := p.InstallCertificate(e.ctx, cert, winhost.InstallOptions{CardOnly: true}); err != nil {
				t.Fatal(err)
			}
			lcs := e.h.EnumerateLogonCards(e.ctx)
			want := v.off
			if allow {
				want = v.allow
			}
			if got := len(lcs) == 1 && len(lcs[0].Certificates) == 1; got != want {
				t.Errorf("AllowCertificatesWithNoEKU=%v, %s: offered %v, want %v (%+v)", allow, v.name, got, want, lcs[0].Rejected)
			}
		}
	}
}

// templateExt is szOID_CERTIFICATE_TEMPLATE for template id and major
// version; sanUPN a subjectAltName with a UPN other name.
func templateExt(t *testing.T, id asn1.ObjectIdentifier, major int) pkix.Extension {
	b, err := asn1.Marshal(struct {
		ID           asn1.ObjectIdentifier
		Major, Minor int
	}{id, major, 0})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 7}, Value: b}
}

func sanUPN(t *testing.T, upn string) pkix.Extension {
	v, _ := asn1.Marshal(upn) // UTF8String
	val, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: v})
	oid, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3})
	other, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, val...)})
	seq, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: other})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: seq}
}

// FilterDuplicateCerts (ledger row H-LOGON-DUPLICATES): certificates from
// the same template and major version for the same UPN are one; the one
// expiring last is offered. Another major version, another UPN or no
// template: not the same.
func TestLogonDuplicateFilter(t *testing.T) {
	tmplA := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 8, 1, 2, 3}
	type spec struct {
		major int
		upn   string
		days  int
		tmpl  bool
	}
	for _, tt := range []struct {
		name   string
		a, b   spec
		filter bool
		want   int // certificates offered
	}{
		{"same template, version, UPN", spec{100, "alice@example.test", 300, true}, spec{100, "alice@example.test", 600, true}, true, 1},
		{"filter off", spec{100, "alice@example.test", 300, true}, spec{100, "alice@example.test", 600, true}, false, 2},
		{"other major version", spec{100, "alice@example.test", 300, true}, spec{101, "alice@example.test", 600, true}, true, 2},
		{"other UPN", spec{100, "alice@example.test", 300, true}, spec{100, "bob@example.test", 600, true}, true, 2},
		{"no template", spec{100, "alice@example.test", 300, false}, spec{100, "alice@example.test", 600, false}, true, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(k *winhost.Knobs) { k.LogonFilterDuplicateCerts = tt.filter })
			e.insert(minidriver.Options{})
			p := e.proc("x", winhost.ProcessOptions{})
			var later *x509.Certificate
			for _, s := range []spec{tt.a, tt.b} {
				c, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
				if err != nil {
					t.Fatal(err)
				}
				cert := issueWith(t, c.PublicKey, "alice", func(c *x509.Certificate) {
					c.NotAfter = winhost.DefaultStart.Add(time.Duration(s.days) * 24 * time.Hour)
					c.ExtraExtensions = []pkix.Extension{sanUPN(t, s.upn)}
					if s.tmpl {
						c.ExtraExtensions = append(c.ExtraExtensions, templateExt(t, tmplA, s.major))
					}
				})
				later = cert
				if _, err := p.InstallCertificate(e.ctx, cert, winhost.InstallOptions{CardOnly: true}); err != nil {
					t.Fatal(err)
				}
			}
			lc := e.h.EnumerateLogonCards(e.ctx)[0]
			if len(lc.Certificates) != tt.want {
				t.Fatalf("%d offered, want %d (rejected %+v)", len(lc.Certificates), tt.want, lc.Rejected)
			}
			if tt.want == 1 && !lc.Certificates[0].Equal(later) {
				t.Error("the certificate expiring first was kept")
			}
		})
	}
}

// Deleting the default container through Base CSP selects a new default
// (ledger row H-CSP-NEWDEFAULT); NewDefaultNone is what an out-of-band
// writer leaves, and logon breaks.
func TestDeleteDefaultSelectsNewDefault(t *testing.T) {
	for _, tt := range []struct {
		pol     winhost.NewDefaultPolicy
		wantIdx int // -1: none
	}{
		{winhost.NewDefaultFirstValid, 1},
		{winhost.NewDefaultLastValid, 2},
		{winhost.NewDefaultNone, -1},
	} {
		t.Run(tt.pol.String(), func(t *testing.T) {
			e := newEnv(t, func(k *winhost.Knobs) { k.NewDefaultOnDelete = tt.pol })
			e.insert(minidriver.Options{})
			p := e.proc("x", winhost.ProcessOptions{})
			var cs []winhost.Container
			for range 3 {
				c, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
				if err != nil {
					t.Fatal(err)
				}
				cs = append(cs, c)
			}
			if !cs[0].Default {
				t.Fatal("precondition: the first container is not the default")
			}
			if err := p.DeleteContainer(e.ctx, cs[0].GUID, winhost.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			got := -1
			left, _ := p.Containers(e.ctx, readerName)
			for _, c := range left {
				if c.Default {
					got = c.Index
				}
			}
			if got != tt.wantIdx {
				t.Fatalf("default index %d, want %d", got, tt.wantIdx)
			}
			lc := e.h.EnumerateLogonCards(e.ctx)[0]
			if lc.Usable != (tt.wantIdx >= 0) {
				t.Errorf("usable for sign-in: %v (%v)", lc.Usable, lc.Err)
			}
		})
	}
}

// A full card is skipped and the next inserted card used; with no card
// left the user is asked for another card, and a silent context fails
// (ledger row H-CSP-FULLCARD).
func TestFullCardIsSkipped(t *testing.T) {
	e := newEnv(t)
	second := newCard(t, [16]byte{2})
	if err := e.h.InsertCard(e.ctx, "Reader A", winhost.FromReader(e.card.reader), minidriver.Options{MaxContainers: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.h.InsertCard(e.ctx, "Reader B", winhost.FromReader(second.reader), minidriver.Options{MaxContainers: 1}); err != nil {
		t.Fatal(err)
	}
	p := e.proc("x", winhost.ProcessOptions{})
	for i, want := range []string{"Reader A", "Reader B"} {
		c, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
		if err != nil || c.Reader != want {
			t.Fatalf("container %d: %v in %q, want %q", i, err, c.Reader, want)
		}
	}
	skipped := 0
	for _, ev := range e.h.Events() {
		if ev.Kind == winhost.EvCardSkipped {
			skipped++
		}
	}
	if skipped != 1 {
		t.Errorf("%d card-skipped events, want 1", skipped)
	}
	if _, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits}); !errors.Is(err, winhost.ErrInsertCardDialog) {
		t.Errorf("every card full: %v, want the insert-card dialog", err)
	}
	if _, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits, Silent: true}); !errors.Is(err, winerr.NTE_TOKEN_KEYSET_STORAGE_FULL) {
		t.Errorf("silent: %v", err)
	}
	if _, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Reader: "Reader A", Bits: keyBits, Silent: true}); !errors.Is(err, winerr.NTE_TOKEN_KEYSET_STORAGE_FULL) {
		t.Errorf("named reader, silent: %v", err)
	}
}

// The freshness comparison (ledger row H-CACHE-FRESHNESS) on a card
// re-initialised with the same cardid and fewer writes since: its counters
// are lower than the cached ones. "Counters differ" re-reads; "card
// counter is newer" keeps serving the previous owner's certificate.
func TestCacheFreshnessRule(t *testing.T) {
	id := [16]byte{0x33, 1}
	for _, tt := range []struct {
		rule      winhost.FreshnessRule
		wantGhost bool
	}{
		{winhost.FreshnessCountersDiffer, false},
		{winhost.FreshnessCardNewer, true},
	} {
		t.Run(tt.rule.String(), func(t *testing.T) {
			e := &env{t: t, ctx: t.Context(), h: newHost(t, func(k *winhost.Knobs) { k.CacheFreshness = tt.rule }), card: newCard(t, id)}
			e.card.enroll(t, guidA, "previous owner", minidriver.BumpCorrect)
			e.card.enroll(t, "2c9f5d70-3e4f-4071-8cbd-2e3f4a5b6c7d", "previous owner 2", minidriver.BumpCorrect)
			before := e.card.cardcf(t)
			e.insert(minidriver.Options{})
			p := e.proc("app.exe", winhost.ProcessOptions{})
			e.cardCerts(p)
			e.remove()
			e.card.reinit(t, id)
			_, newCert := e.card.enroll(t, guidB, "new owner", minidriver.BumpCorrect)
			after := e.card.cardcf(t)
			if after.FilesFreshness >= before.FilesFreshness || after.ContainersFreshness >= before.ContainersFreshness {
				t.Fatalf("precondition: counters %x not below the cached %x", after.Bytes(), before.Bytes())
			}
			e.insert(minidriver.Options{})
			got := e.cardCerts(p)
			ghost := got[guidB] == nil
			if ghost != tt.wantGhost {
				t.Fatalf("host sees %v (ghost %v, want %v)", got, ghost, tt.wantGhost)
			}
			if !tt.wantGhost && !sameCert(got[guidB], newCert) {
				t.Fatal("not the new owner's certificate")
			}
		})
	}
}
