package scenarios

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// The built-in suite's speed and scale, for `make bench` (ratios in one
// run; nothing here asserts a time).

func benchSuite(b *testing.B, opts Options) {
	// As `cardharness run` does: traces kept, saved for failures.
	opts.TraceDir = b.TempDir()
	refs := BuiltinRefs()
	if err := Check(refs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0, cpuOK := processCPU()
	for i := 0; i < b.N; i++ {
		res, err := RunAll(context.Background(), refs, opts)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Status != Pass {
				b.Fatalf("%s: %s %s", r.Name, r.Status, r.Failure)
			}
		}
	}
	b.ReportMetric(float64(len(refs)*b.N)/b.Elapsed().Seconds(), "scenarios/s")
	reportCPU(b, cpu0, cpuOK)
}

// reportCPU reports the process's CPU time (user + system, all
// goroutines) per op since cpu0, in seconds: ns/op of a suite that
// waits says little about what it computes.
func reportCPU(b *testing.B, cpu0 time.Duration, ok bool) {
	if cpu1, ok1 := processCPU(); ok && ok1 {
		b.ReportMetric((cpu1-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	}
}

// BenchmarkSuite runs the whole built-in suite, 2 at a time: in process
// with seeded keys (the default) and with real key generation (the
// baseline of issue 14), and on private pcscd stacks: one per scenario,
// and reused by long-lived workers (--reuse-stacks).
func BenchmarkSuite(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchSuite(b, Options{Stack: "direct", Parallel: 2}) })
	b.Run("direct-randomkeys", func(b *testing.B) { benchSuite(b, Options{Stack: "direct", Parallel: 2, RandomKeys: true}) })
	b.Run("pcscd", func(b *testing.B) {
		if err := Preflight(Options{Stack: "pcscd"}); err != nil {
			b.Fatal(err)
		}
		benchSuite(b, Options{Stack: "pcscd", Parallel: 2})
	})
	b.Run("pcscd-reuse", func(b *testing.B) {
		if err := Preflight(Options{Stack: "pcscd"}); err != nil {
			b.Fatal(err)
		}
		benchSuite(b, Options{Stack: "pcscd", Parallel: 2, ReuseStacks: true})
	})
	// Mostly waiting for pcscd's presence poll, not computing: more
	// workers than cores, with and without reuse.
	for _, reuse := range []bool{false, true} {
		name := map[bool]string{false: "pcscd-parallel6", true: "pcscd-reuse-parallel6"}[reuse]
		b.Run(name, func(b *testing.B) {
			if err := Preflight(Options{Stack: "pcscd"}); err != nil {
				b.Fatal(err)
			}
			benchSuite(b, Options{Stack: "pcscd", Parallel: 6, ReuseStacks: reuse})
		})
	}
}

// BenchmarkSweep64 sweeps the built-in suite over 64 variants in process
// (2 host profiles x 5 knobs of 2 values) and reports runs per second,
// CPU time and the peak heap in use.
func BenchmarkSweep64(b *testing.B) {
	var spec SweepSpec
	spec.Profiles = []string{"windows-11-2025", "windows-10-legacy"}
	for _, v := range []string{
		"propagation_reads_through_cache=true,false",
		"granularity=per-category,whole-snapshot",
		"drop_pin_on_wrong_pin=true,false",
		"pin_cache_survives_removal=true,false",
		"global_cache_persistent=true,false",
	} {
		ax, err := ParseVary(v)
		if err != nil {
			b.Fatal(err)
		}
		spec.Vary = append(spec.Vary, ax)
	}
	if n := len(spec.Variants()); n != 64 {
		b.Fatalf("%d variants, want 64", n)
	}
	refs := BuiltinRefs()
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // heap high-water mark, sampled
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			default:
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			runtime.Gosched()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	b.ResetTimer()
	cpu0, cpuOK := processCPU()
	runs := 0
	for i := 0; i < b.N; i++ {
		rep, err := Sweep(context.Background(), refs, spec, Options{Stack: "direct", Parallel: 2})
		if err != nil {
			b.Fatal(err)
		}
		runs += rep.Runs
	}
	b.StopTimer()
	reportCPU(b, cpu0, cpuOK)
	close(stop)
	<-done
	b.ReportMetric(float64(runs)/b.Elapsed().Seconds(), "runs/s")
	b.ReportMetric(float64(runs/b.N), "runs/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
