package fs

import (
	"encoding/binary"
	"slices"
)

// Masterfile geometry (docs/reference/gids-protocol.md §3.3, OpenSC card-gids.h
// gids_mf_record_t).
const (
	MasterFileVersion = 0x01
	MasterRecordSize  = 28
	MaxMasterNameLen  = 8 // name fields are char[9] and must keep their NUL
	masterNameField   = 9
	offMasterName     = 9
	offMasterPad      = 18
	offMasterDO       = 20
	offMasterEF       = 24
)

// MasterRecord maps a minidriver path (Dir, Name) to the DO that holds the
// file. A record with an empty Name describes the directory Dir itself:
// its EF is the one whose access rule guards creating and deleting files
// in it, and its DO is 0.
type MasterRecord struct {
	Dir  string // "" for the root, "mscp"
	Name string
	// DO and EF are stored as 32-bit little-endian integers because the C
	// struct has int fields, but tags and FIDs are two bytes on the card;
	// a record with high bits set is refused rather than truncated.
	DO uint16
	EF uint16
}

// IsDir reports whether r describes a directory.
func (r MasterRecord) IsDir() bool { return r.Name == "" }

// MasterFile is the GIDS masterfile (A000/DF1F), the table that turns
// minidriver paths into (EF, DO) pairs. Order matters: OpenSC takes the
// first match and deletes by shifting.
type MasterFile []MasterRecord

// InitialMasterFile returns the masterfile gids-tool --initialize, the
// Windows inbox profile and GidsApplet all write (141 bytes encoded).
func InitialMasterFile() MasterFile {
	return MasterFile{
		{Dir: "mscp", EF: EFUserCreateDeleteDirAc},
		{Name: "cardid", DO: DOCardID, EF: EFEveryoneReadAdminWriteAc},
		{Name: "cardapps", DO: DOCardApps, EF: EFEveryoneReadUserWriteAc},
		{Name: "cardcf", DO: DOCardCF, EF: EFEveryoneReadUserWriteAc},
		{Dir: "mscp", Name: "cmapfile", DO: DOCmapFile, EF: EFEveryoneReadUserWriteAc},
	}
}

// ParseMasterFile decodes a masterfile. The version byte must be 01
// because OpenSC declares the card invalid otherwise; the record area
// must be whole records; each name must be NUL-terminated inside its 9
// bytes because OpenSC 0.23 compares with strcmp (a 9-character name
// would run into the next field). Bytes after a name's terminator and the
// two alignment bytes are ignored, as the C readers do, and written back
// as zeros.
func ParseMasterFile(b []byte) (MasterFile, error) {
	if len(b) == 0 {
		return nil, formatErr("masterfile", 0, "empty (a masterfile has at least its version byte)")
	}
	if b[0] != MasterFileVersion {
		return nil, formatErr("masterfile", 0, "version %02X, want 01", b[0])
	}
	body := b[1:]
	if len(body)%MasterRecordSize != 0 {
		return nil, formatErr("masterfile", len(b)-len(body)%MasterRecordSize,
			"%d record bytes is not a multiple of the %d-byte record (%d trailing bytes)",
			len(body), MasterRecordSize, len(body)%MasterRecordSize)
	}
	m := make(MasterFile, len(body)/MasterRecordSize)
	for i := range m {
		base := 1 + i*MasterRecordSize
		rec := b[base : base+MasterRecordSize]
		dir, err := decodeName(rec[:masterNameField], "masterfile", "directory", i, base)
		if err != nil {
			return nil, err
		}
		name, err := decodeName(rec[offMasterName:offMasterName+masterNameField], "masterfile", "file name", i, base+offMasterName)
		if err != nil {
			return nil, err
		}
		do := binary.LittleEndian.Uint32(rec[offMasterDO:])
		if do > 0xFFFF {
			return nil, formatErr("masterfile", base+offMasterDO, "record %d DO tag %08X does not fit two bytes", i, do)
		}
		ef := binary.LittleEndian.Uint32(rec[offMasterEF:])
		if ef > 0xFFFF {
			return nil, formatErr("masterfile", base+offMasterEF, "record %d EF %08X does not fit two bytes", i, ef)
		}
		m[i] = MasterRecord{Dir: dir, Name: name, DO: uint16(do), EF: uint16(ef)}
	}
	return m, nil
}

// decodeName reads a NUL-terminated ASCII name from a fixed field.
func decodeName(field []byte, file, what string, rec, off int) (string, error) {
	n := -1
	for k, c := range field {
		if c == 0 {
			n = k
			break
		}
	}
	if n < 0 {
		return "", formatErr(file, off, "record %d %s: no NUL terminator in %d bytes", rec, what, len(field))
	}
	for k, c := range field[:n] {
		if !nameByte(c) {
			return "", formatErr(file, off+k, "record %d %s: byte %02X is not printable ASCII", rec, what, c)
		}
	}
	return string(field[:n]), nil
}

// nameByte reports whether c may appear in a minidriver file or directory
// name. MS-FS names are ASCII; control characters, space and the path
// separators are excluded because every consumer prints or joins names
// into "dir/name" paths.
func nameByte(c byte) bool { return c > ' ' && c < 0x7F && c != '/' && c != '\\' }

func checkName(s string, max int, file, what string, rec, off int) error {
	if len(s) > max {
		return formatErr(file, off, "record %d %s %q: %d characters, at most %d", rec, what, s, len(s), max)
	}
	for k := 0; k < len(s); k++ {
		if !nameByte(s[k]) {
			return formatErr(file, off+k, "record %d %s %q: byte %02X is not printable ASCII", rec, what, s, s[k])
		}
	}
	return nil
}

func (r MasterRecord) check(i, base int) error {
	if err := checkName(r.Dir, MaxMasterNameLen, "masterfile", "directory", i, base); err != nil {
		return err
	}
	return checkName(r.Name, MaxMasterNameLen, "masterfile", "file name", i, base+offMasterName)
}

// Bytes encodes m. It fails only for a name the record cannot hold.
func (m MasterFile) Bytes() ([]byte, error) {
	b := make([]byte, 1+len(m)*MasterRecordSize)
	b[0] = MasterFileVersion
	for i, r := range m {
		base := 1 + i*MasterRecordSize
		if err := r.check(i, base); err != nil {
			return nil, err
		}
		copy(b[base:], r.Dir)
		copy(b[base+offMasterName:], r.Name)
		binary.LittleEndian.PutUint32(b[base+offMasterDO:], uint32(r.DO))
		binary.LittleEndian.PutUint32(b[base+offMasterEF:], uint32(r.EF))
	}
	return b, nil
}

// equalFoldASCII compares ASCII case-insensitively. MS-FS file names are
// case-insensitive; strings.EqualFold would also fold non-ASCII runes
// (KELVIN SIGN matches 'k'), which no card name can contain.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Index returns the index of the first record for (dir, name), compared
// case-insensitively as MS-FS specifies, or -1. OpenSC 0.23 compares
// case-sensitively, so a writer must still use OpenSC's spelling (see
// CertFileName) for OpenSC to find the file.
func (m MasterFile) Index(dir, name string) int {
	for i, r := range m {
		if equalFoldASCII(r.Dir, dir) && equalFoldASCII(r.Name, name) {
			return i
		}
	}
	return -1
}

// Lookup returns the record for (dir, name); see Index.
func (m MasterFile) Lookup(dir, name string) (MasterRecord, bool) {
	if i := m.Index(dir, name); i >= 0 {
		return m[i], true
	}
	return MasterRecord{}, false
}

// IndexDO returns the index of the first file record stored in DO do of
// EF ef, or -1. OpenSC's gids_delete_cert finds the record to remove this
// way, from the certificate's EF/DO path.
func (m MasterFile) IndexDO(ef, do uint16) int {
	for i, r := range m {
		if !r.IsDir() && r.EF == ef && r.DO == do {
			return i
		}
	}
	return -1
}

// FreeDO returns the DO a new file in EF ef gets: the lowest tag from
// DF21 (FirstFileDO) through DFFE (LastFileDO) that no record in ef
// references (OpenSC gids_find_available_DO). Freed tags are therefore
// reused, lowest first. On a freshly initialised card the first
// certificate gets DF24.
func (m MasterFile) FreeDO(ef uint16) (uint16, error) {
	used := make(map[uint16]bool, len(m))
	for _, r := range m {
		if r.EF == ef {
			used[r.DO] = true
		}
	}
	for do := FirstFileDO; do <= LastFileDO; do++ {
		if !used[do] {
			return do, nil
		}
	}
	return 0, formatErr("masterfile", 0, "no free DO in EF %04X between %04X and %04X", ef, FirstFileDO, LastFileDO)
}

// Add appends r, as OpenSC's gids_create_file does. It refuses a name the
// record cannot hold, a (Dir, Name) that already exists (case-insensitive,
// since such a file would be unreachable for a case-insensitive reader)
// and a file record sharing its EF/DO with another file.
func (m *MasterFile) Add(r MasterRecord) error {
	i := len(*m)
	base := 1 + i*MasterRecordSize
	if err := r.check(i, base); err != nil {
		return err
	}
	if j := m.Index(r.Dir, r.Name); j >= 0 {
		return formatErr("masterfile", base, "record %d: %q/%q already exists as record %d", i, r.Dir, r.Name, j)
	}
	if !r.IsDir() {
		if j := m.IndexDO(r.EF, r.DO); j >= 0 {
			return formatErr("masterfile", base+offMasterDO, "record %d: EF %04X DO %04X already holds record %d", i, r.EF, r.DO, j)
		}
	}
	*m = append(*m, r)
	return nil
}

// Create registers a new file dir/name in EF A010 at the lowest free DO
// and returns its record: the complete gids_create_file step, which is
// how every certificate file gets its DO.
func (m *MasterFile) Create(dir, name string) (MasterRecord, error) {
	do, err := m.FreeDO(EFEveryoneReadUserWriteAc)
	if err != nil {
		return MasterRecord{}, err
	}
	r := MasterRecord{Dir: dir, Name: name, DO: do, EF: EFEveryoneReadUserWriteAc}
	if err := m.Add(r); err != nil {
		return MasterRecord{}, err
	}
	return r, nil
}

// RemoveAt removes record i and shifts the following records down (OpenSC
// gids_delete_cert); unlike the cmapfile, nothing refers to masterfile
// records by position.
func (m *MasterFile) RemoveAt(i int) (MasterRecord, error) {
	if i < 0 || i >= len(*m) {
		return MasterRecord{}, formatErr("masterfile", 0, "RemoveAt(%d): no such record (%d records)", i, len(*m))
	}
	r := (*m)[i]
	*m = slices.Delete(*m, i, i+1)
	return r, nil
}

// Remove removes the record for (dir, name) (see Index) and reports
// whether there was one.
func (m *MasterFile) Remove(dir, name string) (MasterRecord, bool) {
	i := m.Index(dir, name)
	if i < 0 {
		return MasterRecord{}, false
	}
	r, _ := m.RemoveAt(i)
	return r, true
}

// Validate checks what Add enforces, for a masterfile read from a card:
// unique paths (case-insensitive) and no two files in one DO.
func (m MasterFile) Validate() error {
	for i, r := range m {
		base := 1 + i*MasterRecordSize
		if j := m[:i].Index(r.Dir, r.Name); j >= 0 {
			return formatErr("masterfile", base, "record %d: %q/%q duplicates record %d", i, r.Dir, r.Name, j)
		}
		if !r.IsDir() {
			if j := m[:i].IndexDO(r.EF, r.DO); j >= 0 {
				return formatErr("masterfile", base+offMasterDO, "record %d: EF %04X DO %04X already holds record %d", i, r.EF, r.DO, j)
			}
		}
	}
	return nil
}
