package scenarios

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Values is what a step observed: the fields an expectation may check and
// a later step may use through a saved variable ($name.field). Its keys are
// the action's declared Result fields.
type Values map[string]any

// An Action is one verb of the scenario language, declared once: its
// arguments (with types, defaults and allowed values) and its result
// fields drive parsing, `run --check`, `cardharness actions` and the
// README's action table. Each actor has its own file (actions_clock.go,
// actions_host.go, ...); adding an action is one register call there with a
// named function that implements it. A function that needs the step's host,
// card, process or a minidriver client takes it as a parameter and is
// registered through an adapter (Run: onHost(logon), onClient(checkPIN);
// env.go), which looks it up and reports a bad argument.
type Action struct {
	Name  string
	Actor Actor
	// Doc is one sentence: what the action does, in the user's terms.
	Doc string
	// Args are the step's keys besides do/name/expect/save/steps.
	Args []Arg
	// Result lists the fields the step's result may carry: what expect:
	// {result: ...} checks and what $saved.field reads.
	Result []Field
	// Errors are the Windows errors the action is known to produce (for
	// the reference; expect: {error: ...} accepts any known name).
	Errors []string
	// Example is a one-line step using the action.
	Example string
	// Internals: the step needs the card's insides (introspection, faults,
	// re-initialisation); with --reader it is skipped and reported.
	Internals bool
	Run       func(e *env, s *stepCtx) (Values, error)
}

// Actor groups actions in the reference; one file per actor.
type Actor string

// The actors, in reference order.
const (
	ActorScenario Actor = "scenario"
	ActorClock    Actor = "clock"
	ActorHost     Actor = "host"
	ActorProcess  Actor = "process"
	ActorStores   Actor = "stores"
	ActorWriter   Actor = "writer"
	ActorCard     Actor = "card"
	ActorCA       Actor = "ca"
	ActorTool     Actor = "tool"
)

var actorOrder = []Actor{ActorScenario, ActorClock, ActorHost, ActorProcess, ActorStores, ActorWriter, ActorCard, ActorCA, ActorTool}

var actorDoc = map[Actor]string{
	ActorScenario: "control flow",
	ActorClock:    "the virtual clock",
	ActorHost:     "a Windows host: readers, logon, the smart-card service",
	ActorProcess:  "a process on a host (process:, api: capi|cng, silent:) using Base CSP or the KSP",
	ActorStores:   "the signed-in user's certificate stores",
	ActorWriter:   "an out-of-band writer (enrollment tool) with its counter-bump policy (bump:)",
	ActorCard:     "the card itself, read or changed directly, bypassing every host cache",
	ActorCA:       "the test CA",
	ActorTool:     "external tools (OpenSC, OpenSSL) run against the card's reader",
}

// Type is the type of an argument or a result field.
type Type string

// Argument and result types.
const (
	String   Type = "string"
	Int      Type = "int"
	Bool     Type = "bool"
	Duration Type = "duration" // 10s, 36h, 3d
	Enum     Type = "enum"     // one of Arg.Values
	CardName Type = "card"     // a card declared under cards:
	HostName Type = "host"     // a host declared under hosts:
	GUID     Type = "guid"     // a container GUID, usually $saved.guid
	Command  Type = "command"  // a list of words, or one string split at spaces
	List     Type = "list"     // result only: a list of strings
	// Saved objects: an argument of one of these types names a saved
	// result ($name.field, or $name when the result has a field of the
	// type's name).
	Cert  Type = "certificate"
	Key   Type = "key"
	CSR   Type = "csr"
	Dummy Type = "dummy" // a REQUEST-store dummy certificate
	Other Type = "object"
)

// savedField is the field an object argument given as plain $name reads.
var savedField = map[Type]string{Cert: "cert", Key: "key", CSR: "csr", Dummy: "dummy"}

// isObject: the argument names a saved value, never a literal.
func (t Type) isObject() bool { _, ok := savedField[t]; return ok }

// Arg declares one argument.
type Arg struct {
	Name     string
	Type     Type
	Required bool
	// Default is the value an absent argument has ("" : none), as the
	// reference shows it.
	Default string
	// Values are the allowed values of an Enum (compared without case);
	// Aliases are further spellings accepted for them.
	Values, Aliases []string
	// Min and Max bound an Int or a Duration (in the unit written in
	// MinMax: whole numbers, or durations as text); zero values: none.
	Min, Max string
	Doc      string
}

// Field declares one field of an action's result.
type Field struct {
	Name string
	Type Type
	Doc  string
	// ExpectOnly: a check written under expect.result, not a value
	// (output_contains).
	ExpectOnly bool
}

// Limits on what a scenario may ask for (issue: bounded scenario files).
const (
	maxRepeat   = 10000
	maxDuration = 100 * 365 * 24 * time.Hour
)

var actions = map[string]*Action{}

// register adds actions to the table; a duplicate or malformed
// declaration is a programming error caught when the package loads.
func register(as ...*Action) {
	for _, a := range as {
		if _, dup := actions[a.Name]; dup {
			panic("scenarios: action " + a.Name + " registered twice")
		}
		if a.Run == nil || a.Doc == "" || a.Actor == "" {
			panic("scenarios: action " + a.Name + " needs Run, Doc and Actor")
		}
		seen := map[string]bool{}
		for _, arg := range a.Args {
			if seen[arg.Name] || arg.Type == "" {
				panic("scenarios: action " + a.Name + ": argument " + arg.Name + " duplicated or untyped")
			}
			seen[arg.Name] = true
		}
		actions[a.Name] = a
	}
}

// ActionNames lists the actions, sorted.
func ActionNames() []string { return slices.Sorted(maps.Keys(actions)) }

// Actions returns the action table in reference order (by actor, then
// name).
func Actions() []*Action {
	var out []*Action
	for _, actor := range actorOrder {
		for _, n := range ActionNames() {
			if actions[n].Actor == actor {
				out = append(out, actions[n])
			}
		}
	}
	// Actors added later without an entry in actorOrder still show.
	for _, n := range ActionNames() {
		if !containsActor(actorOrder, actions[n].Actor) {
			out = append(out, actions[n])
		}
	}
	return out
}

// LookupAction returns the named action.
func LookupAction(name string) (*Action, bool) {
	a, ok := actions[name]
	return a, ok
}

func containsActor(as []Actor, a Actor) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func (a *Action) arg(name string) *Arg {
	for i := range a.Args {
		if a.Args[i].Name == name {
			return &a.Args[i]
		}
	}
	return nil
}

func (a *Action) field(name string) *Field {
	for i := range a.Result {
		if a.Result[i].Name == name {
			return &a.Result[i]
		}
	}
	return nil
}

func (a *Action) argNames() []string {
	return sortedNames(a.Args, func(x Arg) string { return x.Name })
}

func (a *Action) fieldNames() []string {
	return sortedNames(a.Result, func(f Field) string { return f.Name })
}

// sortedNames lists the names of xs, sorted.
func sortedNames[T any](xs []T, name func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, name(x))
	}
	sort.Strings(out)
	return out
}

// check validates a literal value of the argument (no $references).
func (arg *Arg) check(v string) error {
	switch arg.Type {
	case Int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want a whole number, got %s", quote(v))
		}
		if arg.Min != "" {
			if m, _ := strconv.Atoi(arg.Min); n < m {
				return fmt.Errorf("%d is below the minimum %s", n, arg.Min)
			}
		}
		if arg.Max != "" {
			if m, _ := strconv.Atoi(arg.Max); n > m {
				return fmt.Errorf("%d is above the maximum %s", n, arg.Max)
			}
		}
	case Bool:
		if _, ok := parseBool(v); !ok {
			return fmt.Errorf("want true or false, got %s%s", quote(v), didYouMean(v, []string{"true", "false"}))
		}
	case Duration:
		d, err := ParseDuration(v)
		if err != nil {
			return err
		}
		if arg.Max != "" {
			if m, _ := ParseDuration(arg.Max); d > m {
				return fmt.Errorf("%s is longer than %s", v, arg.Max)
			}
		}
	case Enum:
		if !arg.allows(v) {
			return fmt.Errorf("%s is not one of %s%s", quote(v), strings.Join(arg.Values, ", "), didYouMean(v, arg.Values))
		}
	case Command:
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("empty command")
		}
	}
	return nil
}

func (arg *Arg) allows(v string) bool {
	for _, x := range append(append([]string{}, arg.Values...), arg.Aliases...) {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off":
		return false, true
	}
	return false, false
}

// quote shows a value from a scenario file in an error, cut short: errors
// name what is wrong, they do not replay the file.
func quote(v string) string {
	const max = 40
	if len(v) > max {
		return strconv.Quote(v[:max]) + "..."
	}
	return strconv.Quote(v)
}

// Shared argument declarations, so that the same argument reads the same
// in every action that takes it.
var (
	argHost        = Arg{Name: "host", Type: HostName, Required: true, Doc: "the host (declared under hosts:)"}
	argCard        = Arg{Name: "card", Type: CardName, Required: true, Doc: "the card (declared under cards:)"}
	argProcess     = Arg{Name: "process", Type: String, Default: "app", Doc: "the process on the host (started on first use; an exited one is restarted)"}
	argAPI         = Arg{Name: "api", Type: Enum, Default: "capi", Values: []string{"capi", "cng", "ksp"}, Doc: "the process's API: capi (Base CSP) or cng/ksp (the smart-card KSP)"}
	argSilent      = Arg{Name: "silent", Type: Bool, Default: "false", Doc: "CRYPT_SILENT: no PIN prompt (a needed prompt fails with NTE_SILENT_CONTEXT)"}
	argKeySpec     = Arg{Name: "keyspec", Type: Enum, Default: "exchange", Values: []string{"exchange", "signature"}, Aliases: []string{"at_keyexchange", "at_signature", "keyexchange"}, Doc: "AT_KEYEXCHANGE or AT_SIGNATURE"}
	argBits        = Arg{Name: "bits", Type: Int, Default: "2048", Min: "1024", Max: "4096", Doc: "RSA modulus size"}
	argDefault     = Arg{Name: "default", Type: Bool, Default: "false", Doc: "make the new container the card's default"}
	argNewGUID     = Arg{Name: "guid", Type: GUID, Doc: "the container's GUID (default: a new one drawn from the seed)"}
	argBump        = Arg{Name: "bump", Type: Enum, Default: "correct", Values: []string{"correct", "none", "late", "wrong-counter", "reset-to-zero"}, Doc: "how the writer maintains cardcf: correct bumps the covering counter before each change"}
	argWPIN        = Arg{Name: "pin", Type: String, Doc: "the PIN the writer presents (default: the card's current PIN, as the last change-pin or writer-change-pin left it)"}
	argSubject     = Arg{Name: "subject", Type: String, Default: "CN=cardharness user", Doc: "the request's subject: CN=...,O=...,OU=...,C=..."}
	argStore       = Arg{Name: "store", Type: Enum, Default: "My", Values: []string{"My", "REQUEST"}, Doc: "the user's store"}
	argCert        = Arg{Name: "cert", Type: Cert, Required: true, Doc: "the certificate"}
	argGUID        = Arg{Name: "guid", Type: GUID, Required: true, Doc: "the container"}
	argSigner      = Arg{Name: "guid", Type: GUID, Required: true, Doc: "the container whose key signs"}
	argMoveDefault = Arg{Name: "move-default-to", Type: GUID, Doc: "the container that becomes the default"}
	argOldPIN      = Arg{Name: "old", Type: String, Required: true, Doc: "the current PIN"}
	argNewPIN      = Arg{Name: "new", Type: String, Required: true, Doc: "the new PIN"}
)

// csrFields is the result of every action that builds a certificate
// request for the test CA.
var csrFields = []Field{{Name: "csr", Type: CSR, Doc: "the PKCS#10 (DER), for ca-issue"}}

// processArgs are the arguments of every action a host process performs.
func processArgs(more ...Arg) []Arg {
	return append(append([]Arg{argHost}, more...), argProcess, argAPI, argSilent)
}

func itoa(n int) string { return strconv.Itoa(n) }
