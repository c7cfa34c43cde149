package gids

import (
	"bytes"
	"crypto/rsa"
	"testing"
)

// A remembered signature is the one rsa.SignPKCS1v15 gives, for each key
// and block separately, and a caller cannot change what is remembered.
func TestSignatureMemoGivesTheSameBytes(t *testing.T) {
	pool := seedPool(1024)
	if len(pool) < 2 {
		t.Fatalf("%d pool keys of 1024 bits", len(pool))
	}
	memo := NewSignatureMemo()
	for round := range 2 { // the second round is answered from the memo
		for ki, k := range pool[:2] {
			for _, block := range [][]byte{[]byte("block one"), []byte("block two")} {
				want, err := rsa.SignPKCS1v15(nil, k, 0, block)
				if err != nil {
					t.Fatal(err)
				}
				got, err := memo.sign(k, block)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("round %d, key %d, %q: memo signature differs from rsa.SignPKCS1v15", round, ki, block)
				}
				got[0] ^= 0xFF // must not reach the memo
			}
		}
	}
	if n := len(memo.m); n != 4 {
		t.Errorf("memo holds %d signatures, want 4 (2 keys x 2 blocks)", n)
	}
	for i := range SignatureMemoMax + 1 {
		if _, err := memo.sign(pool[0], []byte{byte(i), byte(i >> 8)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(memo.m); n > SignatureMemoMax {
		t.Errorf("memo holds %d signatures, bound %d", n, SignatureMemoMax)
	}
}
