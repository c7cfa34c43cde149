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
		accepted = latestPerName(accepted, &lc.Rejected)
	}
	lc.Certificates = accepted
	for _, c := range accepted {
		h.logonCache[string(c.RawSubject)+"\x00"+string(c.RawIssuer)] = logonEntry{reader: reader, cert: c}
	}
	return lc
}

// logonFilter applies the §2.6 filters; "" accepts. UPN matching needs a
// directory and is not modelled.
func (h *Host) logonFilter(c CardCertificate) string {
	k := h.knobs
	if c.ProvInfo.KeySpec == fs.AT_SIGNATURE && !k.LogonAllowSignatureOnlyKeys {
		return "AT_SIGNATURE key (AllowSignatureOnlyKeys is off)"
	}
	now := h.now()
	if !k.LogonAllowTimeInvalid && (now.Before(c.Cert.NotBefore) || now.After(c.Cert.NotAfter)) {
		return "outside its validity period"
	}
	if c.Cert.KeyUsage != 0 && c.Cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return "key usage lacks digital signature"
	}
	hasEKU := len(c.Cert.ExtKeyUsage) > 0 || len(c.Cert.UnknownExtKeyUsage) > 0
	if !hasEKU {
		if k.LogonAllowNoEKU {
			return ""
		}
		return "no EKU (AllowCertificatesWithNoEKU is off)"
	}
	if slices.Contains(c.Cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return ""
	}
	for _, o := range c.Cert.UnknownExtKeyUsage {
		if o.Equal(oidSmartCardLogon) {
			return ""
		}
	}
	return "no smart-card-logon EKU"
}

// latestPerName keeps, per subject+issuer, the certificate that expires
// last (FilterDuplicateCerts).
func latestPerName(certs []*x509.Certificate, rejected *[]RejectedCert) []*x509.Certificate {
	best := map[string]*x509.Certificate{}
	var order []string
	for _, c := range certs {
		k := string(c.RawSubject) + "\x00" + string(c.RawIssuer)
		b, ok := best[k]
		if !ok {
			order = append(order, k)
			best[k] = c
			continue
		}
		if c.NotAfter.After(b.NotAfter) || (c.NotAfter.Equal(b.NotAfter) && bytes.Compare(c.Raw, b.Raw) > 0) {
			best[k], c = c, b
		}
		*rejected = append(*rejected, RejectedCert{Cert: c, Reason: "duplicate subject and issuer (FilterDuplicateCerts)"})
	}
	out := make([]*x509.Certificate, 0, len(order))
	for _, k := range order {
		out = append(out, best[k])
	}
	return out
}
