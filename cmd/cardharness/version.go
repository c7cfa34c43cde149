package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// runVersion is `cardharness version`: the same line as --version.
func runVersion(args []string, stdout, stderr io.Writer) error {
	if _, err := parseArgs("version", "", args, stderr); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionString())
	return nil
}

// versionString is the module version and the VCS revision the binary
// was built from (as go build records them).
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "cardharness (unknown version)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	rev, modified, when := "", "", ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		case "vcs.time":
			when = s.Value
		}
	}
	out := "cardharness " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		out += " " + rev + modified
	}
	if when != "" {
		out += " " + when
	}
	return out + " " + bi.GoVersion
}
