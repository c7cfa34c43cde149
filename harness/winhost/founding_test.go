package winhost_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/winerr"
)

// addCardCertToStore is the founding report's tool (security.stackexchange
// 61850): after the user logs on with the card inserted, it reads the
// certificate from the key (CryptGetKeyParam(KP_CERTIFICATE)), makes a
// context from the bytes (CertCreateCertificateContext: no properties),
// calls CryptAcquireCertificatePrivateKey with flags, and on success adds
// the context to My. It returns the Windows code of the acquisition ("ok"
// for success).
func addCardCertToStore(ctx context.Context, h *winhost.Host, guid string, f winhost.AcquireFlags) (string, error) {
	p := h.StartProcess("addCardCertToStore.exe", winhost.ProcessOptions{})
	defer p.Exit()
	der, err := p.ReadKeyCertificate(ctx, guid)
	if err != nil {
		return "", err
	}
	c, err := p.CreateCertificateContext(der)
	if err != nil {
		return "", err
	}
	if _, err := c.AcquirePrivateKey(ctx, f); err != nil {
		for _, code := range []winerr.Code{winerr.CRYPT_E_NO_KEY_PROPERTY, winerr.NTE_BAD_PROV_TYPE} {
			if errors.Is(err, code) {
				return code.Name(), nil
			}
		}
		return "", err
	}
	if _, err := c.AddToStore(winhost.StoreMy, winhost.AddReplaceInheritProperties, true); err != nil {
		return "", err
	}
	return "ok", nil
}

// The founding flow's outcome depends on whether certificate propagation
// ran before the tool (ledger rows H-ACQ-HEAL, H-PROP-DELAY,
// H-PROP-PROVIDER): the context from bytes has no CERT_KEY_PROV_INFO and
// healing copies it from the propagated copy in My. Too early: 0x8009200B,
// the report's intermittent error. After propagation: under the old rule
// (Base CSP for RSA) the flags-0 acquisition works; under today's rule
// (the KSP) a CryptoAPI-only acquisition fails with NTE_BAD_PROV_TYPE, and
// ALLOW_NCRYPT works. A sweep over host seeds shows both outcomes.
func TestFoundingFlowDependsOnPropagationTiming(t *testing.T) {
	const seeds = 60
	const toolAfter = 3 * time.Second // the user starts the tool right after logon
	card := newCard(t, [16]byte{0x61})
	card.enroll(t, guidA, "alice", minidriver.BumpCorrect)
	for _, tt := range []struct {
		profile string
		flags   winhost.AcquireFlags
		late    string // outcome when propagation ran first
	}{
		{"windows-10-legacy", winhost.AcquireFlags{}, "ok"},
		{"windows-11-2025", winhost.AcquireFlags{}, "NTE_BAD_PROV_TYPE"},
		{"windows-11-2025", winhost.AcquireFlags{AllowNCrypt: true}, "ok"},
	} {
		t.Run(fmt.Sprintf("%s flags %v", tt.profile, tt.flags), func(t *testing.T) {
			split := map[string]int{}
			for seed := uint64(1); seed <= seeds; seed++ {
				k, err := winhost.ProfileKnobs(tt.profile)
				if err != nil {
					t.Fatal(err)
				}
				h := winhost.New(winhost.Config{Knobs: &k, Seed: seed, UserPIN: testPIN})
				ctx := t.Context()
				if err := h.InsertCard(ctx, readerName, winhost.FromReader(card.reader), minidriver.Options{}); err != nil {
					t.Fatal(err)
				}
				if err := h.Logon(ctx, user, winhost.LogonOptions{}); err != nil {
					t.Fatal(err)
				}
				h.Clock().Advance(toolAfter)
				propagated := h.PendingPropagations() == 0
				got, err := addCardCertToStore(ctx, h, guidA, tt.flags)
				if err != nil {
					t.Fatal(err)
				}
				split[got]++
				want := "CRYPT_E_NO_KEY_PROPERTY"
				if propagated {
					want = tt.late
				}
				if got != want {
					t.Errorf("seed %d: %s, want %s (propagated before the tool: %v)", seed, got, want, propagated)
				}
			}
			t.Logf("%d seeds: %v", seeds, split)
			if split["CRYPT_E_NO_KEY_PROPERTY"] == 0 || split[tt.late] == 0 {
				t.Errorf("the sweep shows only one outcome: %v", split)
			}
		})
	}
}
