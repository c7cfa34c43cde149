package gids

import (
	"crypto/rsa"
	"fmt"
	"testing"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/store"
)

// seededCard is an initialised card with the given key seed (nil: real
// random keys) whose key generation is not replaced by the test keys.
func seededCard(t *testing.T, seed []byte, st *store.Store) *testCard {
	t.Helper()
	r := newTestRand()
	c, err := New(Options{Store: st, Rand: r, KeySeed: seed})
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCard{Card: c, t: t, rand: r}
	if c.LifeCycle() == Creation {
		if err := c.Initialize(InitParams{PIN: testPIN, AdminKey: testAdminKey, CardID: testCardID}); err != nil {
			t.Fatal(err)
		}
	}
	tc.verifyPIN(testPIN)
	return tc
}

// generate creates key EF B0<kref> (if needed) and generates an RSA key of
// bits in it through GENERATE ASYMMETRIC KEY PAIR.
func (c *testCard) generate(kref byte, bits int) *rsa.PublicKey {
	c.t.Helper()
	if _, ok, _ := loadEF(c.Store(), 0xB000|uint16(kref)); !ok {
		c.createKeyEF(kref, true, bits)
	}
	cmd := []byte{0x00, 0x47, 0x00, 0x00, 0x08, 0xAC, 0x06, 0x80, 0x01, sizeID(bits), 0x83, 0x01, kref, 0x00}
	data, sw := c.transceive(cmd)
	if sw != apdu.SWOK {
		c.t.Fatalf("GENERATE %d bits in %02X: %04X", bits, kref, uint16(sw))
	}
	pub, err := parsePublicKeyTemplate(data)
	if err != nil {
		c.t.Fatal(err)
	}
	k, ok, err := c.rsaKey(c.Store(), 0xB000|uint16(kref))
	if err != nil || !ok || !k.PublicKey.Equal(pub) || k.N.BitLen() != bits {
		c.t.Fatalf("stored key for %02X: %v %v (bits %d)", kref, ok, err, k.N.BitLen())
	}
	if err := k.Validate(); err != nil {
		c.t.Fatalf("generated key does not validate: %v", err)
	}
	return pub
}

// Issue 14 item 1: a seed fixes the key material. Two cards with the same
// seed and the same commands generate the same keys; keys on one card are
// distinct; a restart continues the sequence instead of repeating it.
func TestSeededKeyGenerationIsDeterministic(t *testing.T) {
	run := func(seed string) []*rsa.PublicKey {
		st := store.NewMemory()
		c := seededCard(t, []byte(seed), st)
		keys := []*rsa.PublicKey{c.generate(0x81, 2048), c.generate(0x82, 1024), c.generate(0x83, 2048), c.generate(0x81, 2048)}
		// Power cycle on the same store: the sequence goes on.
		c2 := seededCard(t, []byte(seed), st)
		return append(keys, c2.generate(0x82, 1024))
	}
	a, b := run("seed-1"), run("seed-1")
	for i := range a {
		if !a[i].Equal(b[i]) {
			t.Errorf("key %d differs between two runs with one seed", i)
		}
		for j := range i {
			if a[i].Equal(a[j]) {
				t.Errorf("keys %d and %d of one card are equal", j, i)
			}
		}
	}
	// Other seeds give other keys (the pool holds 8 per size, so compare
	// across several seeds).
	distinct := map[string]bool{}
	for s := range 6 {
		distinct[run(fmt.Sprintf("seed-%d", s+2))[0].N.String()] = true
	}
	if len(distinct) < 3 {
		t.Errorf("6 seeds gave only %d distinct first keys", len(distinct))
	}
}

// More keys of one size than the embedded pool holds: the rest are derived
// from the seed by prime generation, still deterministic and distinct.
func TestSeededKeysBeyondThePool(t *testing.T) {
	n := len(seedPool(1024)) + 2
	run := func() []*rsa.PublicKey {
		c := seededCard(t, []byte("pool"), nil)
		var keys []*rsa.PublicKey
		for i := range n {
			keys = append(keys, c.generate(0x81+byte(i), 1024))
		}
		return keys
	}
	a, b := run(), run()
	for i := range a {
		if !a[i].Equal(b[i]) {
			t.Errorf("key %d differs between two runs", i)
		}
		for j := range i {
			if a[i].Equal(a[j]) {
				t.Errorf("keys %d and %d are equal", j, i)
			}
		}
	}
}

// Without a seed, keys are real random keys, never from the pool.
func TestUnseededKeysAreNotFromThePool(t *testing.T) {
	c := seededCard(t, nil, nil)
	pub := c.generate(0x81, 1024)
	for _, k := range seedPool(1024) {
		if k.PublicKey.Equal(pub) {
			t.Fatal("a card without a seed generated a pool key")
		}
	}
}
