package gids

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"path"
	"sync"
)

// Seeded key generation (Options.KeySeed; docs/DESIGN.md "Seeded keys").
//
// Go 1.26's rsa.GenerateKey ignores its random reader, so a seeded card
// cannot get reproducible keys from it. With a seed, GENERATE ASYMMETRIC
// KEY PAIR instead takes a key from a pool of pre-generated keys embedded
// in the binary (seedkeys/, 8 per size, made with openssl genrsa), chosen
// by a deterministic generator keyed by the seed and the card's count of
// generated keys, skipping keys already on the card; when every pool key
// of that size is in use, it derives a fresh key from the same generator
// by prime search. Pool keys cost nothing to "generate", which is most of
// the run time of a scenario suite otherwise. The keys are public (they
// are in the repository) or reproducible by anyone who knows the seed:
// seeded keys are for tests only.

//go:embed seedkeys/*.pem
var seedKeyFiles embed.FS

var seedPools struct {
	once   sync.Once
	bySize map[int][]*rsa.PrivateKey
	err    error
}

// seedPool returns the embedded keys of a size, in file-name order; nil if
// the embedded files do not parse (a build defect, reported by seededKey).
func seedPool(bits int) []*rsa.PrivateKey {
	seedPools.once.Do(func() {
		seedPools.bySize = map[int][]*rsa.PrivateKey{}
		names, err := seedKeyFiles.ReadDir("seedkeys")
		if err != nil {
			seedPools.err = err
			return
		}
		for _, e := range names { // ReadDir sorts by name
			b, err := seedKeyFiles.ReadFile(path.Join("seedkeys", e.Name()))
			if err != nil {
				seedPools.err = err
				return
			}
			blk, _ := pem.Decode(b)
			if blk == nil {
				seedPools.err = fmt.Errorf("seedkeys/%s: no PEM block", e.Name())
				return
			}
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				seedPools.err = fmt.Errorf("seedkeys/%s: %w", e.Name(), err)
				return
			}
			k.Precompute()
			n := k.N.BitLen()
			seedPools.bySize[n] = append(seedPools.bySize[n], k)
		}
	})
	return seedPools.bySize[bits]
}

// keyDRBG is the deterministic generator for the count-th key of bits on
// a card with seed: ChaCha8 keyed by SHA-256 over a domain label, the
// seed, the count and the size.
func keyDRBG(seed []byte, count uint32, bits int) *rand.ChaCha8 {
	h := sha256.New()
	h.Write([]byte("cardharness gids seeded keygen v1\x00"))
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(seed))))
	h.Write(seed)
	h.Write(binary.BigEndian.AppendUint32(nil, count))
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(bits)))
	var key [32]byte
	copy(key[:], h.Sum(nil))
	return rand.NewChaCha8(key)
}

// seededKey returns the key GENERATE ASYMMETRIC KEY PAIR puts into key EF
// fid on a seeded card (see the comment at the top of this file).
func (c *Card) seededKey(fid uint16, bits int) (*rsa.PrivateKey, error) {
	count, err := loadKeyGenCount(c.store)
	if err != nil {
		return nil, err
	}
	drbg := keyDRBG(c.keySeed, count, bits)
	pool := seedPool(bits)
	if seedPools.err != nil {
		return nil, fmt.Errorf("gids: embedded seed keys: %w", seedPools.err)
	}
	if len(pool) > 0 {
		inUse := map[string]bool{}
		for _, ref := range c.KeyRefs() {
			if k, ok, err := c.rsaKey(c.store, 0xB000|uint16(ref)); err == nil && ok {
				inUse[string(k.N.Bytes())] = true
			}
		}
		start := int(drbg.Uint64() % uint64(len(pool)))
		for i := range pool {
			k := pool[(start+i)%len(pool)]
			if !inUse[string(k.N.Bytes())] {
				return k, nil
			}
		}
	}
	return deriveRSAKey(drbg, bits)
}

// deriveRSAKey makes an RSA key with e = 65537 from r by prime search:
// candidates of bits/2 bits with the two top bits set (so that n has
// exactly bits bits) and the low bit set, tested with
// big.Int.ProbablyPrime(20) (20 Miller-Rabin rounds plus Baillie-PSW),
// which is deterministic for a given candidate. The result is checked
// with rsa.PrivateKey.Validate.
func deriveRSAKey(r io.Reader, bits int) (*rsa.PrivateKey, error) {
	if bits%2 != 0 || bits < 512 {
		return nil, fmt.Errorf("gids: seeded key of %d bits", bits)
	}
	e := big.NewInt(65537)
	one := big.NewInt(1)
	for {
		p, err := derivePrime(r, bits/2)
		if err != nil {
			return nil, err
		}
		q, err := derivePrime(r, bits/2)
		if err != nil {
			return nil, err
		}
		if p.Cmp(q) == 0 {
			continue
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != bits {
			continue
		}
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(e, phi)
		if d == nil { // gcd(e, φ) ≠ 1
			continue
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())}, D: d, Primes: []*big.Int{p, q}}
		k.Precompute()
		if err := k.Validate(); err != nil {
			continue
		}
		return k, nil
	}
}

func derivePrime(r io.Reader, bits int) (*big.Int, error) {
	b := make([]byte, (bits+7)/8)
	top := uint(bits-1) % 8 // index of the top bit in b[0]
	for {
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		b[0] &= byte(1<<(top+1)) - 1
		b[0] |= 1 << top
		if top > 0 {
			b[0] |= 1 << (top - 1)
		} else {
			b[1] |= 0x80
		}
		b[len(b)-1] |= 1
		p := new(big.Int).SetBytes(b)
		if p.ProbablyPrime(20) {
			return p, nil
		}
	}
}
