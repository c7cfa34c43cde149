package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cardharness/cardharness/scenarios"
)

// runReportCmd is `cardharness report merge OUT IN...`: OUT's extension picks
// the format (.xml: JUnit, .json: the JSON report); every IN must be of
// that format.
func runReportCmd(args []string, stdout, stderr io.Writer) error {
	fs, err := parseArgs("report", "merge OUT.xml|OUT.json IN...", args, stderr)
	if err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] != "merge" {
		return usageError{"want: report merge OUT.xml|OUT.json IN..."}
	}
	if len(rest) < 3 {
		return usageError{"report merge: want an output file and at least one input"}
	}
	out, ins := rest[1], rest[2:]
	var merge func(io.Writer, []scenarios.ReportInput) error
	switch {
	case strings.HasSuffix(out, ".xml"):
		merge = scenarios.MergeJUnit
	case strings.HasSuffix(out, ".json"):
		merge = scenarios.MergeJSON
	default:
		return usageError{fmt.Sprintf("report merge: %s: the output's extension picks the format: .xml (JUnit) or .json", out)}
	}
	var inputs []scenarios.ReportInput
	for _, p := range ins {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		inputs = append(inputs, scenarios.ReportInput{Name: p, R: f})
	}
	// Merged in memory first: a bad input leaves no half-written OUT.
	var buf bytes.Buffer
	if err := merge(&buf, inputs); err != nil {
		return err
	}
	return writeFile(out, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err })
}
