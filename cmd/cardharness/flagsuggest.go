package main

import (
	"errors"
	"flag"
	"strings"

	"github.com/cardharness/cardharness/scenarios"
)

// suggestFlag adds "(did you mean --X?)" to an unknown-flag error.
func suggestFlag(fs *flag.FlagSet, err error) error {
	var ue usageError
	if !errors.As(err, &ue) || strings.Contains(ue.msg, "did you mean") {
		return err
	}
	_, name, ok := strings.Cut(ue.msg, "flag provided but not defined: ")
	if !ok {
		return err
	}
	name = strings.TrimLeft(name, "-")
	var known []string
	fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
	if s := scenarios.DidYouMean(name, known); s != "" {
		return usageError{ue.msg + strings.Replace(s, "mean ", "mean --", 1)}
	}
	return err
}
