package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cardharness/cardharness/scenarios"
	"github.com/cardharness/cardharness/vcard/fault"
)

func init() {
	register(command{name: "run", summary: "run scenarios (default: the built-in suite) against virtual cards and the Windows host model", run: runRun})
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func runRun(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("run", "[flags] [SCENARIO.yaml|DIR ...]", stderr)
	stackKind := fs.String("stack", "pcscd", "pcscd: each scenario on its own private pcscd + vpcd; direct: cards in process")
	reader := fs.String("reader", "", "run against a real card in this reader (system pcscd); steps that need card internals are skipped")
	report := fs.String("report", "text", "report format on stdout: text or json")
	junit := fs.String("junit", "", "also write a JUnit XML report to this file")
	html := fs.String("html", "", "also write an HTML report to this file")
	parallel := fs.Int("parallel", 2, "scenarios to run at once")
	seed := fs.Int64("seed", 0, "override every scenario's seed")
	traceDir := fs.String("trace-dir", filepath.Join("build", "traces"), "where APDU traces of failed scenarios go")
	traceSecrets := fs.Bool("trace-secrets", false, "keep PINs and key material in the saved APDU traces (default: masked)")
	check := fs.Bool("check", false, "only parse the scenarios and report problems")
	list := fs.Bool("list", false, "list the scenarios and exit")
	var faults multiFlag
	fs.Var(&faults, "fault", "inject a card fault into every card: "+strings.Join(fault.Names(), ", ")+" (repeatable)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *stackKind != "pcscd" && *stackKind != "direct" {
		return usageError{fmt.Sprintf("--stack %q: want pcscd or direct", *stackKind)}
	}
	if *report != "text" && *report != "json" {
		return usageError{fmt.Sprintf("--report %q: want text or json", *report)}
	}
	for _, f := range faults {
		if !fault.Known(f) {
			return usageError{fmt.Sprintf("--fault %q: known faults: %s", f, strings.Join(fault.Names(), ", "))}
		}
	}
	refs := scenarios.BuiltinRefs()
	if fs.NArg() > 0 {
		var err error
		if refs, err = scenarios.FileRefs(fs.Args()); err != nil {
			return err
		}
	}
	if len(refs) == 0 {
		return usageError{"no scenarios found"}
	}
	if *list {
		for _, r := range refs {
			fmt.Fprintln(stdout, r)
		}
		return nil
	}
	if *check {
		if err := scenarios.Check(refs); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d scenarios parse\n", len(refs))
		return nil
	}
	if err := scenarios.Check(refs); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := scenarios.Options{Stack: *stackKind, Reader: *reader, Parallel: *parallel, Seed: *seed, SeedSet: *seed != 0, Verbose: lf.verbose, TraceSecrets: *traceSecrets,
		CardFaults: faults, TraceDir: *traceDir, Log: lf.logger(stderr)}
	progress := stderr
	if *report == "text" {
		progress = stdout
		where := "stack " + *stackKind
		if *reader != "" {
			where = "reader " + *reader
		}
		if len(faults) > 0 {
			where += ", injected faults: " + strings.Join(faults, ", ")
		}
		fmt.Fprintf(stdout, "cardharness run: %d scenarios (%s, parallel %d)\n", len(refs), where, *parallel)
	}
	opts.Progress = progress
	results, err := scenarios.Run(ctx, refs, opts)
	if err != nil {
		return err
	}
	if *junit != "" {
		if err := writeFile(*junit, func(w io.Writer) error { return scenarios.WriteJUnit(w, results) }); err != nil {
			return err
		}
	}
	if *html != "" {
		if err := writeFile(*html, func(w io.Writer) error { return scenarios.WriteHTML(w, results) }); err != nil {
			return err
		}
	}
	if *report == "json" {
		if err := scenarios.WriteJSON(stdout, results); err != nil {
			return err
		}
	} else {
		scenarios.WriteText(stdout, results)
	}
	sum := scenarios.Summary(results)
	if sum[scenarios.Fail]+sum[scenarios.Error] > 0 {
		return exitError{1}
	}
	return nil
}

// writeFile creates path (and its directory) and fills it with write.
func writeFile(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
