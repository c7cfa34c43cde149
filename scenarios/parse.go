package scenarios

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/vcard/fault"
)

// ParseError is a problem in a scenario file, with the place it is at.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ParseErrors collects several problems; a scenario file reports all it
// can, not just the first.
type ParseErrors []*ParseError

func (es ParseErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Bounds on scenario files: a scenario file is small text written by a
// person, so anything far beyond these is a mistake or an attack, refused
// with an error rather than followed until memory or time runs out.
const (
	// MaxFileBytes bounds one scenario or include file.
	MaxFileBytes = 1 << 20
	// MaxFiles bounds the files one scenario reads (itself and includes).
	MaxFiles = 64
	// MaxSteps bounds the steps of a scenario after includes are merged.
	MaxSteps = 10000
	// MaxStepRuns bounds the steps a scenario runs, repeats multiplied out.
	MaxStepRuns = 1000000
)

// sorted orders the errors by file and line, as a reader goes through
// the file.
func (es ParseErrors) sorted() ParseErrors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].File != es[j].File {
			return es[i].File < es[j].File
		}
		return es[i].Line < es[j].Line
	})
	return es
}

type parser struct {
	fsys fs.FS
	// roots are the directories includes must stay under (the directory
	// of the scenario that started the run, plus --include-path).
	roots []string
	file  string
	errs  ParseErrors
	// chain is the include chain being read (for cycles); loaded maps each
	// file read to where it was first included.
	chain  []string
	loaded map[string]string
	// includeFailed: an include could not be read, so checks of the
	// whole scenario would only repeat that error in other words.
	includeFailed bool
	// disk: fsys is the operating system's (paths may be absolute and
	// symlinks are resolved before the root check).
	disk bool
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func newParser(fsys fs.FS, top string, roots []string) *parser {
	_, disk := fsys.(osFS)
	if len(roots) == 0 {
		roots = []string{path.Dir(top)}
	}
	return &parser{fsys: fsys, file: top, roots: roots, loaded: map[string]string{}, disk: disk}
}

// Load parses the scenario file name in fsys, with its includes (which must
// lie under name's directory).
func Load(fsys fs.FS, name string) (*Scenario, error) {
	return LoadWithin(fsys, name, nil)
}

// LoadWithin is Load with the directories includes may come from (nil:
// name's directory).
func LoadWithin(fsys fs.FS, name string, roots []string) (*Scenario, error) {
	p := newParser(fsys, name, roots)
	b, err := p.read(name)
	if err != nil {
		p.errs = append(p.errs, &ParseError{File: name, Msg: err.Error()})
		return nil, p.errs
	}
	p.loaded[p.key(name)] = "the command line"
	p.chain = []string{p.key(name)}
	s := p.parse(name, b)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	return s, nil
}

// Parse parses one scenario from b (file names the source in errors;
// includes are resolved in fsys relative to it, under its directory).
func Parse(fsys fs.FS, file string, b []byte) (*Scenario, error) {
	p := newParser(fsys, file, nil)
	if len(b) > MaxFileBytes {
		return nil, ParseErrors{{File: file, Msg: fmt.Sprintf("%d bytes: a scenario file may have at most %d", len(b), MaxFileBytes)}}
	}
	p.chain = []string{p.key(file)}
	s := p.parse(file, b)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	return s, nil
}

// key identifies a file for cycle and read-once checks.
func (p *parser) key(name string) string {
	if p.disk {
		if abs, err := filepath.Abs(name); err == nil {
			if real, err := filepath.EvalSymlinks(abs); err == nil {
				return real
			}
			return abs
		}
	}
	return path.Clean(name)
}

// read reads a regular file of at most MaxFileBytes. Errors say what is
// wrong with the file, never what is in it.
func (p *parser) read(name string) ([]byte, error) {
	f, err := p.fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("no such file")
		}
		return nil, errors.New("cannot open the file")
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, errors.New("cannot stat the file")
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", modeName(st.Mode()))
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%d bytes: a scenario file may have at most %d", st.Size(), MaxFileBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, errors.New("read failed")
	}
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("more than %d bytes: a scenario file may have at most %d", MaxFileBytes, MaxFileBytes)
	}
	return b, nil
}

// quotePath quotes an include path as written (the user's own text, so
// shown whole unless absurdly long).
func quotePath(p string) string {
	if len(p) > 256 {
		return quote(p)
	}
	return strconv.Quote(p)
}

func modeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeDevice != 0 || m&fs.ModeCharDevice != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

// resolveInclude turns an include as written into the name to open:
// relative to the including file, or absolute as given; it must lie under
// one of the roots.
func (p *parser) resolveInclude(from, inc string) (string, error) {
	var name string
	switch {
	case path.IsAbs(inc) && !p.disk:
		return "", errors.New("absolute include paths are not allowed here")
	case path.IsAbs(inc):
		name = path.Clean(inc)
	default:
		name = path.Join(path.Dir(from), inc)
	}
	for _, root := range p.roots {
		if p.within(root, name) {
			return name, nil
		}
	}
	return "", fmt.Errorf("outside %s (includes stay under the scenario's directory; --include-path DIR allows another)", strings.Join(p.roots, ", "))
}

func (p *parser) within(root, name string) bool {
	if !p.disk {
		root = path.Clean(root)
		return root == "." && !strings.HasPrefix(name, "../") && name != ".." || name == root || strings.HasPrefix(name, root+"/")
	}
	r, err1 := filepath.Abs(root)
	n, err2 := filepath.Abs(name)
	if err1 != nil || err2 != nil {
		return false
	}
	if rr, err := filepath.EvalSymlinks(r); err == nil {
		r = rr
	}
	// A symlink inside the root pointing outside does not count as inside.
	if nn, err := filepath.EvalSymlinks(n); err == nil {
		n = nn
	}
	rel, err := filepath.Rel(r, n)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func (p *parser) parse(file string, b []byte) *Scenario {
	saved := p.file
	p.file = file
	defer func() { p.file = saved }()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		p.errs = append(p.errs, yamlError(file, err))
		return nil
	}
	if len(doc.Content) == 0 {
		p.errf(nil, "empty scenario file")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errf(root, "a scenario is a mapping (name:, cards:, hosts:, steps: ...), not a %s", kindName(root))
		return nil
	}
	s := &Scenario{File: file, Vars: map[string]string{}, Cards: map[string]*CardDecl{}, Hosts: map[string]*HostDecl{}}
	var includes []*yaml.Node
	p.mapping(root, map[string]func(k, v *yaml.Node){
		"name":        func(k, v *yaml.Node) { s.Name = p.str(v) },
		"description": func(k, v *yaml.Node) { s.Description = p.str(v) },
		"tags":        func(k, v *yaml.Node) { s.Tags = p.strList(v) },
		"seed":        func(k, v *yaml.Node) { s.Seed = p.int(v); s.SeedSet = true },
		"include":     func(k, v *yaml.Node) { includes = p.seq(v) },
		"vars": func(k, v *yaml.Node) {
			p.anyMapping(v, func(k, v *yaml.Node) { s.Vars[k.Value] = p.str(v) })
		},
		"cards": func(k, v *yaml.Node) {
			p.anyMapping(v, func(k, v *yaml.Node) { s.Cards[k.Value] = p.card(k, v) })
		},
		"hosts": func(k, v *yaml.Node) {
			p.anyMapping(v, func(k, v *yaml.Node) { s.Hosts[k.Value] = p.host(k, v) })
		},
		"steps":      func(k, v *yaml.Node) { s.Steps = append(s.Steps, p.steps(v)...) },
		"invariants": func(k, v *yaml.Node) { p.invariants(v, &s.Invariants) },
	})
	// Includes come first: a shared setup's declarations and steps, then
	// this file's (which may override vars, cards and hosts by name).
	if len(includes) > 0 {
		merged := &Scenario{File: file, Vars: map[string]string{}, Cards: map[string]*CardDecl{}, Hosts: map[string]*HostDecl{}}
		for _, inc := range includes {
			sub := p.include(file, inc)
			if sub == nil {
				continue
			}
			merged.declare(sub)
			merged.Steps = append(merged.Steps, sub.Steps...)
			if len(merged.Steps) > MaxSteps {
				p.errf(inc, "more than %d steps with includes", MaxSteps)
				return s
			}
		}
		merged.declare(s)
		s.Vars, s.Cards, s.Hosts = merged.Vars, merged.Cards, merged.Hosts
		s.Steps = append(merged.Steps, s.Steps...)
	}
	if len(p.chain) <= 1 && !p.includeFailed {
		p.check(root, s)
	}
	return s
}

// include reads one include: each file at most once per scenario, no
// cycles, under the roots, bounded in size and number.
func (p *parser) include(from string, inc *yaml.Node) *Scenario {
	written := p.str(inc)
	if written == "" {
		return nil
	}
	before := len(p.errs)
	defer func() {
		if len(p.errs) > before {
			p.includeFailed = true
		}
	}()
	name, err := p.resolveInclude(from, written)
	if err != nil {
		p.errf(inc, "include %s: %v", quotePath(written), err)
		return nil
	}
	k := p.key(name)
	for i, c := range p.chain {
		if c == k {
			cycle := append(append([]string{}, p.chain[i:]...), k)
			for j := range cycle {
				cycle[j] = filepath.Base(cycle[j])
			}
			p.errf(inc, "include cycle: %s", strings.Join(cycle, " -> "))
			return nil
		}
	}
	if where, ok := p.loaded[k]; ok {
		p.errf(inc, "include %s: already included (at %s); a file is included at most once per scenario", quotePath(written), where)
		return nil
	}
	if len(p.loaded) >= MaxFiles {
		p.errf(inc, "include %s: more than %d files in one scenario", quotePath(written), MaxFiles)
		return nil
	}
	p.loaded[k] = fmt.Sprintf("%s:%d", p.file, inc.Line)
	b, err := p.read(name)
	if err != nil {
		p.errf(inc, "include %s: %v", quotePath(written), err)
		return nil
	}
	p.chain = append(p.chain, k)
	defer func() { p.chain = p.chain[:len(p.chain)-1] }()
	return p.parse(name, b)
}

// check validates what only makes sense on the whole scenario.
func (p *parser) check(root *yaml.Node, s *Scenario) {
	if s.Name == "" {
		p.errf(root, "scenario has no name:")
	}
	if len(s.Steps) == 0 {
		p.errf(root, "scenario has no steps:")
	}
	for _, st := range s.Steps {
		for _, ref := range st.refs() {
			switch ref.kind {
			case "card":
				if _, ok := s.Cards[ref.name]; !ok {
					p.errAt(st.File, ref.line, "step %q: no card named %s%s (declared: %s)", st.Do, quote(ref.name), didYouMean(ref.name, keysOf(s.Cards)), keys(s.Cards))
				}
			case "host":
				if _, ok := s.Hosts[ref.name]; !ok {
					p.errAt(st.File, ref.line, "step %q: no host named %s%s (declared: %s)", st.Do, quote(ref.name), didYouMean(ref.name, keysOf(s.Hosts)), keys(s.Hosts))
				}
			}
		}
	}
	for name, c := range s.Cards {
		if c.CardIDFrom != "" {
			if _, ok := s.Cards[c.CardIDFrom]; !ok || c.CardIDFrom == name {
				p.errAt(c.File, c.Line, "card %q: cardid_from %s is not another declared card", name, quote(c.CardIDFrom))
			}
		}
	}
	for _, hn := range sortedStrings(keysOf(s.Hosts)) {
		if _, err := knobs(s.Hosts[hn]); err != nil {
			var pe ParseErrors
			if errors.As(err, &pe) {
				p.errs = append(p.errs, pe...)
			}
		}
	}
	if len(s.Steps) > MaxSteps {
		p.errf(root, "%d steps: a scenario may have at most %d", len(s.Steps), MaxSteps)
		return
	}
	p.checkVariables(s)
	if n := stepRuns(s.Steps); n > MaxStepRuns {
		p.errf(root, "the scenario would run %d steps (repeats multiplied out), more than %d", n, MaxStepRuns)
	}
}

func (p *parser) errAt(file string, line int, format string, args ...any) {
	p.errs = append(p.errs, &ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func keys[V any](m map[string]V) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	if len(ks) == 0 {
		return "none"
	}
	return strings.Join(ks, ", ")
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

func yamlError(file string, err error) *ParseError {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &ParseError{File: file, Line: n, Msg: "YAML: " + m[2]}
	}
	return &ParseError{File: file, Msg: "YAML: " + msg}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "value " + quote(n.Value)
	case yaml.AliasNode:
		return "YAML alias (write the value out)"
	}
	return "document"
}

// mapping walks a mapping with known keys; an unknown key is an error that
// lists the known ones.
func (p *parser) mapping(n *yaml.Node, fields map[string]func(k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "want a mapping, got a %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f, ok := fields[k.Value]
		if !ok {
			known := make([]string, 0, len(fields))
			for name := range fields {
				known = append(known, name)
			}
			sort.Strings(known)
			p.errf(k, "unknown key %s%s (known: %s)", quote(k.Value), didYouMean(k.Value, known), strings.Join(known, ", "))
			continue
		}
		if seen[k.Value] {
			p.errf(k, "key %s given twice", quote(k.Value))
		}
		seen[k.Value] = true
		f(k, v)
	}
}

func (p *parser) anyMapping(n *yaml.Node, f func(k, v *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "want a mapping, got a %s", kindName(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		f(n.Content[i], n.Content[i+1])
	}
}

func (p *parser) seq(n *yaml.Node) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "want a list, got a %s", kindName(n))
		return nil
	}
	return n.Content
}

func (p *parser) str(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		p.errf(n, "want a value, got a %s", kindName(n))
		return ""
	}
	return n.Value
}

func (p *parser) strList(n *yaml.Node) []string {
	var out []string
	for _, e := range p.seq(n) {
		out = append(out, p.str(e))
	}
	return out
}

func (p *parser) int(n *yaml.Node) int64 {
	v, err := strconv.ParseInt(p.str(n), 0, 64)
	if err != nil {
		p.errf(n, "want a whole number, got %s", quote(n.Value))
	}
	return v
}

func (p *parser) bool(n *yaml.Node) bool {
	switch strings.ToLower(p.str(n)) {
	case "true", "yes", "on":
		return true
	case "false", "no", "off":
		return false
	}
	p.errf(n, "want true or false, got %s%s", quote(n.Value), didYouMean(n.Value, []string{"true", "false"}))
	return false
}

// ParseDuration reads Go durations plus days ("3d", "1d12h"), the unit
// enrollment flows think in. Negative durations and durations over 100
// years are refused: the virtual clock only moves forward, and an overflow
// would wrap.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("bad duration %s (want e.g. 3d, 36h, 90s)", quote(s))
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative duration %s: the clock only moves forward", quote(s))
	}
	var total time.Duration
	rest := s
	if i := strings.Index(rest, "d"); i >= 0 {
		days, err := strconv.ParseUint(rest[:i], 10, 32)
		if err != nil {
			return 0, bad
		}
		if days > uint64(maxDuration/(24*time.Hour)) {
			return 0, fmt.Errorf("duration %s is longer than 100 years", quote(s))
		}
		total = time.Duration(days) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		if strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
			return 0, bad
		}
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, bad
		}
		if d > maxDuration {
			return 0, fmt.Errorf("duration %s is longer than 100 years", quote(s))
		}
		total += d
	}
	if total > maxDuration {
		return 0, fmt.Errorf("duration %s is longer than 100 years", quote(s))
	}
	return total, nil
}

func (p *parser) card(k, v *yaml.Node) *CardDecl {
	c := &CardDecl{Name: k.Value, File: p.file, Line: k.Line, Profile: "initialized", PIN: defaultPIN,
		AdminKey: defaultAdminKey, CacheMode: "global"}
	if v.Kind == yaml.ScalarNode && v.Value == "" {
		return c // `card1:` with defaults
	}
	p.mapping(v, map[string]func(k, v *yaml.Node){
		"profile": func(k, v *yaml.Node) {
			c.Profile = p.str(v)
			if c.Profile != "blank" && c.Profile != "initialized" {
				p.errf(v, "profile %s: want blank or initialized%s", quote(c.Profile), didYouMean(c.Profile, []string{"blank", "initialized"}))
			}
		},
		"pin":         func(k, v *yaml.Node) { c.PIN = p.str(v) },
		"admin_key":   func(k, v *yaml.Node) { c.AdminKey = p.hexField(v, 24, "admin_key") },
		"cardid":      func(k, v *yaml.Node) { c.CardID = p.hexField(v, 16, "cardid") },
		"cardid_from": func(k, v *yaml.Node) { c.CardIDFrom = p.str(v) },
		"cache_mode": func(k, v *yaml.Node) {
			c.CacheMode = p.str(v)
			if c.CacheMode != "global" && c.CacheMode != "session-only" && c.CacheMode != "none" {
				p.errf(v, "cache_mode %s: want global, session-only or none%s", quote(c.CacheMode), didYouMean(c.CacheMode, []string{"global", "session-only", "none"}))
			}
		},
		"read_only": func(k, v *yaml.Node) { c.ReadOnly = p.bool(v) },
		"max_containers": func(k, v *yaml.Node) {
			c.MaxContainers = int(p.int(v))
			if c.MaxContainers < 0 || c.MaxContainers > 255 {
				p.errf(v, "max_containers %d: want 0 (the card's own limit) to 255", c.MaxContainers)
			}
		},
		"session_pins": func(k, v *yaml.Node) { c.SessionPINs = p.bool(v) },
		"faults": func(k, v *yaml.Node) {
			for _, f := range p.seq(v) {
				name := p.str(f)
				if !fault.Known(name) {
					p.errf(f, "unknown card fault %s%s (known: %s)", quote(name), didYouMean(name, fault.Names()), strings.Join(fault.Names(), ", "))
				}
				c.Faults = append(c.Faults, name)
			}
		},
	})
	if len(c.PIN) < 4 || len(c.PIN) > 16 {
		p.errf(v, "card %s: the PIN must have 4 to 16 characters, it has %d", quote(c.Name), len(c.PIN))
	}
	return c
}

func (p *parser) hexField(v *yaml.Node, n int, what string) string {
	s := strings.ReplaceAll(p.str(v), " ", "")
	if len(s) != 2*n || !isHex(s) {
		p.errf(v, "%s %s: want %d hex digits", what, quote(v.Value), 2*n)
	}
	return s
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

func (p *parser) host(k, v *yaml.Node) *HostDecl {
	h := &HostDecl{Name: k.Value, File: p.file, Line: k.Line, Knobs: map[string]KnobValue{}, UserPIN: ""}
	if v.Kind == yaml.ScalarNode && v.Value == "" {
		return h
	}
	p.mapping(v, map[string]func(k, v *yaml.Node){
		"user_pin": func(k, v *yaml.Node) { h.UserPIN = p.str(v) },
		"profile": func(k, v *yaml.Node) {
			h.Profile, h.ProfileLine = p.str(v), v.Line
			if _, err := winhost.ProfileKnobs(h.Profile); err != nil {
				p.errf(v, "host %q: %v%s", h.Name, err, didYouMean(h.Profile, winhost.ProfileNames()))
			}
		},
		"knobs": func(k, v *yaml.Node) {
			p.anyMapping(v, func(k, v *yaml.Node) {
				h.Knobs[k.Value] = KnobValue{Value: p.str(v), Line: v.Line}
			})
		},
	})
	return h
}

func (p *parser) invariants(v *yaml.Node, inv *Invariants) {
	p.mapping(v, map[string]func(k, v *yaml.Node){
		"counters_may_go_back": func(k, v *yaml.Node) { inv.CountersMayGoBack = p.bool(v) },
		"skip":                 func(k, v *yaml.Node) { inv.Skip = p.bool(v) },
	})
}

func (p *parser) steps(v *yaml.Node) []*Step {
	var out []*Step
	for _, n := range p.seq(v) {
		if st := p.step(n); st != nil {
			out = append(out, st)
		}
	}
	return out
}

// step parses one step. The keys an action takes are checked when the
// action is bound (see action.go), so that an unknown argument is
// reported with the action's own list of arguments.
func (p *parser) step(n *yaml.Node) *Step {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "a step is a mapping with do: and its arguments, got a %s", kindName(n))
		return nil
	}
	st := &Step{File: p.file, Line: n.Line, Args: map[string]*yaml.Node{}}
	var ifNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "do":
			st.Do = p.str(v)
		case "name":
			st.Name = p.str(v)
		case "expect":
			st.Expect = v
		case "expect_if":
			ifNode = v
		case "save":
			st.Save = p.str(v)
		case "steps":
			st.Sub = p.steps(v)
		default:
			if _, dup := st.Args[k.Value]; dup {
				p.errf(k, "key %s given twice", quote(k.Value))
			}
			st.Args[k.Value] = v
		}
	}
	if st.Do == "" {
		p.errf(n, "step has no do: (cardharness actions lists the actions)")
		return nil
	}
	if (st.Do == "repeat") != (st.Sub != nil) {
		p.errf(n, "steps: belongs to do: repeat (and repeat needs steps:)")
	}
	a, ok := actions[st.Do]
	if !ok {
		p.errf(n, "unknown action %s%s (cardharness actions lists them)", quote(st.Do), didYouMean(st.Do, ActionNames()))
		return nil
	}
	st.action = a
	for _, name := range sortedStrings(keysOf(st.Args)) {
		arg := st.Args[name]
		decl := a.arg(name)
		if decl == nil {
			known := append(a.argNames(), "name", "expect", "expect_if", "save")
			p.errf(arg, "action %q takes no argument %s%s (it takes: %s)", st.Do, quote(name), didYouMean(name, known), strings.Join(a.argNames(), ", "))
			continue
		}
		p.checkArg(st, decl, arg)
	}
	for _, decl := range a.Args {
		if _, ok := st.Args[decl.Name]; decl.Required && !ok {
			p.errf(n, "action %q needs %s:", st.Do, decl.Name)
		}
	}
	if st.Expect != nil {
		p.expect(st, a)
	}
	if ifNode != nil {
		p.expectIf(st, a, ifNode)
	}
	return st
}

// expectIf parses expect_if: a list of {when: {KNOB: VALUE, profile: P,
// host: H}, expect: {...}}. Knob names and values are checked as in
// hosts: (a typo would make the condition never hold, silently).
func (p *parser) expectIf(st *Step, a *Action, v *yaml.Node) {
	for _, n := range p.seq(v) {
		if n.Kind != yaml.MappingNode {
			p.errf(n, "expect_if: each entry is a mapping with when: and expect:, got a %s", kindName(n))
			continue
		}
		ce := &CondExpect{Line: n.Line, Knobs: map[string]string{}}
		tmp := &Step{File: st.File, Line: n.Line}
		var when *yaml.Node
		p.mapping(n, map[string]func(k, v *yaml.Node){
			"when":   func(k, v *yaml.Node) { when = v },
			"expect": func(k, v *yaml.Node) { tmp.Expect = v },
		})
		if when == nil || tmp.Expect == nil {
			p.errf(n, "expect_if: each entry needs when: and expect:")
			continue
		}
		if when.Kind != yaml.MappingNode || len(when.Content) == 0 {
			p.errf(when, "expect_if.when: want a mapping of knobs (and profile:, host:), got a %s", kindName(when))
			continue
		}
		for i := 0; i+1 < len(when.Content); i += 2 {
			k, val := when.Content[i], when.Content[i+1]
			switch k.Value {
			case "host":
				ce.Host = p.str(val)
			case "profile":
				ce.Profile = p.str(val)
				if err := checkProfileName(ce.Profile); err != nil {
					p.errf(val, "expect_if.when.profile: %v", err)
				}
			default:
				if err := checkKnob(k.Value, p.str(val)); err != nil {
					p.errf(k, "expect_if.when: %v", err)
				}
				ce.Knobs[k.Value] = val.Value
			}
		}
		p.expect(tmp, a)
		ce.ExpectError, ce.ExpectResult = tmp.ExpectError, tmp.ExpectResult
		st.ExpectIf = append(st.ExpectIf, ce)
	}
}

// checkArg checks a literal argument against its declaration; values with
// $references are checked once the whole scenario is known (variables)
// and again at run time (their values).
func (p *parser) checkArg(st *Step, decl *Arg, v *yaml.Node) {
	if decl.Type == Command {
		if v.Kind == yaml.SequenceNode {
			if len(v.Content) == 0 {
				p.errf(v, "%s: empty command", decl.Name)
			}
			for _, w := range v.Content {
				p.str(w)
			}
			return
		}
	}
	if v.Kind != yaml.ScalarNode {
		p.errf(v, "%s: want a value, got a %s", decl.Name, kindName(v))
		return
	}
	if decl.Type.isObject() {
		if !isVarRef(v.Value) || refRE.FindStringSubmatch(v.Value) == nil {
			p.errf(v, "%s: want a saved %s such as $%s.%s, got %s", decl.Name, decl.Type, exampleVar(decl.Type), savedField[decl.Type], quote(v.Value))
		}
		return
	}
	if hasRef(v.Value) {
		return
	}
	if err := decl.check(v.Value); err != nil {
		p.errf(v, "%s: %v", decl.Name, err)
	}
}

// checkExpected: an expected value a field of its type can never have is a
// mistake in the file, not a failure of the card.
func (p *parser) checkExpected(f *Field, v *yaml.Node) {
	switch f.Type {
	case Int:
		if _, err := strconv.ParseFloat(strings.TrimSpace(v.Value), 64); err != nil {
			p.errf(v, "expect.result.%s is a number, got %s", f.Name, quote(v.Value))
		}
	case Bool:
		if _, ok := parseBool(v.Value); !ok {
			p.errf(v, "expect.result.%s is true or false, got %s%s", f.Name, quote(v.Value), didYouMean(v.Value, []string{"true", "false"}))
		}
	}
}

func exampleVar(t Type) string {
	switch t {
	case Key:
		return "k"
	case CSR:
		return "req"
	case Dummy:
		return "pending"
	}
	return "issued"
}

func (p *parser) expect(st *Step, a *Action) {
	p.mapping(st.Expect, map[string]func(k, v *yaml.Node){
		"error": func(k, v *yaml.Node) {
			name := p.str(v)
			if name != "none" && !validErrorName(name) {
				p.errf(v, "unknown error %s%s: use a Windows name such as CRYPT_E_NO_KEY_PROPERTY, a hex value such as 0x8009200B, or none", quote(name), didYouMean(name, errorNames()))
			}
			st.ExpectError = name
		},
		"result": func(k, v *yaml.Node) {
			st.ExpectResult = v
			if v.Kind != yaml.MappingNode {
				p.errf(v, "expect.result: want a mapping of result fields, got a %s", kindName(v))
				st.ExpectResult = nil
				return
			}
			for i := 0; i+1 < len(v.Content); i += 2 {
				f, val := v.Content[i], v.Content[i+1]
				if a.field(f.Value) == nil {
					fields := "none: it has no result"
					if len(a.Result) > 0 {
						fields = strings.Join(a.fieldNames(), ", ")
					}
					p.errf(f, "action %q has no result field %s%s (fields: %s)", a.Name, quote(f.Value), didYouMean(f.Value, a.fieldNames()), fields)
				}
				if val.Kind != yaml.ScalarNode && val.Kind != yaml.SequenceNode {
					p.errf(val, "expect.result.%s: want a value or a list, got a %s", f.Value, kindName(val))
				}
				if fd := a.field(f.Value); fd != nil && val.Kind == yaml.ScalarNode && !hasRef(val.Value) {
					p.checkExpected(fd, val)
				}
			}
		},
	})
}

// declare adds from's vars, cards and hosts to s, replacing those of the
// same name (a later include, or the including file, overrides).
func (s *Scenario) declare(from *Scenario) {
	maps.Copy(s.Vars, from.Vars)
	maps.Copy(s.Cards, from.Cards)
	maps.Copy(s.Hosts, from.Hosts)
}
