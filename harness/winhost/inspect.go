package winhost

import (
	"slices"
	"strings"

	"github.com/cardharness/cardharness/minidriver/fs"
)

// Read-only views for reports (the scenario runner's timeline): what the
// host holds, so that a report can set it beside what the card holds. They
// never change the model's state.

// CachedValue is one item of G with its bytes.
type CachedValue struct {
	CacheEntry
	Data []byte
	// Covers are the cardcf counters that decide whether the item is still
	// fresh, under this host's knobs (Granularity, CmapfileCounter).
	Covers fs.Category
}

// GlobalCacheValues lists the items in G with their bytes, sorted like
// GlobalCache.
func (h *Host) GlobalCacheValues() []CachedValue {
	h.mu.Lock()
	defer h.mu.Unlock()
	entries := h.g.entries()
	out := make([]CachedValue, 0, len(entries))
	for _, e := range entries {
		it := h.g.items[cacheKey{e.CardID, e.Name}]
		out = append(out, CachedValue{CacheEntry: e, Data: slices.Clone(it.data), Covers: h.covers(e.Name)})
	}
	return out
}

// covers returns the counters that cover a cache item by its name (the
// names readpath.go gives items). Lock held.
func (h *Host) covers(name string) fs.Category {
	if h.knobs.Granularity == WholeSnapshot {
		return fs.AllCategories
	}
	switch {
	case strings.HasPrefix(name, "Cached_GeneralFile/"):
		return fileItem(&h.knobs, strings.TrimPrefix(name, "Cached_GeneralFile/")).cats
	case strings.HasPrefix(name, "Cached_ContainerInfo_"):
		return fs.CategoryContainers
	case strings.HasPrefix(name, "Cached_PinInfo"):
		return fs.CategoryPins
	}
	return fs.AllCategories
}

// ProcessSnapshot is what one process remembers of one card: the cardcf
// it saw at its last transaction (§2.2) and how many APIs hold a cached
// PIN for it (§1.6).
type ProcessSnapshot struct {
	Process    string
	CardID     fs.CardID
	CardCF     fs.CardCF
	CachedPINs int
}

// ProcessSnapshots lists, for every running process (services included),
// the cards it has seen, sorted by process then cardid.
func (h *Host) ProcessSnapshots() []ProcessSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []ProcessSnapshot
	for _, p := range h.procs {
		for id, st := range p.cards {
			if !st.known {
				continue
			}
			out = append(out, ProcessSnapshot{Process: p.name, CardID: id, CardCF: st.lastCf, CachedPINs: len(st.pins)})
		}
	}
	slices.SortFunc(out, func(a, b ProcessSnapshot) int {
		if c := strings.Compare(a.Process, b.Process); c != 0 {
			return c
		}
		return strings.Compare(a.CardID.String(), b.CardID.String())
	})
	return out
}
