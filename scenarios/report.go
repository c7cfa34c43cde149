package scenarios

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cardharness/cardharness/internal/junit"
	"github.com/cardharness/cardharness/vcard/trace"
)

// Reports for people (text, HTML in html.go) and for machines (JSON,
// JUnit). Every format says which faults were injected: a failure under
// --fault is expected, the same failure without one is a bug.

// WriteText writes the summary a person reads after the progress lines:
// per failed scenario the failure, the plain diff, the faults in force,
// the timeline of the steps leading to the failure and the APDU traces.
func WriteText(w io.Writer, results []Result) {
	sum := Summary(results)
	for _, r := range results {
		if r.Status == Pass {
			continue
		}
		fmt.Fprintf(w, "\n--- %s: %s (%s)\n    %s\n", strings.ToUpper(r.Status), r.Name, r.File, r.Failure)
		if len(r.Faults) > 0 {
			fmt.Fprintf(w, "    injected faults: %s\n", strings.Join(r.Faults, "; "))
		}
		if r.Diff != "" {
			fmt.Fprintf(w, "    expected vs observed:\n%s\n", indent(r.Diff, "      "))
		}
		if len(r.Timeline) > 0 {
			fmt.Fprintf(w, "    timeline (what the card holds, what the hosts did):\n")
			writeTimelineTail(w, "      ", r.Timeline)
		}
		for _, t := range r.Traces {
			fmt.Fprintf(w, "    APDU trace: %s (cardharness trace %s)\n", t, t)
		}
	}
	skipped := 0
	for _, r := range results {
		skipped += len(r.Skipped)
	}
	if nc := notChecked(results); len(nc) > 0 {
		fmt.Fprintf(w, "\nnot checked (a real card's insides cannot be read): %s\n", strings.Join(nc, "; "))
	}
	fmt.Fprintf(w, "\n%d passed, %d failed", sum[Pass], sum[Fail]+sum[Error])
	if sum[Skip] > 0 {
		fmt.Fprintf(w, ", %d not applicable (skipped)", sum[Skip])
	}
	if skipped > 0 {
		fmt.Fprintf(w, " (%d steps skipped: they need card internals)", skipped)
	}
	if f := runFaults(results); len(f) > 0 {
		fmt.Fprintf(w, " with injected faults: %s", strings.Join(f, ", "))
	}
	fmt.Fprintln(w)
}

// notChecked is the union of the scenarios' unchecked invariants.
func notChecked(results []Result) []string {
	return unionOf(results, func(r Result) []string { return r.NotChecked })
}

// runFaults is the union of the scenarios' faults, for summary lines.
func runFaults(results []Result) []string {
	out := unionOf(results, func(r Result) []string { return r.Faults })
	sort.Strings(out)
	return out
}

// unionOf is the union of each result's list, in the order first seen.
func unionOf(results []Result, list func(Result) []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range results {
		for _, n := range list(r) {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// plainDiff describes the fields whose values differ, one line each, in
// the form "count: want 2, got 1", sorted by field. A got value of absent
// (the action returned no such field) reads "got nothing". Lists print
// as [a, b].
func plainDiff(want, got map[string]any) string {
	var lines []string
	for _, k := range sortedStrings(keysOf(want)) {
		ws, gs := plainValue(want[k]), plainValue(got[k])
		if ws == gs {
			continue
		}
		if g, ok := got[k].(string); ok && g == absent {
			gs = "nothing (the action returns no field " + k + ")"
		}
		lines = append(lines, fmt.Sprintf("%s: want %s, got %s", k, ws, gs))
	}
	return strings.Join(lines, "\n")
}

// absent stands for a result field the action did not return.
const absent = "<absent>"

func plainValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case []string:
		parts := make([]string, len(x))
		for i, s := range x {
			parts[i] = plainScalar(s)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case string:
		return plainScalar(x)
	}
	return plainScalar(fmt.Sprint(v))
}

// plainScalar quotes only what would otherwise be unreadable (empty,
// surrounding blanks, line breaks).
func plainScalar(s string) string {
	if s == "" || strings.TrimSpace(s) != s || strings.ContainsAny(s, "\n\t") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// WriteJSON writes the results as one JSON document, each with its whole
// timeline.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Summary map[string]int `json:"summary"`
		Faults  []string       `json:"faults,omitempty"`
		Results []Result       `json:"results"`
	}{Summary(results), runFaults(results), results})
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Time       string           `xml:"time,attr"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Cases      []junitCase      `xml:"testcase"`
}

type junitProperties struct {
	List []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name       string           `xml:"name,attr"`
	Classname  string           `xml:"classname,attr"`
	Time       string           `xml:"time,attr"`
	Properties *junitProperties `xml:"properties,omitempty"`
	Failure    *junitFailure    `xml:"failure,omitempty"`
	Error      *junitFailure    `xml:"error,omitempty"`
	Skipped    *junitSkipped    `xml:"skipped,omitempty"`
	SystemOut  string           `xml:"system-out,omitempty"`
}

// junitSkipped is a scenario that did not run, with why (reader.go:
// not applicable to the card in the reader).
type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// junitProps are the properties of one testcase: what a CI reader needs to
// reproduce it (seed, file, stack, faults, host profiles). Properties on
// testcases are the form GitLab, Jenkins and gotestsum's readers accept.
func junitProps(r Result) *junitProperties {
	p := &junitProperties{List: []junitProperty{
		{"seed", fmt.Sprint(r.Seed)},
		{"file", r.File},
		{"stack", r.Stack},
	}}
	fault := "none"
	if len(r.Faults) > 0 {
		fault = strings.Join(r.Faults, "; ")
	}
	p.List = append(p.List, junitProperty{"fault", fault})
	p.List = append(p.List, junitProperty{"apdus", fmt.Sprint(r.APDUs)})
	for _, n := range r.NotChecked {
		p.List = append(p.List, junitProperty{"not checked", n})
	}
	for _, h := range r.Hosts {
		p.List = append(p.List, junitProperty{"host profile", h})
	}
	return p
}

// WriteJUnit writes one testcase per scenario with its properties; a
// failure carries the plain diff, the faults and the timeline tail.
func WriteJUnit(w io.Writer, results []Result) error {
	s := junitSuite{Name: "cardharness scenarios", Tests: len(results)}
	if f := runFaults(results); len(f) > 0 {
		s.Properties = &junitProperties{List: []junitProperty{{"fault", strings.Join(f, "; ")}}}
	}
	var total time.Duration
	for _, r := range results {
		total += r.Duration
		c := junitCase{Name: r.Name, Classname: "cardharness." + r.Stack, Time: fmt.Sprintf("%.3f", r.Duration.Seconds()), Properties: junitProps(r)}
		body := r.Failure
		if len(r.Faults) > 0 {
			body += "\ninjected faults: " + strings.Join(r.Faults, "; ")
		}
		if r.Diff != "" {
			body += "\n\nexpected vs observed:\n" + r.Diff
		}
		if len(r.Timeline) > 0 && r.Status != Pass {
			var b bytes.Buffer
			writeTimelineTail(&b, "  ", r.Timeline)
			body += "\n\ntimeline:\n" + b.String()
		}
		for _, t := range r.Traces {
			body += "\nAPDU trace: " + t
		}
		msg := r.Failure
		if len(r.Faults) > 0 {
			msg += " [injected faults: " + strings.Join(r.Faults, "; ") + "]"
		}
		switch r.Status {
		case Fail:
			s.Failures++
			c.Failure = &junitFailure{Message: msg, Type: "ScenarioFailure", Body: body}
		case Error:
			s.Errors++
			c.Error = &junitFailure{Message: msg, Type: "ScenarioError", Body: body}
		case Skip:
			s.Skipped++
			c.Skipped = &junitSkipped{Message: r.Failure}
		}
		if len(r.Skipped) > 0 {
			c.SystemOut = "skipped steps:\n" + strings.Join(r.Skipped, "\n")
		}
		s.Cases = append(s.Cases, c)
	}
	s.Time = fmt.Sprintf("%.3f", total.Seconds())
	return junit.Write(w, junitSuites{Suites: []junitSuite{s}})
}

// lockedWriter serialises writes of scenarios running in parallel.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lineWriter forwards whole lines only (a worker's stderr arrives in
// arbitrary chunks; lines of parallel workers must not be cut).
type lineWriter struct {
	w   io.Writer
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
		_, _ = l.w.Write(l.buf[:i+1])
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
	return len(p), nil
}

// writePrivate writes a trace readable by its owner only (0600, also when
// the file existed with a wider mode): traces show what was on the card,
// and with TraceSecrets its PIN.
func writePrivate(path string, data []byte) error {
	f, err := trace.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
