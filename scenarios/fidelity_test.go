package scenarios

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cardharness/cardharness/harness/winhost"
)

// TestAddCardCertToStoreSeedSweep runs the founding report's flow at a
// realistic 3 s over many seeds (docs/windows-fidelity.md H-PROP-DELAY):
// it passes (0x8009200B: the tool beat propagation) for some seeds and
// fails with a readable diff (the acquisition succeeded: propagation ran
// first) for others. The split is logged.
func TestAddCardCertToStoreSeedSweep(t *testing.T) {
	refs := []Ref{{Path: "builtin/fidelity/addcardcerttostore-race.yaml", Builtin: true}}
	pass, fail := 0, 0
	for seed := int64(1); seed <= 24; seed++ {
		res, err := RunAll(context.Background(), refs, Options{Stack: "direct", Seed: seed, SeedSet: true})
		if err != nil {
			t.Fatal(err)
		}
		switch r := res[0]; r.Status {
		case Pass:
			pass++
		case Fail:
			fail++
			if r.Diff == "" || !strings.Contains(r.Failure, "CRYPT_E_NO_KEY_PROPERTY") {
				t.Errorf("seed %d failed without the expected diff: %s\n%s", seed, r.Failure, r.Diff)
			}
		default:
			t.Fatalf("seed %d: %s %s", seed, r.Status, r.Failure)
		}
	}
	t.Logf("24 seeds: %d x 0x8009200B (tool before propagation), %d x success (propagation first)", pass, fail)
	if pass == 0 || fail == 0 {
		t.Errorf("the sweep shows one outcome only: %d pass, %d fail", pass, fail)
	}
}

// A host's profile: an unknown name is a file:line error naming the
// profiles; a known one sets the knobs the scenario's own knobs then
// override one by one.
func TestHostProfileDeclaration(t *testing.T) {
	bad := "name: x\nhosts:\n  h: {profile: windows-95}\nsteps:\n  - {do: advance, by: 1s}\n"
	_, err := Load(fstest.MapFS{"p.yaml": {Data: []byte(bad)}}, "p.yaml")
	if err == nil || !strings.Contains(err.Error(), "p.yaml:3:") || !strings.Contains(err.Error(), "windows-10-legacy") {
		t.Errorf("unknown profile: %v", err)
	}
	good := "name: x\nhosts:\n  h:\n    profile: windows-7\n    knobs: {propagation_provider_rule: ksp-for-all}\n  d: {}\nsteps:\n  - {do: advance, by: 1s}\n"
	sc, err := Load(fstest.MapFS{"p.yaml": {Data: []byte(good)}}, "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	k, err := knobs(sc.Hosts["h"])
	if err != nil || k.PropagationProviderRule != winhost.ProviderKSPForAll || !k.SessionPINs {
		t.Errorf("windows-7 with the KSP rule: %+v %v", k, err)
	}
	if k, err := knobs(sc.Hosts["d"], "windows-10-legacy"); err != nil || k.PropagationProviderRule != winhost.ProviderCSPForRSA {
		t.Errorf("run default windows-10-legacy: %+v %v", k, err)
	}
	if k, err := knobs(sc.Hosts["d"]); err != nil || k.PropagationProviderRule != winhost.ProviderKSPForAll {
		t.Errorf("default profile: %+v %v", k, err)
	}
}
