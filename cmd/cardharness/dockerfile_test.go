package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerStages splits the Dockerfile into stages of instructions, with
// continuation lines joined and comments dropped.
func dockerStages(t *testing.T) (args map[string]string, stages [][]string) {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	args = map[string]string{}
	joined := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if v, ok := strings.CutPrefix(line, "ARG "); ok && len(stages) == 0 {
			k, d, _ := strings.Cut(v, "=")
			args[k] = d
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %q before the first FROM", line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], line)
	}
	return args, stages
}

func has(lines []string, re string) bool {
	r := regexp.MustCompile(re)
	for _, l := range lines {
		if r.MatchString(l) {
			return true
		}
	}
	return false
}

// TestDockerfileInstallsThroughMakeDeps: the image is built with the
// steps CI runs (make deps, as .ci/run), on Debian bookworm, and runs
// `cardharness run` by default. No registry is reachable here, so the
// image itself is not built; the run stage's make apt-deps is run for
// real against a lone copy of the Makefile, as the image does.
func TestDockerfileInstallsThroughMakeDeps(t *testing.T) {
	args, stages := dockerStages(t)
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want build and run", len(stages))
	}
	for _, a := range []string{"GO_IMAGE", "BASE_IMAGE"} {
		if !strings.Contains(args[a], "bookworm") {
			t.Errorf("ARG %s=%q: want a Debian bookworm image", a, args[a])
		}
	}
	build, run := stages[0], stages[1]
	checks := []struct {
		stage []string
		re    string
		why   string
	}{
		{build, `^FROM \$\{GO_IMAGE\} AS build$`, "the build stage is the Go image"},
		{build, `^RUN .*\bmake deps\b`, "the build stage installs through make deps, as .ci/run does"},
		{build, `^RUN .*\bmake build\b`, "the binary comes from make build"},
		{run, `^FROM \$\{BASE_IMAGE\}$`, "the run stage is the Debian image"},
		{run, `^COPY Makefile (\S+)/Makefile$`, "the run stage gets the Makefile for apt-deps"},
		{run, `^RUN make -C \S+ apt-deps\b`, "the run stage installs the Debian half of make deps"},
		{run, `^COPY --from=build /src/build/cardharness /usr/local/bin/cardharness$`, "the binary is copied from the build stage"},
		{run, `^ENTRYPOINT \["cardharness"\]$`, "the entry point is cardharness"},
		{run, `^CMD \["run"\]$`, "the default command is cardharness run"},
	}
	for _, c := range checks {
		if !has(c.stage, c.re) {
			t.Errorf("Dockerfile: no line matching %s (%s)", c.re, c.why)
		}
	}

	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^make deps$`).Match(ci) {
		t.Error(".ci/run no longer runs `make deps`: the Dockerfile and CI must share their install step")
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^deps: apt-deps tools$`).Match(mk) {
		t.Error("Makefile: deps is no longer apt-deps + tools, so the run stage's apt-deps is not the Debian half of make deps")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{args["GO_IMAGE"], args["BASE_IMAGE"]} {
		if !strings.Contains(string(readme), img) {
			t.Errorf("README does not name the base image %s", img)
		}
	}

	// The run stage's step, for real: make apt-deps with only the Makefile.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), mk, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("make", "-C", dir, "apt-deps").CombinedOutput()
	if err != nil {
		t.Fatalf("make -C DIR apt-deps with a lone Makefile: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "deps: ") {
		t.Errorf("make apt-deps said:\n%s", out)
	}
}
