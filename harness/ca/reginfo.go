package ca

import (
	"encoding/asn1"
	"fmt"
	"strconv"
	"strings"
)

// RegInfoCertificateTemplate is the RegInfo name (and AD CS request
// attribute name) that names the template: "CertificateTemplate=User" or
// a template OID in dotted form.
const RegInfoCertificateTemplate = "CertificateTemplate"

// regInfoValue looks name up case-insensitively: AD CS request attribute
// names are not case-sensitive [I].
func regInfoValue(reg map[string]string, name string) (string, bool) {
	if v, ok := reg[name]; ok {
		return v, true
	}
	for k, v := range reg {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// ParseTemplateName reads a template named the way request attributes
// name it: a dotted OID (a v2 template, any version) or a template name.
func ParseTemplateName(s string) (TemplateID, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return TemplateID{}, fmt.Errorf("ca: empty template name")
	}
	if s[0] < '0' || s[0] > '9' {
		return TemplateID{Name: s}, nil
	}
	var oid asn1.ObjectIdentifier
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return TemplateID{}, fmt.Errorf("ca: template %q is neither a name nor a dotted OID", s)
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return TemplateID{}, fmt.Errorf("ca: template OID %q has fewer than two arcs", s)
	}
	return TemplateID{OID: oid}, nil
}
