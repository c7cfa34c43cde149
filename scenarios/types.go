// Package scenarios is the scenario runner: it reads scenario files (YAML),
// runs each on fresh virtual cards against the Windows host model, checks
// expectations and card invariants, and reports the outcome for people and
// for CI (text, JSON, JUnit).
//
// A scenario declares cards, hosts and a seed, then a list of steps. Each
// step names an action (do:), its actor (a card, a host and one of its
// processes, an out-of-band writer with its counter-bump policy, the CA,
// the clock, an external tool) and arguments, and may carry expectations:
// the Windows error it must produce, and fields of its result. The file
// format is documented in README.md ("Scenario files") and
// docs/scenarios.md; the built-in suite lives in builtin/ and is embedded
// in the binary.
//
// Adding an action: in the actor's file (actions_host.go, ...), or a new
// actions_NAME.go, register an *Action from an init function: its Name,
// Actor, one-sentence Doc, Args (each with Type, and Default, Values, Min,
// Max as they apply; shared ones such as argHost and processArgs are in
// action.go), Result fields with types and meaning, the Errors it is known
// to return, a one-line Example, and Run, a named function
// func(e *env, s *stepCtx) (Values, error) that reads its arguments with
// s.str, s.int, s.bool, s.duration, s.cert, s.obj (already checked against
// the declaration) and returns only declared fields. Then run
// go test ./scenarios -update-docs to regenerate the README table and
// docs/scenarios.md; TestEveryActionIsDocumented checks the declaration.
package scenarios

import (
	"go.yaml.in/yaml/v3"
)

// Scenario is one parsed scenario file (includes merged in).
type Scenario struct {
	File        string
	Name        string
	Description string
	Tags        []string
	Seed        int64
	SeedSet     bool
	Vars        map[string]string
	Cards       map[string]*CardDecl
	Hosts       map[string]*HostDecl
	Steps       []*Step
	Invariants  Invariants
}

// CardDecl declares a virtual card.
type CardDecl struct {
	Name          string
	File          string
	Line          int
	Profile       string // blank | initialized
	PIN           string
	AdminKey      string // 48 hex
	CardID        string // 32 hex; empty: from the seed
	CardIDFrom    string // copy another card's cardid (S4)
	CacheMode     string // global | session-only | none
	ReadOnly      bool
	MaxContainers int
	Faults        []string
	// SessionPINs: the card declares session PINs
	// (CP_CARD_PIN_STRENGTH_VERIFY), minidriver.Options.SessionPINs.
	SessionPINs bool
}

// HostDecl declares an emulated Windows host.
type HostDecl struct {
	Name    string
	File    string
	Line    int
	UserPIN string // what the user types at a PIN prompt (default: the first card's PIN)
	// Profile is the host profile (winhost.ProfileNames) the knobs start
	// from; "": the run's default (Options.HostProfile).
	Profile     string
	ProfileLine int
	Knobs       map[string]KnobValue
}

// KnobValue is a host knob as written in the file.
type KnobValue struct {
	Value string
	Line  int
}

// Invariants tune the checks run on every card after the scenario.
type Invariants struct {
	// CountersMayGoBack allows cardcf counters to decrease (scenarios that
	// re-initialise a card or use a reset-to-zero writer).
	CountersMayGoBack bool
	// Skip turns the invariant checks off (a scenario that leaves the
	// card inconsistent on purpose).
	Skip bool
}

// Step is one step of a scenario.
type Step struct {
	File string
	Line int
	Name string
	Do   string
	Args map[string]*yaml.Node
	Save string
	// ExpectError is a Windows error name, a hex code, or "none".
	ExpectError  string
	ExpectResult *yaml.Node
	Expect       *yaml.Node
	// ExpectIf are conditional expectations (expect_if:): the first whose
	// condition holds replaces ExpectError and ExpectResult, so that one
	// scenario states its outcome under each host behaviour (sweep.go).
	ExpectIf []*CondExpect
	// Sub are the steps of a repeat.
	Sub []*Step

	action *Action
}

// CondExpect is one entry of expect_if: the expectation that holds when
// the host (Host, default: the step's host, else the scenario's first)
// has the profile Profile (if set) and every knob of Knobs at the given
// value.
type CondExpect struct {
	Line         int
	Host         string
	Profile      string
	Knobs        map[string]string
	ExpectError  string
	ExpectResult *yaml.Node
}

type ref struct {
	kind, name string
	line       int
}

// refs lists the cards and hosts a step names, for validation.
func (s *Step) refs() []ref {
	var out []ref
	for _, kind := range []string{"card", "host"} {
		if n, ok := s.Args[kind]; ok && n.Kind == yaml.ScalarNode && !isVarRef(n.Value) {
			out = append(out, ref{kind: kind, name: n.Value, line: n.Line})
		}
	}
	for _, sub := range s.Sub {
		out = append(out, sub.refs()...)
	}
	return out
}

func isVarRef(s string) bool { return len(s) > 2 && s[0] == '$' }
