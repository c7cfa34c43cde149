package scenarios

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func runBuiltin(t *testing.T, opts Options) []Result {
	t.Helper()
	opts.Parallel = 2
	res, err := RunAll(context.Background(), BuiltinRefs(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) < 18 {
		t.Fatalf("only %d built-in scenarios", len(res))
	}
	return res
}

// TestScenarios runs the built-in suite in process, one subtest per
// scenario: go test ./scenarios -run 'Scenarios/seed' runs the seed ones.
func TestScenarios(t *testing.T) {
	if n := len(BuiltinRefs()); n < 18 {
		t.Fatalf("only %d built-in scenarios", n)
	}
	RunWith(t, Options{Stack: "direct"}, "builtin")
}

// TestScenariosPCSCD runs it on private pcscd stacks, as cardharness run
// does by default.
func TestScenariosPCSCD(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the pcscd run starts a private stack per scenario")
	}
	Run(t, "builtin")
}

// TestCounterFaultBreaksExactlyTheBumpDependentOnes: with cards that
// drop cardcf writes, the scenarios tagged bump-dependent fail, each with a
// diff, and no other scenario does.
func TestCounterFaultBreaksExactlyTheBumpDependentOnes(t *testing.T) {
	res := runBuiltin(t, Options{Stack: "direct", CardFaults: []string{"drop-cardcf-writes"}})
	var want, got []string
	for _, ref := range BuiltinRefs() {
		sc, err := ref.load()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(sc.Tags, "bump-dependent") {
			want = append(want, sc.Name)
		}
	}
	for _, r := range res {
		if r.Status != Pass {
			got = append(got, r.Name)
			if r.Diff == "" {
				t.Errorf("%s failed without a diff: %s", r.Name, r.Failure)
			}
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) == 0 {
		t.Fatal("no scenario is tagged bump-dependent")
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("scenarios failing under drop-cardcf-writes (-tagged bump-dependent +failed):\n%s", d)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unknown top-level key", "name: x\nstepz: []\n", "bad.yaml:2: unknown key \"stepz\""},
		{"unknown action", "name: x\nsteps:\n  - do: frobnicate\n", "bad.yaml:3: unknown action \"frobnicate\""},
		{"unknown argument", "name: x\ncards: {c: {}}\nhosts: {h: }\nsteps:\n  - do: insert\n    host: h\n    card: c\n    colour: red\n", "bad.yaml:8: action \"insert\" takes no argument \"colour\""},
		{"missing argument", "name: x\nhosts: {h: }\nsteps:\n  - do: insert\n    host: h\n", "bad.yaml:4: action \"insert\" needs card:"},
		{"undeclared card", "name: x\nhosts: {h: }\nsteps:\n  - do: insert\n    host: h\n    card: nope\n", "bad.yaml:6: step \"insert\": no card named \"nope\""},
		{"bad error name", "name: x\nsteps:\n  - do: advance\n    by: 1d\n    expect: {error: E_NOPE}\n", "bad.yaml:5: unknown error \"E_NOPE\""},
		{"bad profile", "name: x\ncards:\n  c: {profile: shiny}\nsteps:\n  - {do: advance, by: 1s}\n", "bad.yaml:3: profile \"shiny\""},
		{"bad cardid", "name: x\ncards:\n  c: {cardid: 12}\nsteps:\n  - {do: advance, by: 1s}\n", "bad.yaml:3: cardid \"12\": want 32 hex digits"},
		{"unknown fault", "name: x\ncards:\n  c: {faults: [melt]}\nsteps:\n  - {do: advance, by: 1s}\n", "bad.yaml:3: unknown card fault \"melt\""},
		{"YAML syntax", "name: x\nsteps: [\n", "bad.yaml:2: YAML:"},
		{"no name", "steps:\n  - {do: advance, by: 1s}\n", "bad.yaml:1: scenario has no name:"},
		{"missing include", "name: x\ninclude: [nope.yaml]\nsteps:\n  - {do: advance, by: 1s}\n", "nope.yaml"},
		{"repeat without steps", "name: x\nsteps:\n  - {do: repeat, times: 2}\n", "bad.yaml:3: steps: belongs to do: repeat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"bad.yaml": {Data: []byte(tt.src)}}
			_, err := Load(fsys, "bad.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestBadKnobIsAFileLineError(t *testing.T) {
	src := "name: x\nhosts:\n  h:\n    knobs: {propagation_delay: soon, shiny: true}\nsteps:\n  - {do: advance, by: 1s}\n"
	_, err := Load(fstest.MapFS{"k.yaml": {Data: []byte(src)}}, "k.yaml")
	for _, want := range []string{"k.yaml:4: host \"h\": knob propagation_delay: bad duration \"soon\"", "k.yaml:4: host \"h\": unknown knob \"shiny\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("knob error %v lacks %q", err, want)
		}
	}
}

func TestJUnitIsWellFormedWithOneTestcasePerScenario(t *testing.T) {
	refs := []Ref{{Path: "builtin/store/s9-no-provinfo.yaml", Builtin: true}, {Path: "testdata/failing.yaml"}}
	res, err := RunAll(context.Background(), refs, Options{Stack: "direct", TraceDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteJUnit(&b, res); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit output does not parse: %v\n%s", err, b.String())
	}
	s := doc.Suites[0]
	if s.Tests != 2 || len(s.Cases) != 2 || s.Failures != 1 {
		t.Fatalf("suite %+v", s)
	}
	var failed *junitCase
	for i := range s.Cases {
		if s.Cases[i].Failure != nil {
			failed = &s.Cases[i]
		}
	}
	if failed == nil || failed.Name != "a scenario whose expectation is wrong" {
		t.Fatalf("failure not on the failing scenario: %+v", s.Cases)
	}
	for _, want := range []string{"testdata/failing.yaml:10", "containers: want 3, got 0", "APDU trace:"} {
		if !strings.Contains(failed.Failure.Body, want) {
			t.Errorf("failure body lacks %q:\n%s", want, failed.Failure.Body)
		}
	}
	// The saved trace is readable by cardharness trace.
	for _, r := range res {
		for _, p := range r.Traces {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("trace %s: %v", p, err)
			}
		}
	}
}

func TestSameSeedSameRun(t *testing.T) {
	ref := Ref{Path: "builtin/enrollment/offline.yaml", Builtin: true}
	run := func() []StepResult {
		sc, err := ref.load()
		if err != nil {
			t.Fatal(err)
		}
		r := RunOne(context.Background(), sc, Options{Stack: "direct"})
		if r.Status != Pass {
			t.Fatalf("%s: %s", r.Status, r.Failure)
		}
		return r.Steps
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatalf("%d vs %d steps", len(a), len(b))
	}
}

// TestReadmeExamplesRun keeps the scenarios in README.md true: every
// ```yaml block that is a scenario (starts with name:) is extracted and
// run.
func TestReadmeExamplesRun(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	rest := string(readme)
	for {
		var ok bool
		_, rest, ok = strings.Cut(rest, "```yaml\n")
		if !ok {
			break
		}
		example, after, ok := strings.Cut(rest, "```")
		if !ok {
			t.Fatal("README.md has an unterminated ```yaml block")
		}
		rest = after
		if !strings.HasPrefix(example, "name:") {
			continue
		}
		n++
		name := fmt.Sprintf("README.md example %d", n)
		sc, err := Parse(fstest.MapFS{}, name, []byte(example))
		if err != nil {
			t.Fatal(err)
		}
		if r := RunOne(context.Background(), sc, Options{Stack: "direct"}); r.Status != Pass {
			t.Errorf("%s (%s) does not pass: %s\n%s", name, sc.Name, r.Failure, r.Diff)
		}
	}
	if n < 2 {
		t.Fatalf("found %d scenario examples in README.md, want the seed bug and the walkthrough", n)
	}
}

func TestHTMLReportShowsFailuresWithDiffs(t *testing.T) {
	res, err := RunAll(context.Background(), []Ref{{Path: "testdata/failing.yaml"}}, Options{Stack: "direct"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0 passed, 1 failed", "a scenario whose expectation is wrong", "testdata/failing.yaml:10", "Expected vs observed", `class="sc fail"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
}

// TestScenariosSubtestsAreSelectable: go test -run 'Scenarios/^seed' runs
// the seed scenarios and no other (checked on this test binary).
func TestScenariosSubtestsAreSelectable(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestScenarios$/^seed", "-test.v")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var ran []string
	for _, line := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "--- PASS: TestScenarios/"); ok {
			ran = append(ran, name)
		}
	}
	if len(ran) != 2 {
		t.Fatalf("ran %q, want the two seed scenarios", ran)
	}
	for _, r := range ran {
		if !strings.HasPrefix(r, "seed") {
			t.Errorf("ran %s", r)
		}
	}
}
