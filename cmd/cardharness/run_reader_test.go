package main

import (
	"os"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/internal/testutil"
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
			code := exitCode(t, err)
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

// TestRunReaderCommandEndToEnd: the whole built-in suite from the command
// line with `cardharness run --reader`, against ONE card that another
// cardharness process (`exec`, the same card server as `cardharness card`)
// serves into a vpcd slot of a private pcscd, with a PIN and an admin key
// of its own. The runner sees only the reader: every applicable scenario
// passes, the multi-card and internals-only ones are skipped with their
// reasons, exit 0. Afterwards OpenSC, reading the same card, finds no key
// and no certificate: the runner cleaned up after every scenario.
func TestRunReaderCommandEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs a pcscd stack")
	}
	testutil.NeedTool(t, "pkcs15-tool", "opensc")
	script := `"$0" run --reader "$1" --pin "$2" --admin-key "$3" --out "$4" builtin; rc=$?
echo "== OpenSC after the run"
pkcs15-tool --list-keys --list-certificates 2>&1
exit $rc`
	out, err := cardharness("exec", "--cards", "1", "--profile", "initialized", "--pin", conformPIN, "--admin-key", conformKey, "--",
		"sh", "-c", script, os.Args[0], firstVPCD, conformPIN, conformKey, t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("run --reader: %v\n%s", err, out)
	}
	text := string(out)
	run, after, ok := strings.Cut(text, "== OpenSC after the run")
	if !ok {
		t.Fatalf("the script did not get past the run:\n%s", text)
	}
	for _, want := range []string{"(reader " + firstVPCD + ", parallel 1)", "PASS", "APDUs", "SKIP",
		"not applicable: declares 3 cards", "needs card internals", " 0 failed", "not checked"} {
		if !strings.Contains(run, want) {
			t.Errorf("run output lacks %q:\n%s", want, run)
		}
	}
	if strings.Count(run, "PASS") < 10 {
		t.Errorf("fewer than 10 scenarios passed on the card:\n%s", run)
	}
	for _, unwanted := range []string{"Private RSA Key", "X.509 Certificate", "FAIL", "ERROR"} {
		if strings.Contains(after, unwanted) || (unwanted != "Private RSA Key" && unwanted != "X.509 Certificate" && strings.Contains(run, unwanted+" ")) {
			t.Errorf("found %q (the card was not left clean, or a scenario failed):\n%s", unwanted, text)
		}
	}
}
