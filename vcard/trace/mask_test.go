package trace

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/internal/golden"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMask(t *testing.T) {
	tests := []struct {
		name, cmd, kept string
		masked          int
		secret          string
	}{
		{"VERIFY", "00 20 00 80 06 31 32 33 34 35 36", "00 20 00 80 06", 6, "PIN"},
		{"VERIFY extended Lc", "00 20 00 80 00 00 06 31 32 33 34 35 36", "00 20 00 80 00 00 06", 6, "PIN"},
		{"VERIFY logout has no data", "00 20 00 82", "00 20 00 82", 0, ""},
		{"VERIFY Lc 0", "00 20 00 80 00", "00 20 00 80 00", 0, ""},
		{"CHANGE REFERENCE DATA", "00 24 00 80 0C 31 32 33 34 35 36 36 35 34 33 32 31", "00 24 00 80 0C", 12, "PIN"},
		{"set PIN", "00 24 01 80 06 31 32 33 34 35 36", "00 24 01 80 06", 6, "PIN"},
		{"RESET RETRY COUNTER", "00 2C 02 80 06 31 31 31 31 31 31", "00 2C 02 80 06", 6, "PIN"},
		{"admin key import keeps the key reference", "00 DB 3F FF 26 70 24 84 01 80 A5 1F 87 18 " + strings.Repeat("AB ", 24) + "88 03 B0 73 DC",
			"00 DB 3F FF 26 70 24 84 01 80", 33, "key material"},
		{"RSA import, long form length", "10 DB 3F FF FF 70 82 04 B4 84 01 83 A5 82 04 AD 83", "10 DB 3F FF FF 70 82 04 B4 84 01 83", 5, "key material"},
		{"later chunk of a chained import", "10 DB 3F FF 04 01 02 03 04", "10 DB 3F FF 04", 4, "key material"},
		{"malformed: Lc shorter than the data", "00 20 00 80 02 31 32 33 34", "00 20 00 80 02", 4, "PIN"},
		{"PUT DATA of a file is kept", "00 DB A0 10 09 DF 22 06 00 00 01 00 02 00", "00 DB A0 10 09 DF 22 06 00 00 01 00 02 00", 0, ""},
		{"GET DATA is kept", "00 CB 3F FF 04 5C 02 7F 71 00", "00 CB 3F FF 04 5C 02 7F 71 00", 0, ""},
		{"too short", "00 20", "00 20", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, n, secret := Mask(mustHex(t, tt.cmd))
			if !bytes.Equal(out, mustHex(t, tt.kept)) || n != tt.masked || secret != tt.secret {
				t.Errorf("Mask = % X, %d, %q; want %s, %d, %q", out, n, secret, tt.kept, tt.masked, tt.secret)
			}
		})
	}
}

func TestWriterMasksUnlessKeepSecrets(t *testing.T) {
	verify := mustHex(t, "00 20 00 80 06 31 32 33 34 35 36")
	for _, keep := range []bool{false, true} {
		var b bytes.Buffer
		w := NewWriter(&b)
		w.KeepSecrets = keep
		w.Command(verify).Done([]byte{0x90, 0x00}, nil)
		has := strings.Contains(b.String(), "313233343536")
		if has != keep {
			t.Errorf("KeepSecrets %v: PIN in trace = %v:\n%s", keep, has, b.String())
		}
		recs, err := Read(&b)
		if err != nil {
			t.Fatal(err)
		}
		if !keep && (recs[0].Masked != 6 || recs[0].Secret != "PIN") {
			t.Errorf("masked record %+v", recs[0])
		}
	}
}

// TestCreateIsPrivate: a trace file is 0600, also one that existed with
// a wider mode.
func TestCreateIsPrivate(t *testing.T) {
	for _, existing := range []bool{false, true} {
		p := filepath.Join(t.TempDir(), "t.jsonl")
		if existing {
			if err := os.WriteFile(p, []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		f, err := Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 || st.Size() != 0 {
			t.Errorf("existing %v: mode %v size %d, want 0600 and empty", existing, st.Mode().Perm(), st.Size())
		}
	}
}

// TestDecodedTraces pins the GIDS-aware decoding of two real traces:
// gids-tool --initialize on a blank card (cardharness exec --trace: PIN
// and admin key masked), and a scenario run with step markers (a wrong
// cached PIN, cardcf read-modify-writes, a GET RESPONSE chain).
func TestDecodedTraces(t *testing.T) {
	for _, name := range []string{"gids-init", "scenario"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", name+".jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			recs, err := Read(f)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := Format(&out, recs); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, name+".txt", out.Bytes())
		})
	}
	// What the golden files must show, by name.
	checks := map[string][]string{
		"gids-init.txt": {"<6 bytes of PIN masked>", "PUT DATA key import (PUT KEY) into key ref 80 (the admin key)", "<33 bytes of key material masked>",
			"PUT DATA masterfile (A000/DF1F): writes masterfile: dir mscp in A000, cardid=A012/DF20"},
		"scenario.txt": {"== step 6: testdata/timeline.yaml:17 generate-key", "wrong PIN: 2 tries left", "PIN status: 3 tries left of 3",
			"GET DATA cardcf (A010/DF22)", "cardcf version 0, pins 0, containers 2, files 2", "public key: RSA 1024 bits, exponent 65537"},
	}
	for file, wants := range checks {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", file, w)
			}
		}
	}
}

// mfRecord encodes one masterfile record (docs/reference/gids-protocol.md
// §3.3) for the decoder test.
func mfRecord(dir, name string, do, ef uint32) []byte {
	r := make([]byte, 28)
	copy(r[0:9], dir)
	copy(r[9:18], name)
	r[20], r[21] = byte(do), byte(do>>8)
	r[24], r[25] = byte(ef), byte(ef>>8)
	return r
}

// TestDecoderLearnsNamesAndJoinsChains: a masterfile read in the trace
// names later DOs (a certificate file); a 61xx / GET RESPONSE chain is
// decoded as one response of the command that started it; a chained PUT
// DATA is named by its first chunk.
func TestDecoderLearnsNamesAndJoinsChains(t *testing.T) {
	mf := []byte{0x01}
	mf = append(mf, mfRecord("mscp", "", 0, 0xA000)...)
	mf = append(mf, mfRecord("", "cardcf", 0xDF22, 0xA010)...)
	mf = append(mf, mfRecord("mscp", "kxc00", 0xDF24, 0xA010)...)
	mfResp := append([]byte{0xDF, 0x1F, 0x81, byte(len(mf))}, mf...)
	cardcf := []byte{0xDF, 0x22, 0x06, 0x00, 0x00, 0x03, 0x00, 0x07, 0x00}
	recs := []Record{
		{Seq: 1, Dir: "step", Step: 1, Label: "x.yaml:3 read-containers"},
		{Seq: 2, Dir: ">", APDU: "00cba00004" + "5c02df1f00"},
		{Seq: 2, Dir: "<", APDU: hex.EncodeToString(mfResp), SW: "9000"},
		{Seq: 3, Dir: ">", APDU: "00cba01004" + "5c02df2400"},
		{Seq: 3, Dir: "<", APDU: "df24820300", SW: "6100"},
		{Seq: 4, Dir: ">", APDU: "00c0000000"},
		{Seq: 4, Dir: "<", APDU: "", SW: "9000"},
		{Seq: 5, Dir: ">", APDU: "00cba01004" + "5c02df2200"},
		{Seq: 5, Dir: "<", APDU: hex.EncodeToString(cardcf[:4]), SW: "6105"},
		{Seq: 6, Dir: ">", APDU: "00c0000005"},
		{Seq: 6, Dir: "<", APDU: hex.EncodeToString(cardcf[4:]), SW: "9000"},
		{Seq: 7, Dir: ">", APDU: "10dba010ff" + "df24820300" + strings.Repeat("00", 10)},
		{Seq: 8, Dir: ">", APDU: "00cb3fff04" + "5c027f7100"},
		{Seq: 8, Dir: "<", APDU: "7f71069701009301" + "03", SW: "9000"},
		{Seq: 9, Dir: ">", APDU: "0020008006"},
		{Seq: 9, Dir: "<", SW: "6983"},
	}
	var out bytes.Buffer
	if err := Format(&out, recs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"== step 1: x.yaml:3 read-containers",
		"masterfile: dir mscp in A000, cardcf=A010/DF22, mscp/kxc00=A010/DF24",
		"GET DATA mscp/kxc00 (A010/DF24)",
		"cardcf version 0, pins 0, containers 3, files 7",
		"PUT DATA mscp/kxc00 (A010/DF24) (chained, more follows)",
		"PIN status: 0 tries left of 3 (blocked)",
		"PIN blocked",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("decoded trace lacks %q:\n%s", want, out.String())
		}
	}
}
