package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/internal/cliflag"
	"github.com/cardharness/cardharness/scenarios"
	"github.com/cardharness/cardharness/vcard/fault"
)

func runSweep(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("sweep", "[flags] [SCENARIO.yaml|DIR|builtin|builtin:NAME ...]", stderr)
	stackKind := fs.String("stack", "direct", "direct: in process; pcscd: each run on its own private pcscd + vpcd")
	profiles := fs.String("profiles", "", "host profiles to run under, comma-separated, or all: "+strings.Join(winhost.ProfileNames(), ", ")+" (default: as the scenarios say)")
	seeds := fs.String("seeds", "", "seeds to run every cell with: A..B or a list (default: each scenario's own)")
	parallel := fs.Int("parallel", 0, "runs at once (default: the number of CPUs)")
	runRE := fs.String("run", "", "only scenarios whose name or path matches this regular expression")
	shardFlag := fs.String("shard", "", "run only slice K of N of the sweep's cells (K/N), balanced by cost")
	report := fs.String("report", "text", "report on stdout: text or json")
	jsonOut := fs.String("json", "", "also write the JSON report to this file")
	htmlOut := fs.String("html", "", "also write the HTML grid to this file")
	timeout := fs.Duration("timeout", 5*time.Minute, "stop a run that takes longer than this")
	var vary cliflag.Repeated
	var faults, tags, skipTags cliflag.List
	fs.Var(&vary, "vary", "vary a host knob: KNOB=V1,V2 (repeatable; each adds an axis)")
	fs.Var(&faults, "fault", "inject a card fault into every card: "+strings.Join(fault.Names(), ", "))
	fs.Var(&tags, "tag", "only scenarios with one of these tags")
	fs.Var(&skipTags, "skip-tag", "leave out scenarios with any of these tags")
	if err := parse(fs, args); err != nil {
		return suggestFlag(fs, err)
	}
	if err := oneOf("stack", *stackKind, "direct", "pcscd"); err != nil {
		return err
	}
	if err := oneOf("report", *report, "text", "json"); err != nil {
		return err
	}
	for _, f := range faults {
		if !fault.Known(f) {
			return usageError{fmt.Sprintf("--fault %q: known faults: %s", f, strings.Join(fault.Names(), ", "))}
		}
	}
	var spec scenarios.SweepSpec
	for _, v := range vary {
		ax, err := scenarios.ParseVary(v)
		if err != nil {
			return usageError{err.Error()}
		}
		spec.Vary = append(spec.Vary, ax)
	}
	if *profiles == "all" {
		spec.Profiles = winhost.ProfileNames()
	} else if *profiles != "" {
		for _, p := range strings.Split(*profiles, ",") {
			p = strings.TrimSpace(p)
			if _, err := winhost.ProfileKnobs(p); err != nil {
				return usageError{fmt.Sprintf("--profiles: unknown profile %q (profiles: %s, or all)", p, strings.Join(winhost.ProfileNames(), ", "))}
			}
			spec.Profiles = append(spec.Profiles, p)
		}
	}
	if *seeds != "" {
		s, err := scenarios.ParseSeeds(*seeds)
		if err != nil {
			return usageError{err.Error()}
		}
		spec.Seeds = s
	}
	if *shardFlag != "" {
		sh, err := scenarios.ParseShard(*shardFlag)
		if err != nil {
			return usageError{err.Error()}
		}
		spec.Shard = sh
	}
	refs, err := selection(*runRE, tags, skipTags, fs.Args())
	if err != nil {
		return err
	}
	opts := scenarios.Options{Stack: *stackKind, Parallel: *parallel, CardFaults: faults, Timeout: *timeout, Log: lf.logger(stderr)}
	ctx, stop := runContext()
	defer stop()
	rep, err := scenarios.Sweep(ctx, refs, spec, opts)
	if rep == nil {
		return err
	}
	if werr := writeReportFiles(
		reportFile{cleanPath(*jsonOut), func(w io.Writer) error { return scenarios.WriteSweepJSON(w, rep) }},
		reportFile{cleanPath(*htmlOut), func(w io.Writer) error { return scenarios.WriteSweepHTML(w, rep) }},
	); werr != nil {
		return werr
	}
	if *report == "json" {
		if jerr := scenarios.WriteSweepJSON(stdout, rep); jerr != nil {
			return jerr
		}
	} else {
		scenarios.WriteSweepText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "cardharness sweep: stopped (%v); the matrix above covers what ran\n", err)
		return exitError{exitInterrupted}
	}
	if rep.Failures > 0 {
		return exitError{1}
	}
	return nil
}

// cleanPath is filepath.Clean for a path that was given; "" stays "" (not
// asked for), where Clean would make it ".".
func cleanPath(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Clean(p)
}
