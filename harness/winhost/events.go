package winhost

import (
	"fmt"
	"time"
)

// Stats count what the host did, host-wide (Host.Stats) or for one process
// (Process.Stats). Tests compare them to tell "served from the cache" from
// "read from the card".
type Stats struct {
	// Transactions: card transactions begun; each reads cardid and cardcf
	// from the card (§2.2), which is not counted in CardReads.
	Transactions int
	// CacheHits, CacheStale, CacheMisses: lookups of cached items, in G
	// (GLOBAL_CACHE cards) or in the process's session cache
	// (SESSION_ONLY: hits and misses only).
	CacheHits   int
	CacheStale  int
	CacheMisses int
	// CacheTooBig: items not cached because they exceed the per-item cap
	// (T16).
	CacheTooBig int
	// CardReads: items (files, container info, PIN info) read from the
	// card: after a stale or missing lookup, on NO_CACHE cards, and when
	// a write refreshes G.
	CardReads int
	// PINPrompts: PIN dialogs shown.
	PINPrompts int
	// InsertCardDialogs: "insert smart card" dialogs (InsertCardError).
	InsertCardDialogs int
}

// EventKind names what happened.
type EventKind string

// Event kinds.
const (
	EvInsert       EventKind = "insert"
	EvRemove       EventKind = "remove"
	EvTransaction  EventKind = "transaction"   // Detail: cardid, cardcf
	EvCacheHit     EventKind = "cache-hit"     // Item: cache item name
	EvCacheStale   EventKind = "cache-stale"   // Item
	EvCacheMiss    EventKind = "cache-miss"    // Item
	EvCacheTooBig  EventKind = "cache-too-big" // Item
	EvCardRead     EventKind = "card-read"     // Item
	EvCardWrite    EventKind = "card-write"    // Item: the operation
	EvDropPINCache EventKind = "drop-pin-cache"
	EvPINPrompt    EventKind = "pin-prompt" // Detail: API
	EvInsertDialog EventKind = "insert-card-dialog"
	// EvCardSkipped: card selection passed over a card (Detail: why).
	EvCardSkipped  EventKind = "card-skipped"
	EvPropagate    EventKind = "propagate"       // Item: thumbprint, Detail: store
	EvPropagateErr EventKind = "propagate-error" // Detail: error
	// EvPropagateScheduled: a propagation was armed (Detail: trigger, delay).
	EvPropagateScheduled EventKind = "propagate-scheduled"
	// EvCertPropRestart: CertPropSvc was restarted (or stopped).
	EvCertPropRestart EventKind = "certprop-restart"
	// EvAcquire: CryptAcquireCertificatePrivateKey (Item: thumbprint,
	// Detail: flags and outcome, or the healing).
	EvAcquire      EventKind = "acquire"
	EvLogon        EventKind = "logon"
	EvLogoff       EventKind = "logoff"
	EvServiceStart EventKind = "card-service-restart"
	EvReboot       EventKind = "reboot"
)

// Event is one entry of the host's log (Host.Events), in the order things
// happened.
type Event struct {
	Seq     int
	Time    time.Time
	Kind    EventKind
	Process string // process name, "" for the host itself
	Reader  string
	Item    string
	Detail  string
}

func (e Event) String() string {
	s := fmt.Sprintf("#%d %s %s", e.Seq, e.Time.Format(time.RFC3339), e.Kind)
	for _, kv := range [][2]string{{"proc", e.Process}, {"reader", e.Reader}, {"item", e.Item}, {"", e.Detail}} {
		if kv[1] == "" {
			continue
		}
		if kv[0] == "" {
			s += " " + kv[1]
		} else {
			s += " " + kv[0] + "=" + kv[1]
		}
	}
	return s
}
