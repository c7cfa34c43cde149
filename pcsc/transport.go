// Package pcsc is the host side's access to cards: one Transport interface
// and its implementations.
//
//   - Card (this file's Connect) talks to a reader through pcscd with
//     github.com/ebfe/scard, the way any PC/SC application does.
//   - Direct calls an in-process vcard.Card with no sockets, for fast tests
//     and for running scenarios without a stack.
//   - Recorder wraps any Transport and writes an APDU trace as JSON lines.
//
// Everything that waits takes a context. vpcd has no timeouts of its own
// (docs/reference/vpcd-and-peers.md §1.8): a card that never answers blocks the
// PC/SC call until its socket closes, so the deadline is enforced here.
//
// libpcsclite reads PCSCLITE_CSOCK_NAME once per process, so a process talks
// to exactly one pcscd; see UseSocket.
//
// Bare § citations in this package refer to docs/reference/vpcd-and-peers.md.
package pcsc

import (
	"context"
	"errors"
	"fmt"
)

// Transport carries APDUs to one card.
type Transport interface {
	// Transmit sends a command APDU and returns the response APDU (data
	// followed by SW1 SW2). A response shorter than two bytes is an error,
	// never a success: vpcd reports a card that died mid-command as an
	// empty success (§1.8).
	Transmit(ctx context.Context, cmd []byte) ([]byte, error)
	// Reset warm-resets the card; the card clears its security state.
	Reset(ctx context.Context) error
	// ATR returns the card's answer to reset as last seen.
	ATR() []byte
	// Close releases the connection. It does not power the card down.
	Close() error
}

// Transactor is implemented by transports that can hold the card for a
// sequence of APDUs (SCardBeginTransaction): a minidriver writer bumps
// cardcf and writes the data it announces inside one transaction, so no
// other host reads in between.
type Transactor interface {
	BeginTransaction(ctx context.Context) error
	EndTransaction(ctx context.Context) error
}

var (
	_ Transactor = (*Card)(nil)
	_ Transactor = (*Direct)(nil)
)

var (
	// ErrEmptyResponse: the reader reported success with fewer than two
	// bytes, which is how vpcd reports a card that vanished mid-command.
	ErrEmptyResponse = errors.New("pcsc: response has no status word (card removed mid-command?)")
	// ErrBadCommand: the command cannot be a command APDU. vpcd would send a
	// 1-byte command as a control byte (a lone 00 powers the card off and
	// hangs the reader), so anything under 4 bytes is refused here.
	ErrBadCommand = errors.New("pcsc: command APDU shorter than 4 bytes")
	// ErrCommandTooLong: the command is longer than a vpcd frame (65535
	// bytes). vpcd refuses to send it and drops the card
	// (docs/reference/vpcd-and-peers.md §1.2), so it is refused here.
	ErrCommandTooLong = errors.New("pcsc: command APDU longer than 65535 bytes")
	// ErrAbandoned: an earlier call on this connection hit its deadline and
	// is still blocked in the PC/SC library; the connection cannot be used
	// until the card goes away. Reconnect.
	ErrAbandoned = errors.New("pcsc: connection abandoned after a timed-out call")
	// ErrClosed: the transport was closed.
	ErrClosed = errors.New("pcsc: transport closed")
)

// Error adds the operation and reader to a transport failure. The cause is
// kept for errors.Is/As: context.DeadlineExceeded, ErrEmptyResponse, or a
// scard.Error such as scard.ErrRemovedCard.
type Error struct {
	Op     string // "transmit", "connect", "reset", ...
	Reader string
	Err    error
}

func (e *Error) Error() string {
	if e.Reader == "" {
		return fmt.Sprintf("pcsc %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("pcsc %s on %q: %v", e.Op, e.Reader, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// maxCommand is the largest command a vpcd frame carries.
const maxCommand = 0xFFFF

// checkCommand applies the rules every transport shares.
func checkCommand(cmd []byte) error {
	if len(cmd) < 4 {
		return fmt.Errorf("%w (got %d bytes)", ErrBadCommand, len(cmd))
	}
	if len(cmd) > maxCommand {
		return fmt.Errorf("%w (got %d bytes)", ErrCommandTooLong, len(cmd))
	}
	return nil
}

// checkResponse turns a response without status word into an error.
func checkResponse(resp []byte) error {
	if len(resp) < 2 {
		return fmt.Errorf("%w: %d bytes", ErrEmptyResponse, len(resp))
	}
	return nil
}
