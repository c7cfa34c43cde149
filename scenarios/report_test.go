package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/golden"
)

// runTimeline runs testdata/timeline.yaml: a writer that does not bump
// the counters, a PIN changed elsewhere, a failing last step.
func runTimeline(t *testing.T, opts Options) Result {
	t.Helper()
	ref := Ref{Path: "testdata/timeline.yaml"}
	sc, err := ref.load()
	if err != nil {
		t.Fatal(err)
	}
	if opts.Stack == "" {
		opts.Stack = "direct"
	}
	r := RunOne(context.Background(), sc, opts)
	if r.Status != Fail {
		t.Fatalf("status %s, want fail: %s", r.Status, r.Failure)
	}
	return r
}

// TestTimelineTextReport: the text report of a failure shows the plain
// diff and the timeline of the steps before it: the card's counters, the
// cache decisions, the PIN try spent, the step where host and card
// diverge.
func TestTimelineTextReport(t *testing.T) {
	r := runTimeline(t, Options{})
	var b bytes.Buffer
	WriteText(&b, []Result{r})
	golden.Check(t, "report/timeline.txt", b.Bytes())
}

// TestTimelineJSONIsWhole: --report json carries every step's state.
func TestTimelineJSONIsWhole(t *testing.T) {
	r := runTimeline(t, Options{})
	if got, want := len(r.Timeline), len(r.Steps)+1; got != want {
		t.Fatalf("%d timeline steps for %d steps (+ setup)", got, len(r.Steps))
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, []Result{r}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Results []struct {
			Timeline []TimelineStep `json:"timeline"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(r.Timeline, doc.Results[0].Timeline); d != "" {
		t.Errorf("timeline does not survive JSON (-want +got):\n%s", d)
	}
	out, err := json.MarshalIndent(r.Timeline, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "report/timeline.json", append(out, '\n'))
	// The facts the golden file pins, asserted by name so a regenerated
	// golden file cannot silently lose them.
	last := r.Timeline[len(r.Timeline)-1]
	if !r.Timeline[7].DivergedFirst || last.Status != Fail {
		t.Errorf("divergence not at step 7 or last step not failed: %+v", r.Timeline[7])
	}
	if r.Timeline[6].Cards[0].PINTries != 2 {
		t.Errorf("step 6 PIN tries %d, want 2 (a cached PIN was rejected)", r.Timeline[6].Cards[0].PINTries)
	}
	kinds := map[string]bool{}
	for _, ts := range r.Timeline {
		for _, h := range ts.Hosts {
			for _, ev := range h.Events {
				kinds[ev.Kind] = true
			}
		}
	}
	for _, k := range []string{"hit", "miss", "refresh", "pin-prompt", "drop-pin-cache"} {
		if !kinds[k] {
			t.Errorf("no %q event in the timeline", k)
		}
	}
}

// TestVerbosePrintsEachStep: -v prints each step's result and events as
// it runs, in process and through a pcscd worker process.
func TestVerbosePrintsEachStep(t *testing.T) {
	var b bytes.Buffer
	runTimeline(t, Options{Verbose: true, Progress: &b})
	golden.Check(t, "report/verbose.txt", b.Bytes())

	if testing.Short() {
		return
	}
	var w bytes.Buffer
	res, err := RunAll(context.Background(), []Ref{{Path: "testdata/timeline.yaml"}}, Options{Stack: "pcscd", Verbose: true, Progress: &w})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != Fail {
		t.Fatalf("pcscd run: %s %s", res[0].Status, res[0].Failure)
	}
	// The worker's lines arrive before the scenario's result line.
	out := w.String()
	step8 := strings.Index(out, "timeline of a writer that does not bump the counters: step 8 read-containers")
	result := strings.Index(out, "FAIL  timeline of a writer")
	if step8 < 0 || result < step8 {
		t.Errorf("pcscd worker's verbose lines missing or after the result:\n%s", out)
	}
}

func TestPlainDiff(t *testing.T) {
	tests := []struct {
		name      string
		want, got map[string]any
		diff      string
	}{
		{"number", map[string]any{"count": "2"}, map[string]any{"count": "1"}, "count: want 2, got 1"},
		{"equal fields are left out", map[string]any{"a": "x", "b": "1"}, map[string]any{"a": "x", "b": "2"}, "b: want 1, got 2"},
		{"sorted", map[string]any{"z": "1", "a": "1"}, map[string]any{"z": "2", "a": "2"}, "a: want 1, got 2\nz: want 1, got 2"},
		{"absent", map[string]any{"guid": "ab"}, map[string]any{"guid": absent}, "guid: want ab, got nothing (the action returns no field guid)"},
		{"list", map[string]any{"s": []string{"a", "b"}}, map[string]any{"s": []string{"a"}}, "s: want [a, b], got [a]"},
		{"empty string quoted", map[string]any{"s": ""}, map[string]any{"s": "x"}, `s: want "", got x`},
		{"same", map[string]any{"s": "x"}, map[string]any{"s": "x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plainDiff(tt.want, tt.got); got != tt.diff {
				t.Errorf("plainDiff = %q, want %q", got, tt.diff)
			}
		})
	}
}

// TestFaultInEveryFormat: the injected --fault is named in the text,
// JSON, JUnit and HTML reports.
func TestFaultInEveryFormat(t *testing.T) {
	r := runTimeline(t, Options{CardFaults: []string{"drop-cardcf-writes"}})
	want := "drop-cardcf-writes (--fault, every card)"
	if d := cmp.Diff([]string{want}, r.Faults); d != "" {
		t.Fatalf("faults (-want +got):\n%s", d)
	}
	writers := map[string]func(*bytes.Buffer) error{
		"text":  func(b *bytes.Buffer) error { WriteText(b, []Result{r}); return nil },
		"json":  func(b *bytes.Buffer) error { return WriteJSON(b, []Result{r}) },
		"junit": func(b *bytes.Buffer) error { return WriteJUnit(b, []Result{r}) },
		"html":  func(b *bytes.Buffer) error { return WriteHTML(b, []Result{r}) },
	}
	for name, write := range writers {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("%s report does not name the fault %q", name, want)
		}
	}
}

// TestJUnitPropertiesPerTestcase: seed, file, stack, fault and host
// profiles are properties of each testcase.
func TestJUnitPropertiesPerTestcase(t *testing.T) {
	r := runTimeline(t, Options{CardFaults: []string{"drop-cardcf-writes"}})
	var b bytes.Buffer
	if err := WriteJUnit(&b, []Result{r}); err != nil {
		t.Fatal(err)
	}
	var doc junitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("JUnit does not parse: %v\n%s", err, b.String())
	}
	c := doc.Suites[0].Cases[0]
	if c.Properties == nil {
		t.Fatalf("testcase has no properties:\n%s", b.String())
	}
	want := []junitProperty{
		{"seed", "11"},
		{"file", "testdata/timeline.yaml"},
		{"stack", "direct"},
		{"fault", "drop-cardcf-writes (--fault, every card)"},
		{"apdus", fmt.Sprint(r.APDUs)},
		{"host profile", "desktop: default knobs"},
	}
	if r.APDUs == 0 {
		t.Error("no APDU count in the result")
	}
	if d := cmp.Diff(want, c.Properties.List); d != "" {
		t.Errorf("properties (-want +got):\n%s", d)
	}
	if !strings.Contains(c.Failure.Body, "count: want 2, got 1") || !strings.Contains(c.Failure.Body, "host and card diverge here") {
		t.Errorf("failure body lacks the plain diff or the timeline:\n%s", c.Failure.Body)
	}
}
