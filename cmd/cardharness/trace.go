package main

import (
	"fmt"
	"io"
	"os"

	"github.com/cardharness/cardharness/vcard/trace"
)

func runTrace(args []string, stdout, stderr io.Writer) error {
	fs, err := parseArgs("trace", "FILE... (- for standard input)", args, stderr)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{"no trace file given"}
	}
	for _, name := range fs.Args() {
		var r io.Reader = os.Stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			defer f.Close()
			r = f
		}
		recs, err := trace.Read(r)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if fs.NArg() > 1 {
			fmt.Fprintf(stdout, "== %s\n", name)
		}
		if err := trace.Format(stdout, recs); err != nil {
			return err
		}
	}
	return nil
}
