package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --host-profile sets the profile of hosts that name none
// (docs/windows-fidelity.md H-PROFILES): the scenario below expects the
// provider windows-10-legacy records and fails under the default profile;
// an unknown profile is a usage error naming the profiles.
func TestRunHostProfile(t *testing.T) {
	dir := t.TempDir()
	sc := filepath.Join(dir, "legacy.yaml")
	if err := os.WriteFile(sc, []byte(`name: provider by profile
seed: 7
cards:
  card: {}
hosts:
  desktop:
steps:
  - {do: writer-generate-key, card: card, bits: 1024, save: key}
  - {do: writer-make-csr, card: card, guid: $key.guid, subject: CN=alice, save: req}
  - {do: ca-issue, csr: $req.csr, save: issued}
  - {do: writer-write-certificate, card: card, guid: $key.guid, cert: $issued.cert}
  - {do: logon, host: desktop}
  - {do: insert, host: desktop, card: card}
  - {do: advance, by: 65s}
  - do: check-store
    host: desktop
    cert: $issued.cert
    expect: {result: {provider: Microsoft Base Smart Card Crypto Provider}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := cli(append([]string{"run", "--stack", "direct", "--trace-dir", dir}, args...), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, out := run("--host-profile", "windows-10-legacy", sc); code != 0 {
		t.Errorf("windows-10-legacy: exit %d\n%s", code, out)
	}
	if code, out := run(sc); code != 1 || !strings.Contains(out, "Microsoft Smart Card Key Storage Provider") {
		t.Errorf("default profile: exit %d, want 1 with the KSP in the diff\n%s", code, out)
	}
	if code, out := run("--host-profile", "windows-95", sc); code != 2 || !strings.Contains(out, "windows-11-2025") {
		t.Errorf("unknown profile: exit %d, want 2 naming the profiles\n%s", code, out)
	}
}
