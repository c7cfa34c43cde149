package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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

func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: install it with `apt-get install %s` (or `make deps`)", name, pkg)
	}
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
	needTool(t, "opensc-tool", "opensc")
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
		want string
	}{
		{"no command", nil, "usage: cardharness COMMAND"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"exec without command", []string{"exec"}, "no command given"},
		{"unknown card", []string{"exec", "--card", "nope", "--", "true"}, `unknown card type`},
		{"stack without dir", []string{"stack"}, "--dir is required"},
		{"too many cards", []string{"exec", "--cards", "17", "--", "true"}, "--cards 17"},
		{"bad flag", []string{"exec", "--frob"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := cli(tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestStackCommandPrintsContractAndCleansUp(t *testing.T) {
	needTool(t, "opensc-tool", "opensc")
	dir := filepath.Join(os.TempDir(), "cardharness-clitest-"+strings.ReplaceAll(t.Name(), "/", "_"))
	_ = os.RemoveAll(dir)
	cmd := cardharness("stack", "--dir", dir, "--cards", "2")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stdout)
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
	needTool(t, "pkcs15-tool", "opensc")
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
