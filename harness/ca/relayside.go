package ca

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/cardharness/cardharness/winerr"
)

// What the renewal relay (harness/relay) needs from the CA besides
// submission: who a client certificate names, a TLS server certificate,
// and the CMC Full PKI Response of RFC 5272 for EST's /fullcmc.

// CertIdentities returns the UPNs and rfc822Names of cert's SAN (none if
// it has no SAN or a malformed one).
func CertIdentities(cert *x509.Certificate) (upns, emails []string) {
	san, ok := findExtension(cert.Extensions, oidSubjectAltName)
	if !ok {
		return nil, nil
	}
	upns, emails, ok = sanIdentities(san.Value)
	if !ok {
		return nil, nil
	}
	return upns, emails
}

// IssueServerCertificate issues a TLS server certificate for pub outside
// any template, the way a CA's own web-enrollment server is provisioned
// (an administrator's act, not a request the policy module sees).
func (c *CA) IssueServerCertificate(pub crypto.PublicKey, cn string, dnsNames []string, ips []net.IP, validity time.Duration) (*x509.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	serial, err := c.serial()
	if err != nil {
		return nil, err
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	now := c.opts.Clock().Truncate(time.Second)
	notBefore := now
	if wall := time.Now(); wall.Before(notBefore) {
		// Valid for clients on the wall clock (curl, openssl) as well as
		// for host-model clients on the virtual clock.
		notBefore = wall
	}
	notAfter := now.Add(validity)
	if validity == 0 || notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore.Add(-time.Hour), NotAfter: notAfter, SubjectKeyId: ski,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dnsNames, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(c.opts.Rand, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, fmt.Errorf("ca: server certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c.issued[serial.Text(16)] = cert
	return cert, nil
}

// IssuedCount is how many certificates the CA has issued to end
// entities and servers (not counting its own): a scenario asks it to see
// a certificate issued but never received.
func (c *CA) IssuedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.issued)
}

// Injected is a decision a test imposes on one submission, after every
// check passed (SubmitOptions.Inject): what a certificate manager or an
// administrator's policy setting would decide.
type Injected struct {
	// Pend: the request is pended as if its template had PendAllRequests.
	Pend bool
	// ApproveAfter: with Pend, a manager approves this long after
	// submission (as Template.ApprovalDelay).
	ApproveAfter time.Duration
	// Deny: the request is denied with this code (0: not denied).
	Deny winerr.Code
	// FailDelegatedCert: Options.FailDelegatedCertRequests for this
	// request only.
	FailDelegatedCert bool
}

// CMC status values (RFC 5272 §6.1.1 CMCStatus).
const (
	CMCSuccess = 0
	CMCFailed  = 2
	CMCPending = 3
)

// CMC failure information (RFC 5272 §6.1.4 CMCFailInfo), the ones used here.
const (
	CMCFailBadRequest      = 2
	CMCFailBadIdentity     = 7
	CMCFailInternalCAError = 11
)

var (
	// OIDPKIResponse is id-cct-PKIResponse (RFC 5272 §3.2.1).
	OIDPKIResponse = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 12, 3}
	// OIDStatusInfoV2 is id-cmc-statusInfoV2 (RFC 5272 §6.1.1).
	OIDStatusInfoV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 7, 25}
)

// CMCResponse is a parsed Full PKI Response.
type CMCResponse struct {
	Status       int    // CMCStatus
	FailInfo     int    // CMCFailInfo when Status is CMCFailed, else -1
	StatusString string // statusString (the CA's explanation)
	PendToken    []byte // pendInfo token when Status is CMCPending
	Certificates []*x509.Certificate
}

// EncodeCMCResponse builds the Full PKI Response (RFC 5272 §3.2.1, §4.2)
// for resp: a SignedData over id-cct-PKIResponse signed by the CA, with
// one CMCStatusInfoV2 control for body part 1 (the request's PKCS#10)
// and, when issued, the certificate and the CA certificate.
func (c *CA) EncodeCMCResponse(resp *Response) ([]byte, error) {
	status, fail := CMCSuccess, -1
	var pend []byte
	switch resp.Disposition {
	case Issued, IssuedOutOfBand:
	case Pending:
		status = CMCPending
		pend = big.NewInt(int64(resp.RequestID)).Bytes()
	case Error, Incomplete:
		status, fail = CMCFailed, CMCFailInternalCAError
	default:
		status, fail = CMCFailed, CMCFailBadRequest
	}
	text := resp.Disposition.CRName()
	if resp.Status != nil {
		text += ": " + resp.Status.Error()
	}
	var si cryptobyte.Builder
	si.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(int64(status))
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1Int64(1) })
		b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(text)) })
		switch {
		case fail >= 0:
			b.AddASN1Int64(int64(fail))
		case pend != nil:
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1OctetString(pend)
				b.AddASN1GeneralizedTime(c.opts.Clock().UTC().Truncate(time.Second))
			})
		}
	})
	siDER, err := si.Bytes()
	if err != nil {
		return nil, err
	}
	var pr cryptobyte.Builder
	pr.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(2) // bodyPartID of the control; 1 is the request
				b.AddASN1ObjectIdentifier(OIDStatusInfoV2)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(siDER) })
			})
		})
		b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
		b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
	})
	content, err := pr.Bytes()
	if err != nil {
		return nil, err
	}
	certs := [][]byte{c.cert.Raw}
	if resp.Cert != nil && resp.Disposition.HasCertificate() {
		certs = append(certs, resp.Cert.Raw)
	}
	ha, err := hashByCrypto(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return buildSignedData(signedDataParams{
		eContentType: OIDPKIResponse, eContent: content, certs: certs,
		signers: []cmsSigner{{key: c.key, pub: c.key.Public(), cert: c.cert}},
		hash:    ha, rand: c.opts.Rand,
	})
}

// ParseCMCResponse decodes a Full PKI Response and verifies its signature
// with the certificate of issuer (the CA).
func ParseCMCResponse(der []byte, issuer *x509.Certificate) (*CMCResponse, error) {
	ct, inner, err := parseContentInfo(der)
	if err != nil {
		return nil, err
	}
	if !ct.Equal(OIDSignedData) {
		return nil, errors.New("ca: CMC response is not a SignedData")
	}
	sd, err := parseSignedData(inner)
	if err != nil {
		return nil, err
	}
	if !sd.EContentType.Equal(OIDPKIResponse) {
		return nil, fmt.Errorf("ca: CMC response content type %v, want id-cct-PKIResponse", sd.EContentType)
	}
	signed := false
	for _, s := range sd.SignerInfos {
		if s.Identifies(issuer) {
			if rerr := s.verify(OIDPKIResponse, sd.EContent, issuer.PublicKey, 0); rerr != nil {
				return nil, rerr
			}
			signed = true
		}
	}
	if !signed {
		return nil, errors.New("ca: CMC response is not signed by the CA")
	}
	out := &CMCResponse{FailInfo: -1}
	for _, raw := range sd.Certificates {
		cert, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, err
		}
		if !cert.Equal(issuer) {
			out.Certificates = append(out.Certificates, cert)
		}
	}
	s := cryptobyte.String(sd.EContent)
	var resp, controls cryptobyte.String
	if !s.ReadASN1(&resp, cbasn1.SEQUENCE) || !resp.ReadASN1(&controls, cbasn1.SEQUENCE) {
		return nil, errors.New("ca: malformed PKIResponse")
	}
	found := false
	for !controls.Empty() {
		var ta, values cryptobyte.String
		var id int64
		var oid asn1.ObjectIdentifier
		if !controls.ReadASN1(&ta, cbasn1.SEQUENCE) || !ta.ReadASN1Integer(&id) || !ta.ReadASN1ObjectIdentifier(&oid) || !ta.ReadASN1(&values, cbasn1.SET) {
			return nil, errors.New("ca: malformed TaggedAttribute in PKIResponse")
		}
		if !oid.Equal(OIDStatusInfoV2) {
			continue
		}
		var si, body cryptobyte.String
		var st int64
		if !values.ReadASN1(&si, cbasn1.SEQUENCE) || !si.ReadASN1Integer(&st) || !si.ReadASN1(&body, cbasn1.SEQUENCE) {
			return nil, errors.New("ca: malformed CMCStatusInfoV2")
		}
		out.Status, found = int(st), true
		if si.PeekASN1Tag(cbasn1.UTF8String) {
			var str cryptobyte.String
			si.ReadASN1(&str, cbasn1.UTF8String)
			out.StatusString = string(str)
		}
		switch {
		case si.PeekASN1Tag(cbasn1.INTEGER):
			var fi int64
			si.ReadASN1Integer(&fi)
			out.FailInfo = int(fi)
		case si.PeekASN1Tag(cbasn1.SEQUENCE):
			var pi cryptobyte.String
			var tok []byte
			if !si.ReadASN1(&pi, cbasn1.SEQUENCE) || !pi.ReadASN1Bytes(&tok, cbasn1.OCTET_STRING) {
				return nil, errors.New("ca: malformed PendInfo")
			}
			out.PendToken = tok
		}
	}
	if !found {
		return nil, errors.New("ca: PKIResponse without CMCStatusInfoV2")
	}
	return out, nil
}
