package winhost

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/cardharness/cardharness/winerr"
)

// Read-only CSP operations: what applications see of a card, always
// through the read path of §2.2 (and so through G on GLOBAL_CACHE cards).

// CardCertificate is a certificate as the CSP returns it from a card
// (PP_USER_CERTSTORE): with the provider info of its container.
type CardCertificate struct {
	Cert     *x509.Certificate
	ProvInfo KeyProvInfo
	Index    int  // container index
	Default  bool // the container is the default one
}

// certificates reads the certificate of every valid container (kxcNN for
// AT_KEYEXCHANGE, kscNN for AT_SIGNATURE). Containers without a
// certificate file are skipped; undecodable certificates too, reported in
// the second result.
func (t *txn) certificates(provider string) ([]CardCertificate, []error) {
	m, err := t.cmap()
	if err != nil {
		return nil, []error{err}
	}
	var out []CardCertificate
	var errs []error
	for i := range m {
		spec, _, ok := m[i].Key()
		if !ok {
			continue
		}
		der, ok, err := t.certificate(i, spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: container %d: %w", t.op, i, err))
			continue
		}
		out = append(out, CardCertificate{Cert: c, ProvInfo: KeyProvInfo{Provider: provider, Container: m[i].GUID, KeySpec: spec}, Index: i, Default: m[i].IsDefault()})
	}
	return out, errs
}

// CardCertificates returns the certificates on the card in reader with
// their provider info (CryptGetProvParam(PP_USER_CERTSTORE)), the provider
// being the process's API's.
func (p *Process) CardCertificates(ctx context.Context, reader string) ([]CardCertificate, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	const op = "CryptGetProvParam(PP_USER_CERTSTORE)"
	if p.exited {
		return nil, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	t, err := p.begin(ctx, op, reader)
	if err != nil {
		return nil, err
	}
	defer t.end()
	out, errs := t.certificates(p.opts.API.Provider())
	if len(errs) > 0 {
		return out, errs[0]
	}
	return out, nil
}

// Containers lists the valid containers of the card in reader
// (CryptGetProvParam(PP_ENUMCONTAINERS) plus each container's key).
func (p *Process) Containers(ctx context.Context, reader string) ([]Container, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	const op = "CryptGetProvParam(PP_ENUMCONTAINERS)"
	if p.exited {
		return nil, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	t, err := p.begin(ctx, op, reader)
	if err != nil {
		return nil, err
	}
	defer t.end()
	m, err := t.cmap()
	if err != nil {
		return nil, err
	}
	var out []Container
	for i := range m {
		if !m.Valid(i) {
			continue
		}
		c, err := t.container(i)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ReadFile is CardReadFile through the host's cache: what Base CSP hands a
// caller asking for a card file.
func (p *Process) ReadFile(ctx context.Context, reader, path string) ([]byte, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	op := "CardReadFile " + path
	if p.exited {
		return nil, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	t, err := p.begin(ctx, op, reader)
	if err != nil {
		return nil, err
	}
	defer t.end()
	b, err := t.get(fileItem(t.knobs(), path))
	if err != nil {
		return nil, newErr(op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
	}
	return b, nil
}
