package gids

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/store"
)

// Authentication states of the access matrix.
const (
	authNone  = iota
	authPIN   // user PIN verified
	authAdmin // admin key (reference 80) authenticated
	authBoth  // PIN and admin key
	authOther // PIN and another 3DES key (B090, the PIN holder's own)
	numAuth
)

var authNames = [numAuth]string{"none", "PIN", "admin", "PIN+admin", "PIN+key90"}

const (
	swOK   = apdu.SWOK
	swDeny = apdu.SWSecurityStatusNotSatisfied
)

// TestAccessMatrix runs every command of the card in every authentication
// state on an initialised card (docs/reference/gids-protocol.md §3.1, §4.2,
// §4.3), with a 1024-bit user key in B081 (OpenSC's FCP: 8C 05 8F 10 10 10
// 00), a DO EF A020 and a key EF B090 that the PIN holder created with a
// 3DES key of their own. The PIN+key90 column is the PIN holder after
// authenticating with that key: it must grant nothing beyond the PIN
// (issue 8 finding 1). The escalation rows replay the attacks of that
// finding as far as the card lets them go.
func TestAccessMatrix(t *testing.T) {
	base := newInitCard(t)
	base.verifyPIN(testPIN)
	base.createKeyEF(0x81, true, 1024)
	base.importKey(0x81, testKey(t, "rsa1024"), false)
	base.must(h("00 DB A0 13 05 DF 20 02 01 02"), swOK)
	base.must(caseAPDU(0, 0xE0, 0, 0, authKeyFCP(0x90), false), swOK)
	base.must(h("00 44 00 00"), swOK)
	base.mustAll(putDESKey(0x90, attackerKey), swOK)
	base.must(h("00 E0 00 00 0E 62 0C 82 01 39 83 02 A0 20 8C 03 03 30 00"), swOK)
	base.must(h("00 44 00 00"), swOK)
	snap := base.Store().Snapshot()

	putKey := importTemplate(0x81, testKey(t, "rsa1024"), false)
	adminKey := h("00 DB 3F FF 26 70 24 84 01 80 A5 1F 87 18 000000000000000000000000000000000000000000000000 88 03 B0 73 DC")
	ownB080 := bytes.Clone(adminKeyFCP)
	copy(ownB080[11:15], []byte{0x87, 0x00, 0x10, 0xFF})

	type op struct {
		name string
		cmds [][]byte // all but the last must answer 9000 when the last is expected to
		want [numAuth]apdu.Status
	}
	var (
		all     = [numAuth]apdu.Status{swOK, swOK, swOK, swOK, swOK}
		never   = [numAuth]apdu.Status{swDeny, swDeny, swDeny, swDeny, swDeny}
		pinOrAd = [numAuth]apdu.Status{swDeny, swOK, swOK, swOK, swOK}
		pinOnly = [numAuth]apdu.Status{swDeny, swOK, swDeny, swOK, swOK}
		admin   = [numAuth]apdu.Status{swDeny, swDeny, swOK, swOK, swDeny}
	)
	one := func(s string) [][]byte { return [][]byte{h(s)} }
	seq := func(ss ...string) [][]byte {
		var out [][]byte
		for _, s := range ss {
			out = append(out, h(s))
		}
		return out
	}
	put := func(ef string) [][]byte { return one("00 DB " + ef + " 03 DF 30 00") }
	get := func(ef string) [][]byte { return one("00 CB " + ef + " 02 5C 00 00") }
	del := func(ef string) [][]byte { return seq("00 A4 00 0C 02 "+ef, "00 E4 00 00") }
	cat := func(parts ...[][]byte) [][]byte { return slices.Concat(parts...) }
	decipher := append(append(h("00 2A 80 86 80"), bytes.Repeat([]byte{0x01}, 128)...), 0x00)
	ops := []op{
		// SELECT (§1.5)
		{"SELECT AID", one("00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00"), all},
		{"SELECT A012 FCP", one("00 A4 00 04 02 A0 12 00"), all},
		{"SELECT B080 FCP", one("00 A4 00 04 02 B0 80 00"), all},
		// PUT DATA / GET DATA (§2.3, §2.4, §3.1)
		{"PUT DATA A000", put("A0 00"), pinOrAd},
		{"PUT DATA A010", put("A0 10"), pinOrAd},
		{"PUT DATA A011", put("A0 11"), pinOrAd},
		{"PUT DATA A012", put("A0 12"), admin},
		{"PUT DATA A013", put("A0 13"), pinOrAd},
		{"PUT DATA A014", put("A0 14"), admin},
		{"PUT DATA A020", put("A0 20"), pinOrAd},
		{"GET DATA A000", get("A0 00"), all},
		{"GET DATA A010", get("A0 10"), all},
		{"GET DATA A011", get("A0 11"), never},
		{"GET DATA A012", get("A0 12"), all},
		{"GET DATA A013", get("A0 13"), pinOrAd},
		{"GET DATA A014", get("A0 14"), admin},
		{"GET DATA EF.ATR 2F01", one("00 CB 2F 01 02 5C 00 00"), all},
		{"GET DATA PIN status", one("00 CB 3F FF 04 5C 02 7F 71 00"), all},
		{"read public key B081", one("00 CB 3F FF 0A 70 08 84 01 81 A5 03 7F 49 80 00"), all},
		{"read public key B080", one("00 CB 3F FF 0A 70 08 84 01 80 A5 03 7F 49 80 00"), never},
		{"read public key B090", one("00 CB 3F FF 0A 70 08 84 01 90 A5 03 7F 49 80 00"), never},
		// Key management (§2.8 - §2.12)
		{"PUT KEY user B081", chained(0xDB, 0x3F, 0xFF, putKey), pinOnly},
		{"PUT KEY admin B080", [][]byte{adminKey}, admin},
		{"PUT KEY own B090", putDESKey(0x90, attackerKey), pinOnly},
		{"GENERATE B081", one("00 47 00 00 08 AC 06 80 01 06 83 01 81 00"), pinOnly},
		{"MSE sign B081", one("00 22 41 B6 06 80 01 56 84 01 81"), pinOnly},
		{"MSE decipher B081", one("00 22 41 B8 06 80 01 06 84 01 81"), pinOnly},
		{"MSE+PSO sign B081", seq("00 22 41 B6 06 80 01 56 84 01 81", "00 2A 9E 9A 03 01 02 03 00"), pinOnly},
		{"MSE+PSO decipher B081", [][]byte{h("00 22 41 B8 06 80 01 06 84 01 81"), decipher}, pinOnly},
		{"MSE admin key B080", one("00 22 C1 A4 03 83 01 80"), all},
		{"MSE own key B090", one("00 22 C1 A4 03 83 01 90"), all},
		{"GENERAL AUTHENTICATE challenge", seq("00 22 C1 A4 03 83 01 80", "00 87 00 00 14 7C 12 81 10 0102030405060708090A0B0C0D0E0F10 00"), all},
		// PIN (§2.5 - §2.7)
		{"VERIFY", one("00 20 00 80 06 31 32 33 34 35 36"), all},
		{"VERIFY logout", one("00 20 00 82"), all},
		{"RESET RETRY COUNTER", one("00 2C 02 80 06 31 32 33 34 35 36"), admin},
		{"CHANGE REFERENCE DATA P1=01", one("00 24 01 80 06 31 32 33 34 35 36"), pinOnly},
		{"CHANGE REFERENCE DATA P1=00", one("00 24 00 80 0C 31 32 33 34 35 36 36 35 34 33 32 31"), all},
		// Files and life cycle (§2.13, §4.1)
		{"CREATE FILE A021", one("00 E0 00 00 0E 62 0C 82 01 39 83 02 A0 21 8C 03 03 30 00"), pinOrAd},
		{"ACTIVATE FILE A010", seq("00 A4 00 0C 02 A0 10", "00 44 00 00"), all},
		{"ACTIVATE application", seq("00 A4 00 0C 02 3F FF", "00 44 00 00"), all},
		{"DELETE FILE A000", del("A0 00"), admin},
		{"DELETE FILE A010", del("A0 10"), admin},
		{"DELETE FILE A011", del("A0 11"), admin},
		{"DELETE FILE A012", del("A0 12"), admin},
		{"DELETE FILE A013", del("A0 13"), admin},
		{"DELETE FILE A014", del("A0 14"), admin},
		{"DELETE FILE B080", del("B0 80"), admin},
		{"DELETE FILE A020", del("A0 20"), pinOrAd},
		{"DELETE FILE B081", del("B0 81"), pinOrAd},
		{"DELETE FILE B090", del("B0 90"), pinOrAd},
		{"TERMINATE DF", one("00 E6 00 00"), admin},
		// Escalation paths (issue 8 finding 1).
		{"own auth key EF B091", cat([][]byte{caseAPDU(0, 0xE0, 0, 0, authKeyFCP(0x91), false)},
			one("00 44 00 00"), putDESKey(0x91, attackerKey)), pinOnly},
		{"replace B080 with own key", cat(del("B0 80"), [][]byte{caseAPDU(0, 0xE0, 0, 0, ownB080, false)},
			one("00 44 00 00"), putDESKey(0x80, attackerKey)),
			[numAuth]apdu.Status{swDeny, swDeny, swDeny, swOK, swDeny}},
		{"re-create A012 open, write cardid", cat(del("A0 12"), [][]byte{createDOEF(0xA012, [3]byte{0x03, 0x00, 0x00})},
			one("00 44 00 00"), one("00 DB A0 12 13 DF 20 10 EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE")), admin},
		{"re-create A014 open, read it", cat(del("A0 14"), [][]byte{createDOEF(0xA014, [3]byte{0x03, 0x00, 0x00})},
			one("00 44 00 00"), get("A0 14")), admin},
	}

	var got strings.Builder
	var want strings.Builder
	row := func(b *strings.Builder, name string, sws [numAuth]apdu.Status) {
		fmt.Fprintf(b, "%-34s", name)
		for _, sw := range sws {
			fmt.Fprintf(b, " %04X", uint16(sw))
		}
		b.WriteString("\n")
	}
	header := fmt.Sprintf("%-34s %s\n", "", strings.Join(authNames[:], " "))
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
			case authOther:
				c.verifyPIN(testPIN)
				if !c.tryKeyAuth(0x90, attackerKey) {
					t.Fatal("cannot authenticate with key 90")
				}
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
			c.sec = secState{pin: i == 1 || i == 3}
			if i == 2 || i == 3 {
				c.sec.keys.add(adminKeyRef)
			}
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
