package scenarios

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
)

// Builtin is the built-in suite, embedded in the binary.
//
//go:embed all:builtin
var Builtin embed.FS

// Ref names a scenario file: a path in the embedded suite or on disk.
type Ref struct {
	Path    string
	Builtin bool
}

func (r Ref) String() string {
	if r.Builtin {
		return "builtin:" + r.Path
	}
	return r.Path
}

func (r Ref) load() (*Scenario, error) {
	if r.Builtin {
		return Load(Builtin, r.Path)
	}
	return Load(osFS{}, r.Path)
}

// osFS opens paths as the OS does (relative to the working directory, or
// absolute), so that errors name the file the way the user wrote it.
type osFS struct{}

func (osFS) Open(name string) (fs.File, error) { return os.Open(name) }

// BuiltinRefs lists the built-in scenarios (files under builtin/ whose
// names do not start with "_": those are shared includes).
func BuiltinRefs() []Ref {
	var out []Ref
	_ = fs.WalkDir(Builtin, "builtin", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") && !strings.HasPrefix(path.Base(p), "_") {
			out = append(out, Ref{Path: p, Builtin: true})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// FileRefs expands paths (files, or directories searched for *.yaml).
func FileRefs(paths []string) ([]Ref, error) {
	var out []Ref
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, Ref{Path: p})
			continue
		}
		err = fs.WalkDir(os.DirFS(p), ".", func(q string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(q, ".yaml") && !strings.HasPrefix(path.Base(q), "_") {
				out = append(out, Ref{Path: path.Join(p, q)})
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Check parses every scenario and returns all problems (file:line: ...).
func Check(refs []Ref) error {
	var errs ParseErrors
	for _, r := range refs {
		if _, err := r.load(); err != nil {
			if pe, ok := err.(ParseErrors); ok {
				errs = append(errs, pe...)
			} else {
				errs = append(errs, &ParseError{File: r.String(), Msg: err.Error()})
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Run runs the scenarios and returns their results in name order. With
// the pcscd stack each scenario runs in a worker process of its own (its
// own private pcscd: libpcsclite talks to one pcscd per process); with the
// direct stack in goroutines of this process.
func Run(ctx context.Context, refs []Ref, opts Options) ([]Result, error) {
	if err := Check(refs); err != nil {
		return nil, err
	}
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	if opts.Stack == "" {
		opts.Stack = "pcscd"
	}
	if opts.Verbose && opts.Progress != nil {
		opts.Progress = &lockedWriter{w: opts.Progress} // report.go: whole lines from parallel scenarios
	}
	results := make([]Result, len(refs))
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, r := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var res Result
			if opts.Stack == "pcscd" && opts.Reader == "" {
				res = runWorker(ctx, r, opts)
			} else {
				sc, err := r.load()
				if err != nil {
					res = Result{Name: r.String(), File: r.String(), Status: Error, Failure: err.Error()}
				} else {
					res = RunOne(ctx, sc, opts)
				}
			}
			results[i] = res
			if opts.Progress != nil {
				mu.Lock()
				progressLine(opts.Progress, res)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sortResults(results)
	return results, nil
}

func progressLine(w io.Writer, r Result) {
	mark := map[string]string{Pass: "PASS ", Fail: "FAIL ", Error: "ERROR", Skip: "SKIP "}[r.Status]
	fmt.Fprintf(w, "%s %-58s %6.2fs", mark, r.Name, r.Duration.Seconds())
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "  (%d steps skipped)", len(r.Skipped))
	}
	fmt.Fprintln(w)
	if r.Status != Pass {
		fmt.Fprintf(w, "      %s\n", r.Failure)
	}
}

// The worker protocol: the parent re-executes its own binary with the job
// in the environment; init hands control to runWorkerMain before main (so
// test binaries work as workers too), which prints the Result as JSON.
const (
	workerEnv = "_CARDHARNESS_SCENARIO_WORKER"
)

type workerJob struct {
	Ref  Ref     `json:"ref"`
	Opts Options `json:"opts"`
}

func init() {
	if job := os.Getenv(workerEnv); job != "" {
		os.Exit(runWorkerMain(job))
	}
}

func runWorkerMain(job string) int {
	var j workerJob
	if err := json.Unmarshal([]byte(job), &j); err != nil {
		fmt.Fprintln(os.Stderr, "scenario worker:", err)
		return 2
	}
	var res Result
	sc, err := j.Ref.load()
	if err != nil {
		res = Result{Name: j.Ref.String(), File: j.Ref.String(), Status: Error, Failure: err.Error()}
	} else {
		if j.Opts.Verbose {
			j.Opts.Progress = os.Stderr // report.go: the parent forwards it
		}
		res = RunOne(context.Background(), sc, j.Opts)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

func runWorker(ctx context.Context, r Ref, opts Options) Result {
	wopts := opts
	wopts.Progress, wopts.Log = nil, nil
	job, _ := json.Marshal(workerJob{Ref: r, Opts: wopts})
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{"cardharness-scenario-worker"}
	cmd.Env = append(os.Environ(), workerEnv+"="+string(job))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if opts.Verbose && opts.Progress != nil {
		cmd.Stderr = io.MultiWriter(&stderr, &lineWriter{w: opts.Progress}) // report.go
	}
	start := time.Now()
	err := cmd.Run()
	var res Result
	if jerr := json.Unmarshal(stdout.Bytes(), &res); jerr != nil {
		return Result{Name: r.String(), File: r.String(), Status: Error, Duration: time.Since(start),
			Failure: fmt.Sprintf("worker process failed (%v): %s", err, tailLines(stderr.String(), 15))}
	}
	return res
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
