package scenarios

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/cardharness/cardharness/vcard/trace"
)

// The HTML report: one self-contained file (no scripts, fonts or styles
// from anywhere else) that a person opens after a failed run. Failures
// come first, open; every scenario is a <details> element; a failed
// scenario shows its plain diff, the injected faults, its timeline drawn
// as one SVG lane per card and per host (counters, cache decisions, PIN
// prompts, the step where host and card diverge), the timeline as a table,
// and its APDU traces decoded with an anchor per step. The layout wraps
// instead of scrolling sideways: a test checks, in headless Chromium, that
// the page is no wider than 1280 px (html_test.go).

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"secs":  func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"upper": strings.ToUpper,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cardharness scenarios: {{.Passed}} passed, {{.Failed}} failed</title>
<style>
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:1.2em 2em;color:#1d232a;background:#f4f5f7;max-width:100%}
h1{font-size:1.5em;margin:.2em 0}
.sum{font-size:1.1em;margin:.3em 0 1em}
.sum b.p{color:#176f2c}.sum b.f{color:#b00020}
.faults{background:#fff4e5;border-left:4px solid #e8a33d;padding:.5em .8em;margin:.6em 0 1em}
details.sc{background:#fff;border:1px solid #d8dce1;border-radius:6px;margin:.5em 0;overflow:hidden}
details.sc>summary{cursor:pointer;padding:.55em .8em;display:flex;flex-wrap:wrap;gap:.3em 1em;align-items:baseline;list-style:none}
details.sc>summary::-webkit-details-marker{display:none}
details.sc>summary::before{content:"\25B8";color:#888}
details.sc[open]>summary::before{content:"\25BE"}
details.fail,details.error{border-left:5px solid #b00020}
details.pass{border-left:5px solid #2e9e4a}
.badge{font-weight:700;font-size:.85em;padding:.05em .45em;border-radius:3px;color:#fff}
.badge.pass{background:#2e9e4a}.badge.fail,.badge.error{background:#b00020}.badge.skip{background:#888}
.name{font-weight:600;flex:1 1 30em;min-width:0;overflow-wrap:anywhere}
.meta{color:#5b6570;font-size:.88em}
.body{padding:.2em 1em 1em;border-top:1px solid #eceef1}
.failure{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em;background:#fdecee;padding:.5em .7em;border-radius:4px;white-space:pre-wrap;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td,th{border-bottom:1px solid #e3e6ea;padding:.3em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{font-size:.85em;color:#5b6570;font-weight:600}
table.diff{width:auto;max-width:100%;margin:.4em 0}
table.diff td.want{color:#176f2c}table.diff td.got{color:#b00020;font-weight:600}
h3{font-size:1em;margin:1em 0 .3em}
.lanes{width:100%;height:auto;display:block;background:#fbfbfc;border:1px solid #e3e6ea;border-radius:4px}
.legend{font-size:.82em;color:#5b6570;margin:.2em 0 .6em}
.legend span{display:inline-block;margin-right:1em}
.sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;vertical-align:-.05em;margin-right:.25em}
table.tl td{font-size:.85em}
table.tl tr.failed td{background:#fdecee}
table.tl tr.div td{background:#fff4e5}
table.tl .st{width:4.5em}table.tl .act{width:26%}table.tl .card{width:30%}
pre.trace{font:12px/1.35 ui-monospace,Menlo,Consolas,monospace;background:#f7f7f9;padding:.6em;white-space:pre-wrap;word-break:break-all;max-height:40em;overflow-y:auto;overflow-x:hidden}
pre.trace b{color:#0b5394}
a{color:#0b5394}
.small{font-size:.85em;color:#5b6570}
</style></head><body>
<h1>cardharness scenarios</h1>
<p class="sum"><b class="p">{{.Passed}} passed</b>, <b class="f">{{.Failed}} failed</b>{{if .Skipped}}, {{.Skipped}} steps skipped{{end}} &middot; {{len .Results}} scenarios</p>
{{if .Faults}}<div class="faults"><b>Injected faults:</b> {{range $i, $f := .Faults}}{{if $i}}; {{end}}{{$f}}{{end}}. Failures of scenarios that rely on what these faults break are expected.</div>{{end}}
{{range .Results}}
<details class="sc {{.Status}}" id="{{.ID}}"{{if .Open}} open{{end}}>
<summary><span class="badge {{.Status}}">{{upper .Status}}</span><span class="name">{{.Name}}</span>
<span class="meta">{{.File}} &middot; {{.Stack}} &middot; seed {{.Seed}} &middot; {{secs .Duration}}{{if .Faults}} &middot; faults: {{range $i, $f := .Faults}}{{if $i}}; {{end}}{{$f}}{{end}}{{end}}</span></summary>
<div class="body">
{{if .Failure}}<div class="failure">{{.Failure}}</div>{{end}}
{{if .Faults}}<p class="small">Injected faults: {{range $i, $f := .Faults}}{{if $i}}; {{end}}{{$f}}{{end}}</p>{{end}}
{{if .Diff}}<h3>Expected vs observed</h3>
<table class="diff"><tr><th>field</th><th>want</th><th>got</th></tr>
{{range .Diff}}<tr><td>{{.Field}}</td><td class="want">{{.Want}}</td><td class="got">{{.Got}}</td></tr>
{{end}}</table>{{end}}
{{if .Lanes}}<h3>Timeline</h3>
{{.Lanes}}
<div class="legend"><span><i class="sw" style="background:#2e9e4a"></i>cache hit</span><span><i class="sw" style="background:#e8a33d"></i>stale</span><span><i class="sw" style="background:#8a94a0"></i>miss</span><span><i class="sw" style="background:#3b7dd8"></i>read from card (refresh / not cached)</span><span><i class="sw" style="background:#8e44ad"></i>PIN prompt</span><span><i class="sw" style="background:#b00020"></i>old bytes served as fresh</span><span>&#9733; propagation &middot; &plusmn; store change &middot; red band: host holds diverged data</span><span>card: filled dot = the card's files changed; p·c·f = cardcf counters (pins, containers, files) where they change; hover for details</span></div>
<details><summary>steps ({{len .Steps}})</summary>
<table class="tl"><tr><th class="st">step</th><th class="act">action</th><th class="card">cards (as on the card)</th><th>hosts</th></tr>
{{range .Steps}}<tr class="{{.Class}}"><td class="st">{{if .Anchor}}<a href="#{{.Anchor}}">{{.N}}</a>{{else}}{{.N}}{{end}}</td><td class="act">{{.Action}}</td><td class="card">{{range .Cards}}<div>{{.}}</div>{{end}}</td><td>{{range .Hosts}}<div>{{.}}</div>{{end}}</td></tr>
{{end}}</table></details>{{end}}
{{range .Traces}}<h3>APDU trace: card {{.Card}}</h3>
<p class="small"><a href="{{.Href}}">{{.Path}}</a> (raw JSON lines; <code>cardharness trace {{.Path}}</code> prints the same)</p>
<details{{if .Open}} open{{end}}><summary>decoded ({{.Lines}} lines{{if .Truncated}}, first {{.Shown}} shown{{end}})</summary><pre class="trace">{{.Text}}</pre></details>
{{end}}
{{range .Skipped}}<div class="small">skipped: {{.}}</div>{{end}}
</div></details>
{{end}}
<p class="small">Written by cardharness run. Timeline: docs/DESIGN.md, "Reports".</p>
</body></html>
`))

type htmlDiffLine struct{ Field, Want, Got string }

type htmlStep struct {
	N            int
	Anchor       string
	Action       string
	Cards, Hosts []string
	Class        string
}

type htmlTrace struct {
	Card, Path      string
	Href            template.URL
	Text            template.HTML
	Lines, Shown    int
	Truncated, Open bool
}

type htmlResult struct {
	Result
	ID     string
	Open   bool
	Diff   []htmlDiffLine
	Lanes  template.HTML
	Steps  []htmlStep
	Traces []htmlTrace
}

var diffLineRE = regexp.MustCompile(`^(.*?): want (.*), got (.*)$`)

// maxTraceLines bounds the decoded trace shown per card.
const maxTraceLines = 3000

// WriteHTML writes a self-contained HTML report: failures first.
func WriteHTML(w io.Writer, results []Result) error {
	sum := Summary(results)
	ordered := append([]Result(nil), results...)
	rank := map[string]int{Fail: 0, Error: 0, Skip: 1, Pass: 2}
	sort.SliceStable(ordered, func(i, j int) bool { return rank[ordered[i].Status] < rank[ordered[j].Status] })
	skipped := 0
	var views []htmlResult
	for i, r := range ordered {
		skipped += len(r.Skipped)
		v := htmlResult{Result: r, ID: fmt.Sprintf("sc%d", i+1), Open: r.Status == Fail || r.Status == Error}
		for _, line := range strings.Split(r.Diff, "\n") {
			if m := diffLineRE.FindStringSubmatch(line); m != nil {
				v.Diff = append(v.Diff, htmlDiffLine{m[1], m[2], m[3]})
			} else if line != "" {
				v.Diff = append(v.Diff, htmlDiffLine{Field: line})
			}
		}
		if v.Open {
			v.Traces = htmlTraces(v.ID, r)
			anchors := map[int]string{}
			if len(v.Traces) > 0 {
				for _, ts := range r.Timeline {
					anchors[ts.Step] = fmt.Sprintf("%s-t0-step%d", v.ID, ts.Step)
				}
			}
			v.Lanes = timelineSVG(r.Timeline)
			for _, ts := range r.Timeline {
				v.Steps = append(v.Steps, htmlStepOf(ts, anchors[ts.Step]))
			}
		}
		views = append(views, v)
	}
	return htmlReport.Execute(w, struct {
		Passed, Failed, Skipped int
		Faults                  []string
		Results                 []htmlResult
	}{sum[Pass], sum[Fail] + sum[Error], skipped, runFaults(results), views})
}

func htmlStepOf(ts TimelineStep, anchor string) htmlStep {
	s := htmlStep{N: ts.Step, Anchor: anchor, Action: ts.Do}
	if ts.Step == 0 {
		s.Anchor = ""
	}
	if ts.Name != "" {
		s.Action += fmt.Sprintf(" %q", ts.Name)
	}
	if ts.Line > 0 {
		s.Action += " (" + ts.where() + ")"
	}
	switch {
	case ts.Status != Pass:
		s.Class = "failed"
		s.Action += " — " + strings.ToUpper(ts.Status)
	case ts.DivergedFirst:
		s.Class = "div"
		s.Action += " — host and card diverge here"
	}
	for _, c := range ts.Cards {
		line := c.Card + ": PIN tries " + fmt.Sprint(c.PINTries)
		if c.CardCF != nil {
			line = fmt.Sprintf("%s: cardcf %s, PIN tries %d", c.Card, c.CardCF, c.PINTries)
		}
		if len(c.Changes) > 0 {
			line += " [" + strings.Join(c.Changes, ", ") + "]"
		}
		s.Cards = append(s.Cards, line)
	}
	for _, h := range ts.Hosts {
		div := divergedItems(h)
		parts := append(foldEvents(h.Events, div), h.Stores...)
		if len(div) > 0 {
			var items []string
			for _, c := range h.Cache {
				if c.State == "diverged" {
					items = append(items, shortItem(c.Item))
				}
			}
			parts = append(parts, "DIVERGED: "+strings.Join(items, ", "))
		}
		if len(parts) > 0 {
			s.Hosts = append(s.Hosts, h.Host+": "+strings.Join(parts, "; "))
		}
	}
	return s
}

// htmlTraces decodes the scenario's saved traces, with an anchor at each
// step marker (id PREFIX-tN-stepS).
func htmlTraces(id string, r Result) []htmlTrace {
	var out []htmlTrace
	for i, p := range r.Traces {
		t := htmlTrace{Path: p, Href: template.URL("file://" + absPath(p)), Card: traceCard(p)}
		f, err := os.Open(p)
		if err != nil {
			t.Text = template.HTML(template.HTMLEscapeString("cannot read the trace: " + err.Error()))
			out = append(out, t)
			continue
		}
		recs, err := trace.Read(f)
		f.Close()
		var b bytes.Buffer
		_ = trace.Format(&b, recs)
		if err != nil {
			fmt.Fprintf(&b, "(trace unreadable after this point: %v)\n", err)
		}
		lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
		t.Lines, t.Shown = len(lines), len(lines)
		if len(lines) > maxTraceLines {
			lines, t.Truncated, t.Shown = lines[:maxTraceLines], true, maxTraceLines
		}
		var h strings.Builder
		for _, l := range lines {
			var n int
			if _, err := fmt.Sscanf(l, "== step %d:", &n); err == nil {
				fmt.Fprintf(&h, "<b id=\"%s-t%d-step%d\">%s</b>\n", id, i, n, template.HTMLEscapeString(l))
				continue
			}
			h.WriteString(template.HTMLEscapeString(l))
			h.WriteByte('\n')
		}
		t.Text = template.HTML(h.String())
		out = append(out, t)
	}
	return out
}

func absPath(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	if wd, err := os.Getwd(); err == nil {
		return wd + "/" + p
	}
	return p
}

// traceCard is the card name in a saved trace's file name
// (SCENARIO.CARD.jsonl, saveTraces).
func traceCard(p string) string {
	base := strings.TrimSuffix(p[strings.LastIndex(p, "/")+1:], ".jsonl")
	if i := strings.LastIndex(base, "."); i >= 0 {
		return base[i+1:]
	}
	return base
}

// Lane drawing: a fixed grid in SVG user units; the SVG scales to the
// page width (viewBox), so a long scenario gets narrower columns rather
// than a horizontal scroll bar.
const (
	laneLabelW = 150
	laneH      = 54
	colW       = 44
	axisH      = 30
	topPad     = 26
)

type svgBuf struct{ strings.Builder }

func (b *svgBuf) f(format string, args ...any) { fmt.Fprintf(&b.Builder, format, args...) }

func esc(s string) string { return template.HTMLEscapeString(s) }

// timelineSVG draws one lane per card (counters as on the card, PIN
// tries) and one per host (cache decisions, PIN prompts, propagation,
// store changes), a column per step, the failing step and the point where
// host and card diverge marked.
func timelineSVG(tl []TimelineStep) template.HTML {
	if len(tl) == 0 {
		return ""
	}
	var cards, hosts []string
	for _, c := range tl[0].Cards {
		cards = append(cards, c.Card)
	}
	for _, h := range tl[0].Hosts {
		hosts = append(hosts, h.Host)
	}
	lanes := len(cards) + len(hosts)
	w := laneLabelW + colW*len(tl) + 10
	h := topPad + lanes*laneH + axisH
	var b svgBuf
	// max-width: never drawn larger than 3:2 (a short scenario would
	// otherwise get giant letters); narrower pages scale it down.
	b.f(`<svg class="lanes" style="max-width:%dpx" viewBox="0 0 %d %d" role="img" aria-label="timeline: a lane per card and per host, a column per step" xmlns="http://www.w3.org/2000/svg" font-family="system-ui,sans-serif" font-size="11">`, w*3/2, w, h)
	x := func(step int) int { return laneLabelW + colW*step + colW/2 }
	// columns: failed step and divergence
	for i, ts := range tl {
		cx := laneLabelW + colW*i
		if ts.Status != Pass {
			b.f(`<rect x="%d" y="%d" width="%d" height="%d" fill="#fdecee"/>`, cx, topPad-6, colW, lanes*laneH+6)
		}
		if i%2 == 1 {
			b.f(`<rect x="%d" y="%d" width="%d" height="%d" fill="#000" fill-opacity="0.025"/>`, cx, topPad, colW, lanes*laneH)
		}
	}
	// lanes
	for li := 0; li < lanes; li++ {
		y := topPad + li*laneH
		name, kind := "", ""
		if li < len(cards) {
			name, kind = cards[li], "card"
		} else {
			name, kind = hosts[li-len(cards)], "host"
		}
		b.f(`<line x1="0" x2="%d" y1="%d" y2="%d" stroke="#d8dce1"/>`, w, y+laneH, y+laneH)
		b.f(`<text x="8" y="%d" font-weight="600" font-size="13">%s %s</text>`, y+laneH/2+4, kind, esc(name))
	}
	// card lanes: counters where they change, PIN tries
	for ci := range cards {
		y := topPad + ci*laneH
		b.f(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#9aa3ad" stroke-width="2"/>`, x(0), x(len(tl)-1), y+laneH/2, y+laneH/2)
		var prev *TLCard
		for i, ts := range tl {
			if ci >= len(ts.Cards) {
				continue
			}
			c := ts.Cards[ci]
			changed := prev == nil || len(c.Changes) > 0
			fill := "#fff"
			if len(c.Changes) > 0 {
				fill = "#3b7dd8"
			}
			tip := fmt.Sprintf("step %d: card %s", ts.Step, c.Card)
			if c.CardCF != nil {
				tip += ", cardcf " + c.CardCF.String()
			}
			tip += fmt.Sprintf(", PIN tries %d", c.PINTries)
			if len(c.Changes) > 0 {
				tip += " [" + strings.Join(c.Changes, ", ") + "]"
			}
			b.f(`<g><title>%s</title><circle cx="%d" cy="%d" r="6" fill="%s" stroke="#3b7dd8" stroke-width="2"/>`, esc(tip), x(i), y+laneH/2, fill)
			if changed && c.CardCF != nil && (prev == nil || prev.CardCF == nil || *prev.CardCF != *c.CardCF) {
				b.f(`<text x="%d" y="%d" text-anchor="middle" font-size="10" fill="#1d232a">%d·%d·%d</text>`, x(i), y+laneH/2-10, c.CardCF.Pins, c.CardCF.Containers, c.CardCF.Files)
			}
			if prev != nil && prev.PINTries != c.PINTries {
				b.f(`<text x="%d" y="%d" text-anchor="middle" font-size="10" fill="#8e44ad">PIN %d</text>`, x(i), y+laneH/2+18, c.PINTries)
			}
			b.f(`</g>`)
			cc := c
			prev = &cc
		}
		b.f(`<text x="8" y="%d" font-size="9" fill="#5b6570">cardcf p·c·f</text>`, y+laneH/2+17)
	}
	// host lanes
	divFrom := -1
	for i, ts := range tl {
		if ts.DivergedFirst {
			divFrom = i
		}
	}
	for hi, hn := range hosts {
		y := topPad + (len(cards)+hi)*laneH
		// red band where this host holds diverged data
		for i, ts := range tl {
			th := hostIn(&tl[i], hn)
			if len(divergedItems(th)) > 0 {
				b.f(`<rect x="%d" y="%d" width="%d" height="6" fill="#b00020" fill-opacity="0.55"/>`, laneLabelW+colW*i, y+laneH-8, colW)
			}
			_ = ts
		}
		for i, ts := range tl {
			th := hostIn(&tl[i], hn)
			div := divergedItems(th)
			counts := map[string]int{}
			var badHit bool
			var prompts, props, stores int
			for _, ev := range th.Events {
				switch ev.Kind {
				case "hit":
					counts["hit"]++
					if div[ev.Card+" "+ev.Item] {
						badHit = true
					}
				case "stale", "miss":
					counts[ev.Kind]++
				case "refresh", "not-cached":
					counts["read"]++
				case "pin-prompt":
					prompts++
				case "propagate":
					props++
				}
			}
			stores = len(th.Stores)
			lines := foldEvents(th.Events, div)
			lines = append(lines, th.Stores...)
			tip := fmt.Sprintf("step %d %s: host %s", ts.Step, ts.Do, hn)
			if len(lines) > 0 {
				tip += ": " + strings.Join(lines, "; ")
			}
			b.f(`<g><title>%s</title>`, esc(tip))
			// one stacked bar of cache decisions per step
			total := counts["hit"] + counts["stale"] + counts["miss"] + counts["read"]
			if total > 0 {
				barH := laneH - 20
				by := y + 6
				for _, k := range []struct {
					kind, color string
				}{{"hit", "#2e9e4a"}, {"stale", "#e8a33d"}, {"miss", "#8a94a0"}, {"read", "#3b7dd8"}} {
					n := counts[k.kind]
					if n == 0 {
						continue
					}
					hh := max(3, barH*n/total)
					color := k.color
					if k.kind == "hit" && badHit {
						color = "#b00020"
					}
					b.f(`<rect x="%d" y="%d" width="14" height="%d" fill="%s"/>`, x(i)-16, by, hh, color)
					by += hh
				}
				b.f(`<text x="%d" y="%d" font-size="9" fill="#5b6570">%d</text>`, x(i)-15, y+laneH-12+8, total)
			}
			sy := y + 16
			if prompts > 0 {
				b.f(`<rect x="%d" y="%d" width="18" height="12" rx="3" fill="#8e44ad"/><text x="%d" y="%d" font-size="8" fill="#fff" text-anchor="middle">PIN</text>`, x(i), sy-10, x(i)+9, sy-1)
				sy += 14
			}
			if props > 0 {
				b.f(`<text x="%d" y="%d" font-size="13" fill="#c27c0e">&#9733;</text>`, x(i)+2, sy)
				sy += 13
			}
			if stores > 0 {
				b.f(`<text x="%d" y="%d" font-size="12" fill="#0b5394">&#177;</text>`, x(i)+3, sy)
			}
			b.f(`</g>`)
		}
	}
	// divergence marker
	if divFrom >= 0 {
		dx := laneLabelW + colW*divFrom
		b.f(`<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#b00020" stroke-width="2" stroke-dasharray="5 3"/>`, dx, dx, topPad-14, topPad+lanes*laneH)
		anchor, tx := "start", dx+4
		if dx > w-200 {
			anchor, tx = "end", dx-4 // near the right edge: label to the left
		}
		b.f(`<text x="%d" y="%d" font-size="11" fill="#b00020" font-weight="600" text-anchor="%s">host and card diverge (step %d)</text>`, tx, topPad-12, anchor, tl[divFrom].Step)
	}
	// axis: step numbers, the failing one marked
	ay := topPad + lanes*laneH + 18
	for i, ts := range tl {
		label := fmt.Sprint(ts.Step)
		color := "#5b6570"
		if ts.Status != Pass {
			label += " ✗"
			color = "#b00020"
		}
		b.f(`<g><title>%s</title><text x="%d" y="%d" text-anchor="middle" font-size="11" fill="%s">%s</text></g>`, esc(fmt.Sprintf("step %d: %s (%s)", ts.Step, ts.Do, ts.where())), x(i), ay, color, label)
	}
	b.f(`<text x="8" y="%d" font-size="11" fill="#5b6570">step</text>`, ay)
	b.f(`</svg>`)
	return template.HTML(b.String())
}
