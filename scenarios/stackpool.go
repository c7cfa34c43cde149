package scenarios

// Reused stacks (Options.ReuseStacks): a long-lived worker process keeps
// its private stack (helper process, namespaces, directory) from one
// scenario to the next, and its libpcsclite, key caches and loaded code.
// Isolation between scenarios is kept by what is NOT reused:
//   - pcscd: every scenario gets a new one (stack.Restart), which knows
//     nothing of earlier cards, readers' events or handles;
//   - cards: every scenario builds new card objects (fresh card state),
//     in slots 0, 1, ... as on a stack of its own, so a scenario sees the
//     same reader names as without reuse;
//   - PC/SC: each scenario establishes its own libpcsclite context and
//     releases it when it ends (it could not outlive its pcscd anyway);
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
	slots := max(2, len(cards))
	if p.st != nil && (p.st.Err() != nil || len(p.st.Slots()) < slots) {
		p.discard()
	}
	if p.st == nil {
		st, err := stack.Start(ctx, stack.Config{Dir: p.dir, Slots: slots, Cards: cards, Log: opts.Log, Pcscd: opts.Pcscd})
		if err != nil {
			return nil, err
		}
		p.st = st
	} else if err := p.st.Restart(ctx, cards); err != nil {
		p.discard()
		return nil, err
	}
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
	for i := range cards {
		h.readers = append(h.readers, p.st.Slots()[i].Reader)
	}
	return h, nil
}

// release ends the scenario's use of the stack; its cards stay until the
// next scenario's Restart ejects them with its pcscd. Any PC/SC handle
// the scenario kept is in a released context.
func (p *stackPool) release(h *stackHandle) {
	p.inUse = false
}

func (p *stackPool) discard() {
	if p.st != nil {
		p.st.Close()
		p.st = nil
	}
	p.inUse = false
}

func (p *stackPool) close() {
	p.discard()
	os.RemoveAll(filepath.Dir(p.dir))
}
