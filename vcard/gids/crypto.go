package gids

import (
	"crypto/rsa"
	"crypto/sha1"
	"fmt"
	"math/big"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
	"github.com/cardharness/cardharness/vcard/store"
)

// keySizes maps the GIDS algorithm (size) identifiers to RSA modulus sizes
// (docs/reference/gids-protocol.md §3.7). ECC identifiers 0A..0E are not supported:
// OpenSC 0.23 cannot use them either.
var keySizes = map[byte]int{0x06: 1024, 0x07: 2048, 0x08: 3072, 0x09: 4096}

// publicKeyTemplate encodes pub as 7F49 { 81 modulus, 82 exponent } with
// minimal lengths, the modulus without a leading 00 and the exponent in
// its minimal big-endian form (GA hard-codes 3 exponent bytes; for 65537
// the result is the same) (docs/reference/gids-protocol.md §2.10).
func publicKeyTemplate(pub *rsa.PublicKey) []byte {
	inner := ber.Append(nil, 0x81, pub.N.Bytes())
	inner = ber.Append(inner, 0x82, big.NewInt(int64(pub.E)).Bytes())
	return ber.Encode(0x7F49, inner)
}

// keyEF loads key EF B0<kref> for operation op, which needs a key file:
// a missing EF or one that is not a key file answers notKey (6984 where
// the command names the key, 6985 for PSO, whose key MSE set earlier),
// then op must be allowed on it (allowed: 6985, 6982).
func (c *Card) keyEF(kref, op byte, notKey apdu.Status) (*efRecord, error) {
	f, ok, err := loadEF(c.store, 0xB000|uint16(kref))
	if err != nil {
		return nil, err
	}
	if !ok || f.kind != kindKey {
		return nil, notKey
	}
	if err := c.allowed(f, op); err != nil {
		return nil, err
	}
	return f, nil
}

// readPublicKey answers GET DATA 3FFF 70 08 84 01 <kref> A5 03 7F 49 80
// (docs/reference/gids-protocol.md §2.10; GA GidsApplet.processGetData): unknown key EF
// → 6984, not activated → 6985, read rule (01) fails → 6982 (user keys
// allow everyone; the admin key EF nobody), no RSA key in it → 6A88.
func (c *Card) readPublicKey(kref byte) ([]byte, error) {
	f, err := c.keyEF(kref, opReadPublic, apdu.SWReferenceDataNotUsable)
	if err != nil {
		return nil, err
	}
	k, err := c.keyOf(f, apdu.SWReferencedDataNotFound)
	if err != nil {
		return nil, err
	}
	return publicKeyTemplate(&k.PublicKey), nil
}

// generateKeyPair implements GENERATE ASYMMETRIC KEY PAIR (docs/reference/gids-protocol.md
// §2.10; GA GidsApplet.processGenerateAsymmetricKeypair).
//
// 00 47 00 00 08 AC 06 80 01 <alg> 83 01 <kref> [Le]. P1P2≠0000 → 6A86;
// data not one AC template with one-byte 80 and 83 → 6984; key EF missing
// or not a key file → 6984; not activated → 6985; GENERATE rule (08)
// fails → 6982 (user keys: PIN); alg not 06..09 → 6A81. A key EF without
// a sign (B6) or decipher (B8) template, i.e. one meant for a symmetric
// key like the admin key B080, is refused with 6984 (GA would overwrite
// the admin key). The new key replaces any old one and the answer is the
// public key template; OpenSC sends no Le, so the session answers 61xx,
// which OpenSC treats as success, while Windows sends Le and reads it.
// With Options.KeySeed the key is the seeded one (seededKey) and the
// card's count of seeded keys goes up in the same store update.
func (c *Card) generateKeyPair(cmd apdu.Command) ([]byte, error) {
	if cmd.P1 != 0 || cmd.P2 != 0 {
		return nil, apdu.SWIncorrectP1P2
	}
	outer, rest, perr := ber.ParseOne(cmd.Data)
	if perr != nil || len(rest) != 0 || outer.Tag != 0xAC {
		return nil, apdu.SWReferenceDataNotUsable
	}
	inner, perr := ber.Parse(outer.Value)
	if perr != nil {
		return nil, apdu.SWReferenceDataNotUsable
	}
	kv, ok1 := findTLV(inner, 0x83)
	av, ok2 := findTLV(inner, 0x80)
	if !ok1 || !ok2 || len(kv) != 1 || len(av) != 1 {
		return nil, apdu.SWReferenceDataNotUsable
	}
	f, err := c.keyEF(kv[0], opGenerate, apdu.SWReferenceDataNotUsable)
	if err != nil {
		return nil, err
	}
	bits, ok := keySizes[av[0]]
	if !ok {
		return nil, apdu.SWFuncNotSupported
	}
	if !crtHas(f.crt, 0xB6) && !crtHas(f.crt, 0xB8) {
		return nil, apdu.SWReferenceDataNotUsable
	}
	var k *rsa.PrivateKey
	if c.keySeed != nil {
		k, err = c.seededKey(f.fid, bits)
	} else {
		k, err = c.genKey(bits)
	}
	if err != nil {
		return nil, fmt.Errorf("gids: generate RSA-%d: %w", bits, err)
	}
	if k.N.BitLen() != bits {
		return nil, fmt.Errorf("gids: generated key has %d bits, want %d", k.N.BitLen(), bits)
	}
	enc := encodeRSAKey(k)
	err = c.update(func(tx *store.Tx) error {
		tx.Put(keyKey(f.fid), enc)
		if c.keySeed != nil {
			// The next seeded key must differ, also after a restart.
			n, err := loadKeyGenCount(tx)
			if err != nil {
				return err
			}
			tx.Put(recKeyGen, encodeKeyGenCount(n+1))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.rememberKey(keyKey(f.fid), enc, k)
	return publicKeyTemplate(&k.PublicKey), nil
}

// performSecurityOperation implements PERFORM SECURITY OPERATION
// (docs/reference/gids-protocol.md §2.11; GA GidsApplet.processPerformSecurityOperation,
// computeDigitalSignature, decipher). P1P2 9E9A computes a signature, 8086
// deciphers; others → 6A86. Input longer than 255 bytes arrives by command
// chaining (assembled by the session); answers longer than Le leave by
// 61xx/GET RESPONSE.
//
// The security environment must have been set by MSE for the same
// operation (B6 for sign, B8 for decipher; else 6985), its key EF must
// still exist and hold an RSA key (6985), and the key's MSE rule is checked
// again (6982), so logging out between MSE and PSO is effective (GA checks
// only at MSE time).
//
// Sign, by the algorithm's high nibble: 5 = the card pads the given bytes
// with EMSA-PKCS1-v1_5 block type 01 (not hashed, no DigestInfo added:
// rsa.SignPKCS1v15 with hash 0), input longer than k-11 → 6700; 1 = raw
// RSA of a block of exactly k bytes (6700 otherwise; a value ≥ n → 6A80);
// others → 6985.
//
// Decipher: the data is exactly the k-byte ciphertext, without a padding
// indicator byte (6700 otherwise). 4 = RSAES-PKCS1-v1_5, 8 = RSAES-OAEP with
// SHA-1 for both the label hash and MGF1 (the CAPI/minidriver default) and
// an empty label, 0 = raw RSA (k bytes out); bad padding or a value ≥ n →
// 6A80; other nibbles → 6A81.
//
// Raw RSA uses math/big exponentiation, which is not constant-time; this
// is a test card.
func (c *Card) performSecurityOperation(cmd apdu.Command) ([]byte, error) {
	var tmpl byte
	switch {
	case cmd.P1 == 0x9E && cmd.P2 == 0x9A:
		tmpl = 0xB6
	case cmd.P1 == 0x80 && cmd.P2 == 0x86:
		tmpl = 0xB8
	default:
		return nil, apdu.SWIncorrectP1P2
	}
	se := c.sec.se
	if !se.set || se.tmpl != tmpl {
		return nil, apdu.SWConditionsNotSatisfied
	}
	f, err := c.keyEF(se.kref, opMSE, apdu.SWConditionsNotSatisfied)
	if err != nil {
		return nil, err
	}
	k, err := c.keyOf(f, apdu.SWConditionsNotSatisfied)
	if err != nil {
		return nil, err
	}
	kLen := (k.N.BitLen() + 7) / 8
	in := cmd.Data

	if tmpl == 0xB6 {
		switch se.alg & 0xF0 {
		case 0x50:
			if len(in) > kLen-11 {
				return nil, apdu.SWWrongLength
			}
			sig, err := c.sigMemo.sign(k, in) // rsa.SignPKCS1v15, maybe remembered (sigmemo.go)
			if err != nil {
				return nil, fmt.Errorf("gids: sign: %w", err)
			}
			return sig, nil
		case 0x10:
			if len(in) != kLen {
				return nil, apdu.SWWrongLength
			}
			return rawRSA(k, in)
		}
		return nil, apdu.SWConditionsNotSatisfied
	}

	if len(in) != kLen {
		return nil, apdu.SWWrongLength
	}
	switch se.alg & 0xF0 {
	case 0x40:
		//lint:ignore SA1019 the card must implement RSAES-PKCS1-v1_5: OpenSC and Windows use it.
		out, err := rsa.DecryptPKCS1v15(nil, k, in)
		if err != nil {
			return nil, apdu.SWWrongData
		}
		return out, nil
	case 0x80:
		out, err := rsa.DecryptOAEP(sha1.New(), nil, k, in, nil)
		if err != nil {
			return nil, apdu.SWWrongData
		}
		return out, nil
	case 0x00:
		return rawRSA(k, in)
	}
	return nil, apdu.SWFuncNotSupported
}

// rawRSA applies the private exponent to in (k bytes) and returns k bytes.
// Not constant-time (math/big).
func rawRSA(k *rsa.PrivateKey, in []byte) ([]byte, error) {
	x := new(big.Int).SetBytes(in)
	if x.Cmp(k.N) >= 0 {
		return nil, apdu.SWWrongData
	}
	y := new(big.Int).Exp(x, k.D, k.N)
	return y.FillBytes(make([]byte, (k.N.BitLen()+7)/8)), nil
}

// importKey implements PUT DATA with P1P2=3FFF: key import and PUT KEY of
// the admin key (docs/reference/gids-protocol.md §2.12; GA GidsApplet.importPrivateKey,
// CRTKeyFile.importKey). Data = 70 { 84 01 <kref>, A5 { [83 01 type],
// [84 01 00], 87 <key>, [88 …] } }, usually sent with command chaining.
//
//	Malformed TLV, missing 84/A5/87 → 6984; key EF missing or not a key
//	file → 6984; not activated → 6985; PUT KEY rule (02) fails → 6982
//	(user keys: PIN; the admin key EF B080: admin, i.e. PUT KEY needs admin
//	authentication once the card is operational).
//	Key-encryption key (84 inside A5) other than 00 → 6A81.
//	Type 01 (default): a 24-byte 3DES key, into an EF with an
//	authentication (A4) template; type 02: an RSA private key, into an EF
//	with a sign or decipher template; otherwise 6984.
//
// The RSA key is a PKCS#1 RSAPrivateKey-shaped SEQUENCE of nine INTEGERs
// (version 0, n, e, d, p, q, dp, dq, qinv). INTEGERs are read as unsigned
// big-endian numbers, so OpenSC's raw values and Windows' DER values with
// a leading 00 are both accepted. The modulus must be 1024, 2048, 3072 or
// 4096 bits (6A81); the key must pass rsa.PrivateKey.Validate including
// the CRT values (6984).
func (c *Card) importKey(cmd apdu.Command) ([]byte, error) {
	tlvs, perr := ber.Parse(cmd.Data)
	if perr != nil {
		return nil, apdu.SWReferenceDataNotUsable
	}
	t70, ok := findTLV(tlvs, 0x70)
	if !ok {
		return nil, apdu.SWReferenceDataNotUsable
	}
	inner, perr := ber.Parse(t70)
	if perr != nil {
		return nil, apdu.SWReferenceDataNotUsable
	}
	kv, ok1 := findTLV(inner, 0x84)
	a5, ok2 := findTLV(inner, 0xA5)
	if !ok1 || !ok2 || len(kv) != 1 {
		return nil, apdu.SWReferenceDataNotUsable
	}
	f, err := c.keyEF(kv[0], opPutKey, apdu.SWReferenceDataNotUsable)
	if err != nil {
		return nil, err
	}
	kt, perr := ber.Parse(a5)
	if perr != nil {
		return nil, apdu.SWReferenceDataNotUsable
	}
	keyType := byte(keyTypeDES3)
	if v, ok := findTLV(kt, 0x83); ok {
		if len(v) != 1 {
			return nil, apdu.SWReferenceDataNotUsable
		}
		keyType = v[0]
	}
	if v, ok := findTLV(kt, 0x84); ok {
		if len(v) != 1 {
			return nil, apdu.SWReferenceDataNotUsable
		}
		if v[0] != 0 {
			return nil, apdu.SWFuncNotSupported
		}
	}
	value, ok := findTLV(kt, 0x87)
	if !ok {
		return nil, apdu.SWReferenceDataNotUsable
	}
	var rec []byte
	switch keyType {
	case keyTypeDES3:
		if len(value) != 24 || !crtHas(f.crt, 0xA4) {
			return nil, apdu.SWReferenceDataNotUsable
		}
		rec = encodeDESKey(value)
	case keyTypeRSA:
		if !crtHas(f.crt, 0xB6) && !crtHas(f.crt, 0xB8) {
			return nil, apdu.SWReferenceDataNotUsable
		}
		k, err := parseRSAPrivateKey(value)
		if err != nil {
			return nil, err
		}
		rec = encodeRSAKey(k)
	default:
		return nil, apdu.SWReferenceDataNotUsable
	}
	err = c.update(func(tx *store.Tx) error {
		tx.Put(keyKey(f.fid), rec)
		return nil
	})
	return nil, err
}

// parseRSAPrivateKey reads the SEQUENCE of an imported RSA key (see
// importKey) and returns a validated, precomputed key.
func parseRSAPrivateKey(b []byte) (*rsa.PrivateKey, error) {
	seq, rest, err := ber.ParseOne(b)
	if err != nil || len(rest) != 0 || seq.Tag != 0x30 {
		return nil, apdu.SWReferenceDataNotUsable
	}
	ints, err := ber.Parse(seq.Value)
	if err != nil || len(ints) != 9 {
		return nil, apdu.SWReferenceDataNotUsable
	}
	v := make([]*big.Int, len(ints))
	for i, t := range ints {
		if t.Tag != 0x02 || len(t.Value) == 0 {
			return nil, apdu.SWReferenceDataNotUsable
		}
		v[i] = new(big.Int).SetBytes(t.Value)
	}
	version, n, e, d, p, q, dp, dq, qinv := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]
	if version.Sign() != 0 {
		return nil, apdu.SWReferenceDataNotUsable
	}
	if !rsaSizeSupported(n.BitLen()) {
		return nil, apdu.SWFuncNotSupported
	}
	if e.BitLen() > 31 || e.Int64() < 3 {
		return nil, apdu.SWReferenceDataNotUsable
	}
	k := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())},
		D:         d,
		Primes:    []*big.Int{p, q},
	}
	k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv = dp, dq, qinv
	if err := k.Validate(); err != nil {
		return nil, apdu.SWReferenceDataNotUsable
	}
	k.Precompute()
	return k, nil
}
