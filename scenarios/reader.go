package scenarios

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/cardharness/cardharness/harness/cardclean"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"go.yaml.in/yaml/v3"
)

// Reader mode (--reader): the scenarios run one after another on the one
// real card in that reader. Everything a real card cannot offer is decided
// before anything runs: the flags that cannot apply are refused, the
// reader name is checked, and each scenario is applicable or skipped with
// the reason, never half-run. Before every scenario (and after the last)
// the card is brought to a clean personalised state, by harness/cardclean
// with the admin key or by the vendor's --reset-cmd. docs/vendors.md is
// the user's side of this.

// The PIN and admin key a card declaration defaults to (the GIDS
// reference's, parse.go).
var (
	defaultPIN      = "123456"
	defaultAdminKey = strings.Repeat("00", 24)
)

// ErrReaderMode: a flag or option that cannot apply to a real card.
var ErrReaderMode = errors.New("cannot apply with --reader")

// checkReaderOptions refuses what cannot apply to one real card.
func checkReaderOptions(opts Options) error {
	switch {
	case opts.Parallel > 1:
		return fmt.Errorf("--parallel %d %w: one card runs one scenario at a time (two would reset it under each other); use --parallel 1", opts.Parallel, ErrReaderMode)
	case len(opts.CardFaults) > 0:
		return fmt.Errorf("--fault %s %w: faults are injected into virtual cards, a real card cannot be made to misbehave", strings.Join(opts.CardFaults, ","), ErrReaderMode)
	case opts.Stack == "direct":
		return fmt.Errorf("--stack direct %w: the card is in a reader, reached through pcscd", ErrReaderMode)
	case opts.PIN != "" && (len(opts.PIN) < 4 || len(opts.PIN) > 16):
		return fmt.Errorf("--pin: GIDS PINs have 4 to 16 characters")
	}
	if _, err := opts.adminKey(); err != nil {
		return err
	}
	if opts.ResetCmd == "" {
		if _, ok, _ := opts.adminKeyBytes(); !ok {
			return fmt.Errorf("--reader needs --admin-key to clean the card before every scenario (or --reset-cmd with your own tool)")
		}
	}
	return nil
}

// adminKeyBytes decodes Options.AdminKey; ok is false when none is given.
func (o Options) adminKeyBytes() (key [24]byte, ok bool, err error) {
	if o.AdminKey == "" {
		return key, false, nil
	}
	b, err := hex.DecodeString(o.AdminKey)
	if err != nil || len(b) != 24 {
		return key, false, fmt.Errorf("--admin-key: want 48 hex digits (a 24-byte 3DES key)")
	}
	copy(key[:], b)
	return key, true, nil
}

func (o Options) adminKey() ([24]byte, error) {
	k, _, err := o.adminKeyBytes()
	return k, err
}

// ReaderPreflight checks a --reader run before anything runs: the options
// that cannot apply are refused (errors.Is ErrReaderMode), and pcscd must
// know the reader (a *pcsc.UnknownReaderError listing the ones it sees).
func ReaderPreflight(opts Options) error {
	if err := checkReaderOptions(opts); err != nil {
		return err
	}
	if err := useSystemSocket(); err != nil {
		return err
	}
	return CheckReader(opts.Reader)
}

// CheckReader checks up front that pcscd knows the reader; the error lists
// the readers it does see.
func CheckReader(name string) error {
	client, err := pcsc.NewClient()
	if err != nil {
		return err
	}
	defer client.Close()
	return client.CheckReader(name)
}

// Applicability returns why a scenario cannot run on one real card in a
// reader (nothing: it applies). It reads only the scenario file: the
// number of cards, what the card declarations ask of a card, and every
// step's action (recursively through repeat).
func Applicability(sc *Scenario, opts Options) []string {
	var why []string
	if n := len(sc.Cards); n > 1 {
		why = append(why, fmt.Sprintf("declares %d cards; a reader holds one", n))
	}
	for _, name := range sortedStrings(keysOf(sc.Cards)) {
		d := sc.Cards[name]
		switch {
		case d.Profile == "blank":
			why = append(why, fmt.Sprintf("card %s is blank; the card in the reader is personalised", name))
		case d.CardID != "" || d.CardIDFrom != "":
			why = append(why, fmt.Sprintf("card %s chooses its cardid; a real card has its own", name))
		}
		if len(d.Faults) > 0 {
			why = append(why, fmt.Sprintf("card %s injects faults (%s)", name, strings.Join(d.Faults, ", ")))
		}
	}
	// A PIN written literally in a step is the declared one; on a card
	// with another PIN the step would fail for the wrong reason.
	literal := map[string]bool{}
	if opts.PIN != "" {
		for _, d := range sc.Cards {
			if d.PIN != opts.PIN {
				literal[d.PIN] = true
			}
		}
	}
	var walk func([]*Step)
	walk = func(steps []*Step) {
		for _, st := range steps {
			if st.action != nil && st.action.Internals {
				why = append(why, fmt.Sprintf("step %s:%d (%s) needs card internals", st.File, st.Line, st.Do))
			}
			if adminActions[st.Do] && opts.AdminKey == "" {
				why = append(why, fmt.Sprintf("step %s:%d (%s) needs the card's admin key: give --admin-key", st.File, st.Line, st.Do))
			}
			for _, name := range sortedStrings(keysOf(st.Args)) {
				if usesLiteral(st.Args[name], literal) {
					why = append(why, fmt.Sprintf("step %s:%d (%s) gives the PIN literally (%s:); the card's PIN is the one of --pin", st.File, st.Line, st.Do, name))
					break
				}
			}
			walk(st.Sub)
		}
	}
	walk(sc.Steps)
	return why
}

// adminActions are the actions that authenticate with the admin key: on a
// card in a reader that key is --admin-key, not the scenario's.
var adminActions = map[string]bool{"writer-unblock-pin": true}

func usesLiteral(n *yaml.Node, values map[string]bool) bool {
	if n == nil || len(values) == 0 {
		return false
	}
	if n.Kind == yaml.ScalarNode {
		return values[n.Value]
	}
	for _, c := range n.Content {
		if usesLiteral(c, values) {
			return true
		}
	}
	return false
}

// notCheckedOnReader are the invariants that read the card's insides.
var notCheckedOnReader = []string{
	"cardcf counters never go back (read from the card's store after every step)",
	"no orphan key files (key references listed from the card's store)",
}

// runOnReader is RunAll for --reader: serial, applicability first, the
// card cleaned before every scenario and after the last.
func runOnReader(ctx context.Context, refs []Ref, opts Options) ([]Result, error) {
	if err := ReaderPreflight(opts); err != nil {
		return nil, err
	}
	opts.Parallel = 1
	results := make([]Result, 0, len(refs))
	pin := opts.PIN
	if pin == "" {
		pin = defaultPIN
	}
	progress := func(r Result) {
		if opts.Progress != nil {
			progressLine(opts.Progress, r)
		}
	}
	for i, r := range refs {
		if ctx.Err() != nil {
			results = append(results, Result{Name: r.String(), File: r.String(), Status: Skip, Failure: "not run: the run was interrupted", Stack: "reader " + opts.Reader})
			continue
		}
		sc, err := r.load()
		if err != nil {
			res := Result{Name: r.String(), File: r.String(), Status: Error, Failure: err.Error()}
			results = append(results, res)
			progress(res)
			continue
		}
		if why := Applicability(sc, opts); len(why) > 0 {
			res := Result{Name: sc.Name, File: sc.File, Status: Skip, Stack: "reader " + opts.Reader,
				SkipReason: strings.Join(why, "; ")}
			res.Failure = "not applicable: " + res.SkipReason
			results = append(results, res)
			progress(res)
			continue
		}
		if err := cleanReaderCard(ctx, opts, pin); err != nil {
			res := Result{Name: sc.Name, File: sc.File, Status: Error, Stack: "reader " + opts.Reader,
				Failure: "cleaning the card before the scenario: " + err.Error()}
			results = append(results, res)
			progress(res)
			continue
		}
		for _, d := range sc.Cards { // the card in the reader has these
			d.PIN = pin
			if opts.AdminKey != "" {
				d.AdminKey = strings.ToLower(opts.AdminKey)
			}
		}
		ropts := opts
		if opts.OnProgress != nil {
			n, name := i+1, r.String()
			ropts.OnStep = func(step, steps int) {
				opts.OnProgress(Progress{Scenario: n, Scenarios: len(refs), Name: name, Step: step, Steps: steps})
			}
		}
		res := RunOne(ctx, sc, ropts)
		res.NotChecked = notCheckedOnReader
		results = append(results, res)
		if opts.OnProgress != nil {
			opts.OnProgress(Progress{Scenario: i + 1, Scenarios: len(refs), Name: r.String(), Done: true})
		}
		progress(res)
	}
	sortResults(results)
	// Leave the card clean. A failure is reported like a scenario's, so
	// the report says the card was left dirty and the run does not pass.
	if ctx.Err() == nil {
		if err := cleanReaderCard(ctx, opts, pin); err != nil {
			res := Result{Name: "clean the card after the run", File: opts.Reader, Status: Error, Stack: "reader " + opts.Reader,
				Failure: "cleaning the card after the run: " + err.Error()}
			results = append(results, res)
			progress(res)
		}
	}
	return results, nil
}

// ReaderApplicability says, per scenario, whether it applies to the card
// in a reader: "applies" or "not applicable: why" (run --reader --list).
func ReaderApplicability(refs []Ref, opts Options) ([]string, error) {
	var out []string
	for _, r := range refs {
		sc, err := r.load()
		if err != nil {
			return nil, err
		}
		line := r.String() + "\tapplies"
		if why := Applicability(sc, opts); len(why) > 0 {
			line = r.String() + "\tnot applicable: " + strings.Join(why, "; ")
		}
		out = append(out, line)
	}
	return out, nil
}

// cleanReaderCard brings the card in the reader to the clean state.
func cleanReaderCard(ctx context.Context, opts Options, pin string) error {
	if opts.ResetCmd != "" {
		return cardclean.RunResetCommand(ctx, opts.ResetCmd, opts.Reader)
	}
	key, err := opts.adminKey()
	if err != nil {
		return err
	}
	client, err := pcsc.NewClient()
	if err != nil {
		return err
	}
	defer client.Close()
	card, err := client.Connect(ctx, opts.Reader)
	if err != nil {
		return err
	}
	defer card.Close()
	_, err = cardclean.Clean(ctx, card, cardclean.Config{PIN: pin, AdminKey: key})
	return err
}

// countingTransport counts the APDUs a scenario sends (tools run as
// subprocesses are not counted).
type countingTransport struct {
	pcsc.Transport
	n *atomic.Int64
}

func (c countingTransport) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	c.n.Add(1)
	return c.Transport.Transmit(ctx, cmd)
}

func (c countingTransport) BeginTransaction(ctx context.Context) error {
	if tx, ok := c.Transport.(pcsc.Transactor); ok {
		return tx.BeginTransaction(ctx)
	}
	return nil
}

func (c countingTransport) EndTransaction(ctx context.Context) error {
	if tx, ok := c.Transport.(pcsc.Transactor); ok {
		return tx.EndTransaction(ctx)
	}
	return nil
}

// useSystemSocket binds libpcsclite to the pcscd PCSCLITE_CSOCK_NAME
// names (or the system one).
func useSystemSocket() error {
	if p := os.Getenv(pcsc.SocketEnv); p != "" {
		return pcsc.UseSocket(p)
	}
	return nil
}

// countingCard counts the APDUs a virtual card processes.
type countingCard struct {
	vcard.Card
	n *atomic.Int64
}

func (c countingCard) Process(cmd []byte) []byte {
	c.n.Add(1)
	return c.Card.Process(cmd)
}
