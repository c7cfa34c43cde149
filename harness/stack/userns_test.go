package stack_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/internal/testutil"
)

// TestStackAsOrdinaryUser reruns the round-trip test as user nobody, where
// the stack must add a user namespace. It needs root to switch users, and a
// kernel that allows unprivileged user namespaces.
func TestStackAsOrdinaryUser(t *testing.T) {
	if os.Getenv("CARDHARNESS_AS_NOBODY") == "1" {
		t.Skip("already running as the ordinary user")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to user nobody; as an ordinary user the other tests already cover this path")
	}
	setpriv := testutil.NeedTool(t, "setpriv", "util-linux")
	drop := []string{"--reuid=nobody", "--regid=nogroup", "--clear-groups"}
	if out, err := exec.Command(setpriv, append(drop, "unshare", "--user", "--map-root-user", "--mount", "--net", "true")...).CombinedOutput(); err != nil {
		t.Skipf("this kernel does not allow unprivileged user namespaces (%v: %s); the ordinary-user path cannot run here", err, strings.TrimSpace(string(out)))
	}
	// The test binary may sit in a directory nobody cannot read.
	dir, err := os.MkdirTemp("", "chuser")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "stack.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append(drop, "env", "CARDHARNESS_AS_NOBODY=1", "TMPDIR=/tmp", "HOME=/tmp", "PATH=/usr/bin:/bin",
		bin, "-test.run=^(TestThousandAPDUsRoundTrip|TestInsertionAndRemovalEvents)$", "-test.v")
	out, err := exec.Command(setpriv, args...).CombinedOutput()
	if err != nil || strings.Count(string(out), "--- PASS") != 2 {
		t.Fatalf("as user nobody: %v\n%s", err, out)
	}
}
