// Package trace records APDU exchanges as JSON lines and prints them for
// people. The same format is written on the host side (pcsc.Recorder, one
// line per direction) and on the card side (Card, for `cardharness card
// --trace` and the scenario runner), so one reader serves both:
// `cardharness trace FILE`. PINs and key material are masked unless
// Writer.KeepSecrets (mask.go); the scenario runner adds a marker record
// per step; Format decodes what each command means on a GIDS card
// (decode.go).
package trace

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/apdu"
)

// Record is one line of a trace. A command and its response share Seq, so
// a trace stays readable (and greppable) when an exchange fails halfway.
type Record struct {
	Seq  int       `json:"seq"`
	Time time.Time `json:"time"`
	// Dir is ">" for host to card, "<" for card to host, "!" for an error
	// instead of a response, or an event: "reset", "power-on", "power-off".
	Dir   string `json:"dir"`
	APDU  string `json:"apdu,omitempty"` // hex
	SW    string `json:"sw,omitempty"`   // hex, responses only
	Err   string `json:"err,omitempty"`
	DurUS int64  `json:"dur_us,omitempty"` // responses: time since the command
	// Step and Label belong to a step marker (Dir "step"): the scenario
	// runner writes one before each step, so that the APDUs after it are
	// that step's.
	Step  int    `json:"step,omitempty"`
	Label string `json:"label,omitempty"`
	// Masked is how many bytes of the command's data were left out, and
	// Secret what they were ("PIN", "key material"): see mask.go.
	Masked int    `json:"masked,omitempty"`
	Secret string `json:"secret,omitempty"`
}

// Writer writes records. Write errors never fail an exchange; the first one
// is kept in Err.
type Writer struct {
	mu  sync.Mutex
	enc *json.Encoder
	buf *buffer // NewBuffer (enc nil): the records, encoded by WriteTo
	seq int
	err error
	// Now is the clock (tests replace it).
	Now func() time.Time
	// KeepSecrets writes PINs and key material as sent; by default they
	// are masked (mask.go), so a trace can be shared.
	KeepSecrets bool
}

// NewWriter writes JSON lines to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{enc: newEncoder(w), Now: time.Now}
}

func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep ">" and "<" readable for grep
	return enc
}

// Err returns the first write error.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// entry is a record before hex encoding: the APDU and status word as
// bytes.
type entry struct {
	seq    int
	t      time.Time
	dir    string
	apdu   []byte
	sw     []byte
	err    string
	durUS  int64
	step   int
	label  string
	masked int
	secret string
}

func (e *entry) record() Record {
	return Record{Seq: e.seq, Time: e.t, Dir: e.dir, APDU: hex.EncodeToString(e.apdu), SW: hex.EncodeToString(e.sw),
		Err: e.err, DurUS: e.durUS, Step: e.step, Label: e.label, Masked: e.masked, Secret: e.secret}
}

func (w *Writer) write(e *entry) {
	if w.buf != nil {
		w.buf.add(e)
		return
	}
	if err := w.enc.Encode(e.record()); err != nil && w.err == nil {
		w.err = err
	}
}

// Exchange is a command whose response is still to come.
type Exchange struct {
	w     *Writer
	seq   int
	start time.Time
}

// Command records a command APDU.
func (w *Writer) Command(cmd []byte) Exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	x := Exchange{w: w, seq: w.seq, start: w.Now()}
	e := entry{seq: x.seq, t: x.start, dir: ">"}
	if !w.KeepSecrets {
		var n int
		if cmd, n, e.secret = Mask(cmd); n > 0 {
			e.masked = n
		}
	}
	e.apdu = cmd
	w.write(&e)
	return x
}

// Done records the response (or the error instead of one).
func (x Exchange) Done(resp []byte, err error) {
	w := x.w
	w.mu.Lock()
	defer w.mu.Unlock()
	end := w.Now()
	e := entry{seq: x.seq, t: end, durUS: end.Sub(x.start).Microseconds()}
	switch {
	case err != nil:
		e.dir, e.err = "!", err.Error()
	case len(resp) < 2:
		e.dir, e.err = "!", fmt.Sprintf("response of %d bytes has no status word", len(resp))
	default:
		e.dir = "<"
		e.apdu = resp[:len(resp)-2]
		e.sw = resp[len(resp)-2:]
	}
	w.write(&e)
}

// Event records a power event or reset (err may be nil).
func (w *Writer) Event(name string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	e := entry{seq: w.seq, t: w.Now(), dir: name}
	if err != nil {
		e.err = err.Error()
	}
	w.write(&e)
}

// Marker records the start of scenario step n (1-based) described by
// label.
func (w *Writer) Marker(n int, label string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	w.write(&entry{seq: w.seq, t: w.Now(), dir: "step", step: n, label: label})
}

// Card wraps c so that everything it sees is recorded: the card-side view
// of a session, independent of which host drives it.
func Card(c vcard.Card, w *Writer) vcard.Card { return &tracedCard{Card: c, w: w} }

type tracedCard struct {
	vcard.Card
	w *Writer
}

func (t *tracedCard) PowerOn()  { t.Card.PowerOn(); t.w.Event("power-on", nil) }
func (t *tracedCard) PowerOff() { t.Card.PowerOff(); t.w.Event("power-off", nil) }
func (t *tracedCard) Reset()    { t.Card.Reset(); t.w.Event("reset", nil) }
func (t *tracedCard) Process(cmd []byte) []byte {
	x := t.w.Command(cmd)
	resp := t.Card.Process(cmd)
	x.Done(resp, nil)
	return resp
}

// Unwrap returns the traced card.
func (t *tracedCard) Unwrap() vcard.Card { return t.Card }

// Read parses a trace. A bad line is an error naming its line number.
func Read(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return out, fmt.Errorf("trace line %d: %w", n, err)
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// Format prints records for people: one line per direction, hex in groups,
// status words with their meaning, and under each line what it means for
// a GIDS card (decode.go); step markers of the scenario runner become
// headings.
func Format(w io.Writer, recs []Record) error {
	d := NewDecoder()
	for _, r := range recs {
		var err error
		note := d.Annotate(r)
		switch r.Dir {
		case ">":
			masked := ""
			if r.Masked > 0 {
				masked = fmt.Sprintf(" <%d bytes of %s masked>", r.Masked, r.Secret)
			}
			_, err = fmt.Fprintf(w, "%5d > %s%s\n", r.Seq, spaced(r.APDU), masked)
		case "<":
			sw := ""
			if b, e := hex.DecodeString(r.SW); e == nil && len(b) == 2 {
				sw = apdu.Status(uint16(b[0])<<8 | uint16(b[1])).String()
			}
			data := spaced(r.APDU)
			if data != "" {
				data += "  "
			}
			_, err = fmt.Fprintf(w, "%5d < %s[%s]  %s\n", r.Seq, data, sw, fmtDur(r.DurUS))
		case "!":
			_, err = fmt.Fprintf(w, "%5d ! %s  %s\n", r.Seq, r.Err, fmtDur(r.DurUS))
		case "step":
			_, err = fmt.Fprintf(w, "== step %d: %s\n", r.Step, r.Label)
		default:
			line := fmt.Sprintf("%5d * %s", r.Seq, r.Dir)
			if r.Err != "" {
				line += ": " + r.Err
			}
			_, err = fmt.Fprintln(w, line)
		}
		if err == nil && note != "" {
			_, err = fmt.Fprintf(w, "        ; %s\n", note)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func spaced(h string) string {
	var b strings.Builder
	for i := 0; i+1 < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.ToUpper(h[i : i+2]))
	}
	return b.String()
}

func fmtDur(us int64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.1f ms", float64(us)/1000)
	}
	return fmt.Sprintf("%d µs", us)
}
