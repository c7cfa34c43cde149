package winhost

import (
	"context"
	"fmt"
	"slices"

	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
)

// API is the crypto API a process uses to reach the card. Base CSP (CAPI)
// and the Smart Card KSP (CNG) sit on the same minidriver but keep separate
// PIN caches, so a process that uses both is prompted once per API (§1.6,
// §2.1).
type API int

const (
	CAPI API = iota // CryptoAPI: Microsoft Base Smart Card Crypto Provider
	CNG             // CNG: Microsoft Smart Card Key Storage Provider
)

func (a API) String() string {
	switch a {
	case CNG:
		return "CNG"
	case Schannel:
		return "Schannel"
	}
	return "CAPI"
}

// Provider is the provider name CERT_KEY_PROV_INFO carries for keys
// reached through a.
func (a API) Provider() string {
	if a == CNG {
		return ProviderKSP
	}
	return ProviderCAPI
}

// ProcessOptions configure StartProcess.
type ProcessOptions struct {
	// API the process's CSP-level operations use (GenerateKeyPair,
	// InstallCertificate, DeleteContainer, ChangePIN, Signer).
	// AcquireCertificatePrivateKey chooses by its flags instead.
	API API
	// Silent makes every operation of the process silent (CRYPT_SILENT /
	// NCRYPT_SILENT_FLAG): a needed PIN prompt fails with
	// NTE_SILENT_CONTEXT.
	Silent bool
}

// Process is one Windows process with its own Base CSP / KSP instance
// (§2.1 "P"): card connections (card-handle cache), PIN caches per card and
// API, a data cache per card for SESSION_ONLY cards, and prompt counters.
type Process struct {
	h       *Host
	name    string
	opts    ProcessOptions
	service bool // survives logoff (CertPropSvc, lsass)
	exited  bool

	handles map[string]*cardHandle   // by reader
	cards   map[fs.CardID]*cardState // per card identity
	prompts map[API]int
	stats   Stats
}

// cardHandle is a process's connection to the card of one insertion.
type cardHandle struct {
	ins  *insertion
	conn *txnConn
	card *minidriver.Card
	// session is the per-process data cache of SESSION_ONLY cards: item
	// name → bytes, no freshness check, dropped on removal (§1.5, T15).
	session map[string][]byte
	// cardID is the cardid seen at the last transaction.
	cardID fs.CardID
	known  bool
}

// cardState is what a process remembers about a card identity: the
// cardcf it saw last (§2.2) and its PIN caches (§1.6).
type cardState struct {
	lastCf fs.CardCF
	known  bool
	pins   map[API]*pinEntry
}

// StartProcess starts a user process. Processes end at Exit, Logoff and
// Reboot.
func (h *Host) StartProcess(name string, opts ProcessOptions) *Process {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.newProcess(name, opts, false)
}

func (h *Host) newProcess(name string, opts ProcessOptions, service bool) *Process {
	p := &Process{h: h, name: name, opts: opts, service: service,
		handles: map[string]*cardHandle{}, cards: map[fs.CardID]*cardState{}, prompts: map[API]int{}}
	h.procs = append(h.procs, p)
	return p
}

// Name returns the process name.
func (p *Process) Name() string { return p.name }

// Exit ends the process: its connections close and its caches are gone.
func (p *Process) Exit() {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	p.exit()
}

func (p *Process) exit() {
	if p.exited {
		return
	}
	p.closeHandles()
	p.cards = map[fs.CardID]*cardState{}
	p.exited = true
	if i := slices.Index(p.h.procs, p); i >= 0 {
		p.h.procs = slices.Delete(p.h.procs, i, i+1)
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return p.exited
}

// Stats returns the process's counters.
func (p *Process) Stats() Stats {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return p.stats
}

// PINPrompts returns how many PIN prompts the process showed through api.
func (p *Process) PINPrompts(api API) int {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	return p.prompts[api]
}

// HasCachedPIN reports whether the process holds a usable cached PIN for
// the card in reader through api (a superseded session PIN does not
// count).
func (p *Process) HasCachedPIN(reader string, api API) bool {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	hd := p.handles[reader]
	if hd == nil || !hd.known || hd.ins != p.h.readers[reader] {
		return false
	}
	st := p.cards[hd.cardID]
	if st == nil || st.pins[api] == nil {
		return false
	}
	return !p.h.sessionPINs(hd.ins) || st.pins[api].session == hd.ins.sessionPIN
}

// count adds to the process's and the host's counters.
func (p *Process) count(f func(s *Stats)) {
	f(&p.stats)
	f(&p.h.stats)
}

func (p *Process) event(e Event) {
	e.Process = p.name
	p.h.event(e)
}

func (p *Process) closeHandles() {
	for r, hd := range p.handles {
		hd.conn.Close()
		delete(p.handles, r)
	}
}

// cardRemoved drops what removal invalidates (§1.5, §1.6).
func (p *Process) cardRemoved(reader string) {
	hd := p.handles[reader]
	if hd == nil {
		return
	}
	hd.conn.Close()
	delete(p.handles, reader)
	if hd.known && !p.h.knobs.PINCacheSurvivesRemoval {
		delete(p.cards, hd.cardID)
	}
}

func (p *Process) state(id fs.CardID) *cardState {
	st := p.cards[id]
	if st == nil {
		st = &cardState{pins: map[API]*pinEntry{}}
		p.cards[id] = st
	}
	return st
}

// handle returns the process's connection to the card in reader, opening
// it (CardAcquireContext) on first use in this insertion.
func (p *Process) handle(ctx context.Context, op, reader string) (*cardHandle, error) {
	if p.exited {
		return nil, fmt.Errorf("%s: %w", op, ErrProcessExited)
	}
	ins := p.h.readers[reader]
	if ins == nil {
		return nil, noCard(op, reader)
	}
	if hd := p.handles[reader]; hd != nil {
		if hd.ins == ins {
			return hd, nil
		}
		hd.conn.Close()
		delete(p.handles, reader)
	}
	t, err := ins.src()
	if err != nil {
		return nil, fmt.Errorf("%s: connect %q: %w", op, reader, err)
	}
	conn := &txnConn{Transport: t}
	card, err := minidriver.Acquire(ctx, conn, ins.opts)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: CardAcquireContext on %q: %w", op, reader, err)
	}
	hd := &cardHandle{ins: ins, conn: conn, card: card, session: map[string][]byte{}}
	p.handles[reader] = hd
	return hd, nil
}

// txnConn lets transactions nest: the minidriver client opens one per
// call, the host one per CSP operation around several calls (Base CSP runs
// each operation as one atomic transaction, docs/reference/minidriver-semantics.md §1.3).
// Only the outermost Begin/End reach the card.
type txnConn struct {
	pcsc.Transport
	depth int
}

func (c *txnConn) BeginTransaction(ctx context.Context) error {
	if c.depth == 0 {
		if tx, ok := c.Transport.(pcsc.Transactor); ok {
			if err := tx.BeginTransaction(ctx); err != nil {
				return err
			}
		}
	}
	c.depth++
	return nil
}

func (c *txnConn) EndTransaction(ctx context.Context) error {
	if c.depth == 0 {
		return nil
	}
	c.depth--
	if c.depth == 0 {
		if tx, ok := c.Transport.(pcsc.Transactor); ok {
			return tx.EndTransaction(ctx)
		}
	}
	return nil
}

func (c *txnConn) Close() error {
	c.depth = 0
	return c.Transport.Close()
}
