package scenarios

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cardharness/cardharness/harness/stack"
)

// Builtin is the built-in suite, embedded in the binary.
//
//go:embed all:builtin
var Builtin embed.FS

// Ref names a scenario file: a path in the embedded suite or on disk.
type Ref struct {
	Path    string `json:"path"`
	Builtin bool   `json:"builtin,omitempty"`
	// Root is the directory its includes must stay under: the directory
	// given on the command line, or the file's own ("": the file's).
	Root string `json:"root,omitempty"`
	// IncludePath are further directories includes may come from
	// (--include-path).
	IncludePath []string `json:"include_path,omitempty"`
}

func (r Ref) String() string {
	if r.Builtin {
		return "builtin:" + r.Path
	}
	return r.Path
}

func (r Ref) load() (*Scenario, error) {
	if r.Builtin {
		return LoadWithin(Builtin, r.Path, []string{"builtin"})
	}
	root := r.Root
	if root == "" {
		root = path.Dir(r.Path)
	}
	return LoadWithin(osFS{}, r.Path, append([]string{root}, r.IncludePath...))
}

// Load parses the scenario the reference names.
func (r Ref) Load() (*Scenario, error) { return r.load() }

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

// FileRefs expands paths: files, directories (searched for *.yaml),
// "builtin" (the embedded suite) and builtin:NAME (one built-in scenario,
// as --list prints it). includePath are further directories includes may
// come from.
func FileRefs(paths []string, includePath ...string) ([]Ref, error) {
	var out []Ref
	for _, p := range paths {
		if p == "builtin" {
			out = append(out, BuiltinRefs()...)
			continue
		}
		if name, ok := strings.CutPrefix(p, "builtin:"); ok {
			r, err := builtinRef(name)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, Ref{Path: p, Root: path.Dir(p), IncludePath: includePath})
			continue
		}
		err = fs.WalkDir(os.DirFS(p), ".", func(q string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(q, ".yaml") && !strings.HasPrefix(path.Base(q), "_") {
				out = append(out, Ref{Path: path.Join(p, q), Root: p, IncludePath: includePath})
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func builtinRef(name string) (Ref, error) {
	var names []string
	for _, r := range BuiltinRefs() {
		if r.Path == name || r.Path == path.Join("builtin", name) || strings.TrimSuffix(path.Base(r.Path), ".yaml") == name {
			return r, nil
		}
		names = append(names, strings.TrimSuffix(path.Base(r.Path), ".yaml"))
	}
	return Ref{}, fmt.Errorf("builtin:%s: no such built-in scenario%s (cardharness run --list lists them)", name, didYouMean(strings.TrimSuffix(path.Base(name), ".yaml"), names))
}

// Check parses every scenario and returns all problems (file:line: ...).
func Check(refs []Ref) error {
	_, err := loadAll(refs)
	return err
}

// loadAll parses every scenario (refs' order) and returns all problems
// (file:line: ...). The parsed scenarios are run as they are: RunOne does
// not change them, so a sweep parses each file once, not once per cell.
func loadAll(refs []Ref) ([]*Scenario, error) {
	var errs ParseErrors
	out := make([]*Scenario, len(refs))
	for i, r := range refs {
		sc, err := r.load()
		if err != nil {
			if pe, ok := err.(ParseErrors); ok {
				errs = append(errs, pe...)
			} else {
				errs = append(errs, &ParseError{File: r.String(), Msg: err.Error()})
			}
		}
		out[i] = sc
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// MissingComponentError: the pcscd stack cannot start on this machine
// (pcscd or the vpcd driver is not installed). RunAll reports it once,
// before any scenario, instead of once per scenario.
type MissingComponentError struct{ Err error }

func (e *MissingComponentError) Error() string {
	return e.Err.Error() + "\n(--stack direct runs the same scenarios in process, without pcscd)"
}

func (e *MissingComponentError) Unwrap() error { return e.Err }

// Preflight checks that the stack opts asks for can start on this machine
// (a *MissingComponentError if not), without starting anything.
func Preflight(opts Options) error {
	if (opts.Stack == "pcscd" || opts.Stack == "") && opts.Reader == "" {
		if err := stack.Preflight(stack.Config{Pcscd: opts.Pcscd}); err != nil {
			return &MissingComponentError{Err: err}
		}
	}
	return nil
}

// RunAll runs the scenarios and returns their results in name order. With
// the pcscd stack each scenario runs in a worker process of its own (its
// own private pcscd: libpcsclite talks to one pcscd per process); with the
// direct stack in goroutines of this process. When ctx ends (a signal),
// the scenarios running stop within a step and report what they did; the
// ones not started are reported as skipped.
func RunAll(ctx context.Context, refs []Ref, opts Options) ([]Result, error) {
	parsed, err := loadAll(refs)
	if err != nil {
		return nil, err
	}
	if opts.Parallel < 1 {
		opts.Parallel = 1
	}
	if opts.Stack == "" {
		opts.Stack = "pcscd"
	}
	if opts.Reader != "" {
		return runOnReader(ctx, refs, opts) // reader.go: serial, one card
	}
	if err := Preflight(opts); err != nil {
		return nil, err
	}
	if opts.Verbose && opts.Progress != nil {
		opts.Progress = &lockedWriter{w: opts.Progress} // report.go: whole lines from parallel scenarios
	}
	results := make([]Result, len(refs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	started := 0
	var workers *workerSet
	if opts.ReuseStacks && opts.Stack == "pcscd" {
		workers = newWorkerSet(ctx, opts.Parallel, opts) // workerpool.go
		defer workers.close()
	}
	// Longest first (Cost, shard.go: the longest-processing-time rule), so
	// that a long scenario does not start last while the other workers
	// idle; the results are sorted by name all the same.
	jobs := make(chan int)
	go func() {
		for _, i := range longestFirst(parsed, opts.Stack) {
			jobs <- i
		}
		close(jobs)
	}()
	for w := 0; w < opts.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r := refs[i]
				func() {
					if ctx.Err() != nil {
						results[i] = Result{Name: r.String(), File: r.String(), Status: Skip, Failure: "not run: the run was interrupted", Stack: opts.Stack}
						return
					}
					mu.Lock()
					started++
					n := started
					mu.Unlock()
					ropts := opts
					if opts.OnProgress != nil {
						name := r.String()
						ropts.OnStep = func(step, steps int) {
							opts.OnProgress(Progress{Scenario: n, Scenarios: len(refs), Name: name, Step: step, Steps: steps})
						}
					}
					var res Result
					if workers != nil {
						res = workers.run(r, ropts)
					} else if opts.Stack == "pcscd" && opts.Reader == "" {
						res = runWorker(ctx, r, ropts)
					} else {
						res = RunOne(ctx, parsed[i], ropts)
					}
					results[i] = res
					if opts.OnProgress != nil {
						opts.OnProgress(Progress{Scenario: n, Scenarios: len(refs), Name: r.String(), Done: true})
					}
					if opts.Progress != nil {
						mu.Lock()
						progressLine(opts.Progress, res)
						mu.Unlock()
					}
				}()
			}
		}()
	}
	wg.Wait()
	sortResults(results)
	return results, nil
}

// longestFirst is the indices of scs by decreasing Cost (ties: in order).
func longestFirst(scs []*Scenario, stackKind string) []int {
	order := make([]int, len(scs))
	cost := make([]int, len(scs))
	for i, sc := range scs {
		order[i], cost[i] = i, Cost(sc, stackKind)
	}
	sort.SliceStable(order, func(a, b int) bool { return cost[order[a]] > cost[order[b]] })
	return order
}

func progressLine(w io.Writer, r Result) {
	mark := map[string]string{Pass: "PASS ", Fail: "FAIL ", Error: "ERROR", Skip: "SKIP "}[r.Status]
	fmt.Fprintf(w, "%s %-58s %6.2fs", mark, r.Name, r.Duration.Seconds())
	if r.APDUs > 0 {
		fmt.Fprintf(w, "  %d APDUs", r.APDUs)
	}
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
// Step progress goes back on file descriptor 3, one "STEP STEPS" line per
// step. SIGTERM or SIGINT stop the worker's scenario the way a cancelled
// context does, so the parent still gets a (partial) result.
const (
	workerEnv         = "_CARDHARNESS_SCENARIO_WORKER"
	workerProgressEnv = "_CARDHARNESS_SCENARIO_PROGRESS_FD"
	// workerGrace is how long a worker has to report after SIGTERM
	// before it is killed.
	workerGrace = 3 * time.Second
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if os.Getenv(workerProgressEnv) == "3" {
		closeOnExec(3)
		pw := os.NewFile(3, "progress")
		j.Opts.OnStep = func(step, steps int) { fmt.Fprintf(pw, "%d %d\n", step, steps) }
	}
	var res Result
	sc, err := j.Ref.load()
	if err != nil {
		res = Result{Name: j.Ref.String(), File: j.Ref.String(), Status: Error, Failure: err.Error()}
	} else {
		if j.Opts.Verbose {
			j.Opts.Progress = os.Stderr // report.go: the parent forwards it
		}
		res = RunOne(ctx, sc, j.Opts)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

func runWorker(ctx context.Context, r Ref, opts Options) Result {
	job, err := json.Marshal(workerJob{Ref: r, Opts: opts})
	if err != nil {
		return Result{Name: r.String(), File: r.String(), Status: Error, Failure: "worker job: " + err.Error()}
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{"cardharness-scenario-worker"}
	cmd.Env = append(os.Environ(), workerEnv+"="+string(job))
	// Stopped by SIGTERM first, so it reports and cleans its stack up.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = workerGrace
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var progress sync.WaitGroup
	if opts.OnStep != nil {
		if pr, pw, err := os.Pipe(); err == nil {
			cmd.ExtraFiles = []*os.File{pw}
			cmd.Env = append(cmd.Env, workerProgressEnv+"=3")
			progress.Add(1)
			go func() {
				defer progress.Done()
				defer pr.Close()
				sc := bufio.NewScanner(pr)
				for sc.Scan() {
					var step, steps int
					if _, err := fmt.Sscanf(sc.Text(), "%d %d", &step, &steps); err == nil {
						opts.OnStep(step, steps)
					}
				}
			}()
		}
	}
	if opts.Verbose && opts.Progress != nil {
		cmd.Stderr = io.MultiWriter(&stderr, &lineWriter{w: opts.Progress}) // report.go
	}
	start := time.Now()
	err = cmd.Start()
	if len(cmd.ExtraFiles) > 0 {
		cmd.ExtraFiles[0].Close() // the child has its copy
	}
	if err == nil {
		err = cmd.Wait()
	}
	progress.Wait()
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

// Filter selects scenarios: Run matches a scenario's name or path; with
// Tags, a scenario needs one of them; with SkipTags, none of them.
type Filter struct {
	Run            *regexp.Regexp
	Tags, SkipTags []string
}

// Select keeps the refs the filter selects. A scenario that does not parse
// is kept whatever the filter, so that Check reports it.
func Select(refs []Ref, f Filter) ([]Ref, error) {
	if f.Run == nil && len(f.Tags) == 0 && len(f.SkipTags) == 0 {
		return refs, nil
	}
	var out []Ref
	for _, r := range refs {
		sc, err := r.load()
		if err != nil {
			out = append(out, r)
			continue
		}
		if f.Run != nil && !f.Run.MatchString(sc.Name) && !f.Run.MatchString(r.String()) {
			continue
		}
		if len(f.Tags) > 0 && !anyTag(sc.Tags, f.Tags) {
			continue
		}
		if anyTag(sc.Tags, f.SkipTags) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func anyTag(have, want []string) bool {
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}
