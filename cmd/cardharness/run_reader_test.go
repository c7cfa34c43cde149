package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRunReaderFlags: what `run --reader` does with flags that cannot
// apply to one real card, and with a reader pcscd does not know. The
// reader-name cases run under `cardharness exec`, so a private pcscd with
// one initialised card is what the runner sees.
func TestRunReaderFlags(t *testing.T) {
	key := strings.Repeat("00", 24)
	for _, tc := range []struct {
		name     string
		args     []string
		underPCS bool // under exec, with a private pcscd
		code     int
		want     []string
	}{
		{"parallel above 1", []string{"--reader", firstVPCD, "--admin-key", key, "--parallel", "4"}, false, 2,
			[]string{"--parallel 4 cannot apply with --reader", "one card runs one scenario at a time"}},
		{"fault", []string{"--reader", firstVPCD, "--admin-key", key, "--fault", "drop-cardcf-writes"}, false, 2,
			[]string{"--fault drop-cardcf-writes cannot apply with --reader"}},
		{"stack direct", []string{"--reader", firstVPCD, "--admin-key", key, "--stack", "direct"}, false, 2,
			[]string{"--stack direct cannot apply with --reader"}},
		{"no way to clean the card", []string{"--reader", firstVPCD}, false, 2,
			[]string{"--admin-key", "--reset-cmd"}},
		{"wrong reader name", []string{"--reader", "No Such Reader 00 00", "--admin-key", key}, true, 2,
			[]string{`reader "No Such Reader 00 00"`, "it sees:", firstVPCD}},
		{"list applicability", []string{"--reader", firstVPCD, "--admin-key", key, "--list"}, true, 0,
			[]string{"applies", "not applicable: declares 3 cards; a reader holds one", "not applicable: step"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run"}, tc.args...)
			if tc.underPCS {
				if testing.Short() {
					t.Skip("-short: needs a pcscd stack")
				}
				args = append([]string{"exec", "--cards", "1", "--profile", "initialized", "--", os.Args[0]}, args...)
			}
			out, err := cardharness(args...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestRunReaderCommandEndToEnd: `cardharness run --reader` from the command
// line, against a card `cardharness exec` serves into a private pcscd,
// with a PIN and an admin key of its own: the applicable scenario passes,
// the two-card one is skipped with its reason, exit 0.
func TestRunReaderCommandEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs a pcscd stack")
	}
	out, err := cardharness("exec", "--cards", "1", "--profile", "initialized", "--pin", conformPIN, "--admin-key", conformKey, "--",
		os.Args[0], "run", "--reader", firstVPCD, "--pin", conformPIN, "--admin-key", conformKey, "--out", t.TempDir(),
		"builtin:seed-flow-correct-writer", "builtin:s4-two-cards-share-a-cardid").CombinedOutput()
	if err != nil {
		t.Fatalf("run --reader: %v\n%s", err, out)
	}
	for _, want := range []string{"(reader " + firstVPCD + ", parallel 1)", "PASS", "APDUs", "SKIP", "not applicable: declares 3 cards",
		"1 passed, 0 failed, 1 not applicable", "not checked"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
