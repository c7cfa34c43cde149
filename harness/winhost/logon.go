package winhost

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// oidSmartCardLogon is the smart-card-logon EKU (szOID_KP_SMARTCARD_LOGON).
var oidSmartCardLogon = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}

// ErrAlreadySignedIn: Logon while a user is signed in (the model has one
// interactive session).
var ErrAlreadySignedIn = errors.New("winhost: a user is already signed in")

// LogonCard is what logon-time enumeration (§2.6) found on one card.
type LogonCard struct {
	Reader string
	CardID fs.CardID
	// Usable: the default container could be acquired silently. If not,
	// Err says why (errors.Is(Err, ErrCardUnusableForSignIn) and the
	// Windows code) and the card cannot be used to sign in (T11).
	Usable           bool
	Err              error
	DefaultContainer string
	// Certificates passed the logon filters; Rejected did not.
	Certificates []*x509.Certificate
	Rejected     []RejectedCert
}

// RejectedCert is a certificate a logon filter removed.
type RejectedCert struct {
	Cert   *x509.Certificate
	Reason string
}

// logonEntry is one entry of the logon-time temporary cache, keyed by
// subject+issuer: a renewed certificate with the same names replaces the
// old entry [S MSENUM]. Removal of the card clears its entries.
type logonEntry struct {
	reader string
	cert   *x509.Certificate
}

// LogonOptions refine Logon.
type LogonOptions struct {
	// SmartCardReader signs in with the card in that reader: it must be
	// usable for sign-in and offer a certificate that passes the logon
	// filters. "": a password logon.
	SmartCardReader string
}

// Logon signs user in (§2.6): for a smart-card logon the card is
// enumerated first and must be usable; then the profile is loaded (the
// user's stores) and certificate propagation is scheduled for every
// inserted card (§2.5: logon succeeds before propagation runs).
func (h *Host) Logon(ctx context.Context, user string, opts LogonOptions) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.user != nil {
		return fmt.Errorf("Logon %q: %w (%s)", user, ErrAlreadySignedIn, h.user.name)
	}
	if r := opts.SmartCardReader; r != "" {
		lc := h.enumerateCard(ctx, r)
		if !lc.Usable {
			return fmt.Errorf("Logon %q with the card in %q: %w", user, r, lc.Err)
		}
		if len(lc.Certificates) == 0 {
			return fmt.Errorf("Logon %q with the card in %q: %w: no certificate passes the logon filters", user, r, ErrCardUnusableForSignIn)
		}
	}
	h.user = h.profile(user)
	h.logons++
	h.logonSeq = h.logons
	h.event(Event{Kind: EvLogon, Item: user, Detail: opts.SmartCardReader})
	h.schedulePropagationAll(ctx, "logon")
	return nil
}

// Logoff signs the user out: pending propagations are cancelled and the
// user's processes end (their PIN caches are per logon session, §1.6).
// Services keep running. The profile (stores) remains.
func (h *Host) Logoff() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.signOut()
}

func (h *Host) signOut() {
	if h.user == nil {
		return
	}
	h.stopTimers()
	h.event(Event{Kind: EvLogoff, Item: h.user.name})
	h.user = nil
	h.logonSeq = 0
	for _, p := range slices.Clone(h.procs) {
		if !p.service {
			p.exit()
		}
	}
}

// EnumerateLogonCards runs logon-time enumeration (§2.6) on every inserted
// card, as the logon screen does.
func (h *Host) EnumerateLogonCards(ctx context.Context) []LogonCard {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []LogonCard
	for _, r := range h.insertedReaders() {
		out = append(out, h.enumerateCard(ctx, r))
	}
	return out
}

// LogonCertificates returns the logon-time temporary cache, sorted by
// subject.
func (h *Host) LogonCertificates() []*x509.Certificate {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*x509.Certificate
	for _, e := range h.logonCache {
		out = append(out, e.cert)
	}
	slices.SortFunc(out, func(a, b *x509.Certificate) int { return strings.Compare(a.Subject.String(), b.Subject.String()) })
	return out
}

// enumerateCard is §2.6 for one card: a silent CryptAcquireContext on the
// default container (none → NoDefaultContainer knob, T11), the key of that
// container must be readable, then the certificates — all of them
// (PP_USER_CERTSTORE) or only the default container's AT_KEYEXCHANGE one —
// through the logon filters. Lock held.
func (h *Host) enumerateCard(ctx context.Context, reader string) LogonCard {
	op := `CryptAcquireContext("\\.\` + reader + `\")`
	lc := LogonCard{Reader: reader}
	unusable := func(err error) LogonCard {
		lc.Err = fmt.Errorf("%w: %w", ErrCardUnusableForSignIn, err)
		return lc
	}
	t, err := h.lsa.begin(ctx, op, reader)
	if err != nil {
		return unusable(err)
	}
	defer t.end()
	lc.CardID = t.cardID
	m, err := t.cmap()
	if err != nil {
		return unusable(err)
	}
	def := m.Default()
	if def < 0 && h.knobs.NoDefaultContainer == NoDefaultPickFirst {
		for i := range m {
			if m.Valid(i) {
				def = i
				break
			}
		}
	}
	if def < 0 {
		return unusable(newErr(op, winerr.NTE_BAD_KEYSET, errors.New("the card has no valid default container")))
	}
	if _, err := t.containerInfo(def); err != nil {
		return unusable(err)
	}
	lc.Usable, lc.DefaultContainer = true, m[def].GUID
	var found []CardCertificate
	if h.knobs.LogonReadsAllCertificates {
		found, _ = t.certificates(ProviderCAPI)
	} else if spec, _, ok := m[def].Key(); ok && spec == fs.AT_KEYEXCHANGE {
		all, _ := t.certificates(ProviderCAPI)
		for _, c := range all {
			if c.Index == def {
				found = append(found, c)
			}
		}
	}
	var accepted []*x509.Certificate
	for _, c := range found {
		if why := h.logonFilter(c); why != "" {
			lc.Rejected = append(lc.Rejected, RejectedCert{Cert: c.Cert, Reason: why})
			continue
		}
		accepted = append(accepted, c.Cert)
	}
	if h.knobs.LogonFilterDuplicateCerts {
		accepted = filterDuplicates(accepted, &lc.Rejected)
	}
	lc.Certificates = accepted
	for _, c := range accepted {
		h.logonCache[string(c.RawSubject)+"\x00"+string(c.RawIssuer)] = logonEntry{reader: reader, cert: c}
	}
	return lc
}

// logonFilter applies the §2.6 filters as the smart-card Group Policy
// settings describe them (ledger row H-LOGON-FILTER); "" accepts:
//
//   - AllowSignatureOnlyKeys off: AT_SIGNATURE keys are not listed.
//   - AllowTimeInvalidCertificates off: expired or not yet valid
//     certificates are not listed.
//   - AllowCertificatesWithNoEKU off: "only certificates that contain the
//     smart card logon object identifier"; on: also "certificates with no
//     EKU", "with an All Purpose EKU" and "with a Client Authentication
//     EKU".
//
// UPN matching against the directory is not modelled.
func (h *Host) logonFilter(c CardCertificate) string {
	k := h.knobs
	if c.ProvInfo.KeySpec == fs.AT_SIGNATURE && !k.LogonAllowSignatureOnlyKeys {
		return "AT_SIGNATURE key (AllowSignatureOnlyKeys is off)"
	}
	now := h.now()
	if !k.LogonAllowTimeInvalid && (now.Before(c.Cert.NotBefore) || now.After(c.Cert.NotAfter)) {
		return "outside its validity period (AllowTimeInvalidCertificates is off)"
	}
	if c.Cert.KeyUsage != 0 && c.Cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return "key usage lacks digital signature"
	}
	for _, o := range c.Cert.UnknownExtKeyUsage {
		if o.Equal(oidSmartCardLogon) {
			return ""
		}
	}
	if !k.LogonAllowNoEKU {
		return "no smart-card-logon EKU (AllowCertificatesWithNoEKU is off)"
	}
	if len(c.Cert.ExtKeyUsage) == 0 && len(c.Cert.UnknownExtKeyUsage) == 0 {
		return ""
	}
	if slices.Contains(c.Cert.ExtKeyUsage, x509.ExtKeyUsageAny) || slices.Contains(c.Cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return ""
	}
	return "neither smart-card-logon, All Purpose nor Client Authentication EKU"
}

// OIDs of the duplicate filter: the certificate template extension
// (szOID_CERTIFICATE_TEMPLATE) and the UPN other name (szOID_NT_PRINCIPAL_NAME).
var (
	oidCertificateTemplate = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 7}
	oidUPN                 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
	oidSubjectAltName      = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// duplicateKey is what makes two logon certificates "the same" for
// FilterDuplicateCerts: "issued from the same template with the same
// major version and they are for the same user (determined by their
// UPN)". ok is false for a certificate without a template or a UPN: the
// model does not group those [I].
func duplicateKey(c *x509.Certificate) (string, bool) {
	var tmpl struct {
		ID    asn1.ObjectIdentifier
		Major int
		Minor int `asn1:"optional"`
	}
	var upn string
	haveTmpl := false
	for _, x := range c.Extensions {
		switch {
		case x.Id.Equal(oidCertificateTemplate):
			if _, err := asn1.Unmarshal(x.Value, &tmpl); err == nil {
				haveTmpl = true
			}
		case x.Id.Equal(oidSubjectAltName):
			upn = upnOf(x.Value)
		}
	}
	if !haveTmpl || upn == "" {
		return "", false
	}
	return fmt.Sprintf("%s/%d/%s", tmpl.ID, tmpl.Major, strings.ToLower(upn)), true
}

// upnOf finds the UPN other name in a subjectAltName value.
func upnOf(san []byte) string {
	var names []asn1.RawValue
	if _, err := asn1.Unmarshal(san, &names); err != nil {
		return ""
	}
	for _, n := range names {
		if n.Class != asn1.ClassContextSpecific || n.Tag != 0 {
			continue
		}
		var on struct {
			ID    asn1.ObjectIdentifier
			Value asn1.RawValue `asn1:"explicit,tag:0"`
		}
		// otherName is [0] IMPLICIT SEQUENCE: re-tag it as a SEQUENCE.
		raw := append([]byte{0x30}, n.FullBytes[1:]...)
		if _, err := asn1.Unmarshal(raw, &on); err != nil || !on.ID.Equal(oidUPN) {
			continue
		}
		var s string
		if _, err := asn1.Unmarshal(on.Value.Bytes, &s); err == nil {
			return s
		}
	}
	return ""
}

// filterDuplicates keeps, of each group of "same" certificates, the one
// whose expiration is furthest in the future (FilterDuplicateCerts,
// applied after the time-validity filter; ledger row H-LOGON-DUPLICATES).
func filterDuplicates(certs []*x509.Certificate, rejected *[]RejectedCert) []*x509.Certificate {
	best := map[string]*x509.Certificate{}
	for _, c := range certs {
		k, ok := duplicateKey(c)
		if !ok {
			continue
		}
		if b, seen := best[k]; !seen || c.NotAfter.After(b.NotAfter) || (c.NotAfter.Equal(b.NotAfter) && bytes.Compare(c.Raw, b.Raw) > 0) {
			best[k] = c
		}
	}
	out := make([]*x509.Certificate, 0, len(certs))
	for _, c := range certs {
		if k, ok := duplicateKey(c); ok && best[k] != c {
			*rejected = append(*rejected, RejectedCert{Cert: c, Reason: "same template, major version and UPN as a certificate expiring later (FilterDuplicateCerts)"})
			continue
		}
		out = append(out, c)
	}
	return out
}
