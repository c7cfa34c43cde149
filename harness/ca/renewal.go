package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"sort"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignerRole names the SignerInfos of a renewal, for fault knobs.
type SignerRole uint8

const (
	// PrimarySigner: version 3, sid = SKI of the new key, signed by the new key.
	PrimarySigner SignerRole = 1 << iota
	// OldSigner: version 1, sid = issuer+serial of the old certificate,
	// signed by the old key.
	OldSigner
	// AgentSigner: an enrollment agent's signature (enroll on behalf of).
	AgentSigner
)

// RenewalRequest describes a CMC renewal as CertEnroll builds it with
// IX509CertificateRequestCmc::InitializeFromCertificate(RenewalRequest=TRUE,
// InheritNewSimilarKey | InheritRenewalCertificateFlag | InheritSubjectFlag |
// InheritExtensionsFlag | InheritSubjectAltNameFlag) plus an explicit
// template extension [docs/reference/minidriver-semantics.md §3.2, §4.1].
//
// Both keys are crypto.Signers: on a card they are containers i and j.
// The zero value of every fault knob builds a well-formed request.
type RenewalRequest struct {
	OldCert *x509.Certificate
	OldKey  crypto.Signer // key of OldCert (card container i)
	NewKey  crypto.Signer // key to certify (card container j)
	// Template is added as an explicit template extension (v2 when OID is
	// set, else the v1 name). Zero: copy the old certificate's template
	// extension, as CertEnroll's InheritTemplateFlag does.
	Template TemplateID
	// Subject is the DER subject of the PKCS#10; nil inherits
	// OldCert.RawSubject (InheritSubjectFlag). Use []byte{0x30, 0} for an
	// empty subject.
	Subject []byte
	// ExtraExtensions are added to the extensionRequest, replacing
	// inherited extensions with the same OID.
	ExtraExtensions []pkix.Extension
	// Attributes are added to the PKCS#10 (e.g. 1.3.6.1.4.1.311.13.2.3 OS
	// version).
	Attributes []Attribute
	// Chain is added to the certificates field after the old certificate.
	Chain []*x509.Certificate
	// NoInheritExtensions skips InheritExtensionsFlag: only the template,
	// the SKI of the new key, the SAN and ExtraExtensions are requested.
	NoInheritExtensions bool
	// NoInheritSAN skips InheritSubjectAltNameFlag.
	NoInheritSAN bool
	// Hash for every signature and digest; 0 means SHA-256.
	Hash crypto.Hash
	// Rand is passed to the signers; nil means crypto/rand.
	Rand io.Reader

	// Enroll on behalf of (MS-WCCE EOBO): an enrollment agent's
	// certificate and key add a third SignerInfo, and OnBehalfOf
	// ("DOMAIN\user") goes into a RegInfo control as requestername.
	Agent      *x509.Certificate
	AgentKey   crypto.Signer
	OnBehalfOf string
	// RegInfo pairs go into an id-cmc-regInfo control, e.g.
	// {"CertificateTemplate": "SmartcardLogon"} as the founding document
	// sends the template (with OmitTemplate, the only template information).
	RegInfo map[string]string

	// Fault knobs (scenario S16).
	OmitRenewalAttribute bool                  // no 1.3.6.1.4.1.311.13.1 in the PKCS#10
	RenewalCertOverride  *x509.Certificate     // the attribute holds this certificate instead
	OmitTemplate         bool                  // no template extension at all (InheritExtensionsFlag only)
	OmitOldSigner        bool                  // only the primary signer (and an agent, if any)
	OmitPrimarySigner    bool                  // no SignerInfo for the new key
	OmitCertificates     bool                  // empty certificates field
	SignOldWith          crypto.Signer         // the old certificate is claimed, this key signs
	SignPrimaryWith      crypto.Signer         // the new key's SKI is claimed, this key signs
	PrimarySKI           []byte                // sid of the primary signer (default: SKI of NewKey)
	TwoRequests          bool                  // a second TaggedRequest in PKIData
	ZeroRequests         bool                  // no TaggedRequest in PKIData
	ContentType          asn1.ObjectIdentifier // ContentInfo contentType (default id-signedData)
	EContentType         asn1.ObjectIdentifier // eContentType (default id-cct-PKIData)
	CorruptCSRSignature  bool                  // flip a bit of the PKCS#10 signature
	CorruptDigest        SignerRole            // these signers get a wrong messageDigest
	CorruptSignature     SignerRole            // these signers get a wrong signature
	WrongContentTypeAttr SignerRole            // these signers' content-type attribute says id-data
	ReverseSigners       bool                  // emit the SignerInfos in reverse order
}

// Extensions CertEnroll does not copy with InheritExtensionsFlag (CA
// version, AIA, CDP, AKI, previous CA cert hash, both template extensions;
// IX509CertificateRequestPkcs10::InitializeFromCertificate docs). The SKI
// is replaced by the new key's; basic constraints and the AD CS SID
// extension are left to the CA [I].
var notInherited = []asn1.ObjectIdentifier{
	oidCAVersion, oidAuthorityInfo, oidCRLDistribution, oidAuthorityKeyID, oidPrevCACertHash,
	OIDCertTypeName, OIDCertificateTemplate, oidSubjectKeyID, oidBasicConstraints, oidNTDSCASecurity,
}

// RenewalExtensions returns the extensions BuildRenewal puts into the
// extensionRequest of r's PKCS#10.
func RenewalExtensions(r RenewalRequest) ([]pkix.Extension, error) {
	if r.OldCert == nil || r.NewKey == nil {
		return nil, errors.New("ca: RenewalRequest needs OldCert and NewKey")
	}
	var exts []pkix.Extension
	for _, e := range r.OldCert.Extensions {
		isSAN := e.Id.Equal(oidSubjectAltName)
		switch {
		case isSAN && r.NoInheritSAN:
		case isSAN:
			exts = append(exts, e)
		case r.NoInheritExtensions:
		case slices.ContainsFunc(notInherited, e.Id.Equal):
		default:
			exts = append(exts, e)
		}
	}
	if !r.OmitTemplate {
		if !r.Template.IsZero() {
			t, err := r.Template.Extension()
			if err != nil {
				return nil, err
			}
			exts = append(exts, t)
		} else {
			for _, e := range r.OldCert.Extensions {
				if e.Id.Equal(OIDCertificateTemplate) || e.Id.Equal(OIDCertTypeName) {
					exts = append(exts, e)
				}
			}
		}
	}
	ski, err := SubjectKeyID(r.NewKey.Public())
	if err != nil {
		return nil, err
	}
	skiVal, _ := asn1.Marshal(ski)
	exts = append(exts, pkix.Extension{Id: oidSubjectKeyID, Value: skiVal})
	for _, x := range r.ExtraExtensions {
		if i := slices.IndexFunc(exts, func(e pkix.Extension) bool { return e.Id.Equal(x.Id) }); i >= 0 {
			exts[i] = x
		} else {
			exts = append(exts, x)
		}
	}
	return exts, nil
}

// BuildRenewal builds the DER ContentInfo of a CMC renewal request
// (docs/reference/minidriver-semantics.md §4.1): SignedData v3 over id-cct-PKIData, one
// TaggedRequest (bodyPartID 1) holding a PKCS#10 signed by the new key
// with the renewal-certificate attribute and the extensionRequest, the old
// certificate in certificates, SignerInfo #1 (version 3, SKI of the new
// key, new key) then SignerInfo #2 (version 1, issuer+serial of the old
// certificate, old key), both with content-type and message-digest.
func BuildRenewal(r RenewalRequest) ([]byte, error) {
	if r.OldCert == nil || r.NewKey == nil {
		return nil, errors.New("ca: RenewalRequest needs OldCert and NewKey")
	}
	if r.OldKey == nil && r.SignOldWith == nil && !r.OmitOldSigner {
		return nil, errors.New("ca: RenewalRequest needs OldKey (or OmitOldSigner)")
	}
	if (r.Agent == nil) != (r.AgentKey == nil) {
		return nil, errors.New("ca: Agent and AgentKey go together")
	}
	ha, err := hashByCrypto(r.Hash)
	if err != nil {
		return nil, err
	}
	rnd := r.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	exts, err := RenewalExtensions(r)
	if err != nil {
		return nil, err
	}
	subject := r.Subject
	if subject == nil {
		subject = r.OldCert.RawSubject
	}
	attrs := slices.Clone(r.Attributes)
	if !r.OmitRenewalAttribute {
		rc := r.OldCert
		if r.RenewalCertOverride != nil {
			rc = r.RenewalCertOverride
		}
		attrs = append(attrs, Attribute{Type: OIDRenewalCertificate, Values: [][]byte{rc.Raw}})
	}
	p := csrParams{key: r.NewKey, subject: subject, exts: exts, attrs: attrs, hash: ha.hash, rand: rnd, badSig: r.CorruptCSRSignature}
	csr, err := buildCSR(p)
	if err != nil {
		return nil, err
	}
	var reqs [][]byte
	if !r.ZeroRequests {
		reqs = append(reqs, csr)
	}
	if r.TwoRequests {
		reqs = append(reqs, csr)
	}
	var controls []taggedAttribute
	pairs := maps.Clone(r.RegInfo)
	if r.OnBehalfOf != "" {
		if pairs == nil {
			pairs = map[string]string{}
		}
		pairs["requestername"] = r.OnBehalfOf
	}
	if len(pairs) > 0 {
		controls = append(controls, regInfoControl(pairs))
	}
	pkiData, err := buildPKIData(controls, reqs)
	if err != nil {
		return nil, err
	}

	wrongCT := OIDData
	var signers []cmsSigner
	if !r.OmitPrimarySigner {
		ski := r.PrimarySKI
		if ski == nil {
			if ski, err = SubjectKeyID(r.NewKey.Public()); err != nil {
				return nil, err
			}
		}
		s := cmsSigner{key: r.NewKey, ski: ski}
		if r.SignPrimaryWith != nil {
			s.key = r.SignPrimaryWith
		}
		signers = append(signers, applyFaults(s, r, PrimarySigner, wrongCT))
	}
	if !r.OmitOldSigner {
		s := cmsSigner{key: r.OldKey, cert: r.OldCert}
		if r.SignOldWith != nil {
			s.key = r.SignOldWith
		}
		signers = append(signers, applyFaults(s, r, OldSigner, wrongCT))
	}
	if r.Agent != nil {
		signers = append(signers, applyFaults(cmsSigner{key: r.AgentKey, cert: r.Agent}, r, AgentSigner, wrongCT))
	}
	if r.ReverseSigners {
		slices.Reverse(signers)
	}
	var certs [][]byte
	if !r.OmitCertificates {
		certs = append(certs, r.OldCert.Raw)
		for _, c := range r.Chain {
			certs = append(certs, c.Raw)
		}
		if r.Agent != nil {
			certs = append(certs, r.Agent.Raw)
		}
	}
	ect := r.EContentType
	if ect == nil {
		ect = OIDPKIData
	}
	return buildSignedData(signedDataParams{
		contentType:  r.ContentType,
		eContentType: ect,
		eContent:     pkiData,
		certs:        certs,
		signers:      signers,
		hash:         ha,
		rand:         rnd,
	})
}

func applyFaults(s cmsSigner, r RenewalRequest, role SignerRole, wrongCT asn1.ObjectIdentifier) cmsSigner {
	s.badDigest = r.CorruptDigest&role != 0
	s.badSig = r.CorruptSignature&role != 0
	if r.WrongContentTypeAttr&role != 0 {
		s.ct = wrongCT
	}
	return s
}

// taggedAttribute is a CMC control: TaggedAttribute ::= SEQUENCE {
// bodyPartID INTEGER, attrType OID, attrValues SET OF AttributeValue }.
type taggedAttribute struct {
	Type   asn1.ObjectIdentifier
	Values [][]byte
}

// Control is a parsed CMC control (TaggedAttribute).
type Control struct {
	BodyPartID int
	Type       asn1.ObjectIdentifier
	Values     [][]byte // DER of each value
}

// regInfoControl encodes name=value pairs as an id-cmc-regInfo OCTET
// STRING, URL-encoded and joined with '&' (the encoding of the pairs is
// inferred [I]).
func regInfoControl(pairs map[string]string) taggedAttribute {
	keys := make([]string, 0, len(pairs))
	for k := range pairs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	q := ""
	for i, k := range keys {
		if i > 0 {
			q += "&"
		}
		q += url.QueryEscape(k) + "=" + url.QueryEscape(pairs[k])
	}
	v, _ := asn1.Marshal([]byte(q))
	return taggedAttribute{Type: OIDRegInfo, Values: [][]byte{v}}
}

// RegInfo decodes the name=value pairs of id-cmc-regInfo controls (later
// controls override earlier ones).
func RegInfo(controls []Control) (map[string]string, error) {
	out := map[string]string{}
	for _, c := range controls {
		if !c.Type.Equal(OIDRegInfo) {
			continue
		}
		for _, v := range c.Values {
			var raw []byte
			if rest, err := asn1.Unmarshal(v, &raw); err != nil || len(rest) != 0 {
				return nil, errors.New("ca: regInfo value is not an OCTET STRING")
			}
			q, err := url.ParseQuery(string(raw))
			if err != nil {
				return nil, fmt.Errorf("ca: regInfo: %w", err)
			}
			for k, vs := range q {
				out[k] = vs[len(vs)-1]
			}
		}
	}
	return out, nil
}

// buildPKIData encodes PKIData (RFC 5272, implicit tags): controls with
// bodyPartIDs from 2, requests as [0] TaggedCertificationRequest with
// bodyPartIDs from 1, empty cmsSequence and otherMsgSequence.
func buildPKIData(controls []taggedAttribute, reqs [][]byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for i, c := range controls {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1Int64(int64(len(reqs) + 1 + i))
					b.AddASN1ObjectIdentifier(c.Type)
					b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
						for _, v := range sortedDER(c.Values) {
							b.AddBytes(v)
						}
					})
				})
			}
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			for i, r := range reqs {
				b.AddASN1(tagExplicit0, func(b *cryptobyte.Builder) { // tcr [0] IMPLICIT
					b.AddASN1Int64(int64(i + 1))
					b.AddBytes(r)
				})
			}
		})
		b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
		b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
	})
	return b.Bytes()
}
