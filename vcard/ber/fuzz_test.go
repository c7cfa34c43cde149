package ber

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

func FuzzParse(f *testing.F) {
	testutil.AddHexSeeds(f,
		"", "00", "DF2300", "DF2206000000000000", "7F49818881818000", "DF2482000100",
		"645F2F01607F65028000", "DF23810100", "DF2380", "DF818203 00", "9F810201AA",
		"DF2184000000020102", "708408418101A5037F4980",
	)
	f.Fuzz(func(t *testing.T, in []byte) {
		tlvs, err := Parse(in)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(in) {
				t.Fatalf("bad error %#v", err)
			}
			return
		}
		var enc []byte
		for _, tlv := range tlvs {
			if !ValidTag(tlv.Tag) {
				t.Fatalf("parsed tag %X is not valid", tlv.Tag)
			}
			enc = Append(enc, tlv.Tag, tlv.Value)
		}
		// Minimal lengths can only shrink the input.
		if len(enc) > len(in) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(in), len(enc))
		}
		again, err := Parse(enc)
		if err != nil {
			t.Fatalf("Parse(re-encoding % X): %v", enc, err)
		}
		if d := cmp.Diff(tlvs, again, equateEmpty); d != "" {
			t.Fatalf("round trip (-first +second):\n%s", d)
		}
		// A second encoding is a fixed point.
		var enc2 []byte
		for _, tlv := range again {
			enc2 = Append(enc2, tlv.Tag, tlv.Value)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not canonical: % X vs % X", enc, enc2)
		}
		// Find agrees with Parse on the first occurrence of each tag.
		for i, tlv := range tlvs {
			v, ok, err := Find(in, tlv.Tag)
			if err != nil || !ok {
				t.Fatalf("Find(%X): %v %v", tlv.Tag, ok, err)
			}
			first := i
			for j := range i {
				if tlvs[j].Tag == tlv.Tag {
					first = j
					break
				}
			}
			if !bytes.Equal(v, tlvs[first].Value) {
				t.Fatalf("Find(%X) = % X, want % X", tlv.Tag, v, tlvs[first].Value)
			}
		}
	})
}
