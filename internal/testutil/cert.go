package testutil

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// SelfSigned is the DER of a certificate for signer's public key, signed
// by signer itself (a card's key through its minidriver, or a software
// key), for tests that need a certificate to store and read back and do
// not care what it says. Its validity (2023 to 2030) is fixed so that the
// bytes depend only on the key and the signature.
func SelfSigned(t testing.TB, signer crypto.Signer, cn string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_900_000_000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		t.Fatalf("self-signed certificate for %q: %v", cn, err)
	}
	return der
}
