package relay

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cardharness/cardharness/harness/ca"
)

// SmartcardLogonTemplate is the template of a CA made by OpenCA: a v2
// smart-card logon template that renews on a valid existing certificate,
// with the smart-card-logon and client-authentication EKUs.
var SmartcardLogonTemplate = ca.TemplateID{
	OID:   asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 8, 4711, 1, 2, 3, 4, 5, 101},
	Major: 100, Minor: 3, Name: "CardharnessSmartcardLogon",
}

// DefaultTemplates are the templates of a CA made by OpenCA.
func DefaultTemplates() []ca.Template {
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}, {1, 3, 6, 1, 5, 5, 7, 3, 2}})
	return []ca.Template{{
		ID: SmartcardLogonTemplate, ValidExistingCertificate: true, Validity: 365 * 24 * time.Hour,
		Extensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: eku}},
	}}
}

// OpenCA makes the CA of `cardharness relay --dir DIR`: the key from
// DIR/ca-key.pem (created on first use, PKCS#8, mode 0600) and a fresh CA
// certificate written to DIR/ca.pem (same key and name, so certificates
// issued in an earlier run still verify). clock nil is the wall clock.
func OpenCA(dir string, clock func() time.Time) (*ca.CA, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	keyPath := filepath.Join(dir, "ca-key.pem")
	key, err := readKey(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			err = writeKey(keyPath, key)
		}
	}
	if err != nil {
		return nil, "", err
	}
	c, err := ca.New(ca.Options{Name: "cardharness relay CA", Key: key, Clock: clock, Templates: DefaultTemplates()})
	if err != nil {
		return nil, "", err
	}
	certPath := filepath.Join(dir, "ca.pem")
	if err := writePEM(certPath, "CERTIFICATE", c.Certificate().Raw, 0o644); err != nil {
		return nil, "", err
	}
	return c, certPath, nil
}

// IssueCredential enrolls user (a UPN) for SmartcardLogonTemplate with a
// fresh software key and writes DIR/NAME-cert.pem and DIR/NAME-key.pem:
// a client credential to try the relay with curl.
func IssueCredential(c *ca.CA, dir, name, user string) (certPath, keyPath string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", err
	}
	te, err := SmartcardLogonTemplate.Extension()
	if err != nil {
		return "", "", err
	}
	csr, err := ca.BuildCSR(key, pkix.Name{CommonName: user}, []pkix.Extension{te})
	if err != nil {
		return "", "", err
	}
	resp, err := c.IssueFromCSR(csr, ca.TemplateID{}, user)
	if err != nil {
		return "", "", err
	}
	if resp.Disposition != ca.Issued {
		return "", "", fmt.Errorf("relay: enrolling %s: %s: %v", user, resp.Disposition.CRName(), resp.Status)
	}
	certPath, keyPath = filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	if err := writePEM(certPath, "CERTIFICATE", resp.Cert.Raw, 0o644); err != nil {
		return "", "", err
	}
	return certPath, keyPath, writeKey(keyPath, key)
}

func readKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("relay: %s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("relay: %s: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("relay: %s: not an RSA key", path)
	}
	return rk, nil
}

func writeKey(path string, key *rsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}
