package trace

import "os"

// Masking: a trace is something people attach to bug reports, so by
// default it must not carry what would let a reader use the card. The
// commands whose data is a secret (docs/reference/gids-protocol.md):
//
//   - VERIFY (INS 20, §2.5): the PIN;
//   - CHANGE REFERENCE DATA (INS 24, §2.6): old and new PIN;
//   - RESET RETRY COUNTER (INS 2C, §2.7): the new PIN;
//   - PUT DATA with P1P2 = 3FFF (INS DB, §2.12): key import, which is also
//     how the admin key is installed; every chunk of a chained import.
//
// The header and the length field stay, so the trace still shows which
// command was sent and how long its data was; the data and Le are left
// out (Record.Masked counts the bytes). GENERAL AUTHENTICATE carries
// cryptograms, not the key, and is kept.

// Mask returns cmd without its secret data, how many bytes were dropped
// and what they were. Commands without secrets are returned as they are.
// Malformed commands are masked by their INS all the same: everything
// after the length field goes.
func Mask(cmd []byte) (out []byte, masked int, secret string) {
	if len(cmd) < 5 {
		return cmd, 0, ""
	}
	switch ins := cmd[1]; {
	case ins == 0x20, ins == 0x24, ins == 0x2C:
		secret = "PIN"
	case ins == 0xDB && cmd[2] == 0x3F && cmd[3] == 0xFF:
		secret = "key material"
	default:
		return cmd, 0, ""
	}
	off := 5 // short Lc
	if cmd[4] == 0 && len(cmd) >= 7 {
		off = 7 // extended Lc: 00 hi lo
	}
	if len(cmd) <= off {
		return cmd, 0, "" // no data (e.g. VERIFY 00 20 00 82: log out)
	}
	if secret == "key material" {
		off += keyTemplatePrefix(cmd[off:])
	}
	return append([]byte(nil), cmd[:off]...), len(cmd) - off, secret
}

// keyTemplatePrefix is how much of a key import's data names the key
// without being it: 70 L 84 01 <kref> (§2.12), so that a masked trace
// still says which key was imported (B080: the admin key). 0 if the data
// does not start that way (a later chunk of a chained import).
func keyTemplatePrefix(d []byte) int {
	if len(d) < 2 || d[0] != 0x70 {
		return 0
	}
	n := 2 // 70 and a one-byte length
	switch d[1] {
	case 0x81:
		n = 3
	case 0x82:
		n = 4
	}
	if len(d) < n+3 || d[n] != 0x84 || d[n+1] != 0x01 {
		return 0
	}
	return n + 3
}

// Create creates (or truncates) a trace file readable by its owner only:
// mode 0600, also when the file existed with a wider mode.
func Create(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
