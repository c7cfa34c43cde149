package scenarios

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardharness/cardharness/internal/testutil"
)

// htmlRun runs a scenario that fails under drop-cardcf-writes and one
// that passes, with the fault, and writes their HTML report.
func htmlRun(t *testing.T, dir string) (string, []Result) {
	t.Helper()
	refs := []Ref{
		{Path: "builtin/store/s9-no-provinfo.yaml", Builtin: true},
		{Path: "builtin/stale-cache/seed-flow-correct-writer.yaml", Builtin: true},
	}
	res, err := RunAll(context.Background(), refs, Options{Stack: "direct", CardFaults: []string{"drop-cardcf-writes"}, TraceDir: filepath.Join(dir, "traces")})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "report.html")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, res
}

// TestHTMLReportContent: failures first, the fault, the plain diff, the
// timeline, the decoded trace with step anchors; nothing fetched from
// elsewhere.
func TestHTMLReportContent(t *testing.T) {
	p, res := htmlRun(t, t.TempDir())
	if Summary(res)[Fail] != 1 {
		t.Fatalf("want exactly one failure: %+v", Summary(res))
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	first := strings.Index(page, `<details class="sc `)
	if first < 0 || !strings.HasPrefix(page[first:], `<details class="sc fail"`) {
		t.Errorf("the first scenario is not the failure")
	}
	for _, want := range []string{
		"Injected faults:</b> drop-cardcf-writes (--fault, every card)",
		`<td>count</td><td class="want">2</td><td class="got">1</td>`,
		`<svg class="lanes"`, "host and card diverge (step 9)",
		`id="sc1-t0-step17"`, `href="#sc1-t0-step17"`, "GET DATA cardcf (A010/DF22)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Self-contained: no URL that a browser would fetch.
	if m := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`).FindString(page); m != "" {
		t.Errorf("report refers to the network: %s", m)
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "@import") || strings.Contains(page, "url(") {
		t.Errorf("report loads scripts or external styles")
	}
}

// measureJS opens every <details> (so that closed content is checked
// too), then writes the page geometry into the DOM for --dump-dom.
const measureJS = `<script>
document.querySelectorAll('details').forEach(function(d){d.open=true});
var d=document.documentElement, fail=document.querySelector('details.sc.fail');
var svg=fail?fail.querySelector('svg.lanes'):null, r=svg?svg.getBoundingClientRect():{width:0,height:0};
var inner=[]; document.querySelectorAll('body *').forEach(function(e){
  if(!(e instanceof SVGElement) && e.clientWidth>0 && e.scrollWidth>e.clientWidth+1) inner.push(e.tagName+'.'+e.className);});
var m=document.createElement('pre'); m.id='measure';
m.textContent='MEASURE'+JSON.stringify({scrollWidth:d.scrollWidth, innerWidth:window.innerWidth,
  svgWidth:r.width, svgHeight:r.height, first:document.querySelector('details.sc').className,
  diverge: !!svg && svg.textContent.indexOf('host and card diverge')>=0, inner:inner})+'END';
document.body.appendChild(m);
</script></body>`

type pageMeasure struct {
	ScrollWidth, InnerWidth float64
	SVGWidth                float64 `json:"svgWidth"`
	SVGHeight               float64 `json:"svgHeight"`
	First                   string
	Diverge                 bool
	// Inner lists elements that scroll sideways inside the page.
	Inner []string
}

func chromium(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	bin := testutil.NeedTool(t, "chromium", "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
		"--no-first-run", "--user-data-dir=" + filepath.Join(dir, "profile")}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, tailLines(stderr.String(), 20))
	}
	return stdout.Bytes()
}

// TestHTMLReportInChromium renders the report of a --fault
// drop-cardcf-writes run in headless Chromium at 1280 px: it renders, is
// no wider than the window with every section open, and shows the
// failing scenario's timeline. With -update the screenshot becomes
// docs/report.png (the README shows it).
func TestHTMLReportInChromium(t *testing.T) {
	dir := t.TempDir()
	p, _ := htmlRun(t, dir)
	page, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	measured := filepath.Join(dir, "measure.html")
	if err := os.WriteFile(measured, bytes.Replace(page, []byte("</body>"), []byte(measureJS), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := chromium(t, dir, "--window-size=1280,1000", "--dump-dom", "file://"+measured)
	s := string(dom)
	i, j := strings.Index(s, "MEASURE{"), strings.Index(s, "}END</pre>")+1
	if i < 0 || j < i {
		t.Fatalf("the page did not run the measurement (did it render?):\n%.2000s", s)
	}
	var m pageMeasure
	if err := json.Unmarshal([]byte(s[i+len("MEASURE"):j]), &m); err != nil {
		t.Fatal(err)
	}
	t.Logf("measured: %+v", m)
	if m.InnerWidth != 1280 {
		t.Errorf("window is %v px wide, want 1280 (the check would mean nothing)", m.InnerWidth)
	}
	if m.ScrollWidth > m.InnerWidth {
		t.Errorf("horizontal overflow: the page is %v px wide in a %v px window", m.ScrollWidth, m.InnerWidth)
	}
	if len(m.Inner) > 0 {
		t.Errorf("elements that scroll sideways at 1280 px: %v", m.Inner)
	}
	if m.SVGWidth < 600 || m.SVGHeight < 80 {
		t.Errorf("the failing scenario's timeline is %vx%v px: not drawn", m.SVGWidth, m.SVGHeight)
	}
	if !m.Diverge || !strings.Contains(m.First, "fail") {
		t.Errorf("timeline without the divergence mark, or first scenario %q not the failure", m.First)
	}

	shot := filepath.Join(dir, "report.png")
	chromium(t, dir, "--window-size=1280,1100", "--screenshot="+shot, "file://"+p)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if w := img.Bounds().Dx(); w != 1280 {
		t.Errorf("screenshot is %d px wide, want 1280", w)
	}
	// Rendered, not blank: many distinct colours.
	colours := map[uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 7 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if len(colours) < 20 {
		t.Errorf("screenshot has %d colours: blank page?", len(colours))
	}
	if f := flag.Lookup("update"); f != nil && f.Value.String() == "true" {
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("../docs/report.png", b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
