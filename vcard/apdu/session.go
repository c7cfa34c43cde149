package apdu

import "slices"

// DefaultMaxChainData caps the data a command chain may assemble. It is
// the largest Nc an extended APDU can carry, so every assembled Command
// still re-encodes with Bytes, and it is far above what GIDS needs (the
// largest OpenSC chain is a certificate DO of a few KiB, the largest
// Windows one a 4096-bit key import).
const DefaultMaxChainData = MaxExtNc

// MaxResponseData is the most response data one response APDU carries:
// a vpcd frame holds at most 65535 bytes (docs/reference/vpcd-and-peers.md
// §1.2), two of which are the status word. An extended Le asking for more
// (Le 0000 means 65536) gets this much and 61xx, the rest by GET
// RESPONSE, as ISO 7816-4 §5.3.4 allows; a larger frame would make vpcd
// drop the card.
const MaxResponseData = 0xFFFF - 2

// INS values the session itself interprets.
const insGetResponse = 0xC0

// DefaultChainable reports whether GidsApplet accepts command chaining
// for ins: PERFORM SECURITY OPERATION (2A), GENERATE ASYMMETRIC KEY PAIR
// (47) and PUT DATA (DB) (docs/reference/gids-protocol.md §2.1).
func DefaultChainable(ins byte) bool {
	return ins == 0x2A || ins == 0x47 || ins == 0xDB
}

// DefaultWithholdWithoutLe reports whether the answer of ins to a command
// without Le is only announced (61xx, data by GET RESPONSE) rather than
// sent: GENERATE ASYMMETRIC KEY PAIR (47) only, as in GidsApplet
// (TransmitManager.sendData); OpenSC sends it without Le and takes the
// 61xx for success (docs/reference/gids-protocol.md §2.10).
func DefaultWithholdWithoutLe(ins byte) bool { return ins == INSGenerateAsymmetricKeyPair }

// DefaultCheckCLA applies GidsApplet's class-byte rules in its order
// (docs/reference/gids-protocol.md §2.1): secure-messaging bits (0x0C) → 6882, any of the
// bits 0xE0 (proprietary or further-interindustry class, including FF)
// → 6E00. It also rejects logical channels 1..3 with 6881, which is what
// a Java Card runtime answers when no channel was opened; this card
// offers only the basic channel. The chaining bit is not judged here.
func DefaultCheckCLA(cla byte) Status {
	switch {
	case cla&0x0C != 0:
		return SWSMNotSupported
	case cla&0xE0 != 0:
		return SWCLANotSupported
	case cla&0x03 != 0:
		return SWLogicalChannelNotSupported
	}
	return SWOK
}

// Session is the card side of the ISO 7816-4 transport: it turns raw
// command APDUs into whole Commands for a handler and the handler's
// Responses back into raw response APDUs, doing command chaining and
// 61xx/GET RESPONSE on the way (see the package documentation for the
// rules and the reasons behind them).
//
// The zero value is ready to use with GIDS defaults. A Session holds the
// state of one card connection and is not safe for concurrent use.
type Session struct {
	// ChainableINS lists the instructions that may use command chaining.
	// nil means DefaultChainable; a non-nil empty slice forbids chaining.
	ChainableINS []byte

	// MaxChainData caps the bytes a chain may assemble; 0 means
	// DefaultMaxChainData. A chunk that would exceed it is answered 6A84
	// and the chain is dropped.
	MaxChainData int

	// CheckCLA vets the class byte of every APDU before anything else;
	// a result other than SWOK is sent as the answer. nil means
	// DefaultCheckCLA.
	CheckCLA func(cla byte) Status

	// WithholdWithoutLe lists the instructions whose answer to a command
	// without Le is only announced by 61xx; every other instruction is
	// answered as if Le were 256 (see the package documentation). nil
	// means DefaultWithholdWithoutLe.
	WithholdWithoutLe func(ins byte) bool

	chain     *chainState
	pending   []byte // response bytes waiting for GET RESPONSE
	pendingSW Status // status to send with the last part of pending
}

type chainState struct {
	cla, ins, p1, p2 byte // cla without the chaining bit
	data             []byte
}

// Chainable reports whether ins may be sent with the chaining bit set.
func (s *Session) Chainable(ins byte) bool {
	if s.ChainableINS == nil {
		return DefaultChainable(ins)
	}
	return slices.Contains(s.ChainableINS, ins)
}

// Reset drops any chain in progress and any response data waiting for
// GET RESPONSE. Call it on power-off, warm or cold reset, and when the
// application is (re)selected, since a real card keeps this state in
// CLEAR_ON_DESELECT/CLEAR_ON_RESET memory (docs/reference/gids-protocol.md §1.5).
func (s *Session) Reset() {
	s.chain = nil
	s.pending = nil
	s.pendingSW = 0
}

// Pending returns how many response bytes are waiting for GET RESPONSE.
func (s *Session) Pending() int { return len(s.pending) }

// Chaining reports whether a command chain is in progress.
func (s *Session) Chaining() bool { return s.chain != nil }

func (s *Session) maxChain() int {
	if s.MaxChainData > 0 {
		return s.MaxChainData
	}
	return DefaultMaxChainData
}

func (s *Session) checkCLA(cla byte) Status {
	if s.CheckCLA == nil {
		return DefaultCheckCLA(cla)
	}
	sw := s.CheckCLA(cla)
	if !sw.OK() && !sw.valid() {
		return SWCLANotSupported
	}
	return sw
}

// Process handles one raw command APDU and returns the raw response APDU,
// which always holds at least a status word. h is called once per
// complete command; it never sees chaining bits, non-final chunks or GET
// RESPONSE. A nil h answers every command 6D00.
//
// Any APDU that does not continue the current exchange ends it: a command
// that is not the next chunk of an open chain is refused with 6900 (and
// not executed), and any command other than GET RESPONSE discards
// undelivered response data. Malformed APDUs (wrong length fields) are
// answered 6700 and also reset the exchange.
func (s *Session) Process(raw []byte, h func(Command) Response) []byte {
	c, err := ParseCommand(raw)
	if err != nil {
		// Every ParseCommand failure is a length-field inconsistency.
		s.Reset()
		return SWWrongLength.bytes()
	}
	if sw := s.checkCLA(c.CLA); !sw.OK() {
		s.Reset()
		return sw.bytes()
	}

	if ch := s.chain; ch != nil {
		if c.INS != ch.ins || c.P1 != ch.p1 || c.P2 != ch.p2 || c.CLA&^0x10 != ch.cla {
			s.Reset()
			return SWCommandNotAllowed.bytes()
		}
		if len(ch.data)+len(c.Data) > s.maxChain() {
			s.Reset()
			return SWNotEnoughMemory.bytes()
		}
		ch.data = append(ch.data, c.Data...)
		if c.Chained() {
			return SWOK.bytes()
		}
		s.chain = nil
		c.CLA &^= 0x10
		c.Data = ch.data
		return s.dispatch(c, h)
	}

	if c.Chained() {
		s.pending = nil
		if !s.Chainable(c.INS) {
			return SWChainingNotSupported.bytes()
		}
		if len(c.Data) > s.maxChain() {
			return SWNotEnoughMemory.bytes()
		}
		s.chain = &chainState{
			cla: c.CLA &^ 0x10, ins: c.INS, p1: c.P1, p2: c.P2,
			data: c.Data, // ParseCommand's copy; owned by the session now
		}
		return SWOK.bytes()
	}
	return s.dispatch(c, h)
}

func (s *Session) dispatch(c Command, h func(Command) Response) []byte {
	if c.INS == insGetResponse {
		return s.getResponse(c)
	}
	s.pending = nil
	r := Err(SWINSNotSupported)
	if h != nil {
		r = h(c)
	}
	return s.emit(r.Data, r.SW, s.ne(c))
}

// ne is how many response bytes c gets at once. Without Le that is 256
// (GidsApplet assumes Le = 256 when the reader passes none, so Windows'
// SELECT without Le gets its FCI and 9000 in one response, issue 11 §1),
// except for the instructions WithholdWithoutLe names, which get none.
func (s *Session) ne(c Command) int {
	if c.HasLe {
		return c.Ne
	}
	withhold := s.WithholdWithoutLe
	if withhold == nil {
		withhold = DefaultWithholdWithoutLe
	}
	if withhold(c.INS) {
		return 0
	}
	return MaxShortNe
}

// getResponse serves GET RESPONSE (00 C0 00 00 Le). A malformed GET
// RESPONSE keeps the pending data so that the host can retry correctly.
func (s *Session) getResponse(c Command) []byte {
	if len(s.pending) == 0 {
		return SWConditionsNotSatisfied.bytes()
	}
	if c.P1 != 0 || c.P2 != 0 {
		return SWIncorrectP1P2.bytes()
	}
	if len(c.Data) != 0 {
		return SWWrongLength.bytes()
	}
	ne := c.Ne
	if !c.HasLe {
		// GidsApplet serves 256 bytes when Le is missing because VMware's
		// shared reader strips it (docs/reference/gids-protocol.md §7); doing the same
		// avoids an endless 61xx loop with such readers.
		ne = MaxShortNe
	}
	data, sw := s.pending, s.pendingSW
	s.pending, s.pendingSW = nil, 0
	return s.emit(data, sw, ne)
}

// emit sends up to ne bytes of data with sw, parking the rest for GET
// RESPONSE behind a 61xx. ne is the command's Ne, so a short command gets
// at most 256 bytes, an extended one up to 65536, and a case 1/3 command
// (ne == 0) gets none, only 61xx announcing the data.
func (s *Session) emit(data []byte, sw Status, ne int) []byte {
	if !sw.valid() {
		// A handler bug (e.g. a zero Response); the host must still get a
		// status word it can parse.
		sw, data = SWUnknown, nil
	}
	if sw.isError() {
		data = nil
	}
	ne = min(ne, MaxResponseData)
	if len(data) <= ne {
		out := make([]byte, 0, len(data)+2)
		out = append(out, data...)
		return append(out, sw.SW1(), sw.SW2())
	}
	rest := len(data) - ne
	out := make([]byte, 0, ne+2)
	out = append(out, data[:ne]...)
	s.pending = append([]byte(nil), data[ne:]...)
	s.pendingSW = sw
	more := BytesRemaining(rest)
	return append(out, more.SW1(), more.SW2())
}

func (s Status) bytes() []byte { return []byte{s.SW1(), s.SW2()} }
