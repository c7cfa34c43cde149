// Command soak runs internal/soak: 16 GIDS cards on one private stack under
// random minidriver traffic, link faults and card kills, for -duration
// (default 10 minutes), then prints a summary. Exit status 1 if the soak
// found a hang, a panic, an undecodable state, an unexplained error or
// growing memory; 2 if it could not start. `make soak DURATION=2m` runs
// it; it is not part of `make test` or CI.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cardharness/cardharness/internal/soak"
)

func main() {
	var cfg soak.Config
	flag.IntVar(&cfg.Cards, "cards", 16, "cards on the stack (1..16)")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "how long to soak")
	flag.DurationVar(&cfg.Deadline, "deadline", 5*time.Second, "host deadline of one operation; one that returns more than 2s later is a hang")
	flag.StringVar(&cfg.StateDir, "state", "", "directory for the cards' state (default: a temporary one, removed after)")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "random seed (default: from the clock; printed)")
	flag.DurationVar(&cfg.SampleEvery, "sample", 5*time.Second, "memory sampling period")
	flag.BoolVar(&cfg.QuickReinsert, "quick-reinsert", false, "put removed cards back within pcscd's poll period (issue 8 finding 3)")
	faults := flag.String("faults", strings.Join(soak.FaultKinds, ","), "fault kinds to inject, comma-separated (empty: none)")
	quiet := flag.Bool("q", false, "no progress lines")
	flag.Parse()
	cfg.Faults = []string{}
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.Faults = append(cfg.Faults, f)
		}
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := soak.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	sum.Write(os.Stdout)
	if !sum.OK() {
		os.Exit(1)
	}
}
