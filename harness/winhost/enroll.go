package winhost

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/cardharness/cardharness/winerr"
)

// The CertEnroll side of enrollment on the host (docs/reference/minidriver-semantics.md
// §3.1 step 5 and day N step 3, §3.2 rollback; ICertPropertyEnrollment,
// IX509Enrollment::InstallResponse): a dummy self-signed certificate in
// REQUEST stands for the outstanding request and carries the key's
// provider info and the enrollment property; InstallResponse consumes it.

// RequestOptions describe the dummy CreateRequest puts in REQUEST.
type RequestOptions struct {
	// Subject of the dummy (CertEnroll uses the request's subject).
	Subject pkix.Name
	// Enrollment is the CERT_ENROLLMENT_PROP_ID value (request id, CA).
	Enrollment EnrollmentProperty
	// Validity of the dummy; 0: one year.
	Validity time.Duration
}

// CreateRequest records an outstanding request for the key in container
// containerGUID: a self-signed dummy certificate, signed on the card by
// that key (a PIN through the process's cache), with CERT_KEY_PROV_INFO
// for the container and the enrollment property, is added to the user's
// REQUEST store. The dummy is returned.
func (p *Process) CreateRequest(ctx context.Context, containerGUID string, opts RequestOptions) (StoreCert, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	const op = "IX509Enrollment::CreateRequest"
	if p.exited {
		return StoreCert{}, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	if p.h.user == nil {
		return StoreCert{}, fmt.Errorf("%s: %w", op, ErrNotSignedIn)
	}
	k, err := p.openKey(ctx, containerGUID)
	if err != nil {
		return StoreCert{}, err
	}
	if opts.Validity == 0 {
		opts.Validity = 365 * 24 * time.Hour
	}
	now := p.h.now()
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetUint64(p.h.rng.Uint64() >> 1),
		Subject:      opts.Subject,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(opts.Validity),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.pub, &keySigner{ctx: ctx, k: k, locked: true})
	if err != nil {
		return StoreCert{}, fmt.Errorf("%s: self-sign the dummy: %w", op, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return StoreCert{}, fmt.Errorf("%s: %w", op, err)
	}
	e := opts.Enrollment
	sc := StoreCert{Cert: cert, ProvInfo: &KeyProvInfo{Provider: k.api.Provider(), Container: k.guid, KeySpec: k.spec}, Enrollment: &e, Source: "CreateRequest"}
	p.h.user.request.add(sc, AddReplaceExisting)
	return sc.clone(), nil
}

// InstallResponseOptions refine InstallResponse.
type InstallResponseOptions struct {
	// AllowNoOutstandingRequest installs without a dummy in REQUEST: the
	// container is the one holding the certificate's key, the provider
	// the process's.
	AllowNoOutstandingRequest bool
	// Silent: no PIN prompt.
	Silent bool
}

// InstallResponse is IX509Enrollment::InstallResponse: it finds the dummy
// in REQUEST whose public key is the issued certificate's, writes the
// certificate to that container on the card (correct bumps, key checked),
// adds it to My with the dummy's CERT_KEY_PROV_INFO (the enrollment
// property is not carried over [I]), and deletes the dummy. No dummy:
// CRYPT_E_NOT_FOUND [I for the code], unless AllowNoOutstandingRequest.
func (p *Process) InstallResponse(ctx context.Context, cert *x509.Certificate, opts InstallResponseOptions) (StoreCert, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	const op = "IX509Enrollment::InstallResponse"
	if p.exited {
		return StoreCert{}, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	u := p.h.user
	if u == nil {
		return StoreCert{}, fmt.Errorf("%s: %w", op, ErrNotSignedIn)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return StoreCert{}, newErr(op, winerr.NTE_BAD_PUBLIC_KEY, errors.New("not an RSA certificate"))
	}
	var dummy *StoreCert
	for _, c := range u.request.byPublicKey(pub) {
		if c.Enrollment != nil && c.ProvInfo != nil {
			dummy = &c
			break
		}
	}
	if dummy == nil {
		if !opts.AllowNoOutstandingRequest {
			return StoreCert{}, newErr(op, winerr.CRYPT_E_NOT_FOUND, errors.New("no outstanding request (dummy certificate) in REQUEST for this key"))
		}
		return p.installCertificate(ctx, cert, InstallOptions{Silent: opts.Silent}, "InstallResponse", nil)
	}
	props := StoreCert{ProvInfo: dummy.ProvInfo}
	sc, err := p.installCertificate(ctx, cert, InstallOptions{ContainerGUID: dummy.ProvInfo.Container, Silent: opts.Silent}, "InstallResponse", &props)
	if err != nil {
		return StoreCert{}, err
	}
	u.request.delete(dummy.Thumbprint())
	return sc, nil
}

// AbortRequest rolls an outstanding request back as CertEnroll does when
// the CA denies it (§3.2 "Abort/rollback", T12's correct variant): the
// container is deleted from the card (if a card holds it; a second run
// finds nothing and succeeds) and the dummy is removed from REQUEST.
func (p *Process) AbortRequest(ctx context.Context, dummy StoreCert) error {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	const op = "IX509Enrollment rollback"
	if p.exited {
		return fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	if dummy.ProvInfo != nil {
		if err := p.deleteContainer(ctx, dummy.ProvInfo.Container, DeleteOptions{}, true); err != nil {
			return err
		}
	}
	if u := p.h.user; u != nil && dummy.Cert != nil {
		u.request.delete(dummy.Thumbprint())
	}
	return nil
}
