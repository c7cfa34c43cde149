package gids

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/vcard/store"
)

// fuzzBase holds the stores FuzzProcess starts from: a blank card, and an
// initialised one with a 1024-bit exchange key in B081 and an empty,
// activated 2048-bit key EF B082.
var fuzzBase struct {
	once        sync.Once
	blank, init map[string][]byte
}

func fuzzBases(t testing.TB) (blank, init map[string][]byte) {
	fuzzBase.once.Do(func() {
		fuzzBase.blank = newTestCard(t, nil).Store().Snapshot()
		c := newInitCard(t)
		c.verifyPIN(testPIN)
		c.createKeyEF(0x81, true, 1024)
		c.importKey(0x81, testKey(t, "rsa1024"), false)
		c.createKeyEF(0x82, true, 2048)
		fuzzBase.init = c.Store().Snapshot()
	})
	return fuzzBase.blank, fuzzBase.init
}

// Fuzz input: byte 0 selects the card (bit 0: initialised), then APDUs as
// <length byte> <bytes>; length FF is a card reset instead, FE a power
// cycle. At most maxFuzzAPDUs APDUs run.
const maxFuzzAPDUs = 64

func encodeFuzz(initialised bool, apdus [][]byte) []byte {
	out := []byte{0}
	if initialised {
		out[0] = 1
	}
	for _, a := range apdus {
		if len(a) >= 0xFE {
			a = a[:0xFD]
		}
		out = append(out, byte(len(a)))
		out = append(out, a...)
	}
	return out
}

// seedAPDUs is the number of APDUs per seed taken from the vector files:
// small seeds keep the fuzzer's minimisation of new inputs quick.
const seedAPDUs = 8

// vectorSeeds returns the commands of the vector files in short runs.
func vectorSeeds(t testing.TB) [][][]byte {
	files, _ := filepath.Glob(filepath.Join("testdata", "vectors", "*.txt"))
	var out [][][]byte
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var cmds [][]byte
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case strings.HasPrefix(line, ">"):
				if b, err := testutil.ParseHex(line[1:]); err == nil {
					cmds = append(cmds, b)
				}
			case strings.HasPrefix(line, "verify"):
				cmds = append(cmds, h("00 20 00 80 06 31 32 33 34 35 36"))
			}
		}
		fh.Close()
		for len(cmds) > 0 {
			n := min(len(cmds), seedAPDUs)
			out = append(out, cmds[:n])
			cmds = cmds[n:]
		}
	}
	return out
}

// FuzzProcess sends random APDU sequences to a blank and to an initialised
// card: Process must never panic (not even a recovered panic), always
// answer at least a status word, and leave a store that decodes.
func FuzzProcess(f *testing.F) {
	verify := h("00 20 00 80 06 31 32 33 34 35 36")
	for _, cmds := range vectorSeeds(f) {
		f.Add(encodeFuzz(true, cmds))
		f.Add(encodeFuzz(false, cmds))
	}
	f.Add(encodeFuzz(true, [][]byte{verify, h("00 22 41 B6 06 80 01 56 84 01 81"), h("00 2A 9E 9A 03 01 02 03 00")}))
	f.Add(encodeFuzz(true, [][]byte{verify, h("00 22 41 B8 06 80 01 06 84 01 81"), h("00 2A 80 86 02 00 01 00")}))
	f.Add(encodeFuzz(true, [][]byte{verify, h("00 47 00 00 08 AC 06 80 01 07 83 01 82"), h("00 C0 00 00 00")}))
	f.Add(encodeFuzz(true, append([][]byte{verify}, chained(0xDB, 0x3F, 0xFF, importTemplate(0x82, testKey(f, "rsa2048"), true))...)))
	f.Add(encodeFuzz(true, [][]byte{h("00 22 C1 A4 03 83 01 80"), h("00 87 00 00 14 7C 12 81 10 E8 B7 76 8A 71 14 4F 63 8F 8F 66 7A C2 D4 9B 21 00")}))
	f.Add([]byte{1, 0xFF, 0xFE, 4, 0x00, 0xE6, 0x00, 0x00})

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}

		blank, init := fuzzBases(t)
		st := store.NewMemory()
		base := blank
		if data[0]&1 != 0 {
			base = init
		}
		if err := st.Restore(base); err != nil {
			t.Fatal(err)
		}
		c := newTestCard(t, st)
		c.panicHook = func(v any) { t.Fatalf("Process panicked: %v", v) }
		rest := data[1:]
		for n := 0; len(rest) > 0 && n < maxFuzzAPDUs; n++ {
			l := int(rest[0])
			rest = rest[1:]
			switch l {
			case 0xFF:
				c.Reset()
				continue
			case 0xFE:
				c.PowerOff()
				c.PowerOn()
				continue
			}
			l = min(l, len(rest))
			cmd := rest[:l]
			rest = rest[l:]
			if resp := c.Process(cmd); len(resp) < 2 {
				t.Fatalf("APDU % X: response % X", cmd, resp)
			}
		}
		if err := checkStore(c.Card); err != nil {
			t.Fatalf("store does not decode: %v", err)
		}
		// Introspection works on whatever state the sequence produced.
		c.LifeCycle()
		c.PINTriesLeft()
		for _, k := range c.KeyRefs() {
			if _, ok := c.PublicKey(k); !ok {
				t.Fatalf("KeyRefs lists %02X but PublicKey fails", k)
			}
		}
	})
}
