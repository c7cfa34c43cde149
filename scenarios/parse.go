package scenarios

import (
	"errors"
	"fmt"
	"github.com/cardharness/cardharness/harness/winhost"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

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

type parser struct {
	fsys  fs.FS
	file  string
	errs  ParseErrors
	depth int
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	p.errs = append(p.errs, &ParseError{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// Load parses the scenario file name in fsys, with its includes.
func Load(fsys fs.FS, name string) (*Scenario, error) {
	p := &parser{fsys: fsys, file: name}
	s := p.load(name)
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return s, nil
}

func (p *parser) load(name string) *Scenario {
	b, err := fs.ReadFile(p.fsys, name)
	if err != nil {
		p.errs = append(p.errs, &ParseError{File: name, Msg: err.Error()})
		return nil
	}
	return p.parse(name, b)
}

// Parse parses one scenario from b (file names the source in errors;
// includes are resolved in fsys relative to it).
func Parse(fsys fs.FS, file string, b []byte) (*Scenario, error) {
	p := &parser{fsys: fsys, file: file}
	s := p.parse(file, b)
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return s, nil
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
		if p.depth > 8 {
			p.errf(includes[0], "includes nested more than 8 deep (a cycle?)")
			return s
		}
		merged := &Scenario{File: file, Vars: map[string]string{}, Cards: map[string]*CardDecl{}, Hosts: map[string]*HostDecl{}}
		for _, inc := range includes {
			name := path.Join(path.Dir(file), p.str(inc))
			p.depth++
			sub := p.load(name)
			p.depth--
			if sub == nil {
				continue
			}
			for k, v := range sub.Vars {
				merged.Vars[k] = v
			}
			for k, v := range sub.Cards {
				merged.Cards[k] = v
			}
			for k, v := range sub.Hosts {
				merged.Hosts[k] = v
			}
			merged.Steps = append(merged.Steps, sub.Steps...)
		}
		for k, v := range s.Vars {
			merged.Vars[k] = v
		}
		for k, v := range s.Cards {
			merged.Cards[k] = v
		}
		for k, v := range s.Hosts {
			merged.Hosts[k] = v
		}
		s.Vars, s.Cards, s.Hosts = merged.Vars, merged.Cards, merged.Hosts
		s.Steps = append(merged.Steps, s.Steps...)
	}
	if p.depth == 0 {
		p.check(root, s)
	}
	return s
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
					p.errAt(st.File, ref.line, "step %q: no card named %q (declared: %s)", st.Do, ref.name, keys(s.Cards))
				}
			case "host":
				if _, ok := s.Hosts[ref.name]; !ok {
					p.errAt(st.File, ref.line, "step %q: no host named %q (declared: %s)", st.Do, ref.name, keys(s.Hosts))
				}
			}
		}
	}
	for name, c := range s.Cards {
		if c.CardIDFrom != "" {
			if _, ok := s.Cards[c.CardIDFrom]; !ok || c.CardIDFrom == name {
				p.errAt(c.File, c.Line, "card %q: cardid_from %q is not another declared card", name, c.CardIDFrom)
			}
		}
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
		return fmt.Sprintf("value %q", n.Value)
	case yaml.AliasNode:
		return "alias"
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
			p.errf(k, "unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		if seen[k.Value] {
			p.errf(k, "key %q given twice", k.Value)
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
		p.errf(n, "want a whole number, got %q", n.Value)
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
	p.errf(n, "want true or false, got %q", n.Value)
	return false
}

// ParseDuration reads Go durations plus days ("3d", "1d12h"), the unit
// enrollment flows think in.
func ParseDuration(s string) (time.Duration, error) {
	var total time.Duration
	rest := s
	if i := strings.Index(rest, "d"); i > 0 {
		days, err := strconv.Atoi(rest[:i])
		if err != nil {
			return 0, fmt.Errorf("bad duration %q (want e.g. 3d, 36h, 90s)", s)
		}
		total = time.Duration(days) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q (want e.g. 3d, 36h, 90s)", s)
		}
		total += d
	}
	if s == "" {
		return 0, errors.New("empty duration")
	}
	return total, nil
}

func (p *parser) card(k, v *yaml.Node) *CardDecl {
	c := &CardDecl{Name: k.Value, File: p.file, Line: k.Line, Profile: "initialized", PIN: "123456",
		AdminKey: strings.Repeat("00", 24), CacheMode: "global"}
	if v.Kind == yaml.ScalarNode && v.Value == "" {
		return c // `card1:` with defaults
	}
	p.mapping(v, map[string]func(k, v *yaml.Node){
		"profile": func(k, v *yaml.Node) {
			c.Profile = p.str(v)
			if c.Profile != "blank" && c.Profile != "initialized" {
				p.errf(v, "profile %q: want blank or initialized", c.Profile)
			}
		},
		"pin":         func(k, v *yaml.Node) { c.PIN = p.str(v) },
		"admin_key":   func(k, v *yaml.Node) { c.AdminKey = p.hexField(v, 24, "admin_key") },
		"cardid":      func(k, v *yaml.Node) { c.CardID = p.hexField(v, 16, "cardid") },
		"cardid_from": func(k, v *yaml.Node) { c.CardIDFrom = p.str(v) },
		"cache_mode": func(k, v *yaml.Node) {
			c.CacheMode = p.str(v)
			if c.CacheMode != "global" && c.CacheMode != "session-only" && c.CacheMode != "none" {
				p.errf(v, "cache_mode %q: want global, session-only or none", c.CacheMode)
			}
		},
		"read_only":      func(k, v *yaml.Node) { c.ReadOnly = p.bool(v) },
		"session_pins":   func(k, v *yaml.Node) { c.SessionPINs = p.bool(v) },
		"max_containers": func(k, v *yaml.Node) { c.MaxContainers = int(p.int(v)) },
		"faults": func(k, v *yaml.Node) {
			for _, f := range p.seq(v) {
				name := p.str(f)
				if !fault.Known(name) {
					p.errf(f, "unknown card fault %q (known: %s)", name, strings.Join(fault.Names(), ", "))
				}
				c.Faults = append(c.Faults, name)
			}
		},
	})
	if len(c.PIN) < 4 || len(c.PIN) > 16 {
		p.errf(v, "card %q: PIN %q must have 4 to 16 characters", c.Name, c.PIN)
	}
	return c
}

func (p *parser) hexField(v *yaml.Node, n int, what string) string {
	s := strings.ReplaceAll(p.str(v), " ", "")
	if len(s) != 2*n || !isHex(s) {
		p.errf(v, "%s %q: want %d hex digits", what, v.Value, 2*n)
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
				p.errf(v, "host %q: %v", h.Name, err)
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
// action is bound (see actions.go), so that an unknown argument is
// reported with the action's own list of arguments.
func (p *parser) step(n *yaml.Node) *Step {
	if n.Kind != yaml.MappingNode {
		p.errf(n, "a step is a mapping with do: and its arguments, got a %s", kindName(n))
		return nil
	}
	st := &Step{File: p.file, Line: n.Line, Args: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "do":
			st.Do = p.str(v)
		case "name":
			st.Name = p.str(v)
		case "expect":
			st.Expect = v
		case "save":
			st.Save = p.str(v)
		case "steps":
			st.Sub = p.steps(v)
		default:
			if _, dup := st.Args[k.Value]; dup {
				p.errf(k, "key %q given twice", k.Value)
			}
			st.Args[k.Value] = v
		}
	}
	if st.Do == "" {
		p.errf(n, "step has no do: (actions: %s)", strings.Join(ActionNames(), ", "))
		return nil
	}
	if (st.Do == "repeat") != (st.Sub != nil) {
		p.errf(n, "steps: belongs to do: repeat (and repeat needs steps:)")
	}
	a, ok := actions[st.Do]
	if !ok {
		p.errf(n, "unknown action %q (actions: %s)", st.Do, strings.Join(ActionNames(), ", "))
		return nil
	}
	st.action = a
	for name, arg := range st.Args {
		if !a.takes(name) {
			p.errf(arg, "action %q takes no argument %q (it takes: %s)", st.Do, name, strings.Join(a.argNames(), ", "))
		}
	}
	for _, req := range a.Required {
		if _, ok := st.Args[req]; !ok {
			p.errf(n, "action %q needs %s:", st.Do, req)
		}
	}
	if st.Expect != nil {
		p.expect(st, a)
	}
	return st
}

func (p *parser) expect(st *Step, a *Action) {
	p.mapping(st.Expect, map[string]func(k, v *yaml.Node){
		"error": func(k, v *yaml.Node) {
			name := p.str(v)
			if name != "none" && !validErrorName(name) {
				p.errf(v, "unknown error %q: use a Windows name such as CRYPT_E_NO_KEY_PROPERTY, a hex value such as 0x8009200B, or none", name)
			}
			st.ExpectError = name
		},
		"result": func(k, v *yaml.Node) { st.ExpectResult = v },
	})
}
