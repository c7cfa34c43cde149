package winhost

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// KeyHandle is an acquired private key (HCRYPTPROV+dwKeySpec or
// NCRYPT_KEY_HANDLE): a container on a card, reached through one API of one
// process. Operations re-find the container by name in each transaction,
// through the read path, so a stale cmapfile in the cache can send them to
// the wrong key (T2).
type KeyHandle struct {
	p      *Process
	reader string
	cardID fs.CardID
	guid   string
	spec   fs.KeySpec
	bits   int
	api    API
	silent bool
	pub    *rsa.PublicKey
	// callerFree is CryptAcquireCertificatePrivateKey's
	// *pfCallerFreeProvOrNCryptKey: false for a handle cached on the
	// certificate context.
	callerFree bool
}

// CallerFree reports whether the caller owns the handle
// (pfCallerFreeProvOrNCryptKey): false when it is cached on a certificate
// context (CRYPT_ACQUIRE_CACHE_FLAG, or USE_PROV_INFO with
// CERT_SET_KEY_CONTEXT_PROP_ID).
func (k *KeyHandle) CallerFree() bool { return k.callerFree }

// CertNCryptKeySpec is the pdwKeySpec value of a CNG key.
const CertNCryptKeySpec uint32 = 0xFFFFFFFF

// ResultKeySpec is what CryptAcquireCertificatePrivateKey stores in
// *pdwKeySpec: AT_KEYEXCHANGE or AT_SIGNATURE for a CryptoAPI handle,
// CERT_NCRYPT_KEY_SPEC for a CNG key.
func (k *KeyHandle) ResultKeySpec() uint32 {
	if k.api == CNG {
		return CertNCryptKeySpec
	}
	return uint32(k.spec)
}

// Reader returns the reader the key was found in.
func (k *KeyHandle) Reader() string { return k.reader }

// CardID returns the card's cardid.
func (k *KeyHandle) CardID() fs.CardID { return k.cardID }

// ContainerGUID returns the container name.
func (k *KeyHandle) ContainerGUID() string { return k.guid }

// KeySpec returns the container's key spec.
func (k *KeyHandle) KeySpec() fs.KeySpec { return k.spec }

// API returns the API the key was opened through.
func (k *KeyHandle) API() API { return k.api }

// Public returns the public key as the host saw it at acquisition (from the
// cache if the container info was cached).
func (k *KeyHandle) Public() *rsa.PublicKey { return k.pub }

// withContainer finds the container named guid on the inserted cards and
// runs f inside the transaction on its card. Readers the process already
// holds a handle on are searched first (Base CSP's card-handle cache), then
// the others in name order (SCardUIDlgSelectCard filtered on the
// container), §2.7 step 2. It reports whether some card had the container;
// card errors on cards without it are returned only if no card had it.
func (p *Process) withContainer(ctx context.Context, op, guid string, f func(t *txn, idx int, m fs.ContainerMap) error) (bool, error) {
	var order []string
	for _, r := range p.h.insertedReaders() {
		if p.handles[r] != nil {
			order = append(order, r)
		}
	}
	for _, r := range p.h.insertedReaders() {
		if !slices.Contains(order, r) {
			order = append(order, r)
		}
	}
	var firstErr error
	for _, r := range order {
		t, err := p.begin(ctx, op, r)
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		idx, m, err := t.find(guid)
		if err != nil {
			t.end()
			firstErr = cmpErr(firstErr, err)
			continue
		}
		if idx < 0 {
			t.end()
			continue
		}
		err = f(t, idx, m)
		t.end()
		return true, err
	}
	return false, firstErr
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// containerMissing is the outcome when no inserted card has the container:
// silent → Knobs.SilentNoContainerError; otherwise the insert-card dialog
// (§2.7 step 2, T9).
func (p *Process) containerMissing(op, guid string, silent bool, cause error) error {
	if silent {
		if cause == nil {
			cause = fmt.Errorf("container %q is on no inserted card", guid)
		}
		return newErr(op, p.h.knobs.SilentNoContainerError, cause)
	}
	p.count(func(s *Stats) { s.InsertCardDialogs++ })
	p.event(Event{Kind: EvInsertDialog, Item: guid})
	return &InsertCardError{Op: op, ContainerGUID: guid}
}

// healProvInfo looks for a container holding pub on the inserted cards, as
// CryptFindCertificateKeyProvInfo does by enumerating the CSPs (so the
// provider it records is Base CSP).
func (p *Process) healProvInfo(ctx context.Context, op string, pub *rsa.PublicKey) *KeyProvInfo {
	for _, r := range p.h.insertedReaders() {
		t, err := p.begin(ctx, op, r)
		if err != nil {
			continue
		}
		m, err := t.cmap()
		if err == nil {
			for i := range m {
				if !m.Valid(i) {
					continue
				}
				if info, err := t.containerInfo(i); err == nil && info.pub.Equal(pub) {
					t.end()
					return &KeyProvInfo{Provider: ProviderCAPI, Container: m[i].GUID, KeySpec: info.spec}
				}
			}
		}
		t.end()
	}
	return nil
}

// keyTxn begins a transaction for an operation on k and re-finds its
// container. A card that left the reader, or another card in it, is
// SCARD_W_REMOVED_CARD; a container no longer in the (cached) cmapfile is
// NTE_BAD_KEYSET.
func (k *KeyHandle) keyTxn(ctx context.Context, op string) (*txn, int, error) {
	p := k.p
	if p.exited {
		return nil, -1, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	if p.h.readers[k.reader] == nil {
		return nil, -1, newErr(op, winerr.SCARD_W_REMOVED_CARD, fmt.Errorf("the card left reader %q", k.reader))
	}
	t, err := p.begin(ctx, op, k.reader)
	if err != nil {
		return nil, -1, err
	}
	if t.cardID != k.cardID {
		t.end()
		return nil, -1, newErr(op, winerr.SCARD_W_REMOVED_CARD, fmt.Errorf("reader %q now holds card %s", k.reader, t.cardID))
	}
	idx, _, err := t.find(k.guid)
	if err != nil {
		t.end()
		return nil, -1, err
	}
	if idx < 0 {
		t.end()
		return nil, -1, newErr(op, winerr.NTE_BAD_KEYSET, fmt.Errorf("container %q is gone from the card", k.guid))
	}
	return t, idx, nil
}

// cryptoErr maps a card failure of a key operation: a key the card does
// not have is NTE_BAD_KEYSET (T13), anything else keeps the card's code.
func cryptoErr(op string, err error) error {
	if errors.Is(err, winerr.SCARD_E_NO_KEY_CONTAINER) || errors.Is(err, winerr.SCARD_E_FILE_NOT_FOUND) {
		return keysetErr(op, err)
	}
	return newErr(op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
}

// Sign signs a digest with PKCS#1 v1.5 on the card (CryptSignHash /
// NCryptSignHash): the PIN comes from the process's cache for the key's
// API, or a prompt. The signature is whatever the card's key at the
// container's (cached) index produces; check it with
// VerifyWithCertificate.
func (k *KeyHandle) Sign(ctx context.Context, digest []byte, hash crypto.Hash) ([]byte, error) {
	k.p.h.mu.Lock()
	defer k.p.h.mu.Unlock()
	return k.sign(ctx, digest, hash)
}

func (k *KeyHandle) sign(ctx context.Context, digest []byte, hash crypto.Hash) ([]byte, error) {
	op := "CryptSignHash"
	if k.api == CNG {
		op = "NCryptSignHash"
	}
	di, err := digestInfo(hash, digest)
	if err != nil {
		return nil, newErr(op, winerr.NTE_BAD_ALGID, err)
	}
	t, idx, err := k.keyTxn(ctx, op)
	if err != nil {
		return nil, err
	}
	defer t.end()
	if err := t.authenticate(k.api, k.silent); err != nil {
		return nil, err
	}
	sig, err := t.card().SignData(ctx, idx, di)
	if err != nil {
		return nil, cryptoErr(op, err)
	}
	return sig, nil
}

// Decrypt decrypts a PKCS#1 v1.5 ciphertext on the card (CryptDecrypt /
// NCryptDecrypt).
func (k *KeyHandle) Decrypt(ctx context.Context, ciphertext []byte) ([]byte, error) {
	k.p.h.mu.Lock()
	defer k.p.h.mu.Unlock()
	op := "CryptDecrypt"
	if k.api == CNG {
		op = "NCryptDecrypt"
	}
	t, idx, err := k.keyTxn(ctx, op)
	if err != nil {
		return nil, err
	}
	defer t.end()
	if err := t.authenticate(k.api, k.silent); err != nil {
		return nil, err
	}
	pt, err := t.card().Decrypt(ctx, idx, ciphertext)
	if err != nil {
		return nil, cryptoErr(op, err)
	}
	return pt, nil
}

// Signer returns k as a crypto.Signer bound to ctx (PKCS#1 v1.5 only).
func (k *KeyHandle) Signer(ctx context.Context) crypto.Signer { return &keySigner{ctx: ctx, k: k} }

type keySigner struct {
	ctx    context.Context
	k      *KeyHandle
	locked bool // the host lock is held by the caller (signing inside a host operation)
}

func (s *keySigner) Public() crypto.PublicKey { return s.k.pub }

func (s *keySigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, pss := opts.(*rsa.PSSOptions); pss {
		return nil, errors.New("winhost: the smart-card providers here sign with PKCS#1 v1.5 only")
	}
	if s.locked {
		return s.k.sign(s.ctx, digest, opts.HashFunc())
	}
	return s.k.Sign(s.ctx, digest, opts.HashFunc())
}

// Signer returns a crypto.Signer for the container named containerGUID on
// an inserted card, through the process's API and PIN cache: what a CSR or
// CMC builder needs. ctx bounds every Sign. Not found: as
// AcquireCertificatePrivateKey (silent code or InsertCardError).
func (p *Process) Signer(ctx context.Context, containerGUID string) (crypto.Signer, error) {
	k, err := p.OpenKey(ctx, containerGUID)
	if err != nil {
		return nil, err
	}
	return k.Signer(ctx), nil
}

// OpenKey opens the container named containerGUID through the process's
// API (CryptAcquireContext with the container name / NCryptOpenKey).
func (p *Process) OpenKey(ctx context.Context, containerGUID string) (*KeyHandle, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return p.openKey(ctx, containerGUID)
}

func (p *Process) openKey(ctx context.Context, containerGUID string) (*KeyHandle, error) {
	op := opName(p.opts.API, "CryptAcquireContext", "NCryptOpenKey")
	if p.exited {
		return nil, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	var kh *KeyHandle
	found, err := p.withContainer(ctx, op, containerGUID, func(t *txn, idx int, m fs.ContainerMap) error {
		info, err := t.containerInfo(idx)
		if err != nil {
			return err
		}
		kh = &KeyHandle{p: p, reader: t.reader, cardID: t.cardID, guid: m[idx].GUID, spec: info.spec, bits: info.bits, api: p.opts.API, silent: p.opts.Silent, pub: info.pub}
		return nil
	})
	if !found {
		return nil, p.containerMissing(op, containerGUID, p.opts.Silent, err)
	}
	if err != nil {
		return nil, err
	}
	return kh, nil
}

// VerifyWithCertificate checks a PKCS#1 v1.5 signature under the
// certificate's public key, as a relying party (CryptVerifySignature, a TLS
// peer, the KDC) does: a signature by another key — the card's key behind
// a stale or mismatched certificate (T2, T14) — is NTE_BAD_SIGNATURE.
func VerifyWithCertificate(cert *x509.Certificate, hash crypto.Hash, digest, sig []byte) error {
	const op = "CryptVerifySignature"
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return newErr(op, winerr.NTE_BAD_PUBLIC_KEY, errors.New("not an RSA certificate"))
	}
	if err := rsa.VerifyPKCS1v15(pub, hash, digest, sig); err != nil {
		return newErr(op, winerr.NTE_BAD_SIGNATURE, err)
	}
	return nil
}

var hashOIDs = map[crypto.Hash]asn1.ObjectIdentifier{
	crypto.SHA1:   {1, 3, 14, 3, 2, 26},
	crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
	crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
	crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
}

// digestInfo is the DigestInfo the card pads (RFC 8017 §9.2).
func digestInfo(h crypto.Hash, digest []byte) ([]byte, error) {
	oid, ok := hashOIDs[h]
	if !ok {
		return nil, fmt.Errorf("hash %v not supported", h)
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("digest of %d bytes for %v", len(digest), h)
	}
	return asn1.Marshal(struct {
		Alg    pkix.AlgorithmIdentifier
		Digest []byte
	}{pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue}, digest})
}
