package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

// wallClock matches what legitimately differs between two runs with the
// same seed: wall-clock times and durations (trace records, JSON, JUnit,
// the HTML report) and the run's own directory.
var wallClock = []*regexp.Regexp{
	regexp.MustCompile(`"time":"[^"]*"`),

	regexp.MustCompile(`"duration_ns": ?-?\d+`),
	regexp.MustCompile(`time="[0-9.]+"`),
	// Go duration strings, as the HTML report prints them: "1s" as
	// well as "0.21s", "345ms" and "1m2.5s" (a run on a loaded machine
	// reaches whole seconds).
	regexp.MustCompile(`\b(\d+h)?(\d+m)?\d+(\.\d+)?(s|ms|µs|us|ns)\b`),
}

// durUS is a trace response's duration, omitted when 0.
var durUS = regexp.MustCompile(`,"dur_us":\d+`)

// psoCDS is a PSO: COMPUTE DIGITAL SIGNATURE command (GIDS 00 2A 9E 9A).
var psoCDS = regexp.MustCompile(`"apdu":"002a9e9a[0-9a-f]*"`)

// maskTLSSignatures masks, in the traces of the relay scenarios only, the
// data of each signature the card computes and of its answer: one of them
// signs a TLS handshake, whose transcript is random by design (Go's
// crypto/tls draws key shares from crypto/rand whatever Config.Rand says,
// Go 1.24 on). Every other APDU of those traces must still match.
func maskTLSSignatures(name, s string) string {
	if !strings.Contains(name, "relay") || !strings.HasSuffix(name, ".jsonl") {
		return s
	}
	lines := strings.Split(s, "\n")
	for i := range lines {
		if psoCDS.MatchString(lines[i]) {
			lines[i] = psoCDS.ReplaceAllString(lines[i], `"apdu":"002a9e9a~"`)
			if i+1 < len(lines) {
				lines[i+1] = regexp.MustCompile(`"apdu":"[0-9a-f]*"`).ReplaceAllString(lines[i+1], `"apdu":"~"`)
			}
		}
	}
	return strings.Join(lines, "\n")
}

// seqField is a trace record's sequence number.
var seqField = regexp.MustCompile(`^\{"seq":(\d+),`)

// withoutReaderPower drops a trace's power-on and power-off records and
// renumbers the rest. On the pcscd stack pcscd itself powers an idle card
// off after its grace period and on again at the next transaction, on its
// own wall clock: where those records fall depends on the machine's load,
// not on the scenario or its seed. Every APDU and step marker stays, in
// order, and must still be identical.
func withoutReaderPower(s string) string {
	var out []string
	renum := map[string]int{}
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, `"dir":"power-on"`) || strings.Contains(line, `"dir":"power-off"`) {
			continue
		}
		if m := seqField.FindStringSubmatch(line); m != nil {
			n, ok := renum[m[1]]
			if !ok {
				n = len(renum) + 1
				renum[m[1]] = n
			}
			line = fmt.Sprintf(`{"seq":%d,`, n) + line[len(m[0]):]
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// runFiles reads every file of a run directory with the wall clock and
// the directory's own name masked; with readerPower false, the traces'
// power records are dropped (see withoutReaderPower).
func runFiles(t *testing.T, dir string, readerPower bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		s := strings.ReplaceAll(string(b), dir, "OUT")
		s = durUS.ReplaceAllString(s, "")
		for _, re := range wallClock {
			s = re.ReplaceAllString(s, "~")
		}
		rel, _ := filepath.Rel(dir, p)
		if !readerPower && strings.HasSuffix(rel, ".jsonl") {
			s = withoutReaderPower(s)
		}
		out[rel] = maskTLSSignatures(rel, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSameSeedSameRun: the built-in suite run twice with one seed, on each
// stack, gives byte-identical APDU traces of every card of every scenario
// and identical reports (JSON, JUnit, HTML), wall-clock times masked. The
// seed fixes the cards' keys (gids.Options.KeySeed), cardids, host GUIDs
// and the test CA; nothing else may vary.
func TestSameSeedSameRun(t *testing.T) {
	for _, stackKind := range []string{"direct", "pcscd"} {
		t.Run(stackKind, func(t *testing.T) {
			if stackKind == "pcscd" {
				testutil.NeedTool(t, "pcscd", "pcscd")
			}
			var runs [2]map[string]string
			for i := range runs {
				dir := filepath.Join(t.TempDir(), "run")
				var stdout, stderr bytes.Buffer
				if code := cli([]string{"run", "--stack", stackKind, "--seed", "42", "--trace-all", "--out", dir}, &stdout, &stderr); code != 0 {
					t.Fatalf("run %d: exit %d\n%s\n%s", i+1, code, stdout.String(), stderr.String())
				}
				runs[i] = runFiles(t, dir, stackKind == "direct")
			}
			var traces []string
			for name := range runs[0] {
				if strings.HasSuffix(name, ".jsonl") {
					traces = append(traces, name)
				}
			}
			sort.Strings(traces)
			if len(traces) < 15 {
				t.Fatalf("%d APDU traces saved, want one per card of every scenario: %v", len(traces), traces)
			}
			for _, f := range []string{"results.json", "junit.xml", "report.html"} {
				if _, ok := runs[0][f]; !ok {
					t.Errorf("no %s in the run directory", f)
				}
			}
			if diff := cmp.Diff(runs[0], runs[1]); diff != "" {
				t.Errorf("two runs with --seed 42 differ (-first +second):\n%s", diff)
			}
		})
	}
}
