// Command cardharness is a virtual smart card test harness: software GIDS
// cards behind a private pcscd, a model of the Windows host, and a scenario
// runner. See the README for the CLI contract; this file only parses flags
// and hands over to the packages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
)

// exitError carries an exit status through to main.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "cardharness: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cardharness %s: %v\n", c.name, err)
		return 2
	default:
		fmt.Fprintf(stderr, "cardharness %s: %v\n", c.name, err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cardharness COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cardharness COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting, with
// the logging flags every command shares.
func newFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *logFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: cardharness %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	lf := &logFlags{}
	fs.BoolVar(&lf.verbose, "v", false, "verbose: log debug messages to stderr")
	fs.BoolVar(&lf.quiet, "q", false, "quiet: log only errors")
	return fs, lf
}

type logFlags struct{ verbose, quiet bool }

func (l *logFlags) logger(w io.Writer) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case l.verbose:
		level = slog.LevelDebug
	case l.quiet:
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// parse wraps fs.Parse so flag errors become usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{strings.TrimSpace(err.Error())}
	}
	return nil
}
