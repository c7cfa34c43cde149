package scenarios

// The results of a run: options in, per-step and per-scenario outcomes out.

import (
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/cardharness/cardharness/vcard/gids"
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
	// ReuseStacks (pcscd stack only) runs scenarios in long-lived workers,
	// one per Parallel slot, each reusing its private pcscd from scenario
	// to scenario with fresh cards and fresh PC/SC contexts each time
	// (stackpool.go; docs/DESIGN.md "Reused stacks"). Opt-in.
	ReuseStacks bool `json:"reuse_stacks,omitempty"`
	// Parallel is how many scenarios run at once (default 1).
	Parallel int
	// Seed overrides every scenario's seed when SeedSet.
	Seed    int64
	SeedSet bool
	// CardFaults are applied to every virtual card (vcard/fault names).
	CardFaults []string
	// HostProfile is the host profile of hosts that name none
	// (winhost.ProfileNames; "": winhost.DefaultProfile).
	HostProfile string
	// TraceDir receives the APDU traces of failed scenarios ("" : none).
	TraceDir string
	// RandomKeys makes the cards generate real random keys instead of the
	// seeded test keys (slower, and runs are no longer reproducible: the
	// baseline `make bench` compares against).
	RandomKeys bool `json:",omitempty"`
	// TraceAll saves the traces of every scenario in TraceDir, passed or
	// not (to compare two runs).
	TraceAll bool `json:",omitempty"`
	// Timeout bounds one scenario (default 5 minutes).
	Timeout time.Duration
	// Progress receives one line per finished scenario (nil: none).
	Progress io.Writer `json:"-"`
	// OnProgress is told which scenario and step are running (for a live
	// progress line); calls may come from several goroutines.
	OnProgress func(Progress) `json:"-"`
	// OnStep is RunOne's per-step report (Run sets it to feed OnProgress).
	OnStep func(step, steps int) `json:"-"`
	// Verbose prints each step's result and timeline events to Progress
	// as it runs (timeline.go).
	Verbose bool
	// TraceSecrets keeps PINs and key material in APDU traces (default:
	// masked, vcard/trace).
	TraceSecrets bool
	// PIN and AdminKey (48 hex digits) are what the card in the reader
	// uses (--reader; default: the GIDS defaults 123456 and all zero);
	// ResetCmd, if set, resets the card before every scenario instead of
	// cleaning it with the admin key (reader.go).
	PIN      string `json:",omitempty"`
	AdminKey string `json:",omitempty"`
	ResetCmd string `json:",omitempty"`
	// Pcscd is the pcscd binary for the pcscd stack ("": pcscd from PATH
	// or /usr/sbin).
	Pcscd string `json:",omitempty"`
	// HostKnobs set knobs on every host that does not set them itself (a
	// sweep's variant; knob name as in scenario files -> value).
	HostKnobs map[string]string `json:",omitempty"`
	// Variant names the sweep variant, for reports ("" outside sweeps).
	Variant string       `json:",omitempty"`
	Log     *slog.Logger `json:"-"`

	// sigMemo is shared by the in-process cards of one sweep
	// (gids.SignatureMemo: the same bytes, computed once per sweep).
	sigMemo *gids.SignatureMemo
	// noTimeline leaves the per-step timeline (Result.Timeline, a report
	// field) out: a sweep counts each Result and drops it.
	noTimeline bool
}

// Progress says where a run is: scenario Scenario of Scenarios (counted
// as they start), at step Step of Steps.
type Progress struct {
	Scenario, Scenarios int
	Name                string
	Step, Steps         int
	// Done: the scenario has finished (its result line follows).
	Done bool
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
	Variant  string        `json:"variant,omitempty"`
	Failure  string        `json:"failure,omitempty"`
	Diff     string        `json:"diff,omitempty"`
	Steps    []StepResult  `json:"steps"`
	Skipped  []string      `json:"skipped,omitempty"`
	Traces   []string      `json:"traces,omitempty"`
	Duration time.Duration `json:"duration_ns"`

	// SkipReason says why a skipped scenario does not apply (reader.go).
	SkipReason string `json:"skip_reason,omitempty"`
	// NotChecked lists the invariants that could not be checked (a real
	// card's insides cannot be read).
	NotChecked []string `json:"not_checked,omitempty"`
	// APDUs is the number of APDUs the scenario sent to its cards (tools
	// run as subprocesses not counted).
	APDUs int64 `json:"apdus"`

	// Report fields (timeline.go, report.go).
	Faults   []string       `json:"faults,omitempty"`
	Hosts    []string       `json:"hosts,omitempty"` // host profiles: name and knobs as written
	Timeline []TimelineStep `json:"timeline,omitempty"`
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
