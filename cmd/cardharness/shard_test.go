package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type junitDoc struct {
	Suites []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Cases    []struct {
			Name      string    `xml:"name,attr"`
			Classname string    `xml:"classname,attr"`
			Failure   *struct{} `xml:"failure"`
			Error     *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// junitCases reads a JUnit file as "classname name status" lines, sorted,
// and checks that the suite's counts agree with its testcases.
func junitCases(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, s := range doc.Suites {
		fails := 0
		for _, c := range s.Cases {
			status := "pass"
			if c.Failure != nil {
				status = "fail"
				fails++
			} else if c.Error != nil {
				status = "error"
			}
			out = append(out, fmt.Sprintf("%s %s %s", c.Classname, c.Name, status))
		}
		if s.Tests != len(s.Cases) || s.Failures != fails {
			t.Errorf("%s: suite %q says tests=%d failures=%d, its testcases %d and %d", path, s.Name, s.Tests, s.Failures, len(s.Cases), fails)
		}
	}
	sort.Strings(out)
	return out
}

// TestShardedRunMergesToTheUnshardedRun runs the built-in suite in process
// once whole and once as three shards with a fault that makes some
// scenarios fail (so statuses are compared too), merges the shards' JUnit
// and JSON reports, and compares the merged testcases with the whole
// run's.
func TestShardedRunMergesToTheUnshardedRun(t *testing.T) {
	dir := t.TempDir()
	base := []string{"run", "--stack", "direct", "--fault", "drop-cardcf-writes", "--seed", "3"}
	var stdout, stderr bytes.Buffer
	cli(append(base, "--out", filepath.Join(dir, "whole")), &stdout, &stderr)
	whole := junitCases(t, filepath.Join(dir, "whole", "junit.xml"))
	if len(whole) < 10 || !strings.Contains(strings.Join(whole, "\n"), " fail") {
		t.Fatalf("the whole run has %d testcases, some failing expected:\n%s\n%s", len(whole), strings.Join(whole, "\n"), stderr.String())
	}
	var xmls, jsons []string
	total := 0
	for k := 1; k <= 3; k++ {
		out := filepath.Join(dir, fmt.Sprintf("shard%d", k))
		stdout.Reset()
		cli(append(base, "--shard", fmt.Sprintf("%d/3", k), "--out", out), &stdout, &stderr)
		n := len(junitCases(t, filepath.Join(out, "junit.xml")))
		if n == 0 || n == len(whole) {
			t.Errorf("shard %d/3 ran %d of %d scenarios", k, n, len(whole))
		}
		total += n
		xmls = append(xmls, filepath.Join(out, "junit.xml"))
		jsons = append(jsons, filepath.Join(out, "results.json"))
	}
	if total != len(whole) {
		t.Errorf("the shards ran %d scenarios, the whole run %d", total, len(whole))
	}
	merged := filepath.Join(dir, "merged.xml")
	if code := cli(append([]string{"report", "merge", merged}, xmls...), &stdout, &stderr); code != 0 {
		t.Fatalf("report merge: exit %d: %s", code, stderr.String())
	}
	if diff := cmp.Diff(whole, junitCases(t, merged)); diff != "" {
		t.Errorf("merged JUnit differs from the unsharded run (-whole +merged):\n%s", diff)
	}
	mergedJSON := filepath.Join(dir, "merged.json")
	if code := cli(append([]string{"report", "merge", mergedJSON}, jsons...), &stdout, &stderr); code != 0 {
		t.Fatalf("report merge (json): exit %d: %s", code, stderr.String())
	}
	var wholeRep, mergedRep runReport
	readJSON(t, filepath.Join(dir, "whole", "results.json"), &wholeRep)
	readJSON(t, mergedJSON, &mergedRep)
	if diff := cmp.Diff(jsonCases(wholeRep), jsonCases(mergedRep)); diff != "" {
		t.Errorf("merged JSON differs from the unsharded run (-whole +merged):\n%s", diff)
	}
	// Overlapping shards are a mistake the merge names.
	stderr.Reset()
	if code := cli([]string{"report", "merge", filepath.Join(dir, "dup.xml"), xmls[0], xmls[0]}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "the shards overlap") {
		t.Errorf("merging a shard with itself: exit %d, %q; want an overlap error", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "dup.xml")); err == nil {
		t.Error("a failed merge left its output file")
	}
}

func jsonCases(r runReport) []string {
	var out []string
	for _, res := range r.Results {
		out = append(out, res.Name+" "+res.Status)
	}
	sort.Strings(out)
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestSweepCommand: the sweep command prints the matrix, writes the JSON
// and HTML reports, exits 1 when a cell failed, and rejects a bad --vary
// with the knob's allowed values.
func TestSweepCommand(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := cli([]string{"sweep", "--vary", "propagation_reads_through_cache=true,false", "--profiles", "windows-11-2025,windows-7",
		"--json", filepath.Join(dir, "s.json"), "--html", filepath.Join(dir, "s.html"), "builtin:seed-bug-writer-without-bump"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit %d, want 1 (the seed bug fails without read-through propagation)\n%s%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"1 scenarios x 4 variants", "v4   windows-7 propagation_reads_through_cache=false", "ok  FAIL    ok  FAIL"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
	for _, f := range []string{"s.json", "s.html"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || len(b) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	stderr.Reset()
	if code := cli([]string{"sweep", "--vary", "granularity=sideways"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "per-category") {
		t.Errorf("bad --vary: exit %d, %q", code, stderr.String())
	}
}
