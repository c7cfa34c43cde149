package gids

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/store"
)

// DefaultATR is a T=1 ATR whose historical bytes carry the GIDS v2 AID as a
// compact-TLV application identifier (category 80, tag F, length B):
//
//	3B 8D 01 80 FB A0 00 00 03 97 42 54 46 59 02 01 TCK
//
// Microsoft's TPM virtual smart card uses the same shape with version 04
// (docs/reference/gids-protocol.md §1.3). No ATR-only OpenSC driver claims it, so OpenSC
// reaches the GIDS driver's SELECT; Windows pairs the card by SELECT too.
var DefaultATR = withTCK([]byte{
	0x3B, 0x8D, 0x01,
	0x80, 0xFB, 0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59, 0x02, 0x01,
})

// withTCK appends the ISO 7816-3 check byte: the XOR of every byte after TS.
func withTCK(atr []byte) []byte {
	var tck byte
	for _, b := range atr[1:] {
		tck ^= b
	}
	return append(atr, tck)
}

// Options configure New.
type Options struct {
	Store *store.Store // nil: store.NewMemory()
	ATR   []byte       // nil: DefaultATR
	// Rand supplies card challenges (GENERAL AUTHENTICATE R2, Z2 and the
	// external-authentication challenge) and random card IDs in
	// Initialize. It is passed to rsa.GenerateKey, which ignores it since
	// Go 1.26 (GODEBUG=cryptocustomrand=1 restores it). nil: crypto/rand.
	Rand io.Reader
	Log  *slog.Logger // nil: discard
	// KeySeed, if not nil, makes GENERATE ASYMMETRIC KEY PAIR
	// deterministic: the same seed and the same commands give the same
	// keys (taken from an embedded pool of public test keys, or derived
	// from the seed; see seedkeys.go and docs/DESIGN.md). Such keys protect
	// nothing: seeded keys are for tests only. nil: real random keys from
	// crypto/rsa.
	KeySeed []byte
	// Signatures, if not nil, remembers PKCS#1 v1.5 signatures across the
	// cards that share it (sigmemo.go: a sweep's cards sign the same
	// blocks with the same seeded keys). The bytes are the same either way.
	Signatures *SignatureMemo
}

// Card is a virtual GIDS v2 smart card (docs/reference/gids-protocol.md). It implements
// vcard.Card. Its persistent state lives in a store.Store (see records.go for
// the record layout); volatile state (security status, current EF, security
// environment, pending challenge, chaining and GET RESPONSE buffers) is lost
// on power off, reset and selection of the application, as on a real card.
//
// Process is serialised by a mutex; the introspection methods (DO,
// LifeCycle, PINTriesLeft, KeyRefs, PublicKey) read only the store and are
// safe to call concurrently with Process.
type Card struct {
	atr   []byte
	store *store.Store
	rand  io.Reader
	log   *slog.Logger

	// genKey generates RSA keys for GENERATE ASYMMETRIC KEY PAIR; tests
	// replace it to avoid slow key generation.
	genKey func(bits int) (*rsa.PrivateKey, error)
	// keySeed is Options.KeySeed; with it genKey is not used.
	keySeed []byte
	// sigMemo is Options.Signatures (nil: sign every time).
	sigMemo *SignatureMemo
	// panicHook, if set, sees every panic recovered by Process (tests use
	// it to prove that none happens).
	panicHook func(v any)

	mu   sync.Mutex // serialises Process and guards the fields below
	sess apdu.Session
	sec  secState

	cacheMu sync.Mutex
	cache   map[string]cachedKey // decoded RSA keys by store key
}

var _ vcard.Card = (*Card)(nil)

type cachedKey struct {
	raw []byte
	key *rsa.PrivateKey
}

// secEnv is the current security environment set by MSE (docs/reference/gids-protocol.md §2.8).
type secEnv struct {
	set  bool
	tmpl byte // P2 of the MSE: B6 sign, B8 decipher, A4 authentication
	alg  byte // algorithm reference (80), 02 for C1/81 A4
	kref byte // key reference; the key EF is B0<kref>
}

type challengeKind byte

const (
	noChallenge challengeKind = iota
	mutualChallenge
	externalChallenge
)

// keySet is a set of key references (00..FF).
type keySet [4]uint64

func (s *keySet) add(ref byte)     { s[ref>>6] |= 1 << (ref & 63) }
func (s keySet) has(ref byte) bool { return s[ref>>6]&(1<<(ref&63)) != 0 }

// adminKeyRef is the key reference of the card administrator's 3DES key,
// held in key EF B080 (docs/reference/gids-protocol.md §3.8, §4.3). Only authentication
// with this key satisfies an "admin" (20) security condition: a key EF
// that a host creates later may be authenticated against, but that proves
// knowledge of that key only (ISO 7816-4 §5.4.3: the security status is
// kept per key reference).
const adminKeyRef = 0x80

// secState is the volatile security state (ISO 7816-4 §5.4.3 security
// status): the user PIN (reference 80) and the key references that passed
// GENERAL AUTHENTICATE are recorded separately.
type secState struct {
	pin       bool   // user PIN (reference 80) verified
	keys      keySet // key references authenticated (external or mutual)
	currentEF uint16 // 0: no current EF (the application DF is current)
	se        secEnv
	chal      challengeKind
	hostChal  [16]byte // R1 (mutual)
	cardChal  [16]byte // R2 (mutual) or the 8-byte external challenge
}

// New returns a card on opts.Store (a blank card if the store is empty),
// powered and with the GIDS application implicitly selected.
func New(opts Options) (*Card, error) {
	c := &Card{
		atr:   slices.Clone(opts.ATR),
		store: opts.Store,
		rand:  opts.Rand,
		log:   opts.Log,
		cache: map[string]cachedKey{},

		sigMemo: opts.Signatures,
	}
	if opts.KeySeed != nil {
		c.keySeed = slices.Clone(opts.KeySeed)
	}
	if c.atr == nil {
		c.atr = slices.Clone(DefaultATR)
	}
	if c.store == nil {
		c.store = store.NewMemory()
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.genKey = func(bits int) (*rsa.PrivateKey, error) { return rsa.GenerateKey(c.rand, bits) }
	if _, err := loadLifeCycle(c.store); err != nil {
		return nil, err
	}
	return c, nil
}

// ATR implements vcard.Card.
func (c *Card) ATR() []byte { return slices.Clone(c.atr) }

// PowerOn implements vcard.Card: the application is implicitly selected
// with a clean security state.
func (c *Card) PowerOn() { c.clearVolatile() }

// PowerOff implements vcard.Card.
func (c *Card) PowerOff() { c.clearVolatile() }

// Reset implements vcard.Card (warm reset).
func (c *Card) Reset() { c.clearVolatile() }

func (c *Card) clearVolatile() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deselect()
}

// deselect drops all volatile state: what power loss, reset and
// (re)selection of the application do (docs/reference/gids-protocol.md §1.5). c.mu held.
func (c *Card) deselect() {
	c.sess.Reset()
	c.sec = secState{}
}

// logout clears PIN and admin authentication, the pending challenge and
// the security environment (VERIFY P2=82, RESET RETRY COUNTER, application
// activation; GA GidsPINManager.DeauthenticateAllPin). The current EF stays.
func (c *Card) logout() {
	c.sec = secState{currentEF: c.sec.currentEF}
}

// Store returns the card's persistent store.
func (c *Card) Store() *store.Store { return c.store }

// FactoryReset erases the card back to its blank state: application in
// creation state, no files, no PIN, no keys. This is the out-of-band reset
// that gids-tool --initialize needs (docs/reference/gids-protocol.md §4.1, §8 item 9).
func (c *Card) FactoryReset() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.store.Reset(); err != nil {
		return err
	}
	c.deselect()
	c.cacheMu.Lock()
	clear(c.cache)
	c.cacheMu.Unlock()
	return nil
}

// Process implements vcard.Card. The transport (CLA checks, command
// chaining, 61xx/GET RESPONSE) is apdu.Session; every complete command goes
// to handle. A panic, which would be a bug, is logged and answered 6F00.
func (c *Card) Process(cmd []byte) (resp []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("gids: panic while processing an APDU", "panic", r, "stack", string(debug.Stack()))
			if c.panicHook != nil {
				c.panicHook(r)
			}
			c.sess.Reset()
			resp = apdu.Err(apdu.SWUnknown).Bytes()
		}
	}()
	return c.sess.Process(cmd, c.handle)
}

// commitError is a store commit that failed: answered 6581.
type commitError struct{ err error }

func (e *commitError) Error() string { return "gids: store commit failed: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// update runs fn in one store transaction. All writes of a command go
// through exactly one update, so a crash leaves all or none of them. An
// error returned by fn is returned as is (nothing is written); a failed
// commit is returned as *commitError.
func (c *Card) update(fn func(tx *store.Tx) error) error {
	var fnErr error
	err := c.store.Update(func(tx *store.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	if err != nil && fnErr == nil {
		return &commitError{err}
	}
	return err
}

// handler executes one complete command and returns its response data, or
// an error: an apdu.Status to send, or anything else (logged, 6F00/6581).
type handler func(c *Card, cmd apdu.Command) ([]byte, error)

var handlers = map[byte]handler{
	apdu.INSSelect:                    (*Card).selectFile,
	apdu.INSGetData:                   (*Card).getData,
	apdu.INSPutData:                   (*Card).putData,
	apdu.INSVerify:                    (*Card).verify,
	apdu.INSChangeReferenceData:       (*Card).changeReferenceData,
	apdu.INSResetRetryCounter:         (*Card).resetRetryCounter,
	apdu.INSManageSecurityEnvironment: (*Card).manageSecurityEnvironment,
	apdu.INSGeneralAuthenticate:       (*Card).generalAuthenticate,
	apdu.INSGenerateAsymmetricKeyPair: (*Card).generateKeyPair,
	apdu.INSPerformSecurityOperation:  (*Card).performSecurityOperation,
	apdu.INSCreateFile:                (*Card).createFile,
	apdu.INSActivateFile:              (*Card).activateFile,
	apdu.INSDeleteFile:                (*Card).deleteFile,
	apdu.INSTerminateDF:               (*Card).terminateDF,
}

// handle dispatches one complete command (c.mu held).
func (c *Card) handle(cmd apdu.Command) apdu.Response {
	r := c.dispatch(cmd)
	if !c.log.Enabled(context.Background(), slog.LevelDebug) {
		return r
	}
	// Header, lengths and status only: data fields carry PINs and keys.
	c.log.Debug("gids: command", "ins", fmt.Sprintf("%02X", cmd.INS),
		"p1p2", fmt.Sprintf("%02X%02X", cmd.P1, cmd.P2), "lc", len(cmd.Data),
		"sw", fmt.Sprintf("%04X", uint16(r.SW)), "len", len(r.Data))
	return r
}

func (c *Card) dispatch(cmd apdu.Command) apdu.Response {
	lc, err := loadLifeCycle(c.store)
	if err != nil {
		return c.fail(cmd, err)
	}
	if lc == Terminated {
		// docs/reference/gids-protocol.md §4.1: after TERMINATE DF every command is
		// answered 6285, selection included.
		return apdu.Err(apdu.SWTerminated)
	}
	h, ok := handlers[cmd.INS]
	if !ok {
		return apdu.Err(apdu.SWINSNotSupported)
	}
	data, err := h(c, cmd)
	if err != nil {
		return c.fail(cmd, err)
	}
	return apdu.Response{Data: data, SW: apdu.SWOK}
}

// fail turns a handler error into a status word.
func (c *Card) fail(cmd apdu.Command, err error) apdu.Response {
	var ce *commitError
	if errors.As(err, &ce) {
		c.log.Error("gids: cannot commit card state", "ins", fmt.Sprintf("%02X", cmd.INS), "err", err)
		return apdu.Err(apdu.SWMemoryFailure)
	}
	var sw apdu.Status
	if errors.As(err, &sw) {
		return apdu.Err(sw)
	}
	c.log.Error("gids: command failed", "ins", fmt.Sprintf("%02X", cmd.INS), "err", err)
	return apdu.Err(apdu.SWUnknown)
}

// checkSC evaluates one security-condition byte of a compact security
// attribute (docs/reference/gids-protocol.md §4.2; GA GidsPINManager.CheckACL):
//
//	00 always; FF never;
//	low nibble = security environment: 1 contact only (satisfied: this is
//	  a contact card), 2 contactless only (never satisfied), others ignored;
//	high nibble: 90 PIN required; 10 bit (x0,30,...) PIN sufficient;
//	  A0 admin required; 20 bit admin sufficient; none of them: never.
//
// "PIN" is the user PIN, reference 80; "admin" is authentication with the
// admin key, reference 80 (adminKeyRef), and with no other key.
//
// In the creation state PIN and admin count as present, so only "never"
// conditions (FF, contactless, no authentication bit) still refuse, as in
// GidsApplet.
func (c *Card) checkSC(sc byte, creation bool) error {
	switch sc {
	case 0x00:
		return nil
	case 0xFF:
		return apdu.SWSecurityStatusNotSatisfied
	}
	if sc&0x0F == 0x02 {
		return apdu.SWSecurityStatusNotSatisfied
	}
	auth := sc & 0xF0
	// PIN first, then admin: "required" (90, A0) decides alone;
	// "sufficient" (the 10 or 20 bit with 80 clear) passes when met and
	// otherwise leaves it to the next credential.
	for _, cred := range [...]struct {
		required, sufficient byte
		present              bool
	}{
		{0x90, 0x10, creation || c.sec.pin},
		{0xA0, 0x20, creation || c.sec.keys.has(adminKeyRef)},
	} {
		if auth == cred.required {
			if cred.present {
				return nil
			}
			return apdu.SWSecurityStatusNotSatisfied
		}
		if auth&cred.required == cred.sufficient && cred.present {
			return nil
		}
	}
	return apdu.SWSecurityStatusNotSatisfied
}

// checkACL checks operation op against the compact security attribute acl.
func (c *Card) checkACL(acl []byte, op byte, creation bool) error {
	sc, present := scFor(acl, op)
	if !present {
		return nil
	}
	return c.checkSC(sc, creation)
}

// allowed checks op on f against the stored life cycle: in creation state
// PIN and admin conditions count as met (§4.1).
func (c *Card) allowed(f *efRecord, op byte) error { return c.allowedIn(c.store, f, op) }

// allowedIn is allowed against the life cycle r holds: inside an update,
// the transaction, so the check sees the state the write will change.
func (c *Card) allowedIn(r reader, f *efRecord, op byte) error {
	lc, err := loadLifeCycle(r)
	if err != nil {
		return err
	}
	return c.checkEF(f, op, lc == Creation)
}

// keyOf returns the RSA key key EF f holds; an EF holding none answers
// missing, whose status word each command chooses.
func (c *Card) keyOf(f *efRecord, missing apdu.Status) (*rsa.PrivateKey, error) {
	k, ok, err := c.rsaKey(c.store, f.fid)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, missing
	}
	return k, nil
}

// checkEF applies the EF life cycle and access rule for op: an EF still in
// creation state accepts only ACTIVATE (6985), then the EF's own 8C rule
// (6982) (GA File.CheckPermission).
func (c *Card) checkEF(f *efRecord, op byte, creation bool) error {
	if f.state == Creation && op != opActivate {
		return apdu.SWConditionsNotSatisfied
	}
	return c.checkACL(f.acl, op, creation)
}

func rsaSizeSupported(bits int) bool {
	switch bits {
	case 1024, 2048, 3072, 4096:
		return true
	}
	return false
}

// rsaKey returns the RSA key stored for key EF fid; ok is false if the EF
// holds no RSA key. Decoded keys are cached by their record bytes, so a
// changed or restored store is always honoured.
func (c *Card) rsaKey(r reader, fid uint16) (*rsa.PrivateKey, bool, error) {
	key := keyKey(fid)
	b, ok := r.Get(key)
	if !ok {
		return nil, false, nil
	}
	t, err := keyKind(key, b)
	if err != nil {
		return nil, false, err
	}
	if t != keyTypeRSA {
		return nil, false, nil
	}
	c.cacheMu.Lock()
	ck, hit := c.cache[key]
	c.cacheMu.Unlock()
	if hit && bytes.Equal(ck.raw, b) {
		return ck.key, true, nil
	}
	k, err := decodeRSAKey(key, b)
	if err != nil {
		return nil, false, err
	}
	c.cacheMu.Lock()
	c.cache[key] = cachedKey{raw: b, key: k}
	c.cacheMu.Unlock()
	return k, true, nil
}

// rememberKey records that the stored value raw of key decodes to k (a key
// just generated), so that its first use does not parse and precompute it
// again (a seeded card's keys come from a pool already parsed). rsaKey
// still compares the stored bytes with raw before using k.
func (c *Card) rememberKey(key string, raw []byte, k *rsa.PrivateKey) {
	c.cacheMu.Lock()
	c.cache[key] = cachedKey{raw: raw, key: k}
	c.cacheMu.Unlock()
}

// desKey returns the 3DES key stored for key EF fid, if any.
func desKey(r reader, fid uint16) ([]byte, bool, error) {
	key := keyKey(fid)
	b, ok := r.Get(key)
	if !ok {
		return nil, false, nil
	}
	t, err := keyKind(key, b)
	if err != nil || t != keyTypeDES3 {
		return nil, false, err
	}
	return b[2:], true, nil
}

// --- Introspection (read-only, concurrency-safe) ---

// DO returns the value (without tag and length) of data object tag in DO
// container EF ef.
func (c *Card) DO(ef, tag uint16) (value []byte, ok bool) {
	key := doKey(ef, uint32(tag))
	b, ok := c.store.Get(key)
	if !ok {
		return nil, false
	}
	v, err := decodeDO(key, b)
	if err != nil {
		return nil, false
	}
	return v, true
}

// LifeCycle returns the application's life-cycle state. A corrupt record
// yields LifeCycle(0).
func (c *Card) LifeCycle() LifeCycle {
	l, err := loadLifeCycle(c.store)
	if err != nil {
		return 0
	}
	return l
}

// PINTriesLeft returns the user PIN's remaining tries, as the card reports
// them in DO 7F71 (3 while no PIN is set; -1 if the record is corrupt).
func (c *Card) PINTriesLeft() int {
	p, _, err := loadPIN(c.store)
	if err != nil {
		return -1
	}
	return int(p.tries)
}

// KeyRefs returns, sorted, the key references (81..FF, i.e. key EFs
// B081..B0FF) that hold an RSA key.
func (c *Card) KeyRefs() []byte {
	var out []byte
	for _, k := range c.store.Keys(prefixKey) {
		fid, ok := parseFIDKey(k, prefixKey)
		if !ok || fid&0xFF00 != 0xB000 {
			continue
		}
		b, _ := c.store.Get(k)
		if t, err := keyKind(k, b); err == nil && t == keyTypeRSA {
			out = append(out, byte(fid))
		}
	}
	slices.Sort(out)
	return out
}

// PublicKey returns the public half of the RSA key with reference kref.
func (c *Card) PublicKey(kref byte) (*rsa.PublicKey, bool) {
	k, ok, err := c.rsaKey(c.store, 0xB000|uint16(kref))
	if err != nil || !ok {
		return nil, false
	}
	return &rsa.PublicKey{N: new(big.Int).Set(k.N), E: k.E}, true
}
