package gids

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/store"
)

// FuzzKilledStore (issue 8 finding 7) drives an initialised card through
// a sequence of minidriver-like operations by someone who knows only the
// PIN, cutting the power at fuzzer-chosen commit steps (the store's tear
// hook, the same cut the SIGKILL tests make for real) and between
// commands, and re-creating the card from what is on "disk" each time.
// After every recovery it checks what the card promises:
//
//   - the store decodes and every record belongs to an existing EF;
//   - a command whose commit was torn answered 6581, never success, and
//     the recovered state is exactly the state before that command (each
//     command all or nothing, so a minidriver's cardcf bump, cmapfile or
//     certificate write is never half there); any other state on disk is
//     the one the card had in memory;
//   - no security status survives the power cut (PUT DATA A010 needs the
//     PIN again);
//   - the PIN holder changed nothing that needs the admin: cardid, A014,
//     the admin key, the system EFs and the life cycle are as personalised,
//     and the PIN try limit is still 3 (with at most 3 tries left).
//
// Input: pairs of bytes <op> <param>. op's low nibble picks an operation
// from killOps, bit 7 arms a power cut at the first commit of that
// operation (bits 4-5 choose the step: write, sync or rename; 3 means
// between commands, after the operation).
func FuzzKilledStore(f *testing.F) {
	f.Add([]byte{0x00, 0, 0x81, 3, 0x02, 1})
	f.Add([]byte{0x00, 0, 0x05, 1, 0x86, 1, 0x03, 7, 0x92, 2})
	f.Add([]byte{0x00, 0, 0xA3, 9, 0x07, 2, 0xB8, 2, 0x0D, 0, 0x01, 5})
	f.Add([]byte{0x0A, 0, 0x0A, 0, 0x00, 0, 0x09, 0, 0x8C, 0, 0x0E, 0})
	f.Add([]byte{0x00, 0, 0x0F, 4, 0x00, 0xE6, 0x00, 0x00, 0x0B, 0, 0x01, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 2*maxKillOps {
			in = in[:2*maxKillOps]
		}
		base := killBase(t)
		fs := afero.NewMemMapFs()
		open := func() *testCard {
			st, err := store.Open(fs, "/card")
			if err != nil {
				t.Fatalf("store does not open after a power cut: %v", err)
			}
			c := newTestCard(t, st)
			c.panicHook = func(v any) { t.Fatalf("Process panicked: %v", v) }
			return c
		}
		c := open()
		if err := c.Store().Restore(base); err != nil {
			t.Fatal(err)
		}
		k := &killRun{t: t, c: c}
		for len(in) >= 2 {
			op, param := in[0], in[1]
			in = in[2:]
			// A raw APDU takes its bytes from the input.
			var raw []byte
			if op&0x0F == opRaw {
				n := min(int(param)%48, len(in))
				raw, in = in[:n], in[n:]
			}
			step := -1
			if op&0x80 != 0 {
				step = int(op>>4) & 3
			}
			before := c.Store().Snapshot()
			torn := k.run(op&0x0F, param, raw, step)
			if torn || step == 3 {
				// Power cut: what survives is what is on disk.
				c = open()
				k.c = c
				if torn {
					if diff := cmp.Diff(before, c.Store().Snapshot()); diff != "" {
						t.Fatalf("after a cut in op %d the state is not the one before it (-before +after):\n%s", op&0x0F, diff)
					}
				}
				checkKillInvariants(t, c, base, true)
			}
		}
		mem := c.Store().Snapshot()
		c = open()
		if diff := cmp.Diff(mem, c.Store().Snapshot()); diff != "" {
			t.Fatalf("state on disk differs from the card's (-memory +disk):\n%s", diff)
		}
		checkKillInvariants(t, c, base, true)
	})
}

const maxKillOps = 48

// killBase is the initialised card every run starts from, with an
// imported key in B081.
var killBaseOnce struct {
	sync.Once
	snap map[string][]byte
}

func killBase(t *testing.T) map[string][]byte {
	killBaseOnce.Do(func() {
		c := newInitCard(t)
		c.verifyPIN(testPIN)
		c.createKeyEF(0x81, true, 1024)
		c.importKey(0x81, testKey(t, "rsa1024"), false)
		killBaseOnce.snap = c.Store().Snapshot()
	})
	return killBaseOnce.snap
}

// killRun is one fuzz run's card and the tear hook bookkeeping.
type killRun struct {
	t     *testing.T
	c     *testCard
	armed bool // the next commit step `step` fails
	fired bool
}

const opRaw = 0x0F

// killOps are minidriver-like operations of a PIN holder (and a few
// attempts beyond the PIN): each returns the APDUs to send for param.
var killOps = [opRaw]func(p byte) [][]byte{
	0: func(byte) [][]byte { return [][]byte{caseAPDU(0, 0x20, 0, 0x80, []byte(testPIN), false)} },
	// cardcf bump (A010/DF22, 6 bytes)
	1: func(p byte) [][]byte {
		return [][]byte{h(fmt.Sprintf("00 DB A0 10 09 DF 22 06 00 00 %02X 00 %02X 00", p, p^0x5A))}
	},
	// cmapfile of 0..3 records of 86 bytes
	2: func(p byte) [][]byte { return putDO(0xA010, 0xDF23, bytes.Repeat([]byte{p}, 86*int(p%4))) },
	// certificate file kxc0N (DF24..DF27), compressed-size payload
	3: func(p byte) [][]byte { return putDO(0xA010, 0xDF24+uint32(p%4), bytes.Repeat([]byte{p}, 200+8*int(p))) },
	// delete a certificate: empty value (twice deletes, GA semantics)
	4: func(p byte) [][]byte { return putDO(0xA010, 0xDF24+uint32(p%4), nil) },
	// create and activate a key container B082..B084
	5: func(p byte) [][]byte {
		return [][]byte{caseAPDU(0, 0xE0, 0, 0, keyEFFCP(0x82+p%3, p&4 != 0, 0x06), false), h("00 44 00 00")}
	},
	// import a 1024-bit key into B081..B084
	6: func(p byte) [][]byte { return chained(0xDB, 0x3F, 0xFF, importTemplate(0x81+p%4, killKey, p&8 != 0)) },
	// generate into B081..B084
	7: func(p byte) [][]byte {
		return [][]byte{{0x00, 0x47, 0x00, 0x00, 0x08, 0xAC, 0x06, 0x80, 0x01, 0x06, 0x83, 0x01, 0x81 + p%4, 0x00}}
	},
	// delete a key container B081..B084
	8: func(p byte) [][]byte {
		return [][]byte{{0x00, 0xA4, 0x00, 0x0C, 0x02, 0xB0, 0x81 + p%4}, h("00 E4 00 00")}
	},
	// keymap (A000/DF20)
	9: func(p byte) [][]byte { return putDO(0xA000, 0xDF20, bytes.Repeat([]byte{p}, int(p))) },
	// wrong PIN (uses a try; a right VERIFY restores them)
	10: func(byte) [][]byte { return [][]byte{h("00 20 00 80 04 30 30 30 30")} },
	// logout
	11: func(byte) [][]byte { return [][]byte{h("00 20 00 82")} },
	// attempts beyond the PIN: cardid, A014, admin key, system files, terminate
	12: func(p byte) [][]byte {
		switch p % 6 {
		case 0:
			return [][]byte{h("00 DB A0 12 13 DF 20 10 EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE")}
		case 1:
			return [][]byte{h("00 DB A0 14 03 DF 30 00")}
		case 2:
			return [][]byte{caseAPDU(0, 0xDB, 0x3F, 0xFF, ber70AdminKey, false)}
		case 3:
			return [][]byte{{0x00, 0xA4, 0x00, 0x0C, 0x02, 0xA0, 0x10 + p%5}, h("00 E4 00 00")}
		case 4:
			return [][]byte{h("00 E6 00 00")}
		}
		return [][]byte{h("00 2C 02 80 04 39 39 39 39")}
	},
	// PIN change to the same PIN (a commit that must not lose the PIN)
	13: func(byte) [][]byte { return [][]byte{caseAPDU(0, 0x24, 0, 0x80, []byte(testPIN+testPIN), false)} },
	// card reset (volatile state only)
	14: func(byte) [][]byte { return nil },
}

var (
	killKey        = mustKey("rsa1024")
	ber70AdminKey  = h("70 24 84 01 80 A5 1F 87 18 5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A 88 03 B0 73 DC")
	errPowerCut    = errors.New("power cut")
	commitSteps    = [3]string{"write", "sync", "rename"}
	swMemFailBytes = []byte{0x65, 0x81}
)

func mustKey(name string) *rsa.PrivateKey { return loadKeyFile("testdata/keys/" + name + ".pem") }

// run sends op's APDUs; with step 0..2 the first commit fails at that
// step. It reports whether a commit was torn (the card then "died": the
// rest of the operation is not sent).
func (k *killRun) run(op, param byte, raw []byte, step int) bool {
	var cmds [][]byte
	switch {
	case op == opRaw:
		cmds = [][]byte{raw}
	case op == 14:
		k.c.Reset()
		return false
	default:
		cmds = killOps[op](param)
	}
	k.armed, k.fired = step >= 0 && step < 3, false
	st := k.c.Store()
	if k.armed {
		st.SetTearHook(func(s string) error {
			if k.armed && s == commitSteps[step] {
				k.armed, k.fired = false, true
				return errPowerCut
			}
			return nil
		})
		defer st.SetTearHook(nil)
	}
	for _, cmd := range cmds {
		resp := k.c.Process(cmd)
		if len(resp) < 2 {
			k.t.Fatalf("APDU % X: response % X", cmd, resp)
		}
		if k.fired {
			if !bytes.Equal(resp[len(resp)-2:], swMemFailBytes) {
				k.t.Fatalf("APDU % X: commit torn but the card answered % X, want 65 81", cmd, resp[len(resp)-2:])
			}
			return true
		}
	}
	return false
}

// checkKillInvariants checks what the card promises after recovery (see
// FuzzKilledStore).
func checkKillInvariants(t *testing.T, c *testCard, base map[string][]byte, afterCut bool) {
	t.Helper()
	if err := checkStore(c.Card); err != nil {
		t.Fatalf("store after recovery: %v", err)
	}
	st := c.Store()
	same := func(key string) {
		got, ok := st.Get(key)
		want, wok := base[key]
		if ok != wok || !bytes.Equal(got, want) {
			t.Fatalf("%s changed by a PIN holder: % X (present %v), want % X", key, got, ok, want)
		}
	}
	for _, key := range []string{"do/A012/DF20", keyKey(0xB080), recLifeCycle} {
		same(key)
	}
	for _, fid := range []uint16{0xA000, 0xA010, 0xA011, 0xA012, 0xA013, 0xA014, 0xB080} {
		same(efKey(fid))
	}
	if got, want := st.Keys(doPrefix(0xA014)), keysWithPrefix(base, doPrefix(0xA014)); !cmp.Equal(got, want) {
		t.Fatalf("A014 DOs %v, want %v", got, want)
	}
	p, set, err := loadPIN(st)
	// The PIN itself may have been changed: the PIN holder may do that.
	if err != nil || !set || p.limit != pinTryLimit || p.tries > p.limit {
		t.Fatalf("PIN record after recovery: %+v set %v err %v", p, set, err)
	}
	if afterCut {
		// No security status survives the cut.
		if _, sw := c.send(h("00 DB A0 10 03 DF 30 00")); sw != apdu.SWSecurityStatusNotSatisfied {
			t.Fatalf("PUT DATA A010 right after a power cut answered %04X, want 6982", uint16(sw))
		}
	}
}

func keysWithPrefix(m map[string][]byte, prefix string) []string {
	var out []string
	for k := range m {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return out
}
