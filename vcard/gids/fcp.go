package gids

import (
	"errors"
	"fmt"

	"github.com/cardharness/cardharness/vcard/ber"
)

// Fixed templates of the application DF (docs/reference/gids-protocol.md §1.1, §1.5; GA
// GidsApplet constructor; MS-INBOX "DF FCP", "DF FMD").
var (
	// aid is the full GIDS v2 application identifier: Microsoft RID,
	// "BTFY", version 02, application-reserved 01.
	aid = []byte{0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59, 0x02, 0x01}

	// appFCI is answered to SELECT with P2=00: application template with
	// the AID and discretionary data 73 { 40 01 C0 } (mutual and external
	// admin authentication supported).
	appFCI = []byte{
		0x61, 0x12,
		0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59, 0x02, 0x01,
		0x73, 0x03, 0x40, 0x01, 0xC0,
	}

	// appFCP is answered to SELECT with P2=04: DF descriptor 38 and the
	// compact access rule 8C 03 03 30 30 (create EF, delete child: PIN or
	// admin).
	appFCP = []byte{0x62, 0x08, 0x82, 0x01, 0x38, 0x8C, 0x03, 0x03, 0x30, 0x30}

	// appFMD is answered to SELECT with P2=08: PIN usage policy 60 and
	// 7F65 { 80 00 } (meaning undocumented, kept byte for byte).
	appFMD = []byte{0x64, 0x09, 0x5F, 0x2F, 0x01, 0x60, 0x7F, 0x65, 0x02, 0x80, 0x00}

	// appACL is the 8C value of appFCP.
	appACL = []byte{0x03, 0x30, 0x30}
)

// aidMinMatch is the shortest DF name accepted as a (prefix) match of aid:
// the 9-byte MS GIDS AID without version and reserved byte, which Windows
// sends (docs/reference/gids-protocol.md §1.4).
const aidMinMatch = 9

// matchAID reports whether name selects the GIDS application: a prefix of
// the full AID of at least 9 bytes.
func matchAID(name []byte) bool {
	if len(name) < aidMinMatch || len(name) > len(aid) {
		return false
	}
	for i, b := range name {
		if aid[i] != b {
			return false
		}
	}
	return true
}

// Reserved FIDs that CREATE FILE refuses: the application (3FFF and GA's
// internal 3F00), "current EF" (0000), the invalid FFFF and EF.ATR (2F01),
// which GET DATA answers itself.
func reservedFID(fid uint16) bool {
	switch fid {
	case 0x0000, 0x3F00, 0x3FFF, 0xFFFF, 0x2F01:
		return true
	}
	return false
}

// fcpInfo is what the card uses from an EF's FCP.
type fcpInfo struct {
	fid  uint16
	kind byte
	acl  []byte // 8C value, nil if absent
	crt  []byte // A5 value (key EFs)
}

// Limits of the CRT template of a key EF (GA CRTKeyFile.CheckCRT).
const (
	crtMinLen = 11
	crtMaxLen = 127
)

// parseFCP checks an FCP template as CREATE FILE receives it (docs/reference/gids-protocol.md
// §2.13; GA GidsFileSystem.getSafeFile): tag 62 (or 6F) filling the whole
// input, consistent inner TLVs, 83 = 2-byte FID, 82 = descriptor 39 (DO
// container) or 18 (key file, which needs an A5 CRT list of 11..127 bytes),
// optional 8C compact access rule.
func parseFCP(b []byte) (fcpInfo, error) {
	var info fcpInfo
	outer, rest, err := ber.ParseOne(b)
	if err != nil {
		return info, err
	}
	if outer.Tag != 0x62 && outer.Tag != 0x6F {
		return info, fmt.Errorf("template tag %X, want 62", outer.Tag)
	}
	if len(rest) != 0 {
		return info, fmt.Errorf("%d bytes after the FCP template", len(rest))
	}
	inner, err := ber.Parse(outer.Value)
	if err != nil {
		return info, err
	}
	var haveFID, haveDesc, haveCRT bool
	for _, t := range inner {
		switch t.Tag {
		case 0x83:
			if haveFID {
				continue
			}
			if len(t.Value) != 2 {
				return info, fmt.Errorf("FID of %d bytes", len(t.Value))
			}
			info.fid = uint16(t.Value[0])<<8 | uint16(t.Value[1])
			haveFID = true
		case 0x82:
			if haveDesc {
				continue
			}
			if len(t.Value) < 1 || len(t.Value) > 6 {
				return info, fmt.Errorf("descriptor of %d bytes", len(t.Value))
			}
			info.kind = t.Value[0]
			haveDesc = true
		case 0x8C:
			if info.acl == nil {
				info.acl = t.Value
			}
		case 0xA5:
			if !haveCRT {
				info.crt = t.Value
				haveCRT = true
			}
		}
	}
	switch {
	case !haveFID:
		return info, errors.New("no FID (83)")
	case !haveDesc:
		return info, errors.New("no file descriptor (82)")
	}
	switch info.kind {
	case kindDO:
	case kindKey:
		if !haveCRT {
			return info, errors.New("key file without CRT list (A5)")
		}
		if len(info.crt) < crtMinLen || len(info.crt) > crtMaxLen {
			return info, fmt.Errorf("CRT list of %d bytes", len(info.crt))
		}
		if _, err := ber.Parse(info.crt); err != nil {
			return info, fmt.Errorf("CRT list: %w", err)
		}
	default:
		return info, fmt.Errorf("unsupported file descriptor %02X", info.kind)
	}
	return info, nil
}

// Operations of the compact security attribute's access-mode byte
// (docs/reference/gids-protocol.md §4.2). The same bit means different things for a DF,
// a DO container EF and a key EF.
const (
	opDeleteChild = 0x01 // DF: DELETE FILE of a child EF
	opGetData     = 0x01 // DO EF: GET DATA
	opReadPublic  = 0x01 // key EF: read the public key
	opCreateEF    = 0x02 // DF: CREATE FILE
	opPutData     = 0x02 // DO EF: PUT DATA
	opPutKey      = 0x02 // key EF: key import (PUT DATA 3FFF)
	opMSE         = 0x04 // key EF: MANAGE SECURITY ENVIRONMENT (use the key)
	opGenerate    = 0x08 // key EF: GENERATE ASYMMETRIC KEY PAIR
	opActivate    = 0x10 // ACTIVATE FILE
	opTerminate   = 0x20 // DF: TERMINATE DF
	opDelete      = 0x40 // EF: DELETE FILE of the EF itself
	// opWrite is the bit that governs writing an EF's content: PUT DATA
	// of a DO container, PUT KEY of a key EF (generic EF: "update").
	opWrite = 0x02
)

// scFor returns the security-condition byte that governs op in the compact
// security attribute acl (the value of tag 8C): an access-mode byte followed
// by one SC byte per bit set in it, in the order 40, 20, 10, 08, 04, 02, 01
// (bit 80 is ignored, as in GA File.CheckACLRequirements). present is false
// when the access-mode byte has no bit for op, i.e. the operation is free.
// A missing SC byte (truncated attribute) yields FF, "never".
func scFor(acl []byte, op byte) (sc byte, present bool) {
	if len(acl) == 0 || acl[0]&op == 0 {
		return 0, false
	}
	am := acl[0]
	idx := 1
	for bit := byte(0x40); bit > op; bit >>= 1 {
		if am&bit != 0 {
			idx++
		}
	}
	if idx >= len(acl) {
		return 0xFF, true
	}
	return acl[idx], true
}

// crtAllows reports whether the key EF's CRT list (A5 value) holds a
// template with tag tmpl (B6 sign, B8 decipher, A4 authentication) whose
// algorithm (80) is alg. Only the tag and 80 are compared: OpenSC writes a
// wrong key reference (83) into signature templates, so 83 must not be
// checked (docs/reference/gids-protocol.md §3.8; GA CRTKeyFile.CheckUsage).
func crtAllows(crt []byte, tmpl, alg byte) bool {
	tlvs, err := ber.Parse(crt)
	if err != nil {
		return false
	}
	for _, t := range tlvs {
		if t.Tag != uint32(tmpl) {
			continue
		}
		v, ok, err := ber.Find(t.Value, 0x80)
		if err == nil && ok && len(v) == 1 && v[0] == alg {
			return true
		}
	}
	return false
}

// crtHas reports whether the CRT list has any template with tag tmpl.
func crtHas(crt []byte, tmpl byte) bool {
	tlvs, err := ber.Parse(crt)
	if err != nil {
		return false
	}
	for _, t := range tlvs {
		if t.Tag == uint32(tmpl) {
			return true
		}
	}
	return false
}
