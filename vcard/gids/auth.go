package gids

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// manageSecurityEnvironment implements MANAGE SECURITY ENVIRONMENT
// (docs/reference/gids-protocol.md §2.8; GA GidsApplet.processManageSecurityEnvironment).
//
//	P1=41 (sign B6 / decipher B8): 80 01 <alg> 84 01 <kref>.
//	P1=C1 or 81 (authentication A4): 83 01 <kref>, algorithm implicitly 02.
//	P1=F3 (restore) → 6984 (no key reference); other P1 → 6A81.
//
// The data must be well-formed BER-TLV with the tags above, each one byte
// long (6984). The key EF B0<kref> must exist and be a key file (6984), and
// its CRT list must hold a template tagged P2 whose 80 equals the
// algorithm (6984; the template's 83 is not compared). Then the key EF's
// MSE rule applies: 6985 while the EF is not activated, 6982 if the rule
// fails (user keys need the PIN, the admin key EF allows everyone). On
// success the security environment is replaced; on failure the previous
// one stays, as in GA.
func (c *Card) manageSecurityEnvironment(cmd apdu.Command) ([]byte, error) {
	tlvs, err := ber.Parse(cmd.Data)
	if err != nil {
		return nil, apdu.SWReferenceDataNotUsable
	}
	oneByte := func(tag uint32) (byte, error) {
		v, ok := findTLV(tlvs, tag)
		if !ok || len(v) != 1 {
			return 0, apdu.SWReferenceDataNotUsable
		}
		return v[0], nil
	}
	var alg, kref byte
	switch cmd.P1 {
	case 0x81, 0xC1:
		if kref, err = oneByte(0x83); err != nil {
			return nil, err
		}
		alg = 0x02
	case 0x41:
		if alg, err = oneByte(0x80); err != nil {
			return nil, err
		}
		if kref, err = oneByte(0x84); err != nil {
			return nil, err
		}
	case 0xF3:
		return nil, apdu.SWReferenceDataNotUsable
	default:
		return nil, apdu.SWFuncNotSupported
	}
	f, ok, err := loadEF(c.store, 0xB000|uint16(kref))
	if err != nil {
		return nil, err
	}
	if !ok || f.kind != kindKey || !crtAllows(f.crt, cmd.P2, alg) {
		return nil, apdu.SWReferenceDataNotUsable
	}
	if err := c.allowed(f, opMSE); err != nil {
		return nil, err
	}
	c.sec.se = secEnv{set: true, tmpl: cmd.P2, alg: alg, kref: kref}
	return nil, nil
}

// Sizes of the GENERAL AUTHENTICATE values (docs/reference/gids-protocol.md §2.9).
const (
	mutualChallengeLen   = 16 // R1 and R2
	externalChallengeLen = 8
	cryptogramLen        = 40 // R‖R‖Z(7)‖80
	zLen                 = 7
)

// generalAuthenticate implements GENERAL AUTHENTICATE with the admin key
// (docs/reference/gids-protocol.md §2.9; GA GidsPINManager.processGeneralAuthenticate,
// CheckForExternalChallenge, CheckForChallengeResponse). All cryptography
// is DES-EDE3-CBC with a zero IV and no padding, restarted for each
// operation.
//
// Order of checks: creation state → 6986; P1P2≠0000 → 6A86; data not one
// dynamic-authentication template 7C holding 81 or 82 → 6984.
//
//   - 7C { 81 10 R1 }: mutual authentication, step 1. The card answers
//     7C 12 81 10 R2 with 16 bytes from Rand.
//   - 7C { 81 00 }: external authentication, step 1. The card answers
//     7C 0A 81 08 <8 bytes from Rand>.
//   - Any new challenge request forgets the previous challenge and every
//     key authentication; an 81 of another length → 6984.
//   - 7C { 82 28 C }: mutual step 2. C must decrypt to R2‖R1‖Z1‖80;
//     otherwise 6982 and the challenge is forgotten. On success the card
//     answers 7C 2A 82 28 3DES(R1‖R2‖Z2‖80), Z2 = 7 bytes from Rand, and the
//     key reference is authenticated.
//   - 7C { 82 08 C }: external step 2; C must decrypt to the challenge
//     (6982 otherwise); success is a bare 9000.
//   - 82 without a pending challenge (replay, or no step 1) → 6985; an
//     empty 82 or one longer than 40 bytes → 6984; a length that does not
//     fit the pending challenge (40 mutual, 8 external) → 6982.
//
// The key is the 3DES key of the key EF chosen by the last MSE with an A4
// template (00 22 C1 A4 03 83 01 80); without one the response step is
// answered 6985. Success records that key reference as authenticated;
// only the admin key (reference 80) satisfies admin conditions (unlike GA,
// which grants admin rights for any key: see checkSC). There is no try
// counter on the admin key (as in GA).
func (c *Card) generalAuthenticate(cmd apdu.Command) ([]byte, error) {
	lc, err := loadLifeCycle(c.store)
	if err != nil {
		return nil, err
	}
	if lc == Creation {
		return nil, apdu.SWCommandNotAllowedNoCurrentEF
	}
	if cmd.P1 != 0 || cmd.P2 != 0 {
		return nil, apdu.SWIncorrectP1P2
	}
	d := cmd.Data
	if len(d) == 0 || d[0] != 0x7C {
		return nil, apdu.SWReferenceDataNotUsable
	}
	outer, rest, perr := ber.ParseOne(d)
	if perr != nil || len(rest) != 0 {
		return nil, apdu.SWReferenceDataNotUsable
	}
	inner, perr := ber.Parse(outer.Value)
	if perr != nil {
		return nil, apdu.SWReferenceDataNotUsable
	}
	if v, ok := findTLV(inner, 0x81); ok {
		return c.authChallenge(v)
	}
	if v, ok := findTLV(inner, 0x82); ok {
		return c.authResponse(v)
	}
	return nil, apdu.SWReferenceDataNotUsable
}

// clearChallenge forgets the pending challenge and every key
// authentication (GA keeps both in one state byte).
func (c *Card) clearChallenge() {
	c.sec.chal = noChallenge
	c.sec.hostChal = [16]byte{}
	c.sec.cardChal = [16]byte{}
	c.sec.keys = keySet{}
}

func (c *Card) authChallenge(r1 []byte) ([]byte, error) {
	c.clearChallenge()
	var n int
	switch len(r1) {
	case mutualChallengeLen:
		n = mutualChallengeLen
	case 0:
		n = externalChallengeLen
	default:
		return nil, apdu.SWReferenceDataNotUsable
	}
	var chal [16]byte
	if _, err := io.ReadFull(c.rand, chal[:n]); err != nil {
		return nil, fmt.Errorf("gids: card challenge: %w", err)
	}
	if n == mutualChallengeLen {
		c.sec.chal = mutualChallenge
		copy(c.sec.hostChal[:], r1)
	} else {
		c.sec.chal = externalChallenge
	}
	c.sec.cardChal = chal
	return ber.Encode(0x7C, ber.Encode(0x81, chal[:n])), nil
}

func (c *Card) authResponse(cg []byte) ([]byte, error) {
	if len(cg) == 0 || len(cg) > cryptogramLen {
		return nil, apdu.SWReferenceDataNotUsable
	}
	kind := c.sec.chal
	if kind == noChallenge {
		return nil, apdu.SWConditionsNotSatisfied
	}
	want := cryptogramLen
	if kind == externalChallenge {
		want = externalChallengeLen
	}
	if len(cg) != want {
		c.clearChallenge()
		return nil, apdu.SWSecurityStatusNotSatisfied
	}
	kref := c.sec.se.kref
	block, err := c.adminCipher()
	if err != nil {
		c.clearChallenge()
		return nil, err
	}
	plain := make([]byte, len(cg))
	var zero [des.BlockSize]byte
	cipher.NewCBCDecrypter(block, zero[:]).CryptBlocks(plain, cg)

	if kind == externalChallenge {
		ok := subtle.ConstantTimeCompare(plain, c.sec.cardChal[:externalChallengeLen]) == 1
		c.clearChallenge()
		if !ok {
			return nil, apdu.SWSecurityStatusNotSatisfied
		}
		c.sec.keys.add(kref)
		return nil, nil
	}

	ok := subtle.ConstantTimeCompare(plain[0:16], c.sec.cardChal[:]) &
		subtle.ConstantTimeCompare(plain[16:32], c.sec.hostChal[:]) &
		subtle.ConstantTimeByteEq(plain[39], 0x80)
	if ok != 1 {
		c.clearChallenge()
		return nil, apdu.SWSecurityStatusNotSatisfied
	}
	out := make([]byte, 0, cryptogramLen)
	out = append(out, c.sec.hostChal[:]...)
	out = append(out, c.sec.cardChal[:]...)
	var z2 [zLen]byte
	if _, err := io.ReadFull(c.rand, z2[:]); err != nil {
		c.clearChallenge()
		return nil, fmt.Errorf("gids: Z2: %w", err)
	}
	out = append(out, z2[:]...)
	out = append(out, 0x80)
	cipher.NewCBCEncrypter(block, zero[:]).CryptBlocks(out, out)
	c.clearChallenge()
	c.sec.keys.add(kref)
	return ber.Encode(0x7C, ber.Encode(0x82, out)), nil
}

// adminCipher returns the 3DES cipher of the key selected by the last MSE
// for authentication (template A4); 6985 without one.
func (c *Card) adminCipher() (cipher.Block, error) {
	se := c.sec.se
	if !se.set || se.tmpl != 0xA4 {
		return nil, apdu.SWConditionsNotSatisfied
	}
	k, ok, err := desKey(c.store, 0xB000|uint16(se.kref))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apdu.SWConditionsNotSatisfied
	}
	return des.NewTripleDESCipher(k)
}
