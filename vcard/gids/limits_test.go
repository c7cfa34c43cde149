package gids

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// TestEFLimit: CREATE FILE answers 6A84 once maxEFs files exist.
func TestEFLimit(t *testing.T) {
	c := newInitCard(t)
	c.verifyPIN(testPIN)
	n := countEFs(c.Store())
	for ; n < maxEFs; n++ {
		fid := uint16(0x1000 + n)
		c.must(createDOEF(fid, [3]byte{0x03, 0x30, 0x00}), apdu.SWOK)
	}
	c.must(createDOEF(0x0FFF, [3]byte{0x03, 0x30, 0x00}), apdu.SWNotEnoughMemory)
	// Deleting one makes room again (the last EF created is current).
	c.must(h("00 44 00 00"), apdu.SWOK)
	c.must(h("00 A4 00 0C 02 10 07"), apdu.SWOK)
	c.must(h("00 E4 00 00"), apdu.SWConditionsNotSatisfied) // never activated
	c.must(h("00 44 00 00"), apdu.SWOK)
	c.must(h("00 E4 00 00"), apdu.SWOK)
	c.must(createDOEF(0x0FFF, [3]byte{0x03, 0x30, 0x00}), apdu.SWOK)
}

// TestEFContentLimit: an EF holds at most maxEFContent bytes of DO values.
func TestEFContentLimit(t *testing.T) {
	c := newInitCard(t)
	c.verifyPIN(testPIN)
	big := make([]byte, 60000)
	var i int
	for i = 0; ; i++ {
		_, sw := c.sendAll(putDO(0xA013, 0xDF8100+uint32(i), big))
		if sw == apdu.SWNotEnoughMemory {
			break
		}
		if sw != apdu.SWOK || i > 100 {
			t.Fatalf("DO %d: %v", i, sw)
		}
	}
	if i != maxEFContent/len(big) {
		t.Errorf("%d DOs of %d bytes fit, want %d", i, len(big), maxEFContent/len(big))
	}
	// Replacing one by a smaller value still works.
	c.mustAll(putDO(0xA013, 0xDF8100, []byte{1}), apdu.SWOK)
}

// TestKeyImportGarbage: key values that are well-formed BER but not an RSA
// key (zeros, tiny numbers) are refused without a panic.
func TestKeyImportGarbage(t *testing.T) {
	c := newInitCard(t)
	c.panicHook = func(v any) { t.Fatalf("panic: %v", v) }
	c.verifyPIN(testPIN)
	c.createKeyEF(0x81, true, 1024)
	k := testKey(t, "rsa1024")
	n := k.N.Bytes()
	integers := func(vals ...[]byte) []byte {
		var seq []byte
		for _, v := range vals {
			seq = append(seq, ber.Encode(0x02, v)...)
		}
		return ber.Encode(0x30, seq)
	}
	zero, one := []byte{0}, []byte{1}
	e := []byte{1, 0, 1}
	cases := map[string][]byte{
		"all zero":         integers(zero, n, e, zero, zero, zero, zero, zero, zero),
		"ones":             integers(zero, n, e, one, one, one, one, one, one),
		"n as everything":  integers(zero, n, e, n, n, n, n, n, n),
		"eight integers":   integers(zero, n, e, one, one, one, one, one),
		"ten integers":     integers(zero, n, e, one, one, one, one, one, one, one),
		"version 1":        integers(one, n, e, one, one, one, one, one, one),
		"empty integer":    integers(zero, n, e, nil, one, one, one, one, one),
		"exponent 2^40":    integers(zero, n, []byte{1, 0, 0, 0, 0, 0}, one, one, one, one, one, one),
		"not a sequence":   ber.Encode(0x31, integers(zero, n, e, one, one, one, one, one, one)[2:]),
		"trailing garbage": append(integers(zero, n, e, one, one, one, one, one, one), 0x00),
	}
	for name, seq := range cases {
		a5 := ber.Append(ber.Append(nil, 0x83, []byte{2}), 0x87, seq)
		tmpl := ber.Encode(0x70, ber.Append(ber.Append(nil, 0x84, []byte{0x81}), 0xA5, a5))
		_, sw := c.sendAll(chained(0xDB, 0x3F, 0xFF, tmpl))
		if sw != apdu.SWReferenceDataNotUsable {
			t.Errorf("%s: %v, want 6984", name, sw)
		}
	}
	if refs := c.KeyRefs(); len(refs) != 0 {
		t.Errorf("a garbage key was stored: % X", refs)
	}
}

// TestDefaults: New with zero Options uses crypto/rand (random card IDs)
// and logs nothing; a logger at debug level sees no PIN.
func TestDefaults(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(InitParams{PIN: "secret-pin"}); err != nil {
		t.Fatal(err)
	}
	id, _ := c.DO(0xA012, 0xDF20)
	if len(id) != 16 || bytes.Equal(id, make([]byte, 16)) {
		t.Errorf("cardid % X", id)
	}
	var buf bytes.Buffer
	c2, _ := New(Options{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err := c2.Initialize(InitParams{PIN: "secret-pin"}); err != nil {
		t.Fatal(err)
	}
	pinHex := fmt.Sprintf("%X", "secret-pin")
	if s := buf.String(); !strings.Contains(s, "ins=24") || strings.Contains(s, "secret-pin") || strings.Contains(strings.ToUpper(s), pinHex) {
		t.Errorf("debug log:\n%s", s)
	}
}
