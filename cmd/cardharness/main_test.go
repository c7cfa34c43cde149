package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardharness/cardharness/internal/testutil"
)

// TestMain lets the test binary act as the cardharness command, so tests
// run it as a real process (signals, exit codes, leftovers) without a
// separate build step.
func TestMain(m *testing.M) {
	if os.Getenv("CARDHARNESS_AS_CLI") == "1" {
		os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func cardharness(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CARDHARNESS_AS_CLI=1")
	return cmd
}

// systemPcscdAnswers reports whether a pcscd answers at the default socket.
// ok is false when there is none to ask.
func systemPcscdAnswers(t *testing.T) (answers, ok bool) {
	if _, err := os.Stat("/run/pcscd/pcscd.comm"); err != nil {
		return false, false
	}
	cmd := exec.Command("opensc-tool", "-l")
	cmd.Env = withoutSocketEnv()
	out, err := cmd.CombinedOutput()
	t.Logf("system pcscd: opensc-tool -l: %v\n%s", err, out)
	return err == nil, true
}

func withoutSocketEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PCSCLITE_CSOCK_NAME=") {
			env = append(env, kv)
		}
	}
	return env
}

func TestExecListsTwoReadersWithCards(t *testing.T) {
	testutil.NeedTool(t, "opensc-tool", "opensc")
	sysBefore, haveSys := systemPcscdAnswers(t)
	// A TMPDIR of its own, so that what this exec leaves behind can be told
	// apart from the stacks of tests running in parallel.
	tmp, err := os.MkdirTemp("", "chx")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := cardharness("exec", "--cards", "2", "--", "opensc-tool", "-l")
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cardharness exec: %v\n%s", err, out)
	}
	var withCard []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "Yes" && strings.Contains(line, "Cardharness VPCD") {
			withCard = append(withCard, line)
		}
	}
	if len(withCard) != 2 || strings.Count(string(out), "Cardharness VPCD") != 2 {
		t.Errorf("want exactly two readers, each with a card; opensc-tool -l said:\n%s", out)
	}

	if left := testutil.PcscdProcesses(tmp); len(left) > 0 {
		t.Errorf("private pcscd left running after exec: %q", left)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		t.Errorf("exec left %d entries in its TMPDIR, e.g. %s", len(ents), ents[0].Name())
	}
	if haveSys {
		if sysAfter, _ := systemPcscdAnswers(t); sysBefore && !sysAfter {
			t.Errorf("the system pcscd answered before cardharness exec but not after")
		}
	} else {
		t.Log("no system pcscd on this machine: the untouched-system-pcscd check has nothing to ask (.ci/run starts one)")
	}
}

func TestExecPassesExitStatus(t *testing.T) {
	err := cardharness("exec", "--cards", "1", "--", "sh", "-c", "test -S \"$PCSCLITE_CSOCK_NAME\" && exit 7").Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("exit status: %v, want 7 (the command saw PCSCLITE_CSOCK_NAME pointing at a socket)", err)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "usage: cardharness COMMAND"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"typo'd command", []string{"exce"}, 2, `unknown command "exce" (did you mean "exec"?)`},
		{"typo'd command doctor", []string{"docter"}, 2, `(did you mean "doctor"?)`},
		{"stack without dir", []string{"stack"}, 2, "--dir is required"},
		{"typo'd stack flag", []string{"stack", "--dri", "/tmp/x"}, 2, "flag provided but not defined: -dri (did you mean --dir?)"},
		{"typo'd doctor flag", []string{"doctor", "--apdu", "3"}, 2, "(did you mean --apdus?)"},
		{"bad flag hints at -h", []string{"stack", "--frob"}, 2, "Run 'cardharness stack -h' for its flags."},
		// exec's own failures are 125 (env, docker run), whatever they are.
		{"exec without command", []string{"exec"}, 125, "no command given"},
		{"exec unknown card", []string{"exec", "--card", "nope", "--", "true"}, 125, `unknown card type`},
		{"exec too many cards", []string{"exec", "--cards", "17", "--", "true"}, 125, "--cards 17"},
		{"exec bad flag", []string{"exec", "--frob"}, 125, "flag provided but not defined"},
		{"exec typo'd flag", []string{"exec", "--crads", "2", "--", "true"}, 125, "(did you mean --cards?)"},
		{"exec bad grace", []string{"exec", "--grace", "0s", "--", "true"}, 125, "--grace 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := cli(tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("a mistake printed to stdout: %q", stdout.String())
			}
		})
	}
}

func TestHelpGoesToStdout(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, "usage: cardharness COMMAND"},
		{[]string{"--help"}, "usage: cardharness COMMAND"},
		{[]string{"help"}, "usage: cardharness COMMAND"},
		{[]string{"help", "exec"}, "usage: cardharness exec"},
		{[]string{"exec", "-h"}, "-grace duration"},
		{[]string{"stack", "--help"}, "usage: cardharness stack"},
		{[]string{"doctor", "-h"}, "usage: cardharness doctor"},
		{[]string{"run", "-h"}, "usage: cardharness run"},
		{[]string{"trace", "-h"}, "usage: cardharness trace"},
		{[]string{"card", "-h"}, "usage: cardharness card"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := cli(tt.args, &stdout, &stderr); code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			if !strings.Contains(stdout.String(), tt.want) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tt.want)
			}
			if stderr.Len() > 0 {
				t.Errorf("help wrote to stderr: %q", stderr.String())
			}
		})
	}
}

// TestExecExitStatuses: the command's own status, or 125/126/127 for
// what went wrong before it could run (env(1), docker run).
func TestExecExitStatuses(t *testing.T) {
	long := filepath.Join(os.TempDir(), strings.Repeat("d", 100))
	if err := os.MkdirAll(long, 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(long)
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"command exits 0", nil, []string{"true"}, 0, ""},
		{"command exits 1", nil, []string{"false"}, 1, ""},
		{"command exits 7", nil, []string{"sh", "-c", "exit 7"}, 7, ""},
		{"command killed by SIGKILL", nil, []string{"sh", "-c", "kill -9 $$"}, 128 + 9, ""},
		{"command not found", nil, []string{"no-such-command-cardharness"}, 127, "executable file not found"},
		{"command not executable", nil, []string{notExec}, 126, "permission denied"},
		{"stack cannot start", []string{"TMPDIR=" + long}, []string{"true"}, 125, "longer than a Unix socket allows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := cardharness(append([]string{"exec", "--cards", "1", "--"}, tt.args...)...)
			cmd.Env = append(cmd.Env, tt.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			code := exitCode(t, cmd.Run())
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
		})
	}
}

// exitCode is the exit status a finished command's Run or Wait error
// stands for; an error that is not an exit status (the command never
// started, say) fails the test.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// waitExitWithin waits for cmd, failing the test if it is still running
// after limit (a hang guard, not a timing assertion).
func waitExitWithin(t *testing.T, cmd *exec.Cmd, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(t, err)
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s still running after %v", cmd.Args, limit)
	}
	return -1
}

// startScanning starts cmd with its stdout to be read line by line and
// its stderr collected for the failure messages.
func startScanning(t *testing.T, cmd *exec.Cmd) (*bufio.Scanner, *bytes.Buffer) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(bytes.Buffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return bufio.NewScanner(stdout), stderr
}

// waitLine reads sc up to the first line starting prefix, and returns it.
func waitLine(t *testing.T, sc *bufio.Scanner, prefix string) string {
	t.Helper()
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			return sc.Text()
		}
	}
	t.Fatalf("no line starting %q (%v)", prefix, sc.Err())
	return ""
}

// TestExecKillsCommandIgnoringSIGTERM: exec passes SIGTERM on, and a
// command that ignores it is killed after --grace.
func TestExecKillsCommandIgnoringSIGTERM(t *testing.T) {
	cmd := cardharness("exec", "--grace", "1s", "--", "sh", "-c", `trap "" TERM; echo ready; exec sleep 120`)
	sc, stderr := startScanning(t, cmd)
	waitLine(t, sc, "ready")
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExitWithin(t, cmd, 60*time.Second); code != 128+9 {
		t.Errorf("exit %d, want %d (the command killed by SIGKILL); stderr:\n%s", code, 128+9, stderr.String())
	}
	if !strings.Contains(stderr.String(), "still running 1s after terminated; sending SIGKILL") {
		t.Errorf("stderr does not say why the command was killed:\n%s", stderr.String())
	}
}

func killPcscdUnder(t *testing.T, dir string) {
	t.Helper()
	pids := testutil.PcscdProcesses(dir)
	if len(pids) != 1 {
		t.Fatalf("private pcscds under %s: %q, want one", dir, pids)
	}
	pid, _, _ := strings.Cut(pids[0], " ")
	if err := exec.Command("kill", "-KILL", pid).Run(); err != nil {
		t.Fatal(err)
	}
}

// TestStackExitsWhenPcscdDies: `stack` reports a dead pcscd and exits 1.
func TestStackExitsWhenPcscdDies(t *testing.T) {
	dir := filepath.Join(os.TempDir(), "cardharness-clitest-"+t.Name())
	_ = os.RemoveAll(dir)
	cmd := cardharness("stack", "--dir", dir)
	sc, stderr := startScanning(t, cmd)
	waitLine(t, sc, "READER ")
	killPcscdUnder(t, dir)
	if code := waitExitWithin(t, cmd, 30*time.Second); code != 1 {
		t.Errorf("stack exited %d after its pcscd was killed, want 1", code)
	}
	if !strings.Contains(stderr.String(), "pcscd exited unexpectedly (signal: killed)") {
		t.Errorf("stderr does not report the death:\n%s", stderr.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stack directory left behind: %v", err)
	}
}

// TestExecStopsWhenPcscdDies: exec reports a dead pcscd, stops the
// command and exits 125 even though the command would exit 0 on SIGTERM.
func TestExecStopsWhenPcscdDies(t *testing.T) {
	tmp, err := os.MkdirTemp("", "chx")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := cardharness("exec", "--", "sh", "-c", `trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done`)
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	sc, stderr := startScanning(t, cmd)
	waitLine(t, sc, "ready")
	killPcscdUnder(t, tmp)
	if code := waitExitWithin(t, cmd, 30*time.Second); code != 125 {
		t.Errorf("exec exited %d after its pcscd was killed, want 125; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "pcscd exited unexpectedly") || !strings.Contains(stderr.String(), "stopping sh") {
		t.Errorf("stderr does not report the death and the stop:\n%s", stderr.String())
	}
}

func TestStackCommandPrintsContractAndCleansUp(t *testing.T) {
	testutil.NeedTool(t, "opensc-tool", "opensc")
	dir := filepath.Join(os.TempDir(), "cardharness-clitest-"+strings.ReplaceAll(t.Name(), "/", "_"))
	_ = os.RemoveAll(dir)
	cmd := cardharness("stack", "--dir", dir, "--cards", "2")
	sc, stderr := startScanning(t, cmd)
	defer cmd.Process.Kill()
	var lines []string
	for len(lines) < 3 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	want := []string{"PCSCLITE_CSOCK_NAME=" + filepath.Join(dir, "run", "pcscd.comm"), "READER Cardharness VPCD 0 00 00", "READER Cardharness VPCD 0 00 01"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stack printed:\n%s\nwant:\n%s\nstderr: %s", strings.Join(lines, "\n"), strings.Join(want, "\n"), stderr.String())
	}
	lst := exec.Command("opensc-tool", "-l")
	lst.Env = append(withoutSocketEnv(), lines[0])
	out, err := lst.CombinedOutput()
	if err != nil || strings.Count(string(out), "Yes") != 2 {
		t.Errorf("opensc-tool -l against the stack: %v\n%s", err, out)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stack after SIGINT: %v (stderr: %s)", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("stack did not stop within 15s of SIGINT")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stack directory %s left behind: %v", dir, err)
	}
}

func TestExecServesGIDSCardsToOpenSC(t *testing.T) {
	testutil.NeedTool(t, "pkcs15-tool", "opensc")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"blank card is new to gids-tool", []string{"--profile", "blank", "--", "gids-tool"}, []string{"unable to retrieve the master file", "Is that a new card ?"}},
		{"initialized card", []string{"--profile", "initialized", "--pin", "1234", "--cardid", "0102030405060708090A0B0C0D0E0F10", "--", "pkcs15-tool", "-D"},
			[]string{"PKCS#15 Card [GIDS card]", "Serial number  : 0102030405060708090a0b0c0d0e0f10", "Tries left     : 3"}},
		// The echo card answers 9000 to every SELECT, so OpenSC's muscle
		// driver claims it: the reason the GIDS card must refuse foreign
		// probes (docs/reference/gids-protocol.md §1.2).
		{"echo card is claimed by the muscle driver", []string{"--card", "echo", "--", "opensc-tool", "-n"}, []string{"MuscleApplet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := cardharness(append([]string{"exec", "--cards", "1"}, tt.args...)...).CombinedOutput()
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestDoctorPassesOnThisMachine(t *testing.T) {
	out, err := cardharness("doctor", "--cards", "2", "--apdus", "200").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "doctor: all checks passed") {
		t.Fatalf("cardharness doctor: %v\n%s", err, out)
	}
	for _, want := range []string{"ok    private stack", "ok    opensc-tool -l", "ok    stack cleanup"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
}

// TestMakeRunExamplesParse: the `make run ARGS=...` examples in the
// Makefile and README are flags `run` accepts (`--cards 4` was not).
func TestMakeRunExamplesParse(t *testing.T) {
	re := regexp.MustCompile(`make run ARGS="([^"]*)"`)
	var found int
	for _, f := range []string{"../../Makefile", "../../README.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found++
			args := append([]string{"run", "--check"}, strings.Fields(m[1])...)
			var stdout, stderr bytes.Buffer
			if code := cli(args, &stdout, &stderr); code != 0 {
				t.Errorf("%s: make run ARGS=%q: cardharness %s exits %d: %s", f, m[1], strings.Join(args, " "), code, stderr.String())
			}
		}
	}
	if found < 2 {
		t.Errorf("found %d `make run ARGS=` examples, want the Makefile's and the README's", found)
	}
}
