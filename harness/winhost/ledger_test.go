package winhost

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const ledgerPath = "../../docs/windows-fidelity.md"

// TestLedgerCoversEveryKnob ties knobs.go to docs/windows-fidelity.md:
// every Knobs field's comment names at least one ledger row ("Ledger:
// H-…"), every named row exists and lists the knob in its knob column,
// every row names a source, and the tests and scenario files a row names
// exist.
func TestLedgerCoversEveryKnob(t *testing.T) {
	rows := ledgerRows(t)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "knobs.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	idRe := regexp.MustCompile(`H-[A-Z0-9-]*[A-Z0-9]`)
	knobs := 0
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Knobs" {
			return true
		}
		for _, fld := range ts.Type.(*ast.StructType).Fields.List {
			for _, name := range fld.Names {
				knobs++
				doc := ""
				if fld.Doc != nil {
					doc = fld.Doc.Text()
				}
				_, after, ok := strings.Cut(doc, "Ledger:")
				ids := idRe.FindAllString(after, -1)
				if !ok || len(ids) == 0 {
					t.Errorf("knob %s: its comment names no ledger row (\"Ledger: H-…\")", name.Name)
					continue
				}
				for _, id := range ids {
					row, ok := rows[id]
					if !ok {
						t.Errorf("knob %s names ledger row %s, which docs/windows-fidelity.md does not have", name.Name, id)
						continue
					}
					if !strings.Contains(row[4], "`"+name.Name+"`") {
						t.Errorf("ledger row %s does not list knob %s in its knob column (%q)", id, name.Name, row[4])
					}
				}
			}
		}
		return false
	})
	if knobs < 20 {
		t.Fatalf("found only %d knobs in knobs.go", knobs)
	}
	tests := testNames(t)
	testRe := regexp.MustCompile("`(Test[A-Za-z0-9_]+)`")
	fileRe := regexp.MustCompile(`scenarios/builtin/[A-Za-z0-9_./-]+\.yaml`)
	for id, row := range rows {
		if strings.TrimSpace(row[2]) == "" {
			t.Errorf("ledger row %s names no source (or says none exists)", id)
		}
		for _, m := range testRe.FindAllStringSubmatch(row[5], -1) {
			if !tests[m[1]] {
				t.Errorf("ledger row %s names test %s, which no harness/winhost test file has", id, m[1])
			}
		}
		for _, p := range fileRe.FindAllString(row[5], -1) {
			if _, err := os.Stat(filepath.Join("../..", p)); err != nil {
				t.Errorf("ledger row %s names scenario %s: %v", id, p, err)
			}
		}
		if !testRe.MatchString(row[5]) && !fileRe.MatchString(row[5]) {
			t.Errorf("ledger row %s names neither a test nor a scenario", id)
		}
	}
}

// ledgerRows reads the rows table: ID → its six cells.
func ledgerRows(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "| H-") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 6 {
			t.Fatalf("ledger row with %d cells, want 6: %s", len(cells), line)
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if _, dup := rows[cells[0]]; dup {
			t.Fatalf("ledger row %s twice", cells[0])
		}
		rows[cells[0]] = cells
	}
	if len(rows) < 20 {
		t.Fatalf("only %d ledger rows", len(rows))
	}
	return rows
}

func testNames(t *testing.T) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob("*_test.go")
	out := map[string]bool{}
	re := regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			out[m[1]] = true
		}
	}
	if !slices.ContainsFunc([]string{"TestLedgerCoversEveryKnob"}, func(s string) bool { return out[s] }) {
		t.Fatal("test name scan found nothing")
	}
	return out
}
