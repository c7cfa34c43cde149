package ca

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TemplateID names a certificate template the way certificates and
// requests carry it (MS-WCCE 2.2.2.7.7.2, IX509ExtensionTemplate):
//
//   - v2 and later templates: extension 1.3.6.1.4.1.311.21.7,
//     CertificateTemplate ::= SEQUENCE { templateID OID, templateMajorVersion
//     INTEGER, templateMinorVersion INTEGER OPTIONAL } — set OID (and versions);
//   - v1 templates: extension 1.3.6.1.4.1.311.20.2, a BMPString with the
//     template name (e.g. "User", "SmartcardLogon") — set Name only.
//
// A CA-side Template may set both (a v2 template also has a name); it then
// matches requests naming it either way.
type TemplateID struct {
	OID   asn1.ObjectIdentifier
	Major int
	Minor int
	Name  string
}

// IsZero reports whether t names no template.
func (t TemplateID) IsZero() bool { return len(t.OID) == 0 && t.Name == "" }

func (t TemplateID) String() string {
	switch {
	case len(t.OID) > 0 && t.Name != "":
		return fmt.Sprintf("%s (%s v%d.%d)", t.Name, t.OID, t.Major, t.Minor)
	case len(t.OID) > 0:
		return fmt.Sprintf("%s v%d.%d", t.OID, t.Major, t.Minor)
	case t.Name != "":
		return t.Name
	}
	return "(no template)"
}

// Matches reports whether a template named other (taken from a request or
// certificate) is t: by OID when both have one, else by name
// (case-insensitive, as the SDK policy module compares names).
func (t TemplateID) Matches(other TemplateID) bool {
	if len(t.OID) > 0 && len(other.OID) > 0 {
		return t.OID.Equal(other.OID)
	}
	if t.Name != "" && other.Name != "" {
		return strings.EqualFold(t.Name, other.Name)
	}
	return false
}

// Extension encodes t as the v2 template extension when it has an OID,
// else as the v1 template-name extension. Neither is critical.
func (t TemplateID) Extension() (pkix.Extension, error) {
	var b cryptobyte.Builder
	switch {
	case len(t.OID) > 0:
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(t.OID)
			b.AddASN1Int64(int64(t.Major))
			b.AddASN1Int64(int64(t.Minor))
		})
		v, err := b.Bytes()
		return pkix.Extension{Id: OIDCertificateTemplate, Value: v}, err
	case t.Name != "":
		addBMPString(&b, t.Name)
		v, err := b.Bytes()
		return pkix.Extension{Id: OIDCertTypeName, Value: v}, err
	}
	return pkix.Extension{}, errors.New("ca: empty TemplateID")
}

// ParseTemplateExtension decodes either template extension.
func ParseTemplateExtension(ext pkix.Extension) (TemplateID, error) {
	s := cryptobyte.String(ext.Value)
	switch {
	case ext.Id.Equal(OIDCertificateTemplate):
		var seq cryptobyte.String
		var t TemplateID
		var ok bool
		if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() || !seq.ReadASN1ObjectIdentifier(&t.OID) {
			return TemplateID{}, errors.New("ca: malformed certificate template extension")
		}
		if t.Major, ok = readSmallInt(&seq); !ok {
			return TemplateID{}, errors.New("ca: malformed template major version")
		}
		if !seq.Empty() {
			if t.Minor, ok = readSmallInt(&seq); !ok || !seq.Empty() {
				return TemplateID{}, errors.New("ca: malformed template minor version")
			}
		}
		return t, nil
	case ext.Id.Equal(OIDCertTypeName):
		name, err := readNameString(&s)
		if err != nil || !s.Empty() {
			return TemplateID{}, errors.New("ca: malformed certificate template name extension")
		}
		return TemplateID{Name: name}, nil
	}
	return TemplateID{}, fmt.Errorf("ca: %v is not a template extension", ext.Id)
}

// templateFromExtensions returns the template named by exts (v2 preferred).
func templateFromExtensions(exts []pkix.Extension) (TemplateID, bool, error) {
	var v1 *pkix.Extension
	for i := range exts {
		if exts[i].Id.Equal(OIDCertificateTemplate) {
			t, err := ParseTemplateExtension(exts[i])
			return t, err == nil, err
		}
		if exts[i].Id.Equal(OIDCertTypeName) {
			v1 = &exts[i]
		}
	}
	if v1 != nil {
		t, err := ParseTemplateExtension(*v1)
		return t, err == nil, err
	}
	return TemplateID{}, false, nil
}

// TemplateOf returns the template a certificate was issued from, if it
// carries one of the template extensions.
func TemplateOf(cert *x509.Certificate) (TemplateID, bool) {
	t, ok, _ := templateFromExtensions(cert.Extensions)
	return t, ok
}

func addBMPString(b *cryptobyte.Builder, s string) {
	b.AddASN1(cbasn1.Tag(30), func(b *cryptobyte.Builder) { // BMPString
		for _, u := range utf16.Encode([]rune(s)) {
			b.AddUint16(u)
		}
	})
}

// readNameString reads a BMPString (what Windows writes) or a UTF8String.
func readNameString(s *cryptobyte.String) (string, error) {
	var v cryptobyte.String
	switch {
	case s.PeekASN1Tag(cbasn1.Tag(30)):
		if !s.ReadASN1(&v, cbasn1.Tag(30)) || len(v)%2 != 0 {
			return "", errors.New("bad BMPString")
		}
		u := make([]uint16, 0, len(v)/2)
		for !v.Empty() {
			var c uint16
			v.ReadUint16(&c)
			u = append(u, c)
		}
		return string(utf16.Decode(u)), nil
	case s.PeekASN1Tag(cbasn1.UTF8String):
		if !s.ReadASN1(&v, cbasn1.UTF8String) {
			return "", errors.New("bad UTF8String")
		}
		return string(v), nil
	}
	return "", errors.New("not a BMPString or UTF8String")
}

// SANExtension builds a subjectAltName with a UPN otherName
// (1.3.6.1.4.1.311.20.2.3, UTF8String, as AD CS writes it for smart-card
// logon) and rfc822Names. Either part may be empty, not both.
func SANExtension(upn string, emails ...string) (pkix.Extension, error) {
	if upn == "" && len(emails) == 0 {
		return pkix.Extension{}, errors.New("ca: empty SAN")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if upn != "" {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(OIDUserPrincipalName)
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(upn)) })
				})
			})
		}
		for _, e := range emails {
			b.AddASN1(cbasn1.Tag(1).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(e)) })
		}
	})
	v, err := b.Bytes()
	return pkix.Extension{Id: oidSubjectAltName, Value: v}, err
}

// sanIdentities extracts the UPN otherNames and rfc822Names of a SAN
// extension value. Other name forms are skipped. ok is false when the
// value is not a GeneralNames.
func sanIdentities(value []byte) (upns, emails []string, ok bool) {
	s := cryptobyte.String(value)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return nil, nil, false
	}
	for !seq.Empty() {
		var gn cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&gn, &tag) {
			return nil, nil, false
		}
		switch tag {
		case cbasn1.Tag(0).Constructed().ContextSpecific(): // otherName
			var oid asn1.ObjectIdentifier
			var val cryptobyte.String
			if !gn.ReadASN1ObjectIdentifier(&oid) || !gn.ReadASN1(&val, cbasn1.Tag(0).Constructed().ContextSpecific()) {
				return nil, nil, false
			}
			if !oid.Equal(OIDUserPrincipalName) {
				continue
			}
			var str cryptobyte.String
			// The SDK policy module only accepts a UTF8String UPN.
			if !val.ReadASN1(&str, cbasn1.UTF8String) {
				upns = append(upns, "\x00non-UTF8String UPN")
				continue
			}
			upns = append(upns, string(str))
		case cbasn1.Tag(1).ContextSpecific(): // rfc822Name
			emails = append(emails, string(gn))
		}
	}
	return upns, emails, true
}

func findExtension(exts []pkix.Extension, oid asn1.ObjectIdentifier) (pkix.Extension, bool) {
	for _, e := range exts {
		if e.Id.Equal(oid) {
			return e, true
		}
	}
	return pkix.Extension{}, false
}
