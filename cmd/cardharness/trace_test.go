package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/internal/testutil"
)

// pinHex is the user PIN 123456 as it appears in a VERIFY's data.
const pinHex = "313233343536"

func checkTraceFile(t *testing.T, p string, secrets bool) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", p, st.Mode().Perm())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Contains(string(b), pinHex); got != secrets {
		t.Errorf("--trace-secrets %v, but PIN in %s = %v", secrets, p, got)
	}
	if !secrets && !strings.Contains(string(b), `"secret":"PIN"`) {
		t.Errorf("%s: no masked PIN record", p)
	}
}

// TestExecTraceIsPrivateAndMasked: cardharness exec --trace writes a 0600
// file (also over an existing 0644 one) with the PIN masked unless
// --trace-secrets; cardharness trace decodes it.
func TestExecTraceIsPrivateAndMasked(t *testing.T) {
	testutil.NeedTool(t, "opensc-tool", "opensc")
	for _, secrets := range []bool{false, true} {
		p := filepath.Join(t.TempDir(), "card.jsonl")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"exec", "--profile", "initialized", "--pin", "123456", "--trace", p}
		if secrets {
			args = append(args, "--trace-secrets")
		}
		args = append(args, "--", "opensc-tool", "-s", "00:A4:04:00:09:A0:00:00:03:97:42:54:46:59:00", "-s", "00:20:00:80:06:31:32:33:34:35:36")
		if out, err := cardharness(args...).CombinedOutput(); err != nil {
			t.Fatalf("exec: %v\n%s", err, out)
		}
		checkTraceFile(t, p, secrets)
		out, err := cardharness("trace", p).CombinedOutput()
		if err != nil {
			t.Fatalf("trace: %v\n%s", err, out)
		}
		for _, want := range []string{"VERIFY PIN 80", "PIN verified", "SELECT the GIDS application by AID"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("decoded trace lacks %q:\n%s", want, out)
			}
		}
		if !secrets && !strings.Contains(string(out), "<6 bytes of PIN masked>") {
			t.Errorf("decoded trace does not say the PIN was masked:\n%s", out)
		}
	}
}

// TestRunTracesArePrivateAndMasked: the traces `run` saves for failed
// scenarios follow the same rules, with step markers.
func TestRunTracesArePrivateAndMasked(t *testing.T) {
	for _, secrets := range []bool{false, true} {
		dir := t.TempDir()
		args := []string{"run", "--stack", "direct", "--trace-dir", dir, "--out", t.TempDir()}
		if secrets {
			args = append(args, "--trace-secrets")
		}
		args = append(args, "../../scenarios/testdata/timeline.yaml")
		out, err := cardharness(args...).CombinedOutput()
		if err == nil {
			t.Fatalf("the scenario is meant to fail:\n%s", out)
		}
		p := filepath.Join(dir, "timeline_of_a_writer_that_does_not_bump_the_counters.card.jsonl")
		checkTraceFile(t, p, secrets)
		dec, err := cardharness("trace", p).CombinedOutput()
		if err != nil {
			t.Fatalf("trace: %v\n%s", err, dec)
		}
		if !strings.Contains(string(dec), "== step 8: ../../scenarios/testdata/timeline.yaml:19 read-containers") {
			t.Errorf("no step marker in the decoded trace:\n%s", dec)
		}
	}
}

// TestRunNamesTheFaultOnTheTerminal: the header and the summary of the
// text report say which fault was injected.
func TestRunNamesTheFaultOnTheTerminal(t *testing.T) {
	out, _ := cardharness("run", "--stack", "direct", "--trace-dir", t.TempDir(), "--out", t.TempDir(), "--fault", "drop-cardcf-writes", "../../scenarios/testdata/timeline.yaml").CombinedOutput()
	for _, want := range []string{"(stack direct, injected faults: drop-cardcf-writes, parallel 2)",
		"injected faults: drop-cardcf-writes (--fault, every card)", "0 passed, 1 failed with injected faults: drop-cardcf-writes"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
