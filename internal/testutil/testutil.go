// Package testutil holds the helpers several packages' tests share, so
// each exists once. It imports only the standard library and go-cmp (pure
// Go), so every package of the module (the card included) can use it from
// its tests.
package testutil

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Hex decodes hex written the way docs/reference quotes bytes: spaces
// and newlines between bytes, upper or lower case. Bad hex fails the test.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := ParseHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// MustHex is Hex for package-level test data (no *testing.T yet): bad hex
// panics.
func MustHex(s string) []byte {
	b, err := ParseHex(s)
	if err != nil {
		panic(err)
	}
	return b
}

// ParseHex is Hex for a caller that reports bad hex itself (a vector
// file's parser, naming file:line).
func ParseHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("bad hex %q: %v", s, err)
	}
	return b, nil
}

// Seq is n bytes of filler data for lengths that matter more than
// values (a 300-byte APDU body, a modulus). No byte is zero-filled and
// each 256-byte block is shifted by one from the last, so a chunk that is
// dropped, repeated or misplaced shows in a comparison.
func Seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1 + i>>8)
	}
	return b
}

// Cat concatenates byte strings.
func Cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// PcscdProcesses lists the pcscd processes whose command line names dir
// (a private stack's configuration directory), each as "PID arg0 arg1 …",
// so a test can check that a stack started its pcscd and that nothing is
// left behind.
func PcscdProcesses(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if strings.HasSuffix(args[0], "pcscd") && strings.Contains(string(b), dir) {
			out = append(out, e.Name()+" "+strings.Join(args, " "))
		}
	}
	return out
}

// AddHexSeeds adds each hex string (written as for Hex) to f's seed
// corpus. Bad hex fails the fuzz test rather than adding a truncated seed.
func AddHexSeeds(f *testing.F, seeds ...string) {
	f.Helper()
	for _, s := range seeds {
		f.Add(Hex(f, s))
	}
}

// StartChild runs this test binary again with env ("NAME=value") added
// and no test selected, for a TestMain branch that env selects (a writer
// to SIGKILL mid-update, a lock holder). It returns once the child's first
// line of output is ready; another line, or none, fails the test. The
// child is killed at the end of the test if the caller has not killed it
// already (KillChild).
func StartChild(t testing.TB, ready string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { KillChild(cmd) })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != ready+"\n" {
		t.Fatalf("child %v said %q, want %q", env, line, ready)
	}
	return cmd
}

// KillChild SIGKILLs a child from StartChild and reaps it; killing one
// that is already gone does nothing.
func KillChild(cmd *exec.Cmd) {
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// NeedTool returns the path of the program name, or fails the test with
// the Debian package that ships it: a missing component is a failure that
// says what to install, never a skip.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install it with `apt-get install %s` (or `make deps`)", name, pkg)
	}
	return path
}
