package winhost

import (
	"fmt"
	"time"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// Provider names as registered for smart cards (Calais\SmartCards\<card>
// "Crypto Provider" and "Smart Card Key Storage Provider" values); they are
// what CERT_KEY_PROV_INFO carries (docs/reference/minidriver-semantics.md §2.5, OpenSC
// PR#2523).
const (
	ProviderCAPI = "Microsoft Base Smart Card Crypto Provider"
	ProviderKSP  = "Microsoft Smart Card Key Storage Provider"
)

// Granularity says which cardcf counters decide whether a cached item is
// still fresh (docs/reference/minidriver-semantics.md §2.2 "Knob", §7 question 1).
type Granularity int

const (
	// PerCategory compares only the counter that covers the item: files
	// for cmapfile and kxcNN, containers for container info, pins for the
	// PIN information (§2.2 pseudo-code).
	PerCategory Granularity = iota
	// WholeSnapshot compares all three counters: any change on the card
	// makes every cached item stale.
	WholeSnapshot
)

func (g Granularity) String() string {
	if g == WholeSnapshot {
		return "whole-snapshot"
	}
	return "per-category"
}

// NoDefaultPolicy is what the host does with a card whose cmapfile has no
// valid default container (§2.6, T11).
type NoDefaultPolicy int

const (
	// NoDefaultFails: the silent acquire of the default container fails,
	// so the card is unusable for sign-in [S MSENUM].
	NoDefaultFails NoDefaultPolicy = iota
	// NoDefaultPickFirst: the host picks the first valid container, one
	// reading of MSARCH's "Windows picks another one arbitrarily".
	NoDefaultPickFirst
)

func (p NoDefaultPolicy) String() string {
	if p == NoDefaultPickFirst {
		return "pick-first"
	}
	return "fail"
}

// CertFileNaming is how the host names a container's certificate file
// (docs/reference/minidriver-semantics.md §1.1, §7 q6: Base CSP's own spelling past
// index 9 is unknown).
type CertFileNaming int

const (
	// CertNamesHex: two hex digits, kxc0A for index 10 (fs.CertFileName,
	// OpenSC's card-gids %02X; file names match case-insensitively, so
	// libgtop11dotnet's %02x is the same file).
	CertNamesHex CertFileNaming = iota
	// CertNamesDecimal: kxc10 for index 10 (OpenSC's Windows minidriver,
	// %02i).
	CertNamesDecimal
)

func (n CertFileNaming) String() string {
	if n == CertNamesDecimal {
		return "decimal"
	}
	return "hex"
}

// file returns the certificate file name of container idx.
func (n CertFileNaming) file(idx int, spec fs.KeySpec) string {
	if n != CertNamesDecimal {
		return fs.CertFileName(idx, spec)
	}
	prefix := "kxc"
	if spec == fs.AT_SIGNATURE {
		prefix = "ksc"
	}
	return fmt.Sprintf("%s%02d", prefix, idx)
}

// Knobs are the host behaviours the sources leave open
// (docs/reference/minidriver-semantics.md §2.8 "Knobs to expose" and §7). Every field has a
// documented default in DefaultKnobs; the zero Knobs is NOT the default (a
// nil Config.Knobs is). Change a copy of DefaultKnobs():
//
//	k := winhost.DefaultKnobs()
//	k.Granularity = winhost.WholeSnapshot
//	host := winhost.New(winhost.Config{Knobs: &k})
type Knobs struct {
	// --- global cache G (§2.1, §1.4, T16) ---

	// Granularity: which counters validate a cached item (§7 q1).
	// Default PerCategory: the §2.2 model names one covering counter per
	// item, and the cache-item header carrying the whole snapshot [U] does
	// not say it is compared whole.
	Granularity Granularity
	// CmapfileCounter is the counter that covers the cached cmapfile.
	// Default fs.CategoryFiles: the item is named
	// "Cached_GeneralFile/mscp/cmapfile" like any file [U TBT blog] and
	// MS-FS calls it a file. §2.2's pseudo-code lists cmap under
	// wContainers instead; set fs.CategoryContainers (or both) to model
	// that. Correct writers bump both on a cmapfile write, so the choice
	// only shows with BumpWrongCounter.
	CmapfileCounter fs.Category
	// GlobalCachePersistent: G survives RestartCardService and Reboot.
	// Default true: RE notes show SCardSvr writing the cache to the
	// registry (Calais\Cache) [U], which the spec allows for defaults
	// (§7 q5 asks for confirmation). G always survives card removal [I].
	GlobalCachePersistent bool
	// CacheMaxBytesPerItem: items bigger than this (value plus the 16-byte
	// item header) are not cached; reading them is a card read every time
	// (T16, SCARD_W_CACHE_ITEM_TOO_BIG). 0: no cap. Default 10000, the
	// CacheMaxBytesPerItem value seen in the scardsvr decompilation [U].
	CacheMaxBytesPerItem int
	// CacheMaxBytesTotal caps G as a whole; the oldest-written items are
	// evicted first [I: the eviction order is not known]. 0: no cap.
	// Default 50000, CacheMaxBytesTotal from the same dump [U].
	CacheMaxBytesTotal int
	// CacheMaxItemAge: items older than this (virtual clock) are misses.
	// 0: no limit. Default 5 days, CacheMaxItemAgeDays from the same
	// dump [U].
	CacheMaxItemAge time.Duration

	// CertFileNaming: the certificate file names the host reads and
	// writes (§7 q6). Default CertNamesHex: what the harness's writers
	// use (§1.1 "use two hex digits"); CertNamesDecimal reproduces S14.
	CertFileNaming CertFileNaming

	// --- PINs (§1.6, T6, T7) ---

	// SessionPINs: the PIN caches hold session PINs (CardAuthenticateEx
	// GENERATE_SESSION_PIN) and the card honours only the latest one, so
	// a prompt through one API (or process) invalidates every other
	// cache for that card, which then prompts again: the "PIN battle".
	// Default false: session PINs are an optional v6/v7 minidriver
	// feature [S MSDG] and the GIDS card here has none, so Base CSP and
	// the KSP each cache the real PIN, and a CAPI-CNG-CAPI sequence
	// prompts twice, not three times.
	SessionPINs bool
	// DropPINOnWrongPIN: a cached PIN the card rejects is dropped, so the
	// next operation prompts. Default true [I]: a cache that kept a
	// rejected PIN would block the card on its own. With it, a stale PIN
	// costs one try per process that cached it (T6).
	DropPINOnWrongPIN bool
	// PINCacheSurvivesRemoval: a process keeps its cached PIN for a card
	// across removal and reinsertion. Default false [I]: the cache hangs
	// off the card handle, and removal invalidates handles; also, session
	// PINs live until cold reset [S MSDG].
	PINCacheSurvivesRemoval bool
	// SchannelPINCache: where the TLS stack's use of a card key (client
	// authentication, tls.go) caches the PIN. Default SchannelOwnPINCache:
	// a cache of its own, separate from Base CSP's and the KSP's, as the
	// founding document reports (one more prompt per renewal). With
	// SingleTokenPINCache (Windows 7) the caches overwrite each other.
	SchannelPINCache SchannelPINCache
	// SingleTokenPINCache: a process keeps one PIN (session token) per
	// card for all its providers, so a PIN typed for one (Schannel, Base
	// CSP, the KSP) overwrites the others', which prompt again. Windows 7,
	// per the founding document: three prompts for a renewal through the
	// relay in the logical order. Default false: per-provider caches [S
	// founding document for Windows 7; I for later versions having
	// separate caches].
	SingleTokenPINCache bool
	// ChangePINBumpsPins: Base CSP's change-PIN bumps bPinsFreshness,
	// so other processes drop their cached PIN (§1.2, §7 q2). Default
	// true: §1.2 (libgtop11dotnet, OpenSC's "PIN freshness will be
	// managed by the Base CSP"). False makes a Base CSP PIN change behave
	// like the faulty out-of-band writer of T6.
	ChangePINBumpsPins bool

	// --- certificate propagation (§2.5, T8) ---

	// PropagationEnabled is the CertPropEnabled policy. Default true [S
	// MSGP: the service runs by default].
	PropagationEnabled bool
	// PropagationDelay: how long after its trigger (logon, insertion)
	// the propagation runs, on the virtual clock. Default 1 s [I]: the
	// sources say only "asynchronous"; a non-zero default makes a
	// scenario that forgets to wait fail the way a real host can.
	PropagationDelay time.Duration
	// PropagationJitter adds a uniformly random 0..jitter (from the host
	// seed) to each delay. Default 0.
	PropagationJitter time.Duration
	// PropagationReadsThroughCache: propagation reads the certificates
	// through G (and so can propagate stale ones) rather than straight
	// from the card. Default true: OpenSC#524 suggests so (§7 q4).
	PropagationReadsThroughCache bool
	// PropagationProvider is the provider name propagation writes into
	// CERT_KEY_PROV_INFO. Default ProviderCAPI, the card's registered
	// "Crypto Provider" [S OpenSC PR#2523].
	PropagationProvider string

	// --- private-key acquisition (§2.7, T9, T10) ---

	// SilentNoContainerError: the code a silent acquire returns when no
	// inserted card holds the container (§7 q3). Default NTE_BAD_KEYSET,
	// the first candidate §2.7 lists; SCARD_E_NO_KEY_CONTAINER and
	// NTE_SILENT_CONTEXT are the alternatives.
	SilentNoContainerError winerr.Code
	// HealMissingProvInfo: acquisition without CERT_KEY_PROV_INFO tries
	// to re-create it by finding a container whose public key matches
	// the certificate (CryptAcquireCertificatePrivateKey without
	// CRYPT_ACQUIRE_NO_HEALING). Default false: the healing mechanism is
	// not documented [S CACPK], so the documented error is the default.
	HealMissingProvInfo bool

	// --- logon (§2.6, T11) ---

	// LogonReadsAllCertificates: logon enumeration reads every
	// certificate (PP_USER_CERTSTORE) rather than only the default
	// container's AT_KEYEXCHANGE one. Default true: Base CSP supports
	// PP_USER_CERTSTORE [S MSENUM].
	LogonReadsAllCertificates bool
	// LogonAllowSignatureOnlyKeys (AllowSignatureOnlyKeys policy).
	// Default false [S MSGP].
	LogonAllowSignatureOnlyKeys bool
	// LogonAllowNoEKU (AllowCertificatesWithNoEKU): without it a logon
	// certificate needs the smart-card-logon EKU. Default false [S MSGP].
	LogonAllowNoEKU bool
	// LogonAllowTimeInvalid (AllowTimeInvalidCertificates). Default
	// false [S MSGP].
	LogonAllowTimeInvalid bool
	// LogonFilterDuplicateCerts (FilterDuplicateCerts): of certificates
	// with the same subject and issuer, only the one expiring last is
	// offered. Default false [S MSGP].
	LogonFilterDuplicateCerts bool
	// NoDefaultContainer: what logon does without a valid default
	// container. Default NoDefaultFails [S MSENUM].
	NoDefaultContainer NoDefaultPolicy
}

// DefaultKnobs returns the defaults documented on each field.
func DefaultKnobs() Knobs {
	return Knobs{
		Granularity:                  PerCategory,
		CmapfileCounter:              fs.CategoryFiles,
		GlobalCachePersistent:        true,
		CacheMaxBytesPerItem:         10000,
		CacheMaxBytesTotal:           50000,
		CacheMaxItemAge:              5 * 24 * time.Hour,
		CertFileNaming:               CertNamesHex,
		SessionPINs:                  false,
		DropPINOnWrongPIN:            true,
		PINCacheSurvivesRemoval:      false,
		ChangePINBumpsPins:           true,
		SchannelPINCache:             SchannelOwnPINCache,
		SingleTokenPINCache:          false,
		PropagationEnabled:           true,
		PropagationDelay:             time.Second,
		PropagationJitter:            0,
		PropagationReadsThroughCache: true,
		PropagationProvider:          ProviderCAPI,
		SilentNoContainerError:       winerr.NTE_BAD_KEYSET,
		HealMissingProvInfo:          false,
		LogonReadsAllCertificates:    true,
		LogonAllowSignatureOnlyKeys:  false,
		LogonAllowNoEKU:              false,
		LogonAllowTimeInvalid:        false,
		LogonFilterDuplicateCerts:    false,
		NoDefaultContainer:           NoDefaultFails,
	}
}
