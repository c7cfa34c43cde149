package pcsc

import (
	"context"
	"sync"

	"github.com/cardharness/cardharness/vcard"
)

// Direct is a Transport that calls an in-process card: no pcscd, no
// sockets. It behaves like a reader that has just powered the card.
type Direct struct {
	mu     sync.Mutex
	card   vcard.Card
	closed bool
}

// NewDirect powers card on and returns a transport to it.
func NewDirect(card vcard.Card) *Direct {
	card.PowerOn()
	return &Direct{card: card}
}

// Transmit implements Transport.
func (d *Direct) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := checkCommand(cmd); err != nil {
		return nil, &Error{Op: "transmit", Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, &Error{Op: "transmit", Err: err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, &Error{Op: "transmit", Err: ErrClosed}
	}
	// The card gets its own copy: a real reader never shares buffers.
	resp := d.card.Process(append([]byte(nil), cmd...))
	if err := checkResponse(resp); err != nil {
		return nil, &Error{Op: "transmit", Err: err}
	}
	return resp, nil
}

// Reset implements Transport.
func (d *Direct) Reset(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return &Error{Op: "reset", Err: ErrClosed}
	}
	d.card.Reset()
	return nil
}

// ATR implements Transport.
func (d *Direct) ATR() []byte { return d.card.ATR() }

// Close implements Transport.
func (d *Direct) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	return nil
}
