package vpcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
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

// PollPeriod is how often pcscd polls a vpcd reader for card presence
// (pcsc-lite PCSCLITE_STATUS_POLL_RATE, 400 ms; §1.4). vpcd has no event
// thread, so pcscd learns that a card left only at a poll.
const PollPeriod = 400 * time.Millisecond

// Re-dial timing after a connection that was up has ended (see Run).
const (
	// redialMargin covers the poll's own GET ATR round trip and
	// scheduling on a loaded machine.
	redialMargin = 100 * time.Millisecond
	// minRedialGap is the shortest wait: more than one full poll period,
	// so pcscd has polled the empty slot at least once.
	minRedialGap = PollPeriod + redialMargin
	// DefaultRedialCap is the longest wait between two connections.
	DefaultRedialCap = 5 * time.Second
	// flapTime: a connection that lasted less is counted as a failure,
	// so a reader that keeps dropping the card is retried ever later.
	flapTime = 5 * PollPeriod
	// redialLogEvery rate-limits the info line about re-dialling.
	redialLogEvery = 30 * time.Second
)

// Link connects one card to one vpcd slot.
type Link struct {
	card       vcard.Card
	dial       DialFunc
	log        *slog.Logger
	redial     time.Duration // cap of the re-dial wait
	noQuickAck bool

	// sleep waits for d unless ctx ends first (false then); jitter
	// returns a uniform value in [0, n). Tests replace both.
	sleep  func(ctx context.Context, d time.Duration) bool
	jitter func(n int64) int64

	flaps      int       // consecutive short-lived connections
	lastLog    time.Time // last re-dial info line
	suppressed int       // re-dial lines not logged since lastLog

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

// WithRedialInterval sets the longest wait before dialling again after a
// connection ended (default DefaultRedialCap). The wait is never shorter
// than one pcscd poll period plus a margin, whatever d says, and failed
// dials are retried sooner (nothing was connected, so pcscd has nothing
// to notice).
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
		redial:   DefaultRedialCap,
		sleep:    sleep,
		jitter:   rand.Int64N,
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
	const firstRetry = 20 * time.Millisecond
	backoff := firstRetry
	var notBefore time.Time // earliest next dial after a connection ended
	for {
		if err := l.waitInserted(ctx); err != nil {
			return err
		}
		if d := time.Until(notBefore); d > 0 && !l.sleep(ctx, d) {
			return ctx.Err()
		}
		if !l.Inserted() { // removed while waiting
			continue
		}
		conn, err := l.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Nothing was connected, so there is no removal for pcscd to
			// see: retry soon (pcscd may still be starting), backing off.
			l.log.Debug("vpcd dial failed", "err", err, "retry_in", backoff)
			if !l.sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(backoff*2, max(l.redial, minRedialGap))
			continue
		}
		backoff = firstRetry
		if !l.attach(conn) { // removed (or stopped) while dialling
			conn.Close()
			continue
		}
		up := time.Now()
		err = l.serve(conn)
		l.detach(conn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		gap := l.redialGap(time.Since(up))
		notBefore = time.Now().Add(gap)
		l.logRedial(err, gap)
	}
}

// redialGap is the wait before dialling again after a connection that
// lasted for up. vpcd notices a closed card socket only at pcscd's next
// presence poll; a card that is back before that poll is never seen
// removed, so clients keep handles to a card that lost its security
// state, and pcscd's reader state goes wrong (issue 8 finding 3). So the
// link waits more than one poll period, doubling for each consecutive
// connection shorter than flapTime, up to the cap, plus up to 25 %
// jitter so that many cards of one stack do not come back in lockstep.
func (l *Link) redialGap(up time.Duration) time.Duration {
	if up < flapTime {
		l.flaps++
	} else {
		l.flaps = 0
	}
	limit := max(l.redial, minRedialGap)
	gap := minRedialGap
	for i := 1; i < l.flaps && gap < limit; i++ {
		gap *= 2
	}
	gap = min(gap, limit)
	gap += time.Duration(l.jitter(int64(gap)/4 + 1))
	return min(gap, limit+limit/4)
}

// logRedial reports at info level that the link went down and when it
// comes back, at most once per redialLogEvery.
func (l *Link) logRedial(err error, gap time.Duration) {
	inserted := l.Inserted()
	if !inserted {
		l.log.Debug("vpcd connection ended; card removed", "err", err)
		return
	}
	if now := time.Now(); l.lastLog.IsZero() || now.Sub(l.lastLog) >= redialLogEvery {
		l.log.Info("vpcd connection lost; dialling again after pcscd's presence poll",
			"err", err, "in", gap.Round(time.Millisecond), "suppressed_since_last", l.suppressed)
		l.lastLog, l.suppressed = now, 0
		return
	}
	l.suppressed++
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
			switch {
			case len(reply) < 2:
				l.log.Error("card returned a response without status word; sending 6F00", "len", len(reply))
				reply = []byte{0x6F, 0x00}
			case len(reply) > maxFrame:
				// vpcd cannot carry it and would drop the card; the host
				// asked for more than the link can deliver at once.
				l.log.Error("card response longer than a vpcd frame; sending 6700", "len", len(reply))
				reply = slices.Clone(swWrongLength)
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

// maxFrame is the largest vpcd frame payload (2-byte length; vpcd's
// sendToVICC refuses longer ones, §1.2).
const maxFrame = 0xFFFF

// writeFrame sends header and payload in one write: splitting them is what
// makes Debian's vpcd stall on the other side of the link.
func writeFrame(w io.Writer, payload []byte) error {
	if len(payload) == 0 || len(payload) > maxFrame {
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
