// Package cardio sends raw APDUs to a card through a pcsc.Transport and
// keeps a log of every exchange. It is the byte level under the vendor
// tools (harness/cardclean, harness/conform): they must see exactly what
// the card answered, including 61xx and chaining, so that a report can show
// the APDUs of a failure. The minidriver client hides those details on
// purpose; this package does not.
package cardio

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/apdu"
)

// Exchange is one command and the card's answer as sent and received.
type Exchange struct {
	Cmd  []byte
	Resp []byte // data + SW1 SW2; nil if the transport failed
	Err  string // transport error, "" if none
}

func (x Exchange) String() string {
	s := "> " + spaced(x.Cmd) + "\n"
	if x.Err != "" {
		return s + "< (transport error: " + x.Err + ")"
	}
	return s + "< " + spaced(x.Resp)
}

func spaced(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var sb strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(h[i : i+2])
	}
	return sb.String()
}

// Conn is a transport with a log. It is not safe for concurrent use (a
// card is one conversation).
type Conn struct {
	T   pcsc.Transport
	Log []Exchange
	// Count is the number of APDUs sent since the Conn was made (the log
	// may be trimmed with Mark/Since; the count is not).
	Count int
}

// New wraps t.
func New(t pcsc.Transport) *Conn { return &Conn{T: t} }

var _ pcsc.Transport = (*Conn)(nil)

// Transmit implements pcsc.Transport, logging the exchange, so that
// higher-level clients (the minidriver) can run over a Conn and their
// APDUs are counted and shown too.
func (c *Conn) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	c.Count++
	resp, err := c.T.Transmit(ctx, cmd)
	x := Exchange{Cmd: append([]byte(nil), cmd...), Resp: append([]byte(nil), resp...)}
	if err != nil {
		x.Err = err.Error()
	}
	c.Log = append(c.Log, x)
	return resp, err
}

// Reset implements pcsc.Transport.
func (c *Conn) Reset(ctx context.Context) error { return c.T.Reset(ctx) }

// ATR implements pcsc.Transport.
func (c *Conn) ATR() []byte { return c.T.ATR() }

// Close implements pcsc.Transport; it closes the wrapped transport.
func (c *Conn) Close() error { return c.T.Close() }

// Raw sends one APDU as given and returns the card's answer split into
// data and status; no GET RESPONSE, no chaining.
func (c *Conn) Raw(ctx context.Context, cmd []byte) ([]byte, apdu.Status, error) {
	resp, err := c.Transmit(ctx, cmd)
	if err != nil {
		return nil, 0, fmt.Errorf("APDU %s: %w", spaced(cmd), err)
	}
	r, err := apdu.ParseResponse(resp)
	if err != nil {
		return nil, 0, fmt.Errorf("APDU %s: response %s: %w", spaced(cmd), spaced(resp), err)
	}
	return r.Data, r.SW, nil
}

// Send sends cmd and collects 61xx continuations with GET RESPONSE, as
// OpenSC and Windows do (docs/reference/gids-protocol.md §2.1).
func (c *Conn) Send(ctx context.Context, cmd []byte) ([]byte, apdu.Status, error) {
	var out []byte
	for {
		data, sw, err := c.Raw(ctx, cmd)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, data...)
		if sw.SW1() != 0x61 {
			return out, sw, nil
		}
		if len(out) > 1<<20 {
			return nil, 0, fmt.Errorf("APDU %s: more than 1 MiB of GET RESPONSE data", spaced(cmd))
		}
		cmd = []byte{0x00, 0xC0, 0x00, 0x00, sw.SW2()}
	}
}

// Chained sends a command whose data may exceed one short APDU with
// command chaining in chunks of chunk bytes (CLA 10 on all but the last,
// docs/reference/gids-protocol.md §2.1); Le goes on the last chunk only. An intermediate
// chunk answered other than 9000 ends the chain with that status.
func (c *Conn) Chained(ctx context.Context, cla, ins, p1, p2 byte, data []byte, le bool, chunk int) ([]byte, apdu.Status, error) {
	if chunk <= 0 || chunk > 255 {
		chunk = 255
	}
	for len(data) > chunk {
		cmd := append([]byte{cla | 0x10, ins, p1, p2, byte(chunk)}, data[:chunk]...)
		_, sw, err := c.Raw(ctx, cmd)
		if err != nil {
			return nil, 0, err
		}
		if !sw.OK() {
			return nil, sw, nil
		}
		data = data[chunk:]
	}
	return c.Send(ctx, Short(cla, ins, p1, p2, data, le))
}

// Short encodes a short APDU: header, Lc and data if any, Le=00 if le.
func Short(cla, ins, p1, p2 byte, data []byte, le bool) []byte {
	out := []byte{cla, ins, p1, p2}
	if len(data) > 0 {
		out = append(out, byte(len(data)))
		out = append(out, data...)
	}
	if le {
		out = append(out, 0x00)
	}
	return out
}

// Mark returns the position in the log, for Since.
func (c *Conn) Mark() int { return len(c.Log) }

// Since returns the exchanges after mark.
func (c *Conn) Since(mark int) []Exchange {
	if mark > len(c.Log) {
		return nil
	}
	return append([]Exchange(nil), c.Log[mark:]...)
}

// Hex formats bytes as spaced upper-case hex, the way reports show APDUs.
func Hex(b []byte) string { return spaced(b) }
