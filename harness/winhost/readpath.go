package winhost

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// txn is one card transaction of a process: the unit in which Base CSP
// checks freshness, authenticates, and does one operation
// (docs/reference/minidriver-semantics.md §2.2, §2.3; MSOV: each operation is one atomic
// transaction; MSPIN: authentication lasts only inside it).
type txn struct {
	ctx    context.Context
	op     string
	p      *Process
	hd     *cardHandle
	st     *cardState
	reader string
	cardID fs.CardID
	cf     fs.CardCF
	// bypass reads every item from the card without touching G
	// (propagation with Knobs.PropagationReadsThroughCache off).
	bypass bool
	authed bool
}

// begin starts a transaction on reader and performs the §2.2 prologue:
// cardid and cardcf are always read from the card; if the cardid differs
// from the one this connection saw, everything the process holds for the
// old identity is dropped; if the pins counter moved since the process last
// looked (any counter under WholeSnapshot), its cached PINs are dropped
// (T6: "next txn drops cached PIN → prompt").
func (p *Process) begin(ctx context.Context, op, reader string) (*txn, error) {
	hd, err := p.handle(ctx, op, reader)
	if err != nil {
		return nil, err
	}
	if err := hd.conn.BeginTransaction(ctx); err != nil {
		return nil, fmt.Errorf("%s: begin transaction: %w", op, err)
	}
	t := &txn{ctx: ctx, op: op, p: p, hd: hd, reader: reader}
	fail := func(err error) (*txn, error) {
		hd.conn.EndTransaction(ctx)
		return nil, err
	}
	raw, err := hd.card.ReadFile(ctx, "cardid")
	if err != nil {
		return fail(fmt.Errorf("%s: read cardid: %w", op, err))
	}
	if t.cardID, err = fs.ParseCardID(raw); err != nil {
		return fail(fmt.Errorf("%s: %w", op, err))
	}
	if t.cf, err = hd.card.CardCF(ctx); err != nil {
		return fail(fmt.Errorf("%s: %w", op, err))
	}
	p.count(func(s *Stats) { s.Transactions++ })
	p.event(Event{Kind: EvTransaction, Reader: reader, Detail: fmt.Sprintf("cardid %s cardcf %x", t.cardID, t.cf.Bytes())})
	if hd.known && hd.cardID != t.cardID {
		// Another identity in the same insertion (re-initialised in the
		// reader): nothing cached for the old one applies.
		clear(hd.session)
		delete(p.cards, hd.cardID)
	}
	hd.cardID, hd.known = t.cardID, true
	t.st = p.state(t.cardID)
	if t.st.known {
		watch := fs.CategoryPins
		if p.h.knobs.Granularity == WholeSnapshot {
			watch = fs.AllCategories
		}
		if t.st.lastCf.ChangedIn(t.cf, watch) && len(t.st.pins) > 0 {
			clear(t.st.pins)
			p.event(Event{Kind: EvDropPINCache, Reader: reader, Detail: fmt.Sprintf("cardcf %x -> %x", t.st.lastCf.Bytes(), t.cf.Bytes())})
		}
	}
	t.st.lastCf, t.st.known = t.cf, true
	return t, nil
}

// end deauthenticates if the transaction authenticated, and releases the
// card.
func (t *txn) end() {
	if t.authed {
		_ = t.hd.card.Deauthenticate(t.ctx)
		t.authed = false
	}
	_ = t.hd.conn.EndTransaction(t.ctx)
}

func (t *txn) card() *minidriver.Card { return t.hd.card }
func (t *txn) knobs() *Knobs          { return &t.p.h.knobs }
func (t *txn) mode() minidriver.CacheMode {
	return t.hd.ins.opts.CacheMode
}

// item is something Base CSP caches: a name in G, the counter that covers
// it, and how to read it from the card.
type item struct {
	name string
	cats fs.Category
	read func(ctx context.Context, c *minidriver.Card) ([]byte, error)
}

// fileItem is a file read with CardReadFile. The counter is wFiles, or
// Knobs.CmapfileCounter for the cmapfile (§2.2).
func fileItem(k *Knobs, path string) item {
	cats := fs.CategoryFiles
	if strings.EqualFold(path, "mscp/cmapfile") {
		cats = k.CmapfileCounter
	}
	return item{
		name: "Cached_GeneralFile/" + path,
		cats: cats,
		read: func(ctx context.Context, c *minidriver.Card) ([]byte, error) { return c.ReadFile(ctx, path) },
	}
}

// certItem is the certificate file of container idx, named by
// Knobs.CertFileNaming.
func certItem(k *Knobs, idx int, spec fs.KeySpec) item {
	return fileItem(k, certPath(k, idx, spec))
}

func certPath(k *Knobs, idx int, spec fs.KeySpec) string {
	return "mscp/" + k.CertFileNaming.file(idx, spec)
}

// containerInfoItem is CardGetContainerInfo of container i: key spec, size
// and public key, covered by wContainers (§2.2). The name is the one seen
// for the inbox minidriver [U].
func containerInfoItem(i int) item {
	return item{
		name: fmt.Sprintf("Cached_ContainerInfo_%02d", i),
		cats: fs.CategoryContainers,
		read: func(ctx context.Context, c *minidriver.Card) ([]byte, error) {
			info, err := c.ContainerInfo(ctx, i)
			if err != nil {
				return nil, err
			}
			return encodeContainerInfo(info.KeySpec, info.Bits, info.PublicKey)
		},
	}
}

// pinInfoItem is PIN_INFO of the user PIN, cached like a data file and
// covered by bPinsFreshness [S MSPIN; the name is this model's]. PIN_INFO
// is minidriver data, not card data; the card read it stands for is the
// PIN status query.
func pinInfoItem() item {
	return item{
		name: "Cached_PinInfo_1",
		cats: fs.CategoryPins,
		read: func(ctx context.Context, c *minidriver.Card) ([]byte, error) {
			if _, _, err := c.PINTries(ctx); err != nil {
				return nil, err
			}
			// PIN_INFO v7: AlphaNumericPinType, PrimaryCardPin,
			// PinCacheNormal.
			return []byte("PIN_INFO v7 type=alphanumeric purpose=primary cache=normal"), nil
		},
	}
}

// get returns an item through the read path of §2.2 for the card's cache
// mode: GLOBAL_CACHE consults G by the covering counter (HIT / STALE /
// MISS) and writes G after a card read; SESSION_ONLY uses the process's
// session cache without any freshness check (T15); NO_CACHE reads the
// card every time.
func (t *txn) get(it item) ([]byte, error) {
	p, h := t.p, t.p.h
	switch {
	case t.bypass || t.mode() == minidriver.CacheNone:
		return t.cardRead(it)
	case t.mode() == minidriver.CacheSessionOnly:
		if b, ok := t.hd.session[it.name]; ok {
			p.count(func(s *Stats) { s.CacheHits++ })
			p.event(Event{Kind: EvCacheHit, Reader: t.reader, Item: it.name, Detail: "session"})
			return append([]byte(nil), b...), nil
		}
		p.count(func(s *Stats) { s.CacheMisses++ })
		p.event(Event{Kind: EvCacheMiss, Reader: t.reader, Item: it.name, Detail: "session"})
		b, err := t.cardRead(it)
		if err != nil {
			return nil, err
		}
		t.hd.session[it.name] = append([]byte(nil), b...)
		return b, nil
	}
	b, res := h.g.read(t.cardID, it.name, t.cf, t.cats(it.cats), h.knobs.CacheFreshness, h.now(), h.knobs.CacheMaxItemAge)
	switch res {
	case cacheHit:
		p.count(func(s *Stats) { s.CacheHits++ })
		p.event(Event{Kind: EvCacheHit, Reader: t.reader, Item: it.name})
		return b, nil
	case cacheStale:
		p.count(func(s *Stats) { s.CacheStale++ })
		p.event(Event{Kind: EvCacheStale, Reader: t.reader, Item: it.name, Detail: res.Code().Name()})
	default:
		p.count(func(s *Stats) { s.CacheMisses++ })
		p.event(Event{Kind: EvCacheMiss, Reader: t.reader, Item: it.name, Detail: res.Code().Name()})
	}
	b, err := t.cardRead(it)
	if err != nil {
		return nil, err
	}
	t.cache(it, b)
	return b, nil
}

// cats applies the granularity knob to an item's covering counters.
func (t *txn) cats(c fs.Category) fs.Category {
	if t.knobs().Granularity == WholeSnapshot {
		return fs.AllCategories
	}
	return c
}

// cache stores b as the value of it under the transaction's cardcf, in G
// or the session cache by mode (SCardWriteCache; T16 for the size cap).
func (t *txn) cache(it item, b []byte) {
	p, h := t.p, t.p.h
	switch {
	case t.bypass || t.mode() == minidriver.CacheNone:
		return
	case t.mode() == minidriver.CacheSessionOnly:
		t.hd.session[it.name] = append([]byte(nil), b...)
		return
	}
	if code := h.g.write(t.cardID, it.name, t.cf, b, h.now(), h.knobs.CacheMaxBytesPerItem, h.knobs.CacheMaxBytesTotal); code == winerr.SCARD_W_CACHE_ITEM_TOO_BIG {
		p.count(func(s *Stats) { s.CacheTooBig++ })
		p.event(Event{Kind: EvCacheTooBig, Reader: t.reader, Item: it.name, Detail: fmt.Sprintf("%d bytes", itemSize(b))})
	}
}

// forget removes an item the transaction deleted from the card.
func (t *txn) forget(it item) {
	delete(t.hd.session, it.name)
	t.p.h.g.drop(cacheKey{t.cardID, it.name})
}

func (t *txn) cardRead(it item) ([]byte, error) {
	t.p.count(func(s *Stats) { s.CardReads++ })
	t.p.event(Event{Kind: EvCardRead, Reader: t.reader, Item: it.name})
	return it.read(t.ctx, t.card())
}

// cmap returns the container map through the read path.
func (t *txn) cmap() (fs.ContainerMap, error) {
	b, err := t.get(fileItem(t.knobs(), "mscp/cmapfile"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.op, err)
	}
	m, err := fs.ParseContainerMap(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.op, err)
	}
	return m, nil
}

// find returns the index of the valid container named guid in the cached
// cmapfile, or -1.
func (t *txn) find(guid string) (int, fs.ContainerMap, error) {
	m, err := t.cmap()
	if err != nil {
		return -1, nil, err
	}
	for i := range m {
		if m.Valid(i) && strings.EqualFold(m[i].GUID, guid) {
			return i, m, nil
		}
	}
	return -1, m, nil
}

// keyInfo is decoded container info.
type keyInfo struct {
	spec fs.KeySpec
	bits int
	pub  *rsa.PublicKey
}

func encodeContainerInfo(spec fs.KeySpec, bits int, pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(spec))
	b = binary.LittleEndian.AppendUint32(b, uint32(bits))
	return append(b, der...), nil
}

func decodeContainerInfo(b []byte) (keyInfo, error) {
	if len(b) < 8 {
		return keyInfo{}, errors.New("container info: short")
	}
	pub, err := x509.ParsePKIXPublicKey(b[8:])
	if err != nil {
		return keyInfo{}, fmt.Errorf("container info: %w", err)
	}
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return keyInfo{}, errors.New("container info: not an RSA key")
	}
	return keyInfo{spec: fs.KeySpec(binary.LittleEndian.Uint32(b)), bits: int(binary.LittleEndian.Uint32(b[4:])), pub: rk}, nil
}

// containerInfo returns container i's key through the read path. A record
// without a key on the card (T13: cmapfile valid, key missing) is
// NTE_BAD_KEYSET with SCARD_E_NO_KEY_CONTAINER in its cause.
func (t *txn) containerInfo(i int) (keyInfo, error) {
	b, err := t.get(containerInfoItem(i))
	if err != nil {
		return keyInfo{}, keysetErr(t.op, err)
	}
	return decodeContainerInfo(b)
}

// keysetErr is how a container whose key cannot be used surfaces: Base
// CSP's NTE_BAD_KEYSET, the minidriver's SCARD_E_NO_KEY_CONTAINER
// underneath (T13 [I for the Windows code]).
func keysetErr(op string, cause error) error {
	if !errors.Is(cause, winerr.SCARD_E_NO_KEY_CONTAINER) {
		cause = fmt.Errorf("%w (%w)", cause, winerr.SCARD_E_NO_KEY_CONTAINER)
	}
	return newErr(op, winerr.NTE_BAD_KEYSET, cause)
}

// certificate returns the certificate file of container i through the read
// path; ok is false when the file does not exist.
func (t *txn) certificate(i int, spec fs.KeySpec) (der []byte, ok bool, err error) {
	b, err := t.get(certItem(t.knobs(), i, spec))
	if errors.Is(err, winerr.SCARD_E_FILE_NOT_FOUND) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", t.op, err)
	}
	der, err = fs.DecodeCert(b)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", t.op, err)
	}
	return der, true, nil
}

// refresh re-reads cardcf after a write of this transaction, so that the
// process's own view follows its own bumps, and stores the new values of
// the items the write changed under the new snapshot (§2.3: "update G with
// the new snapshot"). removed items are dropped.
func (t *txn) refresh(changed []item, removed []item) error {
	cf, err := t.card().CardCF(t.ctx)
	if err != nil {
		return fmt.Errorf("%s: re-read cardcf: %w", t.op, err)
	}
	t.cf = cf
	t.st.lastCf = cf
	for _, it := range removed {
		t.forget(it)
	}
	for _, it := range changed {
		b, err := t.cardRead(it)
		if err != nil {
			return fmt.Errorf("%s: refresh %s: %w", t.op, it.name, err)
		}
		t.cache(it, b)
	}
	return nil
}
