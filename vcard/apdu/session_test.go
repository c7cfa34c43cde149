package apdu

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

// testCard is a handler whose answers are derived from the command so
// that expected responses can be written down without a real card:
//
//   - CB (GET DATA) and 47 (GENERATE) answer testutil.Seq(P1P2) with 9000;
//   - 2A (PSO) echoes its data reversed;
//   - DB (PUT DATA) answers 9000;
//   - B0 answers testutil.Seq(P1P2) with SW 6282 (warning with data);
//   - E4 answers data with an error SW (which must be dropped);
//   - EE answers the zero Response (a handler bug);
//   - everything else 6D00.
//
// Every command it sees is recorded.
type testCard struct {
	got []Command
}

func (tc *testCard) handle(c Command) Response {
	tc.got = append(tc.got, c)
	n := int(c.P1)<<8 | int(c.P2)
	switch c.INS {
	case 0xCB, 0x47:
		return Response{Data: testutil.Seq(n), SW: SWOK}
	case 0x2A:
		r := make([]byte, len(c.Data))
		for i, b := range c.Data {
			r[len(r)-1-i] = b
		}
		return Response{Data: r, SW: SWOK}
	case 0xDB:
		return Err(SWOK)
	case 0xB0:
		return Response{Data: testutil.Seq(n), SW: SWEndOfFile}
	case 0xE4:
		return Response{Data: []byte{1, 2, 3}, SW: SWFileNotFound}
	case 0xEE:
		return Response{}
	}
	return Err(SWINSNotSupported)
}

// b (testutil.Cat under a short name) and sw make the dense step tables
// readable.
var b = testutil.Cat

func sw(s Status) []byte { return s.bytes() }

type step struct {
	in, out []byte
}

// runSteps feeds the steps through s and compares every answer.
func runSteps(t *testing.T, s *Session, tc *testCard, steps []step) {
	t.Helper()
	for i, st := range steps {
		got := s.Process(st.in, tc.handle)
		if !bytes.Equal(got, st.out) {
			t.Fatalf("step %d: Process(% X)\n got % X\nwant % X", i, st.in, got, st.out)
		}
	}
}

// getData builds "00 CB hi lo 02 5C 00 Le" asking testCard for n bytes.
func getData(t *testing.T, n int, le byte) []byte {
	return b([]byte{0x00, 0xCB, byte(n >> 8), byte(n)}, testutil.Hex(t, "02 5C 00"), []byte{le})
}

func getResponse(le byte) []byte { return []byte{0x00, 0xC0, 0x00, 0x00, le} }

func TestSessionGetResponse(t *testing.T) {
	d300, d512, d600, d684 := testutil.Seq(300), testutil.Seq(512), testutil.Seq(600), testutil.Seq(684)
	tests := []struct {
		name  string
		steps []step
	}{
		{"256 fits exactly", []step{
			{getData(t, 256, 0x00), b(testutil.Seq(256), sw(SWOK))},
		}},
		{"300 Le=00", []step{
			{getData(t, 300, 0x00), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{getResponse(0x2C), b(d300[256:], sw(SWOK))},
		}},
		{"300 Le=00, GET RESPONSE Le=00 asks for more than is left", []step{
			{getData(t, 300, 0x00), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{getResponse(0x00), b(d300[256:], sw(SWOK))},
		}},
		{"300 Le=00, GET RESPONSE with smaller Le", []step{
			{getData(t, 300, 0x00), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{getResponse(0x10), b(d300[256:272], testutil.Hex(t, "61 1C"))},
			{getResponse(0x1C), b(d300[272:], sw(SWOK))},
		}},
		{"300 Le=80", []step{
			{getData(t, 300, 0x80), b(d300[:128], testutil.Hex(t, "61 AC"))},
			{getResponse(0xAC), b(d300[128:], sw(SWOK))},
		}},
		{"512 Le=00", []step{
			{getData(t, 512, 0x00), b(d512[:256], testutil.Hex(t, "61 00"))},
			{getResponse(0x00), b(d512[256:], sw(SWOK))},
		}},
		{"600 Le=00", []step{
			{getData(t, 600, 0x00), b(d600[:256], testutil.Hex(t, "61 00"))},
			{getResponse(0x00), b(d600[256:512], testutil.Hex(t, "61 58"))},
			{getResponse(0x58), b(d600[512:], sw(SWOK))},
		}},
		{"600 Le=80 then Le=00", []step{
			{getData(t, 600, 0x80), b(d600[:128], testutil.Hex(t, "61 00"))},
			{getResponse(0x00), b(d600[128:384], testutil.Hex(t, "61 D8"))},
			{getResponse(0xD8), b(d600[384:], sw(SWOK))},
		}},
		{"684-byte certificate DO as observed with OpenSC (§2.3)", []step{
			{getData(t, 684, 0x00), b(d684[:256], testutil.Hex(t, "61 00"))},
			{getResponse(0x00), b(d684[256:512], testutil.Hex(t, "61 AC"))},
			{getResponse(0xAC), b(d684[512:], sw(SWOK))},
		}},
		{"GET RESPONSE without Le serves 256", []step{
			{getData(t, 600, 0x00), b(d600[:256], testutil.Hex(t, "61 00"))},
			{testutil.Hex(t, "00 C0 00 00"), b(d600[256:512], testutil.Hex(t, "61 58"))},
			{testutil.Hex(t, "00 C0 00 00"), b(d600[512:], sw(SWOK))},
		}},
		{"extended Le=0000 gets everything", []step{
			{testutil.Hex(t, "00 CB 02 58 00 00 02 5C 00 00 00"), b(d600, sw(SWOK))},
		}},
		{"extended Le=0000 never exceeds a vpcd frame (issue 8 finding 3)", []step{
			{testutil.Hex(t, "00 CB FF FF 00 00 02 5C 00 00 00"), b(testutil.Seq(65535)[:MaxResponseData], testutil.Hex(t, "61 02"))},
			{testutil.Hex(t, "00 C0 00 00 00 00 00"), b(testutil.Seq(65535)[MaxResponseData:], sw(SWOK))},
		}},
		{"extended Le=0100 is chunked like short", []step{
			{testutil.Hex(t, "00 CB 02 58 00 00 02 5C 00 01 00"), b(d600[:256], testutil.Hex(t, "61 00"))},
			{testutil.Hex(t, "00 C0 00 00 00 02 00"), b(d600[256:], sw(SWOK))},
		}},
		{"case 3 GENERATE 1024 answers 61 8C (§2.10)", []step{
			{testutil.Hex(t, "00 47 00 8C 08 AC 06 80 01 06 83 01 81"), testutil.Hex(t, "61 8C")},
			{getResponse(0x8C), b(testutil.Seq(140), sw(SWOK))},
		}},
		{"case 3 GENERATE 2048 answers 61 00, then another command drops it", []step{
			{testutil.Hex(t, "00 47 01 0E 08 AC 06 80 01 07 83 01 81"), testutil.Hex(t, "61 00")},
			{testutil.Hex(t, "00 CB 00 02 02 5C 00 00"), b(testutil.Seq(2), sw(SWOK))},
			{getResponse(0x00), sw(SWConditionsNotSatisfied)},
		}},
		{"case 4 GENERATE with Le=8C (Windows)", []step{
			{testutil.Hex(t, "00 47 00 8C 08 AC 06 80 01 06 83 01 81 8C"), b(testutil.Seq(140), sw(SWOK))},
		}},
		// Issue 11 §1: without Le the card answers as if Le were 256, as
		// GidsApplet does (TransmitManager.sendData) and Windows expects
		// for its SELECT, except GENERATE ASYMMETRIC KEY PAIR.
		{"case 1 with response data gets it at once", []step{
			{testutil.Hex(t, "00 CB 00 05"), b(testutil.Seq(5), sw(SWOK))},
		}},
		{"case 3 with 256 bytes of response data gets them at once", []step{
			{testutil.Hex(t, "00 CB 01 00 02 5C 00"), b(testutil.Seq(256), sw(SWOK))},
		}},
		{"case 3 with more than 256 bytes: 256 and 61xx", []step{
			{testutil.Hex(t, "00 CB 01 2C 02 5C 00"), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{getResponse(0x2C), b(d300[256:], sw(SWOK))},
		}},
		{"case 3E without Le is served like short", []step{
			{testutil.Hex(t, "00 CB 01 2C 00 00 02 5C 00"), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{getResponse(0x00), b(d300[256:], sw(SWOK))},
		}},
		{"case 3 PSO answers at once", []step{
			{testutil.Hex(t, "00 2A 9E 9A 03 01 02 03"), testutil.Hex(t, "03 02 01 90 00")},
		}},
		{"warning SW comes with the last part", []step{
			{testutil.Hex(t, "00 B0 01 2C 00"), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{getResponse(0x2C), b(d300[256:], sw(SWEndOfFile))},
		}},
		{"warning SW with data that fits", []step{
			{testutil.Hex(t, "00 B0 00 03 00"), b(testutil.Seq(3), sw(SWEndOfFile))},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Session
			runSteps(t, &s, &testCard{}, tt.steps)
			if s.Pending() != 0 {
				t.Errorf("%d bytes still pending after the script", s.Pending())
			}
		})
	}
}

func TestSessionGetResponseErrors(t *testing.T) {
	d300 := testutil.Seq(300)
	tests := []struct {
		name        string
		steps       []step
		wantPending int
	}{
		{"nothing pending", []step{
			{getResponse(0x00), sw(SWConditionsNotSatisfied)},
		}, 0},
		{"after everything was delivered", []step{
			{getData(t, 300, 0x00), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{getResponse(0x2C), b(d300[256:], sw(SWOK))},
			{getResponse(0x00), sw(SWConditionsNotSatisfied)},
		}, 0},
		{"other command drops pending data", []step{
			{getData(t, 300, 0x00), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{testutil.Hex(t, "00 20 00 82"), sw(SWINSNotSupported)},
			{getResponse(0x2C), sw(SWConditionsNotSatisfied)},
		}, 0},
		{"malformed APDU drops pending data", []step{
			{getData(t, 300, 0x00), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{testutil.Hex(t, "00 C0 00"), sw(SWWrongLength)},
			{getResponse(0x2C), sw(SWConditionsNotSatisfied)},
		}, 0},
		{"bad P1P2 keeps pending data", []step{
			{getData(t, 300, 0x00), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{testutil.Hex(t, "00 C0 01 00 2C"), sw(SWIncorrectP1P2)},
			{getResponse(0x2C), b(d300[256:], sw(SWOK))},
		}, 0},
		{"data field keeps pending data", []step{
			{getData(t, 300, 0x00), b(d300[:256], testutil.Hex(t, "61 2C"))},
			{testutil.Hex(t, "00 C0 00 00 01 00 2C"), sw(SWWrongLength)},
		}, 44},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Session
			runSteps(t, &s, &testCard{}, tt.steps)
			if s.Pending() != tt.wantPending {
				t.Errorf("Pending() = %d, want %d", s.Pending(), tt.wantPending)
			}
		})
	}
}

// chunks splits data into chained command APDUs of at most size bytes,
// the way OpenSC (255) and Windows (240) do: CLA 10 on all but the last,
// no Le on intermediate chunks, le (if >= 0) on the last one.
func chunks(hdr [4]byte, data []byte, size int, le int) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(size, len(data))
		cla := hdr[0] | 0x10
		last := n == len(data)
		if last {
			cla = hdr[0]
		}
		apdu := b([]byte{cla, hdr[1], hdr[2], hdr[3], byte(n)}, data[:n])
		if last && le >= 0 {
			apdu = append(apdu, byte(le))
		}
		out = append(out, apdu)
		data = data[n:]
	}
	return out
}

func TestSessionChaining(t *testing.T) {
	// The observed OpenSC certificate write: DF24 82 02A7 + 679 bytes =
	// 684 bytes, sent as 255 + 255 + 174 (§2.4).
	cert := b(testutil.Hex(t, "DF 24 82 02 A7"), testutil.Seq(679))
	putHdr := [4]byte{0x00, 0xDB, 0xA0, 0x10}
	psoHdr := [4]byte{0x00, 0x2A, 0x80, 0x86}
	ct2048, ct4096 := testutil.Seq(256), testutil.Seq(512)
	rev := func(p []byte) []byte {
		r := make([]byte, len(p))
		for i, v := range p {
			r[len(p)-1-i] = v
		}
		return r
	}

	tests := []struct {
		name      string
		apdus     [][]byte
		wantSizes []int // expected chunk data lengths, to pin the chunking
		lastOut   []byte
		want      Command
	}{
		{"OpenSC PUT DATA 255-byte chunks", chunks(putHdr, cert, 255, -1), []int{255, 255, 174},
			sw(SWOK), Command{INS: 0xDB, P1: 0xA0, P2: 0x10, Data: cert}},
		{"Windows PUT DATA 240-byte chunks", chunks(putHdr, cert, 240, -1), []int{240, 240, 204},
			sw(SWOK), Command{INS: 0xDB, P1: 0xA0, P2: 0x10, Data: cert}},
		{"OpenSC decipher 2048 (255 + 1, Le on last)", chunks(psoHdr, ct2048, 255, 0), []int{255, 1},
			b(rev(ct2048), sw(SWOK)), Command{INS: 0x2A, P1: 0x80, P2: 0x86, Data: ct2048, Ne: 256, HasLe: true}},
		{"OpenSC decipher 4096 (255 + 255 + 2), answer needs GET RESPONSE", chunks(psoHdr, ct4096, 255, 0), []int{255, 255, 2},
			b(rev(ct4096)[:256], testutil.Hex(t, "61 00")), Command{INS: 0x2A, P1: 0x80, P2: 0x86, Data: ct4096, Ne: 256, HasLe: true}},
		{"Windows decipher 240-byte chunks", chunks(psoHdr, ct2048, 240, 0), []int{240, 16},
			b(rev(ct2048), sw(SWOK)), Command{INS: 0x2A, P1: 0x80, P2: 0x86, Data: ct2048, Ne: 256, HasLe: true}},
		{"odd chunk sizes and an empty chunk", [][]byte{
			testutil.Hex(t, "10 DB A0 10 01 DF"), testutil.Hex(t, "10 DB A0 10"), testutil.Hex(t, "00 DB A0 10 02 23 00")}, nil,
			sw(SWOK), Command{INS: 0xDB, P1: 0xA0, P2: 0x10, Data: testutil.Hex(t, "DF 23 00")}},
		{"extended chunks", [][]byte{
			testutil.Hex(t, "10 DB A0 10 00 00 01 DF"), testutil.Hex(t, "00 DB A0 10 00 00 02 23 00")}, nil,
			sw(SWOK), Command{INS: 0xDB, P1: 0xA0, P2: 0x10, Data: testutil.Hex(t, "DF 23 00"), Extended: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantSizes != nil {
				var sizes []int
				for _, a := range tt.apdus {
					sizes = append(sizes, int(a[4]))
				}
				if d := cmp.Diff(tt.wantSizes, sizes); d != "" {
					t.Fatalf("test chunking (-want +got):\n%s", d)
				}
			}
			var s Session
			tc := &testCard{}
			for i, a := range tt.apdus[:len(tt.apdus)-1] {
				if got := s.Process(a, tc.handle); !bytes.Equal(got, sw(SWOK)) {
					t.Fatalf("chunk %d answered % X, want 90 00", i, got)
				}
				if !s.Chaining() {
					t.Fatalf("chunk %d: no chain in progress", i)
				}
			}
			if len(tc.got) != 0 {
				t.Fatalf("handler called before the last chunk: %+v", tc.got)
			}
			if got := s.Process(tt.apdus[len(tt.apdus)-1], tc.handle); !bytes.Equal(got, tt.lastOut) {
				t.Fatalf("last chunk answered\n % X\nwant\n % X", got, tt.lastOut)
			}
			if s.Chaining() {
				t.Error("chain still open after the last chunk")
			}
			if len(tc.got) != 1 {
				t.Fatalf("handler called %d times, want 1", len(tc.got))
			}
			if d := cmp.Diff(tt.want, tc.got[0], cmpCommand); d != "" {
				t.Errorf("assembled command (-want +got):\n%s", d)
			}
		})
	}
}

func TestSessionChainingErrors(t *testing.T) {
	first := testutil.Hex(t, "10 DB A0 10 02 DF 24")
	tests := []struct {
		name    string
		session func() *Session
		steps   []step
		calls   int // handler invocations expected
	}{
		{"interrupted by another INS", nil, []step{
			{first, sw(SWOK)},
			{testutil.Hex(t, "00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 00"), sw(SWCommandNotAllowed)},
			// The chain is gone: the former last chunk is now a
			// standalone command and reaches the handler on its own.
			{testutil.Hex(t, "00 DB A0 10 01 00"), sw(SWOK)},
		}, 1},
		{"interrupted by other P1P2", nil, []step{
			{first, sw(SWOK)},
			{testutil.Hex(t, "00 DB A0 11 01 00"), sw(SWCommandNotAllowed)},
		}, 0},
		{"interrupted by a new chain on other P2", nil, []step{
			{first, sw(SWOK)},
			{testutil.Hex(t, "10 DB A0 11 01 00"), sw(SWCommandNotAllowed)},
		}, 0},
		{"interrupted by GET RESPONSE", nil, []step{
			{first, sw(SWOK)},
			{getResponse(0), sw(SWCommandNotAllowed)},
		}, 0},
		{"interrupted by other CLA low bits", func() *Session {
			return &Session{CheckCLA: func(byte) Status { return SWOK }}
		}, []step{
			{first, sw(SWOK)},
			{testutil.Hex(t, "01 DB A0 10 01 00"), sw(SWCommandNotAllowed)},
		}, 0},
		{"interrupted by malformed APDU", nil, []step{
			{first, sw(SWOK)},
			{testutil.Hex(t, "00 DB A0 10 05 00"), sw(SWWrongLength)},
			{testutil.Hex(t, "00 DB A0 10 01 00"), sw(SWOK)},
		}, 1},
		{"chaining SELECT not supported", nil, []step{
			{testutil.Hex(t, "10 A4 00 0C 02 3F FF"), sw(SWChainingNotSupported)},
		}, 0},
		{"chaining GET DATA not supported", nil, []step{
			{testutil.Hex(t, "10 CB 3F FF 02 5C 00"), sw(SWChainingNotSupported)},
		}, 0},
		{"chaining GET RESPONSE not supported", nil, []step{
			{testutil.Hex(t, "10 C0 00 00 00"), sw(SWChainingNotSupported)},
		}, 0},
		{"custom chainable set", func() *Session {
			return &Session{ChainableINS: []byte{0xCB}}
		}, []step{
			{testutil.Hex(t, "10 DB A0 10 01 00"), sw(SWChainingNotSupported)},
			{testutil.Hex(t, "10 CB 00 02 01 5C"), sw(SWOK)},
			{testutil.Hex(t, "00 CB 00 02 01 00 00"), b(testutil.Seq(2), sw(SWOK))},
		}, 1},
		{"empty chainable set forbids chaining", func() *Session {
			return &Session{ChainableINS: []byte{}}
		}, []step{
			{first, sw(SWChainingNotSupported)},
		}, 0},
		{"cap exceeded", func() *Session {
			return &Session{MaxChainData: 300}
		}, []step{
			{b(testutil.Hex(t, "10 DB A0 10 FF"), testutil.Seq(255)), sw(SWOK)},
			{b(testutil.Hex(t, "10 DB A0 10 FF"), testutil.Seq(255)), sw(SWNotEnoughMemory)},
			// Dropped: the next chunk starts a new chain.
			{b(testutil.Hex(t, "10 DB A0 10 FF"), testutil.Seq(255)), sw(SWOK)},
			{b(testutil.Hex(t, "00 DB A0 10 2D"), testutil.Seq(45)), sw(SWOK)},
		}, 1},
		{"cap on the first chunk", func() *Session {
			return &Session{MaxChainData: 10}
		}, []step{
			{b(testutil.Hex(t, "10 DB A0 10 0B"), testutil.Seq(11)), sw(SWNotEnoughMemory)},
		}, 0},
		{"default cap is 65535", nil, []step{
			{b(testutil.Hex(t, "10 DB A0 10 00 FF FF"), testutil.Seq(65535)), sw(SWOK)},
			{testutil.Hex(t, "00 DB A0 10 01 00"), sw(SWNotEnoughMemory)},
		}, 0},
		{"chain start drops pending response", nil, []step{
			{getData(t, 300, 0), b(testutil.Seq(256), testutil.Hex(t, "61 2C"))},
			{first, sw(SWOK)},
			{testutil.Hex(t, "00 DB A0 10 01 00"), sw(SWOK)},
			{getResponse(0x2C), sw(SWConditionsNotSatisfied)},
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Session{}
			if tt.session != nil {
				s = tt.session()
			}
			tc := &testCard{}
			runSteps(t, s, tc, tt.steps)
			if len(tc.got) != tt.calls {
				t.Errorf("handler called %d times, want %d: %+v", len(tc.got), tt.calls, tc.got)
			}
		})
	}
}

func TestSessionCLA(t *testing.T) {
	tests := []struct {
		name string
		s    Session
		in   string
		out  string
	}{
		// GET DATA with P1P2 0001 answers testutil.Seq(1), the byte 01.
		{"basic", Session{}, "00 CB 00 01 02 5C 00 00", "01 90 00"},
		{"SM bits", Session{}, "0C CB 00 01 02 5C 00 00", "68 82"},
		{"proprietary class", Session{}, "80 CB 00 01 02 5C 00 00", "6E 00"},
		{"FF gets GidsApplet's SM check first", Session{}, "FF CB 00 01 00", "68 82"},
		{"further interindustry class", Session{}, "40 CB 00 01 00", "6E 00"},
		{"logical channel 1", Session{}, "01 CB 00 01 02 5C 00 00", "68 81"},
		{"custom policy accepts 80", Session{CheckCLA: func(cla byte) Status {
			if cla == 0x80 || cla == 0x00 {
				return SWOK
			}
			return SWCLANotSupported
		}}, "80 CB 00 01 02 5C 00 00", "01 90 00"},
		{"custom policy returning garbage", Session{CheckCLA: func(byte) Status { return 0 }},
			"00 CB 00 01 00", "6E 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.s.Process(testutil.Hex(t, tt.in), (&testCard{}).handle)
			if want := testutil.Hex(t, tt.out); !bytes.Equal(got, want) {
				t.Errorf("got % X, want % X", got, want)
			}
		})
	}
}

func TestSessionHandlerHygiene(t *testing.T) {
	tests := []struct {
		name string
		in   string
		h    func(Command) Response
		out  string
	}{
		{"error SW drops data", "00 E4 00 00", (&testCard{}).handle, "6A 82"},
		{"zero Response becomes 6F00", "00 EE 00 00", (&testCard{}).handle, "6F 00"},
		{"nil handler", "00 A4 00 0C 02 3F FF", nil, "6D 00"},
		{"malformed: 3 bytes", "00 A4 04", (&testCard{}).handle, "67 00"},
		{"malformed: empty", "", (&testCard{}).handle, "67 00"},
		{"malformed: Lc mismatch", "00 A4 04 00 05 A0", (&testCard{}).handle, "67 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Session
			got := s.Process(testutil.Hex(t, tt.in), tt.h)
			if want := testutil.Hex(t, tt.out); !bytes.Equal(got, want) {
				t.Errorf("got % X, want % X", got, want)
			}
		})
	}
}

func TestSessionHandlerDataNotAliased(t *testing.T) {
	buf := testutil.Seq(300)
	var s Session
	h := func(Command) Response { return Response{Data: buf, SW: SWOK} }
	s.Process(testutil.Hex(t, "00 CB 00 00 00"), h)
	for i := range buf {
		buf[i] = 0xEE
	}
	got := s.Process(getResponse(0x2C), nil)
	if want := b(testutil.Seq(300)[256:], sw(SWOK)); !bytes.Equal(got, want) {
		t.Errorf("pending data changed with the handler's buffer: % X", got)
	}
}

func TestSessionReset(t *testing.T) {
	tc := &testCard{}
	var s Session

	s.Process(getData(t, 300, 0), tc.handle)
	if s.Pending() != 44 {
		t.Fatalf("Pending() = %d, want 44", s.Pending())
	}
	s.Reset()
	if s.Pending() != 0 {
		t.Fatalf("Pending() after Reset = %d", s.Pending())
	}
	if got := s.Process(getResponse(0x2C), tc.handle); !bytes.Equal(got, sw(SWConditionsNotSatisfied)) {
		t.Errorf("GET RESPONSE after Reset = % X, want 69 85", got)
	}

	s.Process(testutil.Hex(t, "10 DB A0 10 02 DF 24"), tc.handle)
	if !s.Chaining() {
		t.Fatal("chain not started")
	}
	s.Reset()
	if s.Chaining() {
		t.Fatal("chain survived Reset")
	}
	tc.got = nil
	if got := s.Process(testutil.Hex(t, "00 DB A0 10 01 00"), tc.handle); !bytes.Equal(got, sw(SWOK)) {
		t.Fatalf("last chunk after Reset = % X", got)
	}
	want := []Command{{INS: 0xDB, P1: 0xA0, P2: 0x10, Data: []byte{0}}}
	if d := cmp.Diff(want, tc.got, cmpCommand); d != "" {
		t.Errorf("after Reset the handler must see only the last chunk (-want +got):\n%s", d)
	}
}
