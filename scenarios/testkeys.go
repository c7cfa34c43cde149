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

var caKey = sync.OnceValue(testKey("testkeys/ca-ed25519.pem", caKeyPEM))

// The enrollment agent's software key (the `agent: true` renewals of S17):
// one public, fixed RSA-2048 key (openssl genpkey, testkeys/agent-rsa2048.pem)
// instead of rsa.GenerateKey per step. Why: generating it was an eighth of
// the in-process suite's time, and a fresh key made the agent's certificate
// and the renewal request differ between two runs with one seed. RSA
// because an enrollment agent signs a CMC request with an RSA key on
// Windows. This key protects nothing: it is for tests only.
//
//go:embed testkeys/agent-rsa2048.pem
var agentKeyPEM []byte

var agentKey = sync.OnceValue(testKey("testkeys/agent-rsa2048.pem", agentKeyPEM))

// testKey parses the embedded PKCS#8 PEM key of file name (named in the
// panic: an unreadable embedded key is a broken build, not bad input).
func testKey(name string, pemBytes []byte) func() crypto.Signer {
	return func() crypto.Signer {
		b, _ := pem.Decode(pemBytes)
		if b == nil {
			panic("scenarios: " + name + " is not PEM")
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			panic("scenarios: " + name + ": " + err.Error())
		}
		return k.(crypto.Signer)
	}
}
