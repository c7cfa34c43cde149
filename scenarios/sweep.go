package scenarios

// Sweeps: one question bigger than a run's. A run asks "does this flow pass
// on this host model?"; a sweep asks "under which of the Windows behaviours
// nobody documents does it pass, and how often does it fail when timing
// varies?". It runs every scenario under every variant (a host profile and
// a value of each varied knob) and every seed, and reports a matrix
// scenario x variant with failure rates over the seeds. A scenario states
// its outcome under each behaviour with expect_if:, so a flow that passes
// only under some variants, with no expect_if saying so, is flagged.

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cardharness/cardharness/harness/winhost"

	"github.com/cardharness/cardharness/vcard/gids"
)

// checkKnob reports whether name is a host knob and value one of its
// values.
func checkKnob(name, value string) error {
	k := winhost.DefaultKnobs()
	f, ok := knobField(&k, name)
	if !ok {
		return fmt.Errorf("unknown knob %s%s (cardharness knobs lists them)", quote(name), didYouMean(name, knobNames()))
	}
	if err := setKnob(f, value); err != nil {
		return fmt.Errorf("knob %s: %v", name, err)
	}
	return nil
}

func knobNames() []string {
	var out []string
	for _, k := range Knobs() {
		out = append(out, k.Name)
	}
	return out
}

// knobField is the field of k a scenario names name.
func knobField(k *winhost.Knobs, name string) (reflect.Value, bool) {
	rv := reflect.ValueOf(k).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if snake(rv.Type().Field(i).Name) == name {
			return rv.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// knobIs reports whether the knob name of k has the value written value.
func knobIs(k winhost.Knobs, name, value string) bool {
	f, ok := knobField(&k, name)
	if !ok {
		return false
	}
	want := reflect.New(f.Type()).Elem()
	if setKnob(want, value) != nil {
		return false
	}
	return reflect.DeepEqual(f.Interface(), want.Interface())
}

// applyHostKnobs gives every host of sc the knobs of m it does not set
// itself: a scenario that fixes a knob keeps its own value (it states the
// host it is about); the sweep varies what the scenario leaves open.
func applyHostKnobs(sc *Scenario, m map[string]string) {
	if len(m) == 0 {
		return
	}
	for _, h := range sc.Hosts {
		knobs := make(map[string]KnobValue, len(h.Knobs)+len(m))
		for k, v := range h.Knobs {
			knobs[k] = v
		}
		for k, v := range m {
			if _, set := knobs[k]; !set {
				knobs[k] = KnobValue{Value: v, Line: h.Line}
			}
		}
		h.Knobs = knobs
	}
}

// expectFor is st with the expectation that holds on this run's hosts:
// the first expect_if entry whose condition holds, else st's own.
func (e *env) expectFor(st *Step) *Step {
	for _, ce := range st.ExpectIf {
		host := ce.Host
		if host == "" {
			if n, ok := st.Args["host"]; ok && n.Kind == 8 && !isVarRef(n.Value) { // yaml.ScalarNode
				host = n.Value
			} else if names := sortedStrings(keysOf(e.sc.Hosts)); len(names) > 0 {
				host = names[0]
			}
		}
		k, ok := e.hostKnobs[host]
		if !ok {
			continue
		}
		if ce.Profile != "" && e.hostProfile(host) != ce.Profile {
			continue
		}
		holds := true
		for name, v := range ce.Knobs {
			if !knobIs(k, name, v) {
				holds = false
				break
			}
		}
		if holds {
			eff := *st
			eff.ExpectError, eff.ExpectResult = ce.ExpectError, ce.ExpectResult
			return &eff
		}
	}
	return st
}

// Variant is one column of a sweep: a host profile ("" : as the scenario
// says) and knob values given to every host that does not set them.
type Variant struct {
	Profile string            `json:"profile,omitempty"`
	Knobs   map[string]string `json:"knobs,omitempty"`
}

func (v Variant) String() string {
	var parts []string
	if v.Profile != "" {
		parts = append(parts, v.Profile)
	}
	for _, k := range sortedStrings(keysOf(v.Knobs)) {
		parts = append(parts, k+"="+v.Knobs[k])
	}
	if len(parts) == 0 {
		return "as written"
	}
	return strings.Join(parts, " ")
}

// Axis is one varied knob and its values (--vary NAME=V1,V2).
type Axis struct {
	Knob   string
	Values []string
}

// ParseVary reads --vary NAME=V1,V2,... and checks the knob and values.
func ParseVary(s string) (Axis, error) {
	name, vals, ok := strings.Cut(s, "=")
	if !ok || name == "" || vals == "" {
		return Axis{}, fmt.Errorf("--vary %q: want KNOB=VALUE,VALUE (e.g. propagation_reads_through_cache=true,false)", s)
	}
	a := Axis{Knob: strings.TrimSpace(name)}
	seen := map[string]bool{}
	for _, v := range strings.Split(vals, ",") {
		v = strings.TrimSpace(v)
		if v == "" || seen[v] {
			continue
		}
		if err := checkKnob(a.Knob, v); err != nil {
			return Axis{}, fmt.Errorf("--vary %q: %v", s, err)
		}
		seen[v] = true
		a.Values = append(a.Values, v)
	}
	return a, nil
}

// maxSeeds bounds --seeds: a sweep's cells are kept in memory.
const maxSeeds = 100000

// ParseSeeds reads --seeds: A..B, or a comma-separated list (each a
// number or a range).
func ParseSeeds(s string) ([]int64, error) {
	var out []int64
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "..")
		a, err := strconv.ParseInt(strings.TrimSpace(lo), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--seeds %q: %q is not a number (want e.g. 1..200 or 1,5,9)", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(strings.TrimSpace(hi), 10, 64); err != nil || b < a {
				return nil, fmt.Errorf("--seeds %q: want A..B with A <= B", s)
			}
		}
		if b-a >= maxSeeds || len(out)+int(b-a+1) > maxSeeds {
			return nil, fmt.Errorf("--seeds %q: at most %d seeds", s, maxSeeds)
		}
		for x := a; x <= b; x++ {
			out = append(out, x)
		}
	}
	return out, nil
}

// SweepSpec says what a sweep runs: every scenario under every variant
// (Profiles x the values of every Axis) and every seed.
type SweepSpec struct {
	Profiles []string // "" or none: the scenarios' own
	Vary     []Axis
	Seeds    []int64 // none: each scenario's own seed
	Shard    Shard   // {0,0} or N<=1: all cells
}

// Variants is the cross product of the spec's profiles and axes, in a
// stable order (profiles first, then the axes as given).
func (s SweepSpec) Variants() []Variant {
	profiles := s.Profiles
	if len(profiles) == 0 {
		profiles = []string{""}
	}
	var out []Variant
	for _, p := range profiles {
		vs := []Variant{{Profile: p, Knobs: map[string]string{}}}
		for _, ax := range s.Vary {
			var next []Variant
			for _, v := range vs {
				for _, val := range ax.Values {
					k := make(map[string]string, len(v.Knobs)+1)
					for kk, vv := range v.Knobs {
						k[kk] = vv
					}
					k[ax.Knob] = val
					next = append(next, Variant{Profile: p, Knobs: k})
				}
			}
			vs = next
		}
		out = append(out, vs...)
	}
	return out
}

// Cell is one scenario under one variant, over the seeds.
type Cell struct {
	Variant  int `json:"variant"`
	Runs     int `json:"runs"`
	Failures int `json:"failures"` // failed or errored runs
	// FailingSeeds are the first seeds that failed (up to maxSeedList).
	FailingSeeds []int64 `json:"failing_seeds,omitempty"`
	// FirstFailure is the failure message of the first failing seed.
	FirstFailure string `json:"first_failure,omitempty"`
}

const maxSeedList = 20

// Rate is the cell's failure rate, 0..1.
func (c Cell) Rate() float64 {
	if c.Runs == 0 {
		return 0
	}
	return float64(c.Failures) / float64(c.Runs)
}

// SweepRow is one scenario of the matrix.
type SweepRow struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Cells []Cell `json:"cells"`
	// Runs and Failures over all cells.
	Runs     int `json:"runs"`
	Failures int `json:"failures"`
	// Flag says why the row needs a look: it passes under some variants
	// and not others, or fails for some seeds only ("" : none).
	Flag string `json:"flag,omitempty"`
}

// SweepReport is a sweep's outcome.
type SweepReport struct {
	Stack    string        `json:"stack"`
	Seeds    int           `json:"seeds"` // seeds per cell (0: each scenario's own)
	Shard    string        `json:"shard,omitempty"`
	Variants []Variant     `json:"variants"`
	Rows     []SweepRow    `json:"scenarios"`
	Runs     int           `json:"runs"`
	Failures int           `json:"failures"`
	Duration time.Duration `json:"duration_ns"`
}

// Sweep runs refs under spec. Results are folded into the report as they
// come (a Result with its timeline is dropped once counted), so memory
// stays bounded by the matrix, not by the number of runs.
func Sweep(ctx context.Context, refs []Ref, spec SweepSpec, opts Options) (*SweepReport, error) {
	// Each file is parsed once per sweep: RunOne leaves a parsed scenario
	// as it is (it runs a copy), so its cells share it.
	parsed, err := loadAll(refs)
	if err != nil {
		return nil, err
	}
	if opts.Parallel < 1 {
		opts.Parallel = runtime.GOMAXPROCS(0)
	}
	if opts.Stack == "" {
		opts.Stack = "direct"
	}
	if opts.Reader != "" {
		return nil, fmt.Errorf("sweep: --reader is one real card: sweeps run on virtual cards")
	}
	if err := Preflight(opts); err != nil {
		return nil, err
	}
	start := time.Now()
	variants := spec.Variants()
	rep := &SweepReport{Stack: opts.Stack, Seeds: len(spec.Seeds), Variants: variants}
	costs := make([]int, len(refs))
	for i, r := range refs {
		sc := parsed[i]
		rep.Rows = append(rep.Rows, SweepRow{Name: sc.Name, File: r.String(), Cells: make([]Cell, len(variants))})
		for v := range variants {
			rep.Rows[i].Cells[v].Variant = v
		}
		costs[i] = Cost(sc, opts.Stack)
	}
	seeds, own := spec.Seeds, len(spec.Seeds) == 0
	if own {
		seeds = []int64{0} // each scenario's own seed
	}
	type job struct {
		row, variant int
		seed         int64
	}
	// The cells of this shard: scenario x variant x seed, balanced by the
	// scenario's cost.
	nCells := len(refs) * len(variants) * len(seeds)
	cellOf := func(i int) job {
		s := i % len(seeds)
		v := (i / len(seeds)) % len(variants)
		return job{row: i / (len(seeds) * len(variants)), variant: v, seed: seeds[s]}
	}
	var mine []int
	if spec.Shard.N > 1 {
		rep.Shard = spec.Shard.String()
		cc := make([]int, nCells)
		for i := range cc {
			cc[i] = costs[cellOf(i).row]
		}
		mine = Partition(cc, func(i int) string { return fmt.Sprintf("%012d", i) }, spec.Shard.N)[spec.Shard.K-1]
	} else {
		mine = make([]int, nCells)
		for i := range mine {
			mine[i] = i
		}
	}
	jobs := make(chan job)
	var mu sync.Mutex
	var wg sync.WaitGroup
	// The cells of a scenario sign the same blocks with the same seeded
	// keys: compute each signature once per sweep (same bytes;
	// vcard/gids/sigmemo.go). In process only.
	opts.sigMemo = gids.NewSignatureMemo()
	// A cell keeps a run's status and first failure, not its timeline:
	// recording one (the card's files and every host's events after each
	// step) was 8 % of a sweep.
	opts.noTimeline = true
	for w := 0; w < opts.Parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				ropts := opts
				ropts.HostKnobs = variants[j.variant].Knobs
				ropts.Variant = variants[j.variant].String()
				setProfile(&ropts, variants[j.variant].Profile)
				if !own {
					ropts.Seed, ropts.SeedSet = j.seed, true
				}
				var res Result
				if opts.Stack == "pcscd" && opts.Reader == "" {
					res = runWorker(ctx, refs[j.row], ropts) // a process and a stack of its own
				} else {
					res = RunOne(ctx, parsed[j.row], ropts)
				}
				mu.Lock()
				c := &rep.Rows[j.row].Cells[j.variant]
				c.Runs++
				if res.Status == Fail || res.Status == Error {
					c.Failures++
					if len(c.FailingSeeds) < maxSeedList {
						c.FailingSeeds = append(c.FailingSeeds, res.Seed)
					}
					if c.FirstFailure == "" {
						c.FirstFailure = res.Failure
					}
				}
				mu.Unlock()
			}
		}()
	}
	for _, i := range mine {
		if ctx.Err() != nil {
			break
		}
		jobs <- cellOf(i)
	}
	close(jobs)
	wg.Wait()
	for i := range rep.Rows {
		row := &rep.Rows[i]
		for c := range row.Cells {
			sort.Slice(row.Cells[c].FailingSeeds, func(a, b int) bool { return row.Cells[c].FailingSeeds[a] < row.Cells[c].FailingSeeds[b] })
			row.Runs += row.Cells[c].Runs
			row.Failures += row.Cells[c].Failures
		}
		rep.Runs += row.Runs
		rep.Failures += row.Failures
		row.Flag = flagRow(*row, variants, spec)
	}
	sort.SliceStable(rep.Rows, func(a, b int) bool { return rep.Rows[a].Name < rep.Rows[b].Name })
	rep.Duration = time.Since(start)
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	return rep, nil
}

// flagRow explains a row whose outcome is not the same in every cell:
// which variant values it fails under (when one axis explains it), or that
// it fails for some seeds only.
func flagRow(row SweepRow, variants []Variant, spec SweepSpec) string {
	var failing, passing int
	var intermittent []string
	for _, c := range row.Cells {
		if c.Runs == 0 {
			continue
		}
		switch {
		case c.Failures == 0:
			passing++
		default:
			failing++
			if c.Failures < c.Runs {
				intermittent = append(intermittent, fmt.Sprintf("%s: %.0f %%", variants[c.Variant], 100*c.Rate()))
			}
		}
	}
	var flags []string
	if failing > 0 && passing > 0 {
		flags = append(flags, "passes only under some host behaviours: "+explain(row, variants, spec))
	}
	if len(intermittent) > 0 {
		flags = append(flags, "fails for some seeds only ("+strings.Join(intermittent, "; ")+")")
	}
	return strings.Join(flags, "; ")
}

// explain finds an axis whose value alone decides pass or fail, and names
// the values it fails under.
func explain(row SweepRow, variants []Variant, spec SweepSpec) string {
	type axis struct {
		name string
		of   func(Variant) string
	}
	axes := []axis{}
	if len(spec.Profiles) > 1 {
		axes = append(axes, axis{"profile", func(v Variant) string { return v.Profile }})
	}
	for _, ax := range spec.Vary {
		name := ax.Knob
		axes = append(axes, axis{name, func(v Variant) string { return v.Knobs[name] }})
	}
	for _, ax := range axes {
		outcome := map[string]int{} // value -> 1 pass, 2 fail, 3 mixed
		for _, c := range row.Cells {
			if c.Runs == 0 {
				continue
			}
			o := 1
			if c.Failures > 0 {
				o = 2
			}
			outcome[ax.of(variants[c.Variant])] |= o
		}
		decides := true
		var failsUnder []string
		for val, o := range outcome {
			if o == 3 {
				decides = false
				break
			}
			if o == 2 {
				failsUnder = append(failsUnder, val)
			}
		}
		if decides && len(failsUnder) > 0 {
			sort.Strings(failsUnder)
			return "fails when " + ax.name + "=" + strings.Join(failsUnder, " or ")
		}
	}
	var bad []string
	for _, c := range row.Cells {
		if c.Failures > 0 {
			bad = append(bad, variants[c.Variant].String())
		}
	}
	return "fails under " + strings.Join(bad, "; ")
}
