package apdu

import "fmt"

// Limits of the two length encodings (ISO 7816-4 §5.1).
const (
	MaxShortNc = 255   // short Lc is one byte, 00 is not an Lc
	MaxShortNe = 256   // short Le 00 means 256
	MaxExtNc   = 65535 // extended Lc 0000 is not an Lc
	MaxExtNe   = 65536 // extended Le 0000 means 65536
)

// Command is a command APDU.
//
// The four ISO cases are told apart by len(Data) (Nc) and HasLe:
// case 1 has neither, case 2 only Le, case 3 only data, case 4 both.
// HasLe is kept separately from Ne because a card must distinguish
// "no Le" (case 3: the host wants no data, and OpenSC turns a 61xx answer
// into 9000, docs/reference/gids-protocol.md §2.1) from "Le present"; Ne alone cannot, as
// Ne is never 0 when Le is present.
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	// Ne is the maximum number of response bytes the host accepts:
	// 0 without Le, 1..256 for short Le (00 = 256), 1..65536 for
	// extended Le (0000 = 65536).
	Ne int
	// Extended records that Lc/Le used the extended (three-byte /
	// two-byte) form. Bytes honours it even when the values would fit the
	// short form, so parsed commands re-encode byte for byte.
	Extended bool
	// HasLe reports that the Le field was present (case 2 or 4).
	HasLe bool
}

// Chained reports whether CLA has the command-chaining bit (b5, 0x10)
// set, i.e. the APDU is a non-final part of a chain (ISO 7816-4 §5.4.2).
func (c Command) Chained() bool { return c.CLA&0x10 != 0 }

// ParseError describes a malformed command or response APDU. Field names
// the part that is wrong ("header", "Lc", "Le", "data length", "SW") and
// Offset is its position in the input.
type ParseError struct {
	Field  string
	Offset int
	Msg    string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("apdu: bad %s at offset %d: %s", e.Field, e.Offset, e.Msg)
}

func perr(field string, off int, format string, args ...any) error {
	return &ParseError{Field: field, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// ParseCommand decodes a command APDU per ISO 7816-4 §5.1 (cases 1, 2S,
// 3S, 4S, 2E, 3E, 4E). The decision tree follows the standard: a body of
// one byte is a short Le; a first body byte other than 00 is a short Lc;
// a first body byte 00 followed by more bytes opens the extended form.
// Every other shape is rejected with a *ParseError rather than guessed at,
// because a card that silently reinterprets a malformed length would hide
// host bugs the harness exists to find.
//
// The returned Data is a copy; it never aliases b.
func ParseCommand(b []byte) (Command, error) {
	if len(b) < 4 {
		return Command{}, perr("header", len(b), "need 4 header bytes, have %d", len(b))
	}
	c := Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3]}
	body := b[4:]
	n := len(body)
	switch {
	case n == 0: // case 1
		return c, nil

	case n == 1: // case 2S
		c.Ne = shortLe(body[0])
		c.HasLe = true
		return c, nil

	case body[0] != 0: // case 3S or 4S
		lc := int(body[0])
		switch {
		case n < 1+lc:
			return Command{}, perr("data length", 5, "Lc=%d but only %d data bytes", lc, n-1)
		case n == 1+lc:
		case n == 2+lc:
			c.Ne = shortLe(body[n-1])
			c.HasLe = true
		default:
			return Command{}, perr("data length", 5+lc, "Lc=%d leaves %d trailing bytes (at most 1 Le byte allowed)", lc, n-1-lc)
		}
		c.Data = append([]byte(nil), body[1:1+lc]...)
		return c, nil
	}

	// Extended: body[0] == 00 and n >= 2.
	c.Extended = true
	switch {
	case n == 2:
		return Command{}, perr("Le", 5, "extended length field truncated: 00 then 1 byte")
	case n == 3: // case 2E
		c.Ne = extLe(body[1], body[2])
		c.HasLe = true
		return c, nil
	}
	lc := int(body[1])<<8 | int(body[2])
	if lc == 0 {
		return Command{}, perr("Lc", 5, "extended Lc 0000 followed by %d bytes", n-3)
	}
	switch {
	case n < 3+lc:
		return Command{}, perr("data length", 7, "Lc=%d but only %d data bytes", lc, n-3)
	case n == 3+lc: // case 3E
	case n == 4+lc:
		return Command{}, perr("Le", 7+lc, "extended Le needs 2 bytes, have 1")
	case n == 5+lc: // case 4E
		c.Ne = extLe(body[n-2], body[n-1])
		c.HasLe = true
	default:
		return Command{}, perr("data length", 7+lc, "Lc=%d leaves %d trailing bytes (at most 2 Le bytes allowed)", lc, n-3-lc)
	}
	c.Data = append([]byte(nil), body[3:3+lc]...)
	return c, nil
}

func shortLe(b byte) int {
	if b == 0 {
		return MaxShortNe
	}
	return int(b)
}

func extLe(hi, lo byte) int {
	n := int(hi)<<8 | int(lo)
	if n == 0 {
		return MaxExtNe
	}
	return n
}

// Bytes encodes the command. The short form is used when Nc <= 255 and
// Ne <= 256 unless Extended is set. Le is written when Ne > 0; HasLe with
// Ne == 0 is rejected because no Le value means "Le present, nothing
// expected". Case 1 has no extended form, so Extended is ignored there.
func (c Command) Bytes() ([]byte, error) {
	nc := len(c.Data)
	switch {
	case nc > MaxExtNc:
		return nil, perr("data length", 4, "%d data bytes exceed %d", nc, MaxExtNc)
	case c.Ne < 0 || c.Ne > MaxExtNe:
		return nil, perr("Le", 4, "Ne=%d out of range 0..%d", c.Ne, MaxExtNe)
	case c.HasLe && c.Ne == 0:
		return nil, perr("Le", 4, "HasLe set with Ne=0")
	}
	ext := c.Extended || nc > MaxShortNc || c.Ne > MaxShortNe
	out := make([]byte, 4, 4+3+nc+2)
	out[0], out[1], out[2], out[3] = c.CLA, c.INS, c.P1, c.P2
	if !ext {
		if nc > 0 {
			out = append(out, byte(nc))
			out = append(out, c.Data...)
		}
		if c.Ne > 0 {
			out = append(out, byte(c.Ne)) // 256 wraps to 00 as ISO wants
		}
		return out, nil
	}
	if nc == 0 && c.Ne == 0 {
		return out, nil
	}
	out = append(out, 0)
	if nc > 0 {
		out = append(out, byte(nc>>8), byte(nc))
		out = append(out, c.Data...)
	}
	if c.Ne > 0 {
		out = append(out, byte(c.Ne>>8), byte(c.Ne)) // 65536 wraps to 0000
	}
	return out, nil
}
