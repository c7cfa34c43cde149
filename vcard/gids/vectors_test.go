package gids

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// Command/response vectors live in testdata/vectors/*.txt, one file per
// command family, in the spirit of Nitrokey's command_response.ron:
//
//	# comment
//	profile blank | initialized   new card (initialized = gids-tool --initialize
//	                              --pin 123456 --admin-key 00…00 --serial 0001…0F)
//	verify 123456                 VERIFY, must succeed
//	admin [48 hex digits]         MSE C1 A4 + mutual authentication (default key 00…00)
//	keyef 81 exchange|sign 2048   CREATE + ACTIVATE a key EF as OpenSC does (§3.8)
//	import 81 rsa2048 [der]       import testdata/keys/rsa2048.pem (der: INTEGERs with leading 00)
//	rand <hex>                    queue bytes for the card's random generator
//	fill A013 255                 PUT DATA 255 one-byte DOs (tags DF8100…) into an EF
//	reset | poweroff | factoryreset
//	> 00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00
//	< 61 12 4F 0B … 90 00
//
// Every "> command" line is followed by one "< response" line: data and
// SW in hex. A "*" in the response matches any bytes, so "< 7F 49 * 61 0E"
// checks the beginning and the end of a long answer. Directives fail the
// test unless the card accepts them.
func TestVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "vectors", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vector files: %v", err)
	}
	seen := map[apdu.Status]bool{}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runVectorFile(t, f, seen)
		})
	}
	// docs/reference/gids-protocol.md §2.16: every status word the card can produce must
	// appear in at least one vector (61xx and 63Cx as families).
	want := []apdu.Status{
		0x9000, 0x6100, 0x63C0, 0x6983, 0x6982, 0x6985, 0x6986, 0x6984, 0x6A80, 0x6A81,
		0x6A82, 0x6A84, 0x6A86, 0x6A88, 0x6700, 0x6981, 0x6882, 0x6884, 0x6900, 0x6D00,
		0x6E00, 0x6285,
	}
	var missing []string
	for _, sw := range want {
		if !seen[sw] {
			missing = append(missing, fmt.Sprintf("%04X", uint16(sw)))
		}
	}
	if len(missing) > 0 && !t.Failed() {
		t.Errorf("status words of §2.16 not covered by any vector: %s", strings.Join(missing, " "))
	}
}

func runVectorFile(t *testing.T, path string, seen map[apdu.Status]bool) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		c       *testCard
		pending []byte // command waiting for its "<" line
		pendAt  string
	)
	needCard := func(at string) *testCard {
		if c == nil {
			t.Fatalf("%s: no profile directive before the first command", at)
		}
		return c
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		at := fmt.Sprintf("%s:%d", filepath.Base(path), n)
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if pending != nil && !strings.HasPrefix(line, "<") {
			t.Fatalf("%s: command of %s has no response line", at, pendAt)
		}
		switch {
		case strings.HasPrefix(line, ">"):
			cmd, err := testutil.ParseHex(line[1:])
			if err != nil {
				t.Fatalf("%s: %v", at, err)
			}
			needCard(at)
			pending, pendAt = cmd, at
			if len(cmd) == 0 {
				pending = []byte{}
			}
		case strings.HasPrefix(line, "<"):
			if pending == nil {
				t.Fatalf("%s: response without a command", at)
			}
			got := c.Process(pending)
			checkResponse(t, at, pending, got, line[1:], seen)
			pending = nil
		default:
			vectorDirective(t, at, &c, strings.Fields(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if pending != nil {
		t.Fatalf("%s: command without a response line at end of file", pendAt)
	}
}

// checkResponse compares got with the expectation pattern (hex with "*"
// wildcards).
func checkResponse(t *testing.T, at string, cmd, got []byte, pattern string, seen map[apdu.Status]bool) {
	t.Helper()
	parts := strings.Split(pattern, "*")
	var segs [][]byte
	for _, p := range parts {
		b, err := testutil.ParseHex(p)
		if err != nil {
			t.Fatalf("%s: %v", at, err)
		}
		segs = append(segs, b)
	}
	last := segs[len(segs)-1]
	if len(parts) == 1 || len(last) >= 2 {
		var sw []byte
		if len(parts) == 1 {
			sw = segs[0]
		} else {
			sw = last
		}
		if len(sw) >= 2 {
			s := apdu.Status(uint16(sw[len(sw)-2])<<8 | uint16(sw[len(sw)-1]))
			switch {
			case s.SW1() == 0x61:
				seen[0x6100] = true
			case s&0xFFF0 == 0x63C0:
				seen[0x63C0] = true
			default:
				seen[s] = true
			}
		}
	}
	if !matchPattern(got, segs) {
		if len(parts) == 1 {
			t.Errorf("%s: > % X\n(-want +got):\n%s", at, cmd, cmp.Diff(fmt.Sprintf("% X", segs[0]), fmt.Sprintf("% X", got)))
		} else {
			t.Errorf("%s: > % X\n got % X\nwant %s", at, cmd, got, strings.TrimSpace(pattern))
		}
	}
}

// matchPattern reports whether b is segs[0] * segs[1] * … * segs[n-1]
// where * matches any bytes.
func matchPattern(b []byte, segs [][]byte) bool {
	if len(segs) == 1 {
		return bytes.Equal(b, segs[0])
	}
	if !bytes.HasPrefix(b, segs[0]) {
		return false
	}
	b = b[len(segs[0]):]
	lastSeg := segs[len(segs)-1]
	if len(b) < len(lastSeg) || !bytes.HasSuffix(b, lastSeg) {
		return false
	}
	b = b[:len(b)-len(lastSeg)]
	for _, s := range segs[1 : len(segs)-1] {
		i := bytes.Index(b, s)
		if i < 0 {
			return false
		}
		b = b[i+len(s):]
	}
	return true
}

func vectorDirective(t *testing.T, at string, cp **testCard, f []string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Fatalf("%s: %s: %s", at, strings.Join(f, " "), fmt.Sprintf(format, args...))
	}
	c := *cp
	if f[0] != "profile" && c == nil {
		fail("no profile yet")
	}
	arg := func(i int) string {
		if i >= len(f) {
			fail("missing argument %d", i)
		}
		return f[i]
	}
	hexArg := func(i int) []byte {
		b, err := testutil.ParseHex(arg(i))
		if err != nil {
			fail("%v", err)
		}
		return b
	}
	switch f[0] {
	case "profile":
		switch arg(1) {
		case "blank":
			*cp = newTestCard(t, nil)
		case "initialized":
			*cp = newInitCard(t)
		default:
			fail("unknown profile")
		}
	case "verify":
		c.verifyPIN(arg(1))
	case "admin":
		key := testAdminKey[:]
		if len(f) > 1 {
			key = hexArg(1)
		}
		if err := c.tryAdminAuth(key); err != nil {
			fail("%v", err)
		}
	case "keyef":
		kref := hexArg(1)
		bits, err := strconv.Atoi(arg(3))
		if err != nil || len(kref) != 1 {
			fail("bad arguments")
		}
		c.createKeyEF(kref[0], arg(2) == "exchange", bits)
	case "import":
		kref := hexArg(1)
		c.importKey(kref[0], testKey(t, arg(2)), len(f) > 3 && f[3] == "der")
	case "rand":
		c.rand.Queue(hexArg(1))
	case "fill":
		fid := hexArg(1)
		count, err := strconv.Atoi(arg(2))
		if err != nil || len(fid) != 2 {
			fail("bad arguments")
		}
		for i := range count {
			tag := uint32(0xDF8100) + uint32(i>>7)<<8 + uint32(i&0x7F)
			c.must(apdu.Short(0, 0xDB, fid[0], fid[1], ber.Encode(tag, []byte{byte(i)}), false), apdu.SWOK)
		}
	case "reset":
		c.Reset()
	case "poweroff":
		c.PowerOff()
		c.PowerOn()
	case "factoryreset":
		if err := c.FactoryReset(); err != nil {
			fail("%v", err)
		}
	default:
		fail("unknown directive (known: %s)", strings.Join(slices.Sorted(slices.Values([]string{
			"profile", "verify", "admin", "keyef", "import", "rand", "fill", "reset", "poweroff", "factoryreset"})), ", "))
	}
}
