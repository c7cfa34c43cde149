package minidriver

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

func (c *Card) keyAlg(ctx context.Context, op string, index int) (fs.KeySpec, byte, error) {
	cmap, err := c.Containers(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", op, err)
	}
	if !cmap.Valid(index) {
		return 0, 0, fmt.Errorf("%s: %w", op, ErrNoContainer)
	}
	spec, bits, ok := cmap[index].Key()
	if !ok {
		return 0, 0, fmt.Errorf("%s: %w", op, ErrNoContainer)
	}
	alg, err := fs.AlgID(bits)
	return spec, alg, err
}

// SignData is CardSignData with PKCS#1 v1.5 padding done by the card: data
// is what goes inside the padding (a DigestInfo, or a bare MD5‖SHA-1 for
// SSL3). The user PIN must be authenticated.
func (c *Card) SignData(ctx context.Context, index int, data []byte) ([]byte, error) {
	return c.keyOperation(ctx, fmt.Sprintf("CardSignData %d", index), index, psoSign, data)
}

// Decrypt is CardRSADecrypt with PKCS#1 v1.5 type-2 padding removed by the
// card. The ciphertext is sent without a padding-indicator byte (§2.11).
func (c *Card) Decrypt(ctx context.Context, index int, ciphertext []byte) ([]byte, error) {
	return c.keyOperation(ctx, fmt.Sprintf("CardRSADecrypt %d", index), index, psoDecipher, ciphertext)
}

// pso is one use of a container's private key: MSE SET with template tmpl
// and algorithm algHi|the key size's ID (§2.8), then PERFORM SECURITY
// OPERATION P1 P2 (§2.11).
type pso struct {
	name         string
	tmpl, algHi  byte
	p1, p2       byte
	exchangeOnly bool // only an AT_KEYEXCHANGE key may do it
}

var (
	psoSign     = pso{name: "PSO COMPUTE DIGITAL SIGNATURE", tmpl: 0xB6, algHi: 0x50, p1: 0x9E, p2: 0x9A}
	psoDecipher = pso{name: "PSO DECIPHER", tmpl: 0xB8, algHi: 0x40, p1: 0x80, p2: 0x86, exchangeOnly: true}
)

// keyOperation runs o with container index's key on data. MSE SET and the
// PSO go in one transaction, so no other caller's MSE comes between.
func (c *Card) keyOperation(ctx context.Context, op string, index int, o pso, data []byte) ([]byte, error) {
	var out []byte
	err := c.transaction(ctx, func() error {
		spec, alg, err := c.keyAlg(ctx, op, index)
		if err != nil {
			return err
		}
		if o.exchangeOnly && spec != fs.AT_KEYEXCHANGE {
			return fmt.Errorf("%s: a signature key cannot decrypt: %w", op, ErrNoContainer)
		}
		if _, err := c.do(ctx, op+": MSE", apdu.Command{INS: apdu.INSManageSecurityEnvironment, P1: 0x41, P2: o.tmpl, Data: mseCRT(o.algHi|alg, keyRef(index))}); err != nil {
			return err
		}
		out, err = c.do(ctx, op+": "+o.name, apdu.Command{INS: apdu.INSPerformSecurityOperation, P1: o.p1, P2: o.p2, Data: data, Ne: leMax})
		return err
	})
	return out, err
}

// mseCRT is the control reference template of MSE SET (§2.8): 80
// algorithm, 84 key reference.
func mseCRT(alg, ref byte) []byte {
	return append(ber.Encode(0x80, []byte{alg}), ber.Encode(0x84, []byte{ref})...)
}

// digestInfoPrefix is the DER prefix of a DigestInfo (RFC 8017 §9.2).
var digestInfoPrefix = map[crypto.Hash][]byte{
	crypto.SHA1:   {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// Signer is a crypto.Signer backed by a container on the card: what the
// CMC builder and the CA need to sign with card keys. The user PIN must be
// authenticated before Sign; ctx bounds every call.
type Signer struct {
	card  *Card
	ctx   context.Context
	index int
	pub   *rsa.PublicKey
}

// Signer returns a crypto.Signer for container index.
func (c *Card) Signer(ctx context.Context, index int) (*Signer, error) {
	info, err := c.ContainerInfo(ctx, index)
	if err != nil {
		return nil, err
	}
	return &Signer{card: c, ctx: ctx, index: index, pub: info.PublicKey}, nil
}

// Public implements crypto.Signer.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign implements crypto.Signer for PKCS#1 v1.5 (PSS is not something
// the GIDS minidriver path offers).
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, pss := opts.(*rsa.PSSOptions); pss {
		return nil, errors.New("minidriver signer: PSS is not supported by GIDS card-side padding")
	}
	prefix, ok := digestInfoPrefix[opts.HashFunc()]
	if !ok {
		return nil, fmt.Errorf("minidriver signer: hash %v not supported", opts.HashFunc())
	}
	if len(digest) != opts.HashFunc().Size() {
		return nil, fmt.Errorf("minidriver signer: digest of %d bytes for %v", len(digest), opts.HashFunc())
	}
	return s.card.SignData(s.ctx, s.index, append(append([]byte{}, prefix...), digest...))
}
