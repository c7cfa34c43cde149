package scenarios

// The runner: one scenario in this process, setup, then its steps.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/cardharness/cardharness/harness/vclock"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/fault"
	"github.com/cardharness/cardharness/vcard/gids"
	"github.com/cardharness/cardharness/vcard/trace"
)

// RunOne runs one parsed scenario in this process. It leaves sc as parsed
// (it runs a copy: forRun), so one parsed scenario can be run again, or
// in several goroutines at once (a sweep's cells).
func RunOne(ctx context.Context, sc *Scenario, opts Options) Result {
	sc = sc.forRun()
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.Stack == "" {
		opts.Stack = "pcscd"
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	start := time.Now()
	seed := int64(1)
	if sc.SeedSet {
		seed = sc.Seed
	}
	if opts.SeedSet {
		seed = opts.Seed
	}
	sc.Seed = seed
	applyHostKnobs(sc, opts.HostKnobs) // sweep.go: a sweep's variant
	res := Result{Name: sc.Name, File: sc.File, Seed: seed, Stack: opts.Stack, Variant: opts.Variant}
	if opts.Reader != "" {
		res.Stack = "reader " + opts.Reader
	}
	e := &env{ctx: ctx, sc: sc, opts: opts, clock: vclock.New(epoch), rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9E3779B97F4A7C15)),
		cards: map[string]*cardEnv{}, hosts: map[string]*winhost.Host{}, hostKnobs: map[string]winhost.Knobs{}, procs: map[string]*winhost.Process{}, vars: map[string]Values{}}
	defer e.close()
	res.Faults, res.Hosts = e.faults(), e.hostProfiles() // report fields
	if err := e.setup(); err != nil {
		res.Status, res.Failure = Error, "setup: "+err.Error()
		if ctx.Err() != nil {
			res.Failure = stopReason(ctx, opts.Timeout, 0, len(sc.Steps)) + " (in setup: " + err.Error() + ")"
		}
		res.Duration = time.Since(start)
		res.APDUs = e.apdus.Load()
		return res
	}
	res.Status = Pass
	if !opts.noTimeline {
		e.stepEnd(-1, nil, nil) // timeline: the state after setup
	}
	for i, st := range sc.Steps {
		if stopped(ctx) {
			break
		}
		e.progress(i+1, len(sc.Steps))
		e.stepBegin(i, st) // timeline: trace markers
		sr := e.runStep(i, st)
		if !opts.noTimeline {
			e.stepEnd(i, st, &sr) // timeline: state and events
		}
		res.Steps = append(res.Steps, sr)
		if sr.Status == Skip {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s:%d %s: %s", st.File, st.Line, st.Do, sr.Note))
			continue
		}
		if sr.Status == Fail {
			res.Status = Fail
			res.Failure = fmt.Sprintf("%s:%d: step %d (%s)%s: %s", st.File, st.Line, i+1, st.Do, stepLabel(st), sr.Error)
			res.Diff = sr.Diff
			break
		}
	}
	if err := ctx.Err(); err != nil {
		// The scenario was stopped (its timeout, or the run was
		// interrupted): whatever the step in flight reported is a symptom,
		// the stop is the cause. The steps run so far stay in the result.
		res.Status, res.Diff = Error, ""
		res.Failure = stopReason(ctx, opts.Timeout, len(res.Steps), len(sc.Steps))
	}
	if res.Status == Pass && !sc.Invariants.Skip {
		if err := e.checkInvariants(); err != nil {
			res.Status, res.Failure = Fail, "card invariants after the scenario: "+err.Error()
		}
	}
	res.Timeline = e.tl().steps // report field
	res.APDUs = e.apdus.Load()
	if (res.Status != Pass || opts.TraceAll) && opts.TraceDir != "" {
		res.Traces = e.saveTraces(opts.TraceDir)
	}
	res.Duration = time.Since(start)
	return res
}

// forRun is a copy of sc that a run may change: its seed, its hosts'
// knobs (a sweep's variant) and its variables (${i} of a repeat). The
// rest (cards, steps, their YAML nodes) is only read by a run and is
// shared with sc; TestRunOneLeavesScenarioAsParsed checks both.
func (sc *Scenario) forRun() *Scenario {
	c := *sc
	c.Vars = maps.Clone(sc.Vars)
	if sc.Hosts != nil {
		c.Hosts = make(map[string]*HostDecl, len(sc.Hosts))
		for n, h := range sc.Hosts {
			hc := *h
			hc.Knobs = maps.Clone(h.Knobs)
			c.Hosts[n] = &hc
		}
	}
	return &c
}

func stepLabel(st *Step) string {
	if st.Name != "" {
		return " " + fmt.Sprintf("%q", st.Name)
	}
	return ""
}

func (e *env) close() {
	if e.relay != nil {
		_ = e.relay.Close()
	}
	if e.stack != nil {
		e.stack.close()
	}
	if e.tmpDir != "" {
		os.RemoveAll(e.tmpDir)
	}
}

// setup builds the cards and hosts.
func (e *env) setup() error {
	names := sortedStrings(keysOf(e.sc.Cards))
	if e.opts.Reader != "" && len(names) > 1 {
		return fmt.Errorf("--reader runs scenarios with one card; %q declares %d", e.sc.Name, len(names))
	}
	// cardids first, so that cardid_from can copy.
	ids := map[string]fs.CardID{}
	for _, n := range names {
		d := e.sc.Cards[n]
		var id fs.CardID
		if d.CardID != "" {
			b, _ := hexDecode(d.CardID)
			copy(id[:], b)
		} else {
			for i := range id {
				id[i] = byte(e.rng.UintN(256))
			}
		}
		ids[n] = id
	}
	for _, n := range names {
		if from := e.sc.Cards[n].CardIDFrom; from != "" {
			ids[n] = ids[from]
		}
	}
	var virt []vcard.Card
	for _, n := range names {
		d := e.sc.Cards[n]
		c := &cardEnv{decl: d, pin: d.PIN, cardID: ids[n]}
		key, _ := hexDecode(d.AdminKey)
		copy(c.admin[:], key)
		mode, err := minidriver.ParseCacheMode(d.CacheMode)
		if err != nil {
			return err
		}
		// Admin challenges from the seed too (same seed, same APDUs).
		c.mdOpts = minidriver.Options{CacheMode: mode, ReadOnly: d.ReadOnly, MaxContainers: d.MaxContainers, SessionPINs: d.SessionPINs,
			Rand: rand.NewChaCha8(seedBytes(e.sc.Seed, "admin challenge "+n))}
		e.cards[n] = c
		if e.opts.Reader != "" {
			continue
		}
		// The scenario's seed fixes the card's keys too (gids.Options.KeySeed:
		// keys from a pool of public test keys; for tests only), so that one
		// seed gives the same APDUs run after run, on either stack.
		rb := seedBytes(e.sc.Seed, n)
		keySeed := rb[:]
		if e.opts.RandomKeys {
			keySeed = nil
		}
		g, err := gids.New(gids.Options{Rand: rand.NewChaCha8(rb), KeySeed: keySeed, Signatures: e.opts.sigMemo})
		if err != nil {
			return err
		}
		if d.Profile == "initialized" {
			if err := g.Initialize(gids.InitParams{PIN: d.PIN, AdminKey: c.admin, CardID: ids[n]}); err != nil {
				return fmt.Errorf("card %s: %w", n, err)
			}
		}
		wrap, err := fault.Wrap(g, append(append([]string{}, d.Faults...), e.opts.CardFaults...)...)
		if err != nil {
			return fmt.Errorf("card %s: %w", n, err)
		}
		c.gids, c.wrap = g, wrap
		// A trace is only read where saveTraces writes it: with no
		// TraceDir (a sweep, the benchmarks' sweep) there is none; with
		// one it is kept in memory and encoded only if it is saved.
		var card vcard.Card = wrap
		if e.opts.TraceDir != "" {
			c.trace = e.traceWriter(n) // timeline.go: masking, step markers
			card = trace.Card(wrap, c.trace)
		}
		virt = append(virt, countingCard{card, &e.apdus})
	}
	switch {
	case e.opts.Reader != "":
		if err := e.setupRealReader(); err != nil {
			return err
		}
	case e.opts.Stack == "direct":
		for i, n := range names {
			c := e.cards[n]
			c.reader = "Virtual GIDS " + n
			c.source = winhost.FromReader(pcsc.NewReader(virt[i]))
			card := virt[i]
			c.toolEnv = func() ([]string, error) { return e.toolStackFor(card) }
		}
	default:
		st, err := startStack(e.ctx, virt, e.opts)
		if err != nil {
			return err
		}
		e.stack = st
		for i, n := range names {
			c := e.cards[n]
			c.reader = st.readers[i]
			reader := c.reader
			c.source = func() (pcsc.Transport, error) { return st.connect(e.ctx, reader) }
			c.toolEnv = func() ([]string, error) { return st.st.Env(), nil }
		}
	}
	for _, hn := range sortedStrings(keysOf(e.sc.Hosts)) {
		hd := e.sc.Hosts[hn]
		k, err := knobs(hd, e.opts.HostProfile)
		if err != nil {
			return err
		}
		pin := hd.UserPIN
		if pin == "" && len(names) > 0 {
			pin = e.sc.Cards[names[0]].PIN
		}
		e.hostKnobs[hn] = *k // expect_if conditions (sweep.go)
		e.hosts[hn] = winhost.New(winhost.Config{Name: hn, Clock: e.clock, Knobs: k, Seed: uint64(e.sc.Seed), UserPIN: pin})
	}
	return nil
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func seedBytes(seed int64, name string) [32]byte {
	var b [32]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(uint64(seed) >> (8 * i))
	}
	copy(b[8:], name)
	return b
}

func hexDecode(s string) ([]byte, error) {
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		_, err := fmt.Sscanf(s[2*i:2*i+2], "%02x", &v)
		if err != nil {
			return nil, err
		}
		b[i] = v
	}
	return b, nil
}

func (e *env) setupRealReader() error {
	if err := pcsc.UseSocket(os.Getenv(pcsc.SocketEnv)); err != nil && os.Getenv(pcsc.SocketEnv) != "" {
		return err
	}
	client, err := pcsc.NewClient()
	if err != nil {
		return err
	}
	for _, c := range e.cards {
		c.reader = e.opts.Reader
		c.source = func() (pcsc.Transport, error) {
			t, err := client.Connect(e.ctx, e.opts.Reader)
			if err != nil {
				return nil, err
			}
			return countingTransport{t, &e.apdus}, nil // reader.go
		}
		c.toolEnv = func() ([]string, error) { return nil, nil }
	}
	return nil
}

// stopped reports whether the scenario must stop: checked before every step
// and every round of a repeat, so a timeout or a signal ends a run within a
// step.
func stopped(ctx context.Context) bool { return ctx.Err() != nil }

func stopReason(ctx context.Context, timeout time.Duration, done, total int) string {
	why := "interrupted"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		why = fmt.Sprintf("timed out after %s (--timeout)", timeout)
	}
	if done == 0 {
		return why + " before the first step"
	}
	return fmt.Sprintf("%s during step %d of %d; the steps before it are reported", why, done, total)
}

// progress reports the step about to run (a live progress line).
func (e *env) progress(step, steps int) {
	if e.opts.OnStep != nil {
		e.opts.OnStep(step, steps)
	}
}

// runStep executes one step and checks its expectations.
func (e *env) runStep(i int, st *Step) StepResult {
	sr := StepResult{Index: i + 1, Line: st.Line, Do: st.Do, Name: st.Name, Status: Pass}
	a := st.action
	if e.opts.Reader != "" && a.Internals {
		sr.Status, sr.Note = Skip, "needs card internals (not possible with --reader)"
		return sr
	}
	start := time.Now()
	s := &stepCtx{e: e, st: st}
	if st.Do == "repeat" {
		// times: may come from a saved value: bounded like a literal.
		if err := s.prepare(); err != nil {
			sr.Status, sr.Error = Fail, err.Error()
			return sr
		}
		return e.runRepeat(sr, s, start)
	}
	var res Values
	err := s.prepare()
	if err == nil {
		res, err = a.Run(e, s)
	}
	sr.Duration = time.Since(start)
	for k := range res {
		if f := a.field(k); f == nil || f.ExpectOnly {
			// The declaration is the contract expect: and $var.field are
			// checked against; a result outside it is a bug here.
			sr.Status, sr.Error = Fail, fmt.Sprintf("internal error: action %s returned the undeclared result field %q", a.Name, k)
			return sr
		}
	}
	if st.Save != "" {
		if res == nil {
			res = Values{}
		}
		e.vars[st.Save] = res
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		sr.Status, sr.Error = Fail, pe.Error()
		return sr
	}
	exp := e.expectFor(st) // sweep.go: expect_if
	if msg, diff := checkError(exp, err); msg != "" {
		sr.Status, sr.Error, sr.Diff = Fail, msg, diff
		return sr
	}
	if exp.ExpectResult != nil {
		if diff := compareResult(exp.ExpectResult, res, s.resolve); diff != "" {
			sr.Status, sr.Error, sr.Diff = Fail, "result differs from expect.result"+outputNote(exp.ExpectResult, res), diff
			return sr
		}
	}
	if err := e.checkCounters(); err != nil && !e.sc.Invariants.CountersMayGoBack {
		sr.Status, sr.Error = Fail, err.Error()
	}
	return sr
}

// runRepeat runs the nested steps times: times; ${i} is the round.
func (e *env) runRepeat(sr StepResult, s *stepCtx, start time.Time) StepResult {
	n := s.int("times")
	for round := 1; round <= n; round++ {
		if stopped(e.ctx) {
			sr.Status, sr.Error = Fail, fmt.Sprintf("stopped in round %d of %d", round, n)
			sr.Duration = time.Since(start)
			return sr
		}
		e.sc.Vars["i"] = fmt.Sprint(round)
		for j, sub := range s.st.Sub {
			r := e.runStep(j, sub)
			if r.Status == Fail {
				r.Error = fmt.Sprintf("round %d of %d: %s:%d (%s): %s", round, n, sub.File, sub.Line, sub.Do, r.Error)
				r.Index, r.Line, r.Do = sr.Index, sr.Line, sr.Do
				r.Duration = time.Since(start)
				return r
			}
		}
	}
	sr.Duration = time.Since(start)
	return sr
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (e *env) saveTraces(dir string) []string {
	if err := os.MkdirAll(dir, 0o700); err != nil { // traces are private (report.go)
		return nil
	}
	var out []string
	for _, n := range sortedStrings(keysOf(e.cards)) {
		c := e.cards[n]
		if c.trace == nil || c.trace.Len() == 0 {
			continue
		}
		p := filepath.Join(dir, unsafeName.ReplaceAllString(e.sc.Name, "_")+"."+n+".jsonl")
		var b bytes.Buffer
		if _, err := c.trace.WriteTo(&b); err != nil {
			continue
		}
		if err := writePrivate(p, b.Bytes()); err == nil { // report.go
			out = append(out, p)
		}
	}
	return out
}
