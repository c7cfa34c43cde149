package winhost_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// acquireWant is what the CryptAcquireCertificatePrivateKey documentation
// says one call gives, written from the documentation's rules (ledger rows
// H-ACQ-API, H-ACQ-HEAL, H-ACQ-CACHE) rather than from the model's code:
//
//   - "If none of these flags is present, this function will only attempt
//     to obtain the key by using CryptoAPI"; ALLOW: CryptoAPI then CNG;
//     PREFER: CNG then CryptoAPI; ONLY: CNG only.
//   - NO_HEALING: no attempt to re-create CERT_KEY_PROV_INFO; without it,
//     the attempt is made (copied from My under the default HealSource).
//   - A KSP CERT_KEY_PROV_INFO has dwProvType 0, which CryptoAPI refuses
//     with NTE_BAD_PROV_TYPE; CNG opens a Base CSP property's container
//     unless the CNGOpensCSPProvInfo knob is off (NTE_BAD_PROVIDER).
//   - pfCallerFreeProvOrNCryptKey is FALSE with CACHE_FLAG, or
//     USE_PROV_INFO when the property's dwFlags has
//     CERT_SET_KEY_CONTEXT_PROP_ID; pdwKeySpec is CERT_NCRYPT_KEY_SPEC for
//     a CNG key.
func acquireWant(f winhost.AcquireFlags, own, myCopy *winhost.KeyProvInfo, heal, cngOpensCSP bool) (api winhost.API, code winerr.Code, callerFree bool) {
	pi := own
	if pi == nil && heal && !f.NoHealing {
		pi = myCopy
	}
	if pi == nil {
		return 0, winerr.CRYPT_E_NO_KEY_PROPERTY, false
	}
	var order []winhost.API
	switch {
	case f.OnlyNCrypt:
		order = []winhost.API{winhost.CNG}
	case f.PreferNCrypt:
		order = []winhost.API{winhost.CNG, winhost.CAPI}
	case f.AllowNCrypt:
		order = []winhost.API{winhost.CAPI, winhost.CNG}
	default:
		order = []winhost.API{winhost.CAPI}
	}
	for _, a := range order {
		switch {
		case a == winhost.CAPI && pi.Provider == winhost.ProviderKSP:
			code = winerr.NTE_BAD_PROV_TYPE
		case a == winhost.CNG && pi.Provider == winhost.ProviderCAPI && !cngOpensCSP:
			code = winerr.NTE_BAD_PROVIDER
		default:
			return a, 0, !(f.Cache || (f.UseProvInfo && pi.SetKeyContext))
		}
	}
	return 0, code, false
}

// Every combination of the eight modelled flags, against a certificate
// context whose CERT_KEY_PROV_INFO names Base CSP, the KSP (with and
// without CERT_SET_KEY_CONTEXT_PROP_ID), or is missing with My holding a
// copy with Base CSP, the KSP or no property; healing on and off; CNG
// opening Base CSP properties or not.
func TestAcquireEveryFlagCombination(t *testing.T) {
	csp := &winhost.KeyProvInfo{Provider: winhost.ProviderCAPI, Container: guidA, KeySpec: fs.AT_KEYEXCHANGE}
	ksp := &winhost.KeyProvInfo{Provider: winhost.ProviderKSP, Container: guidA, KeySpec: fs.AT_KEYEXCHANGE}
	kspCtx := &winhost.KeyProvInfo{Provider: winhost.ProviderKSP, Container: guidA, KeySpec: fs.AT_KEYEXCHANGE, SetKeyContext: true}
	states := []struct {
		name        string
		own, myCopy *winhost.KeyProvInfo
	}{
		{"own CSP", csp, nil},
		{"own KSP", ksp, nil},
		{"own KSP+SET_KEY_CONTEXT", kspCtx, nil},
		{"none, My has CSP", nil, csp},
		{"none, My has KSP", nil, ksp},
		{"none, My has none", nil, nil},
	}
	for _, heal := range []bool{true, false} {
		for _, cngOpensCSP := range []bool{true, false} {
			t.Run(fmt.Sprintf("heal=%v cngOpensCSP=%v", heal, cngOpensCSP), func(t *testing.T) {
				e := newEnv(t, func(k *winhost.Knobs) { k.HealMissingProvInfo = heal; k.CNGOpensCSPProvInfo = cngOpensCSP })
				_, cert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
				e.insert(minidriver.Options{})
				e.logon()
				p := e.proc("tool.exe", winhost.ProcessOptions{})
				seen := map[winerr.Code]int{}
				for _, st := range states {
					e.my().Delete(winhost.Thumbprint(cert))
					if st.own == nil {
						e.my().Add(winhost.StoreCert{Cert: cert, ProvInfo: st.myCopy}, winhost.AddReplaceExisting)
					}
					for v := uint32(0); v < 256; v++ {
						f := flagsFromIndex(v)
						c, err := p.CreateCertificateContext(cert.Raw)
						if err != nil {
							t.Fatal(err)
						}
						if st.own != nil {
							c.SetProvInfo(st.own, false)
						}
						wantAPI, wantCode, wantFree := acquireWant(f, st.own, st.myCopy, heal, cngOpensCSP)
						k, err := c.AcquirePrivateKey(e.ctx, f)
						seen[wantCode]++
						if wantCode != 0 {
							if !errors.Is(err, wantCode) {
								t.Errorf("%s, flags %v: got %v, want %v", st.name, f, err, wantCode)
							}
							continue
						}
						if err != nil {
							t.Errorf("%s, flags %v: %v, want a %v key", st.name, f, err, wantAPI)
							continue
						}
						wantSpec := uint32(fs.AT_KEYEXCHANGE)
						if wantAPI == winhost.CNG {
							wantSpec = winhost.CertNCryptKeySpec
						}
						if k.API() != wantAPI || k.CallerFree() != wantFree || k.ResultKeySpec() != wantSpec || k.ContainerGUID() != guidA {
							t.Errorf("%s, flags %v: %v callerFree=%v keyspec=%#x %q, want %v callerFree=%v keyspec=%#x",
								st.name, f, k.API(), k.CallerFree(), k.ResultKeySpec(), k.ContainerGUID(), wantAPI, wantFree, wantSpec)
						}
					}
				}
				// The table is not vacuous: each outcome occurs.
				for _, c := range []winerr.Code{0, winerr.CRYPT_E_NO_KEY_PROPERTY, winerr.NTE_BAD_PROV_TYPE} {
					if seen[c] == 0 {
						t.Errorf("no combination gave %v", c)
					}
				}
				if !cngOpensCSP && seen[winerr.NTE_BAD_PROVIDER] == 0 {
					t.Error("no combination gave NTE_BAD_PROVIDER")
				}
			})
		}
	}
}

func flagsFromIndex(v uint32) winhost.AcquireFlags {
	return winhost.AcquireFlags{Cache: v&1 != 0, UseProvInfo: v&2 != 0, CompareKey: v&4 != 0, NoHealing: v&8 != 0,
		Silent: v&16 != 0, AllowNCrypt: v&32 != 0, PreferNCrypt: v&64 != 0, OnlyNCrypt: v&128 != 0}
}

// CRYPT_ACQUIRE_CACHE_FLAG returns the handle cached on the context, with
// no card access and no key comparison ("If a cached handle is returned,
// no comparison is made").
func TestAcquireCacheFlag(t *testing.T) {
	e := newEnv(t)
	_, cert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{})
	p := e.proc("tool.exe", winhost.ProcessOptions{})
	c, err := p.CreateCertificateContext(cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	c.SetProvInfo(&winhost.KeyProvInfo{Provider: winhost.ProviderKSP, Container: guidA, KeySpec: fs.AT_KEYEXCHANGE}, false)
	k1, err := c.AcquirePrivateKey(e.ctx, winhost.AcquireFlags{Cache: true, OnlyNCrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	before := p.Stats().Transactions
	k2, err := c.AcquirePrivateKey(e.ctx, winhost.AcquireFlags{Cache: true, OnlyNCrypt: true, CompareKey: true})
	if err != nil || k2 != k1 || p.Stats().Transactions != before {
		t.Fatalf("second cached acquire: %v, same handle %v, %d transactions", err, k2 == k1, p.Stats().Transactions-before)
	}
	// Without the flag a new handle, through the card.
	k3, err := c.AcquirePrivateKey(e.ctx, winhost.AcquireFlags{OnlyNCrypt: true})
	if err != nil || k3 == k1 || !k3.CallerFree() || p.Stats().Transactions == before {
		t.Fatalf("uncached acquire: %v, new handle %v", err, k3 != k1)
	}
}

// Properties per context and process: CERT_SET_PROPERTY_INHIBIT_PERSIST_FLAG
// keeps a property in one context of one process; without it the store
// has it; a context made from bytes has none; adding to a store carries
// the properties or not.
func TestCertificateContexts(t *testing.T) {
	e := newEnv(t)
	_, cert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{})
	e.logon()
	p1 := e.proc("one.exe", winhost.ProcessOptions{})
	p2 := e.proc("two.exe", winhost.ProcessOptions{})
	pi := &winhost.KeyProvInfo{Provider: winhost.ProviderKSP, Container: guidA, KeySpec: fs.AT_KEYEXCHANGE}

	fromBytes, err := p1.CreateCertificateContext(cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if fromBytes.ProvInfo() != nil {
		t.Fatal("a context made from bytes has a property")
	}
	if _, err := p1.CreateCertificateContext([]byte{0x30, 0x01}); !errors.Is(err, winerr.ERROR_INVALID_DATA) {
		t.Fatalf("garbage: %v", err)
	}
	// Added without properties (the propagated copy gone first), then
	// found in My by both processes.
	e.my().Delete(winhost.Thumbprint(cert))
	if ok, err := fromBytes.AddToStore(winhost.StoreMy, winhost.AddNew, false); !ok || err != nil {
		t.Fatal(ok, err)
	}
	c1, err := p1.FindCertificateInStore(winhost.StoreMy, winhost.Thumbprint(cert))
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := p2.FindCertificateInStore(winhost.StoreMy, winhost.Thumbprint(cert))
	c1.SetProvInfo(pi, true) // in memory only
	if c1.ProvInfo() == nil || c2.ProvInfo() != nil {
		t.Fatalf("inhibit-persist: own %v, other process %v", c1.ProvInfo(), c2.ProvInfo())
	}
	if sc, _ := e.my().FindCert(cert); sc.ProvInfo != nil {
		t.Fatal("an inhibit-persist property reached the store")
	}
	if _, err := c2.AcquirePrivateKey(e.ctx, winhost.AcquireFlags{AllowNCrypt: true, NoHealing: true}); !errors.Is(err, winerr.CRYPT_E_NO_KEY_PROPERTY) {
		t.Fatalf("other process: %v", err)
	}
	if _, err := c1.AcquirePrivateKey(e.ctx, winhost.AcquireFlags{AllowNCrypt: true}); err != nil {
		t.Fatalf("own in-memory property: %v", err)
	}
	c1.SetProvInfo(pi, false) // persisted
	if c2.ProvInfo() == nil {
		t.Fatal("a persisted property is not seen through another process's context")
	}
	// The context made from bytes still has nothing; with properties it
	// carries what it holds.
	fromBytes.SetProvInfo(nil, false)
	if ok, _ := fromBytes.AddToStore(winhost.StoreMy, winhost.AddReplaceExisting, true); !ok {
		t.Fatal("replace refused")
	}
	if sc, _ := e.my().FindCert(cert); sc.ProvInfo != nil {
		t.Fatal("replace-existing kept the old property")
	}
	fromBytes.SetProvInfo(pi, false)
	fromBytes.AddToStore(winhost.StoreMy, winhost.AddReplaceExisting, true)
	if sc, _ := e.my().FindCert(cert); sc.ProvInfo == nil || sc.ProvInfo.Provider != winhost.ProviderKSP {
		t.Fatalf("add with properties: %+v", sc.ProvInfo)
	}
}

func TestParseAcquireFlags(t *testing.T) {
	for in, want := range map[string]uint32{
		"0": 0, "SILENT": winhost.CRYPT_ACQUIRE_SILENT_FLAG,
		"CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG|COMPARE_KEY": winhost.CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG | winhost.CRYPT_ACQUIRE_COMPARE_KEY_FLAG,
		"no_healing | 0x40000":                            winhost.CRYPT_ACQUIRE_NO_HEALING | winhost.CRYPT_ACQUIRE_ONLY_NCRYPT_KEY_FLAG,
	} {
		f, err := winhost.ParseAcquireFlags(in)
		if err != nil || f.Value() != want {
			t.Errorf("%q: %#x %v, want %#x", in, f.Value(), err, want)
		}
	}
	for _, bad := range []string{"", "SHINY", "0x80", "SILENT|"} {
		if _, err := winhost.ParseAcquireFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
