package main

import (
	"fmt"
	"io"

	"github.com/cardharness/cardharness/scenarios"
)

func runActions(args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("actions", "[--markdown] [ACTION]", stderr)
	markdown := fs.Bool("markdown", false, "print the whole reference as Markdown (docs/scenarios.md)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 1:
		return usageError{"give at most one action"}
	case *markdown:
		fmt.Fprint(stdout, scenarios.ReferenceMarkdown())
	case fs.NArg() == 1:
		a, ok := scenarios.LookupAction(fs.Arg(0))
		if !ok {
			return usageError{fmt.Sprintf("no action %q%s (cardharness actions lists them)", fs.Arg(0), scenarios.DidYouMean(fs.Arg(0), scenarios.ActionNames()))}
		}
		scenarios.WriteAction(stdout, a)
	default:
		scenarios.WriteActionList(stdout)
	}
	return nil
}

func runKnobs(args []string, stdout, stderr io.Writer) error {
	fs, err := parseArgs("knobs", "[KNOB]", args, stderr)
	if err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		scenarios.WriteKnobList(stdout)
	case 1:
		k, ok := scenarios.LookupKnob(fs.Arg(0))
		if !ok {
			var names []string
			for _, k := range scenarios.Knobs() {
				names = append(names, k.Name)
			}
			return usageError{fmt.Sprintf("no knob %q%s (cardharness knobs lists them)", fs.Arg(0), scenarios.DidYouMean(fs.Arg(0), names))}
		}
		scenarios.WriteKnob(stdout, k)
	default:
		return usageError{"give at most one knob"}
	}
	return nil
}
