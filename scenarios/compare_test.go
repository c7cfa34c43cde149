package scenarios

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"go.yaml.in/yaml/v3"
)

func expectNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// TestNumbersCompareAsNumbers: an integer result matches 1, "1", "01" and
// 1.0; booleans match their spellings; text stays text.
func TestNumbersCompareAsNumbers(t *testing.T) {
	got := Values{"count": 1, "present": true, "guid": "01"}
	for _, src := range []string{`{count: 1}`, `{count: "1"}`, `{count: "01"}`, `{count: 1.0}`, `{present: yes}`, `{present: true}`, `{guid: "01"}`} {
		if d := compareResult(expectNode(t, src), got, func(s string) string { return s }); d != "" {
			t.Errorf("%s: differs:\n%s", src, d)
		}
	}
	for _, src := range []string{`{count: 2}`, `{count: one}`, `{present: no}`, `{guid: "1"}`} {
		if d := compareResult(expectNode(t, src), got, func(s string) string { return s }); d == "" {
			t.Errorf("%s: matched", src)
		}
	}
}

// TestFailedOutputContainsShowsTheOutput: the step's error carries what the
// tool printed.
func TestFailedOutputContainsShowsTheOutput(t *testing.T) {
	src := "name: output\ncards: {card: {}}\nsteps:\n  - {do: tool, card: card, run: [echo, hello from the tool], expect: {result: {output_contains: goodbye}}}\n"
	sc, err := Parse(fstest.MapFS{}, "o.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := RunOne(context.Background(), sc, Options{Stack: "direct"})
	if r.Status != Fail || !strings.Contains(r.Failure, "the output was:") || !strings.Contains(r.Failure, "| hello from the tool") {
		t.Errorf("%s: %s", r.Status, r.Failure)
	}
}
