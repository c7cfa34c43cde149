package scenarios

// Stack handles: a scenario's private pcscd and the PC/SC client it uses.

import (
	"context"

	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
)

// stackHandle is a scenario's private pcscd with its PC/SC client.
type stackHandle struct {
	st      *stack.Stack
	client  *pcsc.Client
	readers []string
	// pool is set for a reused stack: close gives the stack back instead
	// of stopping it.
	pool *stackPool
}

func startStack(ctx context.Context, cards []vcard.Card, opts Options) (*stackHandle, error) {
	if workerPool != nil {
		return workerPool.acquire(ctx, cards, opts) // stackpool.go
	}
	st, err := stack.Start(ctx, stack.Config{Cards: cards, Slots: max(2, len(cards)), Log: opts.Log, Pcscd: opts.Pcscd})
	if err != nil {
		return nil, err
	}
	if err := pcsc.UseSocket(st.SocketPath()); err != nil {
		st.Close()
		return nil, err
	}
	client, err := pcsc.NewClient()
	if err != nil {
		st.Close()
		return nil, err
	}
	h := &stackHandle{st: st, client: client}
	for i := range cards {
		h.readers = append(h.readers, st.Slots()[i].Reader)
	}
	return h, nil
}

func (h *stackHandle) connect(ctx context.Context, reader string) (pcsc.Transport, error) {
	return h.client.Connect(ctx, reader)
}

func (h *stackHandle) close() {
	if h.client != nil {
		h.client.Close()
	}
	if h.pool != nil {
		h.pool.release(h)
		return
	}
	h.st.Close()
}

// toolStackFor gives a tool step in direct mode a stack of its own holding
// the same in-process card (this process never binds libpcsclite to it:
// only the tool, a subprocess, talks to that pcscd).
func (e *env) toolStackFor(card vcard.Card) ([]string, error) {
	if e.stack == nil {
		st, err := stack.Start(e.ctx, stack.Config{Cards: []vcard.Card{card}, Slots: 2, Log: e.opts.Log, Pcscd: e.opts.Pcscd})
		if err != nil {
			return nil, err
		}
		e.stack = &stackHandle{st: st}
	}
	return e.stack.st.Env(), nil
}
