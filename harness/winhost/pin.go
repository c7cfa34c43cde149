package winhost

import (
	"errors"
	"fmt"

	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// PromptInfo describes a PIN prompt.
type PromptInfo struct {
	Host    string
	Process string
	API     API
	Reader  string
	CardID  fs.CardID
}

// Prompter answers a PIN prompt: the PIN the user types, or ok=false for
// Cancel.
type Prompter func(PromptInfo) (pin string, ok bool)

// pinEntry is one cached PIN (Base CSP's PinCacheNormal: per process, per
// card, per logon; the KSP keeps its own, §1.6). session is the session-PIN
// generation it stands for (Knobs.SessionPINs).
type pinEntry struct {
	pin     string
	session uint64
}

// authenticate verifies the user PIN for this transaction through api's
// PIN cache (docs/reference/minidriver-semantics.md §1.6):
//
//   - PIN_INFO is read through the cache first (it tells Base CSP the cache
//     policy; it is covered by bPinsFreshness).
//   - A cached PIN is presented without prompting. Under
//     Knobs.SessionPINs a cached session PIN superseded by a newer one
//     (another API or process prompted since) is discarded first: the card
//     honours only the latest session PIN [S MSDG], so the cache is
//     invalid and the user is prompted again (the "PIN battle") [I: the
//     model does not spend a card try on it].
//   - A rejected cached PIN (changed elsewhere without a bPinsFreshness
//     bump, T6/T7) fails the operation with SCARD_W_WRONG_CHV — the try is
//     spent on the card — and is dropped if Knobs.DropPINOnWrongPIN.
//   - Without a usable cached PIN: silent → NTE_SILENT_CONTEXT; otherwise
//     one prompt (counted host-wide and per process and API), answered by
//     the host's user; Cancel → SCARD_E_CANCELLED; a wrong answer →
//     SCARD_W_WRONG_CHV. A PIN that works is cached for api.
func (t *txn) authenticate(api API, silent bool) error {
	if t.authed {
		return nil
	}
	if _, err := t.get(pinInfoItem()); err != nil {
		return newErr(t.op, cardCode(err, winerr.SCARD_F_INTERNAL_ERROR), err)
	}
	p, h, k := t.p, t.p.h, t.knobs()
	ins := t.hd.ins
	if e := t.st.pins[api]; e != nil && h.sessionPINs(ins) && e.session != ins.sessionPIN {
		delete(t.st.pins, api)
		p.event(Event{Kind: EvDropPINCache, Reader: t.reader, Detail: api.String() + ": session PIN superseded"})
	}
	if e := t.st.pins[api]; e != nil {
		err := t.card().AuthenticatePIN(t.ctx, e.pin)
		if err == nil {
			t.authed = true
			return nil
		}
		if _, wrong := minidriver.IsWrongPIN(err); (wrong || errors.Is(err, winerr.SCARD_W_CHV_BLOCKED)) && k.DropPINOnWrongPIN {
			delete(t.st.pins, api)
			p.event(Event{Kind: EvDropPINCache, Reader: t.reader, Detail: api.String() + ": cached PIN rejected"})
		}
		return newErr(t.op, cardCode(err, winerr.SCARD_W_WRONG_CHV), fmt.Errorf("cached %v PIN: %w", api, err))
	}
	if silent {
		return newErr(t.op, winerr.NTE_SILENT_CONTEXT, fmt.Errorf("a PIN is needed and the %v context is silent", api))
	}
	p.count(func(s *Stats) { s.PINPrompts++ })
	p.prompts[api]++
	p.event(Event{Kind: EvPINPrompt, Reader: t.reader, Detail: api.String()})
	pin, ok := h.userPIN, true
	if h.prompter != nil {
		pin, ok = h.prompter(PromptInfo{Host: h.name, Process: p.name, API: api, Reader: t.reader, CardID: t.cardID})
	}
	if !ok {
		return newErr(t.op, winerr.SCARD_E_CANCELLED, errors.New("the user cancelled the PIN prompt"))
	}
	if err := t.card().AuthenticatePIN(t.ctx, pin); err != nil {
		return newErr(t.op, cardCode(err, winerr.SCARD_W_WRONG_CHV), fmt.Errorf("PIN typed at the prompt: %w", err))
	}
	t.authed = true
	e := &pinEntry{pin: pin}
	if h.sessionPINs(ins) {
		ins.sessionPIN++
		e.session = ins.sessionPIN
	}
	t.st.pins[api] = e
	if k.SingleTokenPINCache {
		// One session token per card shared by the TLS stack and the
		// smart-card CSPs: this PIN overwrites the other side's (Windows
		// 7, tls.go). Base CSP and the KSP keep theirs (H-PIN-SESSION).
		for a := range t.st.pins {
			if (a == Schannel) != (api == Schannel) {
				delete(t.st.pins, a)
				p.event(Event{Kind: EvDropPINCache, Reader: t.reader, Detail: a.String() + ": overwritten by " + api.String() + " (single session-token cache)"})
			}
		}
	}
	return nil
}

// sessionPINs reports whether PINs for the card of ins are session PINs:
// the host profile uses them (Knobs.SessionPINs) and the card declares
// them (minidriver.Options.SessionPINs, CP_CARD_PIN_STRENGTH_VERIFY);
// ledger row H-PIN-SESSION.
func (h *Host) sessionPINs(ins *insertion) bool {
	return h.knobs.SessionPINs && ins != nil && ins.opts.SessionPINs
}
