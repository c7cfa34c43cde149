package scenarios

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the generated parts of README.md and docs/scenarios.md")

// generated is a part of a document between its markers, kept equal to
// what the declarations generate.
type generated struct {
	file, name string
	text       func() string
}

var generatedDocs = []generated{
	{"../README.md", "action table", ActionTableMarkdown},
	{"../docs/scenarios.md", "action reference", ReferenceMarkdown},
	{"../docs/scenarios.md", "knob table", func() string {
		var b bytes.Buffer
		WriteKnobsMarkdown(&b)
		return b.String()
	}},
}

// TestGeneratedDocsMatchTheDeclarations: the README's action table and
// docs/scenarios.md's reference are what the action and knob declarations
// generate (go test ./scenarios -run TestGeneratedDocs -update-docs
// rewrites them).
func TestGeneratedDocsMatchTheDeclarations(t *testing.T) {
	for _, g := range generatedDocs {
		b, err := os.ReadFile(g.file)
		if err != nil {
			t.Fatal(err)
		}
		begin := "<!-- generated: " + g.name + " (go test ./scenarios -update-docs) -->\n"
		end := "<!-- end: " + g.name + " -->"
		head, rest, ok1 := strings.Cut(string(b), begin)
		body, tail, ok2 := strings.Cut(rest, end)
		if !ok1 || !ok2 {
			t.Errorf("%s has no %q ... %q markers", g.file, strings.TrimSpace(begin), end)
			continue
		}
		want := g.text()
		if body == want {
			continue
		}
		if *updateDocs {
			if err := os.WriteFile(g.file, []byte(head+begin+want+end+tail), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s: the %s differs from the declarations (-file +generated; rerun with -update-docs):\n%s", g.file, g.name,
			cmp.Diff(strings.Split(body, "\n"), strings.Split(want, "\n")))
	}
}

// TestEveryActionIsDocumented: each declaration carries what the
// reference shows.
func TestEveryActionIsDocumented(t *testing.T) {
	for _, a := range Actions() {
		if a.Example == "" || !strings.Contains(a.Example, "do: "+a.Name) {
			t.Errorf("%s: example %q does not use the action", a.Name, a.Example)
		}
		for _, arg := range a.Args {
			if arg.Doc == "" {
				t.Errorf("%s: argument %s has no doc", a.Name, arg.Name)
			}
			if arg.Type == Enum && len(arg.Values) == 0 {
				t.Errorf("%s: enum argument %s has no values", a.Name, arg.Name)
			}
			if arg.Default != "" && arg.Type != Command && !arg.Type.isObject() {
				if err := arg.check(arg.Default); err != nil {
					t.Errorf("%s: argument %s: default %q fails its own check: %v", a.Name, arg.Name, arg.Default, err)
				}
			}
		}
		// The example is a valid step: its arguments, values and expected
		// fields pass the parser (variables are checked per scenario).
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(a.Example), &doc); err != nil {
			t.Errorf("%s: example does not parse: %v", a.Name, err)
		} else {
			p := newParser(fstest.MapFS{}, "example", nil)
			p.step(doc.Content[0])
			if len(p.errs) > 0 {
				t.Errorf("%s: example %s: %v", a.Name, a.Example, p.errs)
			}
		}
		for _, f := range a.Result {
			if f.Doc == "" || f.Type == "" {
				t.Errorf("%s: result field %s lacks a type or doc", a.Name, f.Name)
			}
		}
		for _, e := range a.Errors {
			if !validErrorName(e) {
				t.Errorf("%s: error %s is not a known name", a.Name, e)
			}
		}
	}
}

func TestKnobsHaveDocsFromKnobsGo(t *testing.T) {
	for _, k := range Knobs() {
		if k.Doc == "" {
			t.Errorf("knob %s: no doc comment found in harness/winhost/knobs.go", k.Name)
		}
	}
	if _, ok := LookupKnob("session_pins"); !ok {
		t.Error("session_pins is not a knob name")
	}
}
