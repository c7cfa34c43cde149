package conform

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"math/big"

	"github.com/cardharness/cardharness/harness/cardio"
	"github.com/cardharness/cardharness/internal/pkcs1"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// Key references the destructive checks use: from the top of the range,
// away from the containers hosts create from 0x81 up (§3.1).
var keyRefBySize = map[int]byte{1024: 0xF8, 2048: 0xF9, 3072: 0xFA, 4096: 0xFB}

const (
	refCreateDelete  = 0xF7
	refAdminLike     = 0xF6
	tagChaining      = 0xDF70 // scratch DOs in A010, far above the DF24.. hosts hand out
	tagPersist       = 0xDF71
	efScratchDOs     = fs.EFEveryoneReadUserWriteAc
	usageQualifier40 = 0x40
)

func selectEF(fid uint16) []byte {
	return apdu.Short(0x00, 0xA4, 0x00, 0x0C, []byte{byte(fid >> 8), byte(fid)}, false)
}

var (
	activate   = []byte{0x00, 0x44, 0x00, 0x00}
	deleteFile = []byte{0x00, 0xE4, 0x00, 0x00}
)

// keyFCP is the FCP OpenSC creates for a key-exchange key (§3.8): key EF,
// access rule 8F 10 10 10 00 (GENERATE, MSE, PUT KEY with the PIN, public
// read always), decipher templates raw/OAEP/PKCS#1 and sign templates
// raw/PKCS#1.
func keyFCP(kref, alg byte) []byte {
	var crt []byte
	for _, c := range []struct{ tag, alg byte }{{0xB8, alg}, {0xB8, 0x80 | alg}, {0xB8, 0x40 | alg}, {0xB6, 0x10 | alg}, {0xB6, 0x50 | alg}} {
		crt = ber.Append(crt, uint32(c.tag), []byte{0x80, 0x01, c.alg, 0x83, 0x01, kref, 0x95, 0x01, usageQualifier40})
	}
	fcp := ber.Append(nil, 0x82, []byte{0x18})
	fcp = ber.Append(fcp, 0x83, []byte{0xB0, kref})
	fcp = ber.Append(fcp, 0x8C, []byte{0x8F, 0x10, 0x10, 0x10, 0x00})
	fcp = ber.Append(fcp, 0xA5, crt)
	return ber.Encode(0x62, fcp)
}

func createFile(fcp []byte) []byte { return apdu.Short(0x00, 0xE0, 0x00, 0x00, fcp, false) }

// absent checks that an EF the check wants to create does not exist.
func (t *T) absent(fid uint16) error {
	_, sw, err := t.c.Send(t.ctx, selectEF(fid))
	if err != nil {
		return err
	}
	if sw != apdu.SWFileNotFound {
		return notApplicable("EF %04X, which the check creates, already exists (SELECT %04X): delete it or use a clean card", fid, uint16(sw))
	}
	return nil
}

func (t *T) created(fid uint16) { t.st.created = append(t.st.created, fid) }

// activateCreated records EF fid, just created, for the cleanup and
// activates it.
func (t *T) activateCreated(fid uint16) error {
	t.created(fid)
	_, err := t.expect("ACTIVATE FILE", activate, apdu.SWOK)
	return err
}

func parsePublicKey(data []byte) (*rsa.PublicKey, error) {
	v, ok, _ := ber.Find(data, 0x7F49)
	n, ok1, _ := ber.Find(v, 0x81)
	e, ok2, _ := ber.Find(v, 0x82)
	if !ok || !ok1 || !ok2 || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("public key % X is not 7F49 { 81 modulus 82 exponent } (§2.10)", data)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
}

func readPubCmd(kref byte) []byte {
	return apdu.Short(0x00, 0xCB, 0x3F, 0xFF, []byte{0x70, 0x08, 0x84, 0x01, kref, 0xA5, 0x03, 0x7F, 0x49, 0x80}, true)
}

func generate(bits int) func(*T) error {
	return func(t *T) error {
		kref := keyRefBySize[bits]
		fid := 0xB000 | uint16(kref)
		alg, err := fs.AlgID(bits)
		if err != nil {
			return err
		}
		if err := t.verifyPIN(); err != nil {
			return err
		}
		if err := t.absent(fid); err != nil {
			return err
		}
		if _, err := t.expect("CREATE FILE key EF (OpenSC FCP)", createFile(keyFCP(kref, alg)), apdu.SWOK); err != nil {
			return err
		}
		if err := t.activateCreated(fid); err != nil {
			return err
		}
		gen := []byte{0x00, 0x47, 0x00, 0x00, 0x08, 0xAC, 0x06, 0x80, 0x01, alg, 0x83, 0x01, kref}
		if bits == 2048 {
			// Windows sends Le and reads the key from the answer (§2.10).
			data, err := t.expect("GENERATE with Le (Windows)", append(gen, 0x00), apdu.SWOK)
			if err != nil {
				return err
			}
			pub, err := parsePublicKey(data)
			if err != nil {
				return fmt.Errorf("GENERATE with Le: %w", err)
			}
			if pub.N.BitLen() != bits {
				return fmt.Errorf("GENERATE answered a %d-bit modulus, want %d", pub.N.BitLen(), bits)
			}
		} else {
			_, sw, err := t.c.Raw(t.ctx, gen)
			if err != nil {
				return err
			}
			if !sw.OK() && sw.SW1() != 0x61 {
				return fmt.Errorf("GENERATE (OpenSC, no Le) answered %04X, want 9000 (or 61xx, which OpenSC takes as success)", uint16(sw))
			}
		}
		// Public keys are read without the PIN at every PKCS#11 session.
		if err := t.selectGIDS(); err != nil {
			return err
		}
		data, err := t.expect("GET DATA public key without PIN", readPubCmd(kref), apdu.SWOK)
		if err != nil {
			return err
		}
		pub, err := parsePublicKey(data)
		if err != nil {
			return err
		}
		if pub.N.BitLen() != bits || pub.E < 3 {
			return fmt.Errorf("public key: %d-bit modulus, exponent %d; want %d bits", pub.N.BitLen(), pub.E, bits)
		}
		t.st.keys[bits] = kref
		if t.st.pubs == nil {
			t.st.pubs = map[int]*rsa.PublicKey{}
		}
		t.st.pubs[bits] = pub
		return nil
	}
}

// keysFor returns the generated keys (size order), or not applicable.
func (t *T) keysFor(sizes ...int) ([]int, error) {
	if len(sizes) == 0 {
		sizes = t.opts.KeySizes
	}
	var out []int
	for _, b := range sizes {
		if _, ok := t.st.keys[b]; ok {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return nil, notApplicable("no %v-bit key was generated (see the keys.generate checks)", sizes)
	}
	return out, nil
}

func (t *T) mse(tmpl byte, alg byte, kref byte) error {
	_, err := t.expect(fmt.Sprintf("MSE %02X alg %02X key %02X", tmpl, alg, kref),
		apdu.Short(0x00, 0x22, 0x41, tmpl, []byte{0x80, 0x01, alg, 0x84, 0x01, kref}, false), apdu.SWOK)
	return err
}

var digestInfoSHA256 = []byte{0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}

func checkSignPKCS1(t *T) error {
	sizes, err := t.keysFor()
	if err != nil {
		return err
	}
	h := sha256.Sum256([]byte("cardharness conform"))
	for _, bits := range sizes {
		kref := t.st.keys[bits]
		alg, _ := fs.AlgID(bits)
		if err := t.verifyPIN(); err != nil {
			return err
		}
		if err := t.mse(0xB6, 0x50|alg, kref); err != nil {
			return err
		}
		sig, sw, err := t.c.Chained(t.ctx, 0x00, 0x2A, 0x9E, 0x9A, append(append([]byte{}, digestInfoSHA256...), h[:]...), true, 255)
		if err != nil {
			return err
		}
		if !sw.OK() {
			return fmt.Errorf("RSA %d sign answered %04X", bits, uint16(sw))
		}
		if err := rsa.VerifyPKCS1v15(t.st.pubs[bits], crypto.SHA256, h[:], sig); err != nil {
			return fmt.Errorf("RSA %d: signature (%d bytes) does not verify: %v", bits, len(sig), err)
		}
	}
	return nil
}

func checkSignRaw(t *T) error {
	sizes, err := t.keysFor(2048, 4096, 3072)
	if err != nil {
		return err
	}
	bits := sizes[0]
	kref := t.st.keys[bits]
	alg, _ := fs.AlgID(bits)
	h := sha256.Sum256([]byte("raw"))
	block := pkcs1.Type1(bits/8, append(append([]byte{}, digestInfoSHA256...), h[:]...))
	if err := t.verifyPIN(); err != nil {
		return err
	}
	if err := t.mse(0xB6, 0x10|alg, kref); err != nil {
		return err
	}
	sig, sw, err := t.c.Chained(t.ctx, 0x00, 0x2A, 0x9E, 0x9A, block, true, 240)
	if err != nil {
		return err
	}
	if !sw.OK() {
		return fmt.Errorf("raw sign with 240-byte chaining answered %04X", uint16(sw))
	}
	if err := rsa.VerifyPKCS1v15(t.st.pubs[bits], crypto.SHA256, h[:], sig); err != nil {
		return fmt.Errorf("RSA %d raw signature does not verify: %v", bits, err)
	}
	return nil
}

func (t *T) decipher(bits int, algHi byte, ct []byte, chunk int) ([]byte, error) {
	kref := t.st.keys[bits]
	alg, _ := fs.AlgID(bits)
	if err := t.verifyPIN(); err != nil {
		return nil, err
	}
	if err := t.mse(0xB8, algHi|alg, kref); err != nil {
		return nil, err
	}
	pt, sw, err := t.c.Chained(t.ctx, 0x00, 0x2A, 0x80, 0x86, ct, true, chunk)
	if err != nil {
		return nil, err
	}
	if !sw.OK() {
		return nil, fmt.Errorf("RSA %d decipher (alg %02X, %d-byte chunks) answered %04X", bits, algHi|alg, chunk, uint16(sw))
	}
	return pt, nil
}

var secret = []byte("cardharness conform secret")

func checkDecipherPKCS1(t *T) error {
	sizes, err := t.keysFor()
	if err != nil {
		return err
	}
	for _, bits := range sizes {
		ct, err := encryptPKCS1(t.st.pubs[bits], secret)
		if err != nil {
			return err
		}
		if err := t.decipherSecret(bits, 0x40, ct, 255, "PKCS#1"); err != nil {
			return err
		}
	}
	return nil
}

// decipherSecret deciphers ct, secret encrypted with the padding named
// padding, and checks that the card gives back secret.
func (t *T) decipherSecret(bits int, algHi byte, ct []byte, chunk int, padding string) error {
	pt, err := t.decipher(bits, algHi, ct, chunk)
	if err != nil {
		return err
	}
	if !bytes.Equal(pt, secret) {
		return fmt.Errorf("RSA %d %s decipher gave % X, want % X", bits, padding, pt, secret)
	}
	return nil
}

// encryptPKCS1 is RSAES-PKCS1-v1_5 encryption (RFC 8017 §7.2.1), done by
// hand: the standard library deprecates it for new protocols, but it is
// the padding OpenSC and Windows decipher with on GIDS cards (§2.11).
func encryptPKCS1(pub *rsa.PublicKey, msg []byte) ([]byte, error) {
	k := (pub.N.BitLen() + 7) / 8
	if len(msg) > k-11 {
		return nil, fmt.Errorf("message too long for RSA %d", pub.N.BitLen())
	}
	em := make([]byte, k)
	em[1] = 0x02
	ps := em[2 : k-len(msg)-1]
	for i := range ps {
		for ps[i] == 0 {
			if _, err := rand.Read(ps[i : i+1]); err != nil {
				return nil, err
			}
		}
	}
	copy(em[k-len(msg):], msg)
	c := new(big.Int).Exp(new(big.Int).SetBytes(em), big.NewInt(int64(pub.E)), pub.N)
	return c.FillBytes(make([]byte, k)), nil
}

func checkDecipherOAEP(t *T) error {
	sizes, err := t.keysFor(2048, 1024, 3072, 4096)
	if err != nil {
		return err
	}
	bits := sizes[0]
	ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, t.st.pubs[bits], secret, nil)
	if err != nil {
		return err
	}
	return t.decipherSecret(bits, 0x80, ct, 240, "OAEP")
}

func checkDecipherRaw(t *T) error {
	sizes, err := t.keysFor(2048, 1024, 3072, 4096)
	if err != nil {
		return err
	}
	bits := sizes[0]
	pub := t.st.pubs[bits]
	m := new(big.Int).SetBytes(append([]byte{0x00, 0x02}, bytes.Repeat([]byte{0x5A}, bits/8-2)...))
	c := new(big.Int).Exp(m, big.NewInt(int64(pub.E)), pub.N)
	ct := c.FillBytes(make([]byte, bits/8))
	pt, err := t.decipher(bits, 0x00, ct, 255)
	if err != nil {
		return err
	}
	want := m.FillBytes(make([]byte, bits/8))
	if !bytes.Equal(pt, want) && !bytes.Equal(pt, want[1:]) {
		return fmt.Errorf("RSA %d raw decipher gave %d bytes starting % X, want % X", bits, len(pt), head(pt), head(want))
	}
	return nil
}

func head(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}

func checkCryptoNeedsPIN(t *T) error {
	sizes, err := t.keysFor()
	if err != nil {
		return err
	}
	bits := sizes[0]
	alg, _ := fs.AlgID(bits)
	_, err = t.refuse("MSE sign without PIN", apdu.Short(0x00, 0x22, 0x41, 0xB6, []byte{0x80, 0x01, 0x50 | alg, 0x84, 0x01, t.st.keys[bits]}, false), apdu.SWSecurityStatusNotSatisfied)
	return err
}

// --- transport, access rules, persistence ---

// claimScratchDO prepares a check that writes scratch DO tag: it
// verifies the PIN (the scratch EF is everyone-read, user-write), makes
// sure the DO does not exist yet (the check must not overwrite data on a
// real card; if it exists, the check is not applicable) and records it
// for the cleanup.
func (t *T) claimScratchDO(tag uint16) error {
	if err := t.verifyPIN(); err != nil {
		return err
	}
	_, sw, err := t.c.Send(t.ctx, getDO(efScratchDOs, tag))
	if err != nil {
		return err
	}
	if sw != apdu.SWReferencedDataNotFound {
		return notApplicable("DO %04X/%04X, which the check writes, exists (%04X)", efScratchDOs, tag, uint16(sw))
	}
	t.st.dos = append(t.st.dos, tag)
	return nil
}

func checkChaining(t *T) error {
	if err := t.claimScratchDO(tagChaining); err != nil {
		return err
	}
	for _, chunk := range []int{240, 255} {
		value := make([]byte, 600)
		for i := range value {
			value[i] = byte(i*7 + chunk)
		}
		_, sw, err := t.c.Chained(t.ctx, 0x00, 0xDB, 0xA0, 0x10, ber.Encode(tagChaining, value), false, chunk)
		if err != nil {
			return err
		}
		if !sw.OK() {
			return fmt.Errorf("PUT DATA of %d bytes in %d-byte chunks answered %04X", len(value), chunk, uint16(sw))
		}
		first, sw, err := t.c.Raw(t.ctx, getDO(efScratchDOs, tagChaining))
		if err != nil {
			return err
		}
		if sw.SW1() != 0x61 || len(first) != 256 {
			return fmt.Errorf("GET DATA of a %d-byte DO answered %d bytes and %04X, want 256 bytes and 61xx (§2.1)", len(value)+4, len(first), uint16(sw))
		}
		got, err := t.readDO("chained DO", efScratchDOs, tagChaining)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, value) {
			return fmt.Errorf("%d-byte chunks: read back %d bytes that differ from the %d written", chunk, len(got), len(value))
		}
	}
	return nil
}

func checkCreateDelete(t *T) error {
	fid := uint16(0xB000 | refCreateDelete)
	alg, _ := fs.AlgID(1024)
	if err := t.absent(fid); err != nil {
		return err
	}
	if _, err := t.refuse("CREATE FILE without PIN", createFile(keyFCP(refCreateDelete, alg)), apdu.SWSecurityStatusNotSatisfied); err != nil {
		t.created(fid)
		return err
	}
	if err := t.verifyPIN(); err != nil {
		return err
	}
	if _, err := t.expect("CREATE FILE with PIN", createFile(keyFCP(refCreateDelete, alg)), apdu.SWOK); err != nil {
		return err
	}
	if err := t.activateCreated(fid); err != nil {
		return err
	}
	if err := t.selectGIDS(); err != nil { // logout
		return err
	}
	if _, err := t.expect("SELECT the key EF", selectEF(fid), apdu.SWOK); err != nil {
		return err
	}
	if _, err := t.refuse("DELETE FILE without PIN", deleteFile, apdu.SWSecurityStatusNotSatisfied); err != nil {
		return err
	}
	if err := t.verifyPIN(); err != nil {
		return err
	}
	if _, err := t.expect("SELECT the key EF", selectEF(fid), apdu.SWOK); err != nil {
		return err
	}
	if _, err := t.expect("DELETE FILE with PIN", deleteFile, apdu.SWOK); err != nil {
		return err
	}
	t.st.created = t.st.created[:len(t.st.created)-1]
	_, err := t.expect("SELECT the deleted EF", selectEF(fid), apdu.SWFileNotFound)
	return err
}

func checkPINCannotDeleteSystem(t *T) error {
	if err := t.verifyPIN(); err != nil {
		return err
	}
	_, sw, err := t.c.Send(t.ctx, selectEF(0xA014))
	if err != nil {
		return err
	}
	if sw == apdu.SWFileNotFound {
		return notApplicable("the card has no EF A014")
	}
	if !sw.OK() {
		return fmt.Errorf("SELECT A014 answered %04X", uint16(sw))
	}
	_, err = t.refuse("DELETE FILE A014 (admin-only EF) with the PIN only", deleteFile)
	return err
}

// checkOwnKeyNotAdmin: a PIN holder may create a 3DES authentication key
// EF and load a key of their own (GIDS lets hosts do that), but
// authenticating with it must not satisfy admin conditions: only the admin
// key B080 set at personalisation does (§4.3). The admin-only write tried
// afterwards puts cardid's current value back, harmless on a card that
// wrongly accepts it.
func checkOwnKeyNotAdmin(t *T) error {
	fid := uint16(0xB000 | refAdminLike)
	if err := t.absent(fid); err != nil {
		return err
	}
	cardID, err := t.readDO("cardid", fs.EFEveryoneReadAdminWriteAc, fs.DOCardID)
	if err != nil {
		return err
	}
	if err := t.verifyPIN(); err != nil {
		return err
	}
	// Like the admin key EF B080 (§3.8), but the PIN may load the key.
	fcp := []byte{0x62, 0x1A, 0x82, 0x01, 0x18, 0x83, 0x02, 0xB0, refAdminLike,
		0x8C, 0x04, 0x87, 0x00, 0x10, 0xFF,
		0xA5, 0x0B, 0xA4, 0x09, 0x80, 0x01, 0x02, 0x83, 0x01, refAdminLike, 0x95, 0x01, 0xC0}
	_, sw, err := t.c.Send(t.ctx, createFile(fcp))
	if err != nil {
		return err
	}
	if !sw.OK() {
		return nil // refused outright: no own key, no escalation
	}
	if err := t.activateCreated(fid); err != nil {
		return err
	}
	own := []byte("own key of the PIN holdr")
	kut := ber.Append(nil, 0x84, []byte{refAdminLike})
	kut = ber.Append(kut, 0xA5, append(ber.Encode(0x87, own), 0x88, 0x03, 0xB0, 0x73, 0xDC))
	_, sw, err = t.c.Send(t.ctx, apdu.Short(0x00, 0xDB, 0x3F, 0xFF, ber.Encode(0x70, kut), false))
	if err != nil {
		return err
	}
	if !sw.OK() {
		return nil // the key cannot be loaded: no escalation
	}
	if _, err := t.mutualAuth(refAdminLike, own); err != nil {
		return nil // the card does not authenticate with it: no escalation
	}
	_, err = t.refuse("PUT DATA cardid (admin only) after authenticating with the PIN holder's own key", putDO(fs.EFEveryoneReadAdminWriteAc, fs.DOCardID, cardID), apdu.SWSecurityStatusNotSatisfied)
	return err
}

func checkPowerCycle(t *T) error {
	if err := t.claimScratchDO(tagPersist); err != nil {
		return err
	}
	value := []byte("persists across a power cycle")
	if _, err := t.expect("PUT DATA scratch DO", putDO(efScratchDOs, tagPersist, value), apdu.SWOK); err != nil {
		return err
	}
	var pubBefore []byte
	sizes, _ := t.keysFor()
	if len(sizes) > 0 {
		pubBefore = t.st.pubs[sizes[0]].N.Bytes()
	}
	how := "power cycle"
	if t.opts.PowerCycle != nil {
		if err := t.opts.PowerCycle(t.ctx); err != nil {
			return fmt.Errorf("power cycle: %w", err)
		}
	} else {
		how = "warm reset (no power cycle available)"
		if err := t.c.Reset(t.ctx); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	got, err := t.readDO("scratch DO after "+how, efScratchDOs, tagPersist)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, value) {
		return fmt.Errorf("after a %s the DO reads % X, want % X", how, got, value)
	}
	if _, err := t.refuse("PUT DATA after "+how+" without VERIFY", putDO(efScratchDOs, tagPersist, value), apdu.SWSecurityStatusNotSatisfied); err != nil {
		return fmt.Errorf("the PIN is still verified after a %s: %w", how, err)
	}
	if pubBefore != nil {
		data, err := t.expect("public key after "+how, readPubCmd(t.st.keys[sizes[0]]), apdu.SWOK)
		if err != nil {
			return err
		}
		pub, err := parsePublicKey(data)
		if err != nil {
			return err
		}
		if !bytes.Equal(pub.N.Bytes(), pubBefore) {
			return fmt.Errorf("the generated key changed across a %s", how)
		}
	}
	return nil
}

// cleanup deletes the EFs and DOs the destructive checks created.
func cleanup(t *T) error {
	if len(t.st.created) == 0 && len(t.st.dos) == 0 {
		return nil
	}
	if err := t.verifyPIN(); err != nil {
		return err
	}
	var errs []string
	for _, fid := range t.st.created {
		if _, err := t.expect(fmt.Sprintf("SELECT %04X", fid), selectEF(fid), apdu.SWOK); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		_, sw, err := t.c.Send(t.ctx, deleteFile)
		if err == nil && sw == apdu.SWConditionsNotSatisfied {
			// Still in creation state (a check stopped after CREATE
			// FILE): only ACTIVATE is allowed (§4.1).
			if _, err = t.expect(fmt.Sprintf("ACTIVATE FILE %04X", fid), activate, apdu.SWOK); err == nil {
				_, sw, err = t.c.Send(t.ctx, deleteFile)
			}
		}
		switch {
		case err != nil:
			errs = append(errs, err.Error())
		case !sw.OK():
			errs = append(errs, fmt.Sprintf("DELETE FILE %04X: card answered %04X", fid, uint16(sw)))
		}
	}
	for _, tag := range t.st.dos {
		if err := deleteDO(t.ctx, t.c, efScratchDOs, tag); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("left on the card: %v", errs)
	}
	return nil
}

// deleteDO empties a DO, then deletes it (an empty PUT onto an empty DO,
// §2.4).
func deleteDO(ctx context.Context, c *cardio.Conn, ef, tag uint16) error {
	for i := 0; i < 2; i++ {
		_, sw, err := c.Send(ctx, putDO(ef, tag, nil))
		if err != nil {
			return err
		}
		if !sw.OK() {
			return fmt.Errorf("delete DO %04X/%04X: %04X", ef, tag, uint16(sw))
		}
		_, sw, err = c.Send(ctx, getDO(ef, tag))
		if err != nil {
			return err
		}
		if sw == apdu.SWReferencedDataNotFound {
			return nil
		}
	}
	return nil
}
