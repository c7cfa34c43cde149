package pcsc

import (
	"context"
	"io"

	"github.com/cardharness/cardharness/vcard/trace"
)

// Recorder wraps a Transport and writes every exchange to a trace (JSON
// lines, package vcard/trace). Trace write errors never fail the exchange.
type Recorder struct {
	Transport
	w *trace.Writer
}

// NewRecorder records t's traffic to w.
func NewRecorder(t Transport, w io.Writer) *Recorder {
	return &Recorder{Transport: t, w: trace.NewWriter(w)}
}

// Trace returns the trace writer (its Err reports write failures).
func (r *Recorder) Trace() *trace.Writer { return r.w }

// Transmit implements Transport.
func (r *Recorder) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	x := r.w.Command(cmd)
	resp, err := r.Transport.Transmit(ctx, cmd)
	x.Done(resp, err)
	return resp, err
}

// Reset implements Transport.
func (r *Recorder) Reset(ctx context.Context) error {
	err := r.Transport.Reset(ctx)
	r.w.Event("reset", err)
	return err
}
