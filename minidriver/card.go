package minidriver

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// gidsAID is the MS GIDS AID as the Windows minidriver sends it: without
// the version and reserved bytes, relying on the card's partial match
// (docs/reference/gids-protocol.md §1.4).
var gidsAID = []byte{0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59}

// Options configure a card context.
type Options struct {
	// ChunkSize is the largest data field sent in one APDU: longer data is
	// chained in parts of this size. 255 is what OpenSC does (it chains only
	// what a short APDU cannot hold); 240 is what Windows' inbox GIDS
	// minidriver does, and it then chains a 241..255-byte payload too (240
	// + the rest) rather than sending it whole: docs/reference/gids-protocol.md §2.1 gives
	// the sources for that decision. Default 255.
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
	// Rand supplies the host's challenges of the admin challenge-response
	// in UnblockPIN and ChangeAdminKey (nil: crypto/rand); a seeded one
	// makes a test's APDUs reproducible.
	Rand io.Reader
}

// CacheMode is CP_CARD_CACHE_MODE (cardmod.h).
type CacheMode int

// Cache modes (docs/reference/minidriver-semantics.md §1.5).
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
	_, sw, err := c.transmit(ctx, apdu.Command{INS: apdu.INSSelect, P1: 0x04, P2: 0x00, Data: gidsAID, Ne: leMax})
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

// transmit is the one place commands go to the card. It owns the two
// transport rules of docs/reference/gids-protocol.md §2.1: data longer than
// Options.ChunkSize is sent as a chain (CLA bit 0x10 on every part but the
// last; intermediate parts carry no Le and must be answered 90 00), and a
// 61xx answer is continued with GET RESPONSE until the card is done.
func (c *Card) transmit(ctx context.Context, cmd apdu.Command) ([]byte, apdu.Status, error) {
	data := cmd.Data
	for len(data) > c.opts.ChunkSize {
		part := apdu.Command{CLA: cmd.CLA | apdu.CLAChaining, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: data[:c.opts.ChunkSize]}
		_, sw, err := c.send(ctx, part)
		if err != nil || !sw.OK() {
			return nil, sw, err
		}
		data = data[c.opts.ChunkSize:]
	}
	last := cmd
	last.CLA &^= apdu.CLAChaining
	last.Data = data
	return c.send(ctx, last)
}

// send encodes one APDU (apdu.Command computes Lc and Le) and collects 61xx
// continuations.
func (c *Card) send(ctx context.Context, cmd apdu.Command) ([]byte, apdu.Status, error) {
	raw, err := cmd.Bytes()
	if err != nil {
		return nil, 0, fmt.Errorf("minidriver: cannot encode %02X %02X %02X %02X: %w", cmd.CLA, cmd.INS, cmd.P1, cmd.P2, err)
	}
	var out []byte
	for {
		resp, err := c.t.Transmit(ctx, raw)
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
		// 61 00 means 256 or more bytes remain (docs/reference/gids-protocol.md §2.1).
		ne := int(r.SW.SW2())
		if ne == 0 {
			ne = apdu.MaxShortNe
		}
		if raw, err = (apdu.Command{INS: apdu.INSGetResponse, Ne: ne}).Bytes(); err != nil {
			return nil, 0, err
		}
	}
}

// do sends cmd and turns a non-9000 answer into a CardError naming op.
func (c *Card) do(ctx context.Context, op string, cmd apdu.Command) ([]byte, error) {
	data, sw, err := c.transmit(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !sw.OK() {
		return nil, cardErr(op, sw)
	}
	return data, nil
}

// leMax is the Le of every command that returns data: 00, the most a
// short APDU can ask for (docs/reference/gids-protocol.md §2.1: the driver uses short
// APDUs only).
const leMax = apdu.MaxShortNe

// getDataTagList is the data field of GET DATA for one data object: the
// tag list 5C holding the DO's tag (docs/reference/gids-protocol.md §2.3).
func getDataTagList(tag uint16) []byte { return ber.Encode(0x5C, []byte{hi(tag), lo(tag)}) }

func hi(v uint16) byte { return byte(v >> 8) }
func lo(v uint16) byte { return byte(v) }

// readDO is GET DATA of one data object (docs/reference/gids-protocol.md §2.3); it
// returns the value without tag and length.
func (c *Card) readDO(ctx context.Context, op string, ef, tag uint16) ([]byte, error) {
	op = fmt.Sprintf("%s: GET DATA %04X/%04X", op, ef, tag)
	resp, err := c.do(ctx, op, apdu.Command{INS: apdu.INSGetData, P1: hi(ef), P2: lo(ef), Data: getDataTagList(tag), Ne: leMax})
	if err != nil {
		return nil, err
	}
	tlv, _, err := ber.ParseOne(resp)
	if err != nil || tlv.Tag != uint32(tag) {
		return nil, fmt.Errorf("%s: response does not start with the data object: %X", op, resp)
	}
	return tlv.Value, nil
}

// writeDO is PUT DATA (docs/reference/gids-protocol.md §2.4): the card replaces the DO.
func (c *Card) writeDO(ctx context.Context, op string, ef, tag uint16, value []byte) error {
	op = fmt.Sprintf("%s: PUT DATA %04X/%04X", op, ef, tag)
	_, err := c.do(ctx, op, apdu.Command{INS: apdu.INSPutData, P1: hi(ef), P2: lo(ef), Data: ber.Encode(uint32(tag), value)})
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
