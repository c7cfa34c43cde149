package gids

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/vcard/apdu"
)

// foreignProbes are the APDUs OpenSC's other drivers send before the GIDS
// driver (docs/reference/gids-protocol.md §1.2, observed), with the answer this card gives.
func foreignProbes() []struct {
	name string
	apdu []byte
	sw   apdu.Status
} {
	type probe = struct {
		name string
		apdu []byte
		sw   apdu.Status
	}
	ps := []probe{
		{"coolkey", h("00 A4 04 00 07 62 76 01 FF 00 00 00"), apdu.SWFileNotFound},
		{"muscle", h("00 A4 04 00 06 A0 00 00 00 01 01"), apdu.SWFileNotFound},
		{"sc-hsm", h("00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00"), apdu.SWFileNotFound},
		{"mcrd/EstEID", h("00 A4 04 0C 0F D2 33 00 00 00 45 73 74 45 49 44 20 76 33 35"), apdu.SWFileNotFound},
		{"setcos", h("00 CA DF 30 05"), apdu.SWINSNotSupported},
		{"PIV discovery object", h("00 CB 3F FF 03 5C 01 7E 08"), apdu.SWReferenceDataNotUsable},
		{"PIV AID", h("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00"), apdu.SWFileNotFound},
		{"CAC 1", h("00 A4 04 0C 07 A0 00 00 01 16 DB 00 00"), apdu.SWFileNotFound},
		{"CAC 2", h("00 A4 04 0C 07 A0 00 00 00 79 10 00 00"), apdu.SWFileNotFound},
	}
	for i := range 16 {
		ps = append(ps, probe{fmt.Sprintf("CAC %d", 3+i),
			append(h("00 A4 04 0C 07 A0 00 00 00 79 01"), byte(i), 0x00), apdu.SWFileNotFound})
	}
	ps = append(ps,
		probe{"IsoApplet", h("00 A4 04 00 0C F2 76 A2 88 BC FB A6 9D 34 F3 10 01"), apdu.SWFileNotFound},
		// Further probes named in §1.2–1.4: Windows' PIV SELECT, the PnP
		// CID applet, and PKCS#15 select-by-path.
		probe{"Windows PIV", h("00 A4 04 00 09 A0 00 00 03 08 00 00 10 00"), apdu.SWFileNotFound},
		probe{"PnP CID", h("00 A4 04 00 0B A0 00 00 03 97 43 49 44 5F 01 00 00"), apdu.SWFileNotFound},
		probe{"PnP GET DATA 7F68", h("00 CA 7F 68 00"), apdu.SWINSNotSupported},
		probe{"PKCS#15 2F00", h("00 A4 08 00 02 2F 00 00"), apdu.SWIncorrectP1P2},
		probe{"PKCS#15 5015", h("00 A4 08 00 02 50 15 00"), apdu.SWIncorrectP1P2},
		probe{"PKCS#15 5031", h("00 A4 08 00 04 50 15 50 31 00"), apdu.SWIncorrectP1P2},
		probe{"PKCS#15 5015 4946", h("00 A4 08 00 04 50 15 49 46 00"), apdu.SWIncorrectP1P2},
		probe{"READ BINARY", h("00 B0 00 00 00"), apdu.SWINSNotSupported},
	)
	return ps
}

// TestForeignProbes sends every probe of §1.2 (26 observed APDUs, plus
// the Windows and PKCS#15 ones) to a card in the middle of a session: none
// may answer 9000, and none may change the GIDS state (PIN and admin
// status, security environment, current EF, stored data).
func TestForeignProbes(t *testing.T) {
	probes := foreignProbes()
	if n := len(probes); n < 26 {
		t.Fatalf("only %d probes", n)
	}
	for _, blank := range []bool{false, true} {
		t.Run(fmt.Sprintf("blank=%v", blank), func(t *testing.T) {
			var c *testCard
			if blank {
				c = newTestCard(t, nil)
			} else {
				c = newInitCard(t)
				c.verifyPIN(testPIN)
				c.createKeyEF(0x81, true, 1024)
				c.importKey(0x81, testKey(t, "rsa1024"), false)
				c.adminAuth(testAdminKey[:])
				c.must(h("00 22 41 B6 06 80 01 56 84 01 81"), apdu.SWOK)
				c.must(h("00 A4 00 0C 02 A0 13"), apdu.SWOK)
			}
			secBefore := c.sec
			storeBefore := c.Store().Snapshot()
			for _, p := range probes {
				_, sw := c.send(p.apdu)
				if sw.OK() {
					t.Errorf("%s: % X answered 9000", p.name, p.apdu)
				}
				if sw != p.sw {
					t.Errorf("%s: % X answered %v, want %v", p.name, p.apdu, sw, p.sw)
				}
			}
			if diff := cmp.Diff(secBefore, c.sec, cmp.AllowUnexported(secState{}, secEnv{})); diff != "" {
				t.Errorf("security state changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(storeBefore, c.Store().Snapshot()); diff != "" {
				t.Errorf("store changed (-before +after):\n%s", diff)
			}
			// The GIDS select still works afterwards, as OpenSC's detection
			// (probe 27) expects.
			if blank {
				fci := c.must(h("00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00"), apdu.SWOK)
				if diff := cmp.Diff(appFCI, fci); diff != "" {
					t.Errorf("FCI (-want +got):\n%s", diff)
				}
				return
			}
			// And the session goes on: PIN (current EF A013), admin (A012),
			// SE (signature) all still valid.
			c.must(h("00 DB 00 00 03 DF 20 00"), apdu.SWOK)
			c.must(h("00 DB A0 12 03 DF 30 00"), apdu.SWOK)
			c.must(h("00 2A 9E 9A 03 01 02 03 00"), apdu.SWOK)
		})
	}
}
