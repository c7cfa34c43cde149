package winhost_test

// One test per transition of docs/reference/minidriver-semantics.md §2.8 (T1–T16). Each
// drives the host model against a virtual GIDS card and asserts the
// documented outcome of the correct variant and of the faulty one (or, for
// T1 and T15, whose faulty column is "—", the documented behaviour itself).

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

const (
	guidA = "0a7f3b5e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
	guidB = "1b8e4c6f-2d3e-4f60-9bac-1d2e3f4a5b6c"
)

// T1: Gc == Cc, host read → served from G.
func TestT1_ReadServedFromGlobalCache(t *testing.T) {
	e := newEnv(t)
	_, cert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{})
	p := e.proc("app.exe", winhost.ProcessOptions{})
	first := e.cardCerts(p)
	if !sameCert(first[guidA], cert) {
		t.Fatalf("first read: %v", first)
	}
	before := p.Stats()
	if got := e.cardCerts(p); !sameCert(got[guidA], cert) {
		t.Fatalf("second read: %v", got)
	}
	// cmapfile and kxc00 both hit; only cardid and cardcf come from the card.
	if d := cmp.Diff(winhost.Stats{Transactions: 1, CacheHits: 2}, delta(before, p.Stats())); d != "" {
		t.Errorf("second read of the same process (-want +got):\n%s", d)
	}
	// G is shared by every process on the host.
	q := e.proc("other.exe", winhost.ProcessOptions{})
	if got := e.cardCerts(q); !sameCert(got[guidA], cert) {
		t.Fatalf("other process: %v", got)
	}
	if d := cmp.Diff(winhost.Stats{Transactions: 1, CacheHits: 2}, q.Stats()); d != "" {
		t.Errorf("another process (-want +got):\n%s", d)
	}
	cf := e.card.cardcf(t)
	var names []string
	for _, it := range e.h.GlobalCache() {
		names = append(names, it.Name)
		if it.Fresh.Changed(cf) {
			t.Errorf("G item %s cached under %x, card has %x", it.Name, it.Fresh.Bytes(), cf.Bytes())
		}
	}
	want := []string{"Cached_GeneralFile/mscp/cmapfile", "Cached_GeneralFile/mscp/kxc00"}
	if d := cmp.Diff(want, names); d != "" {
		t.Errorf("G items (-want +got):\n%s", d)
	}
}

// T2: a writer changes the card with or without bumping; the host's next
// read is STALE → card read (correct) or keeps serving its old view
// (faulty), with the error codes §2.8 lists for what changed.
func TestT2_WriterWithoutBump(t *testing.T) {
	for _, v := range bumpVariants {
		// A new container and its certificate, written out of band.
		// An application that installs the certificate in My with
		// provinfo cannot open the key: the cached cmapfile hides the
		// container → NTE_BAD_KEYSET.
		t.Run("new container/"+v.name, func(t *testing.T) {
			e := newEnv(t)
			e.card.enroll(t, guidA, "alice old", minidriver.BumpCorrect)
			e.insert(minidriver.Options{})
			p := e.proc("app.exe", winhost.ProcessOptions{})
			e.cardCerts(p) // the host caches cmapfile
			_, cert := e.card.enroll(t, guidB, "alice new", v.pol)
			k, err := p.AcquireCertificatePrivateKey(e.ctx, withProv(cert, guidB), winhost.AcquireFlags{Silent: true})
			if v.pol == minidriver.BumpCorrect {
				if err != nil || k.ContainerGUID() != guidB {
					t.Fatalf("acquire after a bumped write: %v", err)
				}
				// Signing needs the PIN: a silent handle cannot prompt.
				if err := signAndVerify(t, e.ctx, k, cert); !errors.Is(err, winerr.NTE_SILENT_CONTEXT) {
					t.Fatalf("silent sign without a cached PIN: %v, want NTE_SILENT_CONTEXT", err)
				}
				k, err = p.AcquireCertificatePrivateKey(e.ctx, withProv(cert, guidB), winhost.AcquireFlags{})
				if err != nil {
					t.Fatal(err)
				}
				if err := signAndVerify(t, e.ctx, k, cert); err != nil {
					t.Fatalf("sign: %v", err)
				}
				return
			}
			if !errors.Is(err, winerr.NTE_BAD_KEYSET) {
				t.Fatalf("acquire after an unbumped write: %v, want NTE_BAD_KEYSET", err)
			}
		})
		// The same write; the user's copy of the certificate in My has no
		// provinfo (added by hand) and waits for CertPropSvc to set it at
		// the next insertion. Propagation reads through the stale cache
		// and never sees the certificate → CRYPT_E_NO_KEY_PROPERTY.
		t.Run("not propagated/"+v.name, func(t *testing.T) {
			e := newEnv(t)
			e.logon()
			e.card.enroll(t, guidA, "alice old", minidriver.BumpCorrect)
			e.insert(minidriver.Options{})
			e.settle()
			_, cert := e.card.enroll(t, guidB, "alice new", v.pol)
			e.my().Add(winhost.StoreCert{Cert: cert}, winhost.AddReplaceExisting)
			e.reinsert()
			e.settle()
			sc, ok := e.my().FindCert(cert)
			if !ok {
				t.Fatal("the certificate left My")
			}
			p := e.proc("app.exe", winhost.ProcessOptions{})
			_, err := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{Silent: true, AllowNCrypt: true})
			if v.pol == minidriver.BumpCorrect {
				if err != nil || sc.ProvInfo == nil || sc.ProvInfo.Container != guidB {
					t.Fatalf("after propagation: provinfo %+v, acquire %v", sc.ProvInfo, err)
				}
				return
			}
			if !errors.Is(err, winerr.CRYPT_E_NO_KEY_PROPERTY) {
				t.Fatalf("acquire: %v, want CRYPT_E_NO_KEY_PROPERTY", err)
			}
		})
		// The container is re-keyed in place (same GUID, same index) with
		// a new certificate. Propagation reads the old certificate from
		// the cache: the app signs with the card's new key and the
		// relying party checks under the old certificate →
		// NTE_BAD_SIGNATURE.
		t.Run("re-keyed container/"+v.name, func(t *testing.T) {
			e := newEnv(t)
			e.logon()
			idx, oldCert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
			e.insert(minidriver.Options{})
			e.settle()
			if _, ok := e.my().FindCert(oldCert); !ok {
				t.Fatal("first certificate not propagated")
			}
			e.card.oob(t, func(c *minidriver.Card) {
				if err := c.DeleteContainer(e.ctx, idx, minidriver.DeleteOptions{MoveDefaultTo: -1}, v.pol); err != nil {
					t.Fatal(err)
				}
			})
			idx2, newCert := e.card.enroll(t, guidA, "alice", v.pol)
			if idx2 != idx {
				t.Fatalf("re-keyed at index %d, want %d", idx2, idx)
			}
			e.reinsert()
			e.settle()
			_, newInMy := e.my().FindCert(newCert)
			p := e.proc("app.exe", winhost.ProcessOptions{})
			if v.pol == minidriver.BumpCorrect {
				if !newInMy {
					t.Fatal("new certificate not propagated")
				}
				sc, _ := e.my().FindCert(newCert)
				k, err := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{CompareKey: true, AllowNCrypt: true})
				if err != nil {
					t.Fatal(err)
				}
				if err := signAndVerify(t, e.ctx, k, newCert); err != nil {
					t.Fatalf("sign with the new certificate: %v", err)
				}
				return
			}
			if newInMy {
				t.Fatal("the new certificate reached My through a stale cache")
			}
			sc, _ := e.my().FindCert(oldCert)
			k := e.acquire(p, sc)
			if err := signAndVerify(t, e.ctx, k, oldCert); !errors.Is(err, winerr.NTE_BAD_SIGNATURE) {
				t.Fatalf("verify under the propagated (stale) certificate: %v, want NTE_BAD_SIGNATURE", err)
			}
		})
	}
}

// T3: the writer bumps in one transaction and writes in another; a host
// that reads in between caches the old data under the new counter.
func TestT3_BumpAndWriteInSeparateTransactions(t *testing.T) {
	variants(t, func(t *testing.T, faulty bool) {
		e := newEnv(t)
		idx, oldCert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
		e.insert(minidriver.Options{})
		p := e.proc("app.exe", winhost.ProcessOptions{})
		e.cardCerts(p)
		newCert := issue(t, e.card.publicKey(t, idx), "alice reissued")
		if faulty {
			// Transaction 1: bump. The host reads between the two.
			e.card.oob(t, func(c *minidriver.Card) {
				cf, _ := c.CardCF(e.ctx)
				cf.BumpFiles()
				if err := c.WriteCardCF(e.ctx, cf); err != nil {
					t.Fatal(err)
				}
			})
			if got := e.cardCerts(p); !sameCert(got[guidA], oldCert) {
				t.Fatal("read between the transactions did not see the old certificate")
			}
			// Transaction 2: the data, no bump.
			e.card.writeCert(t, idx, newCert, minidriver.BumpNone)
		} else {
			e.card.writeCert(t, idx, newCert, minidriver.BumpCorrect)
		}
		got := e.cardCerts(p)
		if !faulty {
			if !sameCert(got[guidA], newCert) {
				t.Fatal("one-transaction write: host still serves the old certificate")
			}
			return
		}
		if !sameCert(got[guidA], oldCert) {
			t.Fatal("old data cached under the new counter was not served")
		}
		// Stale until the next change; a host that never cached it sees the truth.
		fresh := newHost(t)
		if err := fresh.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{}); err != nil {
			t.Fatal(err)
		}
		q := fresh.StartProcess("app.exe", winhost.ProcessOptions{})
		cs, err := q.CardCertificates(e.ctx, readerName)
		if err != nil || len(cs) != 1 || !sameCert(cs[0].Cert, newCert) {
			t.Fatalf("fresh host: %v %v", cs, err)
		}
	})
}

// T4: the card is re-initialised, counters back to zero; the same
// sequence of writes brings them back to the cached values. With the same
// cardid the host serves the previous content (ghost containers).
func TestT4_ReinitKeepsCardID(t *testing.T) {
	id := [16]byte{0x04, 0x04, 0x04, 0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	variants(t, func(t *testing.T, keepID bool) {
		e := &env{t: t, ctx: t.Context(), h: newHost(t), card: newCard(t, id)}
		_, oldCert := e.card.enroll(t, guidA, "previous owner", minidriver.BumpCorrect)
		cfBefore := e.card.cardcf(t)
		e.insert(minidriver.Options{})
		p := e.proc("app.exe", winhost.ProcessOptions{})
		e.cardCerts(p)
		e.remove()
		newID := id
		if !keepID {
			newID = fs.RandomCardID()
		}
		e.card.reinit(t, newID)
		_, newCert := e.card.enroll(t, guidB, "new owner", minidriver.BumpCorrect)
		if cf := e.card.cardcf(t); cf.Changed(cfBefore) {
			t.Fatalf("precondition: counters %x differ from the cached %x", cf.Bytes(), cfBefore.Bytes())
		}
		e.insert(minidriver.Options{})
		got := e.cardCerts(p)
		if !keepID {
			if len(got) != 1 || !sameCert(got[guidB], newCert) {
				t.Fatalf("new cardid: host sees %v", got)
			}
			return
		}
		if len(got) != 1 || !sameCert(got[guidA], oldCert) {
			t.Fatalf("same cardid: want the ghost container %s of the previous content, got %v", guidA, got)
		}
	})
}

// T5: two cards share a cardid; the host shows card A's certificates for
// card B, and propagation puts A's, not B's, into My.
func TestT5_DuplicateCardID(t *testing.T) {
	shared := [16]byte{0x05, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	variants(t, func(t *testing.T, dup bool) {
		idB := shared
		if !dup {
			idB = fs.RandomCardID()
		}
		a, b := newCard(t, shared), newCard(t, idB)
		_, certA := a.enroll(t, guidA, "card A", minidriver.BumpCorrect)
		_, certB := b.enroll(t, guidB, "card B", minidriver.BumpCorrect)
		e := &env{t: t, ctx: t.Context(), h: newHost(t), card: a}
		e.logon()
		e.insert(minidriver.Options{})
		e.settle()
		e.remove()
		e.card = b
		e.insert(minidriver.Options{})
		e.settle()
		_, inMy := e.my().FindCert(certB)
		p := e.proc("app.exe", winhost.ProcessOptions{})
		got := e.cardCerts(p)
		if !dup {
			if !inMy || !sameCert(got[guidB], certB) {
				t.Fatalf("distinct cardids: B in My %v, host sees %v", inMy, got)
			}
			return
		}
		if inMy || !sameCert(got[guidA], certA) || got[guidB] != nil {
			t.Fatalf("shared cardid: want A's certificate shown for B and B's missing from My; B in My %v, host sees %v", inMy, got)
		}
	})
}

// T6: the PIN is changed out of band. With the bPinsFreshness bump the
// cached PIN is dropped and the user prompted; without, every process
// presents its stale PIN: SCARD_W_WRONG_CHV, then SCARD_W_CHV_BLOCKED.
func TestT6_PINChangedOutOfBand(t *testing.T) {
	const newPIN = "654321"
	for _, v := range bumpVariants {
		t.Run(v.name, func(t *testing.T) {
			e := newEnv(t)
			e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
			e.insert(minidriver.Options{})
			var keys []*winhost.KeyHandle
			var certs []winhost.StoreCert
			for i := range 3 {
				p := e.proc("app"+string(rune('1'+i))+".exe", winhost.ProcessOptions{})
				cs, err := p.CardCertificates(e.ctx, readerName)
				if err != nil {
					t.Fatal(err)
				}
				sc := winhost.StoreCert{Cert: cs[0].Cert, ProvInfo: &cs[0].ProvInfo}
				k := e.acquire(p, sc)
				if err := signAndVerify(t, e.ctx, k, sc.Cert); err != nil { // prompts, caches the PIN
					t.Fatal(err)
				}
				keys, certs = append(keys, k), append(certs, sc)
			}
			if n := e.h.Stats().PINPrompts; n != 3 {
				t.Fatalf("%d prompts before the change, want one per process", n)
			}
			e.card.oobRaw(t, func(c *minidriver.Card) {
				if err := c.ChangePIN(e.ctx, testPIN, newPIN, v.pol); err != nil {
					t.Fatal(err)
				}
			})
			e.h.SetUserPIN(newPIN)
			if v.pol == minidriver.BumpCorrect {
				for i, k := range keys {
					if err := signAndVerify(t, e.ctx, k, certs[i].Cert); err != nil {
						t.Fatalf("process %d after the bumped change: %v", i+1, err)
					}
				}
				if n := e.h.Stats().PINPrompts; n != 6 {
					t.Errorf("%d prompts, want 3 more (one per dropped cache)", n)
				}
				if left := e.card.card.PINTriesLeft(); left != 3 {
					t.Errorf("%d PIN tries left, want 3", left)
				}
				return
			}
			want := []winerr.Code{winerr.SCARD_W_WRONG_CHV, winerr.SCARD_W_WRONG_CHV, winerr.SCARD_W_CHV_BLOCKED}
			for i, k := range keys {
				if err := signAndVerify(t, e.ctx, k, certs[i].Cert); !errors.Is(err, want[i]) {
					t.Fatalf("process %d: %v, want %v", i+1, err, want[i])
				}
			}
			if n := e.h.Stats().PINPrompts; n != 3 {
				t.Errorf("%d prompts, want no new one (stale PINs were presented instead)", n)
			}
			if left := e.card.card.PINTriesLeft(); left != 0 {
				t.Errorf("%d PIN tries left, want 0 (blocked)", left)
			}
		})
	}
}

// T7: an admin unblocks the PIN without the user PIN; the bPinsFreshness
// bump is done (the GIDS admin may write cardcf) or silently skipped (a
// card whose cardcf needs the user PIN) → T6.
func TestT7_AdminUnblockWithoutUserPIN(t *testing.T) {
	const newPIN = "24682468"
	for _, v := range bumpVariants {
		t.Run(v.name, func(t *testing.T) {
			e := newEnv(t)
			e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
			e.insert(minidriver.Options{})
			p := e.proc("app.exe", winhost.ProcessOptions{})
			cs, err := p.CardCertificates(e.ctx, readerName)
			if err != nil {
				t.Fatal(err)
			}
			sc := winhost.StoreCert{Cert: cs[0].Cert, ProvInfo: &cs[0].ProvInfo}
			k := e.acquire(p, sc)
			if err := signAndVerify(t, e.ctx, k, sc.Cert); err != nil {
				t.Fatal(err)
			}
			before := e.card.cardcf(t)
			e.card.oobRaw(t, func(c *minidriver.Card) { // no user PIN: admin key only
				if err := c.UnblockPIN(e.ctx, adminKey, newPIN, v.pol); err != nil {
					t.Fatal(err)
				}
			})
			bumped := e.card.cardcf(t).ChangedIn(before, fs.CategoryPins)
			e.h.SetUserPIN(newPIN)
			err = signAndVerify(t, e.ctx, k, sc.Cert)
			if v.pol == minidriver.BumpCorrect {
				if !bumped || err != nil {
					t.Fatalf("bumped %v; sign after unblock: %v", bumped, err)
				}
				if n := p.PINPrompts(winhost.CAPI); n != 2 {
					t.Errorf("%d prompts, want 2", n)
				}
				return
			}
			if bumped {
				t.Fatal("the skipped bump changed cardcf")
			}
			if !errors.Is(err, winerr.SCARD_W_WRONG_CHV) {
				t.Fatalf("sign with the stale cached PIN: %v, want SCARD_W_WRONG_CHV", err)
			}
		})
	}
}

// T8: a certificate written while the card is inserted does not reach My
// until the card is re-inserted (or the user logs on again); an explicit
// store add (Base CSP install) makes it appear at once.
func TestT8_CertificateWrittenWhileInserted(t *testing.T) {
	e := newEnv(t)
	e.logon()
	var idx int
	e.card.oob(t, func(c *minidriver.Card) {
		var err error
		idx, err = c.CreateContainer(e.ctx, minidriver.ContainerSpec{GUID: guidA, KeySpec: fs.AT_KEYEXCHANGE, Bits: keyBits}, minidriver.BumpCorrect)
		if err != nil {
			t.Fatal(err)
		}
	})
	e.insert(minidriver.Options{})
	e.settle()
	pub := e.card.publicKey(t, idx)
	cert := issue(t, pub, "alice")
	e.card.writeCert(t, idx, cert, minidriver.BumpCorrect)
	e.h.Clock().Advance(24 * 60 * 60 * 1e9)
	if _, ok := e.my().FindCert(cert); ok {
		t.Fatal("faulty expectation: the certificate reached My without a re-insert")
	}
	e.reinsert()
	if _, ok := e.my().FindCert(cert); ok {
		t.Fatal("propagation ran synchronously with the insertion")
	}
	e.settle()
	sc, ok := e.my().FindCert(cert)
	if !ok || sc.ProvInfo == nil || sc.ProvInfo.Container != guidA || sc.Source != "propagation" {
		t.Fatalf("after re-insert: in My %v, %+v", ok, sc)
	}
	// Correct: the explicit store add.
	p := e.proc("installer.exe", winhost.ProcessOptions{})
	cert2 := issue(t, pub, "alice (2)")
	if _, err := p.InstallCertificate(e.ctx, cert2, winhost.InstallOptions{ContainerGUID: guidA}); err != nil {
		t.Fatal(err)
	}
	if sc, ok := e.my().FindCert(cert2); !ok || sc.ProvInfo == nil || sc.ProvInfo.Container != guidA {
		t.Fatalf("explicit install: in My %v, %+v", ok, sc)
	}
}

// T9: the container behind a My certificate is deleted (renewal). The
// correct client removes the old certificate; the faulty one leaves it,
// and acquiring its key fails: silent → NTE_BAD_KEYSET (knob), otherwise
// the insert-card dialog.
func TestT9_ContainerDeletedCertificateLeftInMy(t *testing.T) {
	variants(t, func(t *testing.T, faulty bool) {
		e, p := signedInWithCard(t)
		oldC := e.generate(p)
		oldCert := issue(t, oldC.PublicKey, "alice")
		if _, err := p.InstallCertificate(e.ctx, oldCert, winhost.InstallOptions{}); err != nil {
			t.Fatal(err)
		}
		newC := e.generate(p)
		newCert := issue(t, newC.PublicKey, "alice")
		if _, err := p.InstallCertificate(e.ctx, newCert, winhost.InstallOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := p.DeleteContainer(e.ctx, oldC.GUID, winhost.DeleteOptions{MoveDefaultTo: newC.GUID}); err != nil {
			t.Fatal(err)
		}
		if !faulty {
			if !e.my().Delete(winhost.Thumbprint(oldCert)) {
				t.Fatal("old certificate was not in My")
			}
		}
		sc, ok := e.my().FindCert(oldCert)
		if !faulty {
			if ok {
				t.Fatal("old certificate still in My")
			}
			nc, _ := e.my().FindCert(newCert)
			k, err := p.AcquireCertificatePrivateKey(e.ctx, nc, winhost.AcquireFlags{Silent: true, CompareKey: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := signAndVerify(t, e.ctx, k, newCert); err != nil {
				t.Fatal(err)
			}
			return
		}
		if !ok {
			t.Fatal("old certificate vanished from My")
		}
		app := e.proc("outlook.exe", winhost.ProcessOptions{})
		if _, err := app.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{Silent: true}); !errors.Is(err, winerr.NTE_BAD_KEYSET) {
			t.Errorf("silent acquire: %v, want NTE_BAD_KEYSET", err)
		}
		_, err := app.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{})
		var ice *winhost.InsertCardError
		if !errors.Is(err, winhost.ErrInsertCardDialog) || !errors.As(err, &ice) || ice.ContainerGUID != oldC.GUID {
			t.Errorf("non-silent acquire: %v, want the insert-card dialog", err)
		}
		if n := app.Stats().InsertCardDialogs; n != 1 {
			t.Errorf("%d insert-card dialogs", n)
		}
		// The silent code is a knob (§7 q3).
		h2 := newHost(t, func(k *winhost.Knobs) { k.SilentNoContainerError = winerr.SCARD_E_NO_KEY_CONTAINER })
		if err := h2.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{}); err != nil {
			t.Fatal(err)
		}
		_, err = h2.StartProcess("x", winhost.ProcessOptions{}).AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{Silent: true})
		if !errors.Is(err, winerr.SCARD_E_NO_KEY_CONTAINER) {
			t.Errorf("knob SilentNoContainerError: %v", err)
		}
	})
}

// T10: a certificate in My without provinfo → CRYPT_E_NO_KEY_PROPERTY; the
// installer (InstallResponse) sets it from the request dummy.
func TestT10_CertificateWithoutProvInfo(t *testing.T) {
	e, p := signedInWithCard(t)
	c := e.generate(p)
	cert := issue(t, c.PublicKey, "alice")

	// Faulty: the certificate is added to My as a bare certificate.
	e.my().Add(winhost.StoreCert{Cert: cert}, winhost.AddReplaceExisting)
	bare, _ := e.my().FindCert(cert)
	if _, err := p.AcquireCertificatePrivateKey(e.ctx, bare, winhost.AcquireFlags{}); !errors.Is(err, winerr.CRYPT_E_NO_KEY_PROPERTY) {
		t.Fatalf("bare certificate: %v, want CRYPT_E_NO_KEY_PROPERTY", err)
	}
	// Healing is a knob, off by default.
	// Healing from My finds nothing (the My copy is the bare one); healing
	// by key search finds the container.
	heal := newHost(t, func(k *winhost.Knobs) { k.HealSource = winhost.HealByKeySearch })
	if err := heal.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{}); err != nil {
		t.Fatal(err)
	}
	if k, err := heal.StartProcess("x", winhost.ProcessOptions{}).AcquireCertificatePrivateKey(e.ctx, bare, winhost.AcquireFlags{}); err != nil || k.ContainerGUID() != c.GUID {
		t.Fatalf("healing: %v", err)
	}
	if _, err := heal.StartProcess("x", winhost.ProcessOptions{}).AcquireCertificatePrivateKey(e.ctx, bare, winhost.AcquireFlags{NoHealing: true}); !errors.Is(err, winerr.CRYPT_E_NO_KEY_PROPERTY) {
		t.Fatalf("CRYPT_ACQUIRE_NO_HEALING: %v", err)
	}

	// Correct: CertEnroll's request dummy and InstallResponse.
	e.my().Delete(winhost.Thumbprint(cert))
	dummy, err := p.CreateRequest(e.ctx, c.GUID, winhost.RequestOptions{Enrollment: winhost.EnrollmentProperty{RequestID: 42, CAName: "test CA"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.h.Profile(user).Request().Find(dummy.Thumbprint()); !ok {
		t.Fatal("dummy not in REQUEST")
	}
	installed, err := p.InstallResponse(e.ctx, cert, winhost.InstallResponseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(dummy.ProvInfo, installed.ProvInfo); d != "" {
		t.Errorf("provinfo not taken from the dummy (-dummy +installed):\n%s", d)
	}
	if n := e.h.Profile(user).Request().Len(); n != 0 {
		t.Errorf("REQUEST still holds %d certificates", n)
	}
	sc, _ := e.my().FindCert(cert)
	k, err := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{CompareKey: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := signAndVerify(t, e.ctx, k, cert); err != nil {
		t.Fatal(err)
	}
	// No outstanding request: InstallResponse refuses unless allowed.
	cert2 := issue(t, c.PublicKey, "alice again")
	if _, err := p.InstallResponse(e.ctx, cert2, winhost.InstallResponseOptions{}); !errors.Is(err, winerr.CRYPT_E_NOT_FOUND) {
		t.Errorf("InstallResponse without a dummy: %v", err)
	}
	if _, err := p.InstallResponse(e.ctx, cert2, winhost.InstallResponseOptions{AllowNoOutstandingRequest: true}); err != nil {
		t.Errorf("AllowNoOutstandingRequest: %v", err)
	}
}

// T11: the default container is deleted without moving the flag: logon
// cannot acquire a default container and the card is unusable for
// sign-in. Moving the flag keeps it usable.
func TestT11_DefaultContainerDeleted(t *testing.T) {
	setup := func(t *testing.T, mods ...func(*winhost.Knobs)) (*env, *winhost.Process, winhost.Container, winhost.Container) {
		e := newEnv(t, mods...)
		e.insert(minidriver.Options{})
		p := e.proc("certreq.exe", winhost.ProcessOptions{})
		d := e.generate(p)
		n := e.generate(p)
		if !d.Default || n.Default {
			t.Fatalf("default flags: first %v, second %v", d.Default, n.Default)
		}
		if _, err := p.InstallCertificate(e.ctx, issue(t, n.PublicKey, "alice"), winhost.InstallOptions{CardOnly: true}); err != nil {
			t.Fatal(err)
		}
		return e, p, d, n
	}
	t.Run("correct", func(t *testing.T) {
		e, p, d, n := setup(t)
		if err := p.DeleteContainer(e.ctx, d.GUID, winhost.DeleteOptions{MoveDefaultTo: n.GUID}); err != nil {
			t.Fatal(err)
		}
		lcs := e.h.EnumerateLogonCards(e.ctx)
		if len(lcs) != 1 || !lcs[0].Usable || lcs[0].DefaultContainer != n.GUID || len(lcs[0].Certificates) != 1 {
			t.Fatalf("logon enumeration: %+v", lcs)
		}
		if err := e.h.Logon(e.ctx, user, winhost.LogonOptions{SmartCardReader: readerName}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("faulty", func(t *testing.T) {
		e, _, d, _ := setup(t)
		e.card.oob(t, func(c *minidriver.Card) {
			if err := c.DeleteContainer(e.ctx, d.Index, minidriver.DeleteOptions{MoveDefaultTo: -1}, minidriver.BumpCorrect); err != nil {
				t.Fatal(err)
			}
		})
		lcs := e.h.EnumerateLogonCards(e.ctx)
		if len(lcs) != 1 || lcs[0].Usable || !errors.Is(lcs[0].Err, winhost.ErrCardUnusableForSignIn) || !errors.Is(lcs[0].Err, winerr.NTE_BAD_KEYSET) {
			t.Fatalf("logon enumeration: %+v", lcs)
		}
		if err := e.h.Logon(e.ctx, user, winhost.LogonOptions{SmartCardReader: readerName}); !errors.Is(err, winhost.ErrCardUnusableForSignIn) {
			t.Fatalf("smart-card logon: %v", err)
		}
	})
	t.Run("faulty, Windows picks a default", func(t *testing.T) {
		e, _, d, n := setup(t, func(k *winhost.Knobs) { k.NoDefaultContainer = winhost.NoDefaultPickFirst })
		e.card.oob(t, func(c *minidriver.Card) {
			if err := c.DeleteContainer(e.ctx, d.Index, minidriver.DeleteOptions{MoveDefaultTo: -1}, minidriver.BumpCorrect); err != nil {
				t.Fatal(err)
			}
		})
		lcs := e.h.EnumerateLogonCards(e.ctx)
		if len(lcs) != 1 || !lcs[0].Usable || lcs[0].DefaultContainer != n.GUID {
			t.Fatalf("logon enumeration: %+v", lcs)
		}
	})
}

// T12: enrollment aborted after key generation; without rollback every
// attempt leaks a container until CardQueryFreeSpace says none is left:
// NTE_TOKEN_KEYSET_STORAGE_FULL.
func TestT12_AbortedEnrollmentLeaksContainers(t *testing.T) {
	const slots = 2
	variants(t, func(t *testing.T, faulty bool) {
		rollback := !faulty
		e := newEnv(t)
		e.logon()
		if err := e.h.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{MaxContainers: slots}); err != nil {
			t.Fatal(err)
		}
		p := e.proc("certreq.exe", winhost.ProcessOptions{})
		for attempt := range slots + 1 {
			if !rollback && attempt == slots {
				// Full: Base CSP skips the card and asks for another
				// (ledger row H-CSP-FULLCARD); silent, it fails.
				_, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
				if !errors.Is(err, winhost.ErrInsertCardDialog) {
					t.Fatalf("attempt %d on a full card: %v, want the insert-card dialog", attempt+1, err)
				}
				_, err = p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits, Silent: true})
				if !errors.Is(err, winerr.NTE_TOKEN_KEYSET_STORAGE_FULL) {
					t.Fatalf("silent attempt %d on a full card: %v, want NTE_TOKEN_KEYSET_STORAGE_FULL", attempt+1, err)
				}
				return
			}
			c, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Bits: keyBits})
			if err != nil {
				t.Fatalf("attempt %d: %v", attempt+1, err)
			}
			dummy, err := p.CreateRequest(e.ctx, c.GUID, winhost.RequestOptions{Enrollment: winhost.EnrollmentProperty{RequestID: attempt + 1}})
			if err != nil {
				t.Fatal(err)
			}
			// The CA answers 500: abort.
			if rollback {
				if err := p.AbortRequest(e.ctx, dummy); err != nil {
					t.Fatal(err)
				}
				if err := p.AbortRequest(e.ctx, dummy); err != nil { // idempotent
					t.Fatalf("second rollback: %v", err)
				}
			}
		}
		cs, err := p.Containers(e.ctx, readerName)
		if err != nil || len(cs) != 0 {
			t.Fatalf("containers left after rolled-back attempts: %v %v", cs, err)
		}
		if n := e.h.Profile(user).Request().Len(); n != 0 {
			t.Errorf("%d dummies left in REQUEST", n)
		}
	})
}

// T13: a cmapfile record is valid but its key is missing (keymap and
// cmapfile disagree): opening it is NTE_BAD_KEYSET over
// SCARD_E_NO_KEY_CONTAINER. The correct writer never persists that state.
func TestT13_ContainerRecordWithoutKey(t *testing.T) {
	t.Run("correct", func(t *testing.T) {
		e := newEnv(t)
		e.insert(minidriver.Options{})
		p := e.proc("certreq.exe", winhost.ProcessOptions{})
		c := e.generate(p)
		e.card.oobRaw(t, func(mc *minidriver.Card) {
			cmap, _ := mc.Containers(e.ctx)
			km, _ := mc.KeyMap(e.ctx)
			if err := fs.CheckConsistent(cmap, km); err != nil {
				t.Errorf("Base CSP left the card inconsistent: %v", err)
			}
		})
		cert := issue(t, c.PublicKey, "alice")
		k, err := p.AcquireCertificatePrivateKey(e.ctx, withProv(cert, c.GUID), winhost.AcquireFlags{})
		if err != nil {
			t.Fatal(err)
		}
		if err := signAndVerify(t, e.ctx, k, cert); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("faulty", func(t *testing.T) {
		e := newEnv(t)
		// A crash after the cmapfile write, before key generation.
		e.card.oob(t, func(c *minidriver.Card) {
			cmap := fs.ContainerMap{{GUID: guidA, Flags: fs.ContainerValid | fs.ContainerDefault, KeyExchangeKeySizeBits: keyBits}}
			b, _ := cmap.Bytes()
			if err := c.WriteFile(e.ctx, "mscp/cmapfile", b, minidriver.BumpCorrect); err != nil {
				t.Fatal(err)
			}
		})
		e.insert(minidriver.Options{})
		p := e.proc("app.exe", winhost.ProcessOptions{})
		cert := issue(t, softwareKey(t), "alice")
		_, err := p.AcquireCertificatePrivateKey(e.ctx, withProv(cert, guidA), winhost.AcquireFlags{})
		if !errors.Is(err, winerr.NTE_BAD_KEYSET) || !errors.Is(err, winerr.SCARD_E_NO_KEY_CONTAINER) {
			t.Fatalf("acquire: %v, want NTE_BAD_KEYSET / SCARD_E_NO_KEY_CONTAINER", err)
		}
		lcs := e.h.EnumerateLogonCards(e.ctx)
		if len(lcs) != 1 || lcs[0].Usable || !errors.Is(lcs[0].Err, winerr.NTE_BAD_KEYSET) {
			t.Fatalf("logon enumeration: %+v", lcs)
		}
	})
}

// T14: the certificate's public key is not the container's. The correct
// writer refuses; a faulty one writes it, and then CompareKey gives
// NTE_BAD_PUBLIC_KEY and signatures fail verification: NTE_BAD_SIGNATURE.
func TestT14_CertificateKeyMismatch(t *testing.T) {
	e, p := signedInWithCard(t)
	c := e.generate(p)
	wrong := issue(t, softwareKey(t), "alice")
	if _, err := p.InstallCertificate(e.ctx, wrong, winhost.InstallOptions{ContainerGUID: c.GUID}); !errors.Is(err, winerr.NTE_BAD_PUBLIC_KEY) {
		t.Fatalf("correct writer: %v, want NTE_BAD_PUBLIC_KEY", err)
	}
	if _, ok := e.my().FindCert(wrong); ok {
		t.Fatal("refused certificate reached My")
	}
	sc, err := p.InstallCertificate(e.ctx, wrong, winhost.InstallOptions{ContainerGUID: c.GUID, SkipKeyCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{CompareKey: true}); !errors.Is(err, winerr.NTE_BAD_PUBLIC_KEY) {
		t.Fatalf("acquire with CompareKey: %v, want NTE_BAD_PUBLIC_KEY", err)
	}
	k := e.acquire(p, sc)
	if err := signAndVerify(t, e.ctx, k, wrong); !errors.Is(err, winerr.NTE_BAD_SIGNATURE) {
		t.Fatalf("verify: %v, want NTE_BAD_SIGNATURE", err)
	}
}

// T15: a SESSION_ONLY card changed while inserted stays stale for a
// process that cached it (by design) and is fresh after re-insertion.
func TestT15_SessionOnlyStaleWhileInserted(t *testing.T) {
	e := newEnv(t)
	idx, oldCert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	session := minidriver.Options{CacheMode: minidriver.CacheSessionOnly}
	e.insert(session)
	p := e.proc("app.exe", winhost.ProcessOptions{})
	e.cardCerts(p)
	newCert := issue(t, e.card.publicKey(t, idx), "alice reissued")
	e.card.writeCert(t, idx, newCert, minidriver.BumpCorrect) // even a correct bump does not help
	if got := e.cardCerts(p); !sameCert(got[guidA], oldCert) {
		t.Fatal("SESSION_ONLY: the change showed while the card stayed inserted")
	}
	// The cache is per process: one that never read the card sees the change.
	if got := e.cardCerts(e.proc("late.exe", winhost.ProcessOptions{})); !sameCert(got[guidA], newCert) {
		t.Fatal("SESSION_ONLY: a new process was served another process's cache")
	}
	if g := e.h.GlobalCache(); len(g) != 0 {
		t.Errorf("SESSION_ONLY card in the global cache: %v", g)
	}
	e.remove()
	e.insert(session)
	if got := e.cardCerts(p); !sameCert(got[guidA], newCert) {
		t.Fatal("SESSION_ONLY: still stale after re-insertion")
	}
}

// T16: items larger than the per-item cap are not cached; every read of
// them is a card read (SCARD_W_CACHE_ITEM_TOO_BIG internally).
func TestT16_ItemLargerThanCap(t *testing.T) {
	variants(t, func(t *testing.T, tooBig bool) {
		e := newEnv(t, func(k *winhost.Knobs) {
			if tooBig {
				k.CacheMaxBytesPerItem = 300 // a compressed certificate, not an 86-byte cmapfile
			}
		})
		p := e.cachedByApp()
		got := e.statsOfRead(p)
		want := winhost.Stats{Transactions: 1, CacheHits: 2}
		if tooBig {
			want = winhost.Stats{Transactions: 1, CacheHits: 1, CacheMisses: 1, CardReads: 1, CacheTooBig: 1}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("second read (-want +got):\n%s", d)
		}
		cached := false
		for _, it := range e.h.GlobalCache() {
			if strings.HasSuffix(it.Name, "/kxc00") {
				cached = true
			}
		}
		if cached == tooBig {
			t.Errorf("certificate item in G: %v", cached)
		}
	})
}
