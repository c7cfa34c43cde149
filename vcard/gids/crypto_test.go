package gids

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// TestMutualAuthVector replays the verified trace of docs/reference/gids-protocol.md §2.9
// (key = 24 × 00): with R2 and Z2 injected through Rand, the card's
// cryptogram must equal the quoted one byte for byte.
func TestMutualAuthVector(t *testing.T) {
	var (
		r1       = h("E8B7768A71144F638F8F667AC2D49B21")
		r2       = h("702F57D6CB0E98E1A67CEEAD5C2AA08B")
		z2       = h("6C5544797A9111")
		hostCG   = h("39E01ED04D1BDD705253C04459F232A33FD86A1B81A15BEAD2F1C12014281E69F7E24FC8AE0DAE6D")
		cardCG   = h("C354B74C317AF331D985B873BB6501345C8BFE044447831BDE298377552AE6189DE44D979074E0BB")
		step3APD = append(append(h("00 87 00 00 2C 7C 2A 82 28"), hostCG...), 0)
	)
	// The quoted values are consistent with the key (checked independently
	// of the card).
	blk := des3(t, make([]byte, 24))
	if got := cbc(blk, false, hostCG); !bytes.Equal(got, append(append(append(slicesClone(r2), r1...), h("405652F2F554A8")...), 0x80)) {
		t.Fatalf("host cryptogram decrypts to % X", got)
	}
	if got := cbc(blk, false, cardCG); !bytes.Equal(got, append(append(append(slicesClone(r1), r2...), z2...), 0x80)) {
		t.Fatalf("card cryptogram decrypts to % X", got)
	}

	c := newInitCard(t)
	c.must(h("00 22 C1 A4 03 83 01 80"), apdu.SWOK)
	c.rand.Queue(r2)
	c.rand.Queue(z2)
	got := c.must(append(append(h("00 87 00 00 14 7C 12 81 10"), r1...), 0), apdu.SWOK)
	if diff := cmp.Diff(append(h("7C 12 81 10"), r2...), got); diff != "" {
		t.Fatalf("step 2 (-want +got):\n%s", diff)
	}
	got = c.must(step3APD, apdu.SWOK)
	if diff := cmp.Diff(append(h("7C 2A 82 28"), cardCG...), got); diff != "" {
		t.Fatalf("card cryptogram (-want +got):\n%s", diff)
	}
	if !c.sec.keys.has(adminKeyRef) {
		t.Fatal("admin not authenticated")
	}
	// Replay → 6985; admin status kept.
	c.must(step3APD, apdu.SWConditionsNotSatisfied)
	// RESET RETRY COUNTER works, then everybody is logged out.
	c.must(h("00 2C 02 80 06 31 31 31 31 31 31"), apdu.SWOK)
	c.must(h("00 2C 02 80 06 31 31 31 31 31 31"), apdu.SWSecurityStatusNotSatisfied)
	// Step 3 without step 2 → 6985.
	c2 := newInitCard(t)
	c2.must(h("00 22 C1 A4 03 83 01 80"), apdu.SWOK)
	c2.must(step3APD, apdu.SWConditionsNotSatisfied)
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

var sizes = []int{1024, 2048, 3072, 4096}

// cryptoCard returns an initialised card with exchange keys of every size
// imported into B081..B084 (DER INTEGERs for 2048 and 4096, OpenSC's raw
// unsigned INTEGERs for the others) and the PIN verified.
func cryptoCard(t *testing.T) *testCard {
	c := newInitCard(t)
	c.verifyPIN(testPIN)
	for i, bits := range sizes {
		kref := byte(0x81 + i)
		c.createKeyEF(kref, true, bits)
		c.importKey(kref, testKey(t, fmt.Sprintf("rsa%d", bits)), i%2 == 1)
	}
	return c
}

func TestSignDecryptRoundTrips(t *testing.T) {
	c := cryptoCard(t)
	if diff := cmp.Diff([]byte{0x81, 0x82, 0x83, 0x84}, c.KeyRefs()); diff != "" {
		t.Errorf("KeyRefs (-want +got):\n%s", diff)
	}
	for i, bits := range sizes {
		kref := byte(0x81 + i)
		id := sizeID(bits)
		k := testKey(t, fmt.Sprintf("rsa%d", bits))
		t.Run(fmt.Sprint(bits), func(t *testing.T) {
			// Public key read and introspection agree with the imported key.
			pub, sw := c.readPub(kref)
			if sw != apdu.SWOK || !pub.Equal(&k.PublicKey) {
				t.Fatalf("public key: %v", sw)
			}
			if p, ok := c.PublicKey(kref); !ok || !p.Equal(&k.PublicKey) {
				t.Fatal("PublicKey() differs")
			}

			// OpenSC's CKM_SHA256_RSA_PKCS: DigestInfo + hash, card pads.
			digest := sha256.Sum256([]byte("cardharness"))
			di := append(h("30 31 30 0D 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20"), digest[:]...)
			c.must(caseAPDU(0, 0x22, 0x41, 0xB6, []byte{0x80, 0x01, 0x50 | id, 0x84, 0x01, kref}, false), apdu.SWOK)
			sig, sw := c.transceive(caseAPDU(0, 0x2A, 0x9E, 0x9A, di, true))
			if sw != apdu.SWOK {
				t.Fatalf("sign: %v", sw)
			}
			if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
				t.Errorf("signature does not verify: %v", err)
			}
			// The longest PKCS#1 input, k-11 bytes, chained if needed
			// (4096-bit: 501 bytes).
			kLen := bits / 8
			long := bytes.Repeat([]byte{0x5A}, kLen-11)
			sig, sw = c.transceiveChain(0x2A, 0x9E, 0x9A, long)
			if sw != apdu.SWOK {
				t.Fatalf("sign %d bytes: %v", len(long), sw)
			}
			if err := rsa.VerifyPKCS1v15(&k.PublicKey, 0, long, sig); err != nil {
				t.Errorf("long signature does not verify: %v", err)
			}
			if _, sw := c.transceiveChain(0x2A, 0x9E, 0x9A, append(long, 0)); sw != apdu.SWWrongLength {
				t.Errorf("k-10 bytes: %v, want 6700", sw)
			}

			// Raw signature of a host-padded block (alg 1?).
			c.must(caseAPDU(0, 0x22, 0x41, 0xB6, []byte{0x80, 0x01, 0x10 | id, 0x84, 0x01, kref}, false), apdu.SWOK)
			block := pkcs1Type1(kLen, di)
			raw, sw := c.transceiveChain(0x2A, 0x9E, 0x9A, block)
			if sw != apdu.SWOK {
				t.Fatalf("raw sign: %v", sw)
			}
			if err := rsa.VerifyPKCS1v15(&k.PublicKey, 0, di, raw); err != nil {
				t.Errorf("raw signature does not verify: %v", err)
			}

			// Decipher PKCS#1 v1.5 (alg 4?), OpenSC's chaining of k bytes.
			msg := []byte("hello world")
			//lint:ignore SA1019 the card implements RSAES-PKCS1-v1_5.
			ct, err := rsa.EncryptPKCS1v15(rand.Reader, &k.PublicKey, msg)
			if err != nil {
				t.Fatal(err)
			}
			c.must(caseAPDU(0, 0x22, 0x41, 0xB8, []byte{0x80, 0x01, 0x40 | id, 0x84, 0x01, kref}, false), apdu.SWOK)
			pt, sw := c.transceiveChain(0x2A, 0x80, 0x86, ct)
			if sw != apdu.SWOK || !bytes.Equal(pt, msg) {
				t.Errorf("decipher PKCS#1: %v % X", sw, pt)
			}
			// Windows chains in 240-byte parts.
			pt, sw = c.sendChunks(0x2A, 0x80, 0x86, ct, 240)
			if sw != apdu.SWOK || !bytes.Equal(pt, msg) {
				t.Errorf("decipher PKCS#1 (240-byte chunks): %v % X", sw, pt)
			}
			// A padding-indicator byte makes it one byte too long.
			if _, sw := c.transceiveChain(0x2A, 0x80, 0x86, append([]byte{0}, ct...)); sw != apdu.SWWrongLength {
				t.Errorf("with padding indicator: %v, want 6700", sw)
			}

			// OAEP with SHA-1 (alg 8?).
			ct, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, &k.PublicKey, msg, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.must(caseAPDU(0, 0x22, 0x41, 0xB8, []byte{0x80, 0x01, 0x80 | id, 0x84, 0x01, kref}, false), apdu.SWOK)
			pt, sw = c.transceiveChain(0x2A, 0x80, 0x86, ct)
			if sw != apdu.SWOK || !bytes.Equal(pt, msg) {
				t.Errorf("decipher OAEP: %v % X", sw, pt)
			}

			// Raw decipher (alg 0?).
			m := new(big.Int).SetBytes(bytes.Repeat([]byte{0x33}, kLen-1))
			ct = new(big.Int).Exp(m, big.NewInt(int64(k.E)), k.N).FillBytes(make([]byte, kLen))
			c.must(caseAPDU(0, 0x22, 0x41, 0xB8, []byte{0x80, 0x01, 0x00 | id, 0x84, 0x01, kref}, false), apdu.SWOK)
			pt, sw = c.transceiveChain(0x2A, 0x80, 0x86, ct)
			if sw != apdu.SWOK || !bytes.Equal(pt, m.FillBytes(make([]byte, kLen))) {
				t.Errorf("decipher raw: %v", sw)
			}
		})
	}
}

// sendChunks sends data chained in n-byte parts, Le=00 on the last one.
func (c *testCard) sendChunks(ins, p1, p2 byte, data []byte, n int) ([]byte, apdu.Status) {
	c.t.Helper()
	for len(data) > n {
		c.must(caseAPDU(0x10, ins, p1, p2, data[:n], false), apdu.SWOK)
		data = data[n:]
	}
	return c.transceive(caseAPDU(0, ins, p1, p2, data, true))
}

func pkcs1Type1(k int, t []byte) []byte {
	b := make([]byte, k)
	b[1] = 0x01
	for i := 2; i < k-len(t)-1; i++ {
		b[i] = 0xFF
	}
	copy(b[k-len(t):], t)
	return b
}

// realKeys generates one key per size with the real generator, once per
// test binary.
var realKeys = struct {
	once sync.Once
	m    map[int]*rsa.PrivateKey
}{}

func TestGenerateRealKeys(t *testing.T) {
	c := newInitCard(t)
	// The production generator, remembering its keys for the assertions.
	realKeys.once.Do(func() { realKeys.m = map[int]*rsa.PrivateKey{} })
	var mu sync.Mutex
	c.genKey = func(bits int) (*rsa.PrivateKey, error) {
		k, err := rsa.GenerateKey(c.rand, bits)
		mu.Lock()
		realKeys.m[bits] = k
		mu.Unlock()
		return k, err
	}
	c.verifyPIN(testPIN)
	for i, bits := range sizes {
		kref := byte(0x81 + i)
		c.createKeyEF(kref, true, bits)
		// OpenSC's case 3 GENERATE: 61xx, treated as success.
		_, sw := c.send(caseAPDU(0, 0x47, 0, 0, []byte{0xAC, 0x06, 0x80, 0x01, sizeID(bits), 0x83, 0x01, kref}, false))
		if sw.SW1() != 0x61 {
			t.Fatalf("RSA-%d: GENERATE answered %v", bits, sw)
		}
		k := realKeys.m[bits]
		if k == nil || k.N.BitLen() != bits || k.E != 65537 {
			t.Fatalf("RSA-%d: bad key", bits)
		}
		pub, sw := c.readPub(kref)
		if sw != apdu.SWOK || !pub.Equal(&k.PublicKey) {
			t.Fatalf("RSA-%d: public key read %v", bits, sw)
		}
		// The template: 7F49 { 81 modulus without leading 00, 82 01 00 01 }.
		tmpl, _ := c.transceive(append(h("00 CB 3F FF 0A 70 08 84 01"), kref, 0xA5, 0x03, 0x7F, 0x49, 0x80, 0x00))
		want := ber.Encode(0x7F49, append(ber.Encode(0x81, k.N.Bytes()), 0x82, 0x03, 0x01, 0x00, 0x01))
		if diff := cmp.Diff(want, tmpl); diff != "" {
			t.Errorf("RSA-%d template (-want +got):\n%s", bits, diff)
		}
		// Sign with the generated key.
		c.must(caseAPDU(0, 0x22, 0x41, 0xB6, []byte{0x80, 0x01, 0x50 | sizeID(bits), 0x84, 0x01, kref}, false), apdu.SWOK)
		sig, sw := c.transceive(caseAPDU(0, 0x2A, 0x9E, 0x9A, []byte("hello world"), true))
		if sw != apdu.SWOK || rsa.VerifyPKCS1v15(pub, 0, []byte("hello world"), sig) != nil {
			t.Errorf("RSA-%d: signature %v", bits, sw)
		}
	}
	// Windows' case 4 GENERATE returns the template directly (1024: 140 bytes).
	tmpl, sw := c.transceive(caseAPDU(0, 0x47, 0, 0, []byte{0xAC, 0x06, 0x80, 0x01, 0x06, 0x83, 0x01, 0x81}, true))
	if sw != apdu.SWOK || len(tmpl) != 140 {
		t.Fatalf("case 4 GENERATE: %v, %d bytes", sw, len(tmpl))
	}
	if pub, err := parsePublicKeyTemplate(tmpl); err != nil || !pub.Equal(&realKeys.m[1024].PublicKey) {
		t.Errorf("case 4 template: %v", err)
	}
}

func TestKeyImport(t *testing.T) {
	c := newInitCard(t)
	c.verifyPIN(testPIN)
	k := testKey(t, "rsa2048")
	c.createKeyEF(0x81, true, 2048)
	for _, der := range []bool{false, true} {
		// Both INTEGER forms (raw unsigned, DER with leading 00) import the
		// same key.
		tmpl := importTemplate(0x81, k, der)
		c.mustAll(chained(0xDB, 0x3F, 0xFF, tmpl), apdu.SWOK)
		got, ok := c.PublicKey(0x81)
		if !ok || !got.Equal(&k.PublicKey) {
			t.Fatalf("der=%v: imported public key differs", der)
		}
		rec, _ := c.Store().Get(keyKey(0xB081))
		dk, err := decodeRSAKey("key/B081", rec)
		if err != nil || !dk.Equal(k) {
			t.Fatalf("der=%v: stored key differs: %v", der, err)
		}
	}
	// Windows' 240-byte chunks.
	tmpl := importTemplate(0x81, testKey(t, "rsa2048b"), true)
	for len(tmpl) > 240 {
		c.must(caseAPDU(0x10, 0xDB, 0x3F, 0xFF, tmpl[:240], false), apdu.SWOK)
		tmpl = tmpl[240:]
	}
	c.must(caseAPDU(0, 0xDB, 0x3F, 0xFF, tmpl, false), apdu.SWOK)
	if got, _ := c.PublicKey(0x81); !got.Equal(&testKey(t, "rsa2048b").PublicKey) {
		t.Error("240-byte chunked import failed")
	}

	// Broken keys: inconsistent CRT value, wrong d, wrong modulus size,
	// missing INTEGER, nonzero version, huge exponent.
	bad := func(name string, mutate func(k *rsa.PrivateKey), want apdu.Status) {
		t.Helper()
		kk := *k
		kk.Precomputed = k.Precomputed
		kk.Primes = []*big.Int{k.Primes[0], k.Primes[1]}
		mutate(&kk)
		_, sw := c.sendAll(chained(0xDB, 0x3F, 0xFF, importTemplate(0x81, &kk, false)))
		if sw != want {
			t.Errorf("%s: %v, want %v", name, sw, want)
		}
	}
	bad("dp+2", func(k *rsa.PrivateKey) { k.Precomputed.Dp = new(big.Int).Add(k.Precomputed.Dp, big.NewInt(2)) }, apdu.SWReferenceDataNotUsable)
	bad("d+2", func(k *rsa.PrivateKey) { k.D = new(big.Int).Add(k.D, big.NewInt(2)) }, apdu.SWReferenceDataNotUsable)
	bad("p swapped", func(k *rsa.PrivateKey) { k.Primes = []*big.Int{k.Primes[1], k.Primes[1]} }, apdu.SWReferenceDataNotUsable)
	bad("e=3", func(k *rsa.PrivateKey) { k.E = 3 }, apdu.SWReferenceDataNotUsable)
	bad("n/2", func(k *rsa.PrivateKey) { k.N = new(big.Int).Rsh(k.N, 1) }, apdu.SWFuncNotSupported)
	// The key stays the last good one.
	if got, _ := c.PublicKey(0x81); !got.Equal(&testKey(t, "rsa2048b").PublicKey) {
		t.Error("a failed import changed the key")
	}
	// Import needs the PIN once operational.
	c.must(h("00 20 00 82"), apdu.SWOK)
	_, sw := c.sendAll(chained(0xDB, 0x3F, 0xFF, importTemplate(0x81, k, false)))
	if sw != apdu.SWSecurityStatusNotSatisfied {
		t.Errorf("import without PIN: %v", sw)
	}
}

// sendAll sends a chain and returns the last answer (earlier parts must
// answer 9000).
func (c *testCard) sendAll(cmds [][]byte) ([]byte, apdu.Status) {
	c.t.Helper()
	for _, a := range cmds[:len(cmds)-1] {
		c.must(a, apdu.SWOK)
	}
	return c.send(cmds[len(cmds)-1])
}
