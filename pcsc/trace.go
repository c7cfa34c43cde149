package pcsc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// TraceRecord is one line of an APDU trace. A command and its response are
// two records sharing Seq, so a trace stays readable (and greppable) when an
// exchange fails halfway.
type TraceRecord struct {
	Seq  int       `json:"seq"`
	Time time.Time `json:"time"`
	// Dir is ">" for host to card, "<" for card to host, "!" for an error
	// instead of a response, "reset" for a reset.
	Dir   string `json:"dir"`
	APDU  string `json:"apdu,omitempty"` // hex
	SW    string `json:"sw,omitempty"`   // hex, responses only
	Err   string `json:"err,omitempty"`
	DurUS int64  `json:"dur_us,omitempty"` // responses: time since the command
}

// Recorder wraps a Transport and writes every exchange to w as JSON lines.
// Write errors never fail the exchange; the first one is kept in Err.
type Recorder struct {
	Transport
	mu  sync.Mutex
	enc *json.Encoder
	seq int
	err error
	now func() time.Time
}

// NewRecorder records t's traffic to w.
func NewRecorder(t Transport, w io.Writer) *Recorder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep ">" and "<" readable for grep
	return &Recorder{Transport: t, enc: enc, now: time.Now}
}

// Err returns the first error writing the trace.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *Recorder) write(rec TraceRecord) {
	if err := r.enc.Encode(rec); err != nil && r.err == nil {
		r.err = err
	}
}

// Transmit implements Transport.
func (r *Recorder) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r.mu.Lock()
	r.seq++
	seq := r.seq
	start := r.now()
	r.write(TraceRecord{Seq: seq, Time: start, Dir: ">", APDU: hex.EncodeToString(cmd)})
	r.mu.Unlock()

	resp, err := r.Transport.Transmit(ctx, cmd)

	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.now()
	rec := TraceRecord{Seq: seq, Time: end, DurUS: end.Sub(start).Microseconds()}
	if err != nil {
		rec.Dir, rec.Err = "!", err.Error()
	} else {
		rec.Dir = "<"
		rec.APDU = hex.EncodeToString(resp[:len(resp)-2])
		rec.SW = hex.EncodeToString(resp[len(resp)-2:])
	}
	r.write(rec)
	return resp, err
}

// Reset implements Transport.
func (r *Recorder) Reset(ctx context.Context) error {
	err := r.Transport.Reset(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	rec := TraceRecord{Seq: r.seq, Time: r.now(), Dir: "reset"}
	if err != nil {
		rec.Err = err.Error()
	}
	r.write(rec)
	return err
}
