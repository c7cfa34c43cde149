package vpcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/cardharness/cardharness/vcard"
)

// Control bytes sent by the reader (vsmartcard vpcd.h, reference §1.3).
const (
	CtrlOff   = 0x00
	CtrlOn    = 0x01
	CtrlReset = 0x02
	CtrlATR   = 0x04
)

// DefaultPort is the port of slot 0 of a vpcd reader entry (0x8C7B); slot n
// listens on DefaultPort+n.
const DefaultPort = 35963

// DialFunc opens a fresh connection to a vpcd slot. The stack supplies one
// that dials from inside its private network namespace; TCPDialer covers the
// plain case.
type DialFunc func(ctx context.Context) (net.Conn, error)

// TCPDialer dials addr ("host:port") over TCP.
func TCPDialer(addr string) DialFunc {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// Fault is a misbehaviour the link can inject on the next command APDU, for
// testing how hosts cope with cards that die or hang (reference §1.8).
type Fault int

const (
	// FaultNone clears a pending fault.
	FaultNone Fault = iota
	// FaultDropOnAPDU closes the connection right after receiving the next
	// command APDU, without answering, and leaves the card removed: a card
	// pulled out mid-command. vpcd reports that transmit as a success with
	// zero bytes (§1.8), which hosts must treat as a failure.
	FaultDropOnAPDU
	// FaultHangOnAPDU receives the next command APDU and never answers until
	// Remove is called or the link stops. vpcd has no timeouts, so only the
	// host's own deadline gets it out.
	FaultHangOnAPDU
)

func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultDropOnAPDU:
		return "drop-on-apdu"
	case FaultHangOnAPDU:
		return "hang-on-apdu"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Link connects one card to one vpcd slot.
type Link struct {
	card       vcard.Card
	dial       DialFunc
	log        *slog.Logger
	redial     time.Duration
	noQuickAck bool

	mu       sync.Mutex
	inserted bool
	conn     net.Conn
	fault    Fault
	wake     chan struct{} // poked by Insert
	attached chan struct{} // closed when a connection is up, replaced when it goes down
}

// Option configures a Link.
type Option func(*Link)

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(k *Link) { k.log = l } }

// WithRedialInterval sets the longest wait between two dial attempts
// (default 500 ms, a little more than one pcscd poll).
func WithRedialInterval(d time.Duration) Option { return func(k *Link) { k.redial = d } }

// WithoutQuickAck leaves TCP_QUICKACK alone. Only for measuring what it
// buys: on Debian's vpcd every APDU then waits ~40 ms for a delayed ACK.
func WithoutQuickAck() Option { return func(k *Link) { k.noQuickAck = true } }

// NewLink returns a link for card that dials with dial once Run is called.
// The card starts inserted.
func NewLink(card vcard.Card, dial DialFunc, opts ...Option) *Link {
	l := &Link{
		card:     card,
		dial:     dial,
		log:      slog.Default(),
		redial:   500 * time.Millisecond,
		inserted: true,
		wake:     make(chan struct{}, 1),
		attached: make(chan struct{}),
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Card returns the card behind the link.
func (l *Link) Card() vcard.Card { return l.card }

// Remove pulls the card: the connection is closed and the link stops
// dialling until Insert. vpcd reports the removal at its next poll (≤400 ms).
func (l *Link) Remove() {
	l.mu.Lock()
	l.inserted = false
	c := l.conn
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Insert puts the card back: the link dials again.
func (l *Link) Insert() {
	l.mu.Lock()
	l.inserted = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Inserted reports whether the card is meant to be in the reader.
func (l *Link) Inserted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inserted
}

// Attached returns a channel that is closed once the link holds a
// connection to the reader (which is not yet the reader having seen it).
func (l *Link) Attached() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.attached
}

// InjectFault arms f for the next command APDU.
func (l *Link) InjectFault(f Fault) {
	l.mu.Lock()
	l.fault = f
	l.mu.Unlock()
}

// Run serves the card until ctx is done, dialling again whenever the
// connection drops while the card is inserted. It returns ctx.Err().
func (l *Link) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		c := l.conn
		l.mu.Unlock()
		if c != nil {
			c.Close()
		}
	})
	defer stop()
	backoff := 20 * time.Millisecond
	for {
		if err := l.waitInserted(ctx); err != nil {
			return err
		}
		conn, err := l.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			l.log.Debug("vpcd dial failed", "err", err, "retry_in", backoff)
			if !sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(backoff*2, l.redial)
			continue
		}
		backoff = 20 * time.Millisecond
		if !l.attach(conn) { // removed (or stopped) while dialling
			conn.Close()
			continue
		}
		err = l.serve(conn)
		l.detach(conn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.log.Debug("vpcd connection ended", "err", err, "inserted", l.Inserted())
		// A reader that went away (pcscd restarting) needs a moment before it
		// listens again; don't spin.
		if l.Inserted() && !sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
}

func (l *Link) waitInserted(ctx context.Context) error {
	for {
		if l.Inserted() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.wake:
		}
	}
}

func (l *Link) attach(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.inserted {
		return false
	}
	l.conn = c
	close(l.attached)
	return true
}

func (l *Link) detach(c net.Conn) {
	c.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conn = nil
	l.attached = make(chan struct{})
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ErrFrame reports a frame the link cannot act on.
var ErrFrame = errors.New("vpcd: bad frame")

// serve runs the frame loop on one connection until it fails.
func (l *Link) serve(conn net.Conn) error {
	var r io.Reader = quickAckReader{conn: conn}
	if l.noQuickAck {
		r = conn
	}
	var hdr [2]byte
	buf := make([]byte, 0, 512)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if n == 0 {
			// vpcd never sends one; tolerate it rather than tear the link down.
			l.log.Warn("vpcd sent an empty frame; ignored")
			continue
		}
		if cap(buf) < n {
			buf = make([]byte, 0, n)
		}
		frame := buf[:n]
		if _, err := io.ReadFull(r, frame); err != nil {
			return err
		}
		var reply []byte
		if n == 1 {
			reply = l.control(frame[0])
			if reply == nil {
				continue
			}
		} else {
			switch l.takeFault() {
			case FaultDropOnAPDU:
				l.log.Info("fault: dropping connection after APDU", "apdu", fmt.Sprintf("% X", frame))
				l.mu.Lock()
				l.inserted = false
				l.mu.Unlock()
				return fmt.Errorf("%w: injected drop", ErrFrame)
			case FaultHangOnAPDU:
				l.log.Info("fault: hanging on APDU", "apdu", fmt.Sprintf("% X", frame))
				// Block until the connection is closed by Remove or Run's ctx.
				_, err := io.Copy(io.Discard, conn)
				return err
			}
			reply = l.card.Process(frame)
			if len(reply) < 2 {
				l.log.Error("card returned a response without status word; sending 6F00", "len", len(reply))
				reply = []byte{0x6F, 0x00}
			}
		}
		if err := writeFrame(conn, reply); err != nil {
			return err
		}
	}
}

func (l *Link) takeFault() Fault {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fault
	l.fault = FaultNone
	return f
}

// swWrongLength is the status word answered to a 1-byte frame that is not
// a control byte: ISO 7816-4 "wrong length", since no command APDU is
// shorter than 4 bytes.
var swWrongLength = []byte{0x67, 0x00}

// control handles a 1-byte frame and returns the reply, if any. A byte
// that is not one of vpcd's controls can only be a 1-byte command APDU
// from an application, for which vpcd waits for an answer: it gets 67 00,
// or the reader would hang for every client (see the package comment).
func (l *Link) control(b byte) []byte {
	switch b {
	case CtrlOff:
		l.card.PowerOff()
	case CtrlOn:
		l.card.PowerOn()
	case CtrlReset:
		l.card.Reset()
	case CtrlATR:
		atr := l.card.ATR()
		if len(atr) == 0 {
			l.log.Error("card has an empty ATR; answering 3B 00")
			atr = []byte{0x3B, 0x00}
		}
		return atr
	default:
		l.log.Debug("1-byte frame that is no vpcd control: a 1-byte APDU; answering 67 00", "byte", b)
		return slices.Clone(swWrongLength)
	}
	return nil
}

// writeFrame sends header and payload in one write: splitting them is what
// makes Debian's vpcd stall on the other side of the link.
func writeFrame(w io.Writer, payload []byte) error {
	if len(payload) == 0 || len(payload) > 0xFFFF {
		return fmt.Errorf("%w: payload of %d bytes", ErrFrame, len(payload))
	}
	out := make([]byte, 2+len(payload))
	binary.BigEndian.PutUint16(out, uint16(len(payload)))
	copy(out[2:], payload)
	_, err := w.Write(out)
	return err
}

// quickAckReader re-arms TCP_QUICKACK after every read: Linux clears it
// after a while on its own, and one delayed ACK costs 40 ms per APDU on
// Debian's vpcd.
type quickAckReader struct{ conn net.Conn }

func (q quickAckReader) Read(p []byte) (int, error) {
	n, err := q.conn.Read(p)
	setQuickAck(q.conn)
	return n, err
}
