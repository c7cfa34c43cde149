// Package pkcs1 builds the PKCS#1 v1.5 blocks that the harness hands a
// card for a raw RSA operation (the card signs with the private key
// alone, so whoever asks for a raw signature pads it). It imports only the
// standard library, so the card's tests and the host side can share it.
package pkcs1

// Type1 pads t (a DigestInfo) to a k-byte signature block,
// 00 01 FF…FF 00 t (RFC 8017 §9.2, EMSA-PKCS1-v1_5). t must be at most
// k-11 bytes long.
func Type1(k int, t []byte) []byte {
	out := make([]byte, k)
	out[1] = 0x01
	for i := 2; i < k-len(t)-1; i++ {
		out[i] = 0xFF
	}
	copy(out[k-len(t):], t)
	return out
}
