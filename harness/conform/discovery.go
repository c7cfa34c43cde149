package conform

import (
	"bytes"
	"fmt"

	"github.com/cardharness/cardharness/harness/cardio"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// stillGIDS checks that the application answers after a refused probe:
// a probe must neither deselect nor break it (§1.2).
func (t *T) stillGIDS(after string) error {
	if _, err := t.expect("GET DATA cardid after "+after, getDO(0xA012, 0xDF20), apdu.SWOK); err != nil {
		return fmt.Errorf("the GIDS application no longer answers: %w", err)
	}
	return nil
}

func getDO(ef, tag uint16) []byte {
	return cardio.Short(0x00, 0xCB, byte(ef>>8), byte(ef), []byte{0x5C, 0x02, byte(tag >> 8), byte(tag)}, true)
}

func putDO(ef, tag uint16, v []byte) []byte {
	return cardio.Short(0x00, 0xDB, byte(ef>>8), byte(ef), ber.Encode(uint32(tag), v), false)
}

func checkPIVRefused(t *T) error {
	piv := []byte{0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x00}
	if _, err := t.refuse("SELECT PIV AID", piv); err != nil {
		return err
	}
	return t.stillGIDS("the PIV probe")
}

// probes are the APDUs OpenSC's drivers send before the GIDS driver (§1.2).
var probes = [][]byte{
	{0x00, 0xA4, 0x04, 0x00, 0x07, 0x62, 0x76, 0x01, 0xFF, 0x00, 0x00, 0x00},                               // coolkey
	{0x00, 0xA4, 0x04, 0x00, 0x06, 0xA0, 0x00, 0x00, 0x00, 0x01, 0x01},                                     // muscle: must not be 9000
	{0x00, 0xA4, 0x04, 0x00, 0x0B, 0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01, 0x00}, // sc-hsm
	{0x00, 0xCA, 0xDF, 0x30, 0x05},                                                                         // setcos
	{0x00, 0xCB, 0x3F, 0xFF, 0x03, 0x5C, 0x01, 0x7E, 0x08},                                                 // PIV discovery object
	{0x00, 0xA4, 0x04, 0x0C, 0x07, 0xA0, 0x00, 0x00, 0x01, 0x16, 0xDB, 0x00, 0x00},                         // CAC
	{0x00, 0xA4, 0x04, 0x00, 0x0C, 0xF2, 0x76, 0xA2, 0x88, 0xBC, 0xFB, 0xA6, 0x9D, 0x34, 0xF3, 0x10, 0x01}, // IsoApplet
}

func checkProbes(t *T) error {
	for _, p := range probes {
		if _, err := t.refuse("probe "+cardio.Hex(p), p); err != nil {
			return err
		}
	}
	return t.stillGIDS("the probes")
}

// fciAID returns the AID in an FCI 61 { 4F aid ... }.
func fciAID(fci []byte) ([]byte, error) {
	v, ok, _ := ber.Find(fci, 0x61)
	if !ok {
		return nil, fmt.Errorf("no FCI template 61 in % X (Windows 10 does not recognise the card without it, §1.4)", fci)
	}
	aid, ok, _ := ber.Find(v, 0x4F)
	if !ok {
		return nil, fmt.Errorf("no AID 4F in the FCI % X", fci)
	}
	if len(aid) < 10 || !bytes.HasPrefix(aid, gidsAID9) {
		return nil, fmt.Errorf("FCI AID % X does not start with the GIDS AID A0 00 00 03 97 42 54 46 59", aid)
	}
	return aid, nil
}

func checkSelectLe(t *T) error {
	data, err := t.expect("SELECT GIDS AID with Le", cardio.Short(0x00, 0xA4, 0x04, 0x00, gidsAID9, true), apdu.SWOK)
	if err != nil {
		return err
	}
	_, err = fciAID(data)
	return err
}

func checkSelectNoLe(t *T) error {
	cmd := cardio.Short(0x00, 0xA4, 0x04, 0x00, gidsAID9, false)
	data, sw, err := t.c.Raw(t.ctx, cmd)
	if err != nil {
		return err
	}
	if sw.SW1() == 0x61 {
		return fmt.Errorf("SELECT without Le answered %04X: a host that sent no Le fetches nothing (OpenSC turns 61xx on a case-3 command into 9000, §2.1) and sees no FCI", uint16(sw))
	}
	if !sw.OK() {
		return fmt.Errorf("SELECT without Le answered %04X (%v), want the FCI and 9000", uint16(sw), sw)
	}
	_, err = fciAID(data)
	return err
}

func checkSelectVariants(t *T) error {
	if _, err := t.expect("SELECT AID, P2=0C (gids-tool)", cardio.Short(0x00, 0xA4, 0x04, 0x0C, gidsAID9, false), apdu.SWOK); err != nil {
		return err
	}
	full := append(append([]byte{}, gidsAID9...), 0x02, 0x01)
	data, err := t.expect("SELECT full 11-byte AID", cardio.Short(0x00, 0xA4, 0x04, 0x00, full, true), apdu.SWOK)
	if err != nil {
		// A v1 card has ..59 01 01; accept the AID it announces.
		aid, ferr := fciAID(t.st.fci)
		if ferr != nil || bytes.Equal(aid, full) {
			return err
		}
		if data, err = t.expect("SELECT the card's own AID", cardio.Short(0x00, 0xA4, 0x04, 0x00, aid, true), apdu.SWOK); err != nil {
			return err
		}
	}
	if _, err := fciAID(data); err != nil {
		return err
	}
	if _, err := t.expect("SELECT application FID 3FFF", cardio.Short(0x00, 0xA4, 0x00, 0x0C, []byte{0x3F, 0xFF}, false), apdu.SWOK); err != nil {
		return err
	}
	return t.stillGIDS("SELECT 3FFF")
}

func checkImplicitSelect(t *T) error {
	if err := t.c.Reset(t.ctx); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if _, err := t.expect("SELECT 3FFF right after reset", cardio.Short(0x00, 0xA4, 0x00, 0x0C, []byte{0x3F, 0xFF}, false), apdu.SWOK); err != nil {
		return err
	}
	return t.stillGIDS("a reset without SELECT by AID")
}

func checkEFATR(t *T) error {
	data, sw, err := t.c.Send(t.ctx, cardio.Short(0x00, 0xCB, 0x2F, 0x01, []byte{0x5C, 0x00}, true))
	if err != nil {
		return err
	}
	if !sw.OK() {
		return t.stillGIDS("GET DATA 2F01") // refusing is fine (§1.4)
	}
	if _, err := ber.Parse(data); err != nil {
		return fmt.Errorf("EF.ATR is not BER-TLV: % X: %v", data, err)
	}
	if caps, ok, _ := ber.Find(data, 0x47); ok && len(caps) >= 3 && caps[2]&0x80 == 0 {
		return fmt.Errorf("EF.ATR card capabilities 47 % X do not announce command chaining, which every GIDS host uses (§2.1)", caps)
	}
	return nil
}

func checkMasterFileProbes(t *T) error {
	// Windows Plug and Play selects the MF; an error is fine, a 9000 with
	// an MF would be too, as long as the GIDS application survives.
	if _, _, err := t.c.Send(t.ctx, cardio.Short(0x00, 0xA4, 0x00, 0x0C, []byte{0x3F, 0x00}, false)); err != nil {
		return err
	}
	if err := t.selectGIDS(); err != nil {
		return err
	}
	// OpenSC's PKCS#15 bind probes: a 9000 would make OpenSC parse a
	// PKCS#15 file system that is not there (§1.5).
	for _, path := range [][]byte{{0x2F, 0x00}, {0x50, 0x15}, {0x50, 0x31}, {0x50, 0x15, 0x49, 0x46}} {
		if _, err := t.refuse("SELECT by path "+cardio.Hex(path), cardio.Short(0x00, 0xA4, 0x08, 0x00, path, true)); err != nil {
			return err
		}
	}
	return t.stillGIDS("the path probes")
}
