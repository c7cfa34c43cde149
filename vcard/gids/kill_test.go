package gids

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/store"
)

// The SIGKILL test: a child process runs a card on a directory store and
// issues a long sequence of writes (certificate-sized data objects, cardcf,
// key imports) as fast as it can; the parent kills it with SIGKILL at
// random moments and checks, after every kill, that the card opens and that
// no data object or key is torn.

const killChildEnv = "CARDHARNESS_GIDS_KILL_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// killPayload is generation gen's certificate data object: a header with
// the generation and a SHA-256 of the body, then the body. A torn write
// shows as a bad hash or a wrong length.
func killPayload(gen uint32) []byte {
	body := bytes.Repeat([]byte{byte(gen), byte(gen >> 8)}, 700+int(gen%97))
	sum := sha256.Sum256(body)
	out := binary.BigEndian.AppendUint32(nil, gen)
	out = append(out, sum[:]...)
	return append(out, body...)
}

func checkPayload(b []byte) (uint32, error) {
	if len(b) < 36 {
		return 0, fmt.Errorf("payload of %d bytes", len(b))
	}
	gen := binary.BigEndian.Uint32(b)
	if want := killPayload(gen); !bytes.Equal(b, want) {
		return gen, fmt.Errorf("payload of generation %d is torn (%d bytes, want %d)", gen, len(b), len(want))
	}
	return gen, nil
}

func loadKeyFile(path string) *rsa.PrivateKey {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		kk, err2 := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err2 != nil {
			panic(err)
		}
		k = kk.(*rsa.PrivateKey)
	}
	return k
}

func killChild(dir string) {
	st, err := store.OpenDir(dir)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	c, err := New(Options{Store: st})
	if err != nil {
		fmt.Println("new:", err)
		os.Exit(1)
	}
	send := func(cmd []byte) apdu.Status {
		r, _ := apdu.ParseResponse(c.Process(cmd))
		return r.SW
	}
	mustOK := func(what string, cmds ...[]byte) {
		for _, cmd := range cmds {
			if sw := send(cmd); sw != apdu.SWOK {
				fmt.Printf("%s: % X -> %v\n", what, cmd, sw)
				os.Exit(1)
			}
		}
	}
	if c.LifeCycle() == Creation {
		if err := c.Initialize(InitParams{PIN: testPIN, AdminKey: testAdminKey, CardID: testCardID}); err != nil {
			fmt.Println("init:", err)
			os.Exit(1)
		}
	}
	mustOK("verify", apdu.Short(0, 0x20, 0x00, 0x80, []byte(testPIN), false))
	if _, ok := c.store.Get("ef/B081"); !ok {
		mustOK("create key file", apdu.Short(0, 0xE0, 0, 0, keyEFFCP(0x81, true, 0x07), false), []byte{0x00, 0x44, 0x00, 0x00})
	}
	keys := []*rsa.PrivateKey{loadKeyFile(filepath.Join("testdata", "keys", "rsa2048.pem")), loadKeyFile(filepath.Join("testdata", "keys", "rsa2048b.pem"))}
	var gen uint32
	if v, ok := c.DO(0xA010, 0xDF24); ok {
		gen, _ = checkPayload(v)
	}
	fmt.Println("started")
	for {
		gen++
		// A certificate-sized data object, chained like OpenSC sends it.
		p := killPayload(gen)
		tlv := append([]byte{0xDF, 0x24, 0x82, byte(len(p) >> 8), byte(len(p))}, p...)
		mustOK("put cert", chained(0xDB, 0xA0, 0x10, tlv)...)
		mustOK("put cardcf", apdu.Short(0, 0xDB, 0xA0, 0x10, append([]byte{0xDF, 0x22, 0x06, 0, 0, 0, 0}, byte(gen), byte(gen>>8)), false))
		mustOK("import key", chained(0xDB, 0x3F, 0xFF, importTemplate(0x81, keys[gen%2], gen%3 == 0))...)
	}
}

func TestSIGKILLNeverTearsAnObjectOrKey(t *testing.T) {
	dir := t.TempDir()
	keys := []*rsa.PrivateKey{testKey(t, "rsa2048"), testKey(t, "rsa2048b")}
	rng := rand.New(rand.NewPCG(3, 4))
	var last uint32
	kills := 20
	for round := 0; round < kills; round++ {
		cmd := testutil.StartChild(t, "started", killChildEnv+"="+dir)
		time.Sleep(time.Duration(5000+rng.IntN(60000)) * time.Microsecond)
		testutil.KillChild(cmd)

		st, err := store.OpenDir(dir)
		if err != nil {
			t.Fatalf("round %d: the store does not open after SIGKILL: %v", round, err)
		}
		st.Close() // the next child needs the directory; reading stays possible
		c, err := New(Options{Store: st})
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if v, ok := c.DO(0xA010, 0xDF24); ok {
			gen, err := checkPayload(v)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if gen < last {
				t.Fatalf("round %d: generation went back from %d to %d", round, last, gen)
			}
			last = gen
		}
		if pub, ok := c.PublicKey(0x81); ok {
			if !pub.Equal(&keys[0].PublicKey) && !pub.Equal(&keys[1].PublicKey) {
				t.Fatalf("round %d: key 81 is neither imported key", round)
			}
		}
		if c.LifeCycle() != Operational || c.PINTriesLeft() != 3 {
			t.Fatalf("round %d: card state %v, %d tries", round, c.LifeCycle(), c.PINTriesLeft())
		}
	}
	if last == 0 {
		t.Fatal("no write sequence ever committed; the test proved nothing")
	}
	t.Logf("%d generations committed across %d kills", last, kills)
}
