package conform

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"fmt"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

var mseAdmin = []byte{0x00, 0x22, 0xC1, 0xA4, 0x03, 0x83, 0x01, 0x80}

func (t *T) cbc(encrypt bool, in []byte) []byte { return cbcWith(t.opts.AdminKey[:], encrypt, in) }

func cbcWith(key []byte, encrypt bool, in []byte) []byte {
	block, _ := des.NewTripleDESCipher(key) // 24 bytes: cannot fail
	out := make([]byte, len(in))
	iv := make([]byte, 8)
	if encrypt {
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, in)
	} else {
		cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, in)
	}
	return out
}

func gaCmd(tag byte, v []byte) []byte {
	return apdu.Short(0x00, 0x87, 0x00, 0x00, ber.Encode(0x7C, ber.Encode(uint32(tag), v)), true)
}

// inner returns the value of tag inside a 7C answer.
func inner(data []byte, tag uint32) ([]byte, error) {
	dyn, ok, _ := ber.Find(data, 0x7C)
	v, ok2, _ := ber.Find(dyn, tag)
	if !ok || !ok2 {
		return nil, fmt.Errorf("answer % X is not 7C { %02X ... }", data, tag)
	}
	return v, nil
}

// gaStep sends one GENERAL AUTHENTICATE command, which must succeed, and
// returns what the card's 7C answer holds under tag.
func (t *T) gaStep(what string, cmd []byte, tag uint32) ([]byte, error) {
	data, err := t.expect(what, cmd, apdu.SWOK)
	if err != nil {
		return nil, err
	}
	return inner(data, tag)
}

// adminAuth runs mutual authentication (§2.9) and returns the response
// command it sent, for replay.
func (t *T) adminAuth() ([]byte, error) { return t.mutualAuth(0x80, t.opts.AdminKey[:]) }

// mutualAuth authenticates with the 3DES key of key reference kref.
func (t *T) mutualAuth(kref byte, key []byte) ([]byte, error) {
	if _, err := t.expect(fmt.Sprintf("MSE authentication key (C1 A4, key %02X)", kref), []byte{0x00, 0x22, 0xC1, 0xA4, 0x03, 0x83, 0x01, kref}, apdu.SWOK); err != nil {
		return nil, err
	}
	r1 := make([]byte, 16)
	z1 := make([]byte, 7)
	rand.Read(r1)
	rand.Read(z1)
	r2, err := t.gaStep("GENERAL AUTHENTICATE challenge", gaCmd(0x81, r1), 0x81)
	if err != nil {
		return nil, err
	}
	if len(r2) != 16 {
		return nil, fmt.Errorf("card challenge has %d bytes, want 16", len(r2))
	}
	plain := append(append(append(append([]byte{}, r2...), r1...), z1...), 0x80)
	resp := gaCmd(0x82, cbcWith(key, true, plain))
	cc, err := t.gaStep("GENERAL AUTHENTICATE response (is --admin-key right?)", resp, 0x82)
	if err != nil {
		return nil, err
	}
	if len(cc) != 40 {
		return nil, fmt.Errorf("card cryptogram has %d bytes, want 40 (OpenSC requires it, §2.9)", len(cc))
	}
	dec := cbcWith(key, false, cc)
	if !bytes.Equal(dec[:16], r1) || !bytes.Equal(dec[16:32], r2) {
		return nil, fmt.Errorf("the card's cryptogram does not decrypt to R1||R2: it does not prove the admin key")
	}
	return resp, nil
}

func checkAdminMutual(t *T) error {
	resp, err := t.adminAuth()
	if err != nil {
		return err
	}
	if _, err := t.refuse("replayed GENERAL AUTHENTICATE response", resp, apdu.SWConditionsNotSatisfied); err != nil {
		return err
	}
	// A fresh challenge answered with garbage.
	if _, err := t.expect("MSE admin key", mseAdmin, apdu.SWOK); err != nil {
		return err
	}
	r1 := make([]byte, 16)
	rand.Read(r1)
	if _, err := t.expect("GENERAL AUTHENTICATE challenge", gaCmd(0x81, r1), apdu.SWOK); err != nil {
		return err
	}
	_, err = t.refuse("GENERAL AUTHENTICATE with a wrong cryptogram", gaCmd(0x82, make([]byte, 40)), apdu.SWSecurityStatusNotSatisfied)
	return err
}

func checkAdminExternal(t *T) error {
	if _, err := t.expect("MSE admin key", mseAdmin, apdu.SWOK); err != nil {
		return err
	}
	data, sw, err := t.c.Send(t.ctx, gaCmd(0x81, nil))
	if err != nil {
		return err
	}
	if !sw.OK() {
		if disc, ok, _ := ber.Find(t.st.fci, 0x73); !ok || !bytes.Contains(disc, []byte{0x40}) {
			return notApplicable("the card neither announces nor supports external authentication (%04X)", uint16(sw))
		}
		return fmt.Errorf("external authentication challenge answered %04X", uint16(sw))
	}
	chal, err := inner(data, 0x81)
	if err != nil {
		return err
	}
	if len(chal) != 8 {
		return fmt.Errorf("external challenge has %d bytes, want 8", len(chal))
	}
	resp := gaCmd(0x82, t.cbc(true, chal))
	if _, err := t.expect("GENERAL AUTHENTICATE external response", resp, apdu.SWOK); err != nil {
		return err
	}
	_, err = t.refuse("replayed external response", resp)
	return err
}

func verifyCmd(pin string) []byte { return apdu.Short(0x00, 0x20, 0x00, 0x80, []byte(pin), false) }

// wrongPIN is a PIN of the configured length that differs from it.
func (t *T) wrongPIN() string {
	b := []byte(t.opts.PIN)
	for i := range b {
		if b[i] == '0' {
			b[i] = '1'
		} else {
			b[i] = '0'
		}
	}
	return string(b)
}

func checkPINWrong(t *T) error {
	left, limit, err := t.pinStatus()
	if err != nil {
		return err
	}
	if left < 2 {
		return notApplicable("the PIN has %d tries left; the check would block it", left)
	}
	_, sw, err := t.c.Raw(t.ctx, verifyCmd(t.wrongPIN()))
	if err != nil {
		return err
	}
	if n, ok := sw.Retries(); !ok || n != left-1 {
		return fmt.Errorf("wrong PIN answered %04X, want 63C%X", uint16(sw), left-1)
	}
	if l, _, err := t.pinStatus(); err != nil || l != left-1 {
		return fmt.Errorf("7F71 says %d tries left after a wrong PIN, want %d (%v)", l, left-1, err)
	}
	if err := t.verifyPIN(); err != nil {
		return err
	}
	if l, _, err := t.pinStatus(); err != nil || l != limit {
		return fmt.Errorf("after the right PIN %d tries left, want the limit %d (%v)", l, limit, err)
	}
	return nil
}

func checkPINLockUnblock(t *T) error {
	left, limit, err := t.pinStatus()
	if err != nil {
		return err
	}
	for i := 0; i < left; i++ {
		if _, _, err := t.c.Raw(t.ctx, verifyCmd(t.wrongPIN())); err != nil {
			return err
		}
	}
	if _, err := t.refuse("VERIFY with the right PIN once blocked", verifyCmd(t.opts.PIN), apdu.SWAuthMethodBlocked); err != nil {
		return err
	}
	if _, err := t.refuse("RESET RETRY COUNTER without admin", apdu.Short(0x00, 0x2C, 0x02, 0x80, []byte(t.opts.PIN), false), apdu.SWSecurityStatusNotSatisfied); err != nil {
		return err
	}
	if _, err := t.adminAuth(); err != nil {
		return fmt.Errorf("cannot unblock: %w", err)
	}
	if _, err := t.expect("RESET RETRY COUNTER (unblock, same PIN)", apdu.Short(0x00, 0x2C, 0x02, 0x80, []byte(t.opts.PIN), false), apdu.SWOK); err != nil {
		return err
	}
	if l, _, err := t.pinStatus(); err != nil || l != limit {
		return fmt.Errorf("after unblocking %d tries left, want %d (%v)", l, limit, err)
	}
	return t.verifyPIN()
}
