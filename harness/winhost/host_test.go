package winhost_test

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

func TestDefaultKnobs(t *testing.T) {
	k := winhost.DefaultKnobs()
	if k.Granularity != winhost.PerCategory || k.CmapfileCounter != fs.CategoryFiles || !k.GlobalCachePersistent ||
		k.CacheMaxBytesPerItem != 10000 || k.CacheMaxBytesTotal != 50000 || k.CacheMaxItemAge != 5*24*time.Hour ||
		k.SessionPINs || !k.DropPINOnWrongPIN || k.PINCacheSurvivesRemoval || !k.ChangePINBumpsPins ||
		!k.PropagationEnabled || k.PropagationDelay != time.Second || !k.PropagationReadsThroughCache ||
		k.PropagationProviderRule != winhost.ProviderKSPForAll || k.SilentNoContainerError != winerr.NTE_BAD_KEYSET ||
		!k.HealMissingProvInfo || k.HealSource != winhost.HealFromMyStore || !k.LogonReadsAllCertificates ||
		k.NoDefaultContainer != winhost.NoDefaultFails || !k.LogonFilterDuplicateCerts {
		t.Errorf("defaults changed: %+v", k)
	}
	if h := winhost.New(winhost.Config{}); h.Knobs() != k {
		t.Error("nil Config.Knobs is not DefaultKnobs()")
	}
}

// The read path per cache mode (§2.2, §1.5).
func TestCacheModes(t *testing.T) {
	for _, tt := range []struct {
		mode       minidriver.CacheMode
		wantSecond winhost.Stats
		wantG      int
	}{
		{minidriver.CacheGlobal, winhost.Stats{Transactions: 1, CacheHits: 2}, 2},
		{minidriver.CacheSessionOnly, winhost.Stats{Transactions: 1, CacheHits: 2}, 0},
		{minidriver.CacheNone, winhost.Stats{Transactions: 1, CardReads: 2}, 0},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			e := newEnv(t)
			e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
			e.insert(minidriver.Options{CacheMode: tt.mode})
			p := e.proc("app.exe", winhost.ProcessOptions{})
			e.cardCerts(p)
			got := e.statsOfRead(p)
			if d := cmp.Diff(tt.wantSecond, got); d != "" {
				t.Errorf("second read (-want +got):\n%s", d)
			}
			if n := len(e.h.GlobalCache()); n != tt.wantG {
				t.Errorf("%d items in G", n)
			}
		})
	}
}

// Granularity (§7 q1): a PIN change bumps only bPinsFreshness; per
// category the cached cmapfile stays valid, as a whole snapshot it is
// stale.
func TestFreshnessGranularity(t *testing.T) {
	for _, g := range []winhost.Granularity{winhost.PerCategory, winhost.WholeSnapshot} {
		t.Run(g.String(), func(t *testing.T) {
			e := newEnv(t, func(k *winhost.Knobs) { k.Granularity = g })
			p := e.cachedByApp()
			e.card.oobRaw(t, func(c *minidriver.Card) {
				if err := c.ChangePIN(e.ctx, testPIN, "99998888", minidriver.BumpCorrect); err != nil {
					t.Fatal(err)
				}
			})
			got := e.statsOfRead(p)
			want := winhost.Stats{Transactions: 1, CacheHits: 2}
			if g == winhost.WholeSnapshot {
				want = winhost.Stats{Transactions: 1, CacheStale: 2, CardReads: 2}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// CmapfileCounter: a cmapfile rewrite that bumps only wContainers
// (BumpWrongCounter) is seen if the cmapfile is covered by containers,
// missed if by files.
func TestCmapfileCounterKnob(t *testing.T) {
	for _, cat := range []fs.Category{fs.CategoryFiles, fs.CategoryContainers} {
		t.Run(cat.String(), func(t *testing.T) {
			e := newEnv(t, func(k *winhost.Knobs) { k.CmapfileCounter = cat })
			p := e.cachedByApp()
			e.card.oob(t, func(c *minidriver.Card) {
				m, _ := c.Containers(e.ctx)
				m[0].GUID = guidB
				b, _ := m.Bytes()
				if err := c.WriteFile(e.ctx, "mscp/cmapfile", b, minidriver.BumpWrongCounter); err != nil {
					t.Fatal(err)
				}
			})
			got := e.cardCerts(p)
			want := guidA
			if cat == fs.CategoryContainers {
				want = guidB
			}
			if got[want] == nil {
				t.Errorf("host sees %v, want container %s", got, want)
			}
		})
	}
}

func TestGlobalCachePersistenceAndAge(t *testing.T) {
	for _, persistent := range []bool{true, false} {
		e := newEnv(t, func(k *winhost.Knobs) { k.GlobalCachePersistent = persistent })
		e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
		e.insert(minidriver.Options{})
		e.cardCerts(e.proc("a.exe", winhost.ProcessOptions{}))
		e.h.RestartCardService()
		if n := len(e.h.GlobalCache()); (n > 0) != persistent {
			t.Errorf("persistent=%v: %d items after a service restart", persistent, n)
		}
		e.h.Reboot()
		if n := len(e.h.GlobalCache()); (n > 0) != persistent {
			t.Errorf("persistent=%v: %d items after a reboot", persistent, n)
		}
		if e.h.Readers()[0] != readerName {
			t.Error("card left the reader on reboot")
		}
	}
	// Items older than CacheMaxItemAge are misses; removal keeps G.
	e := newEnv(t)
	e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{})
	p := e.proc("a.exe", winhost.ProcessOptions{})
	e.cardCerts(p)
	e.reinsert()
	if d := e.statsOfRead(p); d.CacheHits != 2 {
		t.Errorf("after re-insertion: %+v, want G hits", d)
	}
	e.h.Clock().Advance(6 * 24 * time.Hour)
	if d := e.statsOfRead(p); d.CacheMisses != 2 || d.CardReads != 2 {
		t.Errorf("after 6 days: %+v, want misses", d)
	}
}

func TestGlobalCacheTotalCapEvictsOldest(t *testing.T) {
	e := newEnv(t, func(k *winhost.Knobs) { k.CacheMaxBytesTotal = 400 })
	e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{})
	e.cardCerts(e.proc("a.exe", winhost.ProcessOptions{}))
	total := 0
	for _, it := range e.h.GlobalCache() {
		total += it.Size + 16
	}
	if total > 400 {
		t.Errorf("G holds %d bytes, cap 400", total)
	}
}

// Propagation is asynchronous, happens only on insertion and logon, is
// cancelled by removal and logoff, and can be switched off (§2.5).
func TestPropagationTiming(t *testing.T) {
	e := newEnv(t, func(k *winhost.Knobs) { k.PropagationDelay = 3 * time.Second })
	_, cert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{})
	if err := e.h.Logon(e.ctx, user, winhost.LogonOptions{}); err != nil {
		t.Fatal(err)
	}
	if e.h.PendingPropagations() != 1 {
		t.Fatalf("%d pending propagations after logon", e.h.PendingPropagations())
	}
	e.h.Clock().Advance(2 * time.Second)
	if e.my().Len() != 0 {
		t.Fatal("propagated before the delay")
	}
	e.h.Clock().Advance(time.Second)
	sc, ok := e.my().FindCert(cert)
	if !ok || sc.ProvInfo.Provider != winhost.ProviderKSP || sc.ProvInfo.Container != guidA || sc.ProvInfo.KeySpec != fs.AT_KEYEXCHANGE {
		t.Fatalf("after the delay: %v %+v", ok, sc.ProvInfo)
	}
	// Removal before the delay cancels; nothing is ever removed from My.
	e.reinsert()
	e.remove()
	e.h.Clock().Advance(time.Minute)
	if _, ok := e.my().FindCert(cert); !ok {
		t.Fatal("certificate removed from My")
	}
	if e.h.PendingPropagations() != 0 {
		t.Fatal("pending propagation survived")
	}
	// Logoff cancels; no user, no propagation.
	e.insert(minidriver.Options{})
	e.h.Logoff()
	e.my().Delete(winhost.Thumbprint(cert))
	e.h.Clock().Advance(time.Minute)
	e.reinsert()
	e.h.Clock().Advance(time.Minute)
	if e.my().Len() != 0 {
		t.Fatal("propagated without a signed-in user")
	}
	off := newEnv(t, func(k *winhost.Knobs) { k.PropagationEnabled = false })
	off.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	off.insert(minidriver.Options{})
	off.logon()
	if off.my().Len() != 0 {
		t.Fatal("propagated with CertPropEnabled off")
	}
}

// Knob PropagationReadsThroughCache: straight from the card, an unbumped
// write still propagates.
func TestPropagationStraightFromCard(t *testing.T) {
	e := newEnv(t, func(k *winhost.Knobs) { k.PropagationReadsThroughCache = false })
	e.logon()
	idx, _ := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{})
	e.settle()
	e.cardCerts(e.proc("app.exe", winhost.ProcessOptions{})) // G holds the old certificate
	newCert := issue(t, e.card.publicKey(t, idx), "alice reissued")
	e.card.writeCert(t, idx, newCert, minidriver.BumpNone)
	e.reinsert()
	e.settle()
	if _, ok := e.my().FindCert(newCert); !ok {
		t.Fatal("propagation read the cache")
	}
}

// A card certificate that the user's stores know with an enrollment
// property is filed into REQUEST, not My (§2.5).
func TestPropagationFiltersEnrollmentIntoRequest(t *testing.T) {
	e, p := signedInWithCard(t)
	c := e.generate(p)
	dummy, err := p.CreateRequest(e.ctx, c.GUID, winhost.RequestOptions{Enrollment: winhost.EnrollmentProperty{RequestID: 7}})
	if err != nil {
		t.Fatal(err)
	}
	// A writer puts the dummy itself on the card.
	e.card.writeCert(t, c.Index, dummy.Cert, minidriver.BumpCorrect)
	e.reinsert()
	e.settle()
	if _, ok := e.my().FindCert(dummy.Cert); ok {
		t.Error("request dummy propagated into My")
	}
	got, ok := e.h.Profile(user).Request().FindCert(dummy.Cert)
	if !ok || got.Enrollment == nil || got.Enrollment.RequestID != 7 || got.Source != "propagation" {
		t.Errorf("REQUEST copy: %v %+v", ok, got)
	}
}

func TestStoreDispositions(t *testing.T) {
	h := newHost(t)
	s := h.Profile(user).My()
	cert := issue(t, softwareKey(t), "x")
	enr := &winhost.EnrollmentProperty{RequestID: 1}
	s.Add(winhost.StoreCert{Cert: cert, Enrollment: enr}, winhost.AddReplaceExisting)
	if s.Add(winhost.StoreCert{Cert: cert}, winhost.AddNew) {
		t.Error("AddNew replaced")
	}
	s.Add(withProv(cert, guidA), winhost.AddReplaceInheritProperties)
	got, _ := s.FindCert(cert)
	if got.Enrollment == nil || got.ProvInfo == nil {
		t.Errorf("inherit: %+v", got)
	}
	s.Add(winhost.StoreCert{Cert: cert}, winhost.AddReplaceExisting)
	got, _ = s.FindCert(cert)
	if got.Enrollment != nil || got.ProvInfo != nil || s.Len() != 1 {
		t.Errorf("replace: %+v", got)
	}
	// Returned values are copies.
	got.Cert = nil
	if c, _ := s.FindCert(cert); c.Cert == nil {
		t.Error("store shares its entries")
	}
	if len(s.FindBySubject("x")) != 1 || len(s.FindByPublicKey(cert.PublicKey.(*rsa.PublicKey))) != 1 {
		t.Error("find")
	}
}

// S20: P1 caches, P2 writes through Base CSP, P1 refreshes at its next
// transaction; the writer's own view is refreshed without a card read of
// the cmapfile.
func TestTwoProcessesOneWriter(t *testing.T) {
	e := newEnv(t)
	e.logon()
	e.insert(minidriver.Options{})
	p1 := e.proc("reader.exe", winhost.ProcessOptions{})
	p2 := e.proc("writer.exe", winhost.ProcessOptions{})
	if cs, err := p1.Containers(e.ctx, readerName); err != nil || len(cs) != 0 {
		t.Fatal(cs, err)
	}
	c, err := p2.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits, GUID: guidA})
	if err != nil {
		t.Fatal(err)
	}
	before := p2.Stats()
	cs, err := p2.Containers(e.ctx, readerName)
	if err != nil || len(cs) != 1 || delta(before, p2.Stats()).CardReads != 0 {
		t.Fatalf("writer: %v %v %+v", cs, err, delta(before, p2.Stats()))
	}
	cs, err = p1.Containers(e.ctx, readerName)
	if err != nil || len(cs) != 1 || cs[0].GUID != guidA || !cs[0].PublicKey.Equal(c.PublicKey) || !cs[0].Default {
		t.Fatalf("reader after the write: %+v %v", cs, err)
	}
	if _, err := p2.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits, GUID: guidA}); !errors.Is(err, winerr.NTE_EXISTS) {
		t.Errorf("duplicate name: %v", err)
	}
}

// S19: a read-only card: Base CSP does not write cardcf.
func TestReadOnlyCardIsNotBumped(t *testing.T) {
	e := newEnv(t)
	if err := e.h.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	before := e.card.cardcf(t)
	if _, err := e.proc("x", winhost.ProcessOptions{}).GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits}); err != nil {
		t.Fatal(err)
	}
	if cf := e.card.cardcf(t); cf.Changed(before) {
		t.Errorf("cardcf %x -> %x on a read-only card", before.Bytes(), cf.Bytes())
	}
}

func TestLogonFilters(t *testing.T) {
	e := newEnv(t)
	e.insert(minidriver.Options{})
	p := e.proc("x", winhost.ProcessOptions{})
	c := e.generate(p)
	plain := issueWith(t, c.PublicKey, "alice", func(c *x509.Certificate) { c.ExtKeyUsage, c.UnknownExtKeyUsage = nil, nil })
	if _, err := p.InstallCertificate(e.ctx, plain, winhost.InstallOptions{CardOnly: true}); err != nil {
		t.Fatal(err)
	}
	lcs := e.h.EnumerateLogonCards(e.ctx)
	if len(lcs) != 1 || !lcs[0].Usable || len(lcs[0].Certificates) != 0 || len(lcs[0].Rejected) != 1 {
		t.Fatalf("no-EKU certificate: %+v", lcs)
	}
	if err := e.h.Logon(e.ctx, user, winhost.LogonOptions{SmartCardReader: readerName}); !errors.Is(err, winhost.ErrCardUnusableForSignIn) {
		t.Fatalf("logon without a logon certificate: %v", err)
	}
	h2 := newHost(t, func(k *winhost.Knobs) { k.LogonAllowNoEKU = true })
	if err := h2.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{}); err != nil {
		t.Fatal(err)
	}
	if lcs := h2.EnumerateLogonCards(e.ctx); len(lcs[0].Certificates) != 1 {
		t.Fatalf("AllowCertificatesWithNoEKU: %+v", lcs)
	}
	if got := h2.LogonCertificates(); len(got) != 1 {
		t.Errorf("logon cache: %d", len(got))
	}
	h2.RemoveCard(readerName)
	if got := h2.LogonCertificates(); len(got) != 0 {
		t.Errorf("logon cache after removal: %d", len(got))
	}
}

func TestProcessLifecycle(t *testing.T) {
	e := newEnv(t)
	e.logon()
	e.insert(minidriver.Options{})
	p := e.proc("x", winhost.ProcessOptions{})
	e.h.Logoff()
	if !p.Exited() {
		t.Fatal("user process survived logoff")
	}
	if _, err := p.Containers(e.ctx, readerName); !errors.Is(err, winhost.ErrProcessExited) {
		t.Errorf("exited process: %v", err)
	}
	if _, err := e.proc("y", winhost.ProcessOptions{}).InstallCertificate(e.ctx, issue(t, softwareKey(t), "x"), winhost.InstallOptions{}); !errors.Is(err, winhost.ErrNotSignedIn) {
		t.Errorf("install without a user: %v", err)
	}
	if _, err := e.proc("z", winhost.ProcessOptions{}).Containers(e.ctx, "nowhere"); !errors.Is(err, winerr.SCARD_E_NO_SMARTCARD) {
		t.Errorf("empty reader: %v", err)
	}
	if err := e.h.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{}); !errors.Is(err, winhost.ErrReaderOccupied) {
		t.Errorf("double insert: %v", err)
	}
	if err := e.h.Logon(e.ctx, user, winhost.LogonOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.h.Logon(e.ctx, "bob", winhost.LogonOptions{}); !errors.Is(err, winhost.ErrAlreadySignedIn) {
		t.Errorf("second logon: %v", err)
	}
}

// The same seed gives the same container names; the event log records
// the read path.
func TestDeterminismAndEvents(t *testing.T) {
	var runs [2][]string
	for i := range runs {
		e := newEnv(t)
		e.insert(minidriver.Options{})
		p := e.proc("x", winhost.ProcessOptions{})
		for range 2 {
			c := e.generate(p)
			runs[i] = append(runs[i], c.GUID)
		}
		kinds := map[winhost.EventKind]bool{}
		for _, ev := range e.h.Events() {
			kinds[ev.Kind] = true
		}
		for _, k := range []winhost.EventKind{winhost.EvInsert, winhost.EvTransaction, winhost.EvCacheMiss, winhost.EvCardRead, winhost.EvPINPrompt, winhost.EvCardWrite} {
			if !kinds[k] {
				t.Errorf("no %s event", k)
			}
		}
	}
	if d := cmp.Diff(runs[0], runs[1]); d != "" || len(runs[0][0]) != 36 || runs[0][0] == runs[0][1] {
		t.Errorf("GUIDs %v (-run1 +run2):\n%s", runs, d)
	}
}

// S14: container index ≥ 10. A writer that names the file of index 10
// "kxc10" (decimal) is seen only by a host that names files the same way
// (Knobs.CertFileNaming, §7 q6).
func TestCertFileNamingIndex10(t *testing.T) {
	card := newCard(t, [16]byte{})
	cert := issue(t, softwareKey(t), "index ten")
	card.oob(t, func(c *minidriver.Card) {
		var m fs.ContainerMap
		for i := range 11 {
			m = append(m, fs.ContainerRecord{GUID: "container-" + string(rune('a'+i)), Flags: fs.ContainerValid, KeyExchangeKeySizeBits: keyBits})
		}
		m[0].Flags |= fs.ContainerDefault
		b, _ := m.Bytes()
		data, _ := fs.EncodeCert(cert.Raw)
		for _, err := range []error{
			c.WriteFile(t.Context(), "mscp/cmapfile", b, minidriver.BumpCorrect),
			c.CreateFile(t.Context(), "mscp/kxc10", minidriver.BumpCorrect),
			c.WriteFile(t.Context(), "mscp/kxc10", data, minidriver.BumpCorrect),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
	for _, n := range []winhost.CertFileNaming{winhost.CertNamesHex, winhost.CertNamesDecimal} {
		h := newHost(t, func(k *winhost.Knobs) { k.CertFileNaming = n })
		if err := h.InsertCard(t.Context(), readerName, winhost.FromReader(card.reader), minidriver.Options{}); err != nil {
			t.Fatal(err)
		}
		cs, err := h.StartProcess("x", winhost.ProcessOptions{}).CardCertificates(t.Context(), readerName)
		if err != nil {
			t.Fatal(err)
		}
		seen := len(cs) == 1 && cs[0].Index == 10 && sameCert(cs[0].Cert, cert)
		if seen != (n == winhost.CertNamesDecimal) {
			t.Errorf("%v naming: certificates %v", n, cs)
		}
	}
}

// EventsSince is Events from the n-th on, with the log's length.
func TestEventsSince(t *testing.T) {
	e := newEnv(t)
	e.insert(minidriver.Options{})
	e.generate(e.proc("x", winhost.ProcessOptions{}))
	all := e.h.Events()
	if len(all) < 3 {
		t.Fatalf("%d events", len(all))
	}
	for _, n := range []int{-1, 0, 1, len(all) - 1, len(all), len(all) + 5} {
		got, total := e.h.EventsSince(n)
		want := all[min(max(n, 0), len(all)):]
		if total != len(all) || !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
			t.Errorf("EventsSince(%d) = %d events of %d, want %d of %d", n, len(got), total, len(want), len(all))
		}
	}
}
