package winhost

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/cardharness/cardharness/minidriver/fs"
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
	// NoCardCopy leaves the card alone: only REQUEST gets the dummy (the
	// model before ledger row H-PROP-REQUEST; a software-key request).
	NoCardCopy bool
}

// oidEnrollmentProperty is the extension the model's request dummy carries
// the enrollment property in. CertEnroll's dummy carries the request's
// properties as extensions, but which extension holds the CA and request
// id is not public, so the model uses an OID of its own under the
// documentation arc 2.999 (ITU-T X.660 "example") rather than guess at
// Microsoft's.
var oidEnrollmentProperty = asn1.ObjectIdentifier{2, 999, 11, 1}

type enrollmentASN1 struct {
	RequestID    int
	CAName       string `asn1:"utf8"`
	FriendlyName string `asn1:"utf8"`
}

func enrollmentExtension(e EnrollmentProperty) (pkix.Extension, error) {
	b, err := asn1.Marshal(enrollmentASN1(e))
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidEnrollmentProperty, Value: b}, nil
}

// enrollmentOf reads the enrollment property a request dummy carries.
func enrollmentOf(c *x509.Certificate) (EnrollmentProperty, bool) {
	for _, x := range c.Extensions {
		if !x.Id.Equal(oidEnrollmentProperty) {
			continue
		}
		var v enrollmentASN1
		if rest, err := asn1.Unmarshal(x.Value, &v); err != nil || len(rest) > 0 {
			return EnrollmentProperty{}, false
		}
		return EnrollmentProperty(v), true
	}
	return EnrollmentProperty{}, false
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
	e := opts.Enrollment
	ext, err := enrollmentExtension(e)
	if err != nil {
		return StoreCert{}, fmt.Errorf("%s: %w", op, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    new(big.Int).SetUint64(p.h.rng.Uint64() >> 1),
		Subject:         opts.Subject,
		NotBefore:       now.Add(-time.Minute),
		NotAfter:        now.Add(opts.Validity),
		ExtraExtensions: []pkix.Extension{ext},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.pub, &keySigner{ctx: ctx, k: k, locked: true})
	if err != nil {
		return StoreCert{}, fmt.Errorf("%s: self-sign the dummy: %w", op, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return StoreCert{}, fmt.Errorf("%s: %w", op, err)
	}
	sc := StoreCert{Cert: cert, ProvInfo: &KeyProvInfo{Provider: k.api.Provider(), Container: k.guid, KeySpec: k.spec}, Enrollment: &e, Source: "CreateRequest"}
	if !opts.NoCardCopy {
		// The dummy goes into the new container's certificate file too
		// (ledger row H-PROP-REQUEST): that is how a host that never saw
		// the request, or this one after its REQUEST store is gone, can
		// still find the outstanding request by propagating the card.
		_, err := p.withContainer(ctx, op, k.guid, func(t *txn, idx int, m fs.ContainerMap) error {
			if err := t.authenticate(p.opts.API, p.opts.Silent); err != nil {
				return err
			}
			if err := t.writeCertificate(idx, k.spec, cert.Raw); err != nil {
				return newErr(op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
			}
			p.event(Event{Kind: EvCardWrite, Reader: t.reader, Item: op, Detail: fmt.Sprintf("request dummy into %s for container %d %q", certPath(t.knobs(), idx, k.spec), idx, k.guid)})
			return t.refresh([]item{certItem(t.knobs(), idx, k.spec)}, nil)
		})
		if err != nil {
			return StoreCert{}, err
		}
	}
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
