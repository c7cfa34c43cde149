// Package ber reads and writes the BER-TLV subset that smart cards use
// (ISO 7816-4 §5.2, a profile of X.690 BER).
//
// The GIDS card stores every minidriver file as a BER-TLV data object
// (tags DF1F…DF2x) inside DO-container EFs, answers GET DATA with the
// complete TLV, receives whole TLVs in PUT DATA, and exchanges key
// material in templates such as 7F49 (docs/reference/gids-protocol.md §2.3, §2.4,
// §2.10, §3.2). This package is that shared layer; it does not interpret
// any tag.
//
// Tags are represented as a uint32 holding their raw bytes, so
// 0x5F2F, 0x7F49 and 0xDF24 are written the way traces and the
// reference show them. Tags of up to four bytes are supported.
//
// Decoding choices:
//   - Lengths 00..7F, 81 xx, 82 xxxx, 83 xxxxxx and 84 xxxxxxxx are
//     accepted. Non-minimal forms (81 05, 82 00 05) are accepted because
//     hosts send them and X.690 BER permits them; Encode always writes the
//     minimal form, which OpenSC also produces and which GET DATA answers
//     must use (docs/reference/gids-protocol.md §2.3).
//   - The indefinite length 80 is rejected: ISO 7816-4 does not allow it
//     in card data objects, and a DO store cannot hold one.
//   - 00 or FF where a tag should start is an error. ISO 7816-4 lets such
//     bytes pad the space between objects, but docs/reference/gids-protocol.md records no
//     GIDS implementation doing so (an EF's DOs are returned back to back,
//     §2.3), so a padding byte here means corrupt data and is reported
//     rather than skipped.
//   - A length that runs past the input is an error; nothing is
//     truncated silently.
//
// Errors are *Error values carrying the byte offset of the problem.
// Parsed values alias the input slice; copy them if the input buffer is
// reused.
package ber

import (
	"fmt"
	"math"
)

// TLV is one data object: its tag and the raw bytes of its value. For a
// constructed tag the value is itself a sequence of TLVs; use Parse on it.
type TLV struct {
	Tag   uint32
	Value []byte
}

// Error reports malformed BER-TLV input at Offset (relative to the slice
// given to the function that returned it).
type Error struct {
	Offset int
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("ber: offset %d: %s", e.Offset, e.Msg)
}

func errAt(off int, format string, args ...any) *Error {
	return &Error{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// maxTagBytes is what a uint32 can hold.
const maxTagBytes = 4

// ParseTag reads the tag at the start of b and returns it with the number
// of bytes it occupied. It is exported for tag lists, where tags appear
// without lengths (e.g. the 7F49 in GIDS's public-key request
// 70 08 84 01 kk A5 03 7F 49 80, docs/reference/gids-protocol.md §2.10).
func ParseTag(b []byte) (tag uint32, n int, err error) {
	if len(b) == 0 {
		return 0, 0, errAt(0, "missing tag")
	}
	if b[0] == 0x00 || b[0] == 0xFF {
		return 0, 0, errAt(0, "byte %02X where a tag should start (padding is not accepted)", b[0])
	}
	tag = uint32(b[0])
	n = 1
	if b[0]&0x1F != 0x1F {
		return tag, n, nil
	}
	for {
		if n == len(b) {
			return 0, 0, errAt(n, "tag truncated")
		}
		if n == maxTagBytes {
			return 0, 0, errAt(0, "tag longer than %d bytes", maxTagBytes)
		}
		c := b[n]
		tag = tag<<8 | uint32(c)
		n++
		if c&0x80 == 0 {
			return tag, n, nil
		}
	}
}

// ParseLength reads a length field at the start of b and returns the
// length with the number of bytes the field occupied. It does not check
// that the value fits in b.
func ParseLength(b []byte) (length int, n int, err error) {
	if len(b) == 0 {
		return 0, 0, errAt(0, "missing length")
	}
	first := b[0]
	switch {
	case first < 0x80:
		return int(first), 1, nil
	case first == 0x80:
		return 0, 0, errAt(0, "indefinite length (80) not allowed")
	case first > 0x84:
		return 0, 0, errAt(0, "length form %02X not supported (at most 84 + 4 bytes)", first)
	}
	k := int(first & 0x7F)
	if len(b) < 1+k {
		return 0, 0, errAt(0, "length field %02X needs %d more bytes, have %d", first, k, len(b)-1)
	}
	var v uint64
	for _, c := range b[1 : 1+k] {
		v = v<<8 | uint64(c)
	}
	if v > math.MaxInt {
		return 0, 0, errAt(0, "length %d too large", v)
	}
	return int(v), 1 + k, nil
}

// ParseOne decodes the first TLV in b and returns the bytes after it.
func ParseOne(b []byte) (tlv TLV, rest []byte, err error) {
	tag, tn, err := ParseTag(b)
	if err != nil {
		return TLV{}, nil, err
	}
	l, ln, err := ParseLength(b[tn:])
	if err != nil {
		e := err.(*Error)
		e.Offset += tn
		return TLV{}, nil, e
	}
	start := tn + ln
	if l > len(b)-start {
		return TLV{}, nil, errAt(tn, "length %d exceeds the %d bytes left", l, len(b)-start)
	}
	end := start + l
	return TLV{Tag: tag, Value: b[start:end:end]}, b[end:], nil
}

// Parse decodes a sequence of TLVs filling all of b. It does not descend
// into constructed values. An empty b yields no TLVs and no error.
func Parse(b []byte) ([]TLV, error) {
	var out []TLV
	off := 0
	for off < len(b) {
		t, rest, err := ParseOne(b[off:])
		if err != nil {
			e := err.(*Error)
			e.Offset += off
			return nil, e
		}
		out = append(out, t)
		off = len(b) - len(rest)
	}
	return out, nil
}

// Find returns the value of the first TLV tagged tag in the sequence b,
// without descending into constructed values. It stops at the first match,
// as OpenSC's sc_asn1_find_tag does, so malformed data after the match is
// not reported; malformed data before it is.
func Find(b []byte, tag uint32) (value []byte, ok bool, err error) {
	off := 0
	for off < len(b) {
		t, rest, err := ParseOne(b[off:])
		if err != nil {
			e := err.(*Error)
			e.Offset += off
			return nil, false, e
		}
		if t.Tag == tag {
			return t.Value, true, nil
		}
		off = len(b) - len(rest)
	}
	return nil, false, nil
}

// TagBytes returns the raw bytes of tag, i.e. tag without its leading
// zero bytes. Tag 0 yields a single 00 byte, which is not a valid tag.
func TagBytes(tag uint32) []byte {
	return appendTag(nil, tag)
}

func appendTag(dst []byte, tag uint32) []byte {
	switch {
	case tag > 0xFFFFFF:
		return append(dst, byte(tag>>24), byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFFFF:
		return append(dst, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFF:
		return append(dst, byte(tag>>8), byte(tag))
	}
	return append(dst, byte(tag))
}

// ValidTag reports whether tag's bytes form exactly one well-formed tag,
// i.e. whether Encode(tag, v) will parse back.
func ValidTag(tag uint32) bool {
	tb := TagBytes(tag)
	t, n, err := ParseTag(tb)
	return err == nil && n == len(tb) && t == tag
}

// IsConstructed reports whether tag has the constructed bit (b6 of its
// first byte) set, i.e. whether its value is a TLV sequence (e.g. 7F49,
// 70, A5, 62) rather than primitive data (e.g. 5F2F, DF24, 81).
func IsConstructed(tag uint32) bool {
	return TagBytes(tag)[0]&0x20 != 0
}

// EncodeLength returns the minimal length field for n. It panics if n is
// negative or above 0xFFFFFFFF, which no card object can be.
func EncodeLength(n int) []byte {
	return appendLength(nil, n)
}

func appendLength(dst []byte, n int) []byte {
	switch {
	case n < 0 || uint64(n) > math.MaxUint32:
		panic(fmt.Sprintf("ber: length %d out of range", n))
	case n < 0x80:
		return append(dst, byte(n))
	case n <= 0xFF:
		return append(dst, 0x81, byte(n))
	case n <= 0xFFFF:
		return append(dst, 0x82, byte(n>>8), byte(n))
	case n <= 0xFFFFFF:
		return append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// Append appends the TLV encoding of tag and value to dst, with a minimal
// length. The tag is written as given (see ValidTag).
func Append(dst []byte, tag uint32, value []byte) []byte {
	dst = appendTag(dst, tag)
	dst = appendLength(dst, len(value))
	return append(dst, value...)
}

// Encode returns the TLV encoding of tag and value with a minimal length.
func Encode(tag uint32, value []byte) []byte {
	return Append(make([]byte, 0, 4+5+len(value)), tag, value)
}
