package scenarios

import (
	"html/template"
	"io"
	"time"
)

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"secs": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cardharness scenarios</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left;vertical-align:top}
.pass{color:#176f2c;font-weight:bold}.fail,.error{color:#b00020;font-weight:bold}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;margin:.3em 0}
</style></head><body>
<h1>cardharness scenarios</h1>
<p>{{.Passed}} passed, {{.Failed}} failed</p>
<table><tr><th>status</th><th>scenario</th><th>stack</th><th>seed</th><th>time</th></tr>
{{range .Results}}<tr><td class="{{.Status}}">{{.Status}}</td><td>{{.Name}}<br><small>{{.File}}</small>
{{range .Faults}}<div><small>injected fault: {{.}}</small></div>{{end}}{{if .Failure}}<pre>{{.Failure}}</pre>{{end}}{{if .Diff}}<pre>expected vs observed (-want +got):
{{.Diff}}</pre>{{end}}{{range .Traces}}<div><small>APDU trace: {{.}}</small></div>{{end}}
{{range .Skipped}}<div><small>skipped: {{.}}</small></div>{{end}}</td>
<td>{{.Stack}}</td><td>{{.Seed}}</td><td>{{secs .Duration}}</td></tr>
{{end}}</table></body></html>
`))

// WriteHTML writes a self-contained HTML report.
func WriteHTML(w io.Writer, results []Result) error {
	sum := Summary(results)
	return htmlReport.Execute(w, struct {
		Passed, Failed int
		Results        []Result
	}{sum[Pass], sum[Fail] + sum[Error], results})
}
