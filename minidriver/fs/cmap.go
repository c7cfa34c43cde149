package fs

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// CONTAINER_MAP_RECORD geometry (docs/reference/minidriver-semantics.md §1.1,
// docs/reference/gids-protocol.md §3.6).
const (
	ContainerRecordSize = 86
	guidUnits           = 40 // WCHAR wszGuid[40]
	MaxGUIDLen          = guidUnits - 1

	offFlags    = 80
	offReserved = 81
	offSigBits  = 82
	offKxBits   = 84
)

// bFlags bits.
const (
	ContainerValid   byte = 0x01
	ContainerDefault byte = 0x02
)

// ContainerRecord is one CONTAINER_MAP_RECORD. The zero value is a deleted
// (zeroed) record.
type ContainerRecord struct {
	// GUID is the container name (wszGuid without its terminator): a GUID
	// string when Windows created the container, the key label when
	// OpenSC did. At most 39 UTF-16 code units, no NUL, no '\' (the
	// name is embedded in "\\.\reader\container" paths).
	GUID string
	// Flags is bFlags, kept whole: bits other than valid/default are not
	// defined, and keeping them means a rewrite never changes them.
	Flags                  byte
	Reserved               byte
	SigKeySizeBits         uint16
	KeyExchangeKeySizeBits uint16
}

// IsValid reports whether the record describes a container.
func (r ContainerRecord) IsValid() bool { return r.Flags&ContainerValid != 0 }

// IsDefault reports whether the record is a valid default container; a
// default bit on an invalid record means nothing to Base CSP.
func (r ContainerRecord) IsDefault() bool {
	return r.Flags&(ContainerValid|ContainerDefault) == ContainerValid|ContainerDefault
}

// Key reports the container's key as OpenSC derives it
// (gids_get_container_detail): exactly one of the two sizes must be set;
// a record with both or neither has no usable key.
func (r ContainerRecord) Key() (spec KeySpec, bits int, ok bool) {
	switch {
	case !r.IsValid():
		return 0, 0, false
	case r.KeyExchangeKeySizeBits != 0 && r.SigKeySizeBits == 0:
		return AT_KEYEXCHANGE, int(r.KeyExchangeKeySizeBits), true
	case r.SigKeySizeBits != 0 && r.KeyExchangeKeySizeBits == 0:
		return AT_SIGNATURE, int(r.SigKeySizeBits), true
	}
	return 0, 0, false
}

// ContainerMap is the cmapfile: the record index is the container index,
// so the slice is never packed (Zero instead of removing).
type ContainerMap []ContainerRecord

// ParseContainerMap decodes a cmapfile. An empty file has no records (that
// is the state after gids-tool --initialize). Parsing checks what is
// needed to represent a record faithfully: the length, the GUID
// terminator, UTF-16 well-formedness and the forbidden '\'. Flag semantics
// (one default, …) are checked by Validate, so that a harness can still
// read — and report on — a card a faulty writer left behind.
//
// Code units after the terminator are ignored, as every C reader does;
// Bytes writes zeros there.
func ParseContainerMap(b []byte) (ContainerMap, error) {
	if len(b)%ContainerRecordSize != 0 {
		return nil, formatErr("cmapfile", len(b)-len(b)%ContainerRecordSize,
			"%d bytes is not a multiple of the %d-byte record (%d trailing bytes)",
			len(b), ContainerRecordSize, len(b)%ContainerRecordSize)
	}
	m := make(ContainerMap, len(b)/ContainerRecordSize)
	for i := range m {
		base := i * ContainerRecordSize
		rec := b[base : base+ContainerRecordSize]
		guid, err := decodeGUID(rec[:2*guidUnits], i, base)
		if err != nil {
			return nil, err
		}
		m[i] = ContainerRecord{
			GUID:                   guid,
			Flags:                  rec[offFlags],
			Reserved:               rec[offReserved],
			SigKeySizeBits:         binary.LittleEndian.Uint16(rec[offSigBits:]),
			KeyExchangeKeySizeBits: binary.LittleEndian.Uint16(rec[offKxBits:]),
		}
	}
	return m, nil
}

func decodeGUID(raw []byte, rec, base int) (string, error) {
	units := make([]uint16, 0, guidUnits)
	for k := 0; ; k++ {
		if k == guidUnits {
			return "", formatErr("cmapfile", base, "record %d wszGuid: no NUL terminator in %d code units", rec, guidUnits)
		}
		u := binary.LittleEndian.Uint16(raw[2*k:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	for k := 0; k < len(units); k++ {
		u := units[k]
		switch {
		case u == '\\':
			return "", formatErr("cmapfile", base+2*k, "record %d wszGuid: '\\' at code unit %d (not allowed in container names)", rec, k)
		case u >= 0xD800 && u < 0xDC00:
			if k+1 < len(units) && units[k+1] >= 0xDC00 && units[k+1] < 0xE000 {
				k++
				continue
			}
			return "", formatErr("cmapfile", base+2*k, "record %d wszGuid: unpaired high surrogate %04X at code unit %d", rec, u, k)
		case u >= 0xDC00 && u < 0xE000:
			return "", formatErr("cmapfile", base+2*k, "record %d wszGuid: unpaired low surrogate %04X at code unit %d", rec, u, k)
		}
	}
	return string(utf16.Decode(units)), nil
}

// encodeGUID returns the UTF-16 code units of s or an error saying why s
// cannot be a wszGuid.
func encodeGUID(s string, rec, base int) ([]uint16, error) {
	if !utf8.ValidString(s) {
		return nil, formatErr("cmapfile", base, "record %d wszGuid: %q is not valid UTF-8", rec, s)
	}
	for _, r := range s {
		switch r {
		case 0:
			return nil, formatErr("cmapfile", base, "record %d wszGuid: contains NUL", rec)
		case '\\':
			return nil, formatErr("cmapfile", base, "record %d wszGuid: contains '\\' (not allowed in container names)", rec)
		}
	}
	units := utf16.Encode([]rune(s))
	if len(units) > MaxGUIDLen {
		return nil, formatErr("cmapfile", base, "record %d wszGuid: %d UTF-16 code units, at most %d fit with the terminator", rec, len(units), MaxGUIDLen)
	}
	return units, nil
}

// Bytes encodes m. It fails only for a GUID that the record cannot hold.
func (m ContainerMap) Bytes() ([]byte, error) {
	b := make([]byte, len(m)*ContainerRecordSize)
	for i, r := range m {
		base := i * ContainerRecordSize
		units, err := encodeGUID(r.GUID, i, base)
		if err != nil {
			return nil, err
		}
		for k, u := range units {
			binary.LittleEndian.PutUint16(b[base+2*k:], u)
		}
		b[base+offFlags] = r.Flags
		b[base+offReserved] = r.Reserved
		binary.LittleEndian.PutUint16(b[base+offSigBits:], r.SigKeySizeBits)
		binary.LittleEndian.PutUint16(b[base+offKxBits:], r.KeyExchangeKeySizeBits)
	}
	return b, nil
}

// Valid reports whether record i exists and has the valid bit.
func (m ContainerMap) Valid(i int) bool { return i >= 0 && i < len(m) && m[i].IsValid() }

// FirstFree returns the index a new container gets, following OpenSC
// (gids_select_key_reference) and Base CSP: the first record whose valid
// bit is clear, else len(m) (append a record). It returns -1 when
// appending would need a key reference beyond 0xFF.
func (m ContainerMap) FirstFree() int {
	for i, r := range m {
		if !r.IsValid() {
			return i
		}
	}
	if len(m) > MaxContainerIndex {
		return -1
	}
	return len(m)
}

// Default returns the index of the first valid record with the default
// bit, or -1. Validate reports a map with more than one.
func (m ContainerMap) Default() int {
	for i, r := range m {
		if r.IsDefault() {
			return i
		}
	}
	return -1
}

// SetDefault makes valid record i the only default: Windows logon uses
// the default container, so renewal must move the flag rather than add a
// second one (docs/reference/minidriver-semantics.md "ten things" 8). The bit is cleared
// on every other record, invalid ones included.
func (m ContainerMap) SetDefault(i int) error {
	if i < 0 || i >= len(m) {
		return formatErr("cmapfile", 0, "SetDefault(%d): no such record (%d records)", i, len(m))
	}
	if !m[i].IsValid() {
		return formatErr("cmapfile", i*ContainerRecordSize+offFlags, "SetDefault(%d): record %d bFlags: not a valid container", i, i)
	}
	for k := range m {
		m[k].Flags &^= ContainerDefault
	}
	m[i].Flags |= ContainerDefault
	return nil
}

// Zero deletes container i the way MS-FS and OpenSC do: the record becomes
// all zeros and stays in place, because its index is the container's
// identity (key reference, certificate file name).
func (m ContainerMap) Zero(i int) error {
	if i < 0 || i >= len(m) {
		return formatErr("cmapfile", 0, "Zero(%d): no such record (%d records)", i, len(m))
	}
	m[i] = ContainerRecord{}
	return nil
}

// Validate checks the rules MS-FS states for the file as a whole: the
// default bit only on a valid record, and exactly one valid default
// whenever there is a valid container (a card without one is unusable
// for logon, docs/reference/minidriver-semantics.md §2.8 T11). It also rejects two valid
// containers with the same name: containers are opened by name, and
// OpenSC's driver notes that GIDS container names must be unique. A
// cmapfile OpenSC leaves after deleting the default container fails here
// on purpose.
func (m ContainerMap) Validate() error {
	def, anyValid := -1, false
	names := make(map[string]int)
	for i, r := range m {
		off := i*ContainerRecordSize + offFlags
		if r.Flags&ContainerDefault != 0 && !r.IsValid() {
			return formatErr("cmapfile", off, "record %d bFlags %02X: default bit on an invalid record", i, r.Flags)
		}
		if !r.IsValid() {
			continue
		}
		anyValid = true
		if r.IsDefault() {
			if def >= 0 {
				return formatErr("cmapfile", off, "record %d bFlags %02X: second default container (record %d is default)", i, r.Flags, def)
			}
			def = i
		}
		if j, dup := names[r.GUID]; dup {
			return formatErr("cmapfile", i*ContainerRecordSize, "record %d wszGuid: %q already names valid record %d", i, r.GUID, j)
		}
		names[r.GUID] = i
	}
	if anyValid && def < 0 {
		return formatErr("cmapfile", 0, "no valid default container among the valid records")
	}
	return nil
}
