package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestHex(t *testing.T) {
	got := Hex(t, "00 a4\n04 00  0C")
	if !bytes.Equal(got, []byte{0x00, 0xA4, 0x04, 0x00, 0x0C}) {
		t.Errorf("Hex = % X", got)
	}
	if _, err := ParseHex("0G"); err == nil || !strings.Contains(err.Error(), `"0G"`) {
		t.Errorf("bad hex: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustHex did not panic on bad hex")
		}
	}()
	MustHex("ABC")
}

func TestCat(t *testing.T) {
	if got := Cat([]byte{1}, nil, []byte{2, 3}); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Errorf("Cat = %v", got)
	}
}

// TestPcscdProcesses finds a process named pcscd by its argument, and
// only that one.
func TestPcscdProcesses(t *testing.T) {
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal("sleep not found (install coreutils)")
	}
	fake := dir + "/pcscd"
	if err := os.Symlink(sleep, fake); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fake, "30") // dir is in argv[0]
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	got := PcscdProcesses(dir)
	if len(got) != 1 || !strings.HasSuffix(got[0], " "+fake+" 30") {
		t.Errorf("PcscdProcesses = %q", got)
	}
	if other := PcscdProcesses(t.TempDir() + "-none"); len(other) != 0 {
		t.Errorf("found %q for a directory no process names", other)
	}
}

// TestSeq: the filler must not repeat at the 256-byte chunk size of
// GET RESPONSE, or a misplaced chunk would compare equal.
func TestSeq(t *testing.T) {
	s := Seq(600)
	if len(s) != 600 || s[0] != 0x01 {
		t.Fatalf("Seq(600) = %d bytes starting % X", len(s), s[:1])
	}
	if bytes.Equal(s[:256], s[256:512]) || bytes.Equal(s[:88], s[512:]) {
		t.Error("Seq repeats with period 256")
	}
}
