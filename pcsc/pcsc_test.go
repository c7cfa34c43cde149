package pcsc

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cardharness/cardharness/internal/golden"

	"github.com/cardharness/cardharness/vcard/testcard"
)

func TestDirectTransport(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		cmd     []byte
		want    []byte
		wantErr error
	}{
		{"case 1", []byte{0x00, 0xA4, 0x00, 0x0C}, []byte{0x90, 0x00}, nil},
		{"case 2", []byte{0x00, 0xCA, 0x00, 0x00, 0x02}, []byte{0x00, 0x01, 0x90, 0x00}, nil},
		{"case 3", []byte{0x00, 0xDB, 0x3F, 0xFF, 0x01, 0x42}, []byte{0x42, 0x90, 0x00}, nil},
		{"too short", []byte{0x00}, nil, ErrBadCommand},
		{"nil", nil, nil, ErrBadCommand},
		{"longer than a vpcd frame", append([]byte{0x00, 0xDB, 0x3F, 0xFF, 0x00, 0xFF, 0xFD}, make([]byte, 65533)...), nil, ErrCommandTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDirect(&testcard.Echo{})
			got, err := d.Transmit(ctx, tt.cmd)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got % X, want % X", got, tt.want)
			}
		})
	}
	d := NewDirect(&testcard.Echo{})
	d.Close()
	if _, err := d.Transmit(ctx, []byte{0, 0xA4, 0, 0}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := NewDirect(&testcard.Echo{}).Transmit(cctx, []byte{0, 0xA4, 0, 0}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

// mute answers with nothing, like vpcd for a card that vanished.
type mute struct{ testcard.Echo }

func (*mute) Process([]byte) []byte { return nil }

func TestEmptyResponseIsAnError(t *testing.T) {
	_, err := NewDirect(&mute{}).Transmit(context.Background(), []byte{0x00, 0xA4, 0x00, 0x00})
	if !errors.Is(err, ErrEmptyResponse) {
		t.Fatalf("empty response gave %v, want ErrEmptyResponse", err)
	}
}

func TestTraceRecorderGolden(t *testing.T) {
	var buf bytes.Buffer
	rec := NewRecorder(NewDirect(&testcard.Echo{}), &buf)
	clock := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	rec.Trace().Now = func() time.Time { clock = clock.Add(250 * time.Microsecond); return clock }
	ctx := context.Background()
	rec.Transmit(ctx, []byte{0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0xFF})
	rec.Transmit(ctx, []byte{0x00, 0xCA, 0x00, 0x00, 0x04})
	rec.Transmit(ctx, []byte{0x00})
	rec.Reset(ctx)
	if err := rec.Trace().Err(); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "trace.jsonl", buf.Bytes())
}

func TestDirectTransactionExcludesOtherConnections(t *testing.T) {
	r := NewReader(&testcard.Echo{})
	a, b := r.Connect(), r.Connect()
	ctx := context.Background()
	if err := a.BeginTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.Transmit(short, []byte{0, 0xA4, 0, 0}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("transmit during another connection's transaction: %v, want it to wait", err)
	}
	if _, err := a.Transmit(ctx, []byte{0, 0xA4, 0, 0}); err != nil {
		t.Fatalf("transaction owner blocked: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := b.Transmit(ctx, []byte{0, 0xA4, 0, 0}); done <- err }()
	a.EndTransaction(ctx)
	if err := <-done; err != nil {
		t.Fatalf("after EndTransaction: %v", err)
	}
}
