// Package winhost is a deterministic model of the Windows smart-card host
// side — Base CSP and the Smart Card KSP in each process, the smart-card
// service with its global cache, the user's certificate stores, the
// certificate propagation service and the logon path — driven against real
// (virtual) cards through the minidriver client. It exists to reproduce on
// Linux the enrollment bugs nobody can reproduce on Windows: a certificate
// that "appears only sometimes", CryptAcquireCertificatePrivateKey failing
// with 0x8009200B, renewals that fill the card with orphan containers, a
// stale cache serving an old public key.
//
// # Sources
//
// The model is docs/reference/minidriver-semantics.md §2 (host model) built on
// §1 (cardcf, cache modes, PINs) and §3.1–3.3 (enrollment and renewal at
// card level). Every rule in the code cites the section or the transition
// (T1–T16 of §2.8) it implements, with the tags of the reference: [S] a
// source states it, [I] an inference, [U] unofficial reverse-engineering
// notes. Where the sources leave a behaviour open (§2.8 "Knobs", §7), the
// model has a field in Knobs instead of a silent guess.
//
// # Entities (§2.1)
//
//   - Host: one Windows machine with one interactive user (Logon, Logoff),
//     readers (InsertCard, RemoveCard), the smart-card service
//     (RestartCardService) and its global cache G: (cardid, item name) →
//     (cardcf snapshot, bytes), shared by every process, kept across card
//     removal (GlobalCache lists it).
//   - Process: one process's Base CSP/KSP instance (StartProcess): its card
//     connections, a per-process data cache for SESSION_ONLY cards, PIN
//     caches per card and per API (CAPI and CNG are separate), PIN prompt
//     counters.
//   - User: HKCU\My and HKCU\REQUEST (CertStore), with CERT_KEY_PROV_INFO
//     (KeyProvInfo) and CERT_ENROLLMENT_PROP_ID (EnrollmentProperty).
//   - CertPropSvc and the logon enumeration run inside the host as service
//     processes.
//
// # Read path (§2.2)
//
// Every CSP operation is one card transaction. It starts by reading cardid
// and cardcf from the card; then each item it needs — the cmapfile and
// kxcNN/kscNN files (covered by wFilesFreshness), container info with the
// public key (wContainersFreshness), PIN_INFO (bPinsFreshness) — is looked
// up by the card's cache mode: GLOBAL_CACHE in G (HIT / STALE / MISS by
// the covering counter; a stale or missing item is read from the card and
// written back, unless bigger than the per-item cap, T16), SESSION_ONLY in
// the process's cache without any freshness check, dropped at removal
// (T15), NO_CACHE never. Stats and the event log (Host.Events) show which.
// A process whose view of bPinsFreshness moved drops its cached PINs (T6).
//
// # Write path (§2.3)
//
// GenerateKeyPair, InstallCertificate, DeleteContainer, ChangePIN,
// CreateRequest, InstallResponse and AbortRequest run as Base CSP does:
// one transaction, PIN from the process's cache or a prompt, minidriver
// calls with minidriver.BumpCorrect (BumpNone on a read-only card), then
// cardcf is re-read and G updated under the new snapshot. Out-of-band
// writers (§2.4) are not part of the model: a scenario uses the minidriver
// client directly with a faulty minidriver.Bump, and the host's next
// transaction sees what a real host would.
//
// # Asynchrony and determinism
//
// Certificate propagation (§2.5) runs on the virtual clock
// (harness/vclock) after a logon, an insertion or a CertPropSvc restart,
// with a seeded delay (Knobs.PropagationDelaySample): nothing happens until
// the scenario advances the clock. Container GUIDs,
// request serial numbers and propagation jitter come from Config.Seed. The
// PIN a prompt returns is the host's "user" answer (Config.UserPIN,
// SetUserPIN, or Config.Prompter). A Host is safe for concurrent use but
// serialises everything; never advance the clock from inside a host call.
//
// # Errors
//
// Windows outcomes are *Error values carrying a winerr.Code, matched with
// errors.Is (errors.Is(err, winerr.CRYPT_E_NO_KEY_PROPERTY)); the card or
// minidriver cause is wrapped underneath. The insert-card dialog of a
// non-silent operation that needs an absent card is an *InsertCardError
// (errors.Is(err, ErrInsertCardDialog)).
//
// # Host profiles, knobs and the fidelity ledger
//
// Where Windows versions differ or the sources leave a behaviour open, the
// model has a field in Knobs. Named host profiles (profiles.go:
// windows-11-2025, the default, windows-10-legacy, windows-7) bundle them;
// ProfileKnobs returns a profile's knobs, DefaultKnobs the default's.
// Every knob's comment names its row in docs/windows-fidelity.md, which
// gives what Windows does, the public source, the model's rule, the
// default, and the test and scenario that show it; a test fails if a knob
// has no row.
//
// The rules that changed with current Windows: certificate propagation
// writes the Smart Card KSP into CERT_KEY_PROV_INFO (2025-10-14 update,
// CVE-2024-30098); CryptAcquireCertificatePrivateKey follows its flags as
// documented (no NCRYPT flag: CryptoAPI only, which refuses a KSP property
// with NTE_BAD_PROV_TYPE) and heals a missing property unless
// CRYPT_ACQUIRE_NO_HEALING; certificate contexts belong to a process
// (CertContext); Base CSP selects a new default container when it deletes
// the default one and skips a full card.
//
// # Not modelled
//
// UPN matching at logon (needs a directory), root-certificate propagation
// (msroots) and its clean-up policy, machine stores, RDP redirection of
// the cache, PIN cache policies other than PinCacheNormal (timed, none,
// always-prompt), the per-process data cache of GLOBAL_CACHE cards beyond
// G, and the minidriver's own internal caching on NO_CACHE cards. Card
// properties (cache mode, read-only, free space) come from
// minidriver.Options and are not cached in G.
//
// Bare § citations in this package refer to docs/reference/minidriver-semantics.md.
package winhost
