package gids

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/store"
)

// checkStore decodes every record of the card's store: the invariant that
// no command sequence may break.
func checkStore(c *Card) error {
	st := c.Store()
	if _, err := loadLifeCycle(st); err != nil {
		return err
	}
	if _, _, err := loadPIN(st); err != nil {
		return err
	}
	for _, k := range st.Keys("") {
		switch {
		case k == recLifeCycle || k == recPIN:
		case k == recKeyGen:
			if _, err := loadKeyGenCount(st); err != nil {
				return err
			}
		case strings.HasPrefix(k, prefixEF):
			fid, ok := parseFIDKey(k, prefixEF)
			if !ok {
				return fmt.Errorf("bad key %q", k)
			}
			if _, _, err := loadEF(st, fid); err != nil {
				return err
			}
		case strings.HasPrefix(k, prefixDO):
			parts := strings.Split(k, "/")
			if len(parts) != 3 {
				return fmt.Errorf("bad key %q", k)
			}
			fid, ok := parseFIDKey("ef/"+parts[1], prefixEF)
			if !ok {
				return fmt.Errorf("bad key %q", k)
			}
			if _, ok, _ := loadEF(st, fid); !ok {
				return fmt.Errorf("%q without its EF", k)
			}
			if _, err := listDOs(st, fid); err != nil {
				return err
			}
		case strings.HasPrefix(k, prefixKey):
			fid, ok := parseFIDKey(k, prefixKey)
			if !ok {
				return fmt.Errorf("bad key %q", k)
			}
			if f, ok, _ := loadEF(st, fid); !ok || f.kind != kindKey {
				return fmt.Errorf("%q without its key EF", k)
			}
			b, _ := st.Get(k)
			t, err := keyKind(k, b)
			if err != nil {
				return err
			}
			if t == keyTypeRSA {
				if _, err := decodeRSAKey(k, b); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unknown record %q", k)
		}
	}
	return nil
}

// TestPersistence: keys, DOs, PIN tries and the admin key survive
// re-creating the card on the same directory; volatile state does not.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	fs := afero.NewOsFs()
	open := func() *testCard {
		st, err := store.Open(fs, dir)
		if err != nil {
			t.Fatal(err)
		}
		return newTestCard(t, st)
	}
	c := open()
	if err := c.Initialize(InitParams{PIN: testPIN, AdminKey: testAdminKey, CardID: testCardID}); err != nil {
		t.Fatal(err)
	}
	c.verifyPIN(testPIN)
	c.createKeyEF(0x81, true, 2048)
	c.importKey(0x81, testKey(t, "rsa2048"), true)
	c.createKeyEF(0x82, false, 1024)
	c.must(h("00 47 00 00 08 AC 06 80 01 06 83 01 82"), apdu.BytesRemaining(140))
	c.must(h("00 DB A0 10 09 DF 22 06 00 00 01 00 02 00"), apdu.SWOK)
	c.adminAuth(testAdminKey[:])
	newAdmin := h("0123456789ABCDEF FEDCBA9876543210 0011223344556677")
	c.must(append(append(h("00 DB 3F FF 26 70 24 84 01 80 A5 1F 87 18"), newAdmin...), h("88 03 B0 73 DC")...), apdu.SWOK)
	c.must(h("00 20 00 80 04 30 30 30 30"), apdu.RetriesLeft(2))
	snap := c.Store().Snapshot()

	c2 := open()
	if diff := cmp.Diff(snap, c2.Store().Snapshot()); diff != "" {
		t.Fatalf("reopened store differs (-want +got):\n%s", diff)
	}
	if c2.PINTriesLeft() != 2 || c2.LifeCycle() != Operational {
		t.Errorf("tries %d, life cycle %v", c2.PINTriesLeft(), c2.LifeCycle())
	}
	c2.must(h("00 CB 3F FF 04 5C 02 7F 71 00"), apdu.SWOK)
	if v, _ := c2.DO(0xA010, 0xDF22); !cmp.Equal(v, h("00 00 01 00 02 00")) {
		t.Errorf("cardcf = % X", v)
	}
	if diff := cmp.Diff([]byte{0x81, 0x82}, c2.KeyRefs()); diff != "" {
		t.Errorf("KeyRefs (-want +got):\n%s", diff)
	}
	for kref, name := range map[byte]string{0x81: "rsa2048", 0x82: "rsa1024"} {
		if p, ok := c2.PublicKey(kref); !ok || !p.Equal(&testKey(t, name).PublicKey) {
			t.Errorf("key %02X lost", kref)
		}
	}
	// Nothing volatile survives: the PIN must be presented again.
	c2.must(h("00 DB A0 10 03 DF 24 00"), apdu.SWSecurityStatusNotSatisfied)
	c2.verifyPIN(testPIN)
	c2.must(h("00 22 41 B6 06 80 01 57 84 01 81"), apdu.SWOK)
	sig, sw := c2.transceive(h("00 2A 9E 9A 05 68 65 6C 6C 6F 00"))
	if sw != apdu.SWOK || rsa.VerifyPKCS1v15(&testKey(t, "rsa2048").PublicKey, 0, []byte("hello"), sig) != nil {
		t.Errorf("signature after reopen: %v", sw)
	}
	if err := c2.tryAdminAuth(testAdminKey[:]); !errors.Is(err, apdu.SWSecurityStatusNotSatisfied) {
		t.Errorf("old admin key: %v", err)
	}
	c2.adminAuth(newAdmin)
	if err := checkStore(c2.Card); err != nil {
		t.Error(err)
	}
}

// TestPINTryIsPersistent: a wrong PIN is recorded before the card answers,
// so killing the card right after 63Cx cannot restore the try.
func TestPINTryIsPersistent(t *testing.T) {
	dir := t.TempDir()
	fs := afero.NewOsFs()
	st, err := store.Open(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCard(t, st)
	if err := c.Initialize(InitParams{PIN: testPIN, AdminKey: testAdminKey, CardID: testCardID}); err != nil {
		t.Fatal(err)
	}
	for want := 2; want >= 0; want-- {
		c.must(h("00 20 00 80 04 30 30 30 30"), apdu.RetriesLeft(want))
		// "Kill": open the directory again without closing anything.
		st2, err := store.Open(fs, dir)
		if err != nil {
			t.Fatal(err)
		}
		c2 := newTestCard(t, st2)
		if got := c2.PINTriesLeft(); got != want {
			t.Fatalf("after kill: %d tries, want %d", got, want)
		}
	}
	st3, _ := store.Open(fs, dir)
	newTestCard(t, st3).must(h("00 20 00 80 06 31 32 33 34 35 36"), apdu.SWAuthMethodBlocked)
}

// TestTornCommands: when the store cannot commit (power lost during the
// write), the command answers 6581 and neither the persistent nor the
// security state changes, at every commit step.
func TestTornCommands(t *testing.T) {
	type cmdCase struct {
		name  string
		setup func(c *testCard)
		cmds  [][]byte // the last one is torn
		after func(t *testing.T, c *testCard)
	}
	cases := []cmdCase{
		{"wrong PIN", nil, [][]byte{h("00 20 00 80 04 30 30 30 30")}, func(t *testing.T, c *testCard) {
			if c.PINTriesLeft() != 3 {
				t.Errorf("tries %d", c.PINTriesLeft())
			}
		}},
		{"right PIN after a wrong one", func(c *testCard) { c.must(h("00 20 00 80 04 30 30 30 30"), apdu.RetriesLeft(2)) },
			[][]byte{h("00 20 00 80 06 31 32 33 34 35 36")}, func(t *testing.T, c *testCard) {
				if c.sec.pin || c.PINTriesLeft() != 2 {
					t.Errorf("verified %v, tries %d", c.sec.pin, c.PINTriesLeft())
				}
			}},
		{"chained PUT DATA", func(c *testCard) { c.verifyPIN(testPIN) },
			putDO(0xA010, 0xDF24, make([]byte, 600)), nil},
		{"key import", func(c *testCard) { c.verifyPIN(testPIN); c.createKeyEF(0x81, true, 2048) },
			chained(0xDB, 0x3F, 0xFF, importTemplate(0x81, testKey(t, "rsa2048"), false)), nil},
		{"DELETE FILE A020", func(c *testCard) {
			c.verifyPIN(testPIN)
			c.must(h("00 E0 00 00 0E 62 0C 82 01 39 83 02 A0 20 8C 03 03 30 00"), apdu.SWOK)
			c.must(h("00 44 00 00"), apdu.SWOK)
		},
			[][]byte{h("00 E4 00 00")}, func(t *testing.T, c *testCard) {
				if c.sec.currentEF != 0xA020 {
					t.Errorf("current EF %04X", c.sec.currentEF)
				}
			}},
		{"CREATE FILE", func(c *testCard) { c.verifyPIN(testPIN) },
			[][]byte{h("00 E0 00 00 0E 62 0C 82 01 39 83 02 A0 20 8C 03 03 30 00")}, func(t *testing.T, c *testCard) {
				if c.sec.currentEF != 0 {
					t.Errorf("current EF %04X", c.sec.currentEF)
				}
			}},
		{"TERMINATE DF", func(c *testCard) { c.adminAuth(testAdminKey[:]) }, [][]byte{h("00 E6 00 00")}, func(t *testing.T, c *testCard) {
			if !c.sec.keys.has(adminKeyRef) || c.LifeCycle() != Operational {
				t.Errorf("admin %v, %v", c.sec.keys.has(adminKeyRef), c.LifeCycle())
			}
		}},
		{"RESET RETRY COUNTER", func(c *testCard) { c.adminAuth(testAdminKey[:]) }, [][]byte{h("00 2C 02 80 04 31 31 31 31")},
			func(t *testing.T, c *testCard) {
				if !c.sec.keys.has(adminKeyRef) {
					t.Error("admin status lost")
				}
			}},
	}
	for _, step := range []string{"write", "sync", "rename"} {
		for _, tc := range cases {
			t.Run(step+"/"+tc.name, func(t *testing.T) {
				dir := t.TempDir()
				fs := afero.NewOsFs()
				st, err := store.Open(fs, dir)
				if err != nil {
					t.Fatal(err)
				}
				c := newTestCard(t, st)
				if err := c.Initialize(InitParams{PIN: testPIN, AdminKey: testAdminKey, CardID: testCardID}); err != nil {
					t.Fatal(err)
				}
				if tc.setup != nil {
					tc.setup(c)
				}
				before := c.Store().Snapshot()
				for _, a := range tc.cmds[:len(tc.cmds)-1] {
					c.must(a, apdu.SWOK)
				}
				st.SetTearHook(func(s string) error {
					if s == step {
						return errors.New("power lost")
					}
					return nil
				})
				c.must(tc.cmds[len(tc.cmds)-1], apdu.SWMemoryFailure)
				st.SetTearHook(nil)
				if diff := cmp.Diff(before, c.Store().Snapshot()); diff != "" {
					t.Errorf("state changed (-before +after):\n%s", diff)
				}
				st2, err := store.Open(fs, dir)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(before, st2.Snapshot()); diff != "" {
					t.Errorf("state on disk changed (-before +after):\n%s", diff)
				}
				if tc.after != nil {
					tc.after(t, c)
				}
			})
		}
	}
}

// TestCorruptRecords: records that do not decode make the commands that
// touch them answer 6F00, never panic, and leave the rest usable.
func TestCorruptRecords(t *testing.T) {
	corruptions := map[string][]byte{
		recLifeCycle:   {0x01, 0x55},
		recPIN:         {0x02, 3, 3, '1', '2', '3', '4'},
		"ef/A010":      {0x01, kindDO, 0x07, 0x62, 0xFF},
		"ef/B080":      {0x01, kindKey, 0x07, 0x62, 0x09, 0x82, 0x01, 0x39, 0x83, 0x02, 0xB0, 0x80, 0x8C, 0x00},
		"do/A010/DF22": {},
		"key/B080":     {0x01, keyTypeDES3, 1, 2, 3},
		"key/B081":     {0x01, keyTypeRSA, 0x30, 0x03, 0x02, 0x01, 0x00},
	}
	cmds := [][]byte{
		h("00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00"),
		h("00 CB A0 10 02 5C 00 00"),
		h("00 CB A0 10 04 5C 02 DF 22 00"),
		h("00 CB 3F FF 04 5C 02 7F 71 00"),
		h("00 20 00 80 06 31 32 33 34 35 36"),
		h("00 22 C1 A4 03 83 01 80"),
		h("00 87 00 00 04 7C 02 81 00 00"),
		h("00 87 00 00 0C 7C 0A 82 08 00 00 00 00 00 00 00 00"),
		h("00 22 41 B6 06 80 01 56 84 01 81"),
		h("00 2A 9E 9A 03 01 02 03 00"),
		h("00 CB 3F FF 0A 70 08 84 01 81 A5 03 7F 49 80 00"),
		h("00 A4 00 0C 02 A0 10"),
		h("00 E4 00 00"),
		h("00 DB A0 10 03 DF 24 00"),
	}
	for key, val := range corruptions {
		t.Run(key, func(t *testing.T) {
			c := newInitCard(t)
			c.verifyPIN(testPIN)
			c.createKeyEF(0x81, true, 1024)
			c.importKey(0x81, testKey(t, "rsa1024"), false)
			if err := c.Store().Update(func(tx *store.Tx) error { tx.Put(key, val); return nil }); err != nil {
				t.Fatal(err)
			}
			if err := checkStore(c.Card); err == nil {
				t.Errorf("checkStore accepts the corruption")
			}
			saw6F00 := false
			for _, a := range cmds {
				_, sw := c.send(a)
				saw6F00 = saw6F00 || sw == apdu.SWUnknown
			}
			if !saw6F00 {
				t.Error("no command noticed the corruption")
			}
			// Introspection never panics.
			c.DO(0xA010, 0xDF22)
			c.LifeCycle()
			c.PINTriesLeft()
			c.KeyRefs()
			c.PublicKey(0x81)
			// A factory reset recovers the card.
			if err := c.FactoryReset(); err != nil {
				t.Fatal(err)
			}
			if err := c.Initialize(InitParams{PIN: testPIN}); err != nil {
				t.Fatal(err)
			}
		})
	}
	// New refuses a store whose life cycle does not decode.
	st := store.NewMemory()
	_ = st.Update(func(tx *store.Tx) error { tx.Put(recLifeCycle, []byte{9}); return nil })
	if _, err := New(Options{Store: st}); !errors.Is(err, errCorrupt) {
		t.Errorf("New on a corrupt store: %v", err)
	}
}

// TestConcurrentIntrospection: the harness may inspect the card while a
// reader link drives it (run with -race).
func TestConcurrentIntrospection(t *testing.T) {
	c := newInitCard(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c.DO(0xA010, 0xDF22)
				c.LifeCycle()
				c.PINTriesLeft()
				for _, k := range c.KeyRefs() {
					c.PublicKey(k)
				}
				c.ATR()
			}
		}()
	}
	c.verifyPIN(testPIN)
	for i := range 4 {
		kref := byte(0x81 + i)
		c.createKeyEF(kref, true, 1024)
		c.must(append(h("00 47 00 00 08 AC 06 80 01 06 83 01"), kref), apdu.BytesRemaining(140))
		c.must(h("00 DB A0 10 09 DF 22 06 00 00 01 00 02 00"), apdu.SWOK)
		c.Reset()
		c.verifyPIN(testPIN)
	}
	close(stop)
	wg.Wait()
	if got := c.KeyRefs(); len(got) != 4 {
		t.Errorf("KeyRefs = % X", got)
	}
}
