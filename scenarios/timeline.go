package scenarios

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/vcard/trace"
)

// The timeline is the diagnosis a failing scenario needs: per step, the
// card's cardcf counters as the card holds them, what each host holds
// (its G items with the counters they were cached under, and whether
// their bytes still match the card), and what the hosts did during the
// step (cache decisions per item read, propagation, store changes, PIN
// prompts). It is recorded for every scenario; reports show it
// (docs/DESIGN.md, "Reports").

// TimelineStep is the state after one step and what happened during it.
// Step 0 is the state after setup.
type TimelineStep struct {
	Step   int       `json:"step"`
	File   string    `json:"file,omitempty"`
	Line   int       `json:"line,omitempty"`
	Do     string    `json:"do"`
	Name   string    `json:"name,omitempty"`
	Status string    `json:"status"`
	VTime  time.Time `json:"vtime"`
	Cards  []TLCard  `json:"cards,omitempty"`
	Hosts  []TLHost  `json:"hosts,omitempty"`
	// Diverged: after this step some host holds an item that differs from
	// the card under counters that still match it (it will serve the old
	// bytes as fresh). DivergedFirst marks the first such step.
	Diverged      bool `json:"diverged,omitempty"`
	DivergedFirst bool `json:"diverged_first,omitempty"`
}

// Counters are the three cardcf freshness counters.
type Counters struct {
	Pins       int `json:"pins"`
	Containers int `json:"containers"`
	Files      int `json:"files"`
}

func countersOf(cf fs.CardCF) Counters {
	return Counters{int(cf.PinsFreshness), int(cf.ContainersFreshness), int(cf.FilesFreshness)}
}

func (c Counters) String() string {
	return fmt.Sprintf("pins %d containers %d files %d", c.Pins, c.Containers, c.Files)
}

// TLCard is a card after a step, as the card itself holds it (nil
// counters: not readable, e.g. a real card).
type TLCard struct {
	Card     string    `json:"card"`
	CardCF   *Counters `json:"cardcf,omitempty"`
	PINTries int       `json:"pin_tries"`
	// Changes against the previous step: counters, PIN tries, files.
	Changes []string `json:"changes,omitempty"`
}

// TLHost is a host after a step and what it did during the step.
type TLHost struct {
	Host      string     `json:"host"`
	Events    []TLEvent  `json:"events,omitempty"`
	Cache     []TLCached `json:"cache,omitempty"`
	Snapshots []TLSnap   `json:"snapshots,omitempty"`
	Stores    []string   `json:"store_changes,omitempty"`
}

// TLEvent is one thing a host did. Kind is one of the cache decisions
// "hit", "stale", "miss", "not-cached" (read from the card without a cache
// lookup: NO_CACHE cards, propagation bypassing the cache), or a host event
// kind (winhost.EventKind: "pin-prompt", "propagate", "insert", ...);
// "refresh" is a card read without a lookup after a write (the write path
// re-reads what it changed into the cache).
type TLEvent struct {
	Kind    string `json:"kind"`
	Process string `json:"process,omitempty"`
	Card    string `json:"card,omitempty"`
	Item    string `json:"item,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// TLCached is one item in a host's G. State compares it with the card:
// "fresh" (same bytes), "outdated" (other bytes, and the counters show it:
// the next lookup is stale), "diverged" (other bytes under counters that
// still match: the host will serve it as fresh), "" (not a file: not
// compared).
type TLCached struct {
	Card     string   `json:"card"`
	Item     string   `json:"item"`
	Snapshot Counters `json:"snapshot"`
	State    string   `json:"state,omitempty"`
}

// TLSnap is the cardcf a process saw at its last transaction.
type TLSnap struct {
	Process    string   `json:"process"`
	Card       string   `json:"card"`
	CardCF     Counters `json:"cardcf"`
	CachedPINs int      `json:"cached_pins,omitempty"`
}

// timelineState is the recorder's memory between steps.
type timelineState struct {
	steps    []TimelineStep
	seen     map[string]int               // host → events already attributed
	stores   map[string]map[string]string // host → "store/thumb" → subject
	files    map[string]map[string][]byte // card → file path → bytes
	prev     map[string]TLCard            // card → previous state
	writers  map[string]*trace.Writer     // card → its trace
	modes    map[string]string            // host+reader → cache mode at insertion
	diverged bool
}

func (e *env) tl() *timelineState {
	if e.timeline == nil {
		e.timeline = &timelineState{seen: map[string]int{}, stores: map[string]map[string]string{},
			files: map[string]map[string][]byte{}, prev: map[string]TLCard{}, writers: map[string]*trace.Writer{}, modes: map[string]string{}}
	}
	return e.timeline
}

// stepBegin writes a step marker into every card's APDU trace, so that
// `cardharness trace` shows which step sent which APDUs.
func (e *env) stepBegin(i int, st *Step) {
	t := e.tl()
	for _, n := range sortedStrings(keysOf(t.writers)) {
		t.writers[n].Marker(i+1, fmt.Sprintf("%s:%d %s%s", st.File, st.Line, st.Do, stepLabel(st)))
	}
}

// stepEnd records the state after step i (-1: setup) and, with
// Options.Verbose, prints it.
func (e *env) stepEnd(i int, st *Step, sr *StepResult) {
	t := e.tl()
	ts := TimelineStep{Step: i + 1, Do: "setup", Status: Pass, VTime: e.clock.Now()}
	if st != nil {
		ts.File, ts.Line, ts.Do, ts.Name = st.File, st.Line, st.Do, st.Name
	}
	if sr != nil {
		ts.Status = sr.Status
	}
	names := map[fs.CardID]string{}
	for _, n := range sortedStrings(keysOf(e.cards)) {
		tc, id, ok := e.tlCard(n)
		if ok {
			names[id] = n
		}
		ts.Cards = append(ts.Cards, tc)
	}
	for _, hn := range sortedStrings(keysOf(e.hosts)) {
		th := e.hostState(hn, e.hosts[hn], names)
		for _, c := range th.Cache {
			if c.State == "diverged" {
				ts.Diverged = true
			}
		}
		ts.Hosts = append(ts.Hosts, th)
	}
	if ts.Diverged && !t.diverged {
		ts.DivergedFirst, t.diverged = true, true
	}
	t.steps = append(t.steps, ts)
	if e.opts.Verbose && e.opts.Progress != nil {
		var b bytes.Buffer
		writeTimelineStep(&b, e.sc.Name+": ", ts, nil, true)
		if sr != nil && sr.Error != "" {
			fmt.Fprintf(&b, "%s:     %s\n", e.sc.Name, sr.Error)
			if sr.Diff != "" {
				fmt.Fprintf(&b, "%s\n", indent(sr.Diff, e.sc.Name+":       "))
			}
		}
		_, _ = e.opts.Progress.Write(b.Bytes())
	}
}

// tlCard reads a card's counters, PIN tries and files from the card
// itself (not through any host).
func (e *env) tlCard(n string) (TLCard, fs.CardID, bool) {
	t := e.tl()
	c := e.cards[n]
	tc := TLCard{Card: n, PINTries: -1}
	if c.gids == nil {
		return tc, fs.CardID{}, false
	}
	tc.PINTries = c.gids.PINTriesLeft()
	if b, ok := c.gids.DO(fs.EFEveryoneReadUserWriteAc, fs.DOCardCF); ok {
		if cf, err := fs.ParseCardCF(b); err == nil {
			cc := countersOf(cf)
			tc.CardCF = &cc
		}
	}
	var id fs.CardID
	ok := false
	if b, found := c.gids.DO(fs.EFEveryoneReadAdminWriteAc, fs.DOCardID); found {
		if parsed, err := fs.ParseCardID(b); err == nil {
			id, ok = parsed, true
		}
	}
	files := e.cardFiles(n)
	if p, had := t.prev[n]; had {
		if p.CardCF != nil && tc.CardCF != nil && *p.CardCF != *tc.CardCF {
			tc.Changes = append(tc.Changes, counterChanges(*p.CardCF, *tc.CardCF)...)
		}
		if p.PINTries != tc.PINTries {
			tc.Changes = append(tc.Changes, fmt.Sprintf("PIN tries %d→%d", p.PINTries, tc.PINTries))
		}
		old := t.files[n]
		for _, path := range sortedStrings(keysOf(files)) {
			if path == "cardcf" {
				continue
			}
			ob, had := old[path]
			switch {
			case !had:
				tc.Changes = append(tc.Changes, "+"+path)
			case !bytes.Equal(ob, files[path]):
				tc.Changes = append(tc.Changes, "wrote "+path)
			}
		}
		for _, path := range sortedStrings(keysOf(old)) {
			if _, still := files[path]; !still {
				tc.Changes = append(tc.Changes, "-"+path)
			}
		}
	}
	t.files[n] = files
	t.prev[n] = tc
	return tc, id, ok
}

func counterChanges(a, b Counters) []string {
	var out []string
	for _, f := range []struct {
		name string
		a, b int
	}{{"pins", a.Pins, b.Pins}, {"containers", a.Containers, b.Containers}, {"files", a.Files, b.Files}} {
		if f.a != f.b {
			out = append(out, fmt.Sprintf("%s %d→%d", f.name, f.a, f.b))
		}
	}
	return out
}

// cardFiles returns the card's minidriver files by lower-case path, read
// through its masterfile (docs/reference/gids-protocol.md §3.3).
func (e *env) cardFiles(n string) map[string][]byte {
	c := e.cards[n]
	out := map[string][]byte{}
	mb, ok := c.gids.DO(fs.EFUserCreateDeleteDirAc, fs.DOMasterFile)
	if !ok {
		return out
	}
	mf, err := fs.ParseMasterFile(mb)
	if err != nil {
		return out
	}
	for _, r := range mf {
		if r.IsDir() {
			continue
		}
		path := r.Name
		if r.Dir != "" {
			path = r.Dir + "/" + r.Name
		}
		if b, ok := c.gids.DO(r.EF, r.DO); ok {
			out[strings.ToLower(path)] = b
		}
	}
	return out
}

func (e *env) hostState(hn string, h *winhost.Host, names map[fs.CardID]string) TLHost {
	t := e.tl()
	th := TLHost{Host: hn}
	cardOf := func(id fs.CardID) string {
		if n, ok := names[id]; ok {
			return n
		}
		return id.String()
	}
	readerCard := map[string]string{}
	for n, c := range e.cards {
		readerCard[c.reader] = n
	}
	evs, all := h.EventsSince(t.seen[hn])
	th.Events = cacheDecisions(evs, readerCard, t.modes, hn)
	t.seen[hn] = all
	cards := map[string]fs.CardCF{}
	for n := range e.cards {
		if c := e.cards[n]; c.gids != nil {
			if b, ok := c.gids.DO(fs.EFEveryoneReadUserWriteAc, fs.DOCardCF); ok {
				if cf, err := fs.ParseCardCF(b); err == nil {
					cards[n] = cf
				}
			}
		}
	}
	for _, v := range h.GlobalCacheValues() {
		n := cardOf(v.CardID)
		tc := TLCached{Card: n, Item: v.Name, Snapshot: countersOf(v.Fresh)}
		if path, isFile := strings.CutPrefix(v.Name, "Cached_GeneralFile/"); isFile {
			if cf, ok := cards[n]; ok {
				onCard, exists := t.files[n][strings.ToLower(path)]
				switch {
				case exists && bytes.Equal(onCard, v.Data):
					tc.State = "fresh"
				case v.Fresh.ChangedIn(cf, v.Covers):
					tc.State = "outdated"
				default:
					tc.State = "diverged"
				}
			}
		}
		th.Cache = append(th.Cache, tc)
	}
	for _, s := range h.ProcessSnapshots() {
		th.Snapshots = append(th.Snapshots, TLSnap{Process: s.Process, Card: cardOf(s.CardID), CardCF: countersOf(s.CardCF), CachedPINs: s.CachedPINs})
	}
	now := map[string]string{}
	if u := h.CurrentUser(); u != nil {
		for _, s := range []*winhost.CertStore{u.My(), u.Request()} {
			for _, c := range s.Certificates() {
				now[string(s.Name())+" "+c.Thumbprint()[:12]] = c.Cert.Subject.CommonName
			}
		}
	}
	old := t.stores[hn]
	for _, k := range sortedStrings(keysOf(now)) {
		if _, had := old[k]; !had {
			th.Stores = append(th.Stores, fmt.Sprintf("+%s (CN=%s)", k, now[k]))
		}
	}
	for _, k := range sortedStrings(keysOf(old)) {
		if _, still := now[k]; !still {
			th.Stores = append(th.Stores, fmt.Sprintf("-%s (CN=%s)", k, old[k]))
		}
	}
	t.stores[hn] = now
	return th
}

// cacheDecisions turns host events into timeline events: a lookup and the
// card read it causes become one decision ("miss", "stale"); a card read
// without a lookup is "not-cached" on NO_CACHE cards and for propagation
// (which may bypass the cache), else "refresh" (a write re-reads what it
// changed into the cache); transactions are left out (every operation has
// one; the snapshots carry their counters). modes remembers each reader's
// cache mode from its insertion (key host NUL reader).
func cacheDecisions(evs []winhost.Event, readerCard map[string]string, modes map[string]string, host string) []TLEvent {
	var out []TLEvent
	for i, ev := range evs {
		te := TLEvent{Kind: string(ev.Kind), Process: ev.Process, Card: readerCard[ev.Reader], Item: ev.Item, Detail: ev.Detail}
		switch ev.Kind {
		case winhost.EvTransaction:
			continue
		case winhost.EvInsert:
			modes[host+"\x00"+ev.Reader] = strings.TrimPrefix(ev.Detail, "cache mode ")
		case winhost.EvCacheHit:
			te.Kind = "hit"
		case winhost.EvCacheStale:
			te.Kind, te.Detail = "stale", ""
		case winhost.EvCacheMiss:
			te.Kind, te.Detail = "miss", ""
		case winhost.EvCardRead:
			if i > 0 {
				p := evs[i-1]
				if (p.Kind == winhost.EvCacheMiss || p.Kind == winhost.EvCacheStale) && p.Item == ev.Item && p.Process == ev.Process {
					continue
				}
			}
			te.Kind = "refresh"
			if modes[host+"\x00"+ev.Reader] == "none" || ev.Process == "CertPropSvc" {
				te.Kind = "not-cached"
			}
		}
		out = append(out, te)
	}
	return out
}

// shortItem drops the cache-name prefixes people do not need to read.
func shortItem(s string) string {
	s = strings.TrimPrefix(s, "Cached_GeneralFile/")
	return strings.TrimPrefix(s, "Cached_")
}

// writeTimelineStep prints one step compactly: the step, the card's
// counters and changes, then per host its events (consecutive equal
// decisions folded), its store changes, and its diverged items when they
// differ from prev's (always when full). A hit on a diverged item is
// marked: that is the host serving old bytes as fresh.
func writeTimelineStep(w io.Writer, prefix string, ts TimelineStep, prev *TimelineStep, full bool) {
	label := ts.Do
	if ts.Name != "" {
		label += fmt.Sprintf(" %q", ts.Name)
	}
	where := ""
	if ts.Line > 0 {
		where = " (" + ts.where() + ")"
	}
	mark := ""
	if ts.Status != Pass {
		mark = "  <- " + strings.ToUpper(ts.Status)
	}
	if ts.DivergedFirst {
		mark += "  <- host and card diverge here"
	}
	fmt.Fprintf(w, "%sstep %d %s%s%s\n", prefix, ts.Step, label, where, mark)
	for _, c := range ts.Cards {
		cf := "cardcf unreadable"
		if c.CardCF != nil {
			cf = "cardcf " + c.CardCF.String()
		}
		line := fmt.Sprintf("%s    card %s: %s, PIN tries %d", prefix, c.Card, cf, c.PINTries)
		if len(c.Changes) > 0 {
			line += " [" + strings.Join(c.Changes, ", ") + "]"
		}
		fmt.Fprintln(w, line)
	}
	for _, h := range ts.Hosts {
		div := divergedItems(h)
		parts := foldEvents(h.Events, div)
		parts = append(parts, h.Stores...)
		showDiv := len(div) > 0 && (full || prev == nil || !sameKeys(div, divergedItems(hostIn(prev, h.Host))))
		if len(parts) == 0 && !showDiv && !full {
			continue
		}
		line := fmt.Sprintf("%s    host %s:", prefix, h.Host)
		if len(parts) == 0 {
			line += " nothing"
		} else {
			line += " " + strings.Join(parts, "; ")
		}
		fmt.Fprintln(w, line)
		if full && len(h.Cache) > 0 {
			var items []string
			for _, c := range h.Cache {
				item := fmt.Sprintf("%s %s @ p%d c%d f%d", c.Card, shortItem(c.Item), c.Snapshot.Pins, c.Snapshot.Containers, c.Snapshot.Files)
				if c.State != "" {
					item += " " + c.State
				}
				items = append(items, item)
			}
			fmt.Fprintf(w, "%s      cache: %s\n", prefix, strings.Join(items, ", "))
		}
		if showDiv {
			var items []string
			for _, c := range h.Cache {
				if c.State == "diverged" {
					items = append(items, fmt.Sprintf("%s %s (cached under %s)", c.Card, shortItem(c.Item), c.Snapshot))
				}
			}
			fmt.Fprintf(w, "%s      DIVERGED: the host holds other bytes than the card under counters that still match: %s\n", prefix, strings.Join(items, ", "))
		}
	}
}

// divergedItems are the "card item" keys of h's diverged cache items.
func divergedItems(h TLHost) map[string]bool {
	out := map[string]bool{}
	for _, c := range h.Cache {
		if c.State == "diverged" {
			out[c.Card+" "+c.Item] = true
		}
	}
	return out
}

func hostIn(ts *TimelineStep, name string) TLHost {
	for _, h := range ts.Hosts {
		if h.Host == name {
			return h
		}
	}
	return TLHost{}
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// foldEvents prints events as "hit cmapfile ×3" groups, in order; hits
// on diverged items say so.
func foldEvents(evs []TLEvent, diverged map[string]bool) []string {
	var out []string
	last, n := "", 0
	flush := func() {
		if last == "" {
			return
		}
		if n > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", last, n))
		} else {
			out = append(out, last)
		}
	}
	for _, ev := range evs {
		s := ev.Kind
		if ev.Item != "" {
			s += " " + shortItem(ev.Item)
		}
		switch ev.Kind {
		case "hit":
			if diverged[ev.Card+" "+ev.Item] {
				s += " (old bytes served as fresh)"
			}
		case "pin-prompt", "propagate-error", "drop-pin-cache":
			if ev.Detail != "" {
				s += " (" + ev.Detail + ")"
			}
		case "propagate":
			s = "propagate " + shortThumb(ev.Item) + " to " + ev.Detail
		}
		if ev.Process != "" && ev.Process != "CertPropSvc" && ev.Kind != "hit" && ev.Kind != "miss" && ev.Kind != "stale" && ev.Kind != "not-cached" && ev.Kind != "refresh" {
			s = ev.Process + ": " + s
		}
		if s == last {
			n++
			continue
		}
		flush()
		last, n = s, 1
	}
	flush()
	return out
}

func shortThumb(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// timelineTail is how many steps before a failure the text report shows.
const timelineTail = 8

// writeTimelineTail prints the steps leading to the failure: the last
// timelineTail steps, and the step where host and card diverged if it is
// earlier.
func writeTimelineTail(w io.Writer, prefix string, tl []TimelineStep) {
	if len(tl) == 0 {
		return
	}
	from := max(0, len(tl)-timelineTail)
	if from > 0 {
		steps := "steps"
		if from == 1 {
			steps = "step"
		}
		fmt.Fprintf(w, "%s(%d earlier %s not shown: --report json carries the whole timeline)\n", prefix, from, steps)
	}
	for i := 0; i < from; i++ {
		if tl[i].DivergedFirst {
			writeTimelineStep(w, prefix, tl[i], nil, false)
			fmt.Fprintf(w, "%s    ...\n", prefix)
		}
	}
	for i := from; i < len(tl); i++ {
		var prev *TimelineStep
		if i > 0 && (i > from || tl[i-1].DivergedFirst) {
			prev = &tl[i-1]
		}
		writeTimelineStep(w, prefix, tl[i], prev, false)
	}
}

// traceWriter is the APDU trace of card n, in memory until it is saved
// (trace.NewBuffer): step markers go into it.
func (e *env) traceWriter(n string) *trace.Writer {
	tw := trace.NewBuffer()
	tw.KeepSecrets = e.opts.TraceSecrets
	e.tl().writers[n] = tw
	return tw
}

// faults lists the card faults in force, for every report format: those
// of --fault (every card) and those the scenario declares per card.
func (e *env) faults() []string {
	var out []string
	for _, f := range e.opts.CardFaults {
		out = append(out, f+" (--fault, every card)")
	}
	for _, n := range sortedStrings(keysOf(e.sc.Cards)) {
		for _, f := range e.sc.Cards[n].Faults {
			out = append(out, fmt.Sprintf("%s (card %s, declared by the scenario)", f, n))
		}
	}
	return out
}

// hostProfiles describes each host by its knobs as the scenario writes
// them ("desktop: default knobs", "laptop: propagation_delay=5s").
func (e *env) hostProfiles() []string {
	var out []string
	for _, hn := range sortedStrings(keysOf(e.sc.Hosts)) {
		hd := e.sc.Hosts[hn]
		var kv []string
		for _, k := range sortedStrings(keysOf(hd.Knobs)) {
			kv = append(kv, k+"="+hd.Knobs[k].Value)
		}
		prof := hd.Profile
		if prof == "" {
			prof = e.opts.HostProfile
		}
		if prof != "" {
			kv = append([]string{"profile " + prof}, kv...)
		}
		if len(kv) == 0 {
			out = append(out, hn+": default knobs")
		} else {
			out = append(out, hn+": "+strings.Join(kv, ", "))
		}
	}
	return out
}

// where is the step's file (base name: included steps come from another
// file) and line.
func (ts TimelineStep) where() string {
	return fmt.Sprintf("%s:%d", path.Base(ts.File), ts.Line)
}
