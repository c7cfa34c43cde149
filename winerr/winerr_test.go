package winerr

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

func TestCodes(t *testing.T) {
	tests := []struct {
		code Code
		want string
	}{
		{CRYPT_E_NO_KEY_PROPERTY, "CRYPT_E_NO_KEY_PROPERTY (0x8009200B)"},
		{NTE_BAD_SIGNATURE, "NTE_BAD_SIGNATURE (0x80090006)"},
		{SCARD_W_CACHE_ITEM_STALE, "SCARD_W_CACHE_ITEM_STALE (0x80100071)"},
		{NTE_TOKEN_KEYSET_STORAGE_FULL, "NTE_TOKEN_KEYSET_STORAGE_FULL (0x80090023)"},
		{Code(0x80001234), "0x80001234 (0x80001234)"},
	}
	for _, tt := range tests {
		if got := tt.code.Error(); got != tt.want {
			t.Errorf("%#x: %q, want %q", uint32(tt.code), got, tt.want)
		}
	}
	wrapped := fmt.Errorf("acquire key: %w", CRYPT_E_NO_KEY_PROPERTY)
	if !errors.Is(wrapped, CRYPT_E_NO_KEY_PROPERTY) {
		t.Error("errors.Is does not see a wrapped code")
	}
	var c Code
	if !errors.As(wrapped, &c) || c != 0x8009200B {
		t.Errorf("errors.As gave %v", c)
	}
	for _, n := range Names() {
		c, ok := ByName(n)
		if !ok || c.Name() != n {
			t.Errorf("ByName(%q) = %v, %v", n, c, ok)
		}
	}
}

// TestEveryConstantNamed: every Code constant declared in this package is
// in the table that Name, ByName and Names use, so a scenario can name it.
func TestEveryConstantNamed(t *testing.T) {
	// Every file of the package: codes may live next to winerr.go (certsrv.go).
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var decls []ast.Decl
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		decls = append(decls, f.Decls...)
	}
	n := 0
	for _, d := range decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			for _, id := range s.(*ast.ValueSpec).Names {
				n++
				c, ok := ByName(id.Name)
				if !ok {
					t.Errorf("constant %s is missing from the table in winerr.go", id.Name)
					continue
				}
				if c.Text() == "" || !c.Known() {
					t.Errorf("%s has no message text", id.Name)
				}
			}
		}
	}
	if n != len(Names()) {
		t.Errorf("%d constants, %d names in the table", n, len(Names()))
	}
}

func TestParseAndFromError(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Code
		ok   bool
	}{
		{"NTE_BAD_KEYSET", NTE_BAD_KEYSET, true},
		{"0x80090016", NTE_BAD_KEYSET, true},
		{"0X80090016", NTE_BAD_KEYSET, true},
		{"nte_bad_keyset", 0, false},
		{"0x", 0, false},
		{"0xZZ", 0, false},
		{"80090016", 0, false},
	} {
		got, ok := Parse(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Parse(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := FromError(errors.New("plain")); ok {
		t.Error("FromError found a code in a plain error")
	}
	if c, ok := FromError(fmt.Errorf("x: %w", NTE_EXISTS)); !ok || c != NTE_EXISTS {
		t.Errorf("FromError = %v, %v", c, ok)
	}
}
