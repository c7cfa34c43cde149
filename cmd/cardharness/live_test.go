package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/scenarios"
)

// TestLiveLineRedrawsAroundScenarioLines: the progress line is drawn in
// place, cleared before a per-scenario line and drawn again after it.
func TestLiveLineRedrawsAroundScenarioLines(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "tty"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := newLiveLine(f)
	l.update(scenarios.Progress{Scenario: 7, Scenarios: 18, Name: "S11", Step: 12, Steps: 30})
	l.Write([]byte("PASS  S9\n"))
	l.update(scenarios.Progress{Scenario: 7, Scenarios: 18, Name: "S11", Step: 13, Steps: 30})
	l.update(scenarios.Progress{Scenario: 8, Scenarios: 18, Name: "S12", Step: 1, Steps: 9})
	l.update(scenarios.Progress{Scenario: 8, Scenarios: 18, Name: "S12", Done: true})
	l.clear()
	b, _ := os.ReadFile(f.Name())
	want := "\r\033[Kscenario 7/18, step 12/30  S11" + "\r\033[K" + "PASS  S9\n" +
		"\r\033[Kscenario 7/18, step 12/30  S11" + "\r\033[Kscenario 7/18, step 13/30  S11" +
		"\r\033[Kscenario 8/18, step 1/9  S12" +
		// S12 done: back to S11, still running
		"\r\033[Kscenario 7/18, step 13/30  S11" + "\r\033[K"
	if string(b) != want {
		t.Errorf("terminal got %q\nwant %q", b, want)
	}
	if isTerminal(f) {
		t.Error("a regular file is taken for a terminal")
	}
	if strings.Contains(string(b), "\n\n") {
		t.Error("blank lines")
	}
}
