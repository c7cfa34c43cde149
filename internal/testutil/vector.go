package testutil

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Vector is one quoted byte string (a trace, a docs/reference example)
// and the value it must decode to.
type Vector[T any] struct {
	Name string
	In   []byte
	Want T
}

// CheckVectors runs CheckVector on each vector as its own subtest. The
// codecs of the card (vcard/apdu) and of the host (minidriver/fs) share
// it, so "a quoted vector decodes and re-encodes exactly" means the same
// in both.
func CheckVectors[T any](t *testing.T, parse func([]byte) (T, error), encode func(T) ([]byte, error), vectors []Vector[T], opts ...cmp.Option) {
	t.Helper()
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) { CheckVector(t, parse, encode, v.In, v.Want, opts...) })
	}
}

// CheckVector checks a quoted vector: parse reads in as want (go-cmp,
// with opts), and encode writes the parsed value back as in byte for byte
// (a writer that rewrites a file or an APDU must not change what it did
// not touch).
func CheckVector[T any](t testing.TB, parse func([]byte) (T, error), encode func(T) ([]byte, error), in []byte, want T, opts ...cmp.Option) {
	t.Helper()
	got, err := parse(in)
	if err != nil {
		t.Fatalf("parse(% X): %v", in, err)
	}
	if d := cmp.Diff(want, got, opts...); d != "" {
		t.Errorf("parse (-want +got):\n%s", d)
	}
	enc, err := encode(got)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if !bytes.Equal(enc, in) {
		t.Errorf("encode =\n% X\nwant\n% X", enc, in)
	}
}

// NoError adapts an encoder that cannot fail to CheckVector's signature.
func NoError[T any](encode func(T) []byte) func(T) ([]byte, error) {
	return func(v T) ([]byte, error) { return encode(v), nil }
}
