package scenarios

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// The reference a person reads (cardharness actions, cardharness knobs,
// docs/scenarios.md, the README's table) is generated from the
// declarations, never written by hand.

// WriteActionList writes every action with its one-line purpose, by actor.
func WriteActionList(w io.Writer) {
	var last Actor
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, a := range Actions() {
		if a.Actor != last {
			if last != "" {
				fmt.Fprintln(tw)
			}
			fmt.Fprintf(tw, "%s: %s\n", a.Actor, actorDoc[a.Actor])
			last = a.Actor
		}
		fmt.Fprintf(tw, "  %s\t%s\n", a.Name, a.Doc)
	}
	tw.Flush()
	fmt.Fprintln(w, "\ncardharness actions NAME shows an action's arguments, result fields, errors and an example.")
}

// WriteAction writes one action's reference.
func WriteAction(w io.Writer, a *Action) {
	fmt.Fprintf(w, "%s (%s)\n  %s\n", a.Name, a.Actor, a.Doc)
	if a.Internals {
		fmt.Fprintln(w, "  Needs the card's internals: skipped (and reported) with --reader.")
	}
	fmt.Fprintln(w, "\narguments:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, arg := range a.Args {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", arg.Name, arg.Type, argConstraint(arg), arg.Doc)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nresult fields (expect: {result: {FIELD: VALUE}}; save: NAME, then $NAME.FIELD):")
	if len(a.Result) == 0 {
		fmt.Fprintln(w, "  none")
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range a.Result {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Name, f.Type, f.Doc)
	}
	tw.Flush()
	if len(a.Errors) > 0 {
		fmt.Fprintf(w, "\nerrors it can produce (expect: {error: NAME}):\n  %s\n", strings.Join(a.Errors, ", "))
	}
	fmt.Fprintf(w, "\nexample:\n  - %s\n", a.Example)
}

func argConstraint(arg Arg) string {
	var parts []string
	if arg.Required {
		parts = append(parts, "required")
	} else if arg.Default != "" {
		parts = append(parts, "default "+arg.Default)
	} else {
		parts = append(parts, "optional")
	}
	if len(arg.Values) > 0 {
		parts = append(parts, strings.Join(arg.Values, "|"))
	}
	switch {
	case arg.Min != "" && arg.Max != "":
		parts = append(parts, arg.Min+".."+arg.Max)
	case arg.Max != "":
		parts = append(parts, "at most "+arg.Max)
	case arg.Min != "":
		parts = append(parts, "at least "+arg.Min)
	}
	return strings.Join(parts, "; ")
}

// ActionTableMarkdown is the README's table: each actor's actions.
func ActionTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| actor | actions |\n|---|---|\n")
	for _, actor := range actorOrder {
		var names []string
		for _, a := range Actions() {
			if a.Actor == actor {
				names = append(names, "`"+a.Name+"`")
			}
		}
		if len(names) > 0 {
			fmt.Fprintf(&b, "| %s | %s |\n", actor, strings.Join(names, ", "))
		}
	}
	return b.String()
}

// ReferenceMarkdown is the full action reference (docs/scenarios.md).
func ReferenceMarkdown() string {
	var b strings.Builder
	var last Actor
	for _, a := range Actions() {
		if a.Actor != last {
			fmt.Fprintf(&b, "\n### %s: %s\n", a.Actor, actorDoc[a.Actor])
			last = a.Actor
		}
		fmt.Fprintf(&b, "\n#### `%s`\n\n%s.", a.Name, mdEscape(a.Doc))
		if a.Internals {
			b.WriteString(" Skipped with `--reader` (needs the card's internals).")
		}
		b.WriteString("\n\n| argument | type | | meaning |\n|---|---|---|---|\n")
		for _, arg := range a.Args {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", arg.Name, arg.Type, mdEscape(argConstraint(arg)), mdEscape(arg.Doc))
		}
		if len(a.Result) > 0 {
			b.WriteString("\n| result field | type | meaning |\n|---|---|---|\n")
			for _, f := range a.Result {
				fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f.Name, f.Type, mdEscape(f.Doc))
			}
		}
		if len(a.Errors) > 0 {
			fmt.Fprintf(&b, "\nErrors: `%s`.\n", strings.Join(a.Errors, "`, `"))
		}
		fmt.Fprintf(&b, "\n```yaml\n- %s\n```\n", a.Example)
	}
	return b.String()
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// WriteKnobList writes the host knobs: name, type, default, allowed values.
func WriteKnobList(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "knob\ttype\tdefault\tvalues")
	for _, k := range Knobs() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.Name, k.Type, k.Default, knobValues(k))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nSet them per host: hosts: {desktop: {knobs: {propagation_delay: 5s}}}.")
	fmt.Fprintln(w, "cardharness knobs NAME shows what a knob means, its default and its sources.")
}

func knobValues(k Knob) string {
	switch k.Type {
	case "enum":
		return strings.Join(k.Values, "|")
	case "bool":
		return "true|false"
	case "duration":
		return "e.g. 10s, 36h, 3d"
	case "error":
		return "a Windows error name"
	case "counters":
		return "pins|containers|files, joined with |"
	case "int":
		return "0 or more"
	}
	return "text"
}

// WriteKnob writes one knob's reference: its doc comment from knobs.go.
func WriteKnob(w io.Writer, k Knob) {
	fmt.Fprintf(w, "%s (winhost.Knobs.%s)\n  type:    %s\n  default: %s\n  values:  %s\n", k.Name, k.Field, k.Type, k.Default, knobValues(k))
	if len(k.Sources) > 0 {
		fmt.Fprintf(w, "  sources: %s (tags as in docs/reference/minidriver-semantics.md)\n", strings.Join(k.Sources, " "))
	}
	if k.Doc != "" {
		fmt.Fprintf(w, "\n%s\n", indent(k.Doc, "  "))
	}
}

// WriteKnobsMarkdown is the knob table of docs/scenarios.md.
func WriteKnobsMarkdown(w io.Writer) {
	fmt.Fprintln(w, "| knob | type | default | values |\n|---|---|---|---|")
	for _, k := range Knobs() {
		fmt.Fprintf(w, "| `%s` | %s | `%s` | %s |\n", k.Name, k.Type, k.Default, mdEscape(knobValues(k)))
	}
}
