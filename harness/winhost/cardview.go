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
	var out []CardCertificate
	err := p.inTxn(ctx, "CryptGetProvParam(PP_USER_CERTSTORE)", reader, func(t *txn) error {
		var errs []error
		if out, errs = t.certificates(p.opts.API.Provider()); len(errs) > 0 {
			return errs[0]
		}
		return nil
	})
	return out, err
}

// Containers lists the valid containers of the card in reader
// (CryptGetProvParam(PP_ENUMCONTAINERS) plus each container's key).
func (p *Process) Containers(ctx context.Context, reader string) ([]Container, error) {
	var out []Container
	err := p.inTxn(ctx, "CryptGetProvParam(PP_ENUMCONTAINERS)", reader, func(t *txn) error {
		m, err := t.cmap()
		if err != nil {
			return err
		}
		for i := range m {
			if !m.Valid(i) {
				continue
			}
			c, err := t.container(i)
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// ReadFile is CardReadFile through the host's cache: what Base CSP hands a
// caller asking for a card file.
func (p *Process) ReadFile(ctx context.Context, reader, path string) ([]byte, error) {
	op := "CardReadFile " + path
	var b []byte
	err := p.inTxn(ctx, op, reader, func(t *txn) error {
		var err error
		if b, err = t.get(fileItem(t.knobs(), path)); err != nil {
			return newErr(op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// inTxn runs f in one transaction on the card in reader, with the host
// locked, for a call op of a process still running (op names it in the
// errors).
func (p *Process) inTxn(ctx context.Context, op, reader string, f func(t *txn) error) error {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	if p.exited {
		return fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	t, err := p.begin(ctx, op, reader)
	if err != nil {
		return err
	}
	defer t.end()
	return f(t)
}
