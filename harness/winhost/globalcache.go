package winhost

import (
	"slices"
	"strings"
	"time"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// itemHeaderSize is the header SCardSvr keeps with each cached value: the
// 6-byte cardcf snapshot, padding and a LE32 length (docs/reference/minidriver-semantics.md
// §1.4 [U]). It counts against CacheMaxBytesPerItem.
const itemHeaderSize = 16

// lookup is the result of a cache read (SCardReadCache).
type lookup int

const (
	// cacheHit: the item is cached under counters that still match.
	cacheHit lookup = iota
	// cacheStale: the item was cached under other counters
	// (SCARD_W_CACHE_ITEM_STALE); it is dropped.
	cacheStale
	// cacheMiss: nothing cached (SCARD_W_CACHE_ITEM_NOT_FOUND), or the item
	// outlived CacheMaxItemAge.
	cacheMiss
)

func (l lookup) String() string {
	switch l {
	case cacheHit:
		return "hit"
	case cacheStale:
		return "stale"
	}
	return "miss"
}

// Code is the SCardReadCache result code (0 for a hit).
func (l lookup) Code() winerr.Code {
	switch l {
	case cacheStale:
		return winerr.SCARD_W_CACHE_ITEM_STALE
	case cacheMiss:
		return winerr.SCARD_W_CACHE_ITEM_NOT_FOUND
	}
	return 0
}

type cacheKey struct {
	cardID fs.CardID
	name   string
}

type cacheItem struct {
	fresh   fs.CardCF
	data    []byte
	written time.Time
	seq     uint64 // write order, for eviction
}

// globalCache is G of §2.1: (cardid, item name) → (freshness snapshot,
// bytes), shared by every process on the host, kept across card removal.
type globalCache struct {
	items map[cacheKey]*cacheItem
	seq   uint64
	size  int
}

func newGlobalCache() *globalCache { return &globalCache{items: map[cacheKey]*cacheItem{}} }

func (g *globalCache) clear() {
	clear(g.items)
	g.size = 0
}

func itemSize(data []byte) int { return len(data) + itemHeaderSize }

// read is SCardReadCache (§1.4): an item cached under counters that differ
// from cf in cats is stale and dropped; an item older than maxAge is a miss
// and dropped.
func (g *globalCache) read(id fs.CardID, name string, cf fs.CardCF, cats fs.Category, rule FreshnessRule, now time.Time, maxAge time.Duration) ([]byte, lookup) {
	k := cacheKey{id, name}
	it, ok := g.items[k]
	if !ok {
		return nil, cacheMiss
	}
	if maxAge > 0 && now.Sub(it.written) > maxAge {
		g.drop(k)
		return nil, cacheMiss
	}
	if stale(it.fresh, cf, cats, rule) {
		g.drop(k)
		return nil, cacheStale
	}
	return slices.Clone(it.data), cacheHit
}

func (g *globalCache) drop(k cacheKey) {
	if it, ok := g.items[k]; ok {
		g.size -= itemSize(it.data)
		delete(g.items, k)
	}
}

// write is SCardWriteCache: it returns SCARD_W_CACHE_ITEM_TOO_BIG (and
// caches nothing) for an item above the per-item cap (T16), and evicts the
// oldest items to stay under the total cap.
func (g *globalCache) write(id fs.CardID, name string, cf fs.CardCF, data []byte, now time.Time, maxItem, maxTotal int) winerr.Code {
	k := cacheKey{id, name}
	g.drop(k)
	sz := itemSize(data)
	if maxItem > 0 && sz > maxItem {
		return winerr.SCARD_W_CACHE_ITEM_TOO_BIG
	}
	if maxTotal > 0 && sz > maxTotal {
		return winerr.SCARD_W_CACHE_ITEM_TOO_BIG
	}
	for maxTotal > 0 && g.size+sz > maxTotal {
		g.evictOldest()
	}
	g.seq++
	g.items[k] = &cacheItem{fresh: cf, data: slices.Clone(data), written: now, seq: g.seq}
	g.size += sz
	return 0
}

func (g *globalCache) evictOldest() {
	var oldest cacheKey
	var least uint64
	for k, it := range g.items {
		if least == 0 || it.seq < least {
			oldest, least = k, it.seq
		}
	}
	if least != 0 {
		g.drop(oldest)
	}
}

// CacheEntry describes one item of the global cache.
type CacheEntry struct {
	CardID  fs.CardID
	Name    string    // e.g. "Cached_GeneralFile/mscp/cmapfile"
	Fresh   fs.CardCF // the cardcf snapshot it was cached under
	Size    int       // bytes of the value (without the header)
	Written time.Time
}

func (g *globalCache) entries() []CacheEntry {
	out := make([]CacheEntry, 0, len(g.items))
	for k, it := range g.items {
		out = append(out, CacheEntry{CardID: k.cardID, Name: k.name, Fresh: it.fresh, Size: len(it.data), Written: it.written})
	}
	slices.SortFunc(out, func(a, b CacheEntry) int {
		if c := strings.Compare(a.CardID.String(), b.CardID.String()); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// stale compares a cached item's counters with the card's (ledger row
// H-CACHE-FRESHNESS): under FreshnessCountersDiffer any change of a
// covering counter; under FreshnessCardNewer only a card counter greater
// than the cached one (SCardReadCache: the item is older than the
// freshness asked for), so counters that went back (a re-initialised
// card) look fresh.
func stale(cached, card fs.CardCF, cats fs.Category, rule FreshnessRule) bool {
	if rule == FreshnessCountersDiffer {
		return cached.ChangedIn(card, cats)
	}
	return (cats&fs.CategoryPins != 0 && card.PinsFreshness > cached.PinsFreshness) ||
		(cats&fs.CategoryContainers != 0 && card.ContainersFreshness > cached.ContainersFreshness) ||
		(cats&fs.CategoryFiles != 0 && card.FilesFreshness > cached.FilesFreshness)
}
