package scenarios

import (
	"crypto"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"sync"
)

// The test CA's signing key: one public, fixed Ed25519 key (openssl
// genpkey -algorithm ed25519, testkeys/ca-ed25519.pem) instead of a fresh
// RSA key per scenario. Why fixed: Go's rsa.GenerateKey ignores the random reader it
// is given, so a generated CA key would make every certificate, and every
// APDU that carries one, differ between two runs with the same seed. Why
// Ed25519: the CA signs every certificate of a scenario, an RSA-2048
// signature costs about thirty Ed25519 ones (a quarter of the in-process
// suite's time was the CA's RSA signatures). Nothing on the card or in the
// host model depends on the CA's key type: hosts check certificates with
// x509, and the card never sees the CA key. The serial numbers still come
// from the scenario's seed, and Ed25519 signatures are deterministic
// (ECDSA's are not, which would break the same-seed-same-bytes rule). This key protects nothing: it is for tests only.
//
//go:embed testkeys/ca-ed25519.pem
var caKeyPEM []byte

var caKey = sync.OnceValue(func() crypto.Signer {
	b, _ := pem.Decode(caKeyPEM)
	if b == nil {
		panic("scenarios: testkeys/ca-ed25519.pem is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		panic("scenarios: testkeys/ca-ed25519.pem: " + err.Error())
	}
	return k.(crypto.Signer)
})
