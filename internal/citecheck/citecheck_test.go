package citecheck

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const root = "../.."

// docNames are the reference files; a citation names one of them.
var docNames = []string{"gids-protocol", "minidriver-semantics", "vpcd-and-peers"}

var (
	// docRe matches a named reference document, with whatever path is
	// written before it (group 1) and whether ".md" follows (group 3).
	docRe = regexp.MustCompile(`((?:[\w./-]*/)?)\b(gids-protocol|minidriver-semantics|vpcd-and-peers)(\.md)?\b`)
	// secRe matches a section citation: §2.1, § 2.1, §3.1–3.3, §7 q3.
	secRe = regexp.MustCompile(`§ ?(\d+(?:\.\d+)*)(?:\s?[–-]\s?(\d+(?:\.\d+)*))?(?:\s+q(\d+))?`)
	// tokenRe finds both, in order.
	tokenRe = regexp.MustCompile(docRe.String() + `|` + secRe.String())
	// external: a § right after a standard's name cites that standard.
	externalRe = regexp.MustCompile(`(?:ISO(?:/IEC)?\s?\d+(?:-\d+)?|RFC\s?\d+|X\.\d+|FIPS\s?[\d-]+|SP\s?800-\w+|PKCS\s?#\d+|MS-[A-Z]+|7816-\d)[,:]?\s*\(?$`)
	// defaultRe is the doc.go sentence that names a package's default
	// reference for bare § citations.
	defaultRe  = regexp.MustCompile(`Bare § citations in this package refer to\s+(?://\s*)?docs/reference/([\w-]+)\.md`)
	headingRe  = regexp.MustCompile(`^#{2,4} (\d+(?:\.\d+)*)\.? `)
	questionRe = regexp.MustCompile(`^(\d+)\. `)
	// listGap is what may stand between citations of one list.
	listGap = regexp.MustCompile(`^(?:[\s,;/()]|and|or|step \d+|check \d+|q\d+|T\d+|–)*$`)
)

// reference is one file of docs/reference: its section numbers and, per
// section, the numbered items (open questions "§7 q3").
type reference struct {
	sections map[string]bool
	items    map[string]map[string]bool
}

func loadReference(t *testing.T, name string) *reference {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "docs", "reference", name+".md"))
	if err != nil {
		t.Fatalf("docs/reference/%s.md: %v", name, err)
	}
	defer f.Close()
	r := &reference{sections: map[string]bool{}, items: map[string]map[string]bool{}}
	cur := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := headingRe.FindStringSubmatch(line); m != nil {
			cur = m[1]
			r.sections[cur] = true
			continue
		}
		if m := questionRe.FindStringSubmatch(line); m != nil && cur != "" {
			if r.items[cur] == nil {
				r.items[cur] = map[string]bool{}
			}
			r.items[cur][m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(r.sections) < 5 {
		t.Fatalf("docs/reference/%s.md: only %d numbered sections found; the heading pattern is broken", name, len(r.sections))
	}
	return r
}

func (r *reference) list() string {
	var s []string
	for k := range r.sections {
		s = append(s, k)
	}
	sort.Slice(s, func(i, j int) bool { return lessSection(s[i], s[j]) })
	return strings.Join(s, " ")
}

func lessSection(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if len(as[i]) != len(bs[i]) {
			return len(as[i]) < len(bs[i])
		}
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

// packageDefaults reads each package's doc comment (any non-test file)
// for the default reference.
func packageDefaults(t *testing.T, files []string) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := defaultRe.FindSubmatch(b); m != nil {
			out[filepath.Dir(f)] = string(m[1])
		}
	}
	return out
}

func goFiles(t *testing.T) []string {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor" || (d.Name() == "build" && filepath.Dir(path) == root)) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestCitationsResolve checks every citation of docs/reference in the
// module's Go files.
func TestCitationsResolve(t *testing.T) {
	refs := map[string]*reference{}
	for _, n := range docNames {
		refs[n] = loadReference(t, n)
	}
	files := goFiles(t)
	defaults := packageDefaults(t, files)
	self, _ := filepath.Abs(".")
	cited := 0
	for _, path := range files {
		if abs, _ := filepath.Abs(filepath.Dir(path)); abs == self {
			continue // this package's own patterns and messages
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		src := string(b)
		def := defaults[filepath.Dir(path)]
		named, namedAt := "", "" // the last document named in the file
		prevEnd := 0
		for _, m := range tokenRe.FindAllStringSubmatchIndex(src, -1) {
			line := 1 + strings.Count(src[:m[0]], "\n")
			at := fmt.Sprintf("%s:%d", rel, line)
			gap := src[prevEnd:m[0]]
			prevEnd = m[1]
			if m[4] >= 0 { // a named document
				prefix, name, md := src[m[2]:m[3]], src[m[4]:m[5]], m[6] >= 0
				if prefix != "docs/reference/" || !md {
					t.Errorf("%s: cite %q as docs/reference/%s.md (a path a reader of the repository can open)", at, src[m[0]:m[1]], name)
				}
				named, namedAt = name, at
				continue
			}
			if externalRe.MatchString(src[max(0, m[0]-24):m[0]]) {
				named = "" // "MS-WCCE §x, §y" lists stay external
				continue
			}
			// A named document covers the § right after it and the list
			// that follows ("docs/reference/x.md §2.1, §2.3 and §3");
			// other bare § refer to the package default, or, in a package
			// without one, to the last document named in the file.
			cur, curFrom := def, "the package default (doc comment)"
			if named != "" && (listGap.MatchString(gap) || def == "") {
				cur, curFrom = named, "named at "+namedAt
			}
			if def != "" && !listGap.MatchString(gap) {
				named = ""
			}
			cited++
			sec, end, q := src[m[8]:m[9]], "", ""
			if m[10] >= 0 {
				end = src[m[10]:m[11]]
			}
			if m[12] >= 0 {
				q = src[m[12]:m[13]]
			}
			if cur == "" {
				t.Errorf("%s: §%s names no reference file: write docs/reference/<file>.md §%s, or declare the package default in %s/doc.go: \"Bare § citations in this package refer to docs/reference/<file>.md.\"", at, sec, sec, filepath.Dir(rel))
				continue
			}
			r := refs[cur]
			for _, s := range []string{sec, end} {
				if s != "" && !r.sections[s] {
					t.Errorf("%s: §%s is not a section of docs/reference/%s.md (document from %s). Add the section there, keeping the numbering, or cite one of: %s", at, s, cur, curFrom, r.list())
				}
			}
			if q != "" && !r.items[sec][q] {
				t.Errorf("%s: §%s q%s: docs/reference/%s.md §%s has no item %s.", at, sec, q, cur, sec, q)
			}
		}
	}
	if cited < 100 {
		t.Errorf("only %d citations found in %d files; the scan is broken", cited, len(files))
	}
}
