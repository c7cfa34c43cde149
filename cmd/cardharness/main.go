// Command cardharness is a virtual smart card test harness: software GIDS
// cards behind a private pcscd, a model of the Windows host, and a scenario
// runner. See the README for the CLI contract; this file only parses flags
// and hands over to the packages.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/cardharness/cardharness/internal/suggest"
)

// serveContext ends when a command that serves until stopped (card,
// relay, stack) is told to stop: SIGINT, SIGTERM, or SIGHUP when its
// terminal goes away.
func serveContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
}

// runContext ends when a command that runs checks or scenarios (conform,
// sweep) is interrupted (SIGINT, SIGTERM); it then reports what ran.
func runContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// exitError carries an exit status through to main.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError marks a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// statusError is an error to print with its own exit status (exec's 125,
// 126, 127).
type statusError struct {
	code int
	err  error
}

func (e statusError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e statusError) Unwrap() error { return e.err }

// helpError carries a command's -h text to stdout (exit status 0).
type helpError struct{ text string }

func (e helpError) Error() string { return "help requested" }
func (e helpError) Unwrap() error { return flag.ErrHelp }

// command is one subcommand; its name is its key in commands.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands is every subcommand in one table (tables over init functions
// scattered across files): cli looks a command up here and usage lists
// them.
var commands = map[string]command{
	"actions": {summary: "the scenario actions: arguments, result fields, errors, examples", run: runActions},
	"card":    {summary: "serve one virtual GIDS card to a vpcd slot until interrupted", run: runCard},
	"conform": {summary: "check a GIDS card in a reader against what Windows and OpenSC need", run: runConform},
	"doctor":  {summary: "check this machine: components, a private stack, APDU round trips", run: runDoctor},
	"exec":    {summary: "run a command against a fresh private pcscd with virtual cards", run: runExec},
	"knobs":   {summary: "the Windows host model's knobs: type, default, allowed values, sources", run: runKnobs},
	"relay":   {summary: "run the HTTPS renewal relay (founding-document interface + EST) until interrupted", run: runRelay},
	"report":  {summary: "merge the reports of CI shards: report merge OUT.xml|OUT.json IN...", run: runReportCmd},
	"run":     {summary: "run scenarios (default: the built-in suite) against virtual cards and the Windows host model", run: runRun},
	"stack":   {summary: "run a private pcscd with virtual cards until interrupted", run: runStack},
	"sweep":   {summary: "run scenarios across host profiles, knob values and seeds; print the matrix", run: runSweep},
	"trace":   {summary: "print an APDU trace (JSON lines) readably", run: runTrace},
	"version": {summary: "print the version (module version and VCS revision)", run: runVersion},
}

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "help":
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		args = []string{args[1], "-h"} // help COMMAND is COMMAND -h
	}
	if args[0] == "--version" || args[0] == "-version" {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	name := args[0]
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "cardharness: unknown command %q%s\n\n", args[0], suggest.DidYouMean(args[0], commandNames(), ""))
		usage(stderr)
		return 2
	}
	err := c.run(args[1:], stdout, stderr)
	var ee exitError
	var ue usageError
	var se statusError
	var he helpError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &he):
		fmt.Fprint(stdout, he.text)
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &se):
		if se.err != nil {
			fmt.Fprintf(stderr, "cardharness %s: %v\n", name, se.err)
		}
		return se.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "cardharness %s: %v\nRun 'cardharness %s -h' for its flags.\n", name, err, name)
		return 2
	default:
		fmt.Fprintf(stderr, "cardharness %s: %v\n", name, err)
		return 1
	}
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cardharness COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cardharness COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting, with
// the logging flags every command shares. The flag package's own output
// (its usage text on -h) is collected and handed to cli by parse, so -h
// goes to stdout and a mistake gets one line on stderr; stderr stays the
// writer for anything else the caller prints.
func newFlags(name, synopsis string, stderr io.Writer) (*flag.FlagSet, *logFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: cardharness %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	lf := &logFlags{}
	fs.BoolVar(&lf.verbose, "v", false, "verbose: log debug messages to stderr")
	fs.BoolVar(&lf.quiet, "q", false, "quiet: log only errors")
	return fs, lf
}

// parseArgs is newFlags and parse for a command with no flags of its own
// (only -v, -q and -h): the flag set it returns holds the arguments.
func parseArgs(name, synopsis string, args []string, stderr io.Writer) (*flag.FlagSet, error) {
	fs, _ := newFlags(name, synopsis, stderr)
	return fs, parse(fs, args)
}

// parseFlagsOnly is parse for a command that takes flags and no
// arguments: an argument left over is a usage error.
func parseFlagsOnly(fs *flag.FlagSet, args []string) error {
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

// oneOf checks the value of flag --name against the values it takes,
// listed as the usage error names them ("want a or b").
func oneOf(name, value string, allowed ...string) error {
	if slices.Contains(allowed, value) {
		return nil
	}
	want := allowed[len(allowed)-1]
	if len(allowed) > 1 {
		want = strings.Join(allowed[:len(allowed)-1], ", ") + " or " + want
	}
	return usageError{fmt.Sprintf("--%s %q: want %s", name, value, want)}
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

// parse wraps fs.Parse: -h becomes a helpError (usage on stdout, status
// 0), a mistake a usageError with a suggestion for a mistyped flag.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil {
		return nil
	}
	if errors.Is(err, flag.ErrHelp) {
		var text string
		if b, ok := fs.Output().(*bytes.Buffer); ok {
			text = b.String()
		}
		return helpError{text}
	}
	msg := strings.TrimSpace(err.Error())
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		msg += suggest.DidYouMean(name, names, "--%s")
	}
	return usageError{msg}
}
