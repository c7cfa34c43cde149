package scenarios

import (
	"bytes"
	"testing"
)

// Run runs scenario files as Go subtests, one per scenario named after its
// name:, on the pcscd stack (each scenario in a worker process with its
// own private pcscd). Paths are as for cardharness run: files,
// directories, "builtin" for the embedded suite, builtin:NAME. So
//
//	func TestScenarios(t *testing.T) { scenarios.Run(t, "testdata/scenarios") }
//
// and `go test -run 'Scenarios/S11'` runs the scenarios whose names start
// with S11. A missing pcscd fails the test with what to install.
func Run(t *testing.T, paths ...string) {
	t.Helper()
	RunWith(t, Options{}, paths...)
}

// RunWith is Run with options (Stack: "direct" runs in process, without
// pcscd; CardFaults, Seed, Timeout as for cardharness run).
func RunWith(t *testing.T, opts Options, paths ...string) {
	t.Helper()
	refs, err := FileRefs(paths)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) == 0 {
		t.Fatalf("no scenarios in %q", paths)
	}
	if err := Check(refs); err != nil {
		t.Fatal(err)
	}
	if opts.Stack == "" {
		opts.Stack = "pcscd"
	}
	if err := Preflight(opts); err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		sc, err := r.load()
		if err != nil {
			t.Fatal(err)
		}
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			var res Result
			if opts.Stack == "pcscd" && opts.Reader == "" {
				res = runWorker(t.Context(), r, opts)
			} else {
				res = RunOne(t.Context(), sc, opts)
			}
			reportTest(t, res)
		})
	}
}

func reportTest(t *testing.T, r Result) {
	t.Helper()
	for _, s := range r.Skipped {
		t.Logf("skipped step %s", s)
	}
	if r.Status == Pass {
		return
	}
	var b bytes.Buffer
	WriteText(&b, []Result{r})
	t.Errorf("%s (seed %d, stack %s):%s", r.File, r.Seed, r.Stack, b.String())
}
