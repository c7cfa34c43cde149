package scenarios

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Static checks on the whole scenario (includes merged): every $reference
// names a variable defined before the step, and a saved result's field the
// saving action declares.

// hasRef: the value refers to a variable ($name, $name.field or ${...}).
func hasRef(v string) bool { return refRE.MatchString(v) || interpRE.MatchString(v) }

// scope is what a step can refer to.
type scope struct {
	saved map[string]*Action // save: name -> the action whose result it is
	vars  map[string]bool    // vars: and the repeat round ${i}
	cards map[string]bool    // declared cards: ${card.pin}, ${card.reader}
}

// cardFields are the fields of a declared card a step may refer to
// (env.lookup).
var cardFields = map[string]bool{"pin": true, "reader": true}

func (p *parser) checkVariables(s *Scenario) {
	sc := &scope{saved: map[string]*Action{}, vars: map[string]bool{}, cards: map[string]bool{}}
	for k := range s.Cards {
		sc.cards[k] = true
	}
	for k := range s.Vars {
		sc.vars[k] = true
	}
	p.checkStepVars(s.Steps, sc)
}

func (p *parser) checkStepVars(steps []*Step, sc *scope) {
	for _, st := range steps {
		if st.action == nil {
			continue
		}
		for _, name := range sortedStrings(keysOf(st.Args)) {
			decl := st.action.arg(name)
			p.checkNodeRefs(st, st.Args[name], decl, sc)
		}
		if st.ExpectResult != nil {
			for i := 1; i < len(st.ExpectResult.Content); i += 2 {
				p.checkNodeRefs(st, st.ExpectResult.Content[i], nil, sc)
			}
		}
		if st.Do == "repeat" {
			hadI := sc.vars["i"]
			sc.vars["i"] = true
			p.checkStepVars(st.Sub, sc)
			sc.vars["i"] = hadI
		}
		if st.Save != "" {
			sc.saved[st.Save] = st.action
		}
	}
}

func (p *parser) checkNodeRefs(st *Step, n *yaml.Node, decl *Arg, sc *scope) {
	if n == nil {
		return
	}
	if n.Kind == yaml.SequenceNode {
		for _, c := range n.Content {
			p.checkNodeRefs(st, c, nil, sc)
		}
		return
	}
	if n.Kind != yaml.ScalarNode {
		return
	}
	if m := refRE.FindStringSubmatch(n.Value); m != nil {
		p.checkRef(st, n, m[1], m[2], decl, sc)
		return
	}
	for _, m := range interpRE.FindAllStringSubmatch(n.Value, -1) {
		p.checkRef(st, n, m[1], m[2], nil, sc)
	}
}

func (p *parser) checkRef(st *Step, n *yaml.Node, name, field string, decl *Arg, sc *scope) {
	ref := "$" + name
	if field != "" {
		ref += "." + field
	}
	if a, ok := sc.saved[name]; ok {
		if field == "" {
			if decl != nil && decl.Type.isObject() && a.field(savedField[decl.Type]) == nil {
				p.errAt(st.File, n.Line, "%s: $%s is the result of %s, which has no %s (fields: %s)", decl.Name, name, a.Name, decl.Type, fieldList(a))
			}
			return
		}
		f := a.field(field)
		if f == nil || f.ExpectOnly {
			p.errAt(st.File, n.Line, "%s: %s has no field %s%s (%s's fields: %s)", st.Do, ref, strconv.Quote(field), didYouMean(field, a.fieldNames()), a.Name, fieldList(a))
			return
		}
		if decl != nil && decl.Type.isObject() && f.Type != decl.Type {
			p.errAt(st.File, n.Line, "%s: %s is a %s, want a %s", decl.Name, ref, f.Type, decl.Type)
		}
		return
	}
	if sc.vars[name] {
		if field != "" {
			p.errAt(st.File, n.Line, "%s: %s: $%s is a vars: value and has no fields", st.Do, ref, name)
		}
		return
	}
	if sc.cards[name] && cardFields[field] {
		if _, saved := sc.saved[name]; !saved {
			return
		}
	}
	known := append(keysOf(sc.saved), keysOf(sc.vars)...)
	where := "nothing is saved before this step"
	if len(sc.saved) > 0 {
		where = "saved before this step: " + keys(sc.saved)
	}
	p.errAt(st.File, n.Line, "%s: %s is not defined (%s; save: a step's result, or declare it under vars:)%s", st.Do, ref, where, didYouMean(name, known))
}

func fieldList(a *Action) string {
	if len(a.Result) == 0 {
		return "none"
	}
	var out []string
	for _, f := range a.Result {
		if !f.ExpectOnly {
			out = append(out, f.Name)
		}
	}
	return joinSorted(out)
}

// stepRuns counts the steps a scenario runs, repeats multiplied out
// (saturating, so a hostile nesting cannot overflow the count).
func stepRuns(steps []*Step) int {
	total := 0
	for _, st := range steps {
		n := 1
		if st.Do == "repeat" {
			times := 1
			if v, ok := st.Args["times"]; ok {
				if t, err := strconv.Atoi(v.Value); err == nil && t > 0 {
					times = t
				}
			}
			n = satMul(times, stepRuns(st.Sub))
		}
		total = satAdd(total, n)
	}
	return total
}

const satMax = 1 << 40

func satMul(a, b int) int {
	if a != 0 && b > satMax/a {
		return satMax
	}
	return a * b
}

func satAdd(a, b int) int {
	if a+b > satMax {
		return satMax
	}
	return a + b
}

func joinSorted(s []string) string { return strings.Join(sortedStrings(s), ", ") }
