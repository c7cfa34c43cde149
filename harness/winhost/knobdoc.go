package winhost

import (
	_ "embed"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"sync"
)

// knobsSource is this package's knobs.go: the doc comment on each Knobs
// field is the one place a knob's meaning, default and source are written,
// so the reference (cardharness knobs) reads it from there rather than
// from a copy that could drift.
//
//go:embed knobs.go
var knobsSource string

var (
	knobDocsOnce sync.Once
	knobDocs     map[string]string
)

// KnobDoc returns the doc comment of the Knobs field named field (Go
// name), as written in knobs.go; "" if there is none.
func KnobDoc(field string) string {
	knobDocsOnce.Do(func() {
		knobDocs = map[string]string{}
		f, err := parser.ParseFile(token.NewFileSet(), "knobs.go", knobsSource, parser.ParseComments)
		if err != nil {
			return
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || ts.Name.Name != "Knobs" {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			for _, fl := range st.Fields.List {
				for _, name := range fl.Names {
					knobDocs[name.Name] = strings.TrimSpace(fl.Doc.Text())
				}
			}
			return false
		})
	})
	return knobDocs[field]
}
