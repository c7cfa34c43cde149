package winhost

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/cardharness/cardharness/harness/vclock"
)

// Certificate propagation (CertPropSvc), docs/reference/minidriver-semantics.md §2.5:
//
//   - Triggers: user logon (every inserted card) and card insertion while a
//     user is signed in. Writes to a card during an insertion session are
//     not noticed (T8): nothing here reacts to them.
//   - Asynchronous: the work runs Knobs.PropagationDelay (+ jitter) later on
//     the virtual clock; a card removed, or a user signed out, in between
//     cancels it.
//   - It reads every certificate of the card through the CSP
//     (PP_USER_CERTSTORE), through G unless
//     Knobs.PropagationReadsThroughCache is off, and adds each to HKCU\My
//     with "add, replace existing, inherit properties" and
//     CERT_KEY_PROV_INFO = (Knobs.PropagationProvider, cmapfile GUID, key
//     spec). It never removes anything.
//   - A certificate that carries CERT_ENROLLMENT_PROP_ID goes to REQUEST,
//     not My. A certificate read from a card carries properties only by
//     inheriting them from the store copy it replaces, so: if the REQUEST
//     store, or My, already holds it with an enrollment property, it is
//     filed into REQUEST [I].
//   - Root propagation (msroots) and its clean-up policy are not modelled.

// schedulePropagation arms propagation for one insertion. Lock held.
func (h *Host) schedulePropagation(ctx context.Context, ins *insertion, trigger string) {
	if !h.knobs.PropagationEnabled || h.user == nil {
		return
	}
	d := h.knobs.PropagationDelay
	if j := h.knobs.PropagationJitter; j > 0 {
		d += time.Duration(h.rng.Int64N(int64(j) + 1))
	}
	logon := h.logonSeq
	actx := context.WithoutCancel(ctx)
	reader, id := ins.reader, ins.id
	var tm *vclock.Timer
	tm = h.clock.AfterFunc(d, func() { h.propagate(actx, reader, id, logon, trigger, tm) })
	h.timers = append(h.timers, tm)
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
	certs, errs := t.certificates(h.knobs.PropagationProvider)
	t.end()
	for _, err := range errs {
		p.event(Event{Kind: EvPropagateErr, Reader: reader, Detail: err.Error()})
	}
	for _, c := range certs {
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
