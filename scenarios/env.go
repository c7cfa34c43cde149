package scenarios

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/relay"
	"github.com/cardharness/cardharness/harness/tools"
	"github.com/cardharness/cardharness/harness/vclock"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/vcard/fault"
	"github.com/cardharness/cardharness/vcard/gids"
	"github.com/cardharness/cardharness/vcard/trace"
)

// epoch is the virtual clock's start: fixed, so reports are reproducible.
var epoch = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// cardEnv is one card of a running scenario.
type cardEnv struct {
	decl   *CardDecl
	gids   *gids.Card  // nil for a real card
	wrap   *fault.Card // lock + faults around gids
	reader string      // reader name the hosts and tools use
	source winhost.CardSource
	mdOpts minidriver.Options
	pin    string
	admin  [24]byte
	cardID fs.CardID
	trace  *trace.Writer // nil: no TraceDir, nothing reads it
	lastCF *fs.CardCF
	// toolEnv is the environment a tool needs to reach this card.
	toolEnv func() ([]string, error)
}

// env is a running scenario.
type env struct {
	ctx   context.Context
	sc    *Scenario
	opts  Options
	clock *vclock.Clock
	rng   *rand.Rand
	cards map[string]*cardEnv
	hosts map[string]*winhost.Host
	// hostKnobs are each host's knobs as the run set them (expect_if).
	hostKnobs map[string]winhost.Knobs
	procs     map[string]*winhost.Process
	vars      map[string]Values
	ca        *ca.CA
	stack     *stackHandle
	tmpDir    string
	relay     *relay.Server // started by the first relay step (actions_relay.go)
	// timeline records the per-step state for reports (timeline.go).
	timeline *timelineState
	// apdus counts the APDUs sent to the cards (reader.go).
	apdus atomic.Int64
}

// stepCtx resolves a step's arguments against the environment.
type stepCtx struct {
	e  *env
	st *Step
}

func (s *stepCtx) has(name string) bool { _, ok := s.st.Args[name]; return ok }

func (s *stepCtx) argErr(name, format string, args ...any) error {
	line := s.st.Line
	if n, ok := s.st.Args[name]; ok {
		line = n.Line
	}
	return &ParseError{File: s.st.File, Line: line, Msg: fmt.Sprintf("%s: %s", name, fmt.Sprintf(format, args...))}
}

var refRE = regexp.MustCompile(`^\$([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_-]+))?$`)
var interpRE = regexp.MustCompile(`\$\{([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_-]+))?\}`)

// lookup resolves $name or $name.field.
func (e *env) lookup(name, field string) (any, bool) {
	if r, ok := e.vars[name]; ok {
		if field == "" {
			return r, true
		}
		v, ok := r[field]
		return v, ok
	}
	if field == "" {
		if v, ok := e.sc.Vars[name]; ok {
			return v, true
		}
	}
	// A card's own values, so a tool step can give the PIN the card
	// really has (${card.pin}) instead of a literal that assumes one.
	if c, ok := e.cards[name]; ok {
		switch field {
		case "pin":
			return c.pin, true
		case "reader":
			return c.reader, true
		}
	}
	return nil, false
}

// arg is the declaration of the step's argument name (nil: the action does
// not declare it, a programming error the built-in suite would show).
func (s *stepCtx) arg(name string) *Arg { return s.st.action.arg(name) }

// str is an argument's value with references expanded, or its declared
// default.
func (s *stepCtx) str(name string) string {
	n, ok := s.st.Args[name]
	if !ok || n.Kind != yaml.ScalarNode {
		if a := s.arg(name); a != nil {
			return a.Default
		}
		return ""
	}
	return s.expand(n.Value)
}

// expand resolves $name.field (the whole value) and ${name.field} (inside
// text).
func (s *stepCtx) expand(v string) string {
	if m := refRE.FindStringSubmatch(v); m != nil {
		if x, ok := s.e.lookup(m[1], m[2]); ok {
			return fmt.Sprint(x)
		}
	}
	return interpolate(s.e, v)
}

// The typed accessors read values prepare has checked against the
// declaration, so they cannot fail.
func (s *stepCtx) int(name string) int {
	v, _ := strconv.Atoi(s.str(name))
	return v
}

func (s *stepCtx) bool(name string) bool {
	b, _ := parseBool(s.str(name))
	return b
}

func (s *stepCtx) duration(name string) time.Duration {
	d, _ := ParseDuration(s.str(name))
	return d
}

func (s *stepCtx) keySpec(name string) fs.KeySpec {
	switch strings.ToLower(s.str(name)) {
	case "signature", "at_signature":
		return fs.AT_SIGNATURE
	}
	return fs.AT_KEYEXCHANGE
}

func (s *stepCtx) bump() minidriver.Bump {
	b, _ := minidriver.ParseBump(strings.ToLower(s.str("bump")))
	return b
}

// prepare checks the step's arguments once their references are
// resolved: a saved value can hold anything, so what --check could not see
// is checked here, with the same messages.
func (s *stepCtx) prepare() error {
	for _, a := range s.st.action.Args {
		n, ok := s.st.Args[a.Name]
		if !ok || a.Type.isObject() || n.Kind != yaml.ScalarNode {
			continue
		}
		if a.Type == Command {
			continue
		}
		if err := a.check(s.expand(n.Value)); err != nil {
			return s.argErr(a.Name, "%v", err)
		}
	}
	return nil
}

// resolve expands $name.field and ${name.field} in a literal (used for
// expected values).
func (s *stepCtx) resolve(v string) string { return s.expand(v) }

// obj resolves an argument that names a saved value ($name or
// $name.field).
func (s *stepCtx) obj(name string) (any, error) {
	n, ok := s.st.Args[name]
	if !ok {
		return nil, s.argErr(name, "missing")
	}
	m := refRE.FindStringSubmatch(n.Value)
	if m == nil {
		return nil, s.argErr(name, "want a saved value such as $issued.cert, got %q", n.Value)
	}
	v, ok := s.e.lookup(m[1], m[2])
	if !ok {
		return nil, s.argErr(name, "%s is not defined here (saved so far: %s)", n.Value, keys(s.e.vars))
	}
	return v, nil
}

// savedAs resolves an object argument to a T: $x.field, or $x where x's
// result holds a T under field. notT is the argument's error otherwise
// (what to save instead).
func savedAs[T any](s *stepCtx, name, field, notT string) (T, error) {
	var zero T
	v, err := s.obj(name)
	if err != nil {
		return zero, err
	}
	if r, ok := v.(Values); ok {
		v = r[field]
	}
	t, ok := v.(T)
	if !ok {
		return zero, s.argErr(name, "%s", notT)
	}
	return t, nil
}

// cert resolves a certificate argument: $x.cert, or $x where x holds one.
func (s *stepCtx) cert(name string) (*x509.Certificate, error) {
	const notCert = "not a certificate (save the result of ca-issue or ca-renew)"
	c, err := savedAs[*x509.Certificate](s, name, "cert", notCert)
	if err == nil && c == nil {
		return nil, s.argErr(name, notCert)
	}
	return c, err
}

func (e *env) newGUID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(e.rng.UintN(256))
	}
	b[6] = b[6]&0x0F | 0x40
	b[8] = b[8]&0x3F | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (e *env) card(s *stepCtx) (*cardEnv, error) { return declared(s, "card", e.cards) }

func (e *env) host(s *stepCtx) (*winhost.Host, error) { return declared(s, "host", e.hosts) }

// declared is what the step's argument arg (card or host) names among the
// scenario's declarations m.
func declared[T any](s *stepCtx, arg string, m map[string]T) (T, error) {
	name := s.str(arg)
	v, ok := m[name]
	if !ok {
		var zero T
		return zero, s.argErr(arg, "no %s %q", arg, name)
	}
	return v, nil
}

// process returns (starting it on first use) the named process of the
// step's host; default "app", API from api: (capi or cng).
func (e *env) process(s *stepCtx) (*winhost.Process, error) {
	p, _, err := e.processHost(s)
	return p, err
}

func (e *env) processHost(s *stepCtx) (*winhost.Process, *winhost.Host, error) {
	h, err := e.host(s)
	if err != nil {
		return nil, nil, err
	}
	name := s.str("process")
	if name == "" {
		name = "app"
	}
	api := winhost.CAPI
	switch strings.ToLower(s.str("api")) {
	case "cng", "ksp":
		api = winhost.CNG
	}
	key := h.Name() + "/" + name + "/" + api.String()
	p, ok := e.procs[key]
	if !ok || p.Exited() {
		p = h.StartProcess(name, winhost.ProcessOptions{API: api, Silent: s.bool("silent")})
		e.procs[key] = p
	}
	return p, h, nil
}

// The Run functions of most actions start by looking up what the step
// names: its host, card or process, or a minidriver client on its card.
// These adapters do that look-up (failing with the argument's error), so an
// action's function starts with what the action does.

// runFunc is an action's Run.
type runFunc = func(e *env, s *stepCtx) (Values, error)

// given adapts f, an action that needs what get looks up for the step.
func given[T any](get func(*env, *stepCtx) (T, error), f func(e *env, s *stepCtx, x T) (Values, error)) runFunc {
	return func(e *env, s *stepCtx) (Values, error) {
		x, err := get(e, s)
		if err != nil {
			return nil, err
		}
		return f(e, s, x)
	}
}

func onHost(f func(e *env, s *stepCtx, h *winhost.Host) (Values, error)) runFunc {
	return given((*env).host, f)
}

func onCard(f func(e *env, s *stepCtx, c *cardEnv) (Values, error)) runFunc {
	return given((*env).card, f)
}

func onProcess(f func(e *env, s *stepCtx, p *winhost.Process) (Values, error)) runFunc {
	return given((*env).process, f)
}

// onHostCard: the host, then the card (the first argument error wins).
func onHostCard(f func(e *env, s *stepCtx, h *winhost.Host, c *cardEnv) (Values, error)) runFunc {
	return onHost(func(e *env, s *stepCtx, h *winhost.Host) (Values, error) {
		return onCard(func(e *env, s *stepCtx, c *cardEnv) (Values, error) { return f(e, s, h, c) })(e, s)
	})
}

// onProcessCard: the process (on the step's host), then the card.
func onProcessCard(f func(e *env, s *stepCtx, p *winhost.Process, c *cardEnv) (Values, error)) runFunc {
	return onProcess(func(e *env, s *stepCtx, p *winhost.Process) (Values, error) {
		return onCard(func(e *env, s *stepCtx, c *cardEnv) (Values, error) { return f(e, s, p, c) })(e, s)
	})
}

// onClient runs f with a minidriver client on the step's card, no PIN
// verified (writer steps that authenticate themselves, and readers).
func onClient(f func(e *env, s *stepCtx, c *cardEnv, md *minidriver.Card) (Values, error)) runFunc {
	return onCard(func(e *env, s *stepCtx, c *cardEnv) (Values, error) {
		md, closeFn, err := e.mdClient(c)
		if err != nil {
			return nil, err
		}
		defer closeFn()
		return f(e, s, c, md)
	})
}

// mdClient opens a minidriver context on a card for an out-of-band step.
func (e *env) mdClient(c *cardEnv) (*minidriver.Card, func(), error) {
	t, err := c.source()
	if err != nil {
		return nil, nil, err
	}
	md, err := minidriver.Acquire(e.ctx, t, c.mdOpts)
	if err != nil {
		t.Close()
		return nil, nil, err
	}
	return md, func() { t.Close() }, nil
}

func pinOr(pin, def string) string {
	if pin == "" {
		return def
	}
	return pin
}

// writer runs an out-of-band write: PIN verified, then f with the policy.
func (e *env) writer(s *stepCtx, f func(md *minidriver.Card, bump minidriver.Bump) error) error {
	bump := s.bump()
	c, err := e.card(s)
	if err != nil {
		return err
	}
	md, closeFn, err := e.mdClient(c)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := md.AuthenticatePIN(e.ctx, pinOr(s.str("pin"), c.pin)); err != nil {
		return err
	}
	defer md.Deauthenticate(e.ctx)
	return f(md, bump)
}

func (e *env) reinitialize(c *cardEnv, keepCardID bool) error {
	if c.gids == nil {
		return fmt.Errorf("re-initialising needs a virtual card")
	}
	if err := c.gids.FactoryReset(); err != nil {
		return err
	}
	id := c.cardID
	if !keepCardID {
		for i := range id {
			id[i] = byte(e.rng.UintN(256))
		}
	}
	if err := c.gids.Initialize(gids.InitParams{PIN: c.decl.PIN, AdminKey: c.admin, CardID: id}); err != nil {
		return err
	}
	c.cardID, c.pin = id, c.decl.PIN
	c.lastCF = nil // counters start again
	return nil
}

// defaultTemplate is the test CA's "User" template: a v2 template whose
// renewals are authorised by a valid existing certificate.
var defaultTemplate = ca.TemplateID{OID: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 8, 7, 1}, Major: 100, Minor: 3, Name: "User"}

func (e *env) template(name string) ca.TemplateID {
	if name == "" || name == "User" {
		return defaultTemplate
	}
	return ca.TemplateID{OID: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 8, 7, 99}, Major: 1, Name: name}
}

// requesterIdentity is the test CA's directory: every requester is the
// scenario's user, except a machine account (a name ending in "$", a server
// submitting for the user, S17), which is itself.
func requesterIdentity(name string) (ca.Identity, bool) {
	if strings.HasSuffix(name, "$") {
		return ca.Identity{Name: name}, true
	}
	return ca.Identity{Name: "CONTOSO\\user"}, true
}

func (e *env) getCA() (*ca.CA, error) {
	if e.ca != nil {
		return e.ca, nil
	}
	seed := [32]byte{}
	binary.BigEndian.PutUint64(seed[:], uint64(e.sc.Seed))
	cca, err := ca.New(ca.Options{Name: "cardharness test CA", Clock: e.clock.Now,
		Rand: rand.NewChaCha8(seed), Key: caKey(), // testkeys.go
		Templates: []ca.Template{{ID: defaultTemplate, ValidExistingCertificate: true, Validity: 365 * 24 * time.Hour,
			EnrolleeSuppliesSubject: true}},
		RequesterIdentity: requesterIdentity,
	})
	if err != nil {
		return nil, err
	}
	e.ca = cca
	return cca, nil
}

func (e *env) runTool(c *cardEnv, s *stepCtx) (Values, error) {
	n := s.st.Args["run"]
	var args []string
	if n.Kind == yaml.SequenceNode {
		for _, a := range n.Content {
			args = append(args, interpolate(e, a.Value))
		}
	} else {
		args = strings.Fields(interpolate(e, n.Value))
	}
	if len(args) == 0 {
		return nil, s.argErr("run", "empty command")
	}
	envv, err := c.toolEnv()
	if err != nil {
		return nil, err
	}
	if e.tmpDir == "" {
		if e.tmpDir, err = os.MkdirTemp("", "cardharness-tool-"); err != nil {
			return nil, err
		}
	}
	r := &tools.Runner{Env: envv, Dir: e.tmpDir}
	res, err := r.Run(e.ctx, args[0], args[1:]...)
	out := Values{}
	if res != nil {
		out["exit"] = res.ExitCode
		out["output"] = res.Output()
	}
	return out, err
}

func interpolate(e *env, v string) string {
	return interpRE.ReplaceAllStringFunc(v, func(ref string) string {
		m := interpRE.FindStringSubmatch(ref)
		if x, ok := e.lookup(m[1], m[2]); ok {
			return fmt.Sprint(x)
		}
		return ref
	})
}
