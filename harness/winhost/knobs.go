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

// The knobs' enumerations print (and scenarios spell them) by the names in
// their tables; scenarios/knobs.go lists a knob's values from String.

// enumName is the String of a small enumeration: its name in names, or
// Type(n) for a value out of range.
func enumName[E ~int](names []string, v E) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%T(%d)", v, int(v))
}

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

var granularityNames = [...]string{PerCategory: "per-category", WholeSnapshot: "whole-snapshot"}

func (g Granularity) String() string { return enumName(granularityNames[:], g) }

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

var noDefaultPolicyNames = [...]string{NoDefaultFails: "fail", NoDefaultPickFirst: "pick-first"}

func (p NoDefaultPolicy) String() string { return enumName(noDefaultPolicyNames[:], p) }

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

var certFileNamingNames = [...]string{CertNamesHex: "hex", CertNamesDecimal: "decimal"}

func (n CertFileNaming) String() string { return enumName(certFileNamingNames[:], n) }

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

// ProviderRule is how certificate propagation chooses the provider it
// writes into CERT_KEY_PROV_INFO (ledger row H-PROP-PROVIDER).
type ProviderRule int

const (
	// ProviderKSPForAll: the Smart Card KSP for every certificate, the rule
	// since the 2025-10-14 security update for CVE-2024-30098 (KB5073121
	// "Guidance for certificate handling for Smart Card propagated
	// certificates", Summary).
	ProviderKSPForAll ProviderRule = iota
	// ProviderCSPForRSA: Base CSP for RSA certificates and the KSP for all
	// others, the rule before that update (same article, Summary).
	ProviderCSPForRSA
)

var providerRuleNames = [...]string{ProviderKSPForAll: "ksp-for-all", ProviderCSPForRSA: "csp-for-rsa"}

func (r ProviderRule) String() string { return enumName(providerRuleNames[:], r) }

// HealSource is where CryptAcquireCertificatePrivateKey looks when it
// re-creates a missing CERT_KEY_PROV_INFO (ledger row H-ACQ-HEAL).
type HealSource int

const (
	// HealFromMyStore copies the property from the same certificate
	// (same SHA-1 hash) in the user's My store.
	HealFromMyStore HealSource = iota
	// HealByKeySearch looks for a container whose public key is the
	// certificate's on the inserted cards, as CryptFindCertificateKeyProvInfo
	// does, and records Base CSP as the provider.
	HealByKeySearch
)

var healSourceNames = [...]string{HealFromMyStore: "my-store", HealByKeySearch: "key-search"}

func (s HealSource) String() string { return enumName(healSourceNames[:], s) }

// NewDefaultPolicy is which container Base CSP makes the default when the
// default one is deleted (ledger row H-CSP-NEWDEFAULT).
type NewDefaultPolicy int

const (
	// NewDefaultFirstValid: the first valid container by index.
	NewDefaultFirstValid NewDefaultPolicy = iota
	// NewDefaultLastValid: the last valid container by index.
	NewDefaultLastValid
	// NewDefaultNone: no new default (the card is unusable for sign-in
	// until someone sets one): what an out-of-band writer leaves.
	NewDefaultNone
)

var newDefaultPolicyNames = [...]string{NewDefaultFirstValid: "first-valid", NewDefaultLastValid: "last-valid", NewDefaultNone: "none"}

func (p NewDefaultPolicy) String() string { return enumName(newDefaultPolicyNames[:], p) }

// FreshnessRule is how a cached item's counters are compared with the
// card's (ledger row H-CACHE-FRESHNESS).
type FreshnessRule int

const (
	// FreshnessCountersDiffer: any difference makes the item stale.
	FreshnessCountersDiffer FreshnessRule = iota
	// FreshnessCardNewer: the item is stale only if the card's counter is
	// newer (greater) than the cached one, the reading of SCardReadCache's
	// "older than" wording; a card whose counters went back (re-initialised,
	// S3) keeps serving the old items.
	FreshnessCardNewer
)

var freshnessRuleNames = [...]string{FreshnessCountersDiffer: "counters-differ", FreshnessCardNewer: "card-newer"}

func (r FreshnessRule) String() string { return enumName(freshnessRuleNames[:], r) }

// SchannelPINCache says where the TLS stack caches the PIN of a card key.
type SchannelPINCache int

const (
	// SchannelOwnPINCache: a cache of its own, separate from Base CSP's
	// and the KSP's (the founding document's observation: the TLS stack
	// and the smart-card CSP cache PINs separately).
	SchannelOwnPINCache SchannelPINCache = iota
	// SchannelSharesProcessCache: the TLS stack uses the process's
	// provider (ProcessOptions.API) and its cache, so a PIN typed for the
	// request also signs the handshake [I: an alternative to compare].
	SchannelSharesProcessCache
)

var schannelPINCacheNames = [...]string{SchannelOwnPINCache: "own-cache", SchannelSharesProcessCache: "shares-process-cache"}

func (c SchannelPINCache) String() string { return enumName(schannelPINCacheNames[:], c) }

// Knobs are the host behaviours that differ between Windows versions or
// that the sources leave open (docs/reference/minidriver-semantics.md §2.8 "Knobs to
// expose" and §7). Every field's comment names its row in the fidelity
// ledger, docs/windows-fidelity.md, where the source, the default and the
// test and scenario that show it are listed. Defaults are those of the
// default host profile (DefaultProfile, profiles.go); the zero Knobs is NOT
// the default (a nil Config.Knobs is). Change a copy:
//
//	k := winhost.DefaultKnobs() // or ProfileKnobs("windows-10-legacy")
//	k.Granularity = winhost.WholeSnapshot
//	host := winhost.New(winhost.Config{Knobs: &k})
type Knobs struct {
	// --- global cache G (§2.1, §1.4, T16) ---

	// Granularity: which counters validate a cached item (§7 q1).
	// Default PerCategory: the §2.2 model names one covering counter per
	// item, and the cache-item header carrying the whole snapshot [U] does
	// not say it is compared whole. Ledger: H-CACHE-GRANULARITY.
	Granularity Granularity
	// CacheFreshness: how counters compare. Default
	// FreshnessCountersDiffer: the minidriver specification's cardcf
	// rule is "a counter changed"; FreshnessCardNewer follows the
	// SCardReadCache documentation's "older than" wording. Ledger:
	// H-CACHE-FRESHNESS.
	CacheFreshness FreshnessRule
	// CmapfileCounter is the counter that covers the cached cmapfile.
	// Default fs.CategoryFiles: the item is named
	// "Cached_GeneralFile/mscp/cmapfile" like any file [U TBT blog] and
	// MS-FS calls it a file. §2.2's pseudo-code lists cmap under
	// wContainers instead; set fs.CategoryContainers (or both) to model
	// that. Correct writers bump both on a cmapfile write, so the choice
	// only shows with BumpWrongCounter. Ledger: H-CACHE-CMAPCOUNTER.
	CmapfileCounter fs.Category
	// GlobalCachePersistent: G survives RestartCardService and Reboot.
	// Default true: RE notes show SCardSvr writing the cache to the
	// registry (Calais\Cache) [U]. Ledger: H-CACHE-PERSIST.
	GlobalCachePersistent bool
	// CacheMaxBytesPerItem: items bigger than this (value plus the 16-byte
	// item header) are not cached (T16, SCARD_W_CACHE_ITEM_TOO_BIG). 0:
	// no cap. Default 10000 [U scardsvr]. Ledger: H-CACHE-LIMITS.
	CacheMaxBytesPerItem int
	// CacheMaxBytesTotal caps G as a whole; the oldest-written items are
	// evicted first [I]. 0: no cap. Default 50000 [U]. Ledger:
	// H-CACHE-LIMITS.
	CacheMaxBytesTotal int
	// CacheMaxItemAge: items older than this (virtual clock) are misses.
	// 0: no limit. Default 5 days [U]. Ledger: H-CACHE-LIMITS.
	CacheMaxItemAge time.Duration

	// CertFileNaming: the certificate file names the host reads and
	// writes (§7 q6). Default CertNamesHex (§1.1); CertNamesDecimal
	// reproduces S14. Ledger: H-CSP-CERTNAMES.
	CertFileNaming CertFileNaming

	// --- PINs (§1.6, T6, T7) ---

	// SessionPINs: the host's Base CSP and KSP use session PINs
	// (CardAuthenticateEx with GENERATE_SESSION_PIN) for cards that
	// declare them (minidriver.Options.SessionPINs, the card's
	// CP_CARD_PIN_STRENGTH_VERIFY); the card honours only the latest one,
	// so a prompt through one API invalidates the other's cache: the "PIN
	// battle". A card that does not declare session PINs is never given
	// one. Default false (profile windows-7: true). Ledger:
	// H-PIN-SESSION.
	SessionPINs bool
	// DropPINOnWrongPIN: a cached PIN the card rejects is dropped, so the
	// next operation prompts. Default true [I]. Ledger: H-PIN-WRONG.
	DropPINOnWrongPIN bool
	// PINCacheSurvivesRemoval: a process keeps its cached PIN for a card
	// across removal and reinsertion. Default false [I]. Ledger:
	// H-PIN-REMOVAL.
	PINCacheSurvivesRemoval bool
	// SchannelPINCache: where the TLS stack's use of a card key (client
	// authentication, tls.go) caches the PIN. Default SchannelOwnPINCache:
	// a cache of its own, separate from Base CSP's and the KSP's, as the
	// founding document reports (one more prompt per renewal) [S founding
	// document; I the cache's owner]. Ledger: H-PIN-SCHANNEL.
	SchannelPINCache SchannelPINCache
	// SingleTokenPINCache: the TLS stack and the smart-card CSPs share one
	// PIN (session token) per card in a process, so a PIN typed for the
	// handshake overwrites Base CSP's and the KSP's, and the other way
	// round (Base CSP and the KSP still keep theirs apart): three prompts
	// for a renewal through the relay in the logical order.
	// Default false (profile windows-7: true) [S founding document for
	// Windows 7; I later versions have per-provider caches]. Ledger:
	// H-PIN-SINGLE-TOKEN.
	SingleTokenPINCache bool
	// ChangePINBumpsPins: Base CSP's change-PIN bumps bPinsFreshness, so
	// other processes drop their cached PIN (§1.2, §7 q2). Default true.
	// Ledger: H-PIN-CHANGE.
	ChangePINBumpsPins bool

	// --- certificate propagation (§2.5, T8) ---

	// PropagationEnabled is the CertPropEnabled policy ("Turn on
	// certificate propagation from smart card"). Default true: enabled
	// when not configured. Ledger: H-PROP-TRIGGERS.
	PropagationEnabled bool
	// PropagationDelay is the fixed part of the time between a trigger
	// (logon, insertion, CertPropSvc restart) and the propagation, on the
	// virtual clock. Default 1 s. Ledger: H-PROP-DELAY.
	PropagationDelay time.Duration
	// PropagationJitter adds a uniformly random 0..jitter (host seed).
	// Default 2 s. Ledger: H-PROP-DELAY.
	PropagationJitter time.Duration
	// PropagationTail adds an exponentially distributed delay of this
	// mean (host seed): the long tail behind "up to about a minute".
	// Default 2 s. Ledger: H-PROP-DELAY.
	PropagationTail time.Duration
	// PropagationPerReader is added once per other reader holding a card:
	// CertPropSvc handles readers one after the other. Default 1 s.
	// Ledger: H-PROP-DELAY.
	PropagationPerReader time.Duration
	// PropagationMaxDelay caps the total. 0: no cap. Default 60 s.
	// Ledger: H-PROP-DELAY.
	PropagationMaxDelay time.Duration
	// PropagationReadsThroughCache: propagation reads the certificates
	// through G rather than straight from the card. Default true
	// (OpenSC#524, §7 q4). Ledger: H-PROP-CACHE.
	PropagationReadsThroughCache bool
	// PropagationProviderRule: which provider propagation writes into
	// CERT_KEY_PROV_INFO. Default ProviderKSPForAll (windows-11-2025;
	// windows-10-legacy and windows-7: ProviderCSPForRSA). Ledger:
	// H-PROP-PROVIDER.
	PropagationProviderRule ProviderRule
	// PropagationCSPOverrideForRSA is the temporary registry value
	// HKLM\SOFTWARE\Microsoft\Cryptography\Calais DisableCapiOverrideForRSA
	// = 0 that restores Base CSP for RSA certificates under
	// ProviderKSPForAll. Default false: the value does not exist unless an
	// administrator creates it. Ledger: H-PROP-PROVIDER.
	PropagationCSPOverrideForRSA bool
	// RoamingProfile: the user's certificate stores roam between the
	// hosts that share a Config.Roaming (a roaming user profile), so a
	// REQUEST dummy made on one host is found by InstallResponse on
	// another. Default false. Ledger: H-PROP-REQUEST.
	RoamingProfile bool

	// --- private-key acquisition (§2.7, T9, T10) ---

	// SilentNoContainerError: the code a silent acquire returns when no
	// inserted card holds the container (§7 q3). Default NTE_BAD_KEYSET.
	// Ledger: H-ACQ-SILENT.
	SilentNoContainerError winerr.Code
	// HealMissingProvInfo: CryptAcquireCertificatePrivateKey without
	// CRYPT_ACQUIRE_NO_HEALING tries to re-create a missing
	// CERT_KEY_PROV_INFO. Default true: the flag's documentation
	// describes turning that attempt off. Ledger: H-ACQ-HEAL.
	HealMissingProvInfo bool
	// HealSource: where healing looks (undocumented). Default
	// HealFromMyStore. Ledger: H-ACQ-HEAL.
	HealSource HealSource
	// CNGOpensCSPProvInfo: a CNG attempt (ALLOW/PREFER/ONLY_NCRYPT) on a
	// certificate whose CERT_KEY_PROV_INFO names Base CSP opens the same
	// card container through the Smart Card KSP (both sit on the same
	// minidriver). Default true [I]; false: the CNG attempt fails with
	// NTE_BAD_PROVIDER. Ledger: H-ACQ-API.
	CNGOpensCSPProvInfo bool

	// --- Base CSP container rules (§2.6, T11, T12) ---

	// NewDefaultOnDelete: the container that becomes the default when
	// Base CSP deletes the default one without naming a successor.
	// Default NewDefaultFirstValid. Ledger: H-CSP-NEWDEFAULT.
	NewDefaultOnDelete NewDefaultPolicy
	// FullCardSilentError: what a silent container creation returns when
	// no inserted card has room (a non-silent one shows the insert-card
	// dialog). Default NTE_TOKEN_KEYSET_STORAGE_FULL. Ledger:
	// H-CSP-FULLCARD.
	FullCardSilentError winerr.Code

	// --- logon (§2.6, T11) ---

	// LogonReadsAllCertificates: logon enumeration reads every
	// certificate (PP_USER_CERTSTORE) rather than only the default
	// container's AT_KEYEXCHANGE one. Default true. Ledger: H-LOGON-ENUM.
	LogonReadsAllCertificates bool
	// LogonAllowSignatureOnlyKeys (AllowSignatureOnlyKeys). Default
	// false. Ledger: H-LOGON-FILTER.
	LogonAllowSignatureOnlyKeys bool
	// LogonAllowNoEKU (AllowCertificatesWithNoEKU): when on, certificates
	// with no EKU, the All Purpose EKU or the Client Authentication EKU
	// are offered too; when off only the smart-card-logon EKU. Default
	// false. Ledger: H-LOGON-FILTER.
	LogonAllowNoEKU bool
	// LogonAllowTimeInvalid (AllowTimeInvalidCertificates). Default
	// false. Ledger: H-LOGON-FILTER.
	LogonAllowTimeInvalid bool
	// LogonFilterDuplicateCerts (FilterDuplicateCerts): of certificates
	// from the same template and major version for the same UPN, only the
	// one expiring last is offered. Default true: "If you enable or do
	// not configure this policy setting, filtering will take place".
	// Ledger: H-LOGON-DUPLICATES.
	LogonFilterDuplicateCerts bool
	// NoDefaultContainer: what logon does without a valid default
	// container. Default NoDefaultFails. Ledger: H-LOGON-NODEFAULT.
	NoDefaultContainer NoDefaultPolicy
}

// DefaultKnobs returns the knobs of DefaultProfile.
func DefaultKnobs() Knobs {
	k, err := ProfileKnobs(DefaultProfile)
	if err != nil {
		panic(err) // the profile table is static
	}
	return k
}
