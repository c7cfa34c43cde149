package winhost

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// The write path through Base CSP / the KSP (docs/reference/minidriver-semantics.md
// §2.3): inside one transaction, authenticate the user PIN, make the
// minidriver calls with correct bumps (BumpCorrect: the right counter,
// before the change, in the same transaction), then read cardcf back and
// update G with the new snapshot. Out-of-band writers are not modelled
// here: a scenario uses the minidriver client directly with a faulty
// minidriver.Bump (§2.4).

// bump is the policy Base CSP writes with: correct, except that it does
// not write cardcf on a card that says CP_CARD_READ_ONLY (§1.5).
func (t *txn) bump() minidriver.Bump {
	if t.hd.ins.opts.ReadOnly {
		return minidriver.BumpNone
	}
	return minidriver.BumpCorrect
}

// Container describes a key container on a card as a host sees it.
type Container struct {
	Reader    string
	CardID    fs.CardID
	Index     int
	GUID      string
	KeySpec   fs.KeySpec
	Bits      int
	Default   bool
	PublicKey *rsa.PublicKey
}

// GenerateRequest describes a new key container.
type GenerateRequest struct {
	// Reader: "" for the first reader (by name) holding a card.
	Reader string
	// GUID names the container; "" for a new GUID from the host seed (a
	// Windows client names containers with GUIDs, §3.1 step 2).
	GUID string
	// KeySpec: 0 for AT_KEYEXCHANGE.
	KeySpec fs.KeySpec
	// Bits: 0 for 2048.
	Bits int
	// Default asks for the default flag even if another container has it;
	// without it the container is default only if no valid default exists
	// (MS-FS flag rules).
	Default bool
	// Silent: no PIN prompt (NTE_SILENT_CONTEXT if one is needed).
	Silent bool
}

func opName(api API, capi, cng string) string {
	if api == CNG {
		return cng
	}
	return capi
}

// pickReader resolves "" to the first reader holding a card.
func (h *Host) pickReader(op, reader string) (string, error) {
	if reader != "" {
		return reader, nil
	}
	rs := h.insertedReaders()
	if len(rs) == 0 {
		return "", newErr(op, winerr.SCARD_E_NO_SMARTCARD, errors.New("no card is inserted"))
	}
	return rs[0], nil
}

// GenerateKeyPair creates a container and generates its key on the card
// (CryptAcquireContext(CRYPT_NEWKEYSET)+CryptGenKey, or
// NCryptCreatePersistedKey+NCryptFinalizeKey), §3.1 day 0: the cmapfile
// and CardQueryFreeSpace are checked first — no free slot is
// NTE_TOKEN_KEYSET_STORAGE_FULL (T12) —, a container of the same name is
// NTE_EXISTS; then the PIN, then CardCreateContainer with correct bumps,
// then G is refreshed.
func (p *Process) GenerateKeyPair(ctx context.Context, req GenerateRequest) (Container, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	op := opName(p.opts.API, "CryptGenKey", "NCryptFinalizeKey")
	if p.exited {
		return Container{}, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	if req.KeySpec == 0 {
		req.KeySpec = fs.AT_KEYEXCHANGE
	}
	if req.Bits == 0 {
		req.Bits = 2048
	}
	if req.GUID == "" {
		req.GUID = p.h.newGUID()
	}
	silent := req.Silent || p.opts.Silent
	t, err := p.pickCardForNewContainer(ctx, op, req.Reader, req.GUID, silent)
	if err != nil {
		return Container{}, err
	}
	defer t.end()
	reader := t.reader
	var idx int
	if err := t.authenticate(p.opts.API, silent); err != nil {
		return Container{}, err
	}
	idx, err = t.card().CreateContainer(ctx, minidriver.ContainerSpec{GUID: req.GUID, KeySpec: req.KeySpec, Bits: req.Bits, Default: req.Default}, t.bump())
	if errors.Is(err, minidriver.ErrCardFull) {
		return Container{}, newErr(op, winerr.NTE_TOKEN_KEYSET_STORAGE_FULL, err)
	}
	if err != nil {
		return Container{}, newErr(op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
	}
	p.event(Event{Kind: EvCardWrite, Reader: reader, Item: op, Detail: fmt.Sprintf("container %d %q", idx, req.GUID)})
	if err := t.refresh([]item{fileItem(t.knobs(), "mscp/cmapfile"), containerInfoItem(idx)}, certItems(t.knobs(), idx)); err != nil {
		return Container{}, err
	}
	return t.container(idx)
}

// pickCardForNewContainer is Base CSP's card selection for a new container
// (Microsoft's "Smart Card Architecture", "Create a new container (no
// reader specified)"; ledger row H-CSP-FULLCARD): the inserted cards are
// tried in order (the process's known cards first); a card that already
// has the container, or whose CardQueryFreeSpace shows no room, is
// skipped. No suitable card: the user is asked to insert one (an
// InsertCardError), or, silent, Knobs.FullCardSilentError when some card
// was full (NTE_EXISTS when one had the name). A named reader limits the
// search to its card. The transaction returned is open on the chosen card.
func (p *Process) pickCardForNewContainer(ctx context.Context, op, reader, guid string, silent bool) (*txn, error) {
	var order []string
	if reader != "" {
		if p.h.readers[reader] == nil {
			return nil, noCard(op, reader)
		}
		order = []string{reader}
	} else {
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
		if len(order) == 0 {
			return nil, newErr(op, winerr.SCARD_E_NO_SMARTCARD, errors.New("no card is inserted"))
		}
	}
	var full, exists error
	for _, r := range order {
		t, err := p.begin(ctx, op, r)
		if err != nil {
			return nil, err
		}
		idx, _, err := t.find(guid)
		if err != nil {
			t.end()
			return nil, err
		}
		if idx >= 0 {
			t.end()
			exists = newErr(op, winerr.NTE_EXISTS, fmt.Errorf("container %q exists (index %d) on the card in %q", guid, idx, r))
			continue
		}
		free, err := t.card().QueryFreeSpace(ctx)
		if err != nil {
			t.end()
			return nil, newErr(op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
		}
		if free.ContainersAvailable == 0 {
			t.end()
			p.event(Event{Kind: EvCardSkipped, Reader: r, Detail: fmt.Sprintf("CardQueryFreeSpace: 0 of %d containers available", free.MaxContainers)})
			full = fmt.Errorf("CardQueryFreeSpace on the card in %q: 0 of %d containers available", r, free.MaxContainers)
			continue
		}
		return t, nil
	}
	if exists != nil && full == nil {
		return nil, exists
	}
	if silent {
		return nil, newErr(op, p.h.knobs.FullCardSilentError, full)
	}
	p.count(func(s *Stats) { s.InsertCardDialogs++ })
	p.event(Event{Kind: EvInsertDialog, Item: guid, Detail: "no inserted card has room for a new container"})
	// The dialog asks for another card: the one inserted is full.
	return nil, fmt.Errorf("%w: every inserted card is full (%v)", &InsertCardError{Op: op, ContainerGUID: guid}, full)
}

// certItems are the two certificate files a container index can have.
func certItems(k *Knobs, idx int) []item {
	return []item{
		certItem(k, idx, fs.AT_KEYEXCHANGE),
		certItem(k, idx, fs.AT_SIGNATURE),
	}
}

// container describes container idx through the read path.
func (t *txn) container(idx int) (Container, error) {
	m, err := t.cmap()
	if err != nil {
		return Container{}, err
	}
	if !m.Valid(idx) {
		return Container{}, newErr(t.op, winerr.NTE_BAD_KEYSET, fmt.Errorf("no valid container at index %d", idx))
	}
	info, err := t.containerInfo(idx)
	if err != nil {
		return Container{}, err
	}
	return Container{Reader: t.reader, CardID: t.cardID, Index: idx, GUID: m[idx].GUID, KeySpec: info.spec,
		Bits: info.bits, Default: m[idx].IsDefault(), PublicKey: info.pub}, nil
}

// writeCertificate writes a certificate file under the host's naming
// (Knobs.CertFileNaming), creating the file if needed, with Base CSP's
// bump policy.
func (t *txn) writeCertificate(idx int, spec fs.KeySpec, der []byte) error {
	if t.knobs().CertFileNaming == CertNamesHex {
		return t.card().WriteCertificate(t.ctx, idx, spec, der, t.bump())
	}
	data, err := fs.EncodeCert(der)
	if err != nil {
		return err
	}
	path := certPath(t.knobs(), idx, spec)
	err = t.card().WriteFile(t.ctx, path, data, t.bump())
	if errors.Is(err, winerr.SCARD_E_FILE_NOT_FOUND) {
		if err := t.card().CreateFile(t.ctx, path, t.bump()); err != nil {
			return err
		}
		err = t.card().WriteFile(t.ctx, path, data, t.bump())
	}
	return err
}

// InstallOptions refine InstallCertificate.
type InstallOptions struct {
	// ContainerGUID names the container; "" for the container whose public
	// key is the certificate's.
	ContainerGUID string
	// CardOnly skips adding the certificate to My (by default it is added
	// with CERT_KEY_PROV_INFO, which needs a signed-in user).
	CardOnly bool
	// SkipKeyCheck writes the certificate even if its public key is not
	// the container's: a faulty installer (T14). The correct installer
	// refuses with NTE_BAD_PUBLIC_KEY.
	SkipKeyCheck bool
	// Silent: no PIN prompt.
	Silent bool
}

// InstallCertificate writes cert into its container's certificate file
// (kxcNN/kscNN by key spec; CryptSetKeyParam(KP_CERTIFICATE) /
// NCryptSetProperty(NCRYPT_CERTIFICATE_PROPERTY)) with correct bumps, and
// adds it to the user's My store with CERT_KEY_PROV_INFO naming the
// process's provider, the container and its key spec (§3.1 day N, T8's
// "explicit store add", T10's correct variant). The certificate's key is
// checked against the container's first (T14).
func (p *Process) InstallCertificate(ctx context.Context, cert *x509.Certificate, opts InstallOptions) (StoreCert, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return p.installCertificate(ctx, cert, opts, "InstallCertificate", nil)
}

// installCertificate is InstallCertificate; props, if set, are the store
// properties to give the My copy instead of the process's own provider
// info (InstallResponse copies the request dummy's).
func (p *Process) installCertificate(ctx context.Context, cert *x509.Certificate, opts InstallOptions, source string, props *StoreCert) (StoreCert, error) {
	op := opName(p.opts.API, "CryptSetKeyParam(KP_CERTIFICATE)", "NCryptSetProperty(NCRYPT_CERTIFICATE_PROPERTY)")
	if p.exited {
		return StoreCert{}, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	if !opts.CardOnly && p.h.user == nil {
		return StoreCert{}, fmt.Errorf("%s: %w", op, ErrNotSignedIn)
	}
	certPub, _ := cert.PublicKey.(*rsa.PublicKey)
	silent := opts.Silent || p.opts.Silent
	var pi KeyProvInfo
	body := func(t *txn, idx int, m fs.ContainerMap) error {
		info, err := t.containerInfo(idx)
		if err != nil {
			return err
		}
		if !opts.SkipKeyCheck && (certPub == nil || !certPub.Equal(info.pub)) {
			return newErr(op, winerr.NTE_BAD_PUBLIC_KEY, fmt.Errorf("the certificate's public key is not the key of container %q (index %d)", m[idx].GUID, idx))
		}
		if err := t.authenticate(p.opts.API, silent); err != nil {
			return err
		}
		if err := t.writeCertificate(idx, info.spec, cert.Raw); err != nil {
			return newErr(op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
		}
		p.event(Event{Kind: EvCardWrite, Reader: t.reader, Item: op, Detail: fmt.Sprintf("%s for container %d %q", certPath(t.knobs(), idx, info.spec), idx, m[idx].GUID)})
		pi = KeyProvInfo{Provider: p.opts.API.Provider(), Container: m[idx].GUID, KeySpec: info.spec}
		return t.refresh([]item{certItem(t.knobs(), idx, info.spec)}, nil)
	}
	var found bool
	var err error
	guid := opts.ContainerGUID
	if guid != "" {
		found, err = p.withContainer(ctx, op, guid, body)
	} else if certPub != nil {
		found, err = p.withKey(ctx, op, certPub, body)
		guid = "(the certificate's key)"
	}
	if !found {
		return StoreCert{}, p.containerMissing(op, guid, silent, err)
	}
	if err != nil {
		return StoreCert{}, err
	}
	sc := StoreCert{Cert: cert, ProvInfo: &pi, Source: source}
	if props != nil {
		if props.ProvInfo != nil {
			sc.ProvInfo = props.ProvInfo
		}
		sc.Enrollment = props.Enrollment
	}
	if !opts.CardOnly {
		p.h.user.my.add(sc, AddReplaceInheritProperties)
	}
	return sc.clone(), nil
}

// withKey is withContainer for the container whose public key is pub.
func (p *Process) withKey(ctx context.Context, op string, pub *rsa.PublicKey, f func(t *txn, idx int, m fs.ContainerMap) error) (bool, error) {
	var firstErr error
	for _, r := range p.h.insertedReaders() {
		t, err := p.begin(ctx, op, r)
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		m, err := t.cmap()
		if err != nil {
			t.end()
			firstErr = cmpErr(firstErr, err)
			continue
		}
		for i := range m {
			if !m.Valid(i) {
				continue
			}
			if info, err := t.containerInfo(i); err == nil && info.pub.Equal(pub) {
				err = f(t, i, m)
				t.end()
				return true, err
			}
		}
		t.end()
	}
	return false, firstErr
}

// DeleteOptions refine DeleteContainer.
type DeleteOptions struct {
	// MoveDefaultTo names the container that takes the default flag if
	// the deleted one had it, in the same cmapfile write (renewal, §3.2
	// step 5). "": Base CSP picks one by Knobs.NewDefaultOnDelete (an
	// out-of-band writer that deletes the default leaves none, T11).
	MoveDefaultTo string
	// Silent: no PIN prompt.
	Silent bool
}

// DeleteContainer deletes a container as Base CSP does for
// CryptAcquireContext(CRYPT_DELETEKEYSET) / NCryptDeleteKey (§3.2 step 5,
// rollback): its certificate files, then CardDeleteContainer, which zeroes
// the cmapfile record and moves the default flag if asked; correct bumps;
// G refreshed. A container no inserted card holds fails like an open
// (silent code or InsertCardError). Certificates in the stores are left
// alone: removing them is the client's job (T9, S8).
func (p *Process) DeleteContainer(ctx context.Context, guid string, opts DeleteOptions) error {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return p.deleteContainer(ctx, guid, opts, false)
}

// deleteContainer is DeleteContainer; with missingOK a container no card
// holds is success (an idempotent rollback).
func (p *Process) deleteContainer(ctx context.Context, guid string, opts DeleteOptions, missingOK bool) error {
	op := opName(p.opts.API, "CryptAcquireContext(CRYPT_DELETEKEYSET)", "NCryptDeleteKey")
	if p.exited {
		return fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	silent := opts.Silent || p.opts.Silent
	found, err := p.withContainer(ctx, op, guid, func(t *txn, idx int, m fs.ContainerMap) error {
		move := -1
		if opts.MoveDefaultTo != "" {
			for j := range m {
				if m.Valid(j) && strings.EqualFold(m[j].GUID, opts.MoveDefaultTo) {
					move = j
				}
			}
			if move < 0 {
				return newErr(op, winerr.NTE_BAD_KEYSET, fmt.Errorf("container %q to take the default flag is not on the card", opts.MoveDefaultTo))
			}
		}
		if move < 0 && m[idx].IsDefault() {
			move = newDefault(p.h.knobs.NewDefaultOnDelete, m, idx)
		}
		if err := t.authenticate(p.opts.API, silent); err != nil {
			return err
		}
		for _, spec := range []fs.KeySpec{fs.AT_KEYEXCHANGE, fs.AT_SIGNATURE} {
			err := t.card().DeleteFile(ctx, certPath(t.knobs(), idx, spec), t.bump())
			if err != nil && !errors.Is(err, winerr.SCARD_E_FILE_NOT_FOUND) {
				return newErr(op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
			}
		}
		if err := t.card().DeleteContainer(ctx, idx, minidriver.DeleteOptions{MoveDefaultTo: move}, t.bump()); err != nil {
			return newErr(op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
		}
		p.event(Event{Kind: EvCardWrite, Reader: t.reader, Item: op, Detail: fmt.Sprintf("container %d %q", idx, guid)})
		return t.refresh([]item{fileItem(t.knobs(), "mscp/cmapfile")}, append(certItems(t.knobs(), idx), containerInfoItem(idx)))
	})
	if !found {
		if missingOK && err == nil {
			return nil
		}
		return p.containerMissing(op, guid, silent, err)
	}
	return err
}

// newDefault is the container Base CSP makes the default when it deletes
// the default container idx without being told which ("Deleting the
// default container causes a new default container to be selected
// arbitrarily", Microsoft's "Smart Card Architecture", "Delete a
// container"; ledger row H-CSP-NEWDEFAULT); -1: none.
func newDefault(pol NewDefaultPolicy, m fs.ContainerMap, idx int) int {
	pick := -1
	for j := range m {
		if j == idx || !m.Valid(j) {
			continue
		}
		switch pol {
		case NewDefaultFirstValid:
			return j
		case NewDefaultLastValid:
			pick = j
		}
	}
	return pick
}

// ChangePIN is CardChangeAuthenticator through Base CSP: the old PIN is
// verified, bPinsFreshness bumped (Knobs.ChangePINBumpsPins; never on a
// read-only card), the PIN changed. Every PIN this process cached for the
// card is dropped (MSPIN: changing the PIN must invalidate session
// tokens) and the new PIN is cached for the process's API. Other processes
// drop theirs at their next transaction because the counter moved (T6).
func (p *Process) ChangePIN(ctx context.Context, reader, oldPIN, newPIN string) error {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	const op = "CardChangeAuthenticator"
	if p.exited {
		return fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	reader, err := p.h.pickReader(op, reader)
	if err != nil {
		return err
	}
	t, err := p.begin(ctx, op, reader)
	if err != nil {
		return err
	}
	defer t.end()
	pol := t.bump()
	if !p.h.knobs.ChangePINBumpsPins {
		pol = minidriver.BumpNone
	}
	t.authed = true // the old PIN authenticates: deauthenticate at the end either way
	if err := t.card().ChangePIN(ctx, oldPIN, newPIN, pol); err != nil {
		return newErr(op, cardCode(err, winerr.SCARD_W_WRONG_CHV), err)
	}
	p.event(Event{Kind: EvCardWrite, Reader: reader, Item: op})
	clear(t.st.pins)
	e := &pinEntry{pin: newPIN}
	if p.h.sessionPINs(t.hd.ins) {
		t.hd.ins.sessionPIN++
		e.session = t.hd.ins.sessionPIN
	}
	t.st.pins[p.opts.API] = e
	return t.refresh([]item{pinInfoItem()}, nil)
}
