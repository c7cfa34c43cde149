package scenarios

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// Host knobs in scenario files: each winhost.Knobs field, in snake_case
// (SessionPINs is session_pins). Their meaning, default and source are the
// field's doc comment in harness/winhost/knobs.go; a field added there is a
// knob here with nothing else to change.

// Knob describes one host knob for the reference.
type Knob struct {
	Name    string   // as written in a scenario
	Field   string   // the winhost.Knobs field
	Type    string   // bool, int, duration, string, error, counters, or an enumeration
	Default string   // as a scenario would write it
	Values  []string // allowed values of an enumeration
	Doc     string   // the field's doc comment
	Sources []string // the source tags in the doc ([S MSGP], [U], [I] ...)
}

var sourceTag = regexp.MustCompile(`\[(?:S|U|I|SDK)(?: [^\]]*)?\]`)

// Knobs lists the host knobs, sorted by name.
func Knobs() []Knob {
	def := winhost.DefaultKnobs()
	rv := reflect.ValueOf(def)
	var out []Knob
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		k := Knob{Name: snake(f.Name), Field: f.Name, Type: knobType(rv.Field(i)), Default: knobText(rv.Field(i)),
			Values: enumValues(rv.Field(i)), Doc: winhost.KnobDoc(f.Name)}
		k.Sources = sourceTag.FindAllString(k.Doc, -1)
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupKnob finds a knob by its scenario name.
func LookupKnob(name string) (Knob, bool) {
	for _, k := range Knobs() {
		if k.Name == name {
			return k, true
		}
	}
	return Knob{}, false
}

func knobType(f reflect.Value) string {
	switch f.Interface().(type) {
	case time.Duration:
		return "duration"
	case winerr.Code:
		return "error"
	case fs.Category:
		return "counters"
	}
	if enumValues(f) != nil {
		return "enum"
	}
	return f.Kind().String()
}

func knobText(f reflect.Value) string {
	switch v := f.Interface().(type) {
	case time.Duration:
		return formatDuration(v)
	case winerr.Code:
		return v.Name()
	case fs.Category:
		var parts []string
		for _, c := range []struct {
			c    fs.Category
			name string
		}{{fs.CategoryPins, "pins"}, {fs.CategoryContainers, "containers"}, {fs.CategoryFiles, "files"}} {
			if v&c.c != 0 {
				parts = append(parts, c.name)
			}
		}
		return strings.Join(parts, "|")
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(f.Interface())
}

// formatDuration writes whole days as Nd (the scenario spelling).
func formatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// enumValues lists the names of an integer enumeration with a String
// method (its values are small and consecutive from 0).
func enumValues(f reflect.Value) []string {
	if _, ok := f.Interface().(fmt.Stringer); !ok {
		return nil
	}
	switch f.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
	default:
		return nil
	}
	v := reflect.New(f.Type()).Elem()
	var out []string
	seen := map[string]bool{}
	for i := int64(0); i < 16; i++ {
		v.SetInt(i)
		s := v.Interface().(fmt.Stringer).String()
		if seen[s] || strings.Contains(s, "(") {
			break
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// knobs builds a host's knobs from the scenario: each key is a Knobs field
// in snake_case; unknown keys and bad values are errors with their line.
func knobs(h *HostDecl, defaultProfile ...string) (*winhost.Knobs, error) {
	// The host's profile (or the run's, or winhost.DefaultProfile) first,
	// then the scenario's knobs one by one (docs/windows-fidelity.md
	// H-PROFILES).
	name := h.Profile
	if name == "" && len(defaultProfile) > 0 {
		name = defaultProfile[0]
	}
	k, err := winhost.ProfileKnobs(name)
	if err != nil {
		line := h.ProfileLine
		if line == 0 {
			line = h.Line
		}
		return nil, ParseErrors{&ParseError{File: h.File, Line: line, Msg: fmt.Sprintf("host %q: %v%s", h.Name, err, didYouMean(name, winhost.ProfileNames()))}}
	}
	rv := reflect.ValueOf(&k).Elem()
	fields := map[string]int{}
	for i := 0; i < rv.NumField(); i++ {
		fields[snake(rv.Type().Field(i).Name)] = i
	}
	var errs ParseErrors
	for _, name := range sortedStrings(keysOf(h.Knobs)) {
		val := h.Knobs[name]
		i, ok := fields[name]
		if !ok {
			errs = append(errs, &ParseError{File: h.File, Line: val.Line, Msg: fmt.Sprintf("host %q: unknown knob %s%s (cardharness knobs lists them)", h.Name, quote(name), didYouMean(name, keysOf(fields)))})
			continue
		}
		if err := setKnob(rv.Field(i), val.Value); err != nil {
			errs = append(errs, &ParseError{File: h.File, Line: val.Line, Msg: fmt.Sprintf("host %q: knob %s: %v", h.Name, name, err)})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &k, nil
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// snake turns a Go field name into its scenario spelling: words split at
// case changes, an acronym kept whole, and an acronym's plural "s" kept
// with it (SessionPINs: session_pins, LogonAllowNoEKU: logon_allow_no_eku).
func snake(s string) string {
	r := []rune(s)
	isUp := func(i int) bool { return i >= 0 && i < len(r) && r[i] >= 'A' && r[i] <= 'Z' }
	isLow := func(i int) bool { return i >= 0 && i < len(r) && r[i] >= 'a' && r[i] <= 'z' }
	var b strings.Builder
	for i, c := range r {
		if isUp(i) {
			// A new word: after a lower-case letter, or the last capital of
			// an acronym followed by a lower-case word (not the plural s
			// that ends the acronym).
			pluralS := i+1 < len(r) && r[i+1] == 's' && !isLow(i+2) && isUp(i-1)
			if i > 0 && (isLow(i-1) || (isUp(i-1) && isLow(i+1) && !pluralS)) {
				b.WriteByte('_')
			}
			b.WriteRune(c + 'a' - 'A')
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// counterNames are the cardcf counters as scenarios name them (a knob's
// value, writer-bump's counters:).
var counterNames = map[string]fs.Category{"pins": fs.CategoryPins, "containers": fs.CategoryContainers, "files": fs.CategoryFiles}

// parseCounters reads counters joined with |, such as files|containers.
func parseCounters(v string) (fs.Category, error) {
	var c fs.Category
	for _, part := range strings.Split(v, "|") {
		cat, ok := counterNames[strings.TrimSpace(part)]
		if !ok {
			return 0, fmt.Errorf("counter %s: want pins, containers, files (joined with |)%s", quote(part), didYouMean(part, []string{"pins", "containers", "files"}))
		}
		c |= cat
	}
	return c, nil
}

// knobParsers read the knob types that are neither enumerations nor
// plain bools, strings and numbers.
var knobParsers = map[reflect.Type]func(string) (any, error){
	reflect.TypeFor[time.Duration](): func(v string) (any, error) { return ParseDuration(v) },
	reflect.TypeFor[winerr.Code](): func(v string) (any, error) {
		c, ok := winerr.ByName(v)
		if !ok {
			return nil, fmt.Errorf("unknown Windows error %s%s", quote(v), didYouMean(v, winerr.Names()))
		}
		return c, nil
	},
	reflect.TypeFor[fs.Category](): func(v string) (any, error) { return parseCounters(v) },
}

func setKnob(f reflect.Value, v string) error {
	if parse, ok := knobParsers[f.Type()]; ok {
		x, err := parse(v)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(x))
		return nil
	}
	if names := enumValues(f); names != nil {
		for i, n := range names {
			if strings.EqualFold(n, v) {
				f.SetInt(int64(i))
				return nil
			}
		}
		return fmt.Errorf("%s is not one of %s%s", quote(v), strings.Join(names, ", "), didYouMean(v, names))
	}
	switch f.Kind() {
	case reflect.Bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false, got %s%s", quote(v), didYouMean(v, []string{"true", "false"}))
		}
		f.SetBool(b)
	case reflect.String:
		f.SetString(v)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return fmt.Errorf("want a whole number, got %s", quote(v))
		}
		if n < 0 {
			return fmt.Errorf("%d: want 0 or more", n)
		}
		f.SetInt(n)
	default:
		return fmt.Errorf("knob of type %s cannot be set from a scenario", f.Type())
	}
	return nil
}
