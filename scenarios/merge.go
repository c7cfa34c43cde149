package scenarios

// Merging the reports of the shards of one run (`cardharness report
// merge`): the testcases of every input in one report, as if one job had
// run them all. A testcase found in two inputs is an error: the shards
// overlapped (different command lines, or the same shard run twice).

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/cardharness/cardharness/internal/junit"
)

// ReportInput is one report to merge: its name (for errors) and content.
type ReportInput struct {
	Name string
	R    io.Reader
}

// MergeJUnit reads JUnit reports (as WriteJUnit writes them) and writes
// one: suites of the same name are joined, their counts and times summed,
// testcases sorted by name.
func MergeJUnit(w io.Writer, inputs []ReportInput) error {
	var order []string
	suites := map[string]*junitSuite{}
	seen := map[string]string{}
	for _, in := range inputs {
		var doc junitSuites
		if err := xml.NewDecoder(in.R).Decode(&doc); err != nil {
			return fmt.Errorf("%s: not a JUnit report: %w", in.Name, err)
		}
		for _, s := range doc.Suites {
			m, ok := suites[s.Name]
			if !ok {
				m = &junitSuite{Name: s.Name, Properties: s.Properties}
				suites[s.Name] = m
				order = append(order, s.Name)
			}
			for _, c := range s.Cases {
				id := s.Name + "\x00" + c.Classname + "\x00" + c.Name
				if prev, dup := seen[id]; dup {
					return fmt.Errorf("%s: testcase %q (%s) is also in %s: the shards overlap", in.Name, c.Name, c.Classname, prev)
				}
				seen[id] = in.Name
				m.Cases = append(m.Cases, c)
			}
		}
	}
	out := junitSuites{}
	for _, name := range order {
		s := suites[name]
		sort.SliceStable(s.Cases, func(i, j int) bool {
			if s.Cases[i].Name != s.Cases[j].Name {
				return s.Cases[i].Name < s.Cases[j].Name
			}
			return s.Cases[i].Classname < s.Cases[j].Classname
		})
		var total float64
		for _, c := range s.Cases {
			s.Tests++
			switch {
			case c.Failure != nil:
				s.Failures++
			case c.Error != nil:
				s.Errors++
			case c.Skipped != nil:
				s.Skipped++
			}
			t, _ := strconv.ParseFloat(c.Time, 64)
			total += t
		}
		s.Time = fmt.Sprintf("%.3f", total)
		out.Suites = append(out.Suites, *s)
	}
	return junit.Write(w, out)
}

// MergeJSON reads JSON reports (as WriteJSON writes them) and writes one
// with all their results, in name order, and the summary recomputed.
func MergeJSON(w io.Writer, inputs []ReportInput) error {
	var all []Result
	seen := map[string]string{}
	for _, in := range inputs {
		var doc struct {
			Results []Result `json:"results"`
		}
		dec := json.NewDecoder(in.R)
		if err := dec.Decode(&doc); err != nil {
			return fmt.Errorf("%s: not a cardharness JSON report: %w", in.Name, err)
		}
		for _, r := range doc.Results {
			id := r.Stack + "\x00" + r.Name
			if prev, dup := seen[id]; dup {
				return fmt.Errorf("%s: scenario %q (%s) is also in %s: the shards overlap", in.Name, r.Name, r.Stack, prev)
			}
			seen[id] = in.Name
			all = append(all, r)
		}
	}
	sortResults(all)
	return WriteJSON(w, all)
}
