package winhost

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cardharness/cardharness/harness/vclock"
)

// Certificate propagation (CertPropSvc), docs/reference/minidriver-semantics.md §2.5 and
// Microsoft's "Certificate Propagation Service" page (ledger rows
// H-PROP-TRIGGERS, H-PROP-DELAY, H-PROP-PROVIDER, H-PROP-REQUEST):
//
//   - Triggers: user logon (the SCM notifies CertPropSvc, which starts
//     monitoring the session's cards), card insertion while a user is signed
//     in ("CertPropSvc reads all certificates from all inserted smart
//     cards"), and a restart of the service by an administrator
//     (RestartCertPropService), which starts monitoring again as at logon.
//     Writes to a card during an insertion session are not noticed (T8).
//   - Asynchronous: each card is read PropagationDelay + jitter + an
//     exponential tail (host seed) after the trigger, plus
//     PropagationPerReader for each card handled before it, capped at
//     PropagationMaxDelay; a card removed, or a user signed out, in
//     between cancels it.
//   - It reads every certificate of the card through the CSP
//     (PP_USER_CERTSTORE), through G unless
//     Knobs.PropagationReadsThroughCache is off, and adds each to HKCU\My
//     with CERT_STORE_ADD_REPLACE_EXISTING_INHERIT_PROPERTIES and
//     CERT_KEY_PROV_INFO = (the provider of Knobs.PropagationProviderRule,
//     cmapfile GUID, key spec). It never removes anything.
//   - A certificate that carries the enrollment property goes to REQUEST,
//     not My, on any host: CertEnroll's request dummy on the card carries
//     it as an extension (enrollmentExtension); a certificate whose store
//     copy carries CERT_ENROLLMENT_PROP_ID is filed there too.
//   - Root propagation (msroots) and its clean-up policy are not modelled.

// propagationProvider is the provider propagation records for cert
// (KB5073121 "Guidance for certificate handling for Smart Card propagated
// certificates", Summary). Lock held.
func (h *Host) propagationProvider(cert *x509.Certificate) string {
	_, rsaKey := cert.PublicKey.(*rsa.PublicKey)
	switch {
	case !rsaKey:
		return ProviderKSP
	case h.knobs.PropagationProviderRule == ProviderCSPForRSA, h.knobs.PropagationCSPOverrideForRSA:
		return ProviderCAPI
	}
	return ProviderKSP
}

// propagationDelay draws one delay of the delay model for the card handled
// after `before` others. Lock held.
func (h *Host) propagationDelay(before int) time.Duration {
	return h.knobs.PropagationDelaySample(h.propRng, before)
}

// PropagationDelaySample draws one propagation delay from the model the
// knobs describe (ledger row H-PROP-DELAY): PropagationDelay, plus a
// uniform 0..PropagationJitter, plus an exponential tail of mean
// PropagationTail, plus PropagationPerReader for each of the `before`
// cards CertPropSvc handles first, capped at PropagationMaxDelay;
// rounded to the millisecond.
func (k Knobs) PropagationDelaySample(r *rand.Rand, before int) time.Duration {
	d := k.PropagationDelay
	if k.PropagationJitter > 0 {
		d += time.Duration(r.Int64N(int64(k.PropagationJitter) + 1))
	}
	if k.PropagationTail > 0 {
		d += time.Duration(r.ExpFloat64() * float64(k.PropagationTail))
	}
	d += time.Duration(before) * k.PropagationPerReader
	if k.PropagationMaxDelay > 0 && d > k.PropagationMaxDelay {
		d = k.PropagationMaxDelay
	}
	return d.Round(time.Millisecond)
}

// schedulePropagationAll arms propagation for every inserted card, one
// after the other. Lock held.
func (h *Host) schedulePropagationAll(ctx context.Context, trigger string) {
	for i, r := range h.insertedReaders() {
		h.schedulePropagation(ctx, h.readers[r], trigger, i)
	}
}

// schedulePropagation arms propagation for one insertion. Lock held.
func (h *Host) schedulePropagation(ctx context.Context, ins *insertion, trigger string, before int) {
	if !h.knobs.PropagationEnabled || h.user == nil || !h.certpropRunning {
		return
	}
	d := h.propagationDelay(before)
	logon := h.logonSeq
	actx := context.WithoutCancel(ctx)
	reader, id := ins.reader, ins.id
	var tm *vclock.Timer
	tm = h.clock.AfterFunc(d, func() { h.propagate(actx, reader, id, logon, trigger, tm) })
	h.timers = append(h.timers, tm)
	h.event(Event{Kind: EvPropagateScheduled, Reader: reader, Detail: fmt.Sprintf("%s, in %v", trigger, d)})
}

// RestartCertPropService stops and starts the Certificate Propagation
// service (an administrator's action): pending propagations are dropped
// and, if a user is signed in, every inserted card is propagated again as
// at logon.
func (h *Host) RestartCertPropService(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopTimers()
	h.certpropRunning = true
	h.event(Event{Kind: EvCertPropRestart})
	if h.user != nil {
		h.schedulePropagationAll(ctx, "CertPropSvc restart")
	}
}

// StopCertPropService stops the Certificate Propagation service until
// RestartCertPropService: nothing is propagated meanwhile.
func (h *Host) StopCertPropService() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopTimers()
	h.certpropRunning = false
	h.event(Event{Kind: EvCertPropRestart, Detail: "stopped"})
}

// stopTimers cancels pending propagations. Lock held.
func (h *Host) stopTimers() {
	for _, tm := range h.timers {
		tm.Stop()
	}
	h.timers = nil
}

// PendingPropagations is the number of scheduled propagations that have
// not run.
func (h *Host) PendingPropagations() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.timers)
}

func (h *Host) propagate(ctx context.Context, reader string, insID, logon uint64, trigger string, tm *vclock.Timer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := slices.Index(h.timers, tm); i >= 0 {
		h.timers = slices.Delete(h.timers, i, i+1)
	}
	if h.user == nil || h.logonSeq != logon {
		return
	}
	if ins := h.readers[reader]; ins == nil || ins.id != insID {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, asyncTimeout)
	defer cancel()
	p := h.certprop
	t, err := p.begin(ctx, "CertPropSvc ("+trigger+")", reader)
	if err != nil {
		p.event(Event{Kind: EvPropagateErr, Reader: reader, Detail: err.Error()})
		return
	}
	t.bypass = !h.knobs.PropagationReadsThroughCache
	certs, errs := t.certificates("")
	t.end()
	for _, err := range errs {
		p.event(Event{Kind: EvPropagateErr, Reader: reader, Detail: err.Error()})
	}
	for _, c := range certs {
		c.ProvInfo.Provider = h.propagationProvider(c.Cert)
		store := h.addPropagated(c)
		p.event(Event{Kind: EvPropagate, Reader: reader, Item: Thumbprint(c.Cert), Detail: fmt.Sprintf("%s (%s, container %q)", store, c.Cert.Subject.CommonName, c.ProvInfo.Container)})
	}
}

// addPropagated files one card certificate into the user's stores. Lock
// held.
func (h *Host) addPropagated(c CardCertificate) StoreName {
	u := h.user
	pi := c.ProvInfo
	sc := StoreCert{Cert: c.Cert, ProvInfo: &pi, Source: "propagation"}
	thumb := Thumbprint(c.Cert)
	if e, ok := enrollmentOf(c.Cert); ok {
		sc.Enrollment = &e
		u.my.delete(thumb)
		u.request.add(sc, AddReplaceInheritProperties)
		return StoreRequest
	}
	if i := u.request.index(thumb); i >= 0 && u.request.certs[i].Enrollment != nil {
		u.request.add(sc, AddReplaceInheritProperties)
		return StoreRequest
	}
	if i := u.my.index(thumb); i >= 0 && u.my.certs[i].Enrollment != nil {
		sc.Enrollment = u.my.certs[i].Enrollment
		u.my.delete(thumb)
		u.request.add(sc, AddReplaceInheritProperties)
		return StoreRequest
	}
	u.my.add(sc, AddReplaceInheritProperties)
	return StoreMy
}
