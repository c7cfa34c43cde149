package gids

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/vcard/apdu"
)

func xorTCK(atr []byte) byte {
	var x byte
	for _, b := range atr[1:] {
		x ^= b
	}
	return x
}

func TestDefaultATR(t *testing.T) {
	want := h("3B 8D 01 80 FB A0 00 00 03 97 42 54 46 59 02 01")
	if !bytes.Equal(DefaultATR[:len(want)], want) || len(DefaultATR) != len(want)+1 {
		t.Fatalf("DefaultATR = % X", DefaultATR)
	}
	// TCK: XOR of T0 .. last historical byte; the XOR over T0..TCK is 0.
	if got, want := DefaultATR[len(DefaultATR)-1], xorTCK(want); got != want {
		t.Errorf("TCK = %02X, want %02X", got, want)
	}
	if x := xorTCK(DefaultATR); x != 0 {
		t.Errorf("XOR of T0..TCK = %02X, want 00", x)
	}
	// Structure: T0 = 8D (TD1 present, 13 historical bytes), TD1 = 01
	// (T=1, no further interface bytes), historical bytes = 80 (compact
	// TLV) FB (tag F = application identifier, 11 bytes) + full GIDS AID.
	if DefaultATR[1] != 0x8D || DefaultATR[2] != 0x01 {
		t.Errorf("T0/TD1 = %02X %02X", DefaultATR[1], DefaultATR[2])
	}
	hist := DefaultATR[3 : len(DefaultATR)-1]
	if len(hist) != int(DefaultATR[1]&0x0F) {
		t.Errorf("%d historical bytes, T0 says %d", len(hist), DefaultATR[1]&0x0F)
	}
	if diff := cmp.Diff(append([]byte{0x80, 0xFB}, aid...), hist); diff != "" {
		t.Errorf("historical bytes (-want +got):\n%s", diff)
	}
	// The same rule reproduces the TCK of Microsoft's TPM virtual smart
	// card ATR quoted in docs/reference/gids-protocol.md §1.3.
	vsc := h("3B 8D 01 80 FB A0 00 00 03 97 42 54 46 59 04 01 CF")
	if x := xorTCK(vsc); x != 0 {
		t.Errorf("MS VSC ATR check fails: %02X", x)
	}

	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.ATR(), DefaultATR) {
		t.Errorf("ATR() = % X", c.ATR())
	}
	c.ATR()[0] = 0 // callers cannot change the card's ATR
	if c.ATR()[0] != 0x3B {
		t.Error("ATR() aliases the card's ATR")
	}
	c2, _ := New(Options{ATR: h("3B 80 80 01 01")})
	if !bytes.Equal(c2.ATR(), h("3B 80 80 01 01")) {
		t.Errorf("custom ATR() = % X", c2.ATR())
	}
}

// The initial masterfile quoted byte for byte in docs/reference/gids-protocol.md §3.3.
var specMasterfile = h(`01 6D 73 63 70 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 A0 00 00 00
00 00 00 00 00 00 00 00 63 61 72 64 69 64 00 00 00 00 00 20 DF 00 00 12 A0 00 00 00 00 00 00 00 00 00
00 00 63 61 72 64 61 70 70 73 00 00 00 21 DF 00 00 10 A0 00 00 00 00 00 00 00 00 00 00 00 63 61 72 64
63 66 00 00 00 00 00 22 DF 00 00 10 A0 00 00 6D 73 63 70 00 00 00 00 00 63 6D 61 70 66 69 6C 65 00 00
00 23 DF 00 00 10 A0 00 00`)

func TestInitialize(t *testing.T) {
	c := newInitCard(t)
	if len(specMasterfile) != 141 {
		t.Fatalf("spec masterfile has %d bytes", len(specMasterfile))
	}
	type do struct {
		ef, tag uint16
		value   []byte
	}
	// §3.2: the DOs present after gids-tool --initialize.
	want := []do{
		{0xA000, 0xDF1F, specMasterfile},
		{0xA010, 0xDF21, h("6D 73 63 70 00 00 00 00")},
		{0xA010, 0xDF22, h("00 00 00 00 00 00")},
		{0xA010, 0xDF23, []byte{}},
		{0xA012, 0xDF20, testCardID[:]},
	}
	for _, w := range want {
		v, ok := c.DO(w.ef, w.tag)
		if !ok {
			t.Errorf("DO %04X/%04X missing", w.ef, w.tag)
			continue
		}
		if diff := cmp.Diff(w.value, v); diff != "" {
			t.Errorf("DO %04X/%04X (-want +got):\n%s", w.ef, w.tag, diff)
		}
	}
	gotKeys := c.Store().Keys(prefixDO)
	wantKeys := []string{"do/A000/DF1F", "do/A010/DF21", "do/A010/DF22", "do/A010/DF23", "do/A012/DF20"}
	if diff := cmp.Diff(wantKeys, gotKeys); diff != "" {
		t.Errorf("DO set (-want +got):\n%s", diff)
	}
	wantEFs := []string{"ef/A000", "ef/A010", "ef/A011", "ef/A012", "ef/A013", "ef/A014", "ef/B080"}
	if diff := cmp.Diff(wantEFs, c.Store().Keys(prefixEF)); diff != "" {
		t.Errorf("EF set (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"key/B080"}, c.Store().Keys(prefixKey)); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if k, ok, err := desKey(c.Store(), 0xB080); err != nil || !ok || !bytes.Equal(k, testAdminKey[:]) {
		t.Errorf("admin key = % X %v %v", k, ok, err)
	}
	if got := c.LifeCycle(); got != Operational {
		t.Errorf("LifeCycle = %v", got)
	}
	if got := c.PINTriesLeft(); got != 3 {
		t.Errorf("PINTriesLeft = %d", got)
	}
	if got := c.KeyRefs(); len(got) != 0 {
		t.Errorf("KeyRefs = % X", got)
	}
	// The masterfile as OpenSC reads it (§2.14 step 19 wrote DF 1F 81 8D).
	got := c.must(h("00 CB A0 00 04 5C 02 DF 1F 00"), apdu.SWOK)
	if diff := cmp.Diff(append(h("DF 1F 81 8D"), specMasterfile...), got); diff != "" {
		t.Errorf("GET DATA masterfile (-want +got):\n%s", diff)
	}
	// Initialization leaves nobody authenticated.
	c.must(h("00 DB A0 10 03 DF 24 00"), apdu.SWSecurityStatusNotSatisfied)

	// gids-tool refuses an initialised card; so does Initialize.
	err := c.Initialize(InitParams{PIN: testPIN})
	if !errors.Is(err, ErrInitialized) {
		t.Errorf("second Initialize: %v", err)
	}
	if err := c.FactoryReset(); err != nil {
		t.Fatal(err)
	}
	if c.LifeCycle() != Creation || len(c.Store().Keys("")) != 0 {
		t.Errorf("after FactoryReset: %v, %q", c.LifeCycle(), c.Store().Keys(""))
	}
	// A zero card ID is replaced by 16 bytes from Rand.
	c.rand.Queue(h("F0 F1 F2 F3 F4 F5 F6 F7 F8 F9 FA FB FC FD FE FF"))
	if err := c.Initialize(InitParams{PIN: "1234567890123456", AdminKey: testAdminKey}); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.DO(0xA012, 0xDF20); !bytes.Equal(v, h("F0 F1 F2 F3 F4 F5 F6 F7 F8 F9 FA FB FC FD FE FF")) {
		t.Errorf("random cardid = % X", v)
	}
	for _, pin := range []string{"123", "12345678901234567"} {
		if err := newTestCard(t, nil).Initialize(InitParams{PIN: pin}); err == nil {
			t.Errorf("Initialize accepted PIN %q", pin)
		}
	}
}

func TestMasterfileEncoding(t *testing.T) {
	if diff := cmp.Diff(specMasterfile, encodeMasterfile(initialMasterfile)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
