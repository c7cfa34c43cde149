package pcsc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ebfe/scard"
)

// DefaultTimeout bounds calls whose context has no deadline. It is generous
// because on-card RSA-4096 key generation legitimately takes seconds.
const DefaultTimeout = 2 * time.Minute

// Common PC/SC errors, re-exported so callers need not import scard to use
// errors.Is.
var (
	ErrRemovedCard    = scard.ErrRemovedCard
	ErrNoSmartcard    = scard.ErrNoSmartcard
	ErrNotTransacted  = scard.ErrNotTransacted
	ErrResetCard      = scard.ErrResetCard
	ErrUnknownReader  = scard.ErrUnknownReader
	ErrNoReaders      = scard.ErrNoReadersAvailable
	ErrPCSCTimeout    = scard.ErrTimeout
	ErrPCSCCancelled  = scard.ErrCancelled
	ErrServiceStopped = scard.ErrServiceStopped
	ErrNoService      = scard.ErrNoService
)

// SocketEnv is the variable libpcsclite reads to find pcscd.
const SocketEnv = "PCSCLITE_CSOCK_NAME"

var socketMu sync.Mutex

// UseSocket points this process's PC/SC client at the pcscd listening on
// path (a private stack's pcscd.comm). libpcsclite caches the path at its
// first use, so once a context has been established a different path is an
// error rather than a silent connection to the wrong pcscd.
func UseSocket(path string) error {
	socketMu.Lock()
	defer socketMu.Unlock()
	cur, set := os.LookupEnv(SocketEnv)
	if set && cur == path {
		return nil
	}
	if clientUsed && cur != path {
		return fmt.Errorf("pcsc: this process already talks to the pcscd at %q; libpcsclite cannot switch to %q (run one process per stack)", cur, path)
	}
	return os.Setenv(SocketEnv, path)
}

var clientUsed bool

// Client is a PC/SC context.
type Client struct {
	ctx *scard.Context
}

// NewClient establishes a PC/SC context with the pcscd named by
// PCSCLITE_CSOCK_NAME (or the system one).
func NewClient() (*Client, error) {
	socketMu.Lock()
	clientUsed = true
	socketMu.Unlock()
	ctx, err := scard.EstablishContext()
	if err != nil {
		return nil, &Error{Op: "establish context", Err: hint(err)}
	}
	return &Client{ctx: ctx}, nil
}

// hint adds what to do to the errors a newcomer meets first.
func hint(err error) error {
	switch {
	case errors.Is(err, scard.ErrNoService):
		where := os.Getenv(SocketEnv)
		if where == "" {
			where = "/run/pcscd/pcscd.comm"
		}
		return fmt.Errorf("%w (no pcscd answers at %s; start a private one with `cardharness stack` or run under `cardharness exec`)", err, where)
	}
	return err
}

// Close releases the context.
func (c *Client) Close() error { return c.ctx.Release() }

// Readers lists reader names. No reader is not an error: it returns nil.
func (c *Client) Readers() ([]string, error) {
	r, err := c.ctx.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{Op: "list readers", Err: err}
	}
	return r, nil
}

// Card is a connection to the card in one reader.
type Card struct {
	reader string

	mu        sync.Mutex // serialises calls; a timed-out call keeps it poisoned
	card      *scard.Card
	atr       []byte
	abandoned bool
	closed    bool
}

// Connect opens a shared connection (T=0 or T=1) to the card in reader.
func (c *Client) Connect(ctx context.Context, reader string) (*Card, error) {
	var sc *scard.Card
	err := bounded(ctx, func() error {
		var err error
		sc, err = c.ctx.Connect(reader, scard.ShareShared, scard.ProtocolT0|scard.ProtocolT1)
		return err
	})
	if err != nil {
		return nil, &Error{Op: "connect", Reader: reader, Err: err}
	}
	k := &Card{reader: reader, card: sc}
	if st, err := sc.Status(); err == nil {
		k.atr = st.Atr
	}
	return k, nil
}

// bounded runs f and gives up waiting when ctx ends (or after
// DefaultTimeout when ctx has no deadline). f keeps running in the
// background: libpcsclite calls cannot be interrupted, only abandoned.
func bounded(ctx context.Context, f func() error) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// Reader returns the reader name.
func (k *Card) Reader() string { return k.reader }

// Transmit implements Transport. If ctx ends first the call is abandoned and
// the connection refuses further calls with ErrAbandoned: the PC/SC library
// still holds the reader until the card answers or goes away.
func (k *Card) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	if err := checkCommand(cmd); err != nil {
		return nil, &Error{Op: "transmit", Reader: k.reader, Err: err}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.usable(); err != nil {
		return nil, &Error{Op: "transmit", Reader: k.reader, Err: err}
	}
	var resp []byte
	err := bounded(ctx, func() error {
		var err error
		resp, err = k.card.Transmit(cmd)
		return err
	})
	if isContextErr(err) {
		k.abandoned = true
	}
	if err == nil {
		err = checkResponse(resp)
	}
	if err != nil {
		return nil, &Error{Op: "transmit", Reader: k.reader, Err: err}
	}
	return resp, nil
}

func (k *Card) usable() error {
	switch {
	case k.closed:
		return ErrClosed
	case k.abandoned:
		return ErrAbandoned
	}
	return nil
}

// Reset implements Transport (SCardReconnect with SCARD_RESET_CARD).
func (k *Card) Reset(ctx context.Context) error { return k.reconnect(ctx, "reset", scard.ResetCard) }

// reconnect is SCardReconnect with disposition d (Reset, PowerCycle): a
// call that hits ctx's deadline abandons the connection, and the ATR is
// read again because the card answered to a new reset.
func (k *Card) reconnect(ctx context.Context, op string, d scard.Disposition) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.usable(); err != nil {
		return &Error{Op: op, Reader: k.reader, Err: err}
	}
	err := bounded(ctx, func() error {
		return k.card.Reconnect(scard.ShareShared, scard.ProtocolT0|scard.ProtocolT1, d)
	})
	if err != nil {
		if isContextErr(err) {
			k.abandoned = true
		}
		return &Error{Op: op, Reader: k.reader, Err: err}
	}
	if st, err := k.card.Status(); err == nil {
		k.atr = st.Atr
	}
	return nil
}

// ATR implements Transport.
func (k *Card) ATR() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]byte(nil), k.atr...)
}

// BeginTransaction takes the card for exclusive use across several APDUs
// (SCardBeginTransaction), as minidriver writers do around a counter bump
// and the write it announces.
func (k *Card) BeginTransaction(ctx context.Context) error {
	return k.call(ctx, "begin transaction", k.card.BeginTransaction)
}

// EndTransaction releases the card, leaving it powered and its state as is.
func (k *Card) EndTransaction(ctx context.Context) error {
	return k.call(ctx, "end transaction", func() error { return k.card.EndTransaction(scard.LeaveCard) })
}

// call makes the PC/SC call f, bounded by ctx, on a connection still
// usable; its errors are *Error naming op.
func (k *Card) call(ctx context.Context, op string, f func() error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.usable(); err != nil {
		return &Error{Op: op, Reader: k.reader, Err: err}
	}
	if err := bounded(ctx, f); err != nil {
		return &Error{Op: op, Reader: k.reader, Err: err}
	}
	return nil
}

// Close implements Transport. An abandoned connection is left to the PC/SC
// library: disconnecting it would block behind the stuck call.
func (k *Card) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	if k.abandoned {
		return nil
	}
	if err := k.card.Disconnect(scard.LeaveCard); err != nil {
		return &Error{Op: "disconnect", Reader: k.reader, Err: err}
	}
	return nil
}
