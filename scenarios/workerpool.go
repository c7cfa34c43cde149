package scenarios

// Long-lived workers for Options.ReuseStacks: one worker process per
// Parallel slot, started on first use, running scenario after scenario on
// its own reused private pcscd (stackpool.go). Jobs go in on the worker's
// stdin and results come back on its stdout, one JSON message a line.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

const workerLoopEnv = "_CARDHARNESS_SCENARIO_WORKER_LOOP"

// workerMsg is one line from a long-lived worker: a step of the scenario
// in flight, or its result.
type workerMsg struct {
	Step   int     `json:"step,omitempty"`
	Steps  int     `json:"steps,omitempty"`
	Result *Result `json:"result,omitempty"`
}

func init() {
	if os.Getenv(workerLoopEnv) != "" {
		os.Exit(runWorkerLoop(os.Stdin, os.Stdout))
	}
}

// runWorkerLoop runs jobs until stdin closes or a signal stops it (the
// scenario in flight then reports what it did, as in runWorkerMain).
func runWorkerLoop(in io.Reader, out io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	pool, err := newStackPool()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario worker:", err)
		return 2
	}
	defer pool.close()
	workerPool = pool
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	for ctx.Err() == nil {
		var j workerJob
		if err := dec.Decode(&j); err != nil {
			if err == io.EOF {
				return 0
			}
			fmt.Fprintln(os.Stderr, "scenario worker:", err)
			return 2
		}
		j.Opts.OnStep = func(step, steps int) { _ = enc.Encode(workerMsg{Step: step, Steps: steps}) }
		if j.Opts.Verbose {
			j.Opts.Progress = os.Stderr // the parent forwards it
		}
		var res Result
		sc, err := j.Ref.load()
		if err != nil {
			res = Result{Name: j.Ref.String(), File: j.Ref.String(), Status: Error, Failure: err.Error()}
		} else {
			res = RunOne(ctx, sc, j.Opts)
		}
		if err := enc.Encode(workerMsg{Result: &res}); err != nil {
			return 2
		}
	}
	return 0
}

// loopWorker is the parent's side of one long-lived worker.
type loopWorker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	dec    *json.Decoder
	stderr *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	fwd io.Writer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fwd != nil {
		_, _ = b.fwd.Write(p)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) reset() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

func startLoopWorker(ctx context.Context, opts Options) (*loopWorker, error) {
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{"cardharness-scenario-worker"}
	cmd.Env = append(os.Environ(), workerLoopEnv+"=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = workerGrace
	w := &loopWorker{cmd: cmd, stderr: &syncBuffer{}}
	if opts.Verbose && opts.Progress != nil {
		w.stderr.fwd = &lineWriter{w: opts.Progress} // report.go
	}
	cmd.Stderr = w.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w.stdin, w.dec = stdin, json.NewDecoder(stdout)
	return w, nil
}

// run sends one job and waits for its result. A worker that breaks the
// protocol (died, wrote garbage) is stopped; ok is false and the caller
// starts a new one for the next job.
func (w *loopWorker) run(r Ref, opts Options) (res Result, ok bool) {
	start := time.Now()
	w.stderr.reset()
	onStep := opts.OnStep
	opts.OnStep, opts.OnProgress, opts.Progress = nil, nil, nil
	fail := func(err error) (Result, bool) {
		w.stop()
		return Result{Name: r.String(), File: r.String(), Status: Error, Duration: time.Since(start), Stack: opts.Stack,
			Failure: fmt.Sprintf("worker process failed (%v): %s", err, tailLines(w.stderr.reset(), 15))}, false
	}
	if err := json.NewEncoder(w.stdin).Encode(workerJob{Ref: r, Opts: opts}); err != nil {
		return fail(err)
	}
	for {
		var m workerMsg
		if err := w.dec.Decode(&m); err != nil {
			return fail(err)
		}
		if m.Result != nil {
			return *m.Result, true
		}
		if onStep != nil {
			onStep(m.Step, m.Steps)
		}
	}
}

func (w *loopWorker) stop() {
	w.stdin.Close() // the worker's loop ends at EOF
	_ = w.cmd.Wait()
}

// workerSet hands out long-lived workers, at most n at once.
type workerSet struct {
	ctx  context.Context
	opts Options
	free chan *loopWorker // nil entries: a worker not started yet
}

func newWorkerSet(ctx context.Context, n int, opts Options) *workerSet {
	s := &workerSet{ctx: ctx, opts: opts, free: make(chan *loopWorker, n)}
	for range n {
		s.free <- nil
	}
	return s
}

func (s *workerSet) run(r Ref, opts Options) Result {
	w := <-s.free
	if w == nil {
		var err error
		if w, err = startLoopWorker(s.ctx, s.opts); err != nil {
			s.free <- nil
			return Result{Name: r.String(), File: r.String(), Status: Error, Stack: opts.Stack, Failure: "worker process: " + err.Error()}
		}
	}
	res, ok := w.run(r, opts)
	if !ok {
		w = nil
	}
	s.free <- w
	return res
}

// close stops the idle workers (all of them, once every job is done).
func (s *workerSet) close() {
	for range cap(s.free) {
		if w := <-s.free; w != nil {
			w.stop()
		}
	}
}
