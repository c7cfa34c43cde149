package apdu

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

func FuzzParseCommand(f *testing.F) {
	testutil.AddHexSeeds(f,
		"", "00", "00A404", "00200082", "00C0000000", "00C000000E",
		"0020008006313233343536",
		"00A4040009A00000039742544659"+"00",
		"00CB3FFF000000", "00DBA010000003DF2300", "002A9E9A000002ABCD0200",
		"00DBA01005010203", "00CBFF3F0001", "00DBA0100000000100",
	)
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseCommand(in)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %T is not *ParseError", err)
			}
			return
		}
		enc, err := c.Bytes()
		if err != nil {
			t.Fatalf("Bytes() of parsed %+v: %v", c, err)
		}
		// Short forms are canonical and Extended is kept, so the encoding
		// must reproduce the input exactly.
		if !bytes.Equal(enc, in) {
			t.Fatalf("re-encoding differs:\n in % X\nout % X", in, enc)
		}
		c2, err := ParseCommand(enc)
		if err != nil {
			t.Fatalf("re-parse of % X: %v", enc, err)
		}
		if d := cmp.Diff(c, c2, cmpCommand); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
		if c.HasLe != (c.Ne > 0) {
			t.Fatalf("HasLe=%v with Ne=%d", c.HasLe, c.Ne)
		}
	})
}

// fuzzHandler answers with data whose length is taken from P1P2 (capped
// by maxFuzzResp) and a status word from the first data byte, so the
// fuzzer reaches 61xx, GET RESPONSE, warnings, errors and invalid SWs.
const maxFuzzResp = 70000

func fuzzHandler(c Command) Response {
	n := min(int(c.P1)<<8|int(c.P2), maxFuzzResp)
	sw := SWOK
	if len(c.Data) > 0 {
		switch c.Data[0] % 5 {
		case 1:
			sw = SWEndOfFile
		case 2:
			sw = SWFileNotFound
		case 3:
			sw = Status(uint16(c.Data[0]) << 8) // often invalid
		}
	}
	return Response{Data: make([]byte, n), SW: sw}
}

func FuzzSession(f *testing.F) {
	// The input is a sequence of APDUs, each prefixed with a one-byte
	// length; a length byte of FF means "the next chunk is a 300-byte
	// chained PUT DATA", so long chains are reachable cheaply.
	f.Add([]byte{})
	f.Add([]byte{8, 0x00, 0xCB, 0x02, 0x58, 0x02, 0x5C, 0x00, 0x00, 5, 0x00, 0xC0, 0x00, 0x00, 0x00})
	f.Add([]byte{0xFF, 0xFF, 6, 0x00, 0xDB, 0xA0, 0x10, 0x01, 0x00})
	f.Add([]byte{6, 0x10, 0xDB, 0xA0, 0x10, 0x01, 0x00, 5, 0x00, 0xA4, 0x04, 0x00, 0x00})
	f.Add([]byte{4, 0x00, 0x47, 0x01, 0x0E, 5, 0x00, 0xC0, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &Session{MaxChainData: 4096}
		for len(in) > 0 {
			n := int(in[0])
			in = in[1:]
			var raw []byte
			if n == 0xFF {
				raw = append([]byte{0x10, 0xDB, 0xA0, 0x10, 0x00, 0x01, 0x2C}, make([]byte, 300)...)
			} else {
				n = min(n, len(in))
				raw, in = in[:n], in[n:]
			}
			c, perr := ParseCommand(raw)
			out := s.Process(raw, fuzzHandler)
			if len(out) < 2 {
				t.Fatalf("Process(% X) returned %d bytes", raw, len(out))
			}
			swOut := Status(out[len(out)-2])<<8 | Status(out[len(out)-1])
			if !swOut.valid() {
				t.Fatalf("Process(% X) returned invalid SW %04X", raw, uint16(swOut))
			}
			if swOut.isError() && len(out) != 2 {
				t.Fatalf("error SW %v with %d data bytes", swOut, len(out)-2)
			}
			// A response never exceeds what the APDU allowed, nor a vpcd
			// frame; without Le a command is served 256 bytes, except
			// GENERATE ASYMMETRIC KEY PAIR, which gets none.
			limit := 0
			if perr == nil {
				limit = min(c.Ne, MaxResponseData)
				if !c.HasLe && !DefaultWithholdWithoutLe(c.INS) {
					limit = MaxShortNe
				}
			}
			if len(out)-2 > limit {
				t.Fatalf("Process(% X) returned %d data bytes, Ne allows %d", raw, len(out)-2, limit)
			}
			if s.chain != nil && len(s.chain.data) > 4096 {
				t.Fatalf("chain buffer grew to %d bytes", len(s.chain.data))
			}
			if len(s.pending) > maxFuzzResp {
				t.Fatalf("pending grew to %d bytes", len(s.pending))
			}
		}
	})
}
