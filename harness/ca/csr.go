package ca

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CSR is a PKCS#10 CertificationRequest parsed by this package.
// crypto/x509 cannot be used for renewal requests: it silently drops the
// renewal-certificate attribute (its value is a Certificate, not a set of
// name/value pairs) [docs/reference/minidriver-semantics.md §4.3].
type CSR struct {
	Raw                     []byte // the whole CertificationRequest
	RawTBS                  []byte // CertificationRequestInfo, what the signature covers
	Version                 int
	RawSubject              []byte
	RawSubjectPublicKeyInfo []byte
	PublicKey               crypto.PublicKey
	SignatureAlgorithm      asn1.ObjectIdentifier
	Signature               []byte
	// Attributes in wire order, including extensionRequest and
	// 1.3.6.1.4.1.311.13.1.
	Attributes []Attribute
	// Extensions from every extensionRequest attribute, in order.
	Extensions []pkix.Extension
}

// ParseCSR parses a DER PKCS#10 request. It does not check the signature.
func ParseCSR(der []byte) (*CSR, error) {
	c := &CSR{Raw: der}
	s := cryptobyte.String(der)
	var req, info cryptobyte.String
	var sigBits asn1.BitString
	if !s.ReadASN1(&req, cbasn1.SEQUENCE) || !s.Empty() ||
		!req.ReadASN1Element(&info, cbasn1.SEQUENCE) {
		return nil, errors.New("ca: malformed CertificationRequest")
	}
	c.RawTBS = info
	var ok bool
	if c.SignatureAlgorithm, ok = readAlgID(&req); !ok || !req.ReadASN1BitString(&sigBits) || !req.Empty() {
		return nil, errors.New("ca: malformed CertificationRequest signature")
	}
	c.Signature = sigBits.RightAlign()
	var body, subject, spki cryptobyte.String
	if !info.ReadASN1(&body, cbasn1.SEQUENCE) {
		return nil, errors.New("ca: malformed CertificationRequestInfo")
	}
	if c.Version, ok = readSmallInt(&body); !ok || c.Version != 0 {
		return nil, errors.New("ca: CertificationRequestInfo version is not 0")
	}
	if !body.ReadASN1Element(&subject, cbasn1.SEQUENCE) || !body.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return nil, errors.New("ca: malformed subject or SubjectPublicKeyInfo")
	}
	c.RawSubject, c.RawSubjectPublicKeyInfo = subject, spki
	if _, err := parseName(subject); err != nil {
		return nil, fmt.Errorf("ca: malformed subject: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("ca: request public key: %w", err)
	}
	c.PublicKey = pub
	// attributes [0] IMPLICIT SET OF Attribute; some encoders omit an empty one.
	if !body.Empty() {
		var attrs cryptobyte.String
		if !body.ReadASN1(&attrs, cbasn1.Tag(0).Constructed().ContextSpecific()) || !body.Empty() {
			return nil, errors.New("ca: malformed request attributes")
		}
		if c.Attributes, ok = readAttributes(attrs); !ok {
			return nil, errors.New("ca: malformed request attributes")
		}
	}
	for _, a := range findAttributes(c.Attributes, OIDExtensionRequest) {
		for _, v := range a.Values {
			exts, err := parseExtensions(v)
			if err != nil {
				return nil, err
			}
			c.Extensions = append(c.Extensions, exts...)
		}
	}
	return c, nil
}

// CheckSignature verifies the self-signature (proof of possession of the
// request's key).
func (c *CSR) CheckSignature() error {
	kind, h, err := sigScheme(c.SignatureAlgorithm, 0)
	if err != nil {
		return err
	}
	return verifySig(c.PublicKey, kind, h, c.RawTBS, c.Signature)
}

// Subject decodes RawSubject.
func (c *CSR) Subject() (pkix.Name, error) { return parseName(c.RawSubject) }

// EmptySubject reports whether the subject is an empty Name (what the MS
// renewal sample and some clients send).
func (c *CSR) EmptySubject() bool { return bytes.Equal(c.RawSubject, emptyName) }

// RenewalCertificates returns the value of every 1.3.6.1.4.1.311.13.1
// attribute value (a well-formed renewal has exactly one, the DER of the
// old certificate).
func (c *CSR) RenewalCertificates() [][]byte {
	var out [][]byte
	for _, a := range findAttributes(c.Attributes, OIDRenewalCertificate) {
		out = append(out, a.Values...)
	}
	return out
}

// HasRenewalAttribute reports whether the request has a renewal attribute.
func (c *CSR) HasRenewalAttribute() bool {
	return len(findAttributes(c.Attributes, OIDRenewalCertificate)) > 0
}

// Template returns the template the request names in its extensions.
func (c *CSR) Template() (TemplateID, bool, error) { return templateFromExtensions(c.Extensions) }

// SubjectKeyID is SubjectKeyID(c.PublicKey).
func (c *CSR) SubjectKeyID() []byte {
	ski, _ := skiFromSPKI(c.RawSubjectPublicKeyInfo)
	return ski
}

var emptyName = []byte{0x30, 0x00}

func parseName(raw []byte) (pkix.Name, error) {
	var rdn pkix.RDNSequence
	rest, err := asn1.Unmarshal(raw, &rdn)
	if err != nil {
		return pkix.Name{}, err
	}
	if len(rest) != 0 {
		return pkix.Name{}, errors.New("trailing data after Name")
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdn)
	return n, nil
}

func parseExtensions(der []byte) ([]pkix.Extension, error) {
	s := cryptobyte.String(der)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, errors.New("ca: malformed extensionRequest")
	}
	var exts []pkix.Extension
	for !seq.Empty() {
		var e cryptobyte.String
		var ext pkix.Extension
		var val cryptobyte.String
		if !seq.ReadASN1(&e, cbasn1.SEQUENCE) || !e.ReadASN1ObjectIdentifier(&ext.Id) ||
			!e.ReadOptionalASN1Boolean(&ext.Critical, cbasn1.BOOLEAN, false) ||
			!e.ReadASN1(&val, cbasn1.OCTET_STRING) || !e.Empty() {
			return nil, errors.New("ca: malformed extension in extensionRequest")
		}
		ext.Value = val
		exts = append(exts, ext)
	}
	return exts, nil
}

func addExtensions(b *cryptobyte.Builder, exts []pkix.Extension) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, e := range exts {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(e.Id)
				if e.Critical {
					b.AddASN1Boolean(true)
				}
				b.AddASN1OctetString(e.Value)
			})
		}
	})
}

// ExtensionRequest is the extensionRequest attribute holding exts.
func ExtensionRequest(exts []pkix.Extension) (Attribute, error) {
	var b cryptobyte.Builder
	addExtensions(&b, exts)
	v, err := b.Bytes()
	return Attribute{Type: OIDExtensionRequest, Values: [][]byte{v}}, err
}

// BuildCSR builds a plain PKCS#10 request signed by key (SHA-256), for a
// first enrollment: subject, an extensionRequest with exts (if any), then
// attrs. Unlike x509.CreateCertificateRequest it accepts any attribute.
func BuildCSR(key crypto.Signer, subject pkix.Name, exts []pkix.Extension, attrs ...Attribute) ([]byte, error) {
	raw, err := asn1.Marshal(subject.ToRDNSequence())
	if err != nil {
		return nil, err
	}
	return BuildCSRRaw(key, raw, exts, attrs...)
}

// BuildCSRRaw is BuildCSR with the subject as DER (nil: empty subject).
func BuildCSRRaw(key crypto.Signer, rawSubject []byte, exts []pkix.Extension, attrs ...Attribute) ([]byte, error) {
	return buildCSR(csrParams{key: key, subject: rawSubject, exts: exts, attrs: attrs})
}

type csrParams struct {
	key      crypto.Signer
	subject  []byte
	exts     []pkix.Extension
	attrs    []Attribute
	hash     crypto.Hash
	rand     io.Reader
	badSig   bool // fault: flip a bit of the signature
	signWith crypto.Signer
}

func buildCSR(p csrParams) ([]byte, error) {
	a, err := hashByCrypto(p.hash)
	if err != nil {
		return nil, err
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if p.subject == nil {
		p.subject = emptyName
	}
	spki, err := x509.MarshalPKIXPublicKey(p.key.Public())
	if err != nil {
		return nil, err
	}
	attrs := p.attrs
	if len(p.exts) > 0 {
		er, err := ExtensionRequest(p.exts)
		if err != nil {
			return nil, err
		}
		attrs = append([]Attribute{er}, attrs...)
	}
	encAttrs, err := encodeAttributes(attrs)
	if err != nil {
		return nil, err
	}
	var tbs cryptobyte.Builder
	tbs.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddBytes(p.subject)
		b.AddBytes(spki)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			for _, e := range encAttrs {
				b.AddBytes(e)
			}
		})
	})
	tbsDER, err := tbs.Bytes()
	if err != nil {
		return nil, err
	}
	signer := p.key
	if p.signWith != nil {
		signer = p.signWith
	}
	sig, err := signData(p.rand, signer, a, tbsDER)
	if err != nil {
		return nil, fmt.Errorf("ca: signing the PKCS#10: %w", err)
	}
	if p.badSig {
		sig[len(sig)/2] ^= 0x01
	}
	var b cryptobyte.Builder
	var sigErr error
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbsDER)
		sigErr = addSigAlg(b, p.key.Public(), a, false)
		b.AddASN1BitString(sig)
	})
	if sigErr != nil {
		return nil, sigErr
	}
	return b.Bytes()
}
