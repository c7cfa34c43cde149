package scenarios

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/harness/vclock"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/fault"
	"github.com/cardharness/cardharness/vcard/gids"
	"github.com/cardharness/cardharness/vcard/trace"
	"github.com/cardharness/cardharness/winerr"
)

// Options configure a run.
type Options struct {
	// Stack is "pcscd" (each scenario on its own private pcscd + vpcd, in
	// its own process) or "direct" (cards in process, no sockets).
	Stack string
	// Reader runs against a real card in that reader (system pcscd): the
	// scenario's first card is that card; steps that need card internals
	// are skipped and reported.
	Reader string
	// Parallel is how many scenarios run at once (default 1).
	Parallel int
	// Seed overrides every scenario's seed when SeedSet.
	Seed    int64
	SeedSet bool
	// CardFaults are applied to every virtual card (vcard/fault names).
	CardFaults []string
	// TraceDir receives the APDU traces of failed scenarios ("" : none).
	TraceDir string
	// Timeout bounds one scenario (default 5 minutes).
	Timeout time.Duration
	// Progress receives one line per finished scenario (nil: none).
	Progress io.Writer
	// Verbose prints each step's result and timeline events to Progress
	// as it runs (timeline.go).
	Verbose bool
	// TraceSecrets keeps PINs and key material in APDU traces (default:
	// masked, vcard/trace).
	TraceSecrets bool
	Log          *slog.Logger
}

// Status of a scenario or step.
const (
	Pass  = "pass"
	Fail  = "fail"
	Skip  = "skip"
	Error = "error" // the scenario could not run (setup failed)
)

// StepResult is one step's outcome.
type StepResult struct {
	Index    int           `json:"index"`
	Line     int           `json:"line"`
	Do       string        `json:"do"`
	Name     string        `json:"name,omitempty"`
	Status   string        `json:"status"`
	Error    string        `json:"error,omitempty"`
	Diff     string        `json:"diff,omitempty"`
	Note     string        `json:"note,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Result is one scenario's outcome.
type Result struct {
	Name     string        `json:"name"`
	File     string        `json:"file"`
	Status   string        `json:"status"`
	Seed     int64         `json:"seed"`
	Stack    string        `json:"stack"`
	Failure  string        `json:"failure,omitempty"`
	Diff     string        `json:"diff,omitempty"`
	Steps    []StepResult  `json:"steps"`
	Skipped  []string      `json:"skipped,omitempty"`
	Traces   []string      `json:"traces,omitempty"`
	Duration time.Duration `json:"duration_ns"`

	// Report fields (timeline.go, report.go).
	Faults   []string       `json:"faults,omitempty"`
	Hosts    []string       `json:"hosts,omitempty"` // host profiles: name and knobs as written
	Timeline []TimelineStep `json:"timeline,omitempty"`
}

// RunOne runs one parsed scenario in this process.
func RunOne(ctx context.Context, sc *Scenario, opts Options) Result {
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
	res := Result{Name: sc.Name, File: sc.File, Seed: seed, Stack: opts.Stack}
	if opts.Reader != "" {
		res.Stack = "reader " + opts.Reader
	}
	e := &env{ctx: ctx, sc: sc, opts: opts, clock: vclock.New(epoch), rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9E3779B97F4A7C15)),
		cards: map[string]*cardEnv{}, hosts: map[string]*winhost.Host{}, procs: map[string]*winhost.Process{}, vars: map[string]Values{}}
	defer e.close()
	res.Faults, res.Hosts = e.faults(), e.hostProfiles() // report fields
	if err := e.setup(); err != nil {
		res.Status, res.Failure = Error, "setup: "+err.Error()
		res.Duration = time.Since(start)
		return res
	}
	res.Status = Pass
	e.stepEnd(-1, nil, nil) // timeline: the state after setup
	for i, st := range sc.Steps {
		e.stepBegin(i, st) // timeline: trace markers
		sr := e.runStep(i, st)
		e.stepEnd(i, st, &sr) // timeline: state and events
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
	if res.Status == Pass && !sc.Invariants.Skip {
		if err := e.checkInvariants(); err != nil {
			res.Status, res.Failure = Fail, "card invariants after the scenario: "+err.Error()
		}
	}
	res.Timeline = e.tl().steps // report field
	if res.Status != Pass && opts.TraceDir != "" {
		res.Traces = e.saveTraces(opts.TraceDir)
	}
	res.Duration = time.Since(start)
	return res
}

func stepLabel(st *Step) string {
	if st.Name != "" {
		return " " + fmt.Sprintf("%q", st.Name)
	}
	return ""
}

func (e *env) close() {
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
		c.mdOpts = minidriver.Options{CacheMode: mode, ReadOnly: d.ReadOnly, MaxContainers: d.MaxContainers}
		e.cards[n] = c
		if e.opts.Reader != "" {
			continue
		}
		g, err := gids.New(gids.Options{Rand: rand.NewChaCha8(seedBytes(e.sc.Seed, n))})
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
		c.trace = &bytes.Buffer{}
		tw := e.traceWriter(n, c.trace) // timeline.go: masking, step markers
		virt = append(virt, trace.Card(wrap, tw))
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
		st, err := startStack(e.ctx, virt, e.opts.Log)
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
		k, err := knobs(hd)
		if err != nil {
			return err
		}
		pin := hd.UserPIN
		if pin == "" && len(names) > 0 {
			pin = e.sc.Cards[names[0]].PIN
		}
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
		c.source = func() (pcsc.Transport, error) { return client.Connect(e.ctx, e.opts.Reader) }
		c.toolEnv = func() ([]string, error) { return nil, nil }
	}
	return nil
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
		return e.runRepeat(sr, s, start)
	}
	res, err := a.Run(e, s)
	sr.Duration = time.Since(start)
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
	if msg, diff := checkError(st, err); msg != "" {
		sr.Status, sr.Error, sr.Diff = Fail, msg, diff
		return sr
	}
	if st.ExpectResult != nil {
		if diff := compareResult(st.ExpectResult, res, s.resolve); diff != "" {
			sr.Status, sr.Error, sr.Diff = Fail, "result differs from expect.result", diff
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
	n := s.int("times", 1)
	for round := 1; round <= n; round++ {
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

func checkError(st *Step, err error) (msg, diff string) {
	want := st.ExpectError
	if want == "" || want == "none" {
		if err != nil {
			return "unexpected error: " + err.Error(), plainDiff(map[string]any{"error": "none"}, map[string]any{"error": errName(err)})
		}
		return "", ""
	}
	if err == nil {
		return "expected error " + want + ", the step succeeded", plainDiff(map[string]any{"error": want}, map[string]any{"error": "none"})
	}
	code, ok := codeOf(err)
	if !ok || code != errorCode(want) {
		return fmt.Sprintf("expected error %s, got: %v", want, err), plainDiff(map[string]any{"error": want}, map[string]any{"error": errName(err)})
	}
	return "", ""
}

func errName(err error) string {
	if code, ok := codeOf(err); ok {
		return winerr.Code(code).Name()
	}
	return "error: " + err.Error()
}

// compareResult checks the fields the scenario names; list values compare
// as lists, everything else as text.
func compareResult(want *yaml.Node, got Values, resolve func(string) string) string {
	w := map[string]any{}
	g := map[string]any{}
	for i := 0; i+1 < len(want.Content); i += 2 {
		k, v := want.Content[i].Value, want.Content[i+1]
		obs, ok := got[k]
		switch v.Kind {
		case yaml.SequenceNode:
			var list []string
			for _, x := range v.Content {
				list = append(list, resolve(x.Value))
			}
			w[k] = list
			if !ok {
				g[k] = absent
				continue
			}
			g[k] = asStrings(obs)
		default:
			if k == "output_contains" {
				out := fmt.Sprint(got["output"])
				w[k] = resolve(v.Value)
				g[k] = w[k]
				if !strings.Contains(out, resolve(v.Value)) {
					g[k] = "<not in output>"
				}
				continue
			}
			w[k] = resolve(v.Value)
			if !ok {
				g[k] = absent
				continue
			}
			g[k] = fmt.Sprint(obs)
		}
	}
	return plainDiff(w, g)
}

func asStrings(v any) any {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return fmt.Sprint(v)
}

// checkCounters: cardcf counters only move forward (per card, compared
// with what was seen after the previous step).
func (e *env) checkCounters() error {
	for _, n := range sortedStrings(keysOf(e.cards)) {
		c := e.cards[n]
		if c.gids == nil {
			continue
		}
		b, ok := c.gids.DO(fs.EFEveryoneReadUserWriteAc, fs.DOCardCF)
		if !ok {
			continue
		}
		cf, err := fs.ParseCardCF(b)
		if err != nil {
			return fmt.Errorf("card %s: cardcf unreadable: %v", n, err)
		}
		if p := c.lastCF; p != nil {
			if cf.PinsFreshness < p.PinsFreshness || cf.ContainersFreshness < p.ContainersFreshness || cf.FilesFreshness < p.FilesFreshness {
				return fmt.Errorf("card %s: cardcf went back from % X to % X (set invariants: counters_may_go_back: true if the scenario means it)", n, p.Bytes(), cf.Bytes())
			}
		}
		c.lastCF = &cf
	}
	return nil
}

// checkInvariants: cmapfile and keymap agree, at most one default, no
// orphan key files.
func (e *env) checkInvariants() error {
	var problems []string
	for _, n := range sortedStrings(keysOf(e.cards)) {
		c := e.cards[n]
		md, closeFn, err := e.mdClient(c)
		if err != nil {
			problems = append(problems, fmt.Sprintf("card %s: %v", n, err))
			continue
		}
		cmap, err1 := md.Containers(e.ctx)
		km, err2 := md.KeyMap(e.ctx)
		closeFn()
		if err := errors.Join(err1, err2); err != nil {
			problems = append(problems, fmt.Sprintf("card %s: %v", n, err))
			continue
		}
		if err := fs.CheckConsistent(cmap, km); err != nil {
			problems = append(problems, fmt.Sprintf("card %s: cmapfile and keymap disagree: %v", n, err))
		}
		defaults := 0
		for i, r := range cmap {
			if r.IsDefault() && cmap.Valid(i) {
				defaults++
			}
		}
		if defaults > 1 {
			problems = append(problems, fmt.Sprintf("card %s: %d default containers (at most one)", n, defaults))
		}
		if c.gids != nil {
			for _, kref := range c.gids.KeyRefs() {
				i := int(kref) - fs.FirstKeyRef
				if !cmap.Valid(i) {
					problems = append(problems, fmt.Sprintf("card %s: orphan key %02X (no valid cmapfile record %d)", n, kref, i))
				}
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
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
		if err := writePrivate(p, c.trace.Bytes()); err == nil { // report.go
			out = append(out, p)
		}
	}
	return out
}

// stackHandle is a scenario's private pcscd with its PC/SC client.
type stackHandle struct {
	st      *stack.Stack
	client  *pcsc.Client
	readers []string
}

func startStack(ctx context.Context, cards []vcard.Card, log *slog.Logger) (*stackHandle, error) {
	st, err := stack.Start(ctx, stack.Config{Cards: cards, Slots: max(2, len(cards)), Log: log})
	if err != nil {
		return nil, err
	}
	if err := pcsc.UseSocket(st.SocketPath()); err != nil {
		st.Close()
		return nil, err
	}
	client, err := pcsc.NewClient()
	if err != nil {
		st.Close()
		return nil, err
	}
	h := &stackHandle{st: st, client: client}
	for i := range cards {
		h.readers = append(h.readers, st.Slots()[i].Reader)
	}
	return h, nil
}

func (h *stackHandle) connect(ctx context.Context, reader string) (pcsc.Transport, error) {
	return h.client.Connect(ctx, reader)
}

func (h *stackHandle) close() {
	if h.client != nil {
		h.client.Close()
	}
	h.st.Close()
}

// toolStackFor gives a tool step in direct mode a stack of its own holding
// the same in-process card (this process never binds libpcsclite to it:
// only the tool, a subprocess, talks to that pcscd).
func (e *env) toolStackFor(card vcard.Card) ([]string, error) {
	if e.stack == nil {
		st, err := stack.Start(e.ctx, stack.Config{Cards: []vcard.Card{card}, Slots: 2, Log: e.opts.Log})
		if err != nil {
			return nil, err
		}
		e.stack = &stackHandle{st: st}
	}
	return e.stack.st.Env(), nil
}

// Summary counts results by status.
func Summary(results []Result) map[string]int {
	m := map[string]int{}
	for _, r := range results {
		m[r.Status]++
	}
	return m
}

func sortResults(rs []Result) {
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Name < rs[j].Name })
}
