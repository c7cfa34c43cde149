package scenarios

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const okSteps = "steps:\n  - {do: advance, by: 1s}\n"

// TestHostileScenarioFilesAreBounded: each hostile file of issue 8
// finding 5 gets one clear error, without reading what it must not read
// and without echoing what it read.
func TestHostileScenarioFilesAreBounded(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		main   string
		want   []string
		absent []string // must not appear in the error
		most   int      // at most this many error lines (0: no limit)
		// includePath widens the root (--include-path).
		includePath []string
	}{
		{
			name:  "includes itself",
			files: map[string]string{"self.yaml": "name: x\ninclude: [self.yaml]\n" + okSteps},
			main:  "self.yaml", want: []string{"self.yaml:2: include cycle: self.yaml -> self.yaml"}, most: 1,
		},
		{
			name:  "includes itself ten times",
			files: map[string]string{"self.yaml": "name: x\ninclude: [self.yaml, self.yaml, self.yaml, self.yaml, self.yaml, self.yaml, self.yaml, self.yaml, self.yaml, self.yaml]\n" + okSteps},
			main:  "self.yaml", want: []string{"include cycle"}, most: 10,
		},
		{
			name: "three-way fan-out",
			files: map[string]string{
				"main.yaml": "name: x\ninclude: [_a.yaml, _a.yaml, _a.yaml]\n" + okSteps,
				"_a.yaml":   "include: [_b.yaml, _b.yaml, _b.yaml]\n" + okSteps,
				"_b.yaml":   "include: [_c.yaml, _c.yaml, _c.yaml]\n" + okSteps,
				"_c.yaml":   "steps:\n  - {do: frobnicate}\n",
			},
			main: "main.yaml",
			want: []string{"_c.yaml:2: unknown action \"frobnicate\"", "already included"},
			most: 8, // each file read once: one frobnicate error, not 27
		},
		{
			name:  "cycle through two files",
			files: map[string]string{"a.yaml": "name: x\ninclude: [_b.yaml]\n" + okSteps, "_b.yaml": "include: [a.yaml]\n"},
			main:  "a.yaml", want: []string{"_b.yaml:1: include cycle: a.yaml -> _b.yaml -> a.yaml"}, most: 1,
		},
		{
			name:   "include outside the scenario's directory",
			files:  map[string]string{"d/x.yaml": "name: x\ninclude: [../../../../../../etc/passwd]\n" + okSteps},
			main:   "d/x.yaml",
			want:   []string{"x.yaml:2: include \"../../../../../../etc/passwd\": outside", "--include-path"},
			absent: []string{"root:", "/bin/"},
		},
		{
			name:   "absolute include outside",
			files:  map[string]string{"x.yaml": "name: x\ninclude: [/etc/passwd]\n" + okSteps},
			main:   "x.yaml",
			want:   []string{"x.yaml:2: include \"/etc/passwd\": outside"},
			absent: []string{"root:"},
		},
		{
			name:  "a device",
			files: map[string]string{"x.yaml": "name: x\ninclude: [/dev/zero]\n" + okSteps},
			main:  "x.yaml", want: []string{"x.yaml:2: include \"/dev/zero\": outside"},
		},
		{
			name:  "a device on the include path",
			files: map[string]string{"x.yaml": "name: x\ninclude: [/dev/zero]\n" + okSteps},
			main:  "x.yaml", want: []string{"x.yaml:2: include \"/dev/zero\": not a regular file (a device)"},
			includePath: []string{"/dev"},
		},
		{
			name:  "a directory",
			files: map[string]string{"x.yaml": "name: x\ninclude: [sub]\n" + okSteps, "sub/_y.yaml": okSteps},
			main:  "x.yaml", want: []string{"x.yaml:2: include \"sub\": not a regular file (a directory)"},
		},
		{
			name:  "a big file",
			files: map[string]string{"x.yaml": "name: x\ninclude: [_big.yaml]\n" + okSteps, "_big.yaml": "# " + strings.Repeat("x", MaxFileBytes) + "\n"},
			main:  "x.yaml", want: []string{"x.yaml:2: include \"_big.yaml\": 1048579 bytes: a scenario file may have at most 1048576"},
		},
		{
			name:  "a big scenario",
			files: map[string]string{"big.yaml": "name: x\n" + okSteps + strings.Repeat("# padding\n", MaxFileBytes/10+1)},
			main:  "big.yaml", want: []string{"big.yaml: 1048621 bytes: a scenario file may have at most 1048576"},
		},
		{
			name:  "too many steps",
			files: map[string]string{"x.yaml": "name: x\n" + okSteps + strings.Repeat("  - {do: advance, by: 1s}\n", MaxSteps)},
			main:  "x.yaml", want: []string{"x.yaml:1: 10001 steps: a scenario may have at most 10000"}, most: 1,
		},
		{
			name:  "a YAML alias where a value goes",
			files: map[string]string{"x.yaml": "name: &n x\nsteps:\n  - {do: advance, by: *n}\n"},
			main:  "x.yaml", want: []string{"x.yaml:3: by: want a value, got a YAML alias"},
		},
		{
			name:   "contents are not echoed",
			files:  map[string]string{"x.yaml": "name: x\n" + okSteps + "secret-" + strings.Repeat("s", 200) + ": 1\n"},
			main:   "x.yaml",
			want:   []string{"x.yaml:4: unknown key \"secret-sss"},
			absent: []string{strings.Repeat("s", 60)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			main := filepath.Join(dir, tt.main)
			err := Check([]Ref{{Path: main, Root: filepath.Dir(main), IncludePath: tt.includePath}})
			if err == nil {
				t.Fatal("accepted")
			}
			got := strings.ReplaceAll(err.Error(), dir+"/", "")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("error lacks %q:\n%s", w, got)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(got, a) {
					t.Errorf("error contains %q:\n%s", a, got)
				}
			}
			if n := strings.Count(got, "\n") + 1; tt.most > 0 && n > tt.most {
				t.Errorf("%d error lines, want at most %d:\n%s", n, tt.most, got)
			}
		})
	}
}

// TestIncludesResolveAsWritten: relative to the including file, absolute
// as given (under the root), and --include-path widens the root.
func TestIncludesResolveAsWritten(t *testing.T) {
	dir := t.TempDir()
	shared := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"suite/a/x.yaml":      "name: x\ninclude: [../_common.yaml, " + filepath.Join(dir, "suite", "_abs.yaml") + "]\n" + okSteps,
		"suite/_common.yaml":  "vars: {common: yes}\n",
		"suite/_abs.yaml":     "vars: {abs: yes}\n",
		"suite/b/shared.yaml": "name: y\ninclude: [" + filepath.Join(shared, "_lib.yaml") + "]\n" + okSteps,
	})
	writeFiles(t, shared, map[string]string{"_lib.yaml": "vars: {lib: yes}\n"})
	refs, err := FileRefs([]string{filepath.Join(dir, "suite")})
	if err != nil {
		t.Fatal(err)
	}
	var x Ref
	for _, r := range refs {
		if strings.HasSuffix(r.Path, "x.yaml") {
			x = r
		}
	}
	sc, err := x.load()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Vars["common"] != "yes" || sc.Vars["abs"] != "yes" {
		t.Errorf("vars %v: includes not merged", sc.Vars)
	}
	if err := Check(refs); err == nil || !strings.Contains(err.Error(), "_lib.yaml\": outside") {
		t.Errorf("an include outside the suite was not refused: %v", err)
	}
	refs, _ = FileRefs([]string{filepath.Join(dir, "suite")}, shared)
	if err := Check(refs); err != nil {
		t.Errorf("with the include path: %v", err)
	}
}

// TestSymlinkOutOfTheRootIsRefused: a link inside the directory pointing
// outside does not make the target inside.
func TestSymlinkOutOfTheRootIsRefused(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"x.yaml": "name: x\ninclude: [_link.yaml]\n" + okSteps})
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "_link.yaml")); err != nil {
		t.Fatal(err)
	}
	err := Check([]Ref{{Path: filepath.Join(dir, "x.yaml"), Root: dir}})
	if err == nil || !strings.Contains(err.Error(), "outside") || strings.Contains(err.Error(), "root:") {
		t.Errorf("error %v", err)
	}
}

// TestRepeatCountFromAVariableIsBounded: a repeat whose times: comes from
// vars: is held to the same bound when it runs.
func TestRepeatCountFromAVariableIsBounded(t *testing.T) {
	src := "name: x\nvars: {n: \"1000000000\"}\nsteps:\n  - {do: repeat, times: $n, steps: [{do: advance, by: 1s}]}\n"
	sc, err := Parse(nil, "v.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	r := RunOne(context.Background(), sc, Options{Stack: "direct"})
	if r.Status != Fail || !strings.Contains(r.Failure, "v.yaml:4: times: 1000000000 is above the maximum 10000") {
		t.Errorf("%s: %s", r.Status, r.Failure)
	}
}

// TestCancelledBeforeTheFirstStep: a run stopped during setup says so.
func TestCancelledBeforeTheFirstStep(t *testing.T) {
	sc, err := Parse(nil, "c.yaml", []byte("name: x\ncards: {card: {}}\n"+okSteps))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := RunOne(ctx, sc, Options{Stack: "direct"})
	if r.Status != Error || !strings.HasPrefix(r.Failure, "interrupted before the first step") || len(r.Steps) != 0 {
		t.Errorf("%s: %q, %d steps", r.Status, r.Failure, len(r.Steps))
	}
}
