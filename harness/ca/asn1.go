package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers of the structures this package builds and checks.
var (
	OIDSignedData            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}  // id-signedData
	OIDData                  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}  // id-data
	OIDPKIData               = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 12, 2}  // id-cct-PKIData (RFC 5272)
	OIDRegInfo               = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 7, 18}  // id-cmc-regInfo (RFC 5272)
	OIDContentTypeAttr       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}  // content-type signed attribute
	OIDMessageDigestAttr     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}  // message-digest signed attribute
	OIDExtensionRequest      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14} // PKCS#9 extensionRequest
	OIDRenewalCertificate    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 13, 1}
	OIDCertificateTemplate   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 7} // v2+ template extension
	OIDCertTypeName          = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2} // v1 template name extension (BMPString)
	OIDUserPrincipalName     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
	OIDCertificateRequestAgt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 1} // EKU "Certificate Request Agent"
	OIDSmartcardLogon        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}

	oidSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidCRLDistribution  = asn1.ObjectIdentifier{2, 5, 29, 31}
	oidAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidAuthorityInfo    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidCAVersion        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 1}
	oidPrevCACertHash   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 2}
	oidNTDSCASecurity   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 2}

	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
)

// hashAlg ties a hash to its OIDs. Adding a hash means adding a row.
type hashAlg struct {
	hash   crypto.Hash
	digest asn1.ObjectIdentifier // digestAlgorithm
	rsa    asn1.ObjectIdentifier // shaXWithRSAEncryption (PKCS#1 v1.5)
	ecdsa  asn1.ObjectIdentifier // ecdsa-with-SHAx
}

var hashAlgs = []hashAlg{
	{crypto.SHA256, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1},
		asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}},
	{crypto.SHA384, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2},
		asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}},
	{crypto.SHA512, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3},
		asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}},
	// SHA-1: what XP-era clients sent; accepted on verification, avoid for new requests.
	{crypto.SHA1, asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26},
		asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}},
}

func hashByCrypto(h crypto.Hash) (hashAlg, error) {
	if h == 0 {
		h = crypto.SHA256
	}
	for _, a := range hashAlgs {
		if a.hash == h {
			if !h.Available() {
				break
			}
			return a, nil
		}
	}
	return hashAlg{}, fmt.Errorf("ca: unsupported hash %v", h)
}

func hashByDigestOID(oid asn1.ObjectIdentifier) (hashAlg, bool) {
	for _, a := range hashAlgs {
		if a.digest.Equal(oid) {
			return a, true
		}
	}
	return hashAlg{}, false
}

type keyKind int

const (
	kindRSA keyKind = iota + 1
	kindECDSA
)

// sigScheme resolves a signature AlgorithmIdentifier. digest is the
// SignerInfo's digest hash (0 for PKCS#10, where the signature OID alone
// names the hash). rsaEncryption is accepted in CMS only, combined with
// the digest algorithm; a shaXWithRSA OID must agree with the digest.
func sigScheme(sigAlg asn1.ObjectIdentifier, digest crypto.Hash) (keyKind, crypto.Hash, error) {
	if sigAlg.Equal(oidRSAEncryption) {
		if digest == 0 {
			return 0, 0, errors.New("rsaEncryption without a digest algorithm")
		}
		return kindRSA, digest, nil
	}
	for _, a := range hashAlgs {
		var kind keyKind
		switch {
		case a.rsa.Equal(sigAlg):
			kind = kindRSA
		case a.ecdsa.Equal(sigAlg):
			kind = kindECDSA
		default:
			continue
		}
		if digest != 0 && digest != a.hash {
			return 0, 0, fmt.Errorf("signature algorithm %v does not match digest %v", sigAlg, digest)
		}
		return kind, a.hash, nil
	}
	return 0, 0, fmt.Errorf("unsupported signature algorithm %v", sigAlg)
}

// verifySig checks sig over signed with pub.
func verifySig(pub crypto.PublicKey, kind keyKind, h crypto.Hash, signed, sig []byte) error {
	if !h.Available() {
		return fmt.Errorf("hash %v unavailable", h)
	}
	d := h.New()
	d.Write(signed)
	sum := d.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if kind != kindRSA {
			return errors.New("RSA key, non-RSA signature algorithm")
		}
		return rsa.VerifyPKCS1v15(k, h, sum, sig)
	case *ecdsa.PublicKey:
		if kind != kindECDSA {
			return errors.New("ECDSA key, non-ECDSA signature algorithm")
		}
		if !ecdsa.VerifyASN1(k, sum, sig) {
			return errors.New("ecdsa: verification error")
		}
		return nil
	}
	return fmt.Errorf("unsupported public key type %T", pub)
}

// signData hashes data and has key sign it (a card key behind
// crypto.Signer: RSA PKCS#1 v1.5 or ECDSA).
func signData(rand io.Reader, key crypto.Signer, a hashAlg, data []byte) ([]byte, error) {
	d := a.hash.New()
	d.Write(data)
	return key.Sign(rand, d.Sum(nil), a.hash)
}

// addAlgID appends an AlgorithmIdentifier. RSA-family OIDs get NULL
// parameters (RFC 4055), the others none (RFC 5754, RFC 5758).
func addAlgID(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, nullParams bool) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if nullParams {
			b.AddASN1NULL()
		}
	})
}

// addSigAlg appends the signature AlgorithmIdentifier for key. cms selects
// the SignerInfo form: rsaEncryption for RSA (what CryptMsg and OpenSSL
// emit [I]); certificates and PKCS#10 name the hash in the OID.
func addSigAlg(b *cryptobyte.Builder, pub crypto.PublicKey, a hashAlg, cms bool) error {
	switch pub.(type) {
	case *rsa.PublicKey:
		if cms {
			addAlgID(b, oidRSAEncryption, true)
		} else {
			addAlgID(b, a.rsa, true)
		}
	case *ecdsa.PublicKey:
		addAlgID(b, a.ecdsa, false)
	default:
		return fmt.Errorf("ca: unsupported key type %T (want RSA or ECDSA)", pub)
	}
	return nil
}

// readAlgID reads an AlgorithmIdentifier and returns its OID (parameters
// are accepted as any single element or absent).
func readAlgID(s *cryptobyte.String) (asn1.ObjectIdentifier, bool) {
	var seq cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return nil, false
	}
	if !seq.Empty() {
		var params cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1Element(&params, &tag) || !seq.Empty() {
			return nil, false
		}
	}
	return oid, true
}

// SubjectKeyID is the key identifier of RFC 5280 4.2.1.2 method (1): SHA-1
// over the subjectPublicKey BIT STRING. CertEnroll and AD CS use it for the
// SKI extension and the SignerInfo sid of the primary CMC signer.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return skiFromSPKI(spki)
}

func skiFromSPKI(spki []byte) ([]byte, error) {
	s := cryptobyte.String(spki)
	var seq cryptobyte.String
	var bits asn1.BitString
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, errors.New("ca: malformed SubjectPublicKeyInfo")
	}
	if _, ok := readAlgID(&seq); !ok || !seq.ReadASN1BitString(&bits) || !seq.Empty() {
		return nil, errors.New("ca: malformed SubjectPublicKeyInfo")
	}
	sum := sha1.Sum(bits.Bytes)
	return sum[:], nil
}

// Attribute is a PKCS#9/CMS attribute: a type and the DER of each value.
type Attribute struct {
	Type   asn1.ObjectIdentifier
	Values [][]byte
}

// addAttribute appends Attribute ::= SEQUENCE { type, SET OF value }, the
// values in DER SET OF order.
func addAttribute(b *cryptobyte.Builder, a Attribute) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(a.Type)
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for _, v := range sortedDER(a.Values) {
				b.AddBytes(v)
			}
		})
	})
}

// encodeAttributes returns the DER of each attribute, sorted as DER wants
// the elements of a SET OF.
func encodeAttributes(attrs []Attribute) ([][]byte, error) {
	out := make([][]byte, 0, len(attrs))
	for _, a := range attrs {
		var b cryptobyte.Builder
		addAttribute(&b, a)
		der, err := b.Bytes()
		if err != nil {
			return nil, err
		}
		out = append(out, der)
	}
	return sortedDER(out), nil
}

// elements splits s, the contents of a SEQUENCE OF or SET OF, into the
// DER of its elements and their tags; false if s ends inside an element.
func elements(s cryptobyte.String) (els [][]byte, tags []cbasn1.Tag, ok bool) {
	for !s.Empty() {
		var el cryptobyte.String
		var tag cbasn1.Tag
		if !s.ReadAnyASN1Element(&el, &tag) {
			return nil, nil, false
		}
		els, tags = append(els, el), append(tags, tag)
	}
	return els, tags, true
}

// readAttributes parses the contents of a SET OF Attribute.
func readAttributes(s cryptobyte.String) ([]Attribute, bool) {
	var attrs []Attribute
	for !s.Empty() {
		var seq, set cryptobyte.String
		var a Attribute
		if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&a.Type) ||
			!seq.ReadASN1(&set, cbasn1.SET) || !seq.Empty() {
			return nil, false
		}
		var ok bool
		if a.Values, _, ok = elements(set); !ok {
			return nil, false
		}
		attrs = append(attrs, a)
	}
	return attrs, true
}

func findAttributes(attrs []Attribute, t asn1.ObjectIdentifier) []Attribute {
	var out []Attribute
	for _, a := range attrs {
		if a.Type.Equal(t) {
			out = append(out, a)
		}
	}
	return out
}

func sortedDER(items [][]byte) [][]byte {
	s := slices.Clone(items)
	slices.SortFunc(s, bytes.Compare)
	return s
}

// readInt reads a non-negative INTEGER that fits an int.
func readSmallInt(s *cryptobyte.String) (int, bool) {
	var v int64
	if !s.ReadASN1Integer(&v) || v < 0 || v > 1<<31-1 {
		return 0, false
	}
	return int(v), true
}
