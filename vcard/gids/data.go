package gids

import (
	"slices"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
	"github.com/cardharness/cardharness/vcard/store"
)

// efATR is GidsApplet's EF.ATR (GET DATA 2F01 5C 00): initial access data
// 43 01 F4, card capabilities 47 03 08 01 80 (command chaining, no extended
// Lc/Le) and pre-issuing data 46 0C "MySmartLogon". It is kept byte for
// byte so that the Windows minidriver, which is inferred to read it, sees
// the same capabilities as with GidsApplet (docs/reference/gids-protocol.md §2.3).
var efATR = []byte{
	0x43, 0x01, 0xF4,
	0x47, 0x03, 0x08, 0x01, 0x80,
	0x46, 0x0C, 'M', 'y', 'S', 'm', 'a', 'r', 't', 'L', 'o', 'g', 'o', 'n',
}

// getData implements GET DATA (docs/reference/gids-protocol.md §2.3; GA
// GidsApplet.processGetData, GidsFileSystem.processGetData).
//
// P1P2 names the EF: 3FFF is the application (public key, PIN status),
// 2F01 EF.ATR, 0000 the current EF (6986 if none), FFFF is refused (6A86),
// anything else a DO container EF (6A82 if missing, 6981 if it is a key
// file, 6985 if not yet activated, 6982 if its GET DATA rule fails). The
// data field is a tag list 5C: 5C 02 <tag> returns that DO as a complete
// TLV with a minimal length (6A88 if absent); 5C 00 or 5C 01 5C returns
// every DO of the EF, in ascending tag order. A DO container EF read this
// way becomes the current EF, as in GA.
func (c *Card) getData(cmd apdu.Command) ([]byte, error) {
	switch uint16(cmd.P1)<<8 | uint16(cmd.P2) {
	case 0x3FFF:
		return c.getDataApplication(cmd)
	case 0x2F01:
		d := cmd.Data
		if len(d) == 2 && d[0] == 0x5C && d[1] == 0x00 {
			return slices.Clone(efATR), nil
		}
		return nil, apdu.SWReferenceDataNotUsable
	}
	fid, err := c.doFID(cmd)
	if err != nil {
		return nil, err
	}
	f, err := doEF(c.store, fid)
	if err != nil {
		return nil, err
	}
	if err := c.allowed(f, opGetData); err != nil {
		return nil, err
	}
	c.sec.currentEF = fid

	all, tag, err := parseTagList(cmd.Data)
	if err != nil {
		return nil, err
	}
	if all {
		return readAllDOs(c.store, fid)
	}
	key := doKey(fid, tag)
	b, ok := c.store.Get(key)
	if !ok {
		return nil, apdu.SWReferencedDataNotFound
	}
	v, err := decodeDO(key, b)
	if err != nil {
		return nil, err
	}
	return ber.Encode(tag, v), nil
}

// parseTagList reads the 5C tag list of a GET DATA: all=true for 5C 00 and
// 5C 01 5C, else the single tag asked for. Malformed: 6984.
func parseTagList(d []byte) (all bool, tag uint32, err error) {
	tlvs, perr := ber.Parse(d)
	if perr != nil {
		return false, 0, apdu.SWReferenceDataNotUsable
	}
	v, ok := findTLV(tlvs, 0x5C)
	if !ok {
		return false, 0, apdu.SWReferenceDataNotUsable
	}
	if len(v) == 0 || (len(v) == 1 && v[0] == 0x5C) {
		return true, 0, nil
	}
	t, n, perr := ber.ParseTag(v)
	if perr != nil || n != len(v) {
		return false, 0, apdu.SWReferenceDataNotUsable
	}
	return false, t, nil
}

// findTLV returns the value of the first TLV tagged tag.
func findTLV(tlvs []ber.TLV, tag uint32) ([]byte, bool) {
	for _, t := range tlvs {
		if t.Tag == tag {
			return t.Value, true
		}
	}
	return nil, false
}

// doEntry is one stored data object.
type doEntry struct {
	tag   uint32
	value []byte
}

// listDOs returns the DOs of EF fid in ascending tag order.
func listDOs(r reader, fid uint16) ([]doEntry, error) {
	var out []doEntry
	for _, k := range r.Keys(doPrefix(fid)) {
		tag, ok := parseDOTag(k, fid)
		if !ok || !ber.ValidTag(tag) {
			return nil, corrupt(k, "bad tag in key")
		}
		b, _ := r.Get(k)
		v, err := decodeDO(k, b)
		if err != nil {
			return nil, err
		}
		out = append(out, doEntry{tag, v})
	}
	slices.SortFunc(out, func(a, b doEntry) int {
		switch {
		case a.tag < b.tag:
			return -1
		case a.tag > b.tag:
			return 1
		}
		return 0
	})
	return out, nil
}

func readAllDOs(r reader, fid uint16) ([]byte, error) {
	dos, err := listDOs(r, fid)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, d := range dos {
		out = ber.Append(out, d.tag, d.value)
	}
	return out, nil
}

// getDataApplication answers GET DATA with P1P2=3FFF (docs/reference/gids-protocol.md
// §2.3, §2.5, §2.10; GA GidsApplet.processGetData): Lc=10 starting with 70
// is a public-key read (70 08 84 01 <kref> A5 03 7F 49 80; like GA only the
// length and the 70 are checked, since 7F 49 80 is not valid BER); 5C 02
// 7F71 or 7F72 returns the PIN status 7F7x 06 97 01 <tries left> 93 01
// <limit>; 5C 02 7F73 (PUK status) is 6A88, as the card has no PUK;
// anything else 6984. GET DATA 3FFF does not change the current EF.
func (c *Card) getDataApplication(cmd apdu.Command) ([]byte, error) {
	d := cmd.Data
	switch {
	case len(d) == 10 && d[0] == 0x70:
		return c.readPublicKey(d[4])
	case len(d) == 4 && d[0] == 0x5C && d[1] == 0x02:
		switch id := uint16(d[2])<<8 | uint16(d[3]); id {
		case 0x7F71, 0x7F72:
			p, _, err := loadPIN(c.store)
			if err != nil {
				return nil, err
			}
			return []byte{d[2], d[3], 0x06, 0x97, 0x01, p.tries, 0x93, 0x01, p.limit}, nil
		case 0x7F73:
			return nil, apdu.SWReferencedDataNotFound
		}
	}
	return nil, apdu.SWReferenceDataNotUsable
}

// putData implements PUT DATA (docs/reference/gids-protocol.md §2.4; GA
// GidsFileSystem.processPutData). P1P2=3FFF is key import (importKey);
// otherwise P1P2 names a DO container EF as for GET DATA (0000 = current
// EF, FFFF → 6A86, missing → 6A82, key file → 6981, not activated → 6985,
// PUT DATA rule → 6982) and the data field is exactly one complete BER-TLV
// (else 6984; command chaining is assembled by the session). The DO with
// that tag is replaced or created. Putting an empty value onto a DO that
// is already empty deletes it (GA semantics; GET DATA then answers 6A88).
// More than maxDOsPerEF DOs or maxEFContent bytes in the EF: 6A84. The EF
// becomes the current EF once its access rule has passed.
func (c *Card) putData(cmd apdu.Command) ([]byte, error) {
	if cmd.P1 == 0x3F && cmd.P2 == 0xFF {
		return c.importKey(cmd)
	}
	fid, err := c.doFID(cmd)
	if err != nil {
		return nil, err
	}
	selected := false
	err = c.update(func(tx *store.Tx) error {
		f, err := doEF(tx, fid)
		if err != nil {
			return err
		}
		if err := c.allowedIn(tx, f, opPutData); err != nil {
			return err
		}
		selected = true
		tlv, rest, perr := ber.ParseOne(cmd.Data)
		if perr != nil || len(rest) != 0 {
			return apdu.SWReferenceDataNotUsable
		}
		dos, err := listDOs(tx, fid)
		if err != nil {
			return err
		}
		size, exists := 0, false
		for _, d := range dos {
			if d.tag == tlv.Tag {
				exists = true
				if len(d.value) == 0 && len(tlv.Value) == 0 {
					tx.Delete(doKey(fid, tlv.Tag))
					return nil
				}
				continue
			}
			size += len(d.value)
		}
		if !exists && len(dos) >= maxDOsPerEF {
			return apdu.SWNotEnoughMemory
		}
		if size+len(tlv.Value) > maxEFContent {
			return apdu.SWNotEnoughMemory
		}
		tx.Put(doKey(fid, tlv.Tag), encodeDO(tlv.Value))
		return nil
	})
	if selected {
		c.sec.currentEF = fid
	}
	return nil, err
}

// doFID is the DO container EF that GET DATA's or PUT DATA's P1P2 names
// (after 3FFF, the application, is handled): FFFF is refused (6A86), 0000
// is the current EF (6986 if none).
func (c *Card) doFID(cmd apdu.Command) (uint16, error) {
	switch fid := uint16(cmd.P1)<<8 | uint16(cmd.P2); fid {
	case 0xFFFF:
		return 0, apdu.SWIncorrectP1P2
	case 0x0000:
		if c.sec.currentEF == 0 {
			return 0, apdu.SWCommandNotAllowedNoCurrentEF
		}
		return c.sec.currentEF, nil
	default:
		return fid, nil
	}
}
