package scenarios

import (
	"fmt"
	"go/ast"
	goparser "go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/winerr"
)

// codeName matches the Windows naming of error constants (SCARD_W_WRONG_CHV).
var codeName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// returnedCodes lists every winerr constant the module's non-test code
// names (winerr.X), i.e. every code some package can return, plus
// winerr's own list.
func returnedCodes(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, n := range winerr.Names() {
		seen[n] = true
	}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != ".." && (strings.HasPrefix(d.Name(), ".") || path == filepath.Join("..", "build")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := goparser.ParseFile(token.NewFileSet(), path, nil, goparser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "winerr" && codeName.MatchString(sel.Sel.Name) {
					seen[sel.Sel.Name] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestEveryCodeNameableInScenario: a code any package can return can be
// named in `expect: {error: ...}`, and an error of that code, as each
// package returns it, matches the expectation.
func TestEveryCodeNameableInScenario(t *testing.T) {
	names := returnedCodes(t)
	if len(names) < 40 {
		t.Fatalf("only %d codes found; the source walk is broken", len(names))
	}
	for _, name := range names {
		src := fmt.Sprintf("name: codes\nhosts:\n  desktop:\nsteps:\n  - {do: logon, host: desktop, expect: {error: %s}}\n", name)
		if _, err := Parse(fstest.MapFS{}, "codes.yaml", []byte(src)); err != nil {
			t.Errorf("expect: {error: %s} is refused: %v", name, err)
			continue
		}
		code, ok := winerr.ByName(name)
		if !ok {
			t.Errorf("winerr.%s is used but winerr.ByName does not know it (add it to winerr's table)", name)
			continue
		}
		for _, err := range []error{
			code,
			fmt.Errorf("wrapped: %w", code),
			&ca.RequestError{Code: code, Detail: "x"},
			&winhost.Error{Op: "op", Code: code, Err: &minidriver.CardError{Op: "inner", SW: apdu.SWFileNotFound, Code: winerr.SCARD_E_FILE_NOT_FOUND}},
			&minidriver.CardError{Op: "op", SW: apdu.SWWrongData, Code: code},
		} {
			if got, ok := codeOf(err); !ok || got != errorCode(name) {
				t.Errorf("%T for %s: codeOf = %#x, %v", err, name, got, ok)
			}
		}
	}
}

// TestScenarioErrorNames: hex values parse, unknown names are refused with
// the place named.
func TestScenarioErrorNames(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"CERTSRV_E_UNSUPPORTED_CERT_TYPE", true},
		{"0x80094800", true},
		{"0X8009200b", true},
		{"none", true},
		{"CERTSRV_E_NO_SUCH_THING", false},
		{"0x", false},
		{"0x1FFFFFFFF", false},
	} {
		src := fmt.Sprintf("name: codes\nhosts:\n  desktop:\nsteps:\n  - {do: logon, host: desktop, expect: {error: %s}}\n", tt.name)
		_, err := Parse(fstest.MapFS{}, "codes.yaml", []byte(src))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "codes.yaml:5") {
			t.Errorf("%s: error does not name the line: %v", tt.name, err)
		}
	}
}
