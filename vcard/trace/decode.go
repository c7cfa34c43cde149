package trace

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Decoding: what a GIDS command and its response mean, in the names a
// person debugging a minidriver uses (docs/reference/gids-protocol.md):
// the EFs by their access-rule names, DOs by their minidriver file names
// (fixed ones, and those the trace's own masterfile reads and writes
// reveal), cardcf with its counters, PIN status and tries. The decoder is
// a state machine over one trace: it remembers the masterfile it saw and
// joins GET RESPONSE chains and chained PUT DATA to the command they
// belong to.

// gidsAID is the GIDS application identifier prefix (§3.1).
var gidsAID = []byte{0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59}

// efNames are the DO container EFs named by their access rule (§3.1).
var efNames = map[uint16]string{
	0x3FFF: "GIDS application",
	0xA000: "UserCreateDeleteDirAc",
	0xA010: "EveryoneReadUserWriteAc",
	0xA011: "UserWriteExecuteAc",
	0xA012: "EveryoneReadAdminWriteAc",
	0xA013: "UserReadWriteAc",
	0xA014: "AdminReadWriteAc",
}

type doKey struct{ ef, tag uint16 }

// fixedDOs are the DOs every initialised card has (§3.2); DF20 is the
// keymap in A000 and the cardid in A012.
var fixedDOs = map[doKey]string{
	{0xA000, 0xDF1F}: "masterfile",
	{0xA000, 0xDF20}: "keymap",
	{0xA010, 0xDF21}: "cardapps",
	{0xA010, 0xDF22}: "cardcf",
	{0xA010, 0xDF23}: "mscp/cmapfile",
	{0xA012, 0xDF20}: "cardid",
}

// Decoder annotates the records of one trace in order.
type Decoder struct {
	names map[doKey]string // from the masterfile seen in the trace
	// the command a response belongs to, by Seq, and the GET RESPONSE
	// chain being collected
	cmds    map[int][]byte
	chainOf []byte // first command of a 61xx chain
	chain   []byte // response data collected so far
	putBuf  []byte // data of a chained PUT DATA so far
}

// NewDecoder returns a decoder that knows only the fixed GIDS objects.
func NewDecoder() *Decoder {
	return &Decoder{names: map[doKey]string{}, cmds: map[int][]byte{}}
}

// Annotate returns what r means ("" if nothing to say).
func (d *Decoder) Annotate(r Record) string {
	switch r.Dir {
	case ">":
		b, err := hex.DecodeString(r.APDU)
		if err != nil || len(b) < 4 {
			return ""
		}
		d.cmds[r.Seq] = b
		s := d.command(b, r)
		return s
	case "<":
		cmd := d.cmds[r.Seq]
		delete(d.cmds, r.Seq)
		data, _ := hex.DecodeString(r.APDU)
		sw, _ := hex.DecodeString(r.SW)
		if len(sw) != 2 || cmd == nil {
			return ""
		}
		return d.response(cmd, data, uint16(sw[0])<<8|uint16(sw[1]))
	}
	return ""
}

func (d *Decoder) doName(ef, tag uint16) string {
	if n, ok := d.names[doKey{ef, tag}]; ok {
		return n
	}
	if n, ok := fixedDOs[doKey{ef, tag}]; ok {
		return n
	}
	return fmt.Sprintf("DO %04X", tag)
}

func efName(fid uint16) string {
	if n, ok := efNames[fid]; ok {
		return fmt.Sprintf("%04X (%s)", fid, n)
	}
	if fid == 0xB080 {
		return "B080 (admin key)"
	}
	if fid > 0xB080 && fid <= 0xB0FF {
		return fmt.Sprintf("%04X (key ref %02X, container %d)", fid, fid&0xFF, fid&0xFF-0x81)
	}
	return fmt.Sprintf("%04X", fid)
}

// cmdData returns a command's data field (nil if none or masked).
func cmdData(b []byte) []byte {
	if len(b) <= 5 {
		return nil
	}
	if b[4] == 0 && len(b) >= 7 {
		n := int(b[5])<<8 | int(b[6])
		return b[7:min(len(b), 7+n)]
	}
	return b[5:min(len(b), 5+int(b[4]))]
}

func (d *Decoder) command(b []byte, r Record) string {
	ins, p1, p2 := b[1], b[2], b[3]
	fid := uint16(p1)<<8 | uint16(p2)
	data := cmdData(b)
	chained := ""
	if b[0]&0x10 != 0 {
		chained = " (chained, more follows)"
	}
	// Masked data is shown on the hex line (Format); the annotation says
	// only what the command is.
	masked := ""
	switch ins {
	case 0xA4:
		switch {
		case p1 == 0x04 && bytes.HasPrefix(data, gidsAID):
			return "SELECT the GIDS application by AID (logs out PIN and admin)"
		case p1 == 0x04:
			return "SELECT by AID " + strings.ToUpper(hex.EncodeToString(data))
		case p1 == 0x00 && len(data) == 2:
			return "SELECT EF " + efName(binary.BigEndian.Uint16(data))
		case p1 == 0x08:
			return "SELECT by path (a probe; the GIDS card refuses it)"
		}
		return "SELECT"
	case 0xCB:
		switch {
		case fid == 0x3FFF && bytes.Equal(data, []byte{0x5C, 0x02, 0x7F, 0x71}):
			return "GET DATA PIN status (7F71)"
		case fid == 0x3FFF && bytes.Equal(data, []byte{0x5C, 0x02, 0x7F, 0x72}):
			return "GET DATA PIN status (7F72)"
		case fid == 0x3FFF && bytes.Equal(data, []byte{0x5C, 0x02, 0x7F, 0x73}):
			return "GET DATA PUK status (7F73)"
		case fid == 0x3FFF && len(data) >= 5 && data[0] == 0x70 && data[2] == 0x84:
			return fmt.Sprintf("GET DATA public key of key ref %02X", data[4])
		case len(data) == 4 && data[0] == 0x5C && data[1] == 0x02:
			tag := binary.BigEndian.Uint16(data[2:])
			return fmt.Sprintf("GET DATA %s (%04X/%04X)", d.doName(fid, tag), fid, tag)
		case len(data) >= 2 && data[0] == 0x5C:
			return fmt.Sprintf("GET DATA every DO of EF %s", efName(fid))
		}
		return "GET DATA " + efName(fid)
	case 0xDB:
		if fid == 0x3FFF {
			what := "PUT DATA key import (PUT KEY)"
			if len(data) >= 5 && data[0] == 0x70 {
				// 70 L 84 01 kref: the length may take 1..3 bytes.
				if i := bytes.Index(data[:min(len(data), 8)], []byte{0x84, 0x01}); i >= 0 && i+2 < len(data) {
					kref := data[i+2]
					what += fmt.Sprintf(" into key ref %02X", kref)
					if kref == 0x80 {
						what += " (the admin key)"
					}
				}
			}
			return what + chained + masked
		}
		full := append(d.putBuf, data...)
		if b[0]&0x10 != 0 {
			d.putBuf = full
		} else {
			d.putBuf = nil
		}
		if len(full) < 2 {
			return "PUT DATA " + efName(fid) + chained
		}
		tag := binary.BigEndian.Uint16(full)
		name := d.doName(fid, tag)
		s := fmt.Sprintf("PUT DATA %s (%04X/%04X)%s", name, fid, tag, chained)
		if b[0]&0x10 == 0 {
			if v, ok := tlvValue(full); ok {
				s += d.describeDO(fid, tag, v, "writes ")
			}
		}
		return s
	case 0x20:
		if p2 == 0x82 {
			return "VERIFY logout (clears PIN and admin authentication)"
		}
		return fmt.Sprintf("VERIFY PIN %02X%s", p2, masked)
	case 0x24:
		if p1 == 0x01 {
			return "CHANGE REFERENCE DATA: set the PIN" + masked
		}
		return "CHANGE REFERENCE DATA: change the PIN (old and new)" + masked
	case 0x2C:
		return "RESET RETRY COUNTER: unblock with a new PIN (needs admin)" + masked
	case 0x22:
		return fmt.Sprintf("MANAGE SECURITY ENVIRONMENT %02X %02X", p1, p2)
	case 0x87:
		return "GENERAL AUTHENTICATE (admin key challenge-response)"
	case 0x47:
		return "GENERATE ASYMMETRIC KEY PAIR" + chained
	case 0x2A:
		switch fid {
		case 0x9E9A:
			return "PERFORM SECURITY OPERATION: sign" + chained
		case 0x8086:
			return "PERFORM SECURITY OPERATION: decipher" + chained
		}
		return "PERFORM SECURITY OPERATION" + chained
	case 0xE0:
		return "CREATE FILE"
	case 0x44:
		return "ACTIVATE FILE"
	case 0xE4:
		return "DELETE FILE (the selected EF)"
	case 0xE6:
		return "TERMINATE DF"
	case 0xC0:
		return "GET RESPONSE"
	}
	return ""
}

// tlvValue returns the value of the BER-TLV with a 2-byte tag at the start
// of b.
func tlvValue(b []byte) ([]byte, bool) {
	if len(b) < 3 {
		return nil, false
	}
	l, off := int(b[2]), 3
	switch b[2] {
	case 0x81:
		if len(b) < 4 {
			return nil, false
		}
		l, off = int(b[3]), 4
	case 0x82:
		if len(b) < 5 {
			return nil, false
		}
		l, off = int(b[3])<<8|int(b[4]), 5
	}
	if off+l > len(b) {
		return nil, false
	}
	return b[off : off+l], true
}

func (d *Decoder) response(cmd, data []byte, sw uint16) string {
	// A 61xx chain: collect until the last GET RESPONSE.
	if sw>>8 == 0x61 {
		if cmd[1] != 0xC0 || d.chainOf == nil {
			d.chainOf, d.chain = cmd, nil
		}
		d.chain = append(d.chain, data...)
		if len(d.chain) == 0 {
			return fmt.Sprintf("%d bytes to fetch with GET RESPONSE", sw&0xFF)
		}
		return fmt.Sprintf("%d bytes so far, more to fetch with GET RESPONSE", len(d.chain))
	}
	if cmd[1] == 0xC0 && d.chainOf != nil {
		data = append(d.chain, data...)
		cmd = d.chainOf
	}
	d.chainOf, d.chain = nil, nil
	ins := cmd[1]
	switch {
	case sw>>4 == 0x63C && (ins == 0x20 || ins == 0x24):
		return fmt.Sprintf("wrong PIN: %d tries left", sw&0xF)
	case sw == 0x6983 && (ins == 0x20 || ins == 0x24):
		return "PIN blocked"
	case sw == 0x9000 && ins == 0x20 && cmd[3] == 0x80 && len(cmd) >= 5 && cmd[4] != 0:
		return "PIN verified"
	case sw != 0x9000:
		return ""
	}
	if ins != 0xCB && ins != 0x47 {
		return ""
	}
	fid := uint16(cmd[2])<<8 | uint16(cmd[3])
	if len(data) < 2 {
		return ""
	}
	tag := binary.BigEndian.Uint16(data)
	v, ok := tlvValue(data)
	if !ok {
		return ""
	}
	if tag == 0x7F49 && (ins == 0x47 || fid == 0x3FFF) {
		return publicKey(v)
	}
	if fid == 0x3FFF && (tag == 0x7F71 || tag == 0x7F72) {
		return pinStatus(v)
	}
	return strings.TrimPrefix(d.describeDO(fid, tag, v, ""), ": ")
}

// pinStatus decodes 97 01 <tries left> 93 01 <try limit> (§2.3).
func pinStatus(v []byte) string {
	left, limit := -1, -1
	for i := 0; i+1 < len(v); {
		t, l := v[i], int(v[i+1])
		if i+2+l > len(v) {
			break
		}
		if l == 1 {
			switch t {
			case 0x97:
				left = int(v[i+2])
			case 0x93:
				limit = int(v[i+2])
			}
		}
		i += 2 + l
	}
	if left < 0 {
		return "PIN status"
	}
	s := fmt.Sprintf("PIN status: %d tries left", left)
	if limit >= 0 {
		s += fmt.Sprintf(" of %d", limit)
	}
	if left == 0 {
		s += " (blocked)"
	}
	return s
}

// describeDO says what a DO's value means; verb is "writes " for PUT
// DATA. A masterfile teaches the decoder the names of later DOs.
func (d *Decoder) describeDO(ef, tag uint16, v []byte, verb string) string {
	switch d.doName(ef, tag) {
	case "cardcf":
		if len(v) < 6 {
			return fmt.Sprintf(": %scardcf of %d bytes (want 6)", verb, len(v))
		}
		return fmt.Sprintf(": %scardcf version %d, pins %d, containers %d, files %d", verb, v[0], v[1],
			binary.LittleEndian.Uint16(v[2:]), binary.LittleEndian.Uint16(v[4:]))
	case "cardid":
		return fmt.Sprintf(": %scardid %s", verb, strings.ToUpper(hex.EncodeToString(v)))
	case "masterfile":
		files := d.learnMasterfile(v)
		return fmt.Sprintf(": %smasterfile: %s", verb, strings.Join(files, ", "))
	case "mscp/cmapfile":
		// CONTAINER_MAP_RECORD: 40 WCHAR GUID, flags, reserved, two
		// key sizes = 86 bytes (docs/reference/gids-protocol.md §3.6).
		return fmt.Sprintf(": %scmapfile, %d bytes (%d container records)", verb, len(v), len(v)/86)
	}
	if verb != "" && len(v) == 0 {
		return ": writes an empty value"
	}
	return fmt.Sprintf(": %s%d bytes", verb, len(v))
}

// learnMasterfile reads masterfile records (§3.3: version 01, then 28-byte
// records: dir[9], name[9], pad[2], DO LE32, EF LE32) into the name table
// and lists them.
func (d *Decoder) learnMasterfile(v []byte) []string {
	if len(v) < 1 || v[0] != 0x01 {
		return []string{"(not a version 01 masterfile)"}
	}
	var out []string
	for off := 1; off+28 <= len(v); off += 28 {
		rec := v[off : off+28]
		dir := cstring(rec[0:9])
		name := cstring(rec[9:18])
		do := binary.LittleEndian.Uint32(rec[20:])
		ef := binary.LittleEndian.Uint32(rec[24:])
		if name == "" {
			out = append(out, fmt.Sprintf("dir %s in %04X", dir, ef))
			continue
		}
		path := name
		if dir != "" {
			path = dir + "/" + name
		}
		if do <= 0xFFFF && ef <= 0xFFFF {
			d.names[doKey{uint16(ef), uint16(do)}] = path
		}
		out = append(out, fmt.Sprintf("%s=%04X/%04X", path, ef, do))
	}
	return out
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// publicKey decodes the 7F49 template { 81 modulus, 82 exponent } (§2.10).
func publicKey(v []byte) string {
	var n, e []byte
	for i := 0; i+1 < len(v); {
		t := v[i]
		l, off := int(v[i+1]), i+2
		switch {
		case v[i+1] == 0x81 && i+2 < len(v):
			l, off = int(v[i+2]), i+3
		case v[i+1] == 0x82 && i+3 < len(v):
			l, off = int(v[i+2])<<8|int(v[i+3]), i+4
		}
		if off+l > len(v) {
			break
		}
		switch t {
		case 0x81:
			n = v[off : off+l]
		case 0x82:
			e = v[off : off+l]
		}
		i = off + l
	}
	if n == nil {
		return "public key"
	}
	n = bytes.TrimLeft(n, "\x00")
	bits := len(n) * 8
	if len(n) > 0 {
		for b := n[0]; b&0x80 == 0; b <<= 1 {
			bits--
		}
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	return fmt.Sprintf("public key: RSA %d bits, exponent %d", bits, exp)
}
