package winhost

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/cardharness/cardharness/harness/vclock"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/winerr"
)

// DefaultStart is where a host's clock starts when Config.Clock is nil.
var DefaultStart = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// asyncTimeout bounds the card I/O of work the host does on its own
// (certificate propagation) when the virtual clock fires it.
const asyncTimeout = 30 * time.Second

// Config configures New.
type Config struct {
	// Name names the host in events and prompts ("HOST" if empty).
	Name string
	// Clock is the virtual clock; nil: a new clock at DefaultStart.
	// Hosts that share a scenario share a clock.
	Clock *vclock.Clock
	// Knobs; nil: DefaultKnobs().
	Knobs *Knobs
	// Seed fixes the host's random choices: container GUIDs, certificate
	// serial numbers of request dummies, propagation jitter.
	Seed uint64
	// UserPIN is what the user types at a PIN prompt (SetUserPIN changes
	// it). It is the per-host "user" of the model.
	UserPIN string
	// Prompter, if set, answers PIN prompts instead of UserPIN; returning
	// ok=false is the user pressing Cancel (SCARD_E_CANCELLED).
	Prompter Prompter
	// Log, if set, receives every event (Host.Events) at debug level.
	Log *slog.Logger
	// Roaming, if set and Knobs.RoamingProfile is on, holds the user
	// profiles (certificate stores) this host shares with the other hosts
	// given the same Roaming: a roaming user profile.
	Roaming *Roaming
}

// CardSource opens a connection to the card in a reader. Every process
// that uses the card opens its own, as Windows processes each hold their
// own SCARDHANDLE.
type CardSource func() (pcsc.Transport, error)

// FromReader is the source for an in-process reader: one pcsc.Direct
// connection per process, transactions shared through the reader.
func FromReader(r *pcsc.Reader) CardSource {
	return func() (pcsc.Transport, error) { return r.Connect(), nil }
}

// insertion is one card insertion: the "session" of SESSION_ONLY caches,
// the trigger of certificate propagation.
type insertion struct {
	id     uint64
	reader string
	src    CardSource
	opts   minidriver.Options
	at     time.Time
	// sessionPIN is the generation of the latest session PIN the card
	// honours (Knobs.SessionPINs); 0: none generated.
	sessionPIN uint64
}

// Host is a Windows machine: its smart-card service (SCardSvr with the
// global cache G), readers, processes with their Base CSP/KSP instances,
// one signed-in user with certificate stores, CertPropSvc and the logon
// path (docs/reference/minidriver-semantics.md §2).
//
// A Host is safe for use from several goroutines, but the model is
// single-threaded: every operation runs to completion under the host's
// lock, and the asynchronous parts run when the virtual clock is advanced.
// Never advance the clock from inside a host call.
type Host struct {
	mu    sync.Mutex
	name  string
	clock *vclock.Clock
	knobs Knobs
	rng   *rand.Rand
	// propRng draws propagation delays, apart from rng so that the delay
	// model does not shift container GUIDs.
	propRng  *rand.Rand
	roaming  *Roaming
	userPIN  string
	prompter Prompter
	log      *slog.Logger

	g       *globalCache
	readers map[string]*insertion // nil value: reader present, empty
	insSeq  uint64

	procs    []*Process
	certprop *Process // CertPropSvc
	lsa      *Process // logon (LSA / winlogon)

	profiles map[string]*User
	user     *User
	logonSeq uint64 // logon session id; 0 when nobody is signed in
	logons   uint64
	timers   []*vclock.Timer
	// certpropRunning: CertPropSvc is running (StopCertPropService).
	certpropRunning bool

	logonCache map[string]logonEntry

	stats  Stats
	events []Event
}

// New returns a host with nobody signed in and no readers.
func New(cfg Config) *Host {
	h := &Host{
		name:            cfg.Name,
		clock:           cfg.Clock,
		userPIN:         cfg.UserPIN,
		prompter:        cfg.Prompter,
		log:             cfg.Log,
		rng:             rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9E3779B97F4A7C15)),
		propRng:         rand.New(rand.NewPCG(cfg.Seed^0x5851F42D4C957F2D, cfg.Seed)),
		roaming:         cfg.Roaming,
		certpropRunning: true,
		g:               newGlobalCache(),
		readers:         map[string]*insertion{},
		profiles:        map[string]*User{},
		logonCache:      map[string]logonEntry{},
	}
	if h.name == "" {
		h.name = "HOST"
	}
	if h.clock == nil {
		h.clock = vclock.New(DefaultStart)
	}
	if cfg.Knobs != nil {
		h.knobs = *cfg.Knobs
	} else {
		h.knobs = DefaultKnobs()
	}
	h.startServices()
	return h
}

func (h *Host) startServices() {
	h.certprop = h.newProcess("CertPropSvc", ProcessOptions{API: CAPI, Silent: true}, true)
	h.lsa = h.newProcess("lsass", ProcessOptions{API: CAPI, Silent: true}, true)
}

// Name returns the host name.
func (h *Host) Name() string { return h.name }

// Clock returns the host's virtual clock.
func (h *Host) Clock() *vclock.Clock { return h.clock }

// Knobs returns the knobs in force.
func (h *Host) Knobs() Knobs {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.knobs
}

// SetUserPIN changes what the user answers at PIN prompts.
func (h *Host) SetUserPIN(pin string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.userPIN = pin
}

func (h *Host) now() time.Time { return h.clock.Now() }

func (h *Host) event(e Event) {
	e.Seq = len(h.events) + 1
	e.Time = h.now()
	h.events = append(h.events, e)
	if h.log != nil {
		h.log.Debug(string(e.Kind), "host", h.name, "seq", e.Seq, "vtime", e.Time, "process", e.Process,
			"reader", e.Reader, "item", e.Item, "detail", e.Detail)
	}
}

// Events returns the host's log, oldest first.
func (h *Host) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// EventsSince returns a copy of the events after the first n (the log
// only grows) and how many there are in all: the scenario timeline asks
// after every step, and copying the whole log each time was quadratic.
func (h *Host) EventsSince(n int) ([]Event, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events[min(max(n, 0), len(h.events)):]), len(h.events)
}

// Stats returns the host-wide counters (all processes, services included).
func (h *Host) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

// GlobalCache lists the items in G, sorted by cardid and name.
func (h *Host) GlobalCache() []CacheEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.g.entries()
}

// InsertCard puts a card into reader (created on first use). opts are the
// minidriver options the host's minidriver uses for this card; their
// CacheMode is the card's CP_CARD_CACHE_MODE, ReadOnly its
// CP_CARD_READ_ONLY. The card is reset (power-up). If a user is signed in,
// certificate propagation is scheduled (§2.5).
func (h *Host) InsertCard(ctx context.Context, reader string, src CardSource, opts minidriver.Options) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ins := h.readers[reader]; ins != nil {
		return fmt.Errorf("InsertCard %q: %w", reader, ErrReaderOccupied)
	}
	if opts.CacheMode == 0 {
		opts.CacheMode = minidriver.CacheGlobal
	}
	t, err := src()
	if err != nil {
		return fmt.Errorf("InsertCard %q: connect: %w", reader, err)
	}
	err = t.Reset(ctx)
	t.Close()
	if err != nil {
		return fmt.Errorf("InsertCard %q: power-up reset: %w", reader, err)
	}
	h.insSeq++
	ins := &insertion{id: h.insSeq, reader: reader, src: src, opts: opts, at: h.now()}
	h.readers[reader] = ins
	h.event(Event{Kind: EvInsert, Reader: reader, Detail: "cache mode " + opts.CacheMode.String()})
	if h.user != nil {
		h.schedulePropagationAll(ctx, "insertion of "+reader)
	}
	return nil
}

// RemoveCard takes the card out of reader. G keeps what it cached; every
// process loses its connection, its SESSION_ONLY data cache for the card
// and (unless Knobs.PINCacheSurvivesRemoval) its cached PIN; session PINs
// die with the power (§1.5, §1.6, §2.6: the logon cache entries of the
// card are cleared).
func (h *Host) RemoveCard(reader string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ins := h.readers[reader]
	if ins == nil {
		return newErr("RemoveCard "+reader, winerr.SCARD_E_NO_SMARTCARD, nil)
	}
	h.readers[reader] = nil
	for _, p := range h.procs {
		p.cardRemoved(reader)
	}
	for k, e := range h.logonCache {
		if e.reader == reader {
			delete(h.logonCache, k)
		}
	}
	h.event(Event{Kind: EvRemove, Reader: reader})
	return nil
}

// Readers lists the readers that hold a card, sorted.
func (h *Host) Readers() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.insertedReaders()
}

func (h *Host) insertedReaders() []string {
	var out []string
	for r, ins := range h.readers {
		if ins != nil {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// RestartCardService restarts SCardSvr: G is emptied unless
// Knobs.GlobalCachePersistent, and every process's card connections are
// dropped (they reconnect on next use). Processes keep their PIN caches:
// those live in the process (§2.1).
func (h *Host) RestartCardService() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.knobs.GlobalCachePersistent {
		h.g.clear()
	}
	for _, p := range h.procs {
		p.closeHandles()
	}
	h.event(Event{Kind: EvServiceStart})
}

// Reboot restarts the machine: every process ends, the user is signed
// out, pending propagations are cancelled, G survives only if
// Knobs.GlobalCachePersistent. Cards stay in their readers but are powered
// up again (a new insertion session; session PINs are gone). Nothing is
// propagated until the next Logon.
func (h *Host) Reboot() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.signOut()
	for _, p := range slices.Clone(h.procs) {
		p.exit()
	}
	if !h.knobs.GlobalCachePersistent {
		h.g.clear()
	}
	for r, ins := range h.readers {
		if ins != nil {
			h.insSeq++
			h.readers[r] = &insertion{id: h.insSeq, reader: r, src: ins.src, opts: ins.opts, at: h.now()}
		}
	}
	clear(h.logonCache)
	h.certpropRunning = true
	h.startServices()
	h.event(Event{Kind: EvReboot})
}

// newGUID returns a lower-case GUID string from the host's seeded source:
// the container name Base CSP gives a new container (≤ 39 characters,
// docs/reference/minidriver-semantics.md §3.1 step 2).
func (h *Host) newGUID() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(h.rng.Uint32())
	}
	b[6] = b[6]&0x0F | 0x40
	b[8] = b[8]&0x3F | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
