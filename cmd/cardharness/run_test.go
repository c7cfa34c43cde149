package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardharness/cardharness/internal/testutil"
)

// longScenario runs far longer than any test waits: almost a million card
// reads (the most a scenario may run), after a first quick step.
const longScenario = `name: a very long repeat
cards:
  card: {}
steps:
  - {do: advance, by: 1s}
  - do: repeat
    times: 10000
    steps:
      - do: repeat
        times: 99
        steps:
          - {do: check-card, card: card}
`

func writeScenario(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "long.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// children lists the PIDs of pid's child processes (from /proc/*/stat:
// the children file needs a kernel option not every machine has).
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the
		// last parenthesis.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}

type runReport struct {
	Results []struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Failure string `json:"failure"`
		Steps   []struct {
			Do string `json:"do"`
		} `json:"steps"`
	} `json:"results"`
}

// TestSignalStopsALongRepeatWithAPartialReport: SIGTERM (and SIGINT) to
// the real binary during a long repeat on the pcscd stack stops the run,
// which still prints its report, with the steps run and the reason, and
// exits 130; no worker or pcscd is left behind.
func TestSignalStopsALongRepeatWithAPartialReport(t *testing.T) {
	testutil.NeedTool(t, "pcscd", "pcscd")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			file := writeScenario(t, longScenario)
			out := t.TempDir()
			// -v: each finished step is printed (on stderr, with --report
			// json), so the test knows when the long repeat has begun.
			cmd := cardharness("run", "-v", "--report", "json", "--out", out, file)
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderrPipe, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			var stderr bytes.Buffer
			started := make(chan struct{})
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				sc := bufio.NewScanner(stderrPipe)
				once := false
				for sc.Scan() {
					stderr.WriteString(sc.Text() + "\n")
					if !once && strings.Contains(sc.Text(), "step 1 advance") {
						once = true
						close(started)
					}
				}
			}()
			select {
			case <-started:
			case <-copied:
				t.Fatalf("the run ended before its first step was reported:\n%s", stderr.String())
			case <-time.After(60 * time.Second):
				t.Fatal("the first step was never reported")
			}
			workers := children(cmd.Process.Pid)
			if len(workers) != 1 {
				t.Fatalf("workers %v, want one", workers)
			}
			worker := workers[0]
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select { // stderr is read to its end before Wait
			case <-copied:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("cardharness run did not stop after the signal:\n%s", stderr.String())
			}
			if code := waitExitWithin(t, cmd, 60*time.Second); code != exitInterrupted {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, exitInterrupted, stderr.String())
			}
			var rep runReport
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("no JSON report: %v\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			if len(rep.Results) != 1 {
				t.Fatalf("results: %+v", rep.Results)
			}
			r := rep.Results[0]
			if r.Status != "error" || !strings.Contains(r.Failure, "interrupted during step 2 of 2") || len(r.Steps) != 2 {
				t.Errorf("result %+v: want an error saying it was interrupted, with the step it was in", r)
			}
			if !strings.Contains(stderr.String(), "stopped by") {
				t.Errorf("stderr does not say the run was stopped:\n%s", stderr.String())
			}
			if _, err := os.Stat(filepath.Join(out, "junit.xml")); err != nil {
				t.Errorf("no JUnit report of the partial run: %v", err)
			}
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(worker))); err == nil {
				t.Errorf("worker %d still running", worker)
			}
		})
	}
}

// TestTimeoutStopsALongRepeat: --timeout ends the scenario, reported as an
// error that names the timeout.
func TestTimeoutStopsALongRepeat(t *testing.T) {
	file := writeScenario(t, longScenario)
	cmd := cardharness("run", "--stack", "direct", "--timeout", "1s", "--out", t.TempDir(), file)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if code := waitExitWithin(t, cmd, 60*time.Second); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if !strings.Contains(stdout.String(), "timed out after 1s (--timeout) during step 2 of 2") {
		t.Errorf("output:\n%s", stdout.String())
	}
}

// TestMissingPcscdIsReportedOnce: before any scenario, with the package
// to install and the --stack direct alternative.
func TestMissingPcscdIsReportedOnce(t *testing.T) {
	out := t.TempDir()
	cmd := cardharness("run", "--pcscd", "/nonexistent/pcscd", "--out", out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	if n := strings.Count(stderr.String(), "pcscd not found"); n != 1 {
		t.Errorf("pcscd reported missing %d times:\n%s", n, stderr.String())
	}
	for _, want := range []string{"apt-get install pcscd", "--stack direct"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("a scenario header or result was printed:\n%s", stdout.String())
	}
}

// TestRunSelectsAndCombines: builtin plus a directory of one's own in one
// run, --run and --tag filtering, builtin: names from --list accepted.
func TestRunSelectsAndCombines(t *testing.T) {
	dir := t.TempDir()
	mine := "name: my own scenario\ntags: [mine]\ncards: {card: {}}\nsteps:\n  - {do: check-card, card: card, expect: {result: {containers: 0}}}\n"
	if err := os.WriteFile(filepath.Join(dir, "mine.yaml"), []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	list := func(args ...string) []string {
		t.Helper()
		out, err := cardharness(append([]string{"run", "--list"}, args...)...).Output()
		if err != nil {
			t.Fatalf("run --list %q: %v", args, err)
		}
		return strings.Fields(string(out))
	}
	all := list("builtin", dir)
	if len(all) < 19 || all[len(all)-1] != filepath.Join(dir, "mine.yaml") {
		t.Errorf("builtin plus mine: %q", all)
	}
	if got := list("--run", "S11", "builtin", dir); len(got) != 3 { // default lost, moved, Base CSP picks a new one
		t.Errorf("--run S11: %q", got)
	}
	if got := list("--tag", "mine", "builtin", dir); len(got) != 1 || !strings.HasSuffix(got[0], "mine.yaml") {
		t.Errorf("--tag mine: %q", got)
	}
	if got := list("--skip-tag", "mine", "builtin", dir); len(got) != len(all)-1 {
		t.Errorf("--skip-tag mine: %d of %d", len(got), len(all))
	}
	var stderr bytes.Buffer
	typo := cardharness("run", "--list", "builtin:pin-chnaged-elsewhere")
	typo.Stderr = &stderr
	if err := typo.Run(); err == nil || !strings.Contains(stderr.String(), "did you mean pin-changed-elsewhere?") {
		t.Errorf("a mistyped builtin: name: %v\n%s", err, stderr.String())
	}
	// What --list prints, run accepts; and both run into one report.
	out := t.TempDir()
	cmd := cardharness("run", "--stack", "direct", "--out", out, all[0], dir)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("run %s %s: %v\n%s", all[0], dir, err, stdout.String())
	}
	if !strings.Contains(stdout.String(), "2 passed, 0 failed") || !strings.Contains(stdout.String(), "my own scenario") {
		t.Errorf("output:\n%s", stdout.String())
	}
	for _, f := range []string{"junit.xml", "report.html", "results.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("--out: %v", err)
		}
	}
}

// TestRunDefaultOutIsANewDirectoryPerRun: two runs, two directories under
// build/runs, neither holding the other's files.
func TestRunDefaultOutIsANewDirectoryPerRun(t *testing.T) {
	wd := t.TempDir()
	var dirs []string
	for i := 0; i < 2; i++ {
		cmd := cardharness("run", "--stack", "direct", "builtin:s9-no-provinfo")
		cmd.Dir = wd
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "reports and traces: "); ok {
				dirs = append(dirs, d)
			}
		}
	}
	if len(dirs) != 2 || dirs[0] == dirs[1] || !strings.HasPrefix(dirs[0], filepath.Join("build", "runs")+"/") {
		t.Fatalf("run directories %q", dirs)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(wd, d, "junit.xml")); err != nil {
			t.Error(err)
		}
	}
}

func TestRunFlagTypoGetsASuggestion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := cli([]string{"run", "--sead", "3"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "did you mean --seed?") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

func TestActionsAndKnobsReference(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := cli([]string{"actions", "check-card"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"check-card (card)", "arguments:", "card  card  required", "pin_tries", "example:"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("actions check-card lacks %q:\n%s", want, stdout.String())
		}
	}
	stdout.Reset()
	if code := cli([]string{"knobs", "session_pins"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "default: false") {
		t.Errorf("knobs session_pins: %d\n%s", code, stdout.String())
	}
	stderr.Reset()
	if code := cli([]string{"actions", "chek-card"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "did you mean check-card?") {
		t.Errorf("actions chek-card: %d\n%s", code, stderr.String())
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}, {"run", "--version"}} {
		var stdout, stderr bytes.Buffer
		if code := cli(args, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "cardharness ") || !strings.Contains(stdout.String(), "go1.") {
			t.Errorf("%q: exit %d, %q", args, code, stdout.String())
		}
	}
}

// TestOldRunsArePruned: build/runs keeps the newest keepRuns runs; other
// entries are not touched.
func TestOldRunsArePruned(t *testing.T) {
	base := t.TempDir()
	var names []string
	for i := 0; i < keepRuns+5; i++ {
		n := fmt.Sprintf("20260101-1200%02d", i)
		if i%2 == 1 {
			n = fmt.Sprintf("20260101-1200%02d-%d", i-1, 10+i) // same second, later
		}
		names = append(names, n)
		if err := os.Mkdir(filepath.Join(base, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(base, "mine"), 0o755)
	pruneRuns(base)
	ents, _ := os.ReadDir(base)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if len(left) != keepRuns+1 || !slices.Contains(left, "mine") {
		t.Fatalf("left %q", left)
	}
	for _, gone := range names[:5] {
		if slices.Contains(left, gone) {
			t.Errorf("%s (among the oldest) kept", gone)
		}
	}
}
