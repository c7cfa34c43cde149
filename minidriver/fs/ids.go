package fs

import (
	"errors"
	"fmt"
)

// Where the minidriver files live on a GIDS card (docs/reference/gids-protocol.md §3.1,
// §3.2). DO tags are per EF: DF20 is the keymap in A000 and the cardid in
// A012.
const (
	// EFs (DO containers) named after the access rule they carry.
	EFUserCreateDeleteDirAc    uint16 = 0xA000 // masterfile, keymap
	EFEveryoneReadUserWriteAc  uint16 = 0xA010 // cardapps, cardcf, cmapfile, certificates
	EFEveryoneReadAdminWriteAc uint16 = 0xA012 // cardid

	DOMasterFile uint16 = 0xDF1F // in A000
	DOKeyMap     uint16 = 0xDF20 // in A000
	DOCardID     uint16 = 0xDF20 // in A012
	DOCardApps   uint16 = 0xDF21 // in A010
	DOCardCF     uint16 = 0xDF22 // in A010
	DOCmapFile   uint16 = 0xDF23 // in A010

	// FirstFileDO and LastFileDO bound the tags OpenSC hands out to new
	// files in A010 (gids_find_available_DO scans DF21 up to, not
	// including, GIDS_MAX_DO = DFFF). The scan starts at DF21 rather than
	// DF24 because the fixed files are found through their masterfile
	// records like any other.
	FirstFileDO uint16 = 0xDF21
	LastFileDO  uint16 = 0xDFFE
)

// Key references: container i uses key reference 0x81+i, key EF B0(81+i)
// (docs/reference/gids-protocol.md §3.1, §3.6). A key reference is one byte, so 0xFF,
// container 126, is the last one a GIDS card can address; OpenSC calls
// this bound GIDS_MAX_CONTAINER.
const (
	FirstKeyRef       = 0x81
	MaxContainerIndex = 126
)

// KeySpec is the CAPI key specification of a container's key; it selects
// the certificate file name (kxc for key exchange, ksc for signature) and
// the keymap key type.
type KeySpec uint32

// Values as in wincrypt.h; the Windows names are kept because every
// minidriver document and trace uses them.
const (
	AT_KEYEXCHANGE KeySpec = 1
	AT_SIGNATURE   KeySpec = 2
)

func (k KeySpec) String() string {
	switch k {
	case AT_KEYEXCHANGE:
		return "AT_KEYEXCHANGE"
	case AT_SIGNATURE:
		return "AT_SIGNATURE"
	}
	return fmt.Sprintf("KeySpec(%d)", uint32(k))
}

// ErrKeySize is wrapped by AlgID and AlgIDBits for sizes and identifiers
// outside the RSA set GIDS defines.
var ErrKeySize = errors.New("fs: unsupported key size")

// AlgID returns the GIDS size identifier of an RSA key of the given size
// (docs/reference/gids-protocol.md §3.7). The identifier is what the keymap stores and
// the low nibble of every MSE/CRT algorithm byte. The ECC identifiers
// 0A..0E exist as constants in OpenSC but no implementation the harness
// talks to can use them, so they are not offered.
func AlgID(bits int) (byte, error) {
	switch bits {
	case 1024:
		return 0x06, nil
	case 2048:
		return 0x07, nil
	case 3072:
		return 0x08, nil
	case 4096:
		return 0x09, nil
	}
	return 0, fmt.Errorf("%w: RSA %d bits (GIDS knows 1024, 2048, 3072, 4096)", ErrKeySize, bits)
}

// AlgIDBits is the inverse of AlgID.
func AlgIDBits(id byte) (int, error) {
	switch id {
	case 0x06:
		return 1024, nil
	case 0x07:
		return 2048, nil
	case 0x08:
		return 3072, nil
	case 0x09:
		return 4096, nil
	}
	return 0, fmt.Errorf("%w: size identifier %02X (GIDS RSA identifiers are 06..09)", ErrKeySize, id)
}
