package gids

import (
	"fmt"
	"testing"
)

// The store keys are built by hand (records.go); they must stay the
// strings fmt made, or a card state written before would not be found.
func TestStoreKeysAsFmtMadeThem(t *testing.T) {
	for _, fid := range []uint16{0, 0x000A, 0x00FF, 0x0ABC, 0x3FFF, 0xA000, 0xA010, 0xB081, 0xFFFF} {
		if got, want := efKey(fid), fmt.Sprintf("%s%04X", prefixEF, fid); got != want {
			t.Errorf("efKey(%04X) = %q, want %q", fid, got, want)
		}
		if got, want := keyKey(fid), fmt.Sprintf("%s%04X", prefixKey, fid); got != want {
			t.Errorf("keyKey(%04X) = %q, want %q", fid, got, want)
		}
		if got, want := doPrefix(fid), fmt.Sprintf("%s%04X/", prefixDO, fid); got != want {
			t.Errorf("doPrefix(%04X) = %q, want %q", fid, got, want)
		}
		for _, tag := range []uint32{0, 1, 0x5F, 0xDF22, 0x5FC102, 0xFFFFFFFF, 0xabcdef} {
			if got, want := doKey(fid, tag), fmt.Sprintf("%s%04X/%X", prefixDO, fid, tag); got != want {
				t.Errorf("doKey(%04X, %X) = %q, want %q", fid, tag, got, want)
			}
		}
	}
}
