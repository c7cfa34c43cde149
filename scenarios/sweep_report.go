package scenarios

// A sweep's reports: the matrix as text, JSON and an HTML grid.

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// cellText is a cell as the text matrix shows it: ok, FAIL (every run
// failed), or the failure rate over the seeds.
func cellText(c Cell) string {
	switch cellKindOf(c) {
	case cellNone:
		return "-"
	case cellOK:
		return "ok"
	case cellFail:
		return "FAIL"
	}
	return fmt.Sprintf("%.0f%%", 100*c.Rate())
}

// cellKind is what a cell's runs came to; the text matrix and the HTML
// grid name the kinds their own way.
type cellKind int

const (
	cellNone cellKind = iota // no runs
	cellOK                   // every run passed
	cellFail                 // every run failed
	cellSome                 // some runs failed
)

func cellKindOf(c Cell) cellKind {
	switch {
	case c.Runs == 0:
		return cellNone
	case c.Failures == 0:
		return cellOK
	case c.Failures == c.Runs:
		return cellFail
	}
	return cellSome
}

// WriteSweepText writes the variants, the matrix (one row per scenario,
// one column per variant), the failure rates over seeds and the flags.
func WriteSweepText(w io.Writer, r *SweepReport) {
	seeds := "each scenario's own seed"
	if r.Seeds > 0 {
		seeds = fmt.Sprintf("%d seeds", r.Seeds)
	}
	fmt.Fprintf(w, "sweep: %d scenarios x %d variants, %s: %d runs (stack %s", len(r.Rows), len(r.Variants), seeds, r.Runs, r.Stack)
	if r.Shard != "" {
		fmt.Fprintf(w, ", shard %s", r.Shard)
	}
	fmt.Fprintf(w, ") in %.2fs\n\nvariants:\n", r.Duration.Seconds())
	for i, v := range r.Variants {
		fmt.Fprintf(w, "  v%-3d %s\n", i+1, v)
	}
	const nameW = 60
	fmt.Fprintf(w, "\n%-*s", nameW, "scenario")
	for i := range r.Variants {
		fmt.Fprintf(w, " %5s", fmt.Sprintf("v%d", i+1))
	}
	fmt.Fprintln(w)
	for _, row := range r.Rows {
		name := row.Name
		if len(name) > nameW-1 {
			name = name[:nameW-4] + "..."
		}
		fmt.Fprintf(w, "%-*s", nameW, name)
		for _, c := range row.Cells {
			fmt.Fprintf(w, " %5s", cellText(c))
		}
		fmt.Fprintln(w)
	}
	if r.Seeds > 1 {
		fmt.Fprintf(w, "\nfailure rate over %d seeds, per scenario (all variants):\n", r.Seeds)
		for _, row := range r.Rows {
			if row.Runs == 0 {
				continue
			}
			fmt.Fprintf(w, "  %6.2f %%  %d/%d  %s\n", 100*float64(row.Failures)/float64(row.Runs), row.Failures, row.Runs, row.Name)
		}
	}
	var flagged []SweepRow
	for _, row := range r.Rows {
		if row.Flag != "" {
			flagged = append(flagged, row)
		}
	}
	if len(flagged) > 0 {
		fmt.Fprintf(w, "\nflagged (%d):\n", len(flagged))
		for _, row := range flagged {
			fmt.Fprintf(w, "  %s\n    %s\n", row.Name, row.Flag)
			for _, c := range row.Cells {
				if c.FirstFailure != "" {
					fmt.Fprintf(w, "    v%d, seed %d: %s\n", c.Variant+1, c.FailingSeeds[0], firstLine(c.FirstFailure))
					break
				}
			}
		}
	}
	fmt.Fprintf(w, "\n%d runs, %d failed\n", r.Runs, r.Failures)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// WriteSweepJSON writes the report as one JSON document.
func WriteSweepJSON(w io.Writer, r *SweepReport) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

var sweepHTML = template.Must(template.New("sweep").Funcs(template.FuncMap{
	"cell":  cellText,
	"class": cellClass,
	"inc":   func(i int) int { return i + 1 },
	"first": firstLine,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cardharness sweep</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222 }
table { border-collapse: collapse }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: center }
td.name { text-align: left; max-width: 40em }
th.v { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; white-space: nowrap }
td.ok { background: #d7f5d7 } td.fail { background: #f7c6c6 } td.some { background: #fbe7b5 } td.none { color: #999 }
.flag { color: #a33; font-size: 90% }
</style></head><body>
<h1>cardharness sweep</h1>
<p>{{len .Rows}} scenarios &times; {{len .Variants}} variants{{if .Seeds}}, {{.Seeds}} seeds{{end}}: {{.Runs}} runs, {{.Failures}} failed (stack {{.Stack}}{{if .Shard}}, shard {{.Shard}}{{end}}).</p>
<table>
<tr><th>scenario</th>{{range $i, $v := .Variants}}<th class="v" title="{{$v}}">v{{inc $i}} {{$v}}</th>{{end}}</tr>
{{range .Rows}}<tr><td class="name">{{.Name}}{{if .Flag}}<div class="flag">{{.Flag}}</div>{{end}}</td>
{{range .Cells}}<td class="{{class .}}" title="{{.Failures}}/{{.Runs}} failed{{if .FirstFailure}}: {{first .FirstFailure}}{{end}}">{{cell .}}</td>{{end}}</tr>
{{end}}</table>
<h2>Variants</h2>
<ol>{{range .Variants}}<li>{{.}}</li>{{end}}</ol>
</body></html>
`))

// cellClass is the cell's CSS class in the HTML grid.
func cellClass(c Cell) string {
	return [...]string{cellNone: "none", cellOK: "ok", cellFail: "fail", cellSome: "some"}[cellKindOf(c)]
}

// WriteSweepHTML writes the matrix as a self-contained HTML grid.
func WriteSweepHTML(w io.Writer, r *SweepReport) error { return sweepHTML.Execute(w, r) }
