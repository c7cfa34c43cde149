package winhost

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// CryptAcquireCertificatePrivateKey as its documentation describes it
// (learn.microsoft.com/en-us/windows/win32/api/wincrypt/nf-wincrypt-cryptacquirecertificateprivatekey,
// "dwFlags" and "Return value"; ledger rows H-ACQ-API, H-ACQ-HEAL,
// H-ACQ-CACHE, H-ACQ-SILENT).

// AcquireFlags are CryptAcquireCertificatePrivateKey's dwFlags.
type AcquireFlags struct {
	// Cache is CRYPT_ACQUIRE_CACHE_FLAG: a handle already cached on the
	// certificate context (CERT_KEY_CONTEXT_PROP_ID) is returned as is;
	// otherwise the new one is cached there. The caller must not free it.
	Cache bool
	// UseProvInfo is CRYPT_ACQUIRE_USE_PROV_INFO_FLAG: cache as Cache does,
	// but only if CERT_KEY_PROV_INFO's dwFlags has
	// CERT_SET_KEY_CONTEXT_PROP_ID (KeyProvInfo.SetKeyContext).
	UseProvInfo bool
	// CompareKey is CRYPT_ACQUIRE_COMPARE_KEY_FLAG: the provider's public
	// key (as the host sees it, possibly from the cache) must be the
	// certificate's, else NTE_BAD_PUBLIC_KEY; no comparison for a cached
	// handle.
	CompareKey bool
	// NoHealing is CRYPT_ACQUIRE_NO_HEALING: no attempt to re-create a
	// missing CERT_KEY_PROV_INFO.
	NoHealing bool
	// Silent is CRYPT_ACQUIRE_SILENT_FLAG: no UI; an operation that needs
	// it fails (NTE_SILENT_CONTEXT for a PIN, Knobs.SilentNoContainerError
	// for the insert-card dialog).
	Silent bool
	// AllowNCrypt is CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG: CryptoAPI first,
	// then CNG.
	AllowNCrypt bool
	// PreferNCrypt is CRYPT_ACQUIRE_PREFER_NCRYPT_KEY_FLAG: CNG first, then
	// CryptoAPI.
	PreferNCrypt bool
	// OnlyNCrypt is CRYPT_ACQUIRE_ONLY_NCRYPT_KEY_FLAG: CNG only.
	OnlyNCrypt bool
}

// The dwFlags values (wincrypt.h).
const (
	CRYPT_ACQUIRE_CACHE_FLAG             uint32 = 0x00000001
	CRYPT_ACQUIRE_USE_PROV_INFO_FLAG     uint32 = 0x00000002
	CRYPT_ACQUIRE_COMPARE_KEY_FLAG       uint32 = 0x00000004
	CRYPT_ACQUIRE_NO_HEALING             uint32 = 0x00000008
	CRYPT_ACQUIRE_SILENT_FLAG            uint32 = 0x00000040
	CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG  uint32 = 0x00010000
	CRYPT_ACQUIRE_PREFER_NCRYPT_KEY_FLAG uint32 = 0x00020000
	CRYPT_ACQUIRE_ONLY_NCRYPT_KEY_FLAG   uint32 = 0x00040000
)

var acquireFlagNames = []struct {
	name string
	v    uint32
	f    func(*AcquireFlags) *bool
}{
	{"CRYPT_ACQUIRE_CACHE_FLAG", CRYPT_ACQUIRE_CACHE_FLAG, func(f *AcquireFlags) *bool { return &f.Cache }},
	{"CRYPT_ACQUIRE_USE_PROV_INFO_FLAG", CRYPT_ACQUIRE_USE_PROV_INFO_FLAG, func(f *AcquireFlags) *bool { return &f.UseProvInfo }},
	{"CRYPT_ACQUIRE_COMPARE_KEY_FLAG", CRYPT_ACQUIRE_COMPARE_KEY_FLAG, func(f *AcquireFlags) *bool { return &f.CompareKey }},
	{"CRYPT_ACQUIRE_NO_HEALING", CRYPT_ACQUIRE_NO_HEALING, func(f *AcquireFlags) *bool { return &f.NoHealing }},
	{"CRYPT_ACQUIRE_SILENT_FLAG", CRYPT_ACQUIRE_SILENT_FLAG, func(f *AcquireFlags) *bool { return &f.Silent }},
	{"CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG", CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG, func(f *AcquireFlags) *bool { return &f.AllowNCrypt }},
	{"CRYPT_ACQUIRE_PREFER_NCRYPT_KEY_FLAG", CRYPT_ACQUIRE_PREFER_NCRYPT_KEY_FLAG, func(f *AcquireFlags) *bool { return &f.PreferNCrypt }},
	{"CRYPT_ACQUIRE_ONLY_NCRYPT_KEY_FLAG", CRYPT_ACQUIRE_ONLY_NCRYPT_KEY_FLAG, func(f *AcquireFlags) *bool { return &f.OnlyNCrypt }},
}

// Value is the dwFlags value.
func (f AcquireFlags) Value() uint32 {
	var v uint32
	for _, n := range acquireFlagNames {
		if *n.f(&f) {
			v |= n.v
		}
	}
	return v
}

// String names the flags, "0" for none.
func (f AcquireFlags) String() string {
	var parts []string
	for _, n := range acquireFlagNames {
		if *n.f(&f) {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// AcquireFlagsOf decodes a dwFlags value; bits the model does not know
// (CRYPT_ACQUIRE_WINDOW_HANDLE_FLAG among them) are an error.
func AcquireFlagsOf(v uint32) (AcquireFlags, error) {
	var f AcquireFlags
	rest := v
	for _, n := range acquireFlagNames {
		if v&n.v != 0 {
			*n.f(&f) = true
			rest &^= n.v
		}
	}
	if rest != 0 {
		return f, fmt.Errorf("dwFlags 0x%08X: unknown or unmodelled bits 0x%08X", v, rest)
	}
	return f, nil
}

// ParseAcquireFlags reads flags written as in C: names joined by "|"
// (with or without the CRYPT_ACQUIRE_ prefix and _FLAG suffix), a number,
// or "0".
func ParseAcquireFlags(s string) (AcquireFlags, error) {
	var v uint32
	for _, part := range strings.Split(s, "|") {
		part = strings.ToUpper(strings.TrimSpace(part))
		if part == "" {
			return AcquireFlags{}, fmt.Errorf("flags %q: empty name", s)
		}
		if n, err := strconv.ParseUint(part, 0, 32); err == nil {
			v |= uint32(n)
			continue
		}
		found := false
		for _, n := range acquireFlagNames {
			short := strings.TrimSuffix(strings.TrimPrefix(n.name, "CRYPT_ACQUIRE_"), "_FLAG")
			if part == n.name || part == short || part == short+"_FLAG" {
				v |= n.v
				found = true
			}
		}
		if !found {
			names := make([]string, len(acquireFlagNames))
			for i, n := range acquireFlagNames {
				names[i] = n.name
			}
			return AcquireFlags{}, fmt.Errorf("flags %q: unknown flag %q (known: %s)", s, part, strings.Join(names, ", "))
		}
	}
	return AcquireFlagsOf(v)
}

// apis is the order in which the key is tried (the second table of
// dwFlags: "If none of these flags is present, this function will only
// attempt to obtain the key by using CryptoAPI"). Several of the three set
// at once is not documented; the model lets ONLY win over PREFER over
// ALLOW [I].
func (f AcquireFlags) apis() []API {
	switch {
	case f.OnlyNCrypt:
		return []API{CNG}
	case f.PreferNCrypt:
		return []API{CNG, CAPI}
	case f.AllowNCrypt:
		return []API{CAPI, CNG}
	}
	return []API{CAPI}
}

// Codes of acquisition the winerr vocabulary names for the model.
var (
	// A CRYPT_KEY_PROV_INFO that names a KSP has dwProvType 0
	// (CRYPT_KEY_PROV_INFO: "If dwProvType is zero, the key container is
	// a CNG key storage provider"), and CryptAcquireContext refuses a
	// provider type outside 1..999 with NTE_BAD_PROV_TYPE
	// (CryptAcquireContext, "Return value"): what a CryptoAPI-only
	// acquisition of a KSP-propagated certificate gives.
	errCAPIOnKSP = winerr.NTE_BAD_PROV_TYPE
	// NCryptOpenStorageProvider with a name that is not a KSP.
	errCNGOnCSP = winerr.NTE_BAD_PROVIDER
)

// CertContext is a certificate context (PCCERT_CONTEXT) in one process:
// made from bytes (CreateCertificateContext, no properties) or found in a
// store (FindCertificateInStore: its properties are the store's). Properties
// set with inhibitPersist live in this context only
// (CERT_SET_PROPERTY_INHIBIT_PERSIST_FLAG); on a context made from bytes
// every property is in memory. The key handle cached by
// CRYPT_ACQUIRE_CACHE_FLAG (CERT_KEY_CONTEXT_PROP_ID) belongs to the
// context. Ledger row H-CTX.
type CertContext struct {
	p     *Process
	sc    StoreCert // the certificate; ProvInfo/Enrollment: in-memory values
	store *CertStore
	// memProvInfo: a property set on this context only.
	memProvInfo bool
	keyCtx      *KeyHandle
}

// CreateCertificateContext is CertCreateCertificateContext: a context with
// no properties, as a tool that read the certificate with
// CryptGetKeyParam(KP_CERTIFICATE) has.
func (p *Process) CreateCertificateContext(der []byte) (*CertContext, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	const op = "CertCreateCertificateContext"
	if p.exited {
		return nil, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, newErr(op, winerr.ERROR_INVALID_DATA, err)
	}
	return &CertContext{p: p, sc: StoreCert{Cert: cert}}, nil
}

// FindCertificateInStore is CertFindCertificateInStore(CERT_FIND_SHA1_HASH)
// in one of the signed-in user's stores.
func (p *Process) FindCertificateInStore(store StoreName, thumbprint string) (*CertContext, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	const op = "CertFindCertificateInStore"
	s, err := p.userStore(op, store)
	if err != nil {
		return nil, err
	}
	i := s.index(thumbprint)
	if i < 0 {
		return nil, newErr(op, winerr.CRYPT_E_NOT_FOUND, fmt.Errorf("no certificate %s in %s", thumbprint, store))
	}
	return &CertContext{p: p, sc: StoreCert{Cert: s.certs[i].Cert}, store: s}, nil
}

func (p *Process) userStore(op string, name StoreName) (*CertStore, error) {
	if p.exited {
		return nil, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	u := p.h.user
	if u == nil {
		return nil, fmt.Errorf("%s: %w", op, ErrNotSignedIn)
	}
	switch name {
	case StoreMy, "":
		return u.my, nil
	case StoreRequest:
		return u.request, nil
	}
	return nil, fmt.Errorf("%s: store %q: the model has My and REQUEST", op, name)
}

// Certificate returns the context's certificate.
func (c *CertContext) Certificate() StoreCert {
	c.p.h.mu.Lock()
	defer c.p.h.mu.Unlock()
	return c.view()
}

// view is the certificate with the properties the context sees. Lock held.
func (c *CertContext) view() StoreCert {
	v := c.sc.clone()
	if c.store != nil {
		if i := c.store.index(v.Thumbprint()); i >= 0 {
			el := c.store.certs[i]
			if !c.memProvInfo {
				v.ProvInfo = el.ProvInfo
			}
			v.Enrollment, v.Source, v.Added = el.Enrollment, el.Source, el.Added
			v = v.clone()
		}
	}
	return v
}

// ProvInfo is CertGetCertificateContextProperty(CERT_KEY_PROV_INFO_PROP_ID):
// nil if the context has none.
func (c *CertContext) ProvInfo() *KeyProvInfo {
	return c.Certificate().ProvInfo
}

// SetProvInfo is CertSetCertificateContextProperty(CERT_KEY_PROV_INFO_PROP_ID);
// pi nil deletes the property. On a context found in a store the property
// is written to the store unless inhibitPersist
// (CERT_SET_PROPERTY_INHIBIT_PERSIST_FLAG), which keeps it in this context
// of this process only.
func (c *CertContext) SetProvInfo(pi *KeyProvInfo, inhibitPersist bool) {
	c.p.h.mu.Lock()
	defer c.p.h.mu.Unlock()
	c.setProvInfo(pi, inhibitPersist)
}

func (c *CertContext) setProvInfo(pi *KeyProvInfo, inhibitPersist bool) {
	if pi != nil {
		cp := *pi
		pi = &cp
	}
	if c.store != nil && !inhibitPersist {
		if i := c.store.index(c.sc.Thumbprint()); i >= 0 {
			c.store.certs[i].ProvInfo = pi
			c.memProvInfo = false
			return
		}
	}
	c.sc.ProvInfo = pi
	c.memProvInfo = true
}

// AddToStore adds the context to one of the user's stores with disp.
// withProperties is CertAddCertificateContextToStore (the context's
// properties, in-memory ones included, go with it [I]); without it,
// CertAddEncodedCertificateToStore (bytes only). It reports whether the
// store changed.
func (c *CertContext) AddToStore(store StoreName, disp AddDisposition, withProperties bool) (bool, error) {
	c.p.h.mu.Lock()
	defer c.p.h.mu.Unlock()
	op := "CertAddEncodedCertificateToStore"
	if withProperties {
		op = "CertAddCertificateContextToStore"
	}
	s, err := c.p.userStore(op, store)
	if err != nil {
		return false, err
	}
	v := c.view()
	if !withProperties {
		v = StoreCert{Cert: v.Cert}
	}
	v.Source = "Add (" + c.p.name + ")"
	return s.add(v, disp), nil
}

// AcquirePrivateKey is CryptAcquireCertificatePrivateKey on this context
// (docs/reference/minidriver-semantics.md §2.7, T9, T10, T13, T14):
//
//  1. A handle cached on the context is returned when Cache is set, or
//     UseProvInfo with CERT_SET_KEY_CONTEXT_PROP_ID: no card access, no
//     comparison.
//  2. Without CERT_KEY_PROV_INFO: unless NoHealing (or
//     Knobs.HealMissingProvInfo is off), the property is re-created from
//     Knobs.HealSource and set on the context; still none:
//     CRYPT_E_NO_KEY_PROPERTY (0x8009200B).
//  3. The key is tried through the APIs the flags name, in order (none:
//     CryptoAPI only). CryptoAPI on a KSP property: NTE_BAD_PROV_TYPE; CNG
//     on a Base CSP property: the same card container, unless
//     Knobs.CNGOpensCSPProvInfo is off (NTE_BAD_PROVIDER). The container
//     is looked for on the inserted cards through the read path; not
//     found: silent → Knobs.SilentNoContainerError, otherwise the
//     insert-card dialog. With CompareKey a different key is
//     NTE_BAD_PUBLIC_KEY. The last attempt's error is returned [I].
//
// The PIN is not asked for here: Sign asks for it.
func (c *CertContext) AcquirePrivateKey(ctx context.Context, f AcquireFlags) (*KeyHandle, error) {
	p := c.p
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return c.acquire(ctx, f)
}

func (c *CertContext) acquire(ctx context.Context, f AcquireFlags) (*KeyHandle, error) {
	p := c.p
	const op = "CryptAcquireCertificatePrivateKey"
	if p.exited {
		return nil, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	v := c.view()
	pi := v.ProvInfo
	cacheIt := f.Cache || (f.UseProvInfo && pi != nil && pi.SetKeyContext)
	if cacheIt && c.keyCtx != nil {
		p.event(Event{Kind: EvAcquire, Item: v.Thumbprint(), Detail: f.String() + ": cached handle"})
		return c.keyCtx, nil
	}
	certPub, _ := v.Cert.PublicKey.(*rsa.PublicKey)
	if pi == nil && p.h.knobs.HealMissingProvInfo && !f.NoHealing {
		if pi = p.heal(ctx, op, v); pi != nil {
			c.setProvInfo(pi, c.store == nil)
			p.event(Event{Kind: EvAcquire, Item: v.Thumbprint(), Detail: fmt.Sprintf("healed CERT_KEY_PROV_INFO from %v: %s %q", p.h.knobs.HealSource, pi.Provider, pi.Container)})
		}
	}
	if pi == nil {
		return nil, newErr(op, winerr.CRYPT_E_NO_KEY_PROPERTY, errors.New("the certificate context has no CERT_KEY_PROV_INFO_PROP_ID"))
	}
	silent := f.Silent || p.opts.Silent
	var kh *KeyHandle
	var err error
	for _, api := range f.apis() {
		kh, err = p.acquireThrough(ctx, op, api, pi, certPub, f.CompareKey, silent)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	kh.callerFree = !cacheIt
	if cacheIt {
		c.keyCtx = kh
	}
	p.event(Event{Kind: EvAcquire, Item: v.Thumbprint(), Detail: fmt.Sprintf("%s: %v, container %q", f, kh.api, kh.guid)})
	return kh, nil
}

// acquireThrough is one attempt through one API. Lock held.
func (p *Process) acquireThrough(ctx context.Context, op string, api API, pi *KeyProvInfo, certPub *rsa.PublicKey, compare, silent bool) (*KeyHandle, error) {
	switch {
	case api == CAPI && pi.Provider == ProviderKSP:
		return nil, newErr(op, errCAPIOnKSP, fmt.Errorf("CryptoAPI: CERT_KEY_PROV_INFO names %q (dwProvType 0, a KSP)", pi.Provider))
	case api == CNG && pi.Provider != ProviderKSP && !p.h.knobs.CNGOpensCSPProvInfo:
		return nil, newErr(op, errCNGOnCSP, fmt.Errorf("CNG: %q is not a key storage provider", pi.Provider))
	}
	var kh *KeyHandle
	found, err := p.withContainer(ctx, op, pi.Container, func(t *txn, idx int, m fs.ContainerMap) error {
		info, err := t.containerInfo(idx)
		if err != nil {
			return err
		}
		if compare && (certPub == nil || !certPub.Equal(info.pub)) {
			return newErr(op, winerr.NTE_BAD_PUBLIC_KEY, fmt.Errorf("the public key of container %q (index %d) is not the certificate's", pi.Container, idx))
		}
		kh = &KeyHandle{p: p, reader: t.reader, cardID: t.cardID, guid: m[idx].GUID, spec: info.spec, bits: info.bits, api: api, silent: silent, pub: info.pub}
		return nil
	})
	if !found {
		return nil, p.containerMissing(op, pi.Container, silent, err)
	}
	if err != nil {
		return nil, err
	}
	return kh, nil
}

// heal re-creates CERT_KEY_PROV_INFO (ledger row H-ACQ-HEAL). Lock held.
func (p *Process) heal(ctx context.Context, op string, v StoreCert) *KeyProvInfo {
	switch p.h.knobs.HealSource {
	case HealByKeySearch:
		if pub, ok := v.Cert.PublicKey.(*rsa.PublicKey); ok {
			return p.healProvInfo(ctx, op, pub)
		}
	default:
		if u := p.h.user; u != nil {
			if i := u.my.index(v.Thumbprint()); i >= 0 && u.my.certs[i].ProvInfo != nil {
				pi := *u.my.certs[i].ProvInfo
				return &pi
			}
		}
	}
	return nil
}

// AcquireCertificatePrivateKey is CryptAcquireCertificatePrivateKey on a
// context holding c with c's properties in memory (a copy of a store
// entry): CertContext.AcquirePrivateKey.
func (p *Process) AcquireCertificatePrivateKey(ctx context.Context, c StoreCert, f AcquireFlags) (*KeyHandle, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	if c.Cert == nil {
		return nil, newErr("CryptAcquireCertificatePrivateKey", winerr.CRYPT_E_NOT_FOUND, errors.New("no certificate"))
	}
	cc := &CertContext{p: p, sc: c.clone(), memProvInfo: true}
	return cc.acquire(ctx, f)
}

// ReadKeyCertificate is what a tool gets from CryptAcquireContext on the
// container named guid, CryptGetUserKey and
// CryptGetKeyParam(KP_CERTIFICATE): the certificate in the container's
// certificate file, read through the process's API and the host's cache
// (the founding report's addCardCertToStore.exe, [SE61850] in
// docs/windows-fidelity.md). No certificate file: SCARD_E_FILE_NOT_FOUND.
func (p *Process) ReadKeyCertificate(ctx context.Context, guid string) ([]byte, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	op := opName(p.opts.API, "CryptGetKeyParam(KP_CERTIFICATE)", "NCryptGetProperty(NCRYPT_CERTIFICATE_PROPERTY)")
	if p.exited {
		return nil, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	var der []byte
	found, err := p.withContainer(ctx, op, guid, func(t *txn, idx int, m fs.ContainerMap) error {
		info, err := t.containerInfo(idx)
		if err != nil {
			return err
		}
		b, ok, err := t.certificate(idx, info.spec)
		if err != nil {
			return err
		}
		if !ok {
			return newErr(op, winerr.SCARD_E_FILE_NOT_FOUND, fmt.Errorf("container %q has no certificate file", guid))
		}
		der = b
		return nil
	})
	if !found {
		return nil, p.containerMissing(op, guid, p.opts.Silent, err)
	}
	return der, err
}
