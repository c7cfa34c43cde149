package winhost

import (
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/cardharness/cardharness/minidriver/fs"
)

// KeyProvInfo is CERT_KEY_PROV_INFO_PROP_ID (CRYPT_KEY_PROV_INFO): where the
// certificate's private key lives. Propagation writes the card's
// registered provider, the cmapfile GUID and the key spec, and no reader
// name (§2.5; OpenSC#2517, PR#2523).
type KeyProvInfo struct {
	Provider  string // ProviderCAPI or ProviderKSP
	Container string // the cmapfile wszGuid
	KeySpec   fs.KeySpec
	// SetKeyContext is CERT_SET_KEY_CONTEXT_PROP_ID in dwFlags: with
	// CRYPT_ACQUIRE_USE_PROV_INFO_FLAG the acquired handle is cached on
	// the certificate context.
	SetKeyContext bool
}

// EnrollmentProperty is CERT_ENROLLMENT_PROP_ID, carried by CertEnroll's
// dummy request certificate in the REQUEST store [S ICertPropertyEnrollment].
type EnrollmentProperty struct {
	RequestID    int
	CAName       string
	FriendlyName string
}

// StoreCert is a certificate in a store with the properties the model
// knows. Values are copies: changing one does not change the store.
type StoreCert struct {
	Cert       *x509.Certificate
	ProvInfo   *KeyProvInfo        // nil: no CERT_KEY_PROV_INFO_PROP_ID
	Enrollment *EnrollmentProperty // nil: no CERT_ENROLLMENT_PROP_ID
	// Added is when the certificate was last added or replaced.
	Added time.Time
	// Source says who put it there ("propagation", "InstallCertificate",
	// "InstallResponse", "CreateRequest", "Add").
	Source string
}

// Thumbprint is the SHA-1 hash of the certificate, upper-case hex, as
// Windows shows it; stores are keyed by it.
func (c StoreCert) Thumbprint() string { return Thumbprint(c.Cert) }

// Thumbprint of a certificate.
func Thumbprint(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func (c StoreCert) clone() StoreCert {
	if c.ProvInfo != nil {
		pi := *c.ProvInfo
		c.ProvInfo = &pi
	}
	if c.Enrollment != nil {
		e := *c.Enrollment
		c.Enrollment = &e
	}
	return c
}

// StoreName names a certificate store.
type StoreName string

// The user stores the model has (§2.1).
const (
	StoreMy      StoreName = "My"
	StoreRequest StoreName = "REQUEST"
)

// AddDisposition is CertAddCertificateContextToStore's dwAddDisposition.
type AddDisposition int

const (
	// AddReplaceExisting replaces a certificate with the same thumbprint,
	// properties and all (CERT_STORE_ADD_REPLACE_EXISTING).
	AddReplaceExisting AddDisposition = iota
	// AddReplaceInheritProperties replaces it, keeping the old
	// properties the new one does not set
	// (CERT_STORE_ADD_REPLACE_EXISTING_INHERIT_PROPERTIES): what
	// CertPropSvc uses [S MSCP].
	AddReplaceInheritProperties
	// AddNew leaves an existing certificate alone
	// (CERT_STORE_ADD_NEW); Add reports false.
	AddNew
)

// CertStore is one of a user's certificate stores (HKCU).
type CertStore struct {
	h     *Host
	name  StoreName
	certs []*StoreCert // in order of first addition
}

// Name returns the store name.
func (s *CertStore) Name() StoreName { return s.name }

// Certificates returns copies of the store's certificates, in the order
// they were first added.
func (s *CertStore) Certificates() []StoreCert {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	out := make([]StoreCert, len(s.certs))
	for i, c := range s.certs {
		out[i] = c.clone()
	}
	return out
}

// Len is the number of certificates.
func (s *CertStore) Len() int {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return len(s.certs)
}

// Find returns the certificate with that thumbprint.
func (s *CertStore) Find(thumbprint string) (StoreCert, bool) {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if i := s.index(thumbprint); i >= 0 {
		return s.certs[i].clone(), true
	}
	return StoreCert{}, false
}

// FindCert returns the store's copy of c.
func (s *CertStore) FindCert(c *x509.Certificate) (StoreCert, bool) { return s.Find(Thumbprint(c)) }

// FindByPublicKey returns the certificates whose key is pub.
func (s *CertStore) FindByPublicKey(pub *rsa.PublicKey) []StoreCert {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.byPublicKey(pub)
}

func (s *CertStore) byPublicKey(pub *rsa.PublicKey) []StoreCert {
	var out []StoreCert
	for _, c := range s.certs {
		if k, ok := c.Cert.PublicKey.(*rsa.PublicKey); ok && k.Equal(pub) {
			out = append(out, c.clone())
		}
	}
	return out
}

// FindBySubject returns the certificates whose subject common name is cn.
func (s *CertStore) FindBySubject(cn string) []StoreCert {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	var out []StoreCert
	for _, c := range s.certs {
		if c.Cert.Subject.CommonName == cn {
			out = append(out, c.clone())
		}
	}
	return out
}

// Add adds c (as an application or installer would, Source "Add" unless
// set). It reports whether the store changed.
func (s *CertStore) Add(c StoreCert, disp AddDisposition) bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if c.Source == "" {
		c.Source = "Add"
	}
	return s.add(c, disp)
}

func (s *CertStore) add(c StoreCert, disp AddDisposition) bool {
	c = c.clone()
	c.Added = s.h.now()
	i := s.index(c.Thumbprint())
	switch {
	case i < 0:
		s.certs = append(s.certs, &c)
		return true
	case disp == AddNew:
		return false
	case disp == AddReplaceInheritProperties:
		old := s.certs[i]
		if c.ProvInfo == nil {
			c.ProvInfo = old.ProvInfo
		}
		if c.Enrollment == nil {
			c.Enrollment = old.Enrollment
		}
	}
	s.certs[i] = &c
	return true
}

// Delete removes the certificate with that thumbprint; it reports whether
// there was one.
func (s *CertStore) Delete(thumbprint string) bool {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	return s.delete(thumbprint)
}

func (s *CertStore) delete(thumbprint string) bool {
	i := s.index(thumbprint)
	if i < 0 {
		return false
	}
	s.certs = slices.Delete(s.certs, i, i+1)
	return true
}

func (s *CertStore) index(thumbprint string) int {
	for i, c := range s.certs {
		if strings.EqualFold(c.Thumbprint(), thumbprint) {
			return i
		}
	}
	return -1
}

// User is a user profile: its stores outlive logoff (they are HKCU).
type User struct {
	name    string
	my      *CertStore
	request *CertStore
}

// Name returns the user name.
func (u *User) Name() string { return u.name }

// My is HKCU\My.
func (u *User) My() *CertStore { return u.my }

// Request is HKCU\REQUEST, where CertEnroll keeps request dummies.
func (u *User) Request() *CertStore { return u.request }

// Profile returns the profile of user name, creating it on first use.
func (h *Host) Profile(name string) *User {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.profile(name)
}

func (h *Host) profile(name string) *User {
	if h.roaming != nil && h.knobs.RoamingProfile {
		return h.roaming.profile(h, name)
	}
	u := h.profiles[name]
	if u == nil {
		u = &User{name: name, my: &CertStore{h: h, name: StoreMy}, request: &CertStore{h: h, name: StoreRequest}}
		h.profiles[name] = u
	}
	return u
}

// Roaming is a roaming-profile share: the hosts configured with the same
// Roaming (and Knobs.RoamingProfile) see one set of user stores, as a
// domain user whose HKCU roams does (ledger row H-PROP-REQUEST). The model
// syncs at once; real roaming syncs at logon and logoff [I].
type Roaming struct {
	users map[string]*User
}

// NewRoaming returns an empty roaming-profile share.
func NewRoaming() *Roaming { return &Roaming{users: map[string]*User{}} }

func (r *Roaming) profile(h *Host, name string) *User {
	u := r.users[name]
	if u == nil {
		u = &User{name: name, my: &CertStore{h: h, name: StoreMy}, request: &CertStore{h: h, name: StoreRequest}}
		r.users[name] = u
	}
	return u
}

// CurrentUser returns the signed-in user, or nil.
func (h *Host) CurrentUser() *User {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.user
}
