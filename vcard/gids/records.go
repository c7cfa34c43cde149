package gids

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Store record layout. Every value starts with a format version byte
// (recordVersion); a record with another version, or one that does not
// decode, is reported as errCorrupt and the command touching it is answered
// 6F00 instead of panicking or guessing.
//
//	app/lifecycle   01 | state                      (absent = creation state)
//	pin             01 | tries left | try limit | PIN bytes (4..16)
//	                                              (absent = no PIN set yet)
//	ef/FFFF         01 | kind | state | FCP       one per EF created with CREATE
//	                                              FILE; FFFF = FID in upper-case
//	                                              hex; kind = file descriptor byte
//	                                              39 (DO container) or 18 (key);
//	                                              FCP = the complete 62 template as
//	                                              received, returned by SELECT P2=04
//	do/FFFF/TTTT    01 | value                    one per data object in DO
//	                                              container EF FFFF; TTTT = raw tag
//	                                              bytes in upper-case hex (DF1F, 5F2F,
//	                                              41); value without tag and length
//	key/FFFF        01 | 01 | 24-byte 3DES key    key material of key EF FFFF
//	key/FFFF        01 | 02 | PKCS#1 RSAPrivateKey DER
//	app/keygen      01 | count (uint32, big endian)   keys generated with
//	                                              Options.KeySeed so far (absent = 0)
//
// State values are GidsApplet's life-cycle bytes (GIDS v2 table 14):
// 01 creation, 07 operational (activated), 0F terminated.
const (
	recordVersion = 1

	recLifeCycle = "app/lifecycle"
	recPIN       = "pin"
	recKeyGen    = "app/keygen"
	prefixEF     = "ef/"
	prefixDO     = "do/"
	prefixKey    = "key/"
)

// errCorrupt marks a store record that does not decode.
var errCorrupt = errors.New("gids: corrupt store record")

func corrupt(key, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", errCorrupt, key, fmt.Sprintf(format, args...))
}

// reader is what both *store.Store and *store.Tx offer for reading.
type reader interface {
	Get(key string) ([]byte, bool)
	Keys(prefix string) []string
}

// The store keys: "ef/B081", "key/B081", "do/A010/", "do/A010/DF22"
// (FIDs as 4 upper-case hex digits, tags as %X). Built by hand, not with
// fmt: every APDU looks several up, and fmt was 4 % of a sweep.
func efKey(fid uint16) string {
	var b [16]byte
	return string(appendFID(append(b[:0], prefixEF...), fid))
}

func keyKey(fid uint16) string {
	var b [16]byte
	return string(appendFID(append(b[:0], prefixKey...), fid))
}

func doPrefix(fid uint16) string {
	var b [16]byte
	return string(append(appendFID(append(b[:0], prefixDO...), fid), '/'))
}

func doKey(fid uint16, tag uint32) string {
	var b [24]byte
	return string(appendHexUpper(append(appendFID(append(b[:0], prefixDO...), fid), '/'), tag))
}

// appendFID appends fid as %04X.
func appendFID(b []byte, fid uint16) []byte {
	const digits = "0123456789ABCDEF"
	return append(b, digits[fid>>12], digits[fid>>8&0xF], digits[fid>>4&0xF], digits[fid&0xF])
}

// appendHexUpper appends v as %X.
func appendHexUpper(b []byte, v uint32) []byte {
	n := len(b)
	b = strconv.AppendUint(b, uint64(v), 16)
	for i := n; i < len(b); i++ {
		if c := b[i]; 'a' <= c && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return b
}

// parseFIDKey extracts the FID from "ef/B081" or "key/B081".
func parseFIDKey(key, prefix string) (uint16, bool) {
	s, ok := strings.CutPrefix(key, prefix)
	if !ok || len(s) != 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 16)
	return uint16(v), err == nil
}

// parseDOTag extracts the tag from "do/A010/DF24".
func parseDOTag(key string, fid uint16) (uint32, bool) {
	s, ok := strings.CutPrefix(key, doPrefix(fid))
	if !ok || s == "" || len(s) > 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 32)
	return uint32(v), err == nil
}

// LifeCycle is the life-cycle state of the GIDS application (docs/reference/gids-protocol.md §4.1).
type LifeCycle byte

// Life-cycle states, with GidsApplet's encoding.
const (
	Creation    LifeCycle = 0x01 // fresh: no ACL authentication required, GA/RRC refused
	Operational LifeCycle = 0x07 // activated: access rules enforced
	Terminated  LifeCycle = 0x0F // TERMINATE DF done: every command answers 6285
)

func (l LifeCycle) String() string {
	switch l {
	case Creation:
		return "creation"
	case Operational:
		return "operational"
	case Terminated:
		return "terminated"
	}
	return fmt.Sprintf("LifeCycle(%#02x)", byte(l))
}

func loadLifeCycle(r reader) (LifeCycle, error) {
	b, ok := r.Get(recLifeCycle)
	if !ok {
		return Creation, nil
	}
	if len(b) != 2 || b[0] != recordVersion {
		return 0, corrupt(recLifeCycle, "bad length or version")
	}
	switch l := LifeCycle(b[1]); l {
	case Creation, Operational, Terminated:
		return l, nil
	}
	return 0, corrupt(recLifeCycle, "unknown state %#02x", b[1])
}

func encodeLifeCycle(l LifeCycle) []byte { return []byte{recordVersion, byte(l)} }

// loadKeyGenCount reads how many seeded keys the card has generated.
func loadKeyGenCount(r reader) (uint32, error) {
	b, ok := r.Get(recKeyGen)
	if !ok {
		return 0, nil
	}
	if len(b) != 5 || b[0] != recordVersion {
		return 0, corrupt(recKeyGen, "bad length or version")
	}
	return binary.BigEndian.Uint32(b[1:]), nil
}

func encodeKeyGenCount(n uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{recordVersion}, n)
}

// PIN parameters (docs/reference/gids-protocol.md §4.3; GA GidsPINManager).
const (
	pinMinLen   = 4
	pinMaxLen   = 16
	pinTryLimit = 3
)

type pinRecord struct {
	tries, limit byte
	value        []byte
}

// loadPIN returns the PIN record; ok is false when no PIN has been set.
func loadPIN(r reader) (p pinRecord, ok bool, err error) {
	b, ok := r.Get(recPIN)
	if !ok {
		return pinRecord{tries: pinTryLimit, limit: pinTryLimit}, false, nil
	}
	if len(b) < 3+pinMinLen || len(b) > 3+pinMaxLen || b[0] != recordVersion {
		return pinRecord{}, false, corrupt(recPIN, "bad length or version")
	}
	p = pinRecord{tries: b[1], limit: b[2], value: b[3:]}
	if p.limit == 0 || p.limit > 15 || p.tries > p.limit {
		return pinRecord{}, false, corrupt(recPIN, "tries %d / limit %d", p.tries, p.limit)
	}
	return p, true, nil
}

func (p pinRecord) encode() []byte {
	return append([]byte{recordVersion, p.tries, p.limit}, p.value...)
}

// File descriptor bytes (tag 82) of the EFs the card can create.
const (
	kindDO  = 0x39 // BER-TLV data-object container
	kindKey = 0x18 // key file (CRT)
)

// efRecord is a stored EF: its type, life-cycle state and FCP.
type efRecord struct {
	fid   uint16
	kind  byte
	state LifeCycle // Creation or Operational
	fcp   []byte    // complete 62 template
	// Parsed from fcp when loaded:
	acl []byte // value of 8C, nil if absent
	crt []byte // value of A5 (key EFs)
}

func (e *efRecord) encode() []byte {
	return append([]byte{recordVersion, e.kind, byte(e.state)}, e.fcp...)
}

func loadEF(r reader, fid uint16) (*efRecord, bool, error) {
	key := efKey(fid)
	b, ok := r.Get(key)
	if !ok {
		return nil, false, nil
	}
	if len(b) < 3 || b[0] != recordVersion {
		return nil, false, corrupt(key, "bad length or version")
	}
	e := &efRecord{fid: fid, kind: b[1], state: LifeCycle(b[2]), fcp: b[3:]}
	if e.kind != kindDO && e.kind != kindKey {
		return nil, false, corrupt(key, "unknown file kind %#02x", e.kind)
	}
	if e.state != Creation && e.state != Operational {
		return nil, false, corrupt(key, "unknown state %#02x", b[2])
	}
	p, err := parseFCP(e.fcp)
	if err != nil {
		return nil, false, corrupt(key, "FCP: %v", err)
	}
	if p.fid != fid || p.kind != e.kind {
		return nil, false, corrupt(key, "FCP names FID %04X kind %02X", p.fid, p.kind)
	}
	e.acl, e.crt = p.acl, p.crt
	return e, true, nil
}

// countEFs returns the number of stored EFs.
func countEFs(r reader) int { return len(r.Keys(prefixEF)) }

// Key record types.
const (
	keyTypeDES3 = 0x01 // 24-byte three-key 3DES (admin key)
	keyTypeRSA  = 0x02 // RSA private key
)

func encodeDESKey(k []byte) []byte {
	return append([]byte{recordVersion, keyTypeDES3}, k...)
}

func encodeRSAKey(k *rsa.PrivateKey) []byte {
	return append([]byte{recordVersion, keyTypeRSA}, x509.MarshalPKCS1PrivateKey(k)...)
}

// keyKind returns the key type byte of a raw key record.
func keyKind(key string, b []byte) (byte, error) {
	if len(b) < 2 || b[0] != recordVersion {
		return 0, corrupt(key, "bad length or version")
	}
	switch b[1] {
	case keyTypeDES3:
		if len(b) != 2+24 {
			return 0, corrupt(key, "3DES key of %d bytes", len(b)-2)
		}
	case keyTypeRSA:
	default:
		return 0, corrupt(key, "unknown key type %#02x", b[1])
	}
	return b[1], nil
}

func decodeRSAKey(key string, b []byte) (*rsa.PrivateKey, error) {
	t, err := keyKind(key, b)
	if err != nil {
		return nil, err
	}
	if t != keyTypeRSA {
		return nil, corrupt(key, "not an RSA key")
	}
	k, err := x509.ParsePKCS1PrivateKey(b[2:])
	if err != nil {
		return nil, corrupt(key, "%v", err)
	}
	if !rsaSizeSupported(k.N.BitLen()) {
		return nil, corrupt(key, "RSA key of %d bits", k.N.BitLen())
	}
	return k, nil
}

func encodeDO(value []byte) []byte { return append([]byte{recordVersion}, value...) }

func decodeDO(key string, b []byte) ([]byte, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return nil, corrupt(key, "bad length or version")
	}
	return b[1:], nil
}
