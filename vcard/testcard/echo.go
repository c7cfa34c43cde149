// Package testcard provides trivial cards for testing reader links and
// transports before (and independently of) the GIDS card: their behaviour is
// obvious, so a failure points at the transport, not at the card.
package testcard

import (
	"sync"
	"sync/atomic"
)

// DefaultATR is a minimal ISO 7816-3 ATR (T=1, no historical bytes) that no
// OpenSC driver claims by ATR alone.
var DefaultATR = []byte{0x3B, 0x80, 0x80, 0x01, 0x01}

// Echo answers every command with its data field followed by 90 00, and a
// case 2 command (no data, Le present) with Le bytes counting up from zero so
// that response sizes can be exercised. It counts what it sees so tests can
// assert that power events reached the card.
type Echo struct {
	AnswerToReset []byte

	mu        sync.Mutex
	powered   bool
	commands  atomic.Int64
	powerOns  atomic.Int64
	powerOffs atomic.Int64
	resets    atomic.Int64
}

// ATR implements vcard.Card.
func (e *Echo) ATR() []byte {
	if len(e.AnswerToReset) > 0 {
		return e.AnswerToReset
	}
	return DefaultATR
}

// PowerOn implements vcard.Card.
func (e *Echo) PowerOn() {
	e.mu.Lock()
	e.powered = true
	e.mu.Unlock()
	e.powerOns.Add(1)
}

// PowerOff implements vcard.Card.
func (e *Echo) PowerOff() {
	e.mu.Lock()
	e.powered = false
	e.mu.Unlock()
	e.powerOffs.Add(1)
}

// Reset implements vcard.Card.
func (e *Echo) Reset() {
	e.mu.Lock()
	e.powered = true
	e.mu.Unlock()
	e.resets.Add(1)
}

// Process implements vcard.Card.
func (e *Echo) Process(cmd []byte) []byte {
	e.commands.Add(1)
	if len(cmd) < 4 {
		return []byte{0x67, 0x00}
	}
	body := cmd[4:]
	switch {
	case len(body) == 0: // case 1
		return []byte{0x90, 0x00}
	case len(body) == 1: // case 2 short: Le bytes of a counting pattern
		n := int(body[0])
		if n == 0 {
			n = 256
		}
		out := make([]byte, n+2)
		for i := 0; i < n; i++ {
			out[i] = byte(i)
		}
		out[n], out[n+1] = 0x90, 0x00
		return out
	default: // case 3/4 short: echo the data field
		lc := int(body[0])
		data := body[1:]
		if lc == 0 || lc > len(data) {
			return []byte{0x67, 0x00}
		}
		out := make([]byte, 0, lc+2)
		out = append(out, data[:lc]...)
		return append(out, 0x90, 0x00)
	}
}

// Stats is a snapshot of what the card has seen.
type Stats struct {
	Commands, PowerOns, PowerOffs, Resets int64
	Powered                               bool
}

// Stats returns the counters.
func (e *Echo) Stats() Stats {
	e.mu.Lock()
	p := e.powered
	e.mu.Unlock()
	return Stats{
		Commands:  e.commands.Load(),
		PowerOns:  e.powerOns.Load(),
		PowerOffs: e.powerOffs.Load(),
		Resets:    e.resets.Load(),
		Powered:   p,
	}
}
