package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/cardharness/cardharness/winerr"
)

// This file is a small CMS (RFC 5652) SignedData codec on cryptobyte: just
// what CMC renewal needs, including SignerInfos identified by
// SubjectKeyIdentifier, which the public Go pkcs7 packages drop.

var (
	tagExplicit0 = cbasn1.Tag(0).Constructed().ContextSpecific() // [0] constructed
	tagImplicit1 = cbasn1.Tag(1).Constructed().ContextSpecific() // [1] constructed
	tagSKI       = cbasn1.Tag(0).ContextSpecific()               // sid [0] SubjectKeyIdentifier (primitive)
)

// SignerInfo is one parsed CMS SignerInfo.
type SignerInfo struct {
	Raw     []byte
	Version int
	// SubjectKeyID is set when sid is [0] SubjectKeyIdentifier (version 3);
	// RawIssuer and SerialNumber when sid is IssuerAndSerialNumber (version 1).
	SubjectKeyID       []byte
	RawIssuer          []byte
	SerialNumber       *big.Int
	DigestAlgorithm    asn1.ObjectIdentifier
	RawSignedAttrs     []byte // the [0] IMPLICIT element as received (nil if absent)
	SignedAttrs        []Attribute
	SignatureAlgorithm asn1.ObjectIdentifier
	Signature          []byte
	UnsignedAttrs      []Attribute
}

// BySKI reports whether the signer is identified by SubjectKeyIdentifier.
func (si *SignerInfo) BySKI() bool { return si.SubjectKeyID != nil }

// Identifies reports whether sid names cert: issuer and serial equal, or
// the SKI equals the certificate's SubjectKeyId (or its computed key id).
func (si *SignerInfo) Identifies(cert *x509.Certificate) bool {
	if si.BySKI() {
		if len(cert.SubjectKeyId) > 0 && bytes.Equal(cert.SubjectKeyId, si.SubjectKeyID) {
			return true
		}
		ski, err := skiFromSPKI(cert.RawSubjectPublicKeyInfo)
		return err == nil && bytes.Equal(ski, si.SubjectKeyID)
	}
	return bytes.Equal(si.RawIssuer, cert.RawIssuer) && si.SerialNumber.Cmp(cert.SerialNumber) == 0
}

// SID describes the signer identifier for people.
func (si *SignerInfo) SID() string {
	if si.BySKI() {
		return "subjectKeyIdentifier " + hex.EncodeToString(si.SubjectKeyID)
	}
	issuer := "?"
	if n, err := parseName(si.RawIssuer); err == nil {
		issuer = n.String()
	}
	return fmt.Sprintf("issuer %q serial %x", issuer, si.SerialNumber)
}

// ContentType is the value of the content-type signed attribute.
func (si *SignerInfo) ContentType() (asn1.ObjectIdentifier, error) {
	v, err := si.singleAttr(OIDContentTypeAttr)
	if err != nil {
		return nil, err
	}
	var oid asn1.ObjectIdentifier
	s := cryptobyte.String(v)
	if !s.ReadASN1ObjectIdentifier(&oid) || !s.Empty() {
		return nil, errors.New("content-type attribute is not an OID")
	}
	return oid, nil
}

// MessageDigest is the value of the message-digest signed attribute.
func (si *SignerInfo) MessageDigest() ([]byte, error) {
	v, err := si.singleAttr(OIDMessageDigestAttr)
	if err != nil {
		return nil, err
	}
	var d cryptobyte.String
	s := cryptobyte.String(v)
	if !s.ReadASN1(&d, cbasn1.OCTET_STRING) || !s.Empty() {
		return nil, errors.New("message-digest attribute is not an OCTET STRING")
	}
	return d, nil
}

var errAttrMissing = errors.New("attribute missing")

func (si *SignerInfo) singleAttr(t asn1.ObjectIdentifier) ([]byte, error) {
	as := findAttributes(si.SignedAttrs, t)
	if len(as) == 0 {
		return nil, errAttrMissing
	}
	if len(as) != 1 || len(as[0].Values) != 1 {
		return nil, fmt.Errorf("attribute %v must occur once with one value", t)
	}
	return as[0].Values[0], nil
}

// verify checks the signer against the content and a public key
// (docs/reference/minidriver-semantics.md §4.2 check 6, and the signature part of 4/5).
func (si *SignerInfo) verify(eContentType asn1.ObjectIdentifier, eContent []byte, pub crypto.PublicKey, check int) *RequestError {
	if si.RawSignedAttrs == nil {
		return reqErr(winerr.CRYPT_E_AUTH_ATTR_MISSING, 6, "signer %s has no signedAttrs", si.SID())
	}
	ct, err := si.ContentType()
	if errors.Is(err, errAttrMissing) {
		return reqErr(winerr.CRYPT_E_AUTH_ATTR_MISSING, 6, "signer %s has no content-type attribute", si.SID())
	} else if err != nil {
		return wrapErr(winerr.ERROR_INVALID_DATA, 6, err, "signer %s", si.SID())
	}
	if !ct.Equal(eContentType) {
		return reqErr(winerr.ERROR_INVALID_DATA, 6, "signer %s: content-type attribute %v, eContentType %v", si.SID(), ct, eContentType)
	}
	md, err := si.MessageDigest()
	if errors.Is(err, errAttrMissing) {
		return reqErr(winerr.CRYPT_E_AUTH_ATTR_MISSING, 6, "signer %s has no message-digest attribute", si.SID())
	} else if err != nil {
		return wrapErr(winerr.ERROR_INVALID_DATA, 6, err, "signer %s", si.SID())
	}
	ha, ok := hashByDigestOID(si.DigestAlgorithm)
	if !ok || !ha.hash.Available() {
		return reqErr(winerr.ERROR_INVALID_DATA, 6, "signer %s: unsupported digest algorithm %v", si.SID(), si.DigestAlgorithm)
	}
	d := ha.hash.New()
	d.Write(eContent)
	if !bytes.Equal(d.Sum(nil), md) {
		return reqErr(winerr.CRYPT_E_HASH_VALUE, 6, "signer %s: messageDigest does not match the eContent", si.SID())
	}
	kind, h, err := sigScheme(si.SignatureAlgorithm, ha.hash)
	if err != nil {
		return wrapErr(winerr.ERROR_INVALID_DATA, check, err, "signer %s", si.SID())
	}
	signed := bytes.Clone(si.RawSignedAttrs)
	signed[0] = 0x31 // RFC 5652 5.4: the signature covers the attributes as a SET OF
	if err := verifySig(pub, kind, h, signed, si.Signature); err != nil {
		return wrapErr(winerr.NTE_BAD_SIGNATURE, check, err, "signer %s", si.SID())
	}
	return nil
}

// SignedData is a parsed CMS SignedData.
type SignedData struct {
	Version          int
	DigestAlgorithms []asn1.ObjectIdentifier
	EContentType     asn1.ObjectIdentifier
	// EContent is the content of the eContent OCTET STRING (nil if absent).
	EContent []byte
	// Certificates is the raw certificates set in wire order; entries of
	// other CertificateChoices are skipped.
	Certificates [][]byte
	HasCRLs      bool
	SignerInfos  []*SignerInfo
}

// parseContentInfo returns the contentType and the DER inside [0] EXPLICIT.
func parseContentInfo(der []byte) (asn1.ObjectIdentifier, []byte, error) {
	s := cryptobyte.String(der)
	var ci, content cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !s.ReadASN1(&ci, cbasn1.SEQUENCE) || !s.Empty() || !ci.ReadASN1ObjectIdentifier(&ct) {
		return nil, nil, errors.New("not a DER ContentInfo")
	}
	if ci.Empty() {
		return ct, nil, nil
	}
	if !ci.ReadASN1(&content, tagExplicit0) || !ci.Empty() {
		return nil, nil, errors.New("malformed ContentInfo content")
	}
	return ct, content, nil
}

func parseSignedData(der []byte) (*SignedData, error) {
	s := cryptobyte.String(der)
	var sd, algs, eci, certs, signers cryptobyte.String
	out := &SignedData{}
	var ok bool
	if !s.ReadASN1(&sd, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, errors.New("malformed SignedData")
	}
	if out.Version, ok = readSmallInt(&sd); !ok {
		return nil, errors.New("malformed SignedData version")
	}
	if !sd.ReadASN1(&algs, cbasn1.SET) {
		return nil, errors.New("malformed digestAlgorithms")
	}
	for !algs.Empty() {
		oid, ok := readAlgID(&algs)
		if !ok {
			return nil, errors.New("malformed digestAlgorithms")
		}
		out.DigestAlgorithms = append(out.DigestAlgorithms, oid)
	}
	if !sd.ReadASN1(&eci, cbasn1.SEQUENCE) || !eci.ReadASN1ObjectIdentifier(&out.EContentType) {
		return nil, errors.New("malformed encapContentInfo")
	}
	if !eci.Empty() {
		var wrap, oct cryptobyte.String
		// DER only: a primitive OCTET STRING (BER constructed strings are refused).
		if !eci.ReadASN1(&wrap, tagExplicit0) || !eci.Empty() ||
			!wrap.ReadASN1(&oct, cbasn1.OCTET_STRING) || !wrap.Empty() {
			return nil, errors.New("malformed eContent")
		}
		out.EContent = oct
		if out.EContent == nil {
			out.EContent = []byte{}
		}
	}
	// An absent certificates set leaves certs empty: no elements.
	if !sd.ReadOptionalASN1(&certs, nil, tagExplicit0) {
		return nil, errors.New("malformed certificates")
	}
	els, tags, ok := elements(certs)
	if !ok {
		return nil, errors.New("malformed certificates")
	}
	for i, c := range els {
		if tags[i] == cbasn1.SEQUENCE {
			out.Certificates = append(out.Certificates, c)
		}
	}
	var crls cryptobyte.String
	if !sd.ReadOptionalASN1(&crls, &out.HasCRLs, tagImplicit1) {
		return nil, errors.New("malformed crls")
	}
	if !sd.ReadASN1(&signers, cbasn1.SET) || !sd.Empty() {
		return nil, errors.New("malformed signerInfos")
	}
	for !signers.Empty() {
		si, err := parseSignerInfo(&signers)
		if err != nil {
			return nil, err
		}
		out.SignerInfos = append(out.SignerInfos, si)
	}
	return out, nil
}

func parseSignerInfo(s *cryptobyte.String) (*SignerInfo, error) {
	var raw, body cryptobyte.String
	if !s.ReadASN1Element(&raw, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed SignerInfo")
	}
	si := &SignerInfo{Raw: raw}
	var ok bool
	if !raw.ReadASN1(&body, cbasn1.SEQUENCE) {
		return nil, errors.New("malformed SignerInfo")
	}
	if si.Version, ok = readSmallInt(&body); !ok {
		return nil, errors.New("malformed SignerInfo version")
	}
	switch {
	case body.PeekASN1Tag(tagSKI):
		var ski cryptobyte.String
		if !body.ReadASN1(&ski, tagSKI) {
			return nil, errors.New("malformed SignerInfo sid")
		}
		si.SubjectKeyID = append([]byte{}, ski...)
	case body.PeekASN1Tag(cbasn1.SEQUENCE):
		var ias, issuer cryptobyte.String
		si.SerialNumber = new(big.Int)
		if !body.ReadASN1(&ias, cbasn1.SEQUENCE) || !ias.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(si.SerialNumber) || !ias.Empty() {
			return nil, errors.New("malformed SignerInfo issuerAndSerialNumber")
		}
		si.RawIssuer = issuer
	default:
		return nil, errors.New("malformed SignerInfo sid")
	}
	if si.DigestAlgorithm, ok = readAlgID(&body); !ok {
		return nil, errors.New("malformed SignerInfo digestAlgorithm")
	}
	if body.PeekASN1Tag(tagExplicit0) {
		var el, contents cryptobyte.String
		if !body.ReadASN1Element(&el, tagExplicit0) {
			return nil, errors.New("malformed signedAttrs")
		}
		si.RawSignedAttrs = el
		contents = el
		var tmp cryptobyte.String
		if !contents.ReadASN1(&tmp, tagExplicit0) {
			return nil, errors.New("malformed signedAttrs")
		}
		if si.SignedAttrs, ok = readAttributes(tmp); !ok {
			return nil, errors.New("malformed signedAttrs")
		}
	}
	var sig cryptobyte.String
	if si.SignatureAlgorithm, ok = readAlgID(&body); !ok || !body.ReadASN1(&sig, cbasn1.OCTET_STRING) {
		return nil, errors.New("malformed SignerInfo signature")
	}
	si.Signature = sig
	if !body.Empty() {
		var ua cryptobyte.String
		if !body.ReadASN1(&ua, tagImplicit1) || !body.Empty() {
			return nil, errors.New("malformed unsignedAttrs")
		}
		if si.UnsignedAttrs, ok = readAttributes(ua); !ok {
			return nil, errors.New("malformed unsignedAttrs")
		}
	}
	return si, nil
}

// cmsSigner is one SignerInfo to build.
type cmsSigner struct {
	key  crypto.Signer         // signs
	pub  crypto.PublicKey      // selects the signature algorithm (key.Public())
	ski  []byte                // sid [0] when non-nil (version 3)
	cert *x509.Certificate     // sid IssuerAndSerialNumber otherwise (version 1)
	ct   asn1.ObjectIdentifier // content-type attribute value override
	// faults
	badDigest bool
	badSig    bool
}

type signedDataParams struct {
	contentType  asn1.ObjectIdentifier // ContentInfo contentType; nil: id-signedData
	eContentType asn1.ObjectIdentifier
	eContent     []byte // nil: no eContent (certs-only)
	certs        [][]byte
	signers      []cmsSigner
	hash         hashAlg
	rand         io.Reader
}

func buildSignedData(p signedDataParams) ([]byte, error) {
	version := int64(1)
	if !p.eContentType.Equal(OIDData) {
		version = 3
	}
	var infos [][]byte
	for _, s := range p.signers {
		der, err := buildSignerInfo(p, s)
		if err != nil {
			return nil, err
		}
		if s.ski != nil {
			version = 3
		}
		infos = append(infos, der)
	}
	ct := p.contentType
	if ct == nil {
		ct = OIDSignedData
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(ct)
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(version)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					if len(p.signers) > 0 {
						addAlgID(b, p.hash.digest, false)
					}
				})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(p.eContentType)
					if p.eContent != nil {
						b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
							b.AddASN1OctetString(p.eContent)
						})
					}
				})
				if len(p.certs) > 0 {
					b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
						for _, c := range sortedDER(p.certs) {
							b.AddBytes(c)
						}
					})
				}
				// Emitted in the caller's order on purpose: CertEnroll puts
				// the primary signer first [I]; DER would sort the SET.
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					for _, si := range infos {
						b.AddBytes(si)
					}
				})
			})
		})
	})
	return b.Bytes()
}

func buildSignerInfo(p signedDataParams, s cmsSigner) ([]byte, error) {
	d := p.hash.hash.New()
	d.Write(p.eContent)
	digest := d.Sum(nil)
	if s.badDigest {
		digest[0] ^= 0xFF
	}
	ct := s.ct
	if ct == nil {
		ct = p.eContentType
	}
	ctDER, err := asn1.Marshal(ct)
	if err != nil {
		return nil, err
	}
	mdDER, err := asn1.Marshal(digest)
	if err != nil {
		return nil, err
	}
	attrs, err := encodeAttributes([]Attribute{
		{Type: OIDContentTypeAttr, Values: [][]byte{ctDER}},
		{Type: OIDMessageDigestAttr, Values: [][]byte{mdDER}},
	})
	if err != nil {
		return nil, err
	}
	var set cryptobyte.Builder
	set.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			b.AddBytes(a)
		}
	})
	setDER, err := set.Bytes()
	if err != nil {
		return nil, err
	}
	sig, err := signData(p.rand, s.key, p.hash, setDER)
	if err != nil {
		return nil, fmt.Errorf("ca: signing SignerInfo: %w", err)
	}
	if s.badSig {
		sig[len(sig)/2] ^= 0x01
	}
	pub := s.pub
	if pub == nil {
		pub = s.key.Public()
	}
	var b cryptobyte.Builder
	var algErr error
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if s.ski != nil {
			b.AddASN1Int64(3)
			b.AddASN1(tagSKI, func(b *cryptobyte.Builder) { b.AddBytes(s.ski) })
		} else {
			b.AddASN1Int64(1)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(s.cert.RawIssuer)
				b.AddASN1BigInt(s.cert.SerialNumber)
			})
		}
		addAlgID(b, p.hash.digest, false)
		b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) {
			for _, a := range attrs {
				b.AddBytes(a)
			}
		})
		algErr = addSigAlg(b, pub, p.hash, true)
		b.AddASN1OctetString(sig)
	})
	if algErr != nil {
		return nil, algErr
	}
	return b.Bytes()
}

// EncodeCertsOnly returns a degenerate PKCS#7 SignedData that only carries
// certificates (no content, no signers): the shape of a certificate-chain
// response ("PKCS #7 certificates") and of msroots [docs/reference/minidriver-semantics.md §4.5].
func EncodeCertsOnly(certs ...*x509.Certificate) ([]byte, error) {
	raws := make([][]byte, 0, len(certs))
	for _, c := range certs {
		raws = append(raws, c.Raw)
	}
	return buildSignedData(signedDataParams{eContentType: OIDData, certs: raws})
}

// ParseCertsOnly returns the certificates of any PKCS#7/CMS SignedData
// (typically a degenerate one).
func ParseCertsOnly(der []byte) ([]*x509.Certificate, error) {
	ct, content, err := parseContentInfo(der)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if !ct.Equal(OIDSignedData) {
		return nil, fmt.Errorf("ca: content type %v is not signedData", ct)
	}
	sd, err := parseSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	var out []*x509.Certificate
	for _, raw := range sd.Certificates {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}
