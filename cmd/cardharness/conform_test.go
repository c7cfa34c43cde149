package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	conformPIN = "24681357"
	conformKey = "00112233445566778899AABBCCDDEEFF0011223344556677"
	firstVPCD  = "Cardharness VPCD 0 00 00"
)

// conformUnderExec runs `cardharness conform ARGS` against an initialised
// card that `cardharness exec` serves into a private pcscd.
func conformUnderExec(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs a pcscd stack")
	}
	full := append([]string{"exec", "--cards", "1", "--profile", "initialized", "--pin", conformPIN, "--admin-key", conformKey,
		"--", os.Args[0], "conform"}, args...)
	out, err := cardharness(full...).CombinedOutput()
	return string(out), err
}

func TestConformCommandAgainstACardInAReader(t *testing.T) {
	junit := filepath.Join(t.TempDir(), "conform.xml")
	out, err := conformUnderExec(t, "--reader", firstVPCD, "--pin", conformPIN, "--admin-key", conformKey,
		"--report", "json", "--junit", junit, "--only", "fs.masterfile,fs.cardcf,pin.verify,admin.mutual,keys.generate-1024")
	if err != nil {
		t.Fatalf("conform: %v\n%s", err, out)
	}
	var rep struct {
		Destructive bool `json:"destructive"`
		Checks      []struct {
			ID, Status, Section, Message string
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		t.Fatalf("JSON report: %v\n%s", err, out)
	}
	want := map[string]string{"fs.masterfile": "pass", "fs.cardcf": "pass", "pin.verify": "pass", "admin.mutual": "pass", "keys.generate-1024": "not-applicable"}
	if len(rep.Checks) != len(want) || rep.Destructive {
		t.Errorf("report: %+v", rep)
	}
	for _, c := range rep.Checks {
		if want[c.ID] != c.Status || !strings.HasPrefix(c.Section, "docs/reference/gids-protocol.md §") {
			t.Errorf("%s: %s (%s) %s, want %s", c.ID, c.Status, c.Section, c.Message, want[c.ID])
		}
	}
	if b, err := os.ReadFile(junit); err != nil || !strings.Contains(string(b), `<skipped message="writes to the card: run with --destructive">`) {
		t.Errorf("JUnit report: %v\n%s", err, b)
	}
}

func TestConformCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		output []string
	}{
		{"wrong reader", []string{"--reader", "No Such Reader 00 00"}, 1, []string{`reader "No Such Reader 00 00"`, "it sees:", firstVPCD}},
		{"no reader", []string{}, 2, []string{"--reader is required"}},
		{"bad admin key", []string{"--reader", firstVPCD, "--admin-key", "00"}, 2, []string{"48 hex digits"}},
		{"bad key size", []string{"--reader", firstVPCD, "--key-sizes", "512"}, 2, []string{"--key-sizes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := conformUnderExec(t, tc.args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit: %v, want %d\n%s", err, tc.code, out)
			}
			for _, s := range tc.output {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}
