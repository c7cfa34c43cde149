package scenarios

// Reused stacks (Options.ReuseStacks): a long-lived worker process keeps
// its private pcscd from one scenario to the next. Isolation between
// scenarios is kept by what is NOT reused:
//   - cards: every scenario builds new card objects (fresh card state);
//     the previous ones are ejected, a slot gets a new card only once
//     pcscd reports it empty, and a scenario starts only once pcscd
//     reports the previous scenario's slots empty: pcscd sees every
//     removal and every insertion (the reader's event counter moves),
//     never a card that silently changed, and a scenario sees only its
//     own cards;
//   - PC/SC: each scenario establishes its own libpcsclite context and
//     releases it (with every card handle) when it ends; a handle from a
//     previous scenario is invalid (its card was removed, its context
//     released);
//   - a stack that died, or has fewer slots than a scenario needs, is
//     closed and a new one started (same directory, so the socket path
//     libpcsclite was bound to stays the same).
// See docs/DESIGN.md "Reused stacks".

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
)

// workerPool is set in a long-lived worker (runWorkerLoop) only.
var workerPool *stackPool

type stackPool struct {
	dir   string // fixed: libpcsclite binds the process to one socket path
	st    *stack.Stack
	inUse bool
	// The stack's slots are two halves used in turn (even and odd slots):
	// a scenario's cards go into the half the scenario before last used,
	// so the removal of the previous scenario's cards is noticed by pcscd
	// (one presence poll, vpcd.PollPeriod) while this one starts rather
	// than before.
	width int   // cards per half; 0: a stack too big to split, not reused
	half  int   // the half the next scenario uses
	used  []int // slots holding the current scenario's cards
	// ejected are the slots of the previous scenario's cards.
	ejected []int
}

func newStackPool() (*stackPool, error) {
	dir, err := os.MkdirTemp("", "cardharness-worker-")
	if err != nil {
		return nil, err
	}
	return &stackPool{dir: filepath.Join(dir, "stack")}, nil
}

func (p *stackPool) acquire(ctx context.Context, cards []vcard.Card, opts Options) (*stackHandle, error) {
	if p.inUse {
		return nil, errors.New("reused stack: already in use by this scenario")
	}
	need := max(1, len(cards))
	if p.st != nil && (p.st.Err() != nil || p.width < need) {
		p.discard()
	}
	if p.st == nil {
		width := max(need, 2)
		if 2*width > stack.MaxSlots { // too many cards for two halves: replaced next time
			width = 0
		}
		st, err := stack.Start(ctx, stack.Config{Dir: p.dir, Slots: max(2*width, need), Log: opts.Log, Pcscd: opts.Pcscd})
		if err != nil {
			return nil, err
		}
		p.st, p.width, p.half, p.ejected = st, width, 0, nil
	}
	// The halves interleave (card i in slot 2i or 2i+1), so that a
	// one-card scenario is always in pcscd's first reader entry, as on a
	// stack of its own: OpenSC's pkcs11-tool found no token when the only
	// card was in a later reader.
	var slots []int
	for i := range cards {
		slots = append(slots, 2*i+p.half)
	}
	if p.width == 0 {
		slots = slots[:0]
		for i := range cards {
			slots = append(slots, i)
		}
	}
	// The half was emptied a scenario ago; pcscd must have seen it.
	if err := p.st.WaitAbsent(ctx, slots...); err != nil {
		p.discard()
		return nil, err
	}
	for i, c := range cards {
		if _, err := p.st.Insert(slots[i], c); err != nil {
			p.discard()
			return nil, err
		}
	}
	if err := p.st.WaitPresent(ctx, slots...); err != nil {
		p.discard()
		return nil, err
	}
	// And the previous scenario's cards gone, also to pcscd (mostly
	// already, in the same polls): a reader that pcscd still shows
	// holding a card that left is a card a tool would try and fail.
	if err := p.st.WaitAbsent(ctx, p.ejected...); err != nil {
		p.discard()
		return nil, err
	}
	p.ejected = nil
	p.used = slots
	if err := pcsc.UseSocket(p.st.SocketPath()); err != nil {
		p.discard()
		return nil, err
	}
	client, err := pcsc.NewClient() // a fresh context per scenario
	if err != nil {
		p.discard()
		return nil, err
	}
	p.inUse = true
	h := &stackHandle{st: p.st, client: client, pool: p}
	for _, n := range slots {
		h.readers = append(h.readers, p.st.Slots()[n].Reader)
	}
	return h, nil
}

// release ejects the scenario's cards (pcscd notices at its next poll; the
// scenario after next waits for that, see acquire) and switches halves.
// Any PC/SC handle the scenario kept is to a removed card in a released
// context.
func (p *stackPool) release(h *stackHandle) {
	p.inUse = false
	for _, n := range p.used {
		if err := p.st.Eject(n); err != nil {
			p.discard()
			return
		}
	}
	p.ejected, p.used = p.used, nil
	p.half = 1 - p.half
}

func (p *stackPool) discard() {
	if p.st != nil {
		p.st.Close()
		p.st = nil
	}
	p.inUse = false
	p.used, p.ejected = nil, nil
}

func (p *stackPool) close() {
	p.discard()
	os.RemoveAll(filepath.Dir(p.dir))
}
