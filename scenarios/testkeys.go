package scenarios

import (
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"sync"
)

// The test CA's signing key: one public, fixed RSA-2048 key (openssl
// genrsa, testkeys/ca-rsa2048.pem) instead of a fresh one per scenario.
// Why: Go's rsa.GenerateKey ignores the random reader it is given, so a
// generated CA key would make every certificate, and every APDU that
// carries one, differ between two runs with the same seed; and generating
// it cost a scenario ~50 ms. The serial numbers still come from the
// scenario's seed. This key protects nothing: it is for tests only.
//
//go:embed testkeys/ca-rsa2048.pem
var caKeyPEM []byte

var caKey = sync.OnceValue(func() *rsa.PrivateKey {
	b, _ := pem.Decode(caKeyPEM)
	if b == nil {
		panic("scenarios: testkeys/ca-rsa2048.pem is not PEM")
	}
	k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
	if err != nil {
		panic("scenarios: testkeys/ca-rsa2048.pem: " + err.Error())
	}
	return k
})
