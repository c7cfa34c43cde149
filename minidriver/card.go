package minidriver

import (
	"context"
	"errors"
	"fmt"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// gidsAID is the MS GIDS AID as the Windows minidriver sends it: without
// the version and reserved bytes, relying on the card's partial match
// (gids-protocol.md §1.4).
var gidsAID = []byte{0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59}

// Options configure a card context.
type Options struct {
	// ChunkSize is the command-chaining chunk: 255 as OpenSC sends, or 240
	// as Windows does (gids-protocol.md §2.1). Default 255.
	ChunkSize int
	// CacheMode is what CardGetProperty(CP_CARD_CACHE_MODE) reports. The
	// card stores no such property; a minidriver decides it, so it is a
	// knob (default CacheGlobal, what a read/write GIDS card should say).
	CacheMode CacheMode
	// ReadOnly is what CardGetProperty(CP_CARD_READ_ONLY) reports.
	ReadOnly bool
	// MaxContainers caps CardQueryFreeSpace and container creation below
	// the GIDS limit of 127 (key references 0x81..0xFF). Default 127.
	MaxContainers int
	// GenerateWithLe sends GENERATE ASYMMETRIC KEY PAIR with Le, as Windows
	// does, instead of as a case-3 command, as OpenSC does.
	GenerateWithLe bool
	// SessionPINs is the card declaring session PINs: what
	// CardGetProperty(CP_CARD_PIN_STRENGTH_VERIFY) reports
	// (CARD_PIN_STRENGTH_SESSION_PIN, so that CardAuthenticateEx with
	// CARD_AUTHENTICATE_GENERATE_SESSION_PIN is allowed). The GIDS card
	// has no session PINs of its own; the host model (harness/winhost)
	// uses them only for cards that declare them (docs/windows-fidelity.md
	// row H-PIN-SESSION).
	SessionPINs bool
}

// CacheMode is CP_CARD_CACHE_MODE (cardmod.h).
type CacheMode int

// Cache modes (minidriver-semantics.md §1.5).
const (
	CacheGlobal      CacheMode = 1 // CP_CACHE_MODE_GLOBAL_CACHE
	CacheSessionOnly CacheMode = 2 // CP_CACHE_MODE_SESSION_ONLY
	CacheNone        CacheMode = 3 // CP_CACHE_MODE_NO_CACHE
)

func (m CacheMode) String() string {
	switch m {
	case CacheGlobal:
		return "global"
	case CacheSessionOnly:
		return "session-only"
	case CacheNone:
		return "none"
	}
	return fmt.Sprintf("CacheMode(%d)", int(m))
}

// ParseCacheMode reads "global", "session-only" or "none".
func ParseCacheMode(s string) (CacheMode, error) {
	for _, m := range []CacheMode{CacheGlobal, CacheSessionOnly, CacheNone} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown cache mode %q (want global, session-only or none)", s)
}

// Card is a minidriver card context (CardAcquireContext) over one
// transport.
type Card struct {
	t      pcsc.Transport
	opts   Options
	cardID fs.CardID
}

// Acquire is CardAcquireContext: it selects the GIDS application and reads
// cardid (the key of every host cache).
func Acquire(ctx context.Context, t pcsc.Transport, opts Options) (*Card, error) {
	if opts.ChunkSize <= 0 || opts.ChunkSize > 255 {
		opts.ChunkSize = 255
	}
	if opts.CacheMode == 0 {
		opts.CacheMode = CacheGlobal
	}
	if opts.MaxContainers <= 0 || opts.MaxContainers > 127 {
		opts.MaxContainers = 127
	}
	c := &Card{t: t, opts: opts}
	if err := c.Select(ctx); err != nil {
		return nil, err
	}
	id, err := c.readDO(ctx, "CardAcquireContext cardid", fs.EFEveryoneReadAdminWriteAc, fs.DOCardID)
	if err != nil {
		return nil, err
	}
	if c.cardID, err = fs.ParseCardID(id); err != nil {
		return nil, fmt.Errorf("CardAcquireContext: %w", err)
	}
	return c, nil
}

// Select selects the GIDS application (which also logs out: GIDS clears
// PIN and admin state on application selection).
func (c *Card) Select(ctx context.Context) error {
	cmd := append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(gidsAID))}, gidsAID...)
	cmd = append(cmd, 0x00)
	_, sw, err := c.exchange(ctx, cmd)
	if err != nil {
		return err
	}
	if !sw.OK() {
		return fmt.Errorf("%w: %v", ErrNotGIDS, sw)
	}
	return nil
}

// CardID is the cardid read at Acquire.
func (c *Card) CardID() fs.CardID { return c.cardID }

// Transport returns the transport.
func (c *Card) Transport() pcsc.Transport { return c.t }

// Options returns the context's options.
func (c *Card) Options() Options { return c.opts }

// exchange sends one command (chaining if its data is longer than a short
// APDU allows) and collects 61xx continuations.
func (c *Card) exchange(ctx context.Context, cmd []byte) ([]byte, apdu.Status, error) {
	parsed, err := apdu.ParseCommand(cmd)
	if err != nil {
		return nil, 0, fmt.Errorf("minidriver: bad command %X: %w", cmd, err)
	}
	if len(parsed.Data) > 255 {
		return c.chained(ctx, parsed)
	}
	return c.transmit(ctx, cmd)
}

func (c *Card) chained(ctx context.Context, cmd apdu.Command) ([]byte, apdu.Status, error) {
	data := cmd.Data
	for len(data) > c.opts.ChunkSize {
		chunk := apdu.Command{CLA: cmd.CLA | 0x10, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: data[:c.opts.ChunkSize]}
		raw, err := chunk.Bytes()
		if err != nil {
			return nil, 0, err
		}
		_, sw, err := c.transmit(ctx, raw)
		if err != nil {
			return nil, 0, err
		}
		if !sw.OK() {
			return nil, sw, nil
		}
		data = data[c.opts.ChunkSize:]
	}
	last := apdu.Command{CLA: cmd.CLA &^ 0x10, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: data, Ne: cmd.Ne, HasLe: cmd.HasLe}
	raw, err := last.Bytes()
	if err != nil {
		return nil, 0, err
	}
	return c.transmit(ctx, raw)
}

func (c *Card) transmit(ctx context.Context, cmd []byte) ([]byte, apdu.Status, error) {
	var out []byte
	for {
		resp, err := c.t.Transmit(ctx, cmd)
		if err != nil {
			return nil, 0, err
		}
		r, err := apdu.ParseResponse(resp)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, r.Data...)
		if r.SW.SW1() != 0x61 {
			return out, r.SW, nil
		}
		cmd = []byte{0x00, 0xC0, 0x00, 0x00, r.SW.SW2()}
	}
}

// do sends cmd and turns a non-9000 answer into a CardError naming op.
func (c *Card) do(ctx context.Context, op string, cmd []byte) ([]byte, error) {
	data, sw, err := c.exchange(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !sw.OK() {
		return nil, cardErr(op, sw)
	}
	return data, nil
}

func hi(v uint16) byte { return byte(v >> 8) }
func lo(v uint16) byte { return byte(v) }

// readDO is GET DATA of one data object (gids-protocol.md §2.3); it
// returns the value without tag and length.
func (c *Card) readDO(ctx context.Context, op string, ef, tag uint16) ([]byte, error) {
	op = fmt.Sprintf("%s: GET DATA %04X/%04X", op, ef, tag)
	resp, err := c.do(ctx, op, []byte{0x00, 0xCB, hi(ef), lo(ef), 0x04, 0x5C, 0x02, hi(tag), lo(tag), 0x00})
	if err != nil {
		return nil, err
	}
	tlv, _, err := ber.ParseOne(resp)
	if err != nil || tlv.Tag != uint32(tag) {
		return nil, fmt.Errorf("%s: response does not start with the data object: %X", op, resp)
	}
	return tlv.Value, nil
}

// writeDO is PUT DATA (gids-protocol.md §2.4): the card replaces the DO.
func (c *Card) writeDO(ctx context.Context, op string, ef, tag uint16, value []byte) error {
	op = fmt.Sprintf("%s: PUT DATA %04X/%04X", op, ef, tag)
	tlv := ber.Encode(uint32(tag), value)
	cmd := apdu.Command{CLA: 0x00, INS: 0xDB, P1: hi(ef), P2: lo(ef), Data: tlv}
	raw, err := cmd.Bytes()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = c.do(ctx, op, raw)
	return err
}

// transaction runs f holding the card, when the transport can (PC/SC
// SCardBeginTransaction); Base CSP runs every minidriver call that way.
func (c *Card) transaction(ctx context.Context, f func() error) error {
	tx, ok := c.t.(pcsc.Transactor)
	if !ok {
		return f()
	}
	if err := tx.BeginTransaction(ctx); err != nil {
		return err
	}
	err := f()
	if e := tx.EndTransaction(ctx); err == nil {
		err = e
	}
	return err
}

// isNotFound reports a missing file or data object.
func isNotFound(err error) bool {
	var ce *CardError
	return errors.As(err, &ce) && (ce.SW == apdu.SWFileNotFound || ce.SW == apdu.SWReferencedDataNotFound)
}
