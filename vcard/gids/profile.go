package gids

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// InitParams are the parameters of gids-tool --initialize.
type InitParams struct {
	PIN      string   // user PIN, 4..16 bytes (--pin)
	AdminKey [24]byte // 3DES admin key (--admin-key)
	CardID   [16]byte // cardid (--serial); all zero: 16 bytes from Options.Rand
}

// Masterfile record fields (docs/reference/gids-protocol.md §3.3, card-gids.h gids_mf_record_t).
const (
	mfVersion    = 0x01
	mfRecordLen  = 28
	mfNameMaxLen = 8 // 9-byte NUL-terminated fields
)

// mfRecord is one masterfile entry: minidriver directory and file name and
// the (EF, DO) that hold the file.
type mfRecord struct {
	dir, file string
	tag       uint32
	fid       uint32
}

// initialMasterfile is the masterfile gids-tool writes (§3.3): the mscp
// directory and the files cardid, cardapps, cardcf and mscp/cmapfile.
var initialMasterfile = []mfRecord{
	{dir: "mscp", fid: 0xA000},
	{file: "cardid", tag: 0xDF20, fid: 0xA012},
	{file: "cardapps", tag: 0xDF21, fid: 0xA010},
	{file: "cardcf", tag: 0xDF22, fid: 0xA010},
	{dir: "mscp", file: "cmapfile", tag: 0xDF23, fid: 0xA010},
}

// encodeMasterfile builds the masterfile DO value: version 01 and 28-byte
// records (9-byte NUL-padded directory, 9-byte NUL-padded file name, 2
// padding bytes, DO tag and EF FID as little-endian uint32).
func encodeMasterfile(recs []mfRecord) []byte {
	out := []byte{mfVersion}
	for _, r := range recs {
		var rec [mfRecordLen]byte
		copy(rec[0:mfNameMaxLen], r.dir)
		copy(rec[9:9+mfNameMaxLen], r.file)
		binary.LittleEndian.PutUint32(rec[20:], r.tag)
		binary.LittleEndian.PutUint32(rec[24:], r.fid)
		out = append(out, rec[:]...)
	}
	return out
}

// initStep is one APDU of the initialization sequence. ok says whether
// the card's answer lets the sequence go on.
type initStep struct {
	name string
	apdu []byte
	ok   func(apdu.Status) bool
	// blankCheck marks the GET DATA that must fail on a blank card.
	blankCheck bool
}

func want9000(sw apdu.Status) bool { return sw.OK() }

// step is an initStep that must succeed.
func step(name string, a []byte) initStep { return initStep{name: name, apdu: a, ok: want9000} }

// createDOEF returns CREATE FILE for a DO container EF with the 3-byte
// compact access rule acl, as gids-tool sends it.
func createDOEF(fid uint16, acl [3]byte) []byte {
	fcp := ber.Append(nil, 0x82, []byte{kindDO})
	fcp = ber.Append(fcp, 0x83, []byte{byte(fid >> 8), byte(fid)})
	fcp = ber.Append(fcp, 0x8C, acl[:])
	return caseAPDU(0x00, 0xE0, 0x00, 0x00, ber.Encode(0x62, fcp), false)
}

// adminKeyFCP is the FCP of the admin key EF B080 (§3.8): key file, access
// rule 87 00 20 FF (MSE always, PUT KEY admin, read never), CRT A4
// (authentication, algorithm 02, key 80, usage C0).
var adminKeyFCP = []byte{
	0x62, 0x1A, 0x82, 0x01, 0x18, 0x83, 0x02, 0xB0, 0x80,
	0x8C, 0x04, 0x87, 0x00, 0x20, 0xFF,
	0xA5, 0x0B, 0xA4, 0x09, 0x80, 0x01, 0x02, 0x83, 0x01, 0x80, 0x95, 0x01, 0xC0,
}

// caseAPDU encodes a short command APDU with data (case 3) or with data
// and Le=00 (case 4).
func caseAPDU(cla, ins, p1, p2 byte, data []byte, le bool) []byte {
	out := []byte{cla, ins, p1, p2}
	if len(data) > 0 {
		out = append(out, byte(len(data)))
		out = append(out, data...)
	}
	if le {
		out = append(out, 0x00)
	}
	return out
}

// putDO returns PUT DATA of one DO, chained in 255-byte parts if needed,
// as OpenSC's gids_put_DO sends it.
func putDO(fid uint16, tag uint32, value []byte) [][]byte {
	return chained(0xDB, byte(fid>>8), byte(fid), ber.Encode(tag, value))
}

// chained splits data into short APDUs with command chaining.
func chained(ins, p1, p2 byte, data []byte) [][]byte {
	var out [][]byte
	for len(data) > 255 {
		out = append(out, caseAPDU(0x10, ins, p1, p2, data[:255], false))
		data = data[255:]
	}
	return append(out, caseAPDU(0x00, ins, p1, p2, data, false))
}

// initSteps returns the APDU sequence of gids-tool --initialize
// (docs/reference/gids-protocol.md §2.14) without the foreign driver probes.
func initSteps(pin []byte, adminKey [24]byte, cardID [16]byte) []initStep {
	nameAID := aid[:aidMinMatch]
	steps := []initStep{
		step("detect (SELECT GIDS AID)", caseAPDU(0x00, 0xA4, 0x04, 0x00, nameAID, true)),
		step("SELECT GIDS AID, no response data", caseAPDU(0x00, 0xA4, 0x04, 0x0C, nameAID, false)),
		{"check that the card is blank (GET DATA masterfile)",
			caseAPDU(0x00, 0xCB, 0xA0, 0x00, []byte{0x5C, 0x02, 0xDF, 0x1F}, true),
			func(sw apdu.Status) bool { return !sw.OK() }, true},
		step("set user PIN", caseAPDU(0x00, 0x24, 0x01, 0x80, pin, false)),
	}
	doEFs := []struct {
		fid uint16
		acl [3]byte
	}{
		{0xA000, [3]byte{0x03, 0x30, 0x00}},
		{0xA010, [3]byte{0x03, 0x30, 0x00}},
		{0xA011, [3]byte{0x03, 0x30, 0xFF}},
		{0xA012, [3]byte{0x03, 0x20, 0x00}},
		{0xA013, [3]byte{0x03, 0x30, 0x30}},
		{0xA014, [3]byte{0x03, 0x20, 0x20}},
	}
	activate := []byte{0x00, 0x44, 0x00, 0x00}
	for _, ef := range doEFs {
		steps = append(steps,
			step(fmt.Sprintf("create EF %04X", ef.fid), createDOEF(ef.fid, ef.acl)),
			step(fmt.Sprintf("activate EF %04X", ef.fid), activate))
	}
	steps = append(steps,
		step("create admin key EF B080", caseAPDU(0x00, 0xE0, 0x00, 0x00, adminKeyFCP, false)),
		step("activate admin key EF B080", activate))

	keyTmpl := ber.Append(nil, 0x87, adminKey[:])
	keyTmpl = ber.Append(keyTmpl, 0x88, []byte{0xB0, 0x73, 0xDC})
	kut := ber.Append(nil, 0x84, []byte{0x80})
	kut = ber.Append(kut, 0xA5, keyTmpl)
	for _, a := range chained(0xDB, 0x3F, 0xFF, ber.Encode(0x70, kut)) {
		steps = append(steps, step("put admin key", a))
	}
	dos := []struct {
		name  string
		fid   uint16
		tag   uint32
		value []byte
	}{
		{"masterfile", 0xA000, 0xDF1F, encodeMasterfile(initialMasterfile)},
		{"cardapps", 0xA010, 0xDF21, []byte{'m', 's', 'c', 'p', 0, 0, 0, 0}},
		{"cardcf", 0xA010, 0xDF22, make([]byte, 6)},
		{"cmapfile", 0xA010, 0xDF23, nil},
		{"cardid", 0xA012, 0xDF20, cardID[:]},
	}
	for _, d := range dos {
		for _, a := range putDO(d.fid, d.tag, d.value) {
			steps = append(steps, step("put "+d.name, a))
		}
	}
	return append(steps,
		step("SELECT application 3FFF", caseAPDU(0x00, 0xA4, 0x00, 0x0C, []byte{0x3F, 0xFF}, false)),
		step("activate application", activate))
}

// Initialize personalises a blank card exactly as `gids-tool --initialize`
// does (docs/reference/gids-protocol.md §2.14, §3.2): it sends gids-tool's APDU sequence
// through Process, so the real command code paths do the work. The card
// must be blank (FactoryReset first otherwise). Afterwards the application
// is operational with six DO container EFs (A000, A010..A014), the admin
// key EF B080 holding p.AdminKey, the PIN p.PIN with 3 tries, and the DOs
// masterfile, cardapps, cardcf, cmapfile (empty) and cardid; nobody is
// authenticated. The error names the failing step and the card's status.
// Like a host session it must not overlap with APDUs from a reader link.
func (c *Card) Initialize(p InitParams) error {
	pin := []byte(p.PIN)
	if !pinLenOK(len(pin)) {
		return fmt.Errorf("gids: initialize: PIN must have %d..%d characters, has %d", pinMinLen, pinMaxLen, len(pin))
	}
	cardID := p.CardID
	if cardID == [16]byte{} {
		if _, err := io.ReadFull(c.rand, cardID[:]); err != nil {
			return fmt.Errorf("gids: initialize: random card ID: %w", err)
		}
	}
	c.Reset()
	for i, s := range initSteps(pin, p.AdminKey, cardID) {
		r, err := apdu.ParseResponse(c.Process(s.apdu))
		if err != nil {
			return fmt.Errorf("gids: initialize step %d (%s): %w", i+1, s.name, err)
		}
		if !s.ok(r.SW) {
			if s.blankCheck {
				return fmt.Errorf("gids: initialize step %d (%s): %w", i+1, s.name, ErrInitialized)
			}
			return fmt.Errorf("gids: initialize step %d (%s): card answered %04X", i+1, s.name, uint16(r.SW))
		}
	}
	return nil
}

// ErrInitialized: Initialize found a masterfile, i.e. the card is not
// blank (gids-tool's "card seems to have been already initialized").
var ErrInitialized = errors.New("card already initialized")
