package soak

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestShortSoakIsClean runs the soak with four cards briefly: every kind
// of step must have run, and nothing may have gone wrong. (`make soak` is
// the long run; this keeps its code honest in `make test`.)
func TestShortSoakIsClean(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the soak starts a stack and runs for seconds")
	}
	sum, err := Run(context.Background(), Config{Cards: 4, Duration: 8 * time.Second, SampleEvery: time.Second, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sum.Write(&out)
	t.Log("\n" + out.String())
	if !sum.OK() {
		t.Fatalf("soak not clean:\n%s", out.String())
	}
	for _, op := range []string{"read-cardcf", "read-containers", "verify-pin"} {
		if sum.Ops[op] == 0 {
			t.Errorf("no successful %s in the run", op)
		}
	}
	if len(sum.Samples) < 4 {
		t.Errorf("%d memory samples", len(sum.Samples))
	}
	if !strings.Contains(out.String(), "soak: clean") {
		t.Errorf("summary does not end clean:\n%s", out.String())
	}
}

// TestSoakCatchesAFault: the soak's checks can fail. A summary with a
// hang, a panic, an undecodable state or growing memory is not OK.
func TestSoakCatchesAFault(t *testing.T) {
	for name, s := range map[string]Summary{
		"hang":       {Hangs: []string{"x"}},
		"panic":      {Panics: 1},
		"decode":     {DecodeFailures: []string{"x"}},
		"unexpected": {UnexpectedCount: 1},
		"memory":     {MemoryGrown: "heap grew"},
	} {
		if s.OK() {
			t.Errorf("%s: summary OK", name)
		}
	}
	var flat, growing []Sample
	for i := range 20 {
		flat = append(flat, Sample{HeapBytes: 10 << 20, RSSBytes: 50 << 20})
		growing = append(growing, Sample{HeapBytes: uint64(10+10*i) << 20, RSSBytes: 50 << 20})
	}
	if g := grown(flat); g != "" {
		t.Errorf("flat memory judged grown: %s", g)
	}
	if g := grown(growing); !strings.Contains(g, "heap grew") {
		t.Errorf("growing heap judged %q", g)
	}
}
