// Package vpcdtest is the reader side of the vpcd protocol (what vpcd is
// to a virtual card: a listener the card dials, then frames of a two-byte
// big-endian length and a payload, docs/reference/vpcd-and-peers.md §1.1
// and §1.2), for tests that drive a card without pcscd: vcard/vpcd's link
// tests and the `cardharness card` command's. It imports only the standard
// library, so the card's own tests can use it.
package vpcdtest

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// Timeout bounds every wait that should succeed (a dial, a frame): long
// enough for a loaded machine, short enough that a broken card fails the
// test instead of hanging it.
const Timeout = 10 * time.Second

// Reader is a loopback listener standing in for vpcd. It closes with the
// test, and so does every connection it accepted.
type Reader struct {
	t  testing.TB
	ln *net.TCPListener
}

// NewReader listens on a free loopback port.
func NewReader(t testing.TB) *Reader {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &Reader{t: t, ln: ln.(*net.TCPListener)}
}

// Addr is the address a card is told to dial (`--vpcd`, TCPDialer).
func (r *Reader) Addr() string { return r.ln.Addr().String() }

// Accept waits up to Timeout for the card to dial and fails the test if it
// does not.
func (r *Reader) Accept() net.Conn {
	r.t.Helper()
	c, err := r.AcceptWithin(Timeout)
	if err != nil {
		r.t.Fatalf("the card did not dial the reader within %v: %v", Timeout, err)
	}
	return c
}

// AcceptWithin waits up to d for the card to dial; the error is the
// listener's (a timeout when no card dialled), for tests that require that
// a card does not dial.
func (r *Reader) AcceptWithin(d time.Duration) (net.Conn, error) {
	r.ln.SetDeadline(time.Now().Add(d))
	c, err := r.ln.Accept()
	if err != nil {
		return nil, err
	}
	r.t.Cleanup(func() { c.Close() })
	return c, nil
}

// Frame is payload as one vpcd frame.
func Frame(payload ...byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(payload))), payload...)
}

// ReadFrame reads one frame's payload from c, failing the test if none
// arrives whole within Timeout.
func ReadFrame(t testing.TB, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(Timeout))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("read frame header: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read frame body: %v", err)
	}
	return b
}

// Xfer sends payload (an APDU or a control byte) as one frame and returns
// the payload of the card's answer.
func Xfer(t testing.TB, c net.Conn, payload ...byte) []byte {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(Timeout))
	if _, err := c.Write(Frame(payload...)); err != nil {
		t.Fatalf("write frame: %v", err)
	}
	return ReadFrame(t, c)
}
