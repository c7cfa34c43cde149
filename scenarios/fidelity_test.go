package scenarios

import (
	"context"
	"strings"
	"testing"
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
		res, err := Run(context.Background(), refs, Options{Stack: "direct", Seed: seed, SeedSet: true})
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
