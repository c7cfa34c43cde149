package pcsc

import (
	"context"
	"sync"

	"github.com/cardharness/cardharness/vcard"
)

// Direct is a Transport that calls an in-process card: no pcscd, no
// sockets. Several connections to one Reader behave like several PC/SC
// connections to one reader: each APDU is exclusive, and a transaction
// (BeginTransaction) holds the card for one connection until
// EndTransaction, blocking the others, as SCardBeginTransaction does.
type Direct struct {
	card   vcard.Card
	rd     *Reader
	mu     sync.Mutex
	inTx   bool
	closed bool
}

// Reader is an in-process reader holding one card: the lock a real reader
// provides (one APDU at a time, one transaction owner). Connect to it as
// many times as there are host processes sharing the card.
type Reader struct {
	card vcard.Card
	lock chan struct{} // 1-slot semaphore
}

// NewReader puts card into a new reader and powers it on.
func NewReader(card vcard.Card) *Reader {
	card.PowerOn()
	return &Reader{card: card, lock: make(chan struct{}, 1)}
}

// Card returns the card in the reader.
func (r *Reader) Card() vcard.Card { return r.card }

// Connect opens a connection to the card.
func (r *Reader) Connect() *Direct { return &Direct{card: r.card, rd: r} }

// NewDirect is a connection to card in a reader of its own.
func NewDirect(card vcard.Card) *Direct { return NewReader(card).Connect() }

func (d *Direct) acquire(ctx context.Context) error {
	select {
	case d.rd.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *Direct) release() { <-d.rd.lock }

// do runs f with the card held: inside this connection's transaction, or
// for the one call.
func (d *Direct) do(ctx context.Context, op string, f func()) error {
	d.mu.Lock()
	closed, inTx := d.closed, d.inTx
	d.mu.Unlock()
	if closed {
		return &Error{Op: op, Err: ErrClosed}
	}
	if err := ctx.Err(); err != nil {
		return &Error{Op: op, Err: err}
	}
	if !inTx {
		if err := d.acquire(ctx); err != nil {
			return &Error{Op: op, Err: err}
		}
		defer d.release()
	}
	f()
	return nil
}

// Transmit implements Transport.
func (d *Direct) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := checkCommand(cmd); err != nil {
		return nil, &Error{Op: "transmit", Err: err}
	}
	var resp []byte
	// The card gets its own copy: a real reader never shares buffers.
	if err := d.do(ctx, "transmit", func() { resp = d.card.Process(append([]byte(nil), cmd...)) }); err != nil {
		return nil, err
	}
	if err := checkResponse(resp); err != nil {
		return nil, &Error{Op: "transmit", Err: err}
	}
	return resp, nil
}

// Reset implements Transport.
func (d *Direct) Reset(ctx context.Context) error {
	return d.do(ctx, "reset", d.card.Reset)
}

// BeginTransaction implements Transactor.
func (d *Direct) BeginTransaction(ctx context.Context) error {
	d.mu.Lock()
	if d.closed || d.inTx {
		d.mu.Unlock()
		if d.closed {
			return &Error{Op: "begin transaction", Err: ErrClosed}
		}
		return nil // nested: already held
	}
	d.mu.Unlock()
	if err := d.acquire(ctx); err != nil {
		return &Error{Op: "begin transaction", Err: err}
	}
	d.mu.Lock()
	d.inTx = true
	d.mu.Unlock()
	return nil
}

// EndTransaction implements Transactor.
func (d *Direct) EndTransaction(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inTx {
		d.inTx = false
		d.release()
	}
	return nil
}

// ATR implements Transport.
func (d *Direct) ATR() []byte { return d.card.ATR() }

// Close implements Transport; it ends an open transaction.
func (d *Direct) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inTx {
		d.inTx = false
		d.release()
	}
	d.closed = true
	return nil
}
