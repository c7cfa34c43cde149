package winhost_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/winerr"
)

// pinEnv is a card that declares session PINs with one enrolled container,
// inserted, and its certificate with CAPI provinfo.
func pinEnv(t *testing.T, mods ...func(*winhost.Knobs)) (*env, winhost.StoreCert) {
	t.Helper()
	e := newEnv(t, mods...)
	_, cert := e.card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	e.insert(minidriver.Options{SessionPINs: true})
	return e, withProv(cert, guidA)
}

// CAPI, then CNG, then CAPI again, on one card in one process (§1.6, §2.1:
// Base CSP and the KSP keep separate PIN caches). With cached real PINs
// (the default) each API prompts once and the second CAPI use is served
// from CAPI's cache: 2 prompts. With session PINs the card honours only
// the latest one, so CNG's prompt invalidates CAPI's cache: 3 prompts.
func TestPINPromptsCAPIThenCNGThenCAPI(t *testing.T) {
	tests := []struct {
		name       string
		session    bool
		undeclared bool  // the card does not declare session PINs
		wantAfter  []int // host-wide prompts after each signature
		wantPerAPI map[winhost.API]int
	}{
		{"real PINs cached (default)", false, false, []int{1, 2, 2}, map[winhost.API]int{winhost.CAPI: 1, winhost.CNG: 1}},
		{"session PINs", true, false, []int{1, 2, 3}, map[winhost.API]int{winhost.CAPI: 2, winhost.CNG: 1}},
		// Ledger row H-PIN-SESSION: the host uses session PINs only for a
		// card that declares them.
		{"host would, card does not declare", true, true, []int{1, 2, 2}, map[winhost.API]int{winhost.CAPI: 1, winhost.CNG: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, sc := pinEnv(t, func(k *winhost.Knobs) { k.SessionPINs = tt.session })
			if tt.undeclared {
				e.remove()
				e.insert(minidriver.Options{})
			}
			p := e.proc("app.exe", winhost.ProcessOptions{})
			capi := e.acquire(p, sc)
			cng, err := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{AllowNCrypt: true, PreferNCrypt: true})
			if err != nil {
				t.Fatal(err)
			}
			if capi.API() != winhost.CAPI || cng.API() != winhost.CNG {
				t.Fatalf("APIs %v %v", capi.API(), cng.API())
			}
			var got []int
			for _, k := range []*winhost.KeyHandle{capi, cng, capi} {
				if err := signAndVerify(t, e.ctx, k, sc.Cert); err != nil {
					t.Fatal(err)
				}
				got = append(got, e.h.Stats().PINPrompts)
			}
			if d := cmp.Diff(tt.wantAfter, got); d != "" {
				t.Errorf("prompts after each use (-want +got):\n%s", d)
			}
			gotAPI := map[winhost.API]int{winhost.CAPI: p.PINPrompts(winhost.CAPI), winhost.CNG: p.PINPrompts(winhost.CNG)}
			if d := cmp.Diff(tt.wantPerAPI, gotAPI); d != "" {
				t.Errorf("prompts per API (-want +got):\n%s", d)
			}
			if n := p.Stats().PINPrompts; n != tt.wantAfter[2] {
				t.Errorf("process counter %d", n)
			}
		})
	}
}

// Session PINs invalidate each other across processes too: two CNG
// processes alternating prompt every time ("PIN battle").
func TestPINBattleBetweenProcesses(t *testing.T) {
	for _, session := range []bool{false, true} {
		e, sc := pinEnv(t, func(k *winhost.Knobs) { k.SessionPINs = session })
		var keys []*winhost.KeyHandle
		for _, name := range []string{"a.exe", "b.exe"} {
			k, err := e.proc(name, winhost.ProcessOptions{}).AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{PreferNCrypt: true})
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		for _, k := range []*winhost.KeyHandle{keys[0], keys[1], keys[0], keys[1]} {
			if err := signAndVerify(t, e.ctx, k, sc.Cert); err != nil {
				t.Fatal(err)
			}
		}
		want := 2
		if session {
			want = 4
		}
		if n := e.h.Stats().PINPrompts; n != want {
			t.Errorf("session PINs %v: %d prompts, want %d", session, n, want)
		}
	}
}

func TestSilentContextAndCancel(t *testing.T) {
	e, sc := pinEnv(t)
	silent := e.proc("service.exe", winhost.ProcessOptions{Silent: true})
	k := e.acquire(silent, sc)
	if err := signAndVerify(t, e.ctx, k, sc.Cert); !errors.Is(err, winerr.NTE_SILENT_CONTEXT) {
		t.Fatalf("silent process: %v, want NTE_SILENT_CONTEXT", err)
	}
	if n := e.h.Stats().PINPrompts; n != 0 {
		t.Errorf("%d prompts in a silent context", n)
	}
	// A silent handle works once the process's cache holds the PIN.
	p := e.proc("app.exe", winhost.ProcessOptions{})
	loud, _ := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{})
	quiet, _ := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{Silent: true})
	if err := signAndVerify(t, e.ctx, loud, sc.Cert); err != nil {
		t.Fatal(err)
	}
	if err := signAndVerify(t, e.ctx, quiet, sc.Cert); err != nil {
		t.Fatalf("silent use of a cached PIN: %v", err)
	}
	if !p.HasCachedPIN(readerName, winhost.CAPI) || p.HasCachedPIN(readerName, winhost.CNG) {
		t.Error("cache state")
	}

	cancel := winhost.New(winhost.Config{Prompter: func(winhost.PromptInfo) (string, bool) { return "", false }})
	if err := cancel.InsertCard(e.ctx, readerName, winhost.FromReader(e.card.reader), minidriver.Options{}); err != nil {
		t.Fatal(err)
	}
	k, _ = cancel.StartProcess("x", winhost.ProcessOptions{}).AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{})
	if err := signAndVerify(t, e.ctx, k, sc.Cert); !errors.Is(err, winerr.SCARD_E_CANCELLED) {
		t.Fatalf("cancelled prompt: %v", err)
	}
	wrong := winhost.New(winhost.Config{UserPIN: "000000"})
	if err := wrong.InsertCard(e.ctx, readerName+" 2", winhost.FromReader(e.card.reader), minidriver.Options{}); err != nil {
		t.Fatal(err)
	}
	k, _ = wrong.StartProcess("x", winhost.ProcessOptions{}).AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{})
	if err := signAndVerify(t, e.ctx, k, sc.Cert); !errors.Is(err, winerr.SCARD_W_WRONG_CHV) {
		t.Fatalf("wrong PIN typed: %v", err)
	}
}

func TestPINCacheAndRemoval(t *testing.T) {
	for _, survives := range []bool{false, true} {
		e, sc := pinEnv(t, func(k *winhost.Knobs) { k.PINCacheSurvivesRemoval = survives })
		p := e.proc("app.exe", winhost.ProcessOptions{})
		k, _ := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{})
		if err := signAndVerify(t, e.ctx, k, sc.Cert); err != nil {
			t.Fatal(err)
		}
		e.reinsert()
		if err := signAndVerify(t, e.ctx, k, sc.Cert); err != nil {
			t.Fatalf("after re-insertion: %v", err)
		}
		want := 2
		if survives {
			want = 1
		}
		if n := p.Stats().PINPrompts; n != want {
			t.Errorf("PINCacheSurvivesRemoval=%v: %d prompts, want %d", survives, n, want)
		}
	}
}

// Base CSP's change-PIN bumps bPinsFreshness (§1.2; knob for §7 q2): the
// changing process keeps working without a prompt, the others re-prompt.
func TestChangePINThroughBaseCSP(t *testing.T) {
	const newPIN = "11112222"
	for _, bumps := range []bool{true, false} {
		e, sc := pinEnv(t, func(k *winhost.Knobs) { k.ChangePINBumpsPins = bumps })
		p := e.proc("changer.exe", winhost.ProcessOptions{})
		q := e.proc("other.exe", winhost.ProcessOptions{})
		kp, _ := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{})
		kq, _ := q.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{})
		for _, k := range []*winhost.KeyHandle{kp, kq} {
			if err := signAndVerify(t, e.ctx, k, sc.Cert); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.ChangePIN(e.ctx, readerName, testPIN, newPIN); err != nil {
			t.Fatal(err)
		}
		e.h.SetUserPIN(newPIN)
		if err := signAndVerify(t, e.ctx, kp, sc.Cert); err != nil || p.Stats().PINPrompts != 1 {
			t.Fatalf("changing process: %v, %d prompts", err, p.Stats().PINPrompts)
		}
		err := signAndVerify(t, e.ctx, kq, sc.Cert)
		if bumps && (err != nil || q.Stats().PINPrompts != 2) {
			t.Fatalf("other process after a bumped change: %v, %d prompts", err, q.Stats().PINPrompts)
		}
		if !bumps && !errors.Is(err, winerr.SCARD_W_WRONG_CHV) {
			t.Fatalf("other process after an unbumped change: %v", err)
		}
	}
}
