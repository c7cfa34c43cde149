package gids

import (
	"crypto/rsa"
	"crypto/sha256"
	"sync"
)

// SignatureMemo remembers RSASSA-PKCS1-v1_5 signatures (PERFORM SECURITY
// OPERATION, algorithm 5x) across the cards that share it, keyed by the
// public key (modulus and exponent) and the block to sign. Why this is safe: a PKCS#1 v1.5
// signature is a function of the private key and the input alone (no
// randomness), so a remembered one is byte for byte what the private-key
// operation would give; a public key (n, e) fixes the signature
// m^d mod n whatever d the key file holds. Why: a
// sweep runs each scenario in many variants with one seed, so its cards
// sign the same CSRs with the same seeded keys again and again, and the
// RSA operation was a third of a sweep's time. Nothing else is
// remembered: decryption and raw RSA are computed every time, and the
// card's access rules, PIN checks and fault injection all run before a
// signature is looked up. Bounded: past SignatureMemoMax entries it forgets
// everything and starts again.
type SignatureMemo struct {
	mu sync.Mutex
	m  map[[32]byte][]byte
}

// SignatureMemoMax bounds a SignatureMemo (entries of a few hundred bytes).
const SignatureMemoMax = 4096

// NewSignatureMemo returns an empty memo.
func NewSignatureMemo() *SignatureMemo { return &SignatureMemo{m: map[[32]byte][]byte{}} }

func memoKey(k *rsa.PrivateKey, in []byte) [32]byte {
	h := sha256.New()
	n := k.N.Bytes()
	h.Write([]byte{byte(len(n) >> 8), byte(len(n))})
	h.Write(n)
	h.Write([]byte{byte(k.E >> 24), byte(k.E >> 16), byte(k.E >> 8), byte(k.E)})
	h.Write(in)
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return key
}

// sign is rsa.SignPKCS1v15(nil, k, 0, in), remembered; a nil memo signs.
func (s *SignatureMemo) sign(k *rsa.PrivateKey, in []byte) ([]byte, error) {
	if s == nil {
		return rsa.SignPKCS1v15(nil, k, 0, in)
	}
	key := memoKey(k, in)
	s.mu.Lock()
	sig, ok := s.m[key]
	s.mu.Unlock()
	if ok {
		return append([]byte(nil), sig...), nil
	}
	sig, err := rsa.SignPKCS1v15(nil, k, 0, in)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.m) >= SignatureMemoMax {
		clear(s.m)
	}
	s.m[key] = append([]byte(nil), sig...)
	s.mu.Unlock()
	return sig, nil
}
