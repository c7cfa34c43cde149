package fs

import (
	"encoding/binary"
	"fmt"
)

// Keymap geometry (docs/reference/gids-protocol.md §3.6, OpenSC card-gids.h
// gids_keymap_record: int, u8, u8, u16, u16 padded to the int's alignment).
const (
	KeyMapVersion  = 0x01
	KeyRecordSize  = 12
	offKeyAlg      = 4
	offKeyType     = 5
	offKeyRef      = 6
	offKeyUnknown  = 8
	keyRefDeleted  = 0xFFFF
	keyUnknownFFFF = 0xFFFF
)

// Keymap record states and key types.
const (
	KeyStateDeleted int32 = 0
	KeyStateValid   int32 = 1

	KeyTypeExchange  byte = 0x9A // AT_KEYEXCHANGE
	KeyTypeSignature byte = 0x9C // AT_SIGNATURE
)

// KeyRecord is one keymap record. All fields are kept as read, so that a
// rewrite preserves values whose meaning nobody has documented.
type KeyRecord struct {
	State   int32
	AlgID   byte
	KeyType byte
	KeyRef  uint16 // 0xB000 + key reference, FFFF when deleted
	Unknown uint16 // always FFFF in every observed record
}

// NewKeyRecord returns the record OpenSC and Windows write for a new key
// in container index.
func NewKeyRecord(index int, spec KeySpec, bits int) (KeyRecord, error) {
	if index < 0 || index > MaxContainerIndex {
		return KeyRecord{}, fmt.Errorf("fs: container index %d outside 0..%d", index, MaxContainerIndex)
	}
	t, err := keyTypeOf(spec)
	if err != nil {
		return KeyRecord{}, err
	}
	alg, err := AlgID(bits)
	if err != nil {
		return KeyRecord{}, err
	}
	return KeyRecord{
		State:   KeyStateValid,
		AlgID:   alg,
		KeyType: t,
		KeyRef:  0xB000 + FirstKeyRef + uint16(index),
		Unknown: keyUnknownFFFF,
	}, nil
}

// DeletedKeyRecord returns the record OpenSC writes when it deletes a key
// (00 00 00 00 00 00 FF FF FF FF 00 00): unlike the cmapfile record, not
// all zeros.
func DeletedKeyRecord() KeyRecord {
	return KeyRecord{State: KeyStateDeleted, KeyRef: keyRefDeleted, Unknown: keyUnknownFFFF}
}

func keyTypeOf(spec KeySpec) (byte, error) {
	switch spec {
	case AT_KEYEXCHANGE:
		return KeyTypeExchange, nil
	case AT_SIGNATURE:
		return KeyTypeSignature, nil
	}
	return 0, fmt.Errorf("fs: key spec %v has no GIDS key type", spec)
}

// IsValid reports whether the record describes a key.
func (r KeyRecord) IsValid() bool { return r.State == KeyStateValid }

// KeyMap is the GIDS keymap (A000/DF20), one record per cmapfile record.
// OpenSC writes it but never reads it to find keys; Windows presumably
// does, which is why it must stay in step with the cmapfile.
type KeyMap []KeyRecord

// ParseKeyMap decodes a keymap. A zero-length DO is an empty keymap:
// Windows writes DF20 00 after deleting its only key. Otherwise the
// version byte must be 01 and the rest whole records; the two padding
// bytes of each record are ignored.
func ParseKeyMap(b []byte) (KeyMap, error) {
	if len(b) == 0 {
		return KeyMap{}, nil
	}
	if b[0] != KeyMapVersion {
		return nil, formatErr("keymap", 0, "version %02X, want 01", b[0])
	}
	body := b[1:]
	if len(body)%KeyRecordSize != 0 {
		return nil, formatErr("keymap", len(b)-len(body)%KeyRecordSize,
			"%d record bytes is not a multiple of the %d-byte record (%d trailing bytes)",
			len(body), KeyRecordSize, len(body)%KeyRecordSize)
	}
	m := make(KeyMap, len(body)/KeyRecordSize)
	for i := range m {
		rec := body[i*KeyRecordSize:]
		m[i] = KeyRecord{
			State:   int32(binary.LittleEndian.Uint32(rec)),
			AlgID:   rec[offKeyAlg],
			KeyType: rec[offKeyType],
			KeyRef:  binary.LittleEndian.Uint16(rec[offKeyRef:]),
			Unknown: binary.LittleEndian.Uint16(rec[offKeyUnknown:]),
		}
	}
	return m, nil
}

// Bytes encodes m. A keymap without records encodes as a zero-length DO,
// as Windows writes it. (OpenSC 0.23 counts keymap records as
// (length−1)/12 on an unsigned size, which is meaningless for a
// zero-length DO; a harness that wants OpenSC to keep working should not
// shrink the keymap to nothing while the cmapfile has records — which
// CheckConsistent reports anyway.)
func (m KeyMap) Bytes() []byte {
	if len(m) == 0 {
		return []byte{}
	}
	b := make([]byte, 1+len(m)*KeyRecordSize)
	b[0] = KeyMapVersion
	for i, r := range m {
		rec := b[1+i*KeyRecordSize:]
		binary.LittleEndian.PutUint32(rec, uint32(r.State))
		rec[offKeyAlg] = r.AlgID
		rec[offKeyType] = r.KeyType
		binary.LittleEndian.PutUint16(rec[offKeyRef:], r.KeyRef)
		binary.LittleEndian.PutUint16(rec[offKeyUnknown:], r.Unknown)
	}
	return b
}

// Validate checks each record against the values the two known writers
// produce: state 0 or 1; a valid record has an RSA size id, a key type
// 9A/9C, the key reference of its own index and FFFF in the unknown
// field. Deleted records are only checked for their state, because only
// OpenSC's deletion format has been observed.
func (m KeyMap) Validate() error {
	for i, r := range m {
		base := 1 + i*KeyRecordSize
		switch r.State {
		case KeyStateDeleted:
			continue
		case KeyStateValid:
		default:
			return formatErr("keymap", base, "record %d state: %d (0 deleted or 1 valid)", i, r.State)
		}
		if _, err := AlgIDBits(r.AlgID); err != nil {
			return formatErr("keymap", base+offKeyAlg, "record %d algid: %02X is not an RSA size id (06..09)", i, r.AlgID)
		}
		if r.KeyType != KeyTypeExchange && r.KeyType != KeyTypeSignature {
			return formatErr("keymap", base+offKeyType, "record %d key type: %02X (9A AT_KEYEXCHANGE or 9C AT_SIGNATURE)", i, r.KeyType)
		}
		if want := 0xB000 + FirstKeyRef + i; int(r.KeyRef) != want {
			return formatErr("keymap", base+offKeyRef, "record %d key reference: %04X, want %04X", i, r.KeyRef, want)
		}
		if r.Unknown != keyUnknownFFFF {
			return formatErr("keymap", base+offKeyUnknown, "record %d unknown field: %04X, every known writer puts FFFF", i, r.Unknown)
		}
	}
	return nil
}

// CheckConsistent reports whether cmap and km describe the same
// containers. The record counts must be equal: OpenSC refuses to create
// or delete a container otherwise. Beyond that it checks what both known
// writers keep in step when they create or delete a container
// (docs/reference/gids-protocol.md §5.2, §5.5): a valid cmapfile record has a valid key
// record whose type, size id and key reference match it, and a deleted
// one has a deleted key record. A record with the valid bit but no
// usable size (both or neither set) is reported, since no key record can
// match it.
func CheckConsistent(cmap ContainerMap, km KeyMap) error {
	if len(cmap) != len(km) {
		return &ConsistencyError{Container: -1, Msg: fmt.Sprintf("cmapfile has %d records, keymap %d", len(cmap), len(km))}
	}
	for i, c := range cmap {
		k := km[i]
		if !c.IsValid() {
			if k.State != KeyStateDeleted {
				return &ConsistencyError{Container: i, Msg: fmt.Sprintf("cmapfile record is not valid but keymap state is %d", k.State)}
			}
			continue
		}
		if k.State != KeyStateValid {
			return &ConsistencyError{Container: i, Msg: fmt.Sprintf("cmapfile record is valid but keymap state is %d", k.State)}
		}
		spec, bits, ok := c.Key()
		if !ok {
			return &ConsistencyError{Container: i, Msg: fmt.Sprintf("cmapfile record has sig %d / exchange %d bits; exactly one must be set",
				c.SigKeySizeBits, c.KeyExchangeKeySizeBits)}
		}
		if want, _ := keyTypeOf(spec); k.KeyType != want {
			return &ConsistencyError{Container: i, Msg: fmt.Sprintf("cmapfile says %v, keymap key type is %02X", spec, k.KeyType)}
		}
		if kb, err := AlgIDBits(k.AlgID); err != nil || kb != bits {
			return &ConsistencyError{Container: i, Msg: fmt.Sprintf("cmapfile says %d bits, keymap algid is %02X", bits, k.AlgID)}
		}
		if want := 0xB000 + FirstKeyRef + i; int(k.KeyRef) != want {
			return &ConsistencyError{Container: i, Msg: fmt.Sprintf("keymap key reference %04X, want %04X", k.KeyRef, want)}
		}
	}
	return nil
}
