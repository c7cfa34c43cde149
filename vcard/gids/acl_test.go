package gids

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/store"
)

// Authentication states of the access matrix.
const (
	authNone = iota
	authPIN
	authAdmin
	authBoth
	numAuth
)

var authNames = [numAuth]string{"none", "PIN", "admin", "PIN+admin"}

const (
	swOK   = apdu.SWOK
	swDeny = apdu.SWSecurityStatusNotSatisfied
)

// TestAccessMatrix runs every protected operation in every authentication
// state on an initialised card (docs/reference/gids-protocol.md §3.1, §4.2, §4.3) with a
// 1024-bit user key in B081 (OpenSC's FCP: 8C 05 8F 10 10 10 00).
func TestAccessMatrix(t *testing.T) {
	base := newInitCard(t)
	base.verifyPIN(testPIN)
	base.createKeyEF(0x81, true, 1024)
	base.importKey(0x81, testKey(t, "rsa1024"), false)
	base.must(h("00 DB A0 13 05 DF 20 02 01 02"), swOK)
	snap := base.Store().Snapshot()

	putKey := importTemplate(0x81, testKey(t, "rsa1024"), false)
	adminKey := h("00 DB 3F FF 26 70 24 84 01 80 A5 1F 87 18 000000000000000000000000000000000000000000000000 88 03 B0 73 DC")

	type op struct {
		name string
		cmds [][]byte // all but the last must answer 9000 when the last is expected to
		want [numAuth]apdu.Status
	}
	one := func(s string) [][]byte { return [][]byte{h(s)} }
	put := func(ef string) [][]byte { return one("00 DB " + ef + " 03 DF 30 00") }
	get := func(ef string) [][]byte { return one("00 CB " + ef + " 02 5C 00 00") }
	ops := []op{
		{"PUT DATA A000", put("A0 00"), [numAuth]apdu.Status{swDeny, swOK, swOK, swOK}},
		{"PUT DATA A010", put("A0 10"), [numAuth]apdu.Status{swDeny, swOK, swOK, swOK}},
		{"PUT DATA A011", put("A0 11"), [numAuth]apdu.Status{swDeny, swOK, swOK, swOK}},
		{"PUT DATA A012", put("A0 12"), [numAuth]apdu.Status{swDeny, swDeny, swOK, swOK}},
		{"PUT DATA A013", put("A0 13"), [numAuth]apdu.Status{swDeny, swOK, swOK, swOK}},
		{"PUT DATA A014", put("A0 14"), [numAuth]apdu.Status{swDeny, swDeny, swOK, swOK}},
		{"GET DATA A000", get("A0 00"), [numAuth]apdu.Status{swOK, swOK, swOK, swOK}},
		{"GET DATA A010", get("A0 10"), [numAuth]apdu.Status{swOK, swOK, swOK, swOK}},
		{"GET DATA A011", get("A0 11"), [numAuth]apdu.Status{swDeny, swDeny, swDeny, swDeny}},
		{"GET DATA A012", get("A0 12"), [numAuth]apdu.Status{swOK, swOK, swOK, swOK}},
		{"GET DATA A013", get("A0 13"), [numAuth]apdu.Status{swDeny, swOK, swOK, swOK}},
		{"GET DATA A014", get("A0 14"), [numAuth]apdu.Status{swDeny, swDeny, swOK, swOK}},
		{"CREATE FILE", one("00 E0 00 00 0E 62 0C 82 01 39 83 02 A0 20 8C 03 03 30 00"), [numAuth]apdu.Status{swDeny, swOK, swOK, swOK}},
		{"DELETE FILE A013", [][]byte{h("00 A4 00 0C 02 A0 13"), h("00 E4 00 00")}, [numAuth]apdu.Status{swDeny, swOK, swOK, swOK}},
		{"DELETE FILE B081", [][]byte{h("00 A4 00 0C 02 B0 81"), h("00 E4 00 00")}, [numAuth]apdu.Status{swDeny, swOK, swOK, swOK}},
		{"ACTIVATE FILE A010", [][]byte{h("00 A4 00 0C 02 A0 10"), h("00 44 00 00")}, [numAuth]apdu.Status{swOK, swOK, swOK, swOK}},
		{"GENERATE B081", one("00 47 00 00 08 AC 06 80 01 06 83 01 81 00"), [numAuth]apdu.Status{swDeny, swOK, swDeny, swOK}},
		{"MSE sign B081", one("00 22 41 B6 06 80 01 56 84 01 81"), [numAuth]apdu.Status{swDeny, swOK, swDeny, swOK}},
		{"MSE decipher B081", one("00 22 41 B8 06 80 01 46 84 01 81"), [numAuth]apdu.Status{swDeny, swOK, swDeny, swOK}},
		{"MSE+PSO sign B081", [][]byte{h("00 22 41 B6 06 80 01 56 84 01 81"), h("00 2A 9E 9A 03 01 02 03 00")}, [numAuth]apdu.Status{swDeny, swOK, swDeny, swOK}},
		{"read public key B081", one("00 CB 3F FF 0A 70 08 84 01 81 A5 03 7F 49 80 00"), [numAuth]apdu.Status{swOK, swOK, swOK, swOK}},
		{"read public key B080", one("00 CB 3F FF 0A 70 08 84 01 80 A5 03 7F 49 80 00"), [numAuth]apdu.Status{swDeny, swDeny, swDeny, swDeny}},
		{"PUT KEY user B081", chained(0xDB, 0x3F, 0xFF, putKey), [numAuth]apdu.Status{swDeny, swOK, swDeny, swOK}},
		{"PUT KEY admin B080", [][]byte{adminKey}, [numAuth]apdu.Status{swDeny, swDeny, swOK, swOK}},
		{"MSE admin key B080", one("00 22 C1 A4 03 83 01 80"), [numAuth]apdu.Status{swOK, swOK, swOK, swOK}},
		{"RESET RETRY COUNTER", one("00 2C 02 80 06 31 32 33 34 35 36"), [numAuth]apdu.Status{swDeny, swDeny, swOK, swOK}},
		{"CHANGE REFERENCE DATA P1=01", one("00 24 01 80 06 31 32 33 34 35 36"), [numAuth]apdu.Status{swDeny, swOK, swDeny, swOK}},
		{"CHANGE REFERENCE DATA P1=00", one("00 24 00 80 0C 31 32 33 34 35 36 36 35 34 33 32 31"), [numAuth]apdu.Status{swOK, swOK, swOK, swOK}},
		{"TERMINATE DF", one("00 E6 00 00"), [numAuth]apdu.Status{swDeny, swOK, swOK, swOK}},
	}

	var got strings.Builder
	var want strings.Builder
	row := func(b *strings.Builder, name string, sws [numAuth]apdu.Status) {
		fmt.Fprintf(b, "%-28s", name)
		for _, sw := range sws {
			fmt.Fprintf(b, " %04X", uint16(sw))
		}
		b.WriteString("\n")
	}
	header := fmt.Sprintf("%-28s %s\n", "", strings.Join(authNames[:], " "))
	got.WriteString(header)
	want.WriteString(header)
	for _, o := range ops {
		var res [numAuth]apdu.Status
		for a := range numAuth {
			st := store.NewMemory()
			if err := st.Restore(snap); err != nil {
				t.Fatal(err)
			}
			c := newTestCard(t, st)
			switch a {
			case authPIN:
				c.verifyPIN(testPIN)
			case authAdmin:
				c.adminAuth(testAdminKey[:])
			case authBoth:
				c.adminAuth(testAdminKey[:])
				c.verifyPIN(testPIN)
			}
			var sw apdu.Status
			for _, cmd := range o.cmds {
				if _, sw = c.send(cmd); sw != apdu.SWOK && sw.SW1() != 0x61 {
					break
				}
			}
			if sw.SW1() == 0x61 {
				sw = apdu.SWOK
			}
			res[a] = sw
		}
		row(&got, o.name, res)
		row(&want, o.name, o.want)
	}
	if diff := cmp.Diff(want.String(), got.String()); diff != "" {
		t.Errorf("access matrix (-want +got):\n%s", diff)
	}
}

// TestSecurityConditionByte checks the SC byte evaluation of §4.2 in all
// authentication states and in the creation state.
func TestSecurityConditionByte(t *testing.T) {
	// Columns: none, PIN, admin, PIN+admin, creation state (nobody).
	tests := []struct {
		sc   byte
		want [5]bool
	}{
		{0x00, [5]bool{true, true, true, true, true}},
		{0xFF, [5]bool{false, false, false, false, false}},
		{0x10, [5]bool{false, true, false, true, true}},
		{0x20, [5]bool{false, false, true, true, true}},
		{0x30, [5]bool{false, true, true, true, true}},
		{0x90, [5]bool{false, true, false, true, true}},
		{0xA0, [5]bool{false, false, true, true, true}},
		{0x11, [5]bool{false, true, false, true, true}},    // contact only: this card is contact
		{0x12, [5]bool{false, false, false, false, false}}, // contactless only
		{0x31, [5]bool{false, true, true, true, true}},
		{0x32, [5]bool{false, false, false, false, false}},
		{0x13, [5]bool{false, true, false, true, true}},    // other environments are ignored
		{0x01, [5]bool{false, false, false, false, false}}, // no authentication bit: never
		{0x40, [5]bool{false, false, false, false, false}},
		{0xB0, [5]bool{false, false, false, false, false}},
	}
	c := newTestCard(t, nil)
	for _, tt := range tests {
		var got [5]bool
		for i := range 5 {
			c.sec = secState{pin: i == 1 || i == 3, admin: i == 2 || i == 3}
			got[i] = c.checkSC(tt.sc, i == 4) == nil
		}
		if got != tt.want {
			t.Errorf("SC %02X: got %v, want %v", tt.sc, got, tt.want)
		}
	}
}

func TestSCFor(t *testing.T) {
	tests := []struct {
		acl     []byte
		op      byte
		sc      byte
		present bool
	}{
		{h("8F 10 10 10 00"), opGenerate, 0x10, true},
		{h("8F 10 10 10 00"), opMSE, 0x10, true},
		{h("8F 10 10 10 00"), opPutKey, 0x10, true},
		{h("8F 10 10 10 00"), opReadPublic, 0x00, true},
		{h("8F 10 10 10 00"), opDelete, 0, false},
		{h("87 00 20 FF"), opMSE, 0x00, true},
		{h("87 00 20 FF"), opPutKey, 0x20, true},
		{h("87 00 20 FF"), opReadPublic, 0xFF, true},
		{h("87 00 20 FF"), opGenerate, 0, false},
		{h("03 30 00"), opPutData, 0x30, true},
		{h("03 30 00"), opGetData, 0x00, true},
		{h("7F 01 02 03 04 05 06 07"), opDelete, 0x01, true},
		{h("7F 01 02 03 04 05 06 07"), opTerminate, 0x02, true},
		{h("7F 01 02 03 04 05 06 07"), opGetData, 0x07, true},
		{h("03 30"), opGetData, 0xFF, true}, // truncated: never
		{nil, opGetData, 0, false},
	}
	for _, tt := range tests {
		sc, present := scFor(tt.acl, tt.op)
		if sc != tt.sc || present != tt.present {
			t.Errorf("scFor(% X, %02X) = %02X %v, want %02X %v", tt.acl, tt.op, sc, present, tt.sc, tt.present)
		}
	}
}
