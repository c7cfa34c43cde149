package gids

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// Issue 8 finding 1: someone who knows only the user PIN must not obtain
// the admin's rights. Each test plays one attack through APDUs exactly as
// a hostile host would, ignoring refusals along the way, and then checks
// what the attacker can do and whether the real admin key still works.

// attackerKey is a 3DES key the attacker chose.
var attackerKey = bytes.Repeat([]byte{0x5A}, 24)

// authKeyFCP is the FCP of a key EF B0<kref> for a 3DES authentication
// key whose access rule lets the PIN holder use and write it: MSE always,
// PUT KEY with the PIN, read never (8C 04 87 00 10 FF), CRT A4 like B080.
func authKeyFCP(kref byte) []byte {
	// A5 { A4 { 80 01 02 83 01 <kref> 95 01 C0 } }
	crt := ber.Encode(0xA4, []byte{0x80, 0x01, 0x02, 0x83, 0x01, kref, 0x95, 0x01, 0xC0})
	fcp := ber.Append(nil, 0x82, []byte{kindKey})
	fcp = ber.Append(fcp, 0x83, []byte{0xB0, kref})
	fcp = ber.Append(fcp, 0x8C, []byte{0x87, 0x00, 0x10, 0xFF})
	fcp = ber.Append(fcp, 0xA5, crt)
	return ber.Encode(0x62, fcp)
}

// putDESKey returns PUT DATA 3FFF (chained) loading a 3DES key into
// B0<kref>, as gids-tool sends the admin key.
func putDESKey(kref byte, key []byte) [][]byte {
	kt := ber.Append(nil, 0x87, key)
	kt = ber.Append(kt, 0x88, []byte{0xB0, 0x73, 0xDC})
	t := ber.Append(nil, 0x84, []byte{kref})
	t = ber.Append(t, 0xA5, kt)
	return chained(0xDB, 0x3F, 0xFF, ber.Encode(0x70, t))
}

// tryKeyAuth performs mutual authentication with the 3DES key of key EF
// B0<kref>, continuing whatever the card answers; it reports whether the
// card accepted the cryptogram.
func (c *testCard) tryKeyAuth(kref byte, key []byte) bool {
	c.t.Helper()
	if _, sw := c.send([]byte{0x00, 0x22, 0xC1, 0xA4, 0x03, 0x83, 0x01, kref}); sw != apdu.SWOK {
		return false
	}
	r1 := h("0102030405060708090A0B0C0D0E0F10")
	resp, sw := c.send(append(append(h("00 87 00 00 14 7C 12 81 10"), r1...), 0))
	if sw != apdu.SWOK || len(resp) != 20 {
		return false
	}
	plain := append(append(append([]byte{}, resp[4:]...), r1...), h("11 22 33 44 55 66 77 80")...)
	_, sw = c.send(append(append(h("00 87 00 00 2C 7C 2A 82 28"), cbc(des3(c.t, key), true, plain)...), 0))
	return sw == apdu.SWOK
}

// sendEach sends each APDU and ignores the answers: an attacker goes on.
func (c *testCard) sendEach(cmds ...[]byte) {
	c.t.Helper()
	for _, a := range cmds {
		c.send(a)
	}
}

// checkNoAdmin asserts that the card grants none of the admin-only
// operations in its current security state, and that the cardid is still
// the personalised one.
func checkNoAdmin(t *testing.T, c *testCard) {
	t.Helper()
	checks := []struct {
		name string
		cmd  []byte
	}{
		{"RESET RETRY COUNTER to a new PIN", h("00 2C 02 80 06 39 39 39 39 39 39")},
		{"PUT DATA cardid A012", h("00 DB A0 12 13 DF 20 10 EE EE EE EE EE EE EE EE EE EE EE EE EE EE EE EE")},
		{"GET DATA A014", h("00 CB A0 14 02 5C 00 00")},
		{"PUT KEY admin B080", putDESKey(0x80, attackerKey)[0]},
	}
	for _, ck := range checks {
		if _, sw := c.send(ck.cmd); sw == apdu.SWOK || sw.SW1() == 0x61 {
			t.Errorf("%s: answered %04X with only the PIN (want a refusal)", ck.name, uint16(sw))
		}
	}
	if v, ok := c.DO(0xA012, 0xDF20); !ok || !bytes.Equal(v, testCardID[:]) {
		t.Errorf("cardid = % X (present %v), want the personalised % X", v, ok, testCardID)
	}
}

// checkRealAdmin asserts that the personalised admin key still
// authenticates and grants admin rights (the owner is not locked out).
func checkRealAdmin(t *testing.T, c *testCard) {
	t.Helper()
	c.sendEach(h("00 20 00 82"))
	if !c.tryKeyAuth(0x80, testAdminKey[:]) {
		t.Fatal("the real admin key no longer authenticates: owner locked out")
	}
	c.must(h("00 CB A0 14 02 5C 00 00"), apdu.SWOK)
}

// checkAttack runs an escalation attempt by someone who knows only the
// PIN, on a fresh personalised card with the PIN verified, then checks that
// it gained nothing (checkNoAdmin) and did not lock the owner out
// (checkRealAdmin).
func checkAttack(t *testing.T, attack func(c *testCard)) {
	t.Helper()
	c := newInitCard(t)
	c.verifyPIN(testPIN)
	attack(c)
	checkNoAdmin(t, c)
	checkRealAdmin(t, c)
}

// Attack 1: create a new key EF with an A4 template, load one's own 3DES
// key, point MSE at it and authenticate.
func TestEscalationOwnAuthKey(t *testing.T) {
	checkAttack(t, func(c *testCard) {
		c.sendEach(apdu.Short(0, 0xE0, 0, 0, authKeyFCP(0x90), false), h("00 44 00 00"))
		c.sendEach(putDESKey(0x90, attackerKey)...)
		// Authenticating with one's own key may succeed: it proves knowledge
		// of key 90, nothing more.
		c.tryKeyAuth(0x90, attackerKey)
	})
}

// Attack 2: delete the admin key EF B080 and re-create it with one's own
// key.
func TestEscalationReplaceAdminKeyEF(t *testing.T) {
	checkAttack(t, func(c *testCard) {
		if _, sw := c.send(h("00 A4 00 0C 02 B0 80")); sw != apdu.SWOK {
			t.Fatalf("SELECT B080: %04X", uint16(sw))
		}
		if _, sw := c.send(h("00 E4 00 00")); sw != apdu.SWSecurityStatusNotSatisfied {
			t.Errorf("DELETE FILE B080 with the PIN: %04X, want 6982", uint16(sw))
		}
		fcp := bytes.Clone(adminKeyFCP)
		// Let the creator write the key: 8C 04 87 00 10 FF.
		copy(fcp[11:15], []byte{0x87, 0x00, 0x10, 0xFF})
		c.sendEach(apdu.Short(0, 0xE0, 0, 0, fcp, false), h("00 44 00 00"))
		c.sendEach(putDESKey(0x80, attackerKey)...)
		c.tryKeyAuth(0x80, attackerKey)
	})
}

// Attack 3: delete the admin-write cardid EF A012, re-create it with an
// open access rule and rewrite the cardid.
func TestEscalationRecreateCardID(t *testing.T) {
	checkAttack(t, func(c *testCard) {
		c.sendEach(h("00 A4 00 0C 02 A0 12"))
		if _, sw := c.send(h("00 E4 00 00")); sw != apdu.SWSecurityStatusNotSatisfied {
			t.Errorf("DELETE FILE A012 with the PIN: %04X, want 6982", uint16(sw))
		}
		c.sendEach(createDOEF(0xA012, [3]byte{0x03, 0x00, 0x00}), h("00 44 00 00"))
	})
}

// The PIN holder can delete no system file (the EFs gids-tool creates at
// personalisation), nor re-create one after the admin deleted it; the
// admin can do both.
func TestSystemFilesNotDeletableByPIN(t *testing.T) {
	for _, fid := range []uint16{0xA000, 0xA010, 0xA011, 0xA012, 0xA013, 0xA014, 0xB080} {
		t.Run(fmt.Sprintf("%04X", fid), func(t *testing.T) {
			c := newInitCard(t)
			c.verifyPIN(testPIN)
			sel := []byte{0x00, 0xA4, 0x00, 0x0C, 0x02, byte(fid >> 8), byte(fid)}
			c.must(sel, apdu.SWOK)
			c.must(h("00 E4 00 00"), apdu.SWSecurityStatusNotSatisfied)
			if _, ok, _ := loadEF(c.Store(), fid); !ok {
				t.Fatal("EF gone after a refused DELETE")
			}
			// The admin may delete it; then the PIN holder may not
			// re-create it.
			c.adminAuth(testAdminKey[:])
			c.must(sel, apdu.SWOK)
			c.must(h("00 E4 00 00"), apdu.SWOK)
			c.must(h("00 20 00 82"), apdu.SWOK)
			c.verifyPIN(testPIN)
			c.must(createDOEF(fid, [3]byte{0x03, 0x00, 0x00}), apdu.SWSecurityStatusNotSatisfied)
		})
	}
}

// TERMINATE DF makes the card unusable for its owner: it needs the admin.
func TestTerminateNeedsAdmin(t *testing.T) {
	c := newInitCard(t)
	c.verifyPIN(testPIN)
	c.must(h("00 E6 00 00"), apdu.SWSecurityStatusNotSatisfied)
	if c.LifeCycle() != Operational {
		t.Fatalf("life cycle %v after a refused TERMINATE DF", c.LifeCycle())
	}
}
