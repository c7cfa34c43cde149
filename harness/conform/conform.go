package conform

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"github.com/cardharness/cardharness/harness/cardio"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/apdu"
)

// Options configure a run.
type Options struct {
	// PIN is the card's user PIN; "" makes the PIN checks not applicable.
	PIN string
	// AdminKey is the card's 3DES admin key; nil makes the admin checks
	// not applicable.
	AdminKey *[24]byte
	// Destructive allows checks that write to the card (keys, files, PIN
	// counter, access-rule probes that a defective card would obey).
	Destructive bool
	// KeySizes to generate (default 1024, 2048, 3072, 4096).
	KeySizes []int
	// PowerCycle cuts the card's power and restores it (pcsc.Card's
	// PowerCycle); nil: the persistence check uses the transport's warm
	// Reset and says so.
	PowerCycle func(context.Context) error
	// Only runs the checks with these IDs (nil: all).
	Only []string
	// Progress, if set, sees each check as it finishes.
	Progress func(Result)
}

// Status of a check.
type Status string

const (
	Pass          Status = "pass"
	Fail          Status = "fail"
	NotApplicable Status = "not-applicable"
)

// Result is one check's outcome.
type Result struct {
	ID      string  `json:"id"`
	Title   string  `json:"title"`
	Section string  `json:"section"` // "docs/reference/gids-protocol.md §2.9"
	Status  Status  `json:"status"`
	Message string  `json:"message,omitempty"` // why it failed, or why it does not apply
	Writes  bool    `json:"writes"`            // the check writes to the card
	Seconds float64 `json:"seconds"`
	// APDUs are the exchanges of a failed check, in order.
	APDUs []cardio.Exchange `json:"-"`
	// Trace is APDUs as text lines, for reports.
	Trace []string `json:"apdus,omitempty"`
}

// Report is a whole run.
type Report struct {
	Reader      string   `json:"reader"`
	ATR         string   `json:"atr"`
	Destructive bool     `json:"destructive"`
	Results     []Result `json:"checks"`
	APDUs       int      `json:"apdu_count"`
}

// Counts returns how many checks have each status.
func (r *Report) Counts() map[Status]int {
	m := map[Status]int{}
	for _, x := range r.Results {
		m[x.Status]++
	}
	return m
}

// OK reports whether no check failed.
func (r *Report) OK() bool { return r.Counts()[Fail] == 0 }

// check is one entry of the table.
type check struct {
	id, title string
	section   string // section number in docs/reference/gids-protocol.md
	writes    bool   // needs Options.Destructive
	needsPIN  bool
	needAdmin bool
	run       func(*T) error
}

// ErrNotApplicable marks a check that cannot apply to this card; wrap it
// with the reason (notApplicable does).
var ErrNotApplicable = errors.New("not applicable")

func notApplicable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotApplicable, fmt.Sprintf(format, args...))
}

// T is what a check works with.
type T struct {
	ctx  context.Context
	c    *cardio.Conn
	opts Options
	st   *state
}

// state is shared between checks of one run: what they created, so later
// checks can use it and the run can delete it.
type state struct {
	keys    map[int]byte // key size -> key reference generated
	pubs    map[int]*rsa.PublicKey
	created []uint16 // EFs created, to delete at the end
	dos     []uint16 // scratch DOs in A010 written, to delete at the end
	fci     []byte
}

// Run runs the checks against the card behind t. The transport is used
// for this run only; the card is logged out at the end.
func Run(ctx context.Context, t pcsc.Transport, reader string, opts Options) *Report {
	if len(opts.KeySizes) == 0 {
		opts.KeySizes = []int{1024, 2048, 3072, 4096}
	}
	c := cardio.New(t)
	rep := &Report{Reader: reader, ATR: cardio.Hex(t.ATR()), Destructive: opts.Destructive}
	tt := &T{ctx: ctx, c: c, opts: opts, st: &state{keys: map[int]byte{}}}
	only := map[string]bool{}
	for _, id := range opts.Only {
		only[id] = true
	}
	for _, ch := range checks() {
		if len(only) > 0 && !only[ch.id] {
			continue
		}
		r := tt.runOne(ch)
		rep.Results = append(rep.Results, r)
		if opts.Progress != nil {
			opts.Progress(r)
		}
	}
	if opts.Destructive {
		rep.Results = append(rep.Results, tt.runOne(cleanupCheck))
	}
	c.Send(ctx, logout)
	rep.APDUs = c.Count
	return rep
}

var logout = []byte{0x00, 0x20, 0x00, 0x82}

func (t *T) runOne(ch check) Result {
	r := Result{ID: ch.id, Title: ch.title, Section: "docs/reference/gids-protocol.md §" + ch.section, Writes: ch.writes}
	switch {
	case ch.writes && !t.opts.Destructive:
		r.Status, r.Message = NotApplicable, "writes to the card: run with --destructive"
		return r
	case ch.needsPIN && t.opts.PIN == "":
		r.Status, r.Message = NotApplicable, "needs the PIN: give --pin"
		return r
	case ch.needAdmin && t.opts.AdminKey == nil:
		r.Status, r.Message = NotApplicable, "needs the admin key: give --admin-key"
		return r
	}
	start := time.Now()
	mark := t.c.Mark()
	// Every check starts from a selected application with nobody
	// authenticated (SELECT by AID logs out, §1.5).
	err := t.selectGIDS()
	if err == nil {
		err = ch.run(t)
	}
	r.Seconds = time.Since(start).Seconds()
	switch {
	case err == nil:
		r.Status = Pass
	case errors.Is(err, ErrNotApplicable):
		r.Status, r.Message = NotApplicable, err.Error()
	default:
		r.Status, r.Message = Fail, err.Error()
		r.APDUs = t.c.Since(mark)
		for _, x := range r.APDUs {
			r.Trace = append(r.Trace, x.String())
		}
	}
	return r
}

// --- helpers for checks ---

var gidsAID9 = []byte{0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59}

func (t *T) selectGIDS() error {
	data, err := t.expect("SELECT GIDS AID", cardio.Short(0x00, 0xA4, 0x04, 0x00, gidsAID9, true), apdu.SWOK)
	if err == nil && t.st.fci == nil {
		t.st.fci = data
	}
	return err
}

// expect sends cmd (following 61xx) and fails unless the final status is
// one of want.
func (t *T) expect(what string, cmd []byte, want ...apdu.Status) ([]byte, error) {
	data, sw, err := t.c.Send(t.ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	for _, w := range want {
		if sw == w || (w == apdu.SWVerifyFailed && sw.SW1() == 0x63) {
			return data, nil
		}
	}
	return data, fmt.Errorf("%s: card answered %04X (%v), want %s", what, uint16(sw), sw, swList(want))
}

// refuse sends cmd and fails if the card accepts it (9000 or 61xx).
func (t *T) refuse(what string, cmd []byte, want ...apdu.Status) (apdu.Status, error) {
	_, sw, err := t.c.Raw(t.ctx, cmd)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if sw.OK() || sw.SW1() == 0x61 {
		return sw, fmt.Errorf("%s: card accepted it (%04X), want it refused with %s", what, uint16(sw), swList(want))
	}
	if len(want) > 0 {
		for _, w := range want {
			if sw == w {
				return sw, nil
			}
		}
		return sw, fmt.Errorf("%s: card answered %04X (%v), want %s", what, uint16(sw), sw, swList(want))
	}
	return sw, nil
}

func swList(ws []apdu.Status) string {
	if len(ws) == 0 {
		return "an error status"
	}
	s := ""
	for i, w := range ws {
		if i > 0 {
			s += " or "
		}
		if w == apdu.SWVerifyFailed {
			s += "63Cx"
			continue
		}
		s += fmt.Sprintf("%04X", uint16(w))
	}
	return s
}

func (t *T) verifyPIN() error {
	_, err := t.expect("VERIFY PIN", cardio.Short(0x00, 0x20, 0x00, 0x80, []byte(t.opts.PIN), false), apdu.SWOK)
	return err
}
