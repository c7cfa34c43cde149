package gids

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
	"github.com/cardharness/cardharness/vcard/store"
)

// The hex and concatenation helpers are internal/testutil's (one copy for
// the module); the short names keep the vectors readable.
var h = testutil.MustHex

// Test profile of the "initialized" card: what OpenSC's CI uses.
const testPIN = "123456"

var (
	testAdminKey [24]byte // 24 × 00
	testCardID   = [16]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
)

// testRand is a deterministic card RNG: queued bytes first, then a seeded
// ChaCha8 stream.
type testRand struct {
	mu    sync.Mutex
	queue []byte
	prng  *rand.ChaCha8
}

func newTestRand() *testRand {
	return &testRand{prng: rand.NewChaCha8([32]byte{'g', 'i', 'd', 's'})}
}

func (r *testRand) Queue(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, b...)
}

func (r *testRand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := copy(p, r.queue)
	r.queue = r.queue[n:]
	if n < len(p) {
		_, _ = r.prng.Read(p[n:])
	}
	return len(p), nil
}

var keyCache sync.Map // file name → *rsa.PrivateKey

// testKey loads testdata/keys/<name>.pem.
func testKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	if k, ok := keyCache.Load(name); ok {
		return k.(*rsa.PrivateKey)
	}
	b, err := os.ReadFile(filepath.Join("testdata", "keys", name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	k.Precompute()
	keyCache.Store(name, k)
	return k
}

// testGenKey stands in for on-card key generation with the testdata keys.
func testGenKey(t testing.TB) func(bits int) (*rsa.PrivateKey, error) {
	return func(bits int) (*rsa.PrivateKey, error) {
		return testKey(t, fmt.Sprintf("rsa%d", bits)), nil
	}
}

// testCard is a card plus its deterministic RNG.
type testCard struct {
	*Card
	t    testing.TB
	rand *testRand
}

// newTestCard returns a blank card on a memory store (or st) whose key
// generation returns the testdata keys.
func newTestCard(t testing.TB, st *store.Store) *testCard {
	t.Helper()
	r := newTestRand()
	c, err := New(Options{Store: st, Rand: r})
	if err != nil {
		t.Fatal(err)
	}
	c.genKey = testGenKey(t)
	return &testCard{Card: c, t: t, rand: r}
}

// newInitCard returns a card initialised like gids-tool --initialize
// --pin 123456 --admin-key 00…00 --serial 000102…0F.
func newInitCard(t testing.TB) *testCard {
	t.Helper()
	c := newTestCard(t, nil)
	if err := c.Initialize(InitParams{PIN: testPIN, AdminKey: testAdminKey, CardID: testCardID}); err != nil {
		t.Fatal(err)
	}
	return c
}

// send transmits one APDU (hex or bytes) and returns data and SW.
func (c *testCard) send(cmd []byte) ([]byte, apdu.Status) {
	c.t.Helper()
	r, err := apdu.ParseResponse(c.Process(cmd))
	if err != nil {
		c.t.Fatalf("APDU % X: %v", cmd, err)
	}
	return r.Data, r.SW
}

// must sends cmd and fails the test unless the card answers want.
func (c *testCard) must(cmd []byte, want apdu.Status) []byte {
	c.t.Helper()
	data, sw := c.send(cmd)
	if sw != want {
		c.t.Fatalf("APDU % X: SW %04X, want %04X", cmd, uint16(sw), uint16(want))
	}
	return data
}

// mustAll sends a chain of APDUs; all but the last must answer 9000.
func (c *testCard) mustAll(cmds [][]byte, want apdu.Status) []byte {
	c.t.Helper()
	for _, a := range cmds[:len(cmds)-1] {
		c.must(a, apdu.SWOK)
	}
	return c.must(cmds[len(cmds)-1], want)
}

// transceive sends cmd and collects a 61xx/GET RESPONSE answer.
func (c *testCard) transceive(cmd []byte) ([]byte, apdu.Status) {
	c.t.Helper()
	data, sw := c.send(cmd)
	for sw.SW1() == 0x61 {
		more, sw2 := c.send([]byte{0x00, 0xC0, 0x00, 0x00, sw.SW2()})
		data = append(data, more...)
		sw = sw2
	}
	return data, sw
}

// transceiveChain sends data with command chaining (255-byte parts) and
// Le=00 on the last part, and collects the answer.
func (c *testCard) transceiveChain(ins, p1, p2 byte, data []byte) ([]byte, apdu.Status) {
	c.t.Helper()
	parts := chained(ins, p1, p2, data)
	for _, a := range parts[:len(parts)-1] {
		c.must(a, apdu.SWOK)
	}
	return c.transceive(append(parts[len(parts)-1], 0x00))
}

func (c *testCard) verifyPIN(pin string) {
	c.t.Helper()
	c.must(caseAPDU(0, 0x20, 0x00, 0x80, []byte(pin), false), apdu.SWOK)
}

func des3(t testing.TB, key []byte) cipher.Block {
	b, err := des.NewTripleDESCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cbc(b cipher.Block, encrypt bool, in []byte) []byte {
	out := make([]byte, len(in))
	iv := make([]byte, des.BlockSize)
	if encrypt {
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, in)
	} else {
		cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, in)
	}
	return out
}

// adminAuth performs OpenSC's mutual authentication with key.
func (c *testCard) adminAuth(key []byte) {
	c.t.Helper()
	if err := c.tryAdminAuth(key); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCard) tryAdminAuth(key []byte) error {
	c.must(h("00 22 C1 A4 03 83 01 80"), apdu.SWOK)
	r1 := h("0102030405060708090A0B0C0D0E0F10")
	resp := c.must(append(append(h("00 87 00 00 14 7C 12 81 10"), r1...), 0), apdu.SWOK)
	if len(resp) != 20 {
		return fmt.Errorf("challenge answer % X", resp)
	}
	r2 := resp[4:]
	blk := des3(c.t, key)
	plain := append(append(append([]byte{}, r2...), r1...), h("11 22 33 44 55 66 77 80")...)
	cg := cbc(blk, true, plain)
	data, sw := c.send(append(append(h("00 87 00 00 2C 7C 2A 82 28"), cg...), 0))
	if sw != apdu.SWOK {
		return sw
	}
	if len(data) != 44 {
		return fmt.Errorf("card cryptogram % X", data)
	}
	dec := cbc(blk, false, data[4:])
	if string(dec[:16]) != string(r1) || string(dec[16:32]) != string(r2) || dec[39] != 0x80 {
		return fmt.Errorf("card cryptogram decrypts to % X", dec)
	}
	return nil
}

// keyEFFCP is the FCP OpenSC writes for a key container (§3.8): exchange
// keys get decipher (raw, PKCS#1, OAEP) and sign (raw, PKCS#1) templates,
// signature keys only sign templates, with OpenSC's wrong 83 01 83.
func keyEFFCP(kref byte, exchange bool, sizeID byte) []byte {
	crt := func(tag, alg, ref byte) []byte {
		return ber.Encode(uint32(tag), []byte{0x80, 0x01, alg, 0x83, 0x01, ref, 0x95, 0x01, 0x40})
	}
	var a5 []byte
	if exchange {
		a5 = append(a5, crt(0xB8, 0x00|sizeID, kref)...)
		a5 = append(a5, crt(0xB8, 0x80|sizeID, kref)...)
		a5 = append(a5, crt(0xB8, 0x40|sizeID, kref)...)
		a5 = append(a5, crt(0xB6, 0x10|sizeID, kref)...)
		a5 = append(a5, crt(0xB6, 0x50|sizeID, kref)...)
	} else {
		a5 = append(a5, crt(0xB6, 0x10|sizeID, 0x83)...)
		a5 = append(a5, crt(0xB6, 0x50|sizeID, 0x83)...)
	}
	fcp := ber.Append(nil, 0x82, []byte{kindKey})
	fcp = ber.Append(fcp, 0x83, []byte{0xB0, kref})
	fcp = ber.Append(fcp, 0x8C, []byte{0x8F, 0x10, 0x10, 0x10, 0x00})
	fcp = ber.Append(fcp, 0xA5, a5)
	return ber.Encode(0x62, fcp)
}

func sizeID(bits int) byte {
	for id, b := range keySizes {
		if b == bits {
			return id
		}
	}
	panic(bits)
}

// createKeyEF creates and activates key EF B0<kref> as OpenSC does.
func (c *testCard) createKeyEF(kref byte, exchange bool, bits int) {
	c.t.Helper()
	c.must(caseAPDU(0, 0xE0, 0, 0, keyEFFCP(kref, exchange, sizeID(bits)), false), apdu.SWOK)
	c.must(h("00 44 00 00"), apdu.SWOK)
}

// importTemplate builds the PUT DATA 3FFF key-import template for k.
// withZero writes INTEGERs as DER (leading 00 when the MSB is set, as
// Windows does); otherwise as raw unsigned bytes (OpenSC).
func importTemplate(kref byte, k *rsa.PrivateKey, withZero bool) []byte {
	integer := func(x *big.Int) []byte {
		b := x.Bytes()
		if len(b) == 0 {
			b = []byte{0}
		}
		if withZero && b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return ber.Encode(0x02, b)
	}
	var seq []byte
	for _, x := range []*big.Int{big.NewInt(0), k.N, big.NewInt(int64(k.E)), k.D, k.Primes[0], k.Primes[1],
		k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv} {
		seq = append(seq, integer(x)...)
	}
	a5 := ber.Append(nil, 0x83, []byte{keyTypeRSA})
	a5 = ber.Append(a5, 0x84, []byte{0x00})
	a5 = ber.Append(a5, 0x87, ber.Encode(0x30, seq))
	t := ber.Append(nil, 0x84, []byte{kref})
	t = ber.Append(t, 0xA5, a5)
	return ber.Encode(0x70, t)
}

// importKey imports k into B0<kref> (PIN must be verified).
func (c *testCard) importKey(kref byte, k *rsa.PrivateKey, withZero bool) {
	c.t.Helper()
	c.mustAll(chained(0xDB, 0x3F, 0xFF, importTemplate(kref, k, withZero)), apdu.SWOK)
}

// readPub reads the public key of kref with OpenSC's request.
func (c *testCard) readPub(kref byte) (*rsa.PublicKey, apdu.Status) {
	c.t.Helper()
	data, sw := c.transceive(append(h("00 CB 3F FF 0A 70 08 84 01"), kref, 0xA5, 0x03, 0x7F, 0x49, 0x80, 0x00))
	if sw != apdu.SWOK {
		return nil, sw
	}
	pub, err := parsePublicKeyTemplate(data)
	if err != nil {
		c.t.Fatalf("public key template % X: %v", data, err)
	}
	return pub, sw
}

func parsePublicKeyTemplate(b []byte) (*rsa.PublicKey, error) {
	t, rest, err := ber.ParseOne(b)
	if err != nil || t.Tag != 0x7F49 || len(rest) != 0 {
		return nil, fmt.Errorf("not one 7F49 template (%v)", err)
	}
	n, ok, err := ber.Find(t.Value, 0x81)
	if err != nil || !ok || len(n) == 0 || n[0] == 0 {
		return nil, fmt.Errorf("modulus: %v %v", ok, err)
	}
	e, ok, err := ber.Find(t.Value, 0x82)
	if err != nil || !ok || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("exponent: %v %v", ok, err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
}
