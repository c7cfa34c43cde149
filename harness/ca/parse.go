package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/cardharness/cardharness/winerr"
)

// TaggedRequest is one entry of PKIData.reqSequence.
type TaggedRequest struct {
	// Kind is the CHOICE: 0 TaggedCertificationRequest (PKCS#10),
	// 1 CertReqMsg (CRMF), 2 other.
	Kind       int
	BodyPartID int
	Raw        []byte // the PKCS#10 DER (Kind 0) or the whole element
	CSR        *CSR   // Kind 0 only
}

// ParsedRenewal is a structural view of a CMC request, for the CA, for
// tests and for reports. Signers are kept in wire order; find them by sid
// (SignerBySKI, SignerFor), never by position: an encoder may sort the
// SET OF SignerInfo.
type ParsedRenewal struct {
	Raw         []byte
	ContentType asn1.ObjectIdentifier
	SignedData  *SignedData
	// PKIData content, when eContentType is id-cct-PKIData.
	IsPKIData        bool
	Controls         []Control
	Requests         []TaggedRequest
	CMSSequenceLen   int
	OtherMsgCount    int
	Certificates     []*x509.Certificate
	Signers          []*SignerInfo
	RenewalCertBytes [][]byte // values of 1.3.6.1.4.1.311.13.1 in the single PKCS#10
}

// CSR returns the PKCS#10 when PKIData holds exactly one request and it is
// a PKCS#10, else nil.
func (p *ParsedRenewal) CSR() *CSR {
	if len(p.Requests) != 1 {
		return nil
	}
	return p.Requests[0].CSR
}

// SignerBySKI returns the signers whose sid is the SubjectKeyIdentifier ski.
func (p *ParsedRenewal) SignerBySKI(ski []byte) []*SignerInfo {
	var out []*SignerInfo
	for _, s := range p.Signers {
		if s.BySKI() && bytes.Equal(s.SubjectKeyID, ski) {
			out = append(out, s)
		}
	}
	return out
}

// SignerFor returns the signers whose sid names cert.
func (p *ParsedRenewal) SignerFor(cert *x509.Certificate) []*SignerInfo {
	var out []*SignerInfo
	for _, s := range p.Signers {
		if s.Identifies(cert) {
			out = append(out, s)
		}
	}
	return out
}

// RenewalCertificate parses the single renewal-certificate attribute
// value, if there is exactly one.
func (p *ParsedRenewal) RenewalCertificate() (*x509.Certificate, error) {
	if len(p.RenewalCertBytes) != 1 {
		return nil, fmt.Errorf("ca: %d renewal certificate values", len(p.RenewalCertBytes))
	}
	return x509.ParseCertificate(p.RenewalCertBytes[0])
}

// ParseRenewal decodes a CMC request: ContentInfo, SignedData, PKIData,
// the PKCS#10(s), certificates and SignerInfos. It checks DER structure
// only (errors are *RequestError with ERROR_INVALID_DATA); Verify checks
// the semantics of docs/reference/minidriver-semantics.md §4.2 checks 1-6. A SignedData
// whose eContentType is not id-cct-PKIData parses (IsPKIData false).
func ParseRenewal(der []byte) (*ParsedRenewal, error) {
	p := &ParsedRenewal{Raw: der}
	ct, content, err := parseContentInfo(der)
	if err != nil {
		return nil, wrapErr(winerr.ERROR_INVALID_DATA, 1, err, "ContentInfo")
	}
	p.ContentType = ct
	if !ct.Equal(OIDSignedData) {
		return nil, reqErr(winerr.ERROR_INVALID_DATA, 1, "contentType %v is not id-signedData", ct)
	}
	sd, err := parseSignedData(content)
	if err != nil {
		return nil, wrapErr(winerr.ERROR_INVALID_DATA, 1, err, "SignedData")
	}
	p.SignedData, p.Signers = sd, sd.SignerInfos
	for _, raw := range sd.Certificates {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, wrapErr(winerr.ERROR_INVALID_DATA, 1, err, "certificates")
		}
		p.Certificates = append(p.Certificates, c)
	}
	if !sd.EContentType.Equal(OIDPKIData) || sd.EContent == nil {
		return p, nil
	}
	p.IsPKIData = true
	if err := p.parsePKIData(sd.EContent); err != nil {
		return nil, wrapErr(winerr.ERROR_INVALID_DATA, 1, err, "PKIData")
	}
	if csr := p.CSR(); csr != nil {
		p.RenewalCertBytes = csr.RenewalCertificates()
	}
	return p, nil
}

func (p *ParsedRenewal) parsePKIData(der []byte) error {
	s := cryptobyte.String(der)
	var pki, ctrls, reqs, cms, other cryptobyte.String
	if !s.ReadASN1(&pki, cbasn1.SEQUENCE) || !s.Empty() ||
		!pki.ReadASN1(&ctrls, cbasn1.SEQUENCE) || !pki.ReadASN1(&reqs, cbasn1.SEQUENCE) ||
		!pki.ReadASN1(&cms, cbasn1.SEQUENCE) || !pki.ReadASN1(&other, cbasn1.SEQUENCE) || !pki.Empty() {
		return errors.New("malformed PKIData")
	}
	for !ctrls.Empty() {
		var ta, set cryptobyte.String
		var c Control
		var ok bool
		if !ctrls.ReadASN1(&ta, cbasn1.SEQUENCE) {
			return errors.New("malformed TaggedAttribute")
		}
		if c.BodyPartID, ok = readSmallInt(&ta); !ok || !ta.ReadASN1ObjectIdentifier(&c.Type) ||
			!ta.ReadASN1(&set, cbasn1.SET) || !ta.Empty() {
			return errors.New("malformed TaggedAttribute")
		}
		if c.Values, _, ok = elements(set); !ok {
			return errors.New("malformed TaggedAttribute value")
		}
		p.Controls = append(p.Controls, c)
	}
	for !reqs.Empty() {
		var el cryptobyte.String
		var tag cbasn1.Tag
		if !reqs.ReadAnyASN1Element(&el, &tag) {
			return errors.New("malformed TaggedRequest")
		}
		tr := TaggedRequest{Raw: el}
		switch tag {
		case cbasn1.Tag(0).Constructed().ContextSpecific():
			var body, csr cryptobyte.String
			var ok bool
			if !el.ReadASN1(&body, tag) {
				return errors.New("malformed TaggedCertificationRequest")
			}
			if tr.BodyPartID, ok = readSmallInt(&body); !ok || !body.ReadASN1Element(&csr, cbasn1.SEQUENCE) || !body.Empty() {
				return errors.New("malformed TaggedCertificationRequest")
			}
			c, err := ParseCSR(csr)
			if err != nil {
				return err
			}
			tr.Raw, tr.CSR = csr, c
		case cbasn1.Tag(1).Constructed().ContextSpecific():
			tr.Kind = 1
		case cbasn1.Tag(2).Constructed().ContextSpecific():
			tr.Kind = 2
		default:
			return fmt.Errorf("unknown TaggedRequest tag %#x", uint8(tag))
		}
		p.Requests = append(p.Requests, tr)
	}
	els, _, ok := elements(cms)
	if !ok {
		return errors.New("malformed cmsSequence")
	}
	p.CMSSequenceLen += len(els)
	els, _, ok = elements(other)
	if !ok {
		return errors.New("malformed otherMsgSequence")
	}
	p.OtherMsgCount += len(els)
	return nil
}

// CertSigner is a verified SignerInfo made with a certificate's key.
type CertSigner struct {
	Info *SignerInfo
	Cert *x509.Certificate
}

// Verification is what Verify established about a request.
type Verification struct {
	CSR *CSR
	// Primary is the SignerInfo made by the PKCS#10 key (proof of
	// possession), identified by SubjectKeyIdentifier.
	Primary *SignerInfo
	// CertSigners are all verified signers identified by a certificate in
	// the message (the old certificate, enrollment agents).
	CertSigners []CertSigner
	// Renewal is true when the PKCS#10 has a renewal attribute; then
	// OldCert is that certificate and Old the SignerInfo its key made.
	Renewal bool
	OldCert *x509.Certificate
	Old     *SignerInfo
	// RegInfo holds the name=value pairs of id-cmc-regInfo controls.
	RegInfo map[string]string
}

// Verify performs the structural and cryptographic checks 1-6 of
// docs/reference/minidriver-semantics.md §4.2. It does not look at the CA (issuer, validity,
// revocation, template): that is policy, in CA.SubmitRenewal.
//
// Every SignerInfo must resolve (SKI of the PKCS#10 key, or a certificate
// in the message) and verify; signers are taken in a canonical order so
// that the error reported does not depend on their order in the SET.
func (p *ParsedRenewal) Verify() (*Verification, error) {
	sd := p.SignedData
	// Check 1: structure.
	if !sd.EContentType.Equal(OIDPKIData) {
		return nil, reqErr(winerr.ERROR_INVALID_DATA, 1, "eContentType %v is not id-cct-PKIData", sd.EContentType)
	}
	if !p.IsPKIData {
		return nil, reqErr(winerr.ERROR_INVALID_DATA, 1, "no eContent")
	}
	if sd.Version != 3 {
		return nil, reqErr(winerr.ERROR_INVALID_DATA, 1, "SignedData version %d, want 3 (RFC 5652 5.1)", sd.Version)
	}
	if len(p.Requests) != 1 {
		return nil, reqErr(winerr.ERROR_INVALID_DATA, 1, "PKIData has %d TaggedRequests, want exactly one", len(p.Requests))
	}
	if p.Requests[0].Kind != 0 {
		return nil, reqErr(winerr.ERROR_INVALID_DATA, 1, "the TaggedRequest is not a PKCS#10 (CHOICE %d)", p.Requests[0].Kind)
	}
	if p.CMSSequenceLen != 0 || p.OtherMsgCount != 0 {
		return nil, reqErr(winerr.ERROR_INVALID_DATA, 1, "PKIData has nested CMS or other messages")
	}
	reg, err := RegInfo(p.Controls)
	if err != nil {
		return nil, wrapErr(winerr.ERROR_INVALID_DATA, 1, err, "controls")
	}
	csr := p.CSR()
	v := &Verification{CSR: csr, RegInfo: reg}
	// Check 2: proof of possession of the new key.
	if err := csr.CheckSignature(); err != nil {
		return nil, wrapErr(winerr.NTE_BAD_SIGNATURE, 2, err, "PKCS#10 self-signature")
	}
	// Checks 4, 5, 6: every signer, by sid.
	keyIDs := [][]byte{csr.SubjectKeyID()}
	if e, ok := findExtension(csr.Extensions, oidSubjectKeyID); ok {
		var id []byte
		if rest, err := asn1.Unmarshal(e.Value, &id); err == nil && len(rest) == 0 {
			keyIDs = append(keyIDs, id)
		}
	}
	signers := slices.Clone(p.Signers)
	slices.SortStableFunc(signers, func(a, b *SignerInfo) int {
		if a.BySKI() != b.BySKI() {
			if a.BySKI() {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.Raw, b.Raw)
	})
	ect := sd.EContentType
	for _, si := range signers {
		if si.BySKI() && slices.ContainsFunc(keyIDs, func(id []byte) bool { return bytes.Equal(id, si.SubjectKeyID) }) {
			if err := si.verify(ect, sd.EContent, csr.PublicKey, 4); err != nil {
				return nil, err
			}
			if v.Primary == nil {
				v.Primary = si
			}
			continue
		}
		cert := p.certFor(si)
		if cert == nil {
			check := 5
			if si.BySKI() {
				check = 4
			}
			return nil, reqErr(winerr.CRYPT_E_SIGNER_NOT_FOUND, check, "signer %s is neither the PKCS#10 key nor a certificate in the message", si.SID())
		}
		if err := si.verify(ect, sd.EContent, cert.PublicKey, 5); err != nil {
			return nil, err
		}
		v.CertSigners = append(v.CertSigners, CertSigner{Info: si, Cert: cert})
	}
	if v.Primary == nil {
		return nil, reqErr(winerr.CRYPT_E_SIGNER_NOT_FOUND, 4, "no SignerInfo identified by the SubjectKeyIdentifier of the PKCS#10 key (primary signature)")
	}
	// Check 3 (and the binding half of 5): the renewal attribute.
	if !csr.HasRenewalAttribute() {
		return v, nil
	}
	v.Renewal = true
	if len(p.RenewalCertBytes) != 1 {
		return nil, reqErr(winerr.CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE, 3, "%d renewal certificate values, want one", len(p.RenewalCertBytes))
	}
	old, err := x509.ParseCertificate(p.RenewalCertBytes[0])
	if err != nil {
		return nil, wrapErr(winerr.CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE, 3, err, "renewal attribute is not a certificate")
	}
	for _, cs := range v.CertSigners {
		if bytes.Equal(cs.Cert.Raw, old.Raw) {
			v.OldCert, v.Old = cs.Cert, cs.Info
			return v, nil
		}
	}
	if len(v.CertSigners) == 0 {
		return nil, reqErr(winerr.CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE, 3, "renewal attribute present but no certificate-based signature (only the primary signer)")
	}
	return nil, reqErr(winerr.CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE, 3, "renewal attribute (serial %x) is not the certificate that signed the request", old.SerialNumber)
}

func (p *ParsedRenewal) certFor(si *SignerInfo) *x509.Certificate {
	for _, c := range p.Certificates {
		if si.Identifies(c) {
			return c
		}
	}
	return nil
}

// PublicKeyEqual reports whether two public keys are the same key.
func PublicKeyEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
