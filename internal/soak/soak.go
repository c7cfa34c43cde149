// Package soak runs many GIDS cards on one private stack for a bounded
// time under random minidriver traffic, link faults and card kills, and
// counts what went wrong (`make soak`, cmd/soak; issue 8 finding 8).
//
// Each card has a worker that repeats a random step: a minidriver call
// over PC/SC (reads, PIN, key generation, signing, deletion), a link fault
// (remove/insert, a hang or a drop on the next APDU), or a kill: the card's
// store is torn at a random commit step or not at all, the card is ejected,
// re-opened from its --state directory, checked and inserted again. The
// run fails if an operation outlives the host deadline by more than Slack
// (2 s), no card succeeds at anything for 30 s (a stall), a card recovers
// a panic, a card's state does not decode after a restart, an operation
// fails with no fault to explain it, or memory grows (heap and RSS are
// sampled).
package soak

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/gids"
	"github.com/cardharness/cardharness/vcard/store"
	"github.com/cardharness/cardharness/vcard/vpcd"
	"github.com/cardharness/cardharness/winerr"
)

// Config of a soak run.
type Config struct {
	Cards    int           // 1..16 (default 16)
	Duration time.Duration // default 10 minutes
	// Deadline is the host deadline of one operation (its context); an
	// operation still running Deadline+Slack after it started is a hang.
	Deadline time.Duration // default 5s
	StateDir string        // default: a temporary directory, removed after
	Seed     uint64        // default: from the clock
	// SampleEvery is the memory sampling period (default 5s).
	SampleEvery time.Duration
	Progress    io.Writer // a line per sample; nil: none
	// Faults lists the fault kinds to inject: remove, hang, drop, kill
	// (kill includes the torn variants). Nil: all of them.
	Faults []string
	// QuickReinsert puts removed cards back within 0..600 ms, inside
	// pcscd's poll period (see minRemoval).
	QuickReinsert bool
}

// StallAfter: no successful operation on any card for this long is a
// stall.
const StallAfter = 30 * time.Second

// RecoverWithin: a card must answer a new connection this soon after a
// fault ended.
const RecoverWithin = 10 * time.Second

// Slack is how far past its deadline an operation may return: the pcsc
// layer gives up at the deadline, the rest is scheduling. On two cores
// shared by 16 workers' RSA key generation (and a second soak) 1.26 s was
// seen once; a real hang is one that does not return at all.
const Slack = 2 * time.Second

const (
	pin      = "123456"
	wrongPIN = "000000"
)

var adminKey = [24]byte{1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8}

// Summary is what a run counted.
type Summary struct {
	Cards    int
	Elapsed  time.Duration
	Seed     uint64
	Ops      map[string]int // successful operations by name
	Failed   map[string]int // operations that failed as their fault said they would
	Faults   map[string]int // injected: remove, hang, drop, tear-write, tear-sync, tear-rename, kill
	Restarts int            // cards re-opened from their state
	Retries  map[string]int // connections refused while a card came back, by fault

	Hangs            []string // operations that outlived their deadline
	Panics           int      // panics recovered by cards
	DecodeFailures   []string // states that did not decode after a restart
	UnexpectedErrors []string // failures with no fault to explain them (first few)
	UnexpectedCount  int

	// StalledAt is when the last successful operation of a stall of
	// StallAfter or more happened (0: no stall): every card stuck at
	// once points at pcscd or the stack, not at one card.
	StalledAt time.Duration

	Samples     []Sample
	MemoryGrown string // why memory does not look flat, "" if it does
}

// Sample is one memory measurement.
type Sample struct {
	At        time.Duration
	HeapBytes uint64 // live heap after a GC
	RSSBytes  uint64 // this process
	PcscdRSS  uint64 // the stack's pcscd (0 if unknown)
}

// OK reports whether the run found nothing wrong.
func (s *Summary) OK() bool {
	return s.StalledAt == 0 && len(s.Hangs) == 0 && s.Panics == 0 && len(s.DecodeFailures) == 0 && s.UnexpectedCount == 0 && s.MemoryGrown == ""
}

// Write prints the summary.
func (s *Summary) Write(w io.Writer) {
	total := func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	}
	fmt.Fprintf(w, "soak: %d cards, %v, seed %d\n", s.Cards, s.Elapsed.Round(time.Second), s.Seed)
	fmt.Fprintf(w, "  operations ok:      %d  %s\n", total(s.Ops), counts(s.Ops))
	fmt.Fprintf(w, "  failed as expected: %d  %s\n", total(s.Failed), counts(s.Failed))
	fmt.Fprintf(w, "  faults injected:    %d  %s\n", total(s.Faults), counts(s.Faults))
	fmt.Fprintf(w, "  reconnect retries:  %d  %s (within %v of the fault)\n", total(s.Retries), counts(s.Retries), RecoverWithin)
	fmt.Fprintf(w, "  card restarts:      %d (state decoded: %d, failed: %d)\n", s.Restarts, s.Restarts-len(s.DecodeFailures), len(s.DecodeFailures))
	fmt.Fprintf(w, "  hangs past deadline: %d\n", len(s.Hangs))
	if s.StalledAt > 0 {
		fmt.Fprintf(w, "  STALL  no operation succeeded on any card after %v (for %v or more)\n", s.StalledAt.Round(time.Second), StallAfter)
	}
	fmt.Fprintf(w, "  card panics:        %d\n", s.Panics)
	fmt.Fprintf(w, "  unexpected errors:  %d\n", s.UnexpectedCount)
	if n := len(s.Samples); n > 0 {
		first, last := s.Samples[0], s.Samples[n-1]
		var maxHeap, maxRSS, maxP uint64
		for _, x := range s.Samples {
			maxHeap, maxRSS, maxP = max(maxHeap, x.HeapBytes), max(maxRSS, x.RSSBytes), max(maxP, x.PcscdRSS)
		}
		fmt.Fprintf(w, "  memory (%d samples): heap %s -> %s (max %s), RSS %s -> %s (max %s), pcscd RSS %s -> %s (max %s)\n", n,
			mib(first.HeapBytes), mib(last.HeapBytes), mib(maxHeap), mib(first.RSSBytes), mib(last.RSSBytes), mib(maxRSS),
			mib(first.PcscdRSS), mib(last.PcscdRSS), mib(maxP))
	}
	for _, h := range s.Hangs {
		fmt.Fprintf(w, "  HANG   %s\n", h)
	}
	for _, d := range s.DecodeFailures {
		fmt.Fprintf(w, "  DECODE %s\n", d)
	}
	for _, e := range s.UnexpectedErrors {
		fmt.Fprintf(w, "  ERROR  %s\n", e)
	}
	if s.MemoryGrown != "" {
		fmt.Fprintf(w, "  MEMORY %s\n", s.MemoryGrown)
	}
	if s.OK() {
		fmt.Fprintln(w, "soak: clean")
	} else {
		fmt.Fprintln(w, "soak: FAILED")
	}
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	if b.Len() == 0 {
		return ""
	}
	return "(" + b.String() + ")"
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// recorder collects counts from the workers.
type recorder struct {
	mu sync.Mutex
	s  Summary
}

func (r *recorder) add(m map[string]int, k string) {
	r.mu.Lock()
	m[k]++
	r.mu.Unlock()
}

func (w *worker) unexpected(op string, err error) {
	w.rec.unexpected(w.i, fmt.Sprintf("%s (after %s)", op, w.last), err)
}

func (r *recorder) unexpected(card int, op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.UnexpectedCount++
	if len(r.s.UnexpectedErrors) < 10 {
		r.s.UnexpectedErrors = append(r.s.UnexpectedErrors, fmt.Sprintf("card %d %s: %v", card, op, err))
	}
}

// panicCounter is a slog handler that counts the cards' recovered panics
// (gids.Card logs each at error level) and drops everything else.
type panicCounter struct{ n *atomic.Int64 }

func (p panicCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (p panicCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.n.Add(1)
	}
	return nil
}
func (p panicCounter) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p panicCounter) WithGroup(string) slog.Handler      { return p }

// Run soaks a stack as cfg says until cfg.Duration has passed or ctx ends.
// The error is for failures to set up; what the soak finds is in the
// Summary.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Cards == 0 {
		cfg.Cards = 16
	}
	for _, f := range cfg.Faults {
		if !slices.Contains(FaultKinds, f) {
			return nil, fmt.Errorf("soak: unknown fault %q (known: %s)", f, strings.Join(FaultKinds, ", "))
		}
	}
	if cfg.Cards < 1 || cfg.Cards > stack.MaxSlots {
		return nil, fmt.Errorf("soak: %d cards: want 1..%d", cfg.Cards, stack.MaxSlots)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Minute
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = 5 * time.Second
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 5 * time.Second
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.StateDir == "" {
		d, err := os.MkdirTemp("", "cardharness-soak-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.StateDir = d
	}
	var panics atomic.Int64
	cardLog := slog.New(panicCounter{&panics})

	workers := make([]*worker, cfg.Cards)
	cards := make([]vcard.Card, cfg.Cards)
	for i := range workers {
		w := &worker{faults: faultSet(cfg.Faults), quickReinsert: cfg.QuickReinsert, i: i, dir: filepath.Join(cfg.StateDir, fmt.Sprintf("card%02d", i)), log: cardLog, deadline: cfg.Deadline,
			rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i)))}
		if err := w.open(); err != nil {
			return nil, err
		}
		workers[i] = w
		cards[i] = w.card
	}
	st, err := stack.Start(ctx, stack.Config{Cards: cards, Slots: cfg.Cards, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := pcsc.UseSocket(st.SocketPath()); err != nil {
		return nil, err
	}

	rec := &recorder{s: Summary{Cards: cfg.Cards, Seed: cfg.Seed, Ops: map[string]int{}, Failed: map[string]int{}, Faults: map[string]int{}, Retries: map[string]int{}}}
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range workers {
		w.st, w.rec = st, rec
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(runCtx)
		}()
	}
	sampleDone := make(chan struct{})
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(cfg.SampleEvery)
		defer t.Stop()
		pcscdPID := findPcscd(st.Dir())
		lastOps, lastChange := -1, time.Now()
		for {
			s := sample(start, pcscdPID)
			rec.mu.Lock()
			rec.s.Samples = append(rec.s.Samples, s)
			ops := 0
			for _, v := range rec.s.Ops {
				ops += v
			}
			if ops != lastOps {
				lastOps, lastChange = ops, time.Now()
			} else if stalled := time.Since(lastChange); stalled >= StallAfter && rec.s.StalledAt == 0 {
				rec.s.StalledAt = s.At - stalled
			}
			rec.mu.Unlock()
			if cfg.Progress != nil {
				fmt.Fprintf(cfg.Progress, "soak: %v ops %d heap %s rss %s pcscd %s\n", s.At.Round(time.Second), ops, mib(s.HeapBytes), mib(s.RSSBytes), mib(s.PcscdRSS))
			}
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	wg.Wait()
	<-sampleDone
	rec.mu.Lock()
	rec.s.Samples = append(rec.s.Samples, sample(start, findPcscd(st.Dir())))
	rec.mu.Unlock()
	// Releasing a PC/SC context waits for its calls; one blocked in a
	// wedged pcscd would hold the soak forever.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for _, w := range workers {
			w.close()
		}
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		rec.unexpected(-1, "release PC/SC contexts", errors.New("SCardReleaseContext still blocked after 10s (calls stuck in pcscd)"))
	}
	if err := st.Err(); err != nil {
		rec.unexpected(-1, "stack", err)
	}
	s := rec.s
	s.Elapsed = time.Since(start)
	s.Panics = int(panics.Load())
	s.MemoryGrown = grown(s.Samples)
	return &s, nil
}

// grown judges the samples: the second half's mean must stay within 25%
// (and 16 MiB) of the second quarter's, skipping the first quarter as
// warm-up (caches, pcscd's reader table, the GC's first targets).
func grown(samples []Sample) string {
	n := len(samples)
	if n < 8 {
		return ""
	}
	mean := func(xs []Sample, f func(Sample) uint64) float64 {
		var t float64
		for _, x := range xs {
			t += float64(f(x))
		}
		return t / float64(len(xs))
	}
	base, tail := samples[n/4:n/2], samples[n/2:]
	var why []string
	for _, m := range []struct {
		name string
		f    func(Sample) uint64
	}{
		{"heap", func(s Sample) uint64 { return s.HeapBytes }},
		{"RSS", func(s Sample) uint64 { return s.RSSBytes }},
		{"pcscd RSS", func(s Sample) uint64 { return s.PcscdRSS }},
	} {
		b, t := mean(base, m.f), mean(tail, m.f)
		if t > b*1.25 && t-b > 16<<20 {
			why = append(why, fmt.Sprintf("%s grew from %s to %s on average", m.name, mib(uint64(b)), mib(uint64(t))))
		}
	}
	return strings.Join(why, "; ")
}

func sample(start time.Time, pcscdPID int) Sample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := Sample{At: time.Since(start), HeapBytes: ms.HeapAlloc, RSSBytes: rss("self")}
	if pcscdPID > 0 {
		s.PcscdRSS = rss(strconv.Itoa(pcscdPID))
	}
	return s
}

// rss reads a process's resident set from /proc/PID/statm.
func rss(pid string) uint64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "statm"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// findPcscd returns the PID of the pcscd whose command line names dir.
func findPcscd(dir string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if strings.HasSuffix(args[0], "pcscd") && strings.Contains(string(b), dir) {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	return 0
}

// worker drives one card.
type worker struct {
	i        int
	dir      string
	log      *slog.Logger
	deadline time.Duration
	rnd      *rand.Rand
	st       *stack.Stack
	rec      *recorder

	store    *store.Store
	card     *gids.Card
	client   *pcsc.Client
	conn     *pcsc.Card
	md       *minidriver.Card
	authed   bool
	last     string    // the last fault injected, for error messages
	lastKind string    // its kind, for Summary.Retries
	lastAt   time.Time // when it ended

	quickReinsert bool
	faults        map[string]bool
}

// FaultKinds are the faults a soak can inject.
var FaultKinds = []string{"remove", "hang", "drop", "kill"}

func faultSet(names []string) map[string]bool {
	if names == nil {
		names = FaultKinds
	}
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// open (re-)opens the card from its state directory: a restart decodes
// the state the previous card left, torn or not.
func (w *worker) open() error {
	w.closeStore()
	s, err := store.OpenDir(w.dir)
	if err != nil {
		return err
	}
	card, err := gids.New(gids.Options{Store: s, Log: w.log})
	if err != nil {
		return err
	}
	if len(s.Keys("")) == 0 {
		if err := card.Initialize(gids.InitParams{PIN: pin, AdminKey: adminKey}); err != nil {
			return err
		}
	}
	w.store, w.card = s, card
	return nil
}

// closeStore releases the previous store's hold on the directory (a lock,
// where the store takes one), as a killed card process would.
func (w *worker) closeStore() {
	if c, ok := any(w.store).(interface{ Close() error }); ok && w.store != nil {
		_ = c.Close()
	}
	w.store = nil
}

func (w *worker) close() {
	w.closeStore()
	w.disconnect()
	if w.client != nil {
		w.client.Close()
	}
}

// disconnect closes the connection. SCardDisconnect waits for calls in
// flight on the context; if one is stuck in pcscd the close is abandoned
// (and so is the client, whose context is then unusable): an error, and
// the soak goes on instead of hanging.
func (w *worker) disconnect() {
	if w.conn != nil {
		conn := w.conn
		if !bounded(w.deadline, func() { conn.Close() }) {
			w.unexpected("disconnect", fmt.Errorf("SCardDisconnect still blocked after %v: a call on this connection is stuck in pcscd", w.deadline))
			w.client = nil // its context is stuck; leave it to the stuck call
		}
	}
	w.conn, w.md, w.authed = nil, nil, false
}

// bounded runs f and waits at most d for it; false if f is still running.
func bounded(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// connect makes sure there is a minidriver context on the card.
func (w *worker) connect(ctx context.Context) error {
	if w.md != nil {
		return nil
	}
	if w.client == nil {
		var c *pcsc.Client
		var err error
		if !bounded(w.deadline, func() { c, err = pcsc.NewClient() }) {
			return fmt.Errorf("SCardEstablishContext still blocked after %v: pcscd does not answer", w.deadline)
		}
		if err != nil {
			return err
		}
		w.client = c
	}
	ctx, cancel := context.WithTimeout(ctx, 4*w.deadline)
	defer cancel()
	if err := w.st.WaitPresent(ctx, w.i); err != nil {
		return err
	}
	conn, err := w.client.Connect(ctx, w.st.Slots()[w.i].Reader)
	if err != nil {
		return err
	}
	md, err := minidriver.Acquire(ctx, conn, minidriver.Options{})
	if err != nil {
		conn.Close()
		return err
	}
	w.conn, w.md = conn, md
	return nil
}

// step is one kind of random step; weight is its share.
type step struct {
	name   string
	weight int
	run    func(w *worker, ctx context.Context) error
}

var steps = []step{
	{"read-cardcf", 12, func(w *worker, ctx context.Context) error { _, err := w.md.CardCF(ctx); return err }},
	{"read-containers", 12, func(w *worker, ctx context.Context) error { _, err := w.md.Containers(ctx); return err }},
	{"read-keymap", 6, func(w *worker, ctx context.Context) error { _, err := w.md.KeyMap(ctx); return err }},
	{"pin-tries", 6, func(w *worker, ctx context.Context) error { _, _, err := w.md.PINTries(ctx); return err }},
	{"free-space", 4, func(w *worker, ctx context.Context) error { _, err := w.md.QueryFreeSpace(ctx); return err }},
	{"verify-pin", 8, (*worker).verifyPIN},
	{"wrong-pin", 2, (*worker).wrongPIN},
	{"generate-key", 4, (*worker).generateKey},
	{"sign", 8, (*worker).sign},
	{"delete-container", 3, (*worker).deleteContainer},
	{"write-file", 4, (*worker).writeFile},
	{"reacquire", 3, func(w *worker, ctx context.Context) error {
		md, err := minidriver.Acquire(ctx, w.conn, minidriver.Options{})
		if err == nil {
			w.md, w.authed = md, false
		}
		return err
	}},
}

// Fault steps, by share of all steps (out of 1000).
const (
	perMilleRemove = 15
	perMilleHang   = 8
	perMilleDrop   = 10
	perMilleKill   = 12
)

// faultAt names the fault kind drawn by r (0..999) in run.
func faultAt(r int) string {
	switch {
	case r < perMilleRemove:
		return "remove"
	case r < perMilleRemove+perMilleHang:
		return "hang"
	case r < perMilleRemove+perMilleHang+perMilleDrop:
		return "drop"
	}
	return "kill"
}

func (w *worker) run(ctx context.Context) {
	total := 0
	for _, s := range steps {
		total += s.weight
	}
	for ctx.Err() == nil {
		if err := w.connect(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			// A card just back from a fault may take a few tries (the
			// reader has to notice it); one that does not come back within
			// RecoverWithin is a failure.
			if since := time.Since(w.lastAt); since < RecoverWithin {
				w.rec.add(w.rec.s.Retries, w.lastKind)
			} else {
				w.unexpected("connect", err)
			}
			w.disconnect()
			sleep(ctx, 250*time.Millisecond) // no tight loop on a wedged reader
			continue
		}
		r := w.rnd.IntN(1000)
		switch {
		case r < perMilleRemove+perMilleHang+perMilleDrop+perMilleKill && !w.faults[faultAt(r)]:
			// that fault is off: a plain step instead
			w.op(ctx, readStep, "")
		case r < perMilleRemove:
			w.removeInsert(ctx)
		case r < perMilleRemove+perMilleHang:
			w.linkFault(ctx, vpcd.FaultHangOnAPDU, "hang")
		case r < perMilleRemove+perMilleHang+perMilleDrop:
			w.linkFault(ctx, vpcd.FaultDropOnAPDU, "drop")
		case r < perMilleRemove+perMilleHang+perMilleDrop+perMilleKill:
			w.kill(ctx)
		default:
			n := w.rnd.IntN(total)
			for _, s := range steps {
				if n < s.weight {
					w.op(ctx, s, "")
					break
				}
				n -= s.weight
			}
		}
	}
}

// op runs one step under the host deadline. fault names the fault armed
// for it ("" none): then a failure is expected and counted as such.
func (w *worker) op(ctx context.Context, s step, fault string) error {
	octx, cancel := context.WithTimeout(ctx, w.deadline)
	defer cancel()
	start := time.Now()
	err := s.run(w, octx)
	if el := time.Since(start); el > w.deadline+Slack {
		w.rec.mu.Lock()
		w.rec.s.Hangs = append(w.rec.s.Hangs, fmt.Sprintf("card %d %s (fault %q): returned after %v, deadline %v: %v", w.i, s.name, fault, el.Round(time.Millisecond), w.deadline, err))
		w.rec.mu.Unlock()
	}
	switch {
	case err == nil:
		w.rec.add(w.rec.s.Ops, s.name)
	case ctx.Err() != nil:
		// the run ended mid-operation
	case fault != "":
		w.rec.add(w.rec.s.Failed, s.name+"/"+fault)
	default:
		w.unexpected(s.name, err)
	}
	if err != nil {
		w.disconnect()
	}
	return err
}

func (w *worker) verifyPIN(ctx context.Context) error {
	if err := w.md.AuthenticatePIN(ctx, pin); err != nil {
		return err
	}
	w.authed = true
	return nil
}

// wrongPIN presents a wrong PIN (one try), then the right one (which
// restores the counter) so the card never blocks.
func (w *worker) wrongPIN(ctx context.Context) error {
	err := w.md.AuthenticatePIN(ctx, wrongPIN)
	w.authed = false
	if _, ok := minidriver.IsWrongPIN(err); !ok {
		return fmt.Errorf("wrong PIN answered %v, want a wrong-PIN error", err)
	}
	return w.verifyPIN(ctx)
}

func (w *worker) ensureAuth(ctx context.Context) error {
	if w.authed {
		return nil
	}
	return w.verifyPIN(ctx)
}

// validContainers lists the indexes of valid containers with a key.
func (w *worker) validContainers(ctx context.Context) ([]int, error) {
	cm, err := w.md.Containers(ctx)
	if err != nil {
		return nil, err
	}
	var idx []int
	for i, c := range cm {
		if spec, _, ok := c.Key(); ok && spec == fs.AT_KEYEXCHANGE {
			idx = append(idx, i)
		}
	}
	return idx, nil
}

func (w *worker) generateKey(ctx context.Context) error {
	idx, err := w.validContainers(ctx)
	if err != nil {
		return err
	}
	if len(idx) >= 3 {
		return w.deleteContainer(ctx)
	}
	if err := w.ensureAuth(ctx); err != nil {
		return err
	}
	_, err = w.md.CreateContainer(ctx, minidriver.ContainerSpec{GUID: fmt.Sprintf("soak-%d-%d", w.i, w.rnd.Uint32()), KeySpec: fs.AT_KEYEXCHANGE, Bits: 1024}, minidriver.BumpCorrect)
	return err
}

var digestInfoSHA256 = []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

// sign signs with a random valid container and verifies the signature
// under its public key.
func (w *worker) sign(ctx context.Context) error {
	idx, err := w.validContainers(ctx)
	if err != nil || len(idx) == 0 {
		return err
	}
	i := idx[w.rnd.IntN(len(idx))]
	if err := w.ensureAuth(ctx); err != nil {
		return err
	}
	digest := sha256.Sum256([]byte(fmt.Sprintf("soak %d %d", w.i, w.rnd.Uint64())))
	sig, err := w.md.SignData(ctx, i, append(slices.Clone(digestInfoSHA256), digest[:]...))
	if err != nil {
		return err
	}
	pub, err := w.md.PublicKey(ctx, i)
	if err != nil {
		return err
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("signature of container %d does not verify: %w", i, err)
	}
	return nil
}

func (w *worker) deleteContainer(ctx context.Context) error {
	idx, err := w.validContainers(ctx)
	if err != nil || len(idx) == 0 {
		return err
	}
	if err := w.ensureAuth(ctx); err != nil {
		return err
	}
	return w.md.DeleteContainer(ctx, idx[w.rnd.IntN(len(idx))], minidriver.DeleteOptions{}, minidriver.BumpCorrect)
}

const soakFile = "mscp/soak"

// writeFile rewrites a file of its own (created once) and reads it back.
func (w *worker) writeFile(ctx context.Context) error {
	if err := w.ensureAuth(ctx); err != nil {
		return err
	}
	data := make([]byte, 1+w.rnd.IntN(600))
	for i := range data {
		data[i] = byte(w.rnd.Uint32())
	}
	err := w.md.WriteFile(ctx, soakFile, data, minidriver.BumpCorrect)
	if err != nil && !errors.Is(err, winerr.SCARD_E_FILE_NOT_FOUND) {
		return err
	}
	if err != nil {
		if err := w.md.CreateFile(ctx, soakFile, minidriver.BumpCorrect); err != nil {
			return err
		}
		if err := w.md.WriteFile(ctx, soakFile, data, minidriver.BumpCorrect); err != nil {
			return err
		}
	}
	back, err := w.md.ReadFile(ctx, soakFile)
	if err != nil {
		return err
	}
	if !slices.Equal(back, data) {
		return fmt.Errorf(soakFile+" reads back %d bytes, wrote %d", len(back), len(data))
	}
	return nil
}

// readStep is the step run to trip an armed link fault.
var readStep = step{name: "read-cardcf", run: func(w *worker, ctx context.Context) error { _, err := w.md.CardCF(ctx); return err }}

// minRemoval is how long a removed card stays out unless
// Config.QuickReinsert: longer than pcscd's poll period (400 ms), so that
// the reader sees the card gone. A card back sooner can leave the reader
// answering "Transaction failed" to every connection (issue 8 finding 3,
// open when the soak was written).
const minRemoval = 600 * time.Millisecond

// removeInsert pulls the card and puts it back; the connection is gone, a
// fresh one must work.
func (w *worker) removeInsert(ctx context.Context) {
	w.rec.add(w.rec.s.Faults, "remove")
	w.last = "remove"
	link := w.st.Slots()[w.i].Link
	link.Remove()
	w.disconnect()
	out := time.Duration(w.rnd.IntN(600)) * time.Millisecond
	if !w.quickReinsert {
		out += minRemoval
	}
	sleep(ctx, out)
	link.Insert()
	w.faultEnded("remove")
}

func (w *worker) faultEnded(kind string) { w.lastKind, w.lastAt = kind, time.Now() }

// linkFault arms a hang or drop on the next APDU: the operation must fail
// by its deadline, not hang; then the card must come back.
func (w *worker) linkFault(ctx context.Context, f vpcd.Fault, name string) {
	w.rec.add(w.rec.s.Faults, name)
	w.last = name
	link := w.st.Slots()[w.i].Link
	link.InjectFault(f)
	if err := w.op(ctx, readStep, name); err == nil {
		w.unexpected("read-cardcf/"+name, errors.New("succeeded although the link was to fail it"))
	}
	link.InjectFault(vpcd.FaultNone)
	// A drop leaves the card removed (vpcd.FaultDropOnAPDU: pulled out
	// mid-command); a hung card is pulled to free the reader. Either way
	// it goes back in, as a user would put it back.
	link.Remove()
	w.disconnect()
	if !w.quickReinsert {
		sleep(ctx, minRemoval)
	}
	link.Insert()
	w.faultEnded(name)
}

// kill tears the card's store at a random commit step (or not at all),
// runs a writing step into it, ejects the card, re-opens it from its state
// directory and inserts it again.
func (w *worker) kill(ctx context.Context) {
	tear := []string{"", "write", "sync", "rename"}[w.rnd.IntN(4)]
	w.last = "kill, tear " + tear
	if tear != "" {
		w.rec.add(w.rec.s.Faults, "tear-"+tear)
		w.store.SetTearHook(func(step string) error {
			if step == tear {
				return errors.New("soak: killed")
			}
			return nil
		})
		wr := []step{{"write-file", 0, (*worker).writeFile}, {"generate-key", 0, (*worker).generateKey}, {"verify-pin", 0, (*worker).verifyPIN}}[w.rnd.IntN(3)]
		// A step that writes nothing (PIN already verified, say) succeeds:
		// no failure is required, only recovery.
		_ = w.op(ctx, wr, "tear-"+tear)
	} else {
		w.rec.add(w.rec.s.Faults, "kill")
	}
	w.disconnect()
	if err := w.st.Eject(w.i); err != nil {
		w.unexpected("eject", err)
		return
	}
	w.store.SetTearHook(nil)
	w.rec.mu.Lock()
	w.rec.s.Restarts++
	w.rec.mu.Unlock()
	if err := w.open(); err != nil {
		w.rec.mu.Lock()
		w.rec.s.DecodeFailures = append(w.rec.s.DecodeFailures, fmt.Sprintf("card %d after tear %q: %v", w.i, tear, err))
		w.rec.mu.Unlock()
		// Go on with a fresh card so the soak keeps its load.
		_ = os.RemoveAll(w.dir)
		if err := w.open(); err != nil {
			w.unexpected("reopen", err)
			return
		}
	}
	// A killed card's process takes a moment to come back; an instant
	// re-insertion is QuickReinsert's case (see minRemoval).
	if !w.quickReinsert {
		sleep(ctx, minRemoval)
	}
	if _, err := w.st.Insert(w.i, w.card); err != nil {
		w.unexpected("insert", err)
	}
	w.faultEnded("kill")
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
