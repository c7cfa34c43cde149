// Command benchratio reads `go test -bench` output on stdin, prints it, and
// then prints each benchmark's speed as a ratio to a baseline measured in
// the same run. Absolute numbers depend on the machine; ratios between two
// things measured side by side mostly do not, which is why targets are
// stated as ratios.
//
//	go test -bench . ./... | go run ./internal/benchratio \
//	    -ratio 'RoundTrip/stack-gids-getdata:RoundTrip/stack-echo<=1.15'
//
// Each -ratio is TARGET:BASELINE, optionally followed by <=MAX; a ratio
// above MAX makes the command exit 1. Names match benchmark names without
// the "Benchmark" prefix and the -GOMAXPROCS suffix.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cardharness/cardharness/internal/cliflag"
)

var line = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op`)

func main() {
	var ratios cliflag.Repeated
	flag.Var(&ratios, "ratio", "TARGET:BASELINE[<=MAX] (repeatable)")
	flag.Parse()

	runs := map[string][]float64{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Println(sc.Text())
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			runs[m[1]] = append(runs[m[1]], v)
		}
	}
	// With -count N, the median of the runs: one noisy run on a shared
	// machine should not decide a target.
	nsop := map[string]float64{}
	for name, vs := range runs {
		sort.Float64s(vs)
		nsop[name] = vs[len(vs)/2]
	}
	if len(ratios) == 0 {
		return
	}
	fmt.Println()
	fmt.Println("ratios (median time per op, target / baseline; same run):")
	failed := false
	for _, r := range ratios {
		spec, limit, hasLimit := strings.Cut(r, "<=")
		target, base, ok := strings.Cut(spec, ":")
		if !ok {
			fmt.Fprintf(os.Stderr, "benchratio: bad -ratio %q (want TARGET:BASELINE[<=MAX])\n", r)
			os.Exit(2)
		}
		t, tok := nsop[target]
		b, bok := nsop[base]
		if !tok || !bok {
			fmt.Printf("  %-40s missing from this run (target %v, baseline %v)\n", spec, tok, bok)
			failed = failed || hasLimit
			continue
		}
		ratio := t / b
		verdict := ""
		if hasLimit {
			max, err := strconv.ParseFloat(limit, 64)
			if err != nil {
				fmt.Fprintf(os.Stderr, "benchratio: bad limit in %q\n", r)
				os.Exit(2)
			}
			verdict = fmt.Sprintf("  target <= %.2f: ok", max)
			if ratio > max {
				verdict = fmt.Sprintf("  target <= %.2f: MISSED", max)
				failed = true
			}
		}
		fmt.Printf("  %-28s / %-28s = %8.3f%s\n", target, base, ratio, verdict)
	}
	if failed {
		os.Exit(1)
	}
}
