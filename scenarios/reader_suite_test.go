package scenarios

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/cardclean"
	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/internal/hosttest"
	"github.com/cardharness/cardharness/vcard/gids"
)

// TestReaderModeRunsTheBuiltinSuiteOnOneCard is the vendor's case: ONE
// personalised card in a reader of a pcscd (a private stack here; the
// runner reaches the card only through PC/SC), the whole built-in suite
// run against it. Every applicable scenario passes because the card is
// cleaned before each one; the two-card and internals-only scenarios are
// skipped with their reasons; the card is clean afterwards. Once with the
// GIDS defaults, once with a PIN and admin key of the card's own.
func TestReaderModeRunsTheBuiltinSuiteOnOneCard(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the built-in suite through a pcscd stack")
	}
	for _, tc := range []struct {
		name string
		pin  string
		key  [24]byte
	}{
		{"default PIN and admin key", "123456", [24]byte{}},
		{"a PIN and admin key of its own", gidstest.OwnPIN, gidstest.OwnAdminKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			card := gidstest.New(t, gids.Options{}, gids.InitParams{PIN: tc.pin, AdminKey: tc.key})
			cardID, _ := card.DO(0xA012, 0xDF20)
			st := cardtest.Start(t, card)
			reader := st.Slots()[0].Reader
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			var progress bytes.Buffer
			opts := Options{Reader: reader, PIN: tc.pin, AdminKey: hex.EncodeToString(tc.key[:]), Parallel: 1, Verbose: true, Progress: &progress}
			refs := BuiltinRefs()
			results, err := RunAll(ctx, refs, opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != len(refs) {
				t.Fatalf("%d results for %d scenarios", len(results), len(refs))
			}
			passed, skipped := 0, map[string]string{}
			for _, r := range results {
				switch r.Status {
				case Pass:
					passed++
					if r.APDUs == 0 {
						t.Errorf("%s: no APDU count", r.Name)
					}
					if len(r.NotChecked) == 0 {
						t.Errorf("%s: the invariants a real card cannot offer are not listed as not checked", r.Name)
					}
				case Skip:
					if r.SkipReason == "" {
						t.Errorf("%s: skipped without a reason", r.Name)
					}
					if len(r.Steps) != 0 {
						t.Errorf("%s: skipped but %d steps ran", r.Name, len(r.Steps))
					}
					skipped[r.File] = r.SkipReason
				default:
					t.Errorf("%s: %s: %s\n%s", r.Name, r.Status, r.Failure, r.Diff)
				}
			}
			for file, want := range map[string]string{
				"builtin/stale-cache/s4-two-cards-share-a-cardid.yaml":        "cards; a reader holds one",
				"builtin/stale-cache/s3-reinitialised-card-keeps-cardid.yaml": "needs card internals",
			} {
				if got, ok := skipped["builtin:"+file]; !ok || !strings.Contains(got, want) {
					if got2, ok2 := skipped[file]; !ok2 || !strings.Contains(got2, want) {
						t.Errorf("%s: skip reason %q, want it skipped with %q", file, got+got2, want)
					}
				}
			}
			t.Logf("%d passed, %d skipped: %v", passed, len(skipped), skipped)
			if passed < len(refs)-len(skipped) || passed < 10 {
				t.Errorf("%d passed, %d skipped of %d", passed, len(skipped), len(refs))
			}
			if lines := strings.Count(progress.String(), "\n"); lines < 3*len(refs) {
				t.Errorf("-v progress has %d lines for %d scenarios: not one per step", lines, len(refs))
			}
			// The card after the run: clean, by the card's own view and by
			// the cleaner's verification through the reader.
			hosttest.CheckClean(t, card, cardID)
			conn, err := cardtest.Client(t).Connect(ctx, reader)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := cardclean.Verify(ctx, conn, cardclean.Config{PIN: tc.pin, AdminKey: tc.key}); err != nil {
				t.Error(err)
			}
			var junit bytes.Buffer
			if err := WriteJUnit(&junit, results); err != nil {
				t.Fatal(err)
			}
			var suite struct {
				Cases []struct {
					Name    string `xml:"name,attr"`
					Skipped *struct {
						Message string `xml:"message,attr"`
					} `xml:"skipped"`
				} `xml:"testsuite>testcase"`
			}
			if err := xml.Unmarshal(junit.Bytes(), &suite); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range suite.Cases {
				if c.Skipped != nil && c.Skipped.Message != "" {
					n++
				}
			}
			if n != len(skipped) {
				t.Errorf("JUnit: %d <skipped message=...>, want %d", n, len(skipped))
			}
		})
	}
}

// TestReaderModeResetCmd: with --reset-cmd the vendor's tool runs before
// every applicable scenario and once after the run, with the reader name
// in CARDHARNESS_READER; no admin key is needed then.
func TestReaderModeResetCmd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: needs a pcscd stack")
	}
	card := gidstest.New(t, gids.Options{}, gids.InitParams{PIN: "123456"})
	st := cardtest.Start(t, card)
	log := filepath.Join(t.TempDir(), "resets")
	refs, err := FileRefs([]string{"builtin:seed-flow-correct-writer", "builtin:s4-two-cards-share-a-cardid"})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Reader: st.Slots()[0].Reader, ResetCmd: `echo "$CARDHARNESS_READER" >> ` + log}
	results, err := RunAll(context.Background(), refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		want := Pass
		if strings.Contains(r.File, "s4-") {
			want = Skip
		}
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", r.Name, r.Status, r.Failure, want)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), st.Slots()[0].Reader+"\n"); got != 2 {
		t.Errorf("reset command ran %d times with the reader name, want 2 (before the applicable scenario, after the run):\n%s", got, b)
	}
	// A failing reset command is that scenario's error, with its output.
	opts.ResetCmd = "echo vendor tool: no card >&2; exit 4"
	results, err = RunAll(context.Background(), refs[:1], opts)
	if err != nil {
		t.Fatal(err)
	}
	// The scenario (reset before it failed) and the final reset.
	if len(results) != 2 {
		t.Fatalf("failing reset command: %+v", results)
	}
	for _, r := range results {
		if r.Status != Error || !strings.Contains(r.Failure, "vendor tool: no card") || len(r.Steps) != 0 {
			t.Errorf("failing reset command: %s %s %q", r.Name, r.Status, r.Failure)
		}
	}
}
