package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/scenarios"
	"github.com/cardharness/cardharness/vcard/fault"
)

func init() {
	register(command{name: "run", summary: "run scenarios (default: the built-in suite) against virtual cards and the Windows host model", run: runRun})
}

type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*m = append(*m, part)
		}
	}
	return nil
}

// exitInterrupted is the status of a run stopped by SIGINT or SIGTERM
// (128 + SIGINT, the shell's convention), after the partial report.
const exitInterrupted = 130

// defaultParallel is --parallel's default. A scenario on a pcscd stack
// spends most of its time waiting for pcscd's presence poll (400 ms per
// insertion or removal), not computing, so twice as many as CPUs keeps
// them busy; in process a scenario computes. Measured on 2 cores: the
// built-in suite on pcscd stacks took 3.3 s at 4, 5-6 s at 2.
func defaultParallel(stack string) int {
	n := runtime.NumCPU()
	if stack == "pcscd" {
		n *= 2
	}
	return max(2, n)
}

func runRun(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("run", "[flags] [SCENARIO.yaml|DIR|builtin|builtin:NAME ...]", stderr)
	stackKind := fs.String("stack", "pcscd", "pcscd: each scenario on its own private pcscd + vpcd; direct: cards in process")
	reader := fs.String("reader", "", "run against a real card in this reader (system pcscd); steps that need card internals are skipped")
	report := fs.String("report", "text", "report format on stdout: text or json")
	junit := fs.String("junit", "", "also write a JUnit XML report to this file")
	html := fs.String("html", "", "also write an HTML report to this file")
	out := fs.String("out", "", "directory for this run's reports and APDU traces (default: a new build/runs/DATE-TIME)")
	parallel := fs.Int("parallel", 0, "scenarios to run at once (default: 2 per CPU on pcscd stacks, whose scenarios mostly wait for pcscd's poll; 1 per CPU in process; at least 2)")
	reuse := fs.Bool("reuse-stacks", false, "pcscd stack: one long-lived worker per --parallel slot reuses its pcscd across scenarios (fresh cards and PC/SC contexts each time)")
	seed := fs.Int64("seed", 0, "override every scenario's seed")
	timeout := fs.Duration("timeout", 5*time.Minute, "stop a scenario that runs longer than this")
	runRE := fs.String("run", "", "run only scenarios whose name or path matches this regular expression")
	traceDir := fs.String("trace-dir", "", "where APDU traces of failed scenarios go (default: the run's directory, --out)")
	traceAll := fs.Bool("trace-all", false, "save the APDU traces of every scenario, not only of failed ones")
	traceSecrets := fs.Bool("trace-secrets", false, "keep PINs and key material in the saved APDU traces (default: masked)")
	check := fs.Bool("check", false, "only parse the scenarios and report problems")
	list := fs.Bool("list", false, "list the scenarios and exit")
	version := fs.Bool("version", false, "print the version and exit")
	shardFlag := fs.String("shard", "", "run only slice K of N of the scenarios (K/N, e.g. 2/4; a CI matrix job), balanced by cost")
	hostProfile := fs.String("host-profile", winhost.DefaultProfile, "host profile of hosts that name none: "+strings.Join(winhost.ProfileNames(), ", "))
	pcscd := fs.String("pcscd", "", "the pcscd binary for --stack pcscd (default: pcscd from PATH or /usr/sbin)")
	pin := fs.String("pin", "", "with --reader: the card's PIN (default 123456); it is reset to this before every scenario")
	adminKey := fs.String("admin-key", "", "with --reader: the card's 3DES admin key, 48 hex digits; cleans the card before every scenario")
	resetCmd := fs.String("reset-cmd", "", "with --reader: run this command (sh -c) before every scenario instead of cleaning with the admin key")
	var faults, tags, skipTags, includePath multiFlag
	fs.Var(&faults, "fault", "inject a card fault into every card: "+strings.Join(fault.Names(), ", ")+" (repeatable)")
	fs.Var(&tags, "tag", "run only scenarios with one of these tags (repeatable, or comma-separated)")
	fs.Var(&skipTags, "skip-tag", "leave out scenarios with any of these tags (repeatable, or comma-separated)")
	fs.Var(&includePath, "include-path", "another directory scenario includes may come from (repeatable)")
	if err := parse(fs, args); err != nil {
		return suggestFlag(fs, err)
	}
	if *version {
		fmt.Fprintln(stdout, versionString())
		return nil
	}
	if *stackKind != "pcscd" && *stackKind != "direct" {
		return usageError{fmt.Sprintf("--stack %q: want pcscd or direct", *stackKind)}
	}
	if *report != "text" && *report != "json" {
		return usageError{fmt.Sprintf("--report %q: want text or json", *report)}
	}
	if _, err := winhost.ProfileKnobs(*hostProfile); err != nil {
		return usageError{fmt.Sprintf("--host-profile %q: profiles: %s%s", *hostProfile, strings.Join(winhost.ProfileNames(), ", "), scenarios.DidYouMean(*hostProfile, winhost.ProfileNames()))}
	}
	for _, f := range faults {
		if !fault.Known(f) {
			return usageError{fmt.Sprintf("--fault %q: known faults: %s%s", f, strings.Join(fault.Names(), ", "), scenarios.DidYouMean(f, fault.Names()))}
		}
	}
	if *timeout <= 0 {
		return usageError{"--timeout must be positive"}
	}
	filter, refs, err := selection(*runRE, tags, skipTags, fs.Args(), includePath...)
	if err != nil {
		return err
	}
	if refs, err = scenarios.Select(refs, filter); err != nil {
		return err
	}
	if len(refs) == 0 {
		return usageError{"no scenarios found (or none matches --run/--tag)"}
	}
	if *shardFlag != "" {
		sh, err := scenarios.ParseShard(*shardFlag)
		if err != nil {
			return usageError{err.Error()}
		}
		// Every job of the matrix selects its slice of the same list: an
		// empty slice (more shards than scenarios) is a pass, not an error.
		refs = scenarios.ShardRefs(refs, sh, *stackKind)
	}
	parallelSet := false
	fs.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "parallel" })
	if parallelSet && *parallel < 1 {
		return usageError{fmt.Sprintf("--parallel %d: must be at least 1", *parallel)}
	}
	if !parallelSet {
		*parallel = defaultParallel(*stackKind)
	}
	if *reader != "" {
		// One card, one scenario at a time: the default of 2 becomes 1,
		// an explicit value above 1 is refused by the preflight.
		if !parallelSet {
			*parallel = 1
		}
		ropts := scenarios.Options{Stack: *stackKind, Reader: *reader, Parallel: *parallel, ReuseStacks: *reuse, CardFaults: faults,
			PIN: *pin, AdminKey: *adminKey, ResetCmd: *resetCmd}
		if err := scenarios.ReaderPreflight(ropts); err != nil {
			return usageError{err.Error()}
		}
		if *list {
			lines, err := scenarios.ReaderApplicability(refs, ropts)
			if err != nil {
				return err
			}
			for _, l := range lines {
				fmt.Fprintln(stdout, l)
			}
			return nil
		}
	} else if *pin != "" || *adminKey != "" || *resetCmd != "" {
		return usageError{"--pin, --admin-key and --reset-cmd describe the card in --reader; virtual cards take theirs from the scenario"}
	}
	if *list {
		for _, r := range refs {
			fmt.Fprintln(stdout, r)
		}
		return nil
	}
	if len(refs) == 0 {
		fmt.Fprintf(stdout, "cardharness run: shard %s has no scenarios\n", *shardFlag)
		return nil
	}
	if err := scenarios.Check(refs); err != nil {
		return err
	}
	if *check {
		fmt.Fprintf(stdout, "%d scenarios parse\n", len(refs))
		return nil
	}
	opts := scenarios.Options{Stack: *stackKind, Reader: *reader, Parallel: *parallel, ReuseStacks: *reuse, Seed: *seed, SeedSet: *seed != 0,
		Verbose: lf.verbose, TraceSecrets: *traceSecrets, CardFaults: faults, HostProfile: *hostProfile, Timeout: *timeout, Pcscd: *pcscd, Log: lf.logger(stderr),
		PIN: *pin, AdminKey: *adminKey, ResetCmd: *resetCmd}
	// A missing pcscd is said once, before any scenario, not once per
	// scenario.
	if err := scenarios.Preflight(opts); err != nil {
		fmt.Fprintf(stderr, "cardharness run: %v\n", err)
		return exitError{1}
	}
	outDir, err := runDir(*out)
	if err != nil {
		return err
	}
	opts.TraceDir, opts.TraceAll = *traceDir, *traceAll
	if opts.TraceDir == "" {
		opts.TraceDir = filepath.Join(outDir, "traces")
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var caught os.Signal
	go func() {
		if s, ok := <-sigs; ok {
			caught = s
			stop()
		}
	}()
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
		if *shardFlag != "" {
			where += ", shard " + *shardFlag
		}
		fmt.Fprintf(stdout, "cardharness run: %d scenarios (%s, parallel %d)\n", len(refs), where, *parallel)
	}
	// -v prints every step as it runs: no live line between those.
	if f, ok := progress.(*os.File); ok && isTerminal(f) && !lf.verbose {
		live := newLiveLine(f)
		progress = live
		opts.OnProgress = live.update
		defer live.clear()
	}
	opts.Progress = progress
	results, err := scenarios.RunAll(ctx, refs, opts)
	if err != nil {
		return err
	}
	if lw, ok := progress.(*liveLine); ok {
		lw.clear()
	}
	if err := writeReports(outDir, *junit, *html, results); err != nil {
		return err
	}
	if *report == "json" {
		if err := scenarios.WriteJSON(stdout, results); err != nil {
			return err
		}
	} else {
		scenarios.WriteText(stdout, results)
		fmt.Fprintf(stdout, "reports and traces: %s\n", outDir)
	}
	if caught != nil {
		fmt.Fprintf(stderr, "cardharness run: stopped by %v; the report above covers what ran\n", caught)
		return exitError{exitInterrupted}
	}
	sum := scenarios.Summary(results)
	if sum[scenarios.Fail]+sum[scenarios.Error] > 0 {
		return exitError{1}
	}
	return nil
}

// keepRuns is how many run directories build/runs keeps: older ones are
// removed when a new run starts, so the directory does not grow forever.
const keepRuns = 20

var runName = regexp.MustCompile(`^\d{8}-\d{6}(-\d+)?$`)

// pruneRuns removes all but the newest keepRuns run directories under
// base (only names runDir makes; anything else there is left alone).
func pruneRuns(base string) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	var runs []string
	for _, e := range ents {
		if e.IsDir() && runName.MatchString(e.Name()) {
			runs = append(runs, e.Name())
		}
	}
	// Names sort by time: DATE-TIME, then -N for runs in the same second.
	sort.Slice(runs, func(i, j int) bool { return runOrder(runs[i]) < runOrder(runs[j]) })
	for len(runs) > keepRuns {
		os.RemoveAll(filepath.Join(base, runs[0]))
		runs = runs[1:]
	}
}

func runOrder(name string) string {
	stamp, n, _ := strings.Cut(name, "-")
	rest, suffix, _ := strings.Cut(n, "-")
	if len(suffix) < 6 {
		suffix = strings.Repeat("0", 6-len(suffix)) + suffix
	}
	return stamp + "-" + rest + "-" + suffix
}

// runDir makes the directory of this run: dir as given, or a new
// build/runs/DATE-TIME (never an old run's), with build/runs/latest
// pointing at it; only the newest keepRuns runs are kept.
func runDir(dir string) (string, error) {
	if dir != "" {
		return dir, os.MkdirAll(dir, 0o755)
	}
	base := filepath.Join("build", "runs")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	stamp := time.Now().UTC().Format("20060102-150405")
	for i := 0; ; i++ {
		name := stamp
		if i > 0 {
			name = fmt.Sprintf("%s-%d", stamp, i)
		}
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o755); err == nil {
			pruneRuns(base)
			latest := filepath.Join(base, "latest")
			os.Remove(latest)
			os.Symlink(name, latest) // a convenience; a failure changes nothing
			return d, nil
		} else if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
}

// writeReports writes the run's reports into its directory, plus the
// extra files --junit and --html ask for.
func writeReports(dir, junit, html string, results []scenarios.Result) error {
	writers := []struct {
		paths []string
		write func(io.Writer) error
	}{
		{[]string{filepath.Join(dir, "junit.xml"), junit}, func(w io.Writer) error { return scenarios.WriteJUnit(w, results) }},
		{[]string{filepath.Join(dir, "report.html"), html}, func(w io.Writer) error { return scenarios.WriteHTML(w, results) }},
		{[]string{filepath.Join(dir, "results.json")}, func(w io.Writer) error { return scenarios.WriteJSON(w, results) }},
	}
	for _, wr := range writers {
		for _, p := range wr.paths {
			if p == "" {
				continue
			}
			if err := writeFile(p, wr.write); err != nil {
				return err
			}
		}
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

// selection is what run and sweep share: the scenarios named on the
// command line (the built-in suite when none is), and the --run, --tag and
// --skip-tag filter over them.
func selection(runRE string, tags, skipTags, paths []string, includePath ...string) (scenarios.Filter, []scenarios.Ref, error) {
	var filter scenarios.Filter
	if runRE != "" {
		re, err := regexp.Compile(runRE)
		if err != nil {
			return filter, nil, usageError{fmt.Sprintf("--run: %v", err)}
		}
		filter.Run = re
	}
	filter.Tags, filter.SkipTags = tags, skipTags
	if len(paths) == 0 {
		paths = []string{"builtin"}
	}
	refs, err := scenarios.FileRefs(paths, includePath...)
	return filter, refs, err
}
