// Package gids is a virtual smart card running a GIDS v2 (Microsoft Generic
// Identity Device Specification) application, as OpenSC 0.23's GIDS driver
// and the Windows inbox minidriver expect it.
//
// The byte-level specification is the project's docs/reference/gids-protocol.md (cited as
// §n). It was derived from OpenSC and from GidsApplet (GA), the JavaCard
// reference implementation; this package follows GA's observable behaviour
// (status words, order of checks) except where listed below. No code was
// taken from either project.
//
// # The card
//
// Card implements vcard.Card. The application is implicitly selected at
// power-on and reset and is also selected by its AID (any prefix of
// A0 00 00 03 97 42 54 46 59 02 01 of at least 9 bytes) or by FID 3FFF.
// Short APDUs, command chaining and 61xx/GET RESPONSE are handled by
// apdu.Session. As in GidsApplet, a command without Le that returns data
// (SELECT, GET DATA, GENERAL AUTHENTICATE, PERFORM SECURITY OPERATION) is
// answered as if Le were 256: Windows sends its GIDS SELECT without Le and
// no GET RESPONSE after it (issue 11 §1). GENERATE ASYMMETRIC KEY PAIR
// without Le answers only 61xx, GidsApplet's exception that OpenSC expects.
//
// Supported commands: SELECT, GET DATA, PUT DATA (DOs, key
// import, admin key), VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER,
// MANAGE SECURITY ENVIRONMENT, GENERAL AUTHENTICATE (mutual and external,
// 3DES), GENERATE ASYMMETRIC KEY PAIR (RSA 1024..4096), PERFORM SECURITY
// OPERATION (sign, decipher), CREATE FILE, ACTIVATE FILE, DELETE FILE and
// TERMINATE DF. Every other INS is answered 6D00.
//
// Files are the six DO container EFs and the key EFs that hosts create
// (gids-tool --initialize creates A000, A010..A014 and the admin key EF
// B080; key containers add B081...). Access rules are the compact security
// attributes (8C) in the FCPs the host supplied, evaluated as in §4.2.
// Persistent state is kept in a store.Store with one atomic update per
// command; the record layout is documented in records.go.
//
// Initialize performs gids-tool --initialize through Process; FactoryReset
// returns the card to the blank creation state. DO, LifeCycle,
// PINTriesLeft, KeyRefs and PublicKey let a test harness inspect the card
// concurrently with Process.
//
// # Deviations from GidsApplet
//
//   - Security status is recorded per reference (ISO 7816-4 §5.4.3): the
//     user PIN (80) and each key reference that passed GENERAL
//     AUTHENTICATE. An "admin" (20) condition is met only by the admin key,
//     reference 80 in key EF B080 as gids-tool personalises it. GA sets one
//     "admin authenticated" flag for any key a MSE names, so a PIN holder
//     who creates a key EF with an A4 template and loads a 3DES key of their
//     own becomes admin there (issue 8 finding 1); here that authentication
//     succeeds but satisfies no access condition.
//   - DELETE FILE requires the application's "delete child" rule (PIN or
//     admin), the EF's own delete rule (40) if any, and the EF's write rule
//     (02: PUT DATA / PUT KEY) if any, which the admin may override; GA
//     checks the delete bit only, which
//     OpenSC never sets, so anyone may delete A010 or B080 there (§2.13).
//   - System files (A000, A010..A014 and the admin key EF B080, the files
//     of gids-tool --initialize) can be deleted, and re-created once
//     missing, only by the admin, whatever their access rules say: a PIN
//     holder cannot replace the admin key or re-create an admin-write file
//     with an open rule. GA has no such notion.
//   - TERMINATE DF requires the admin once operational; GA lets anyone.
//   - Unknown AIDs are answered 6A82 and leave the application selected
//     with its state (jCardSim answers 6999); only the GIDS AID (prefix of
//     9..11 bytes) and FID 3FFF select the application — not GA's internal
//     FID 3F00, and not arbitrary substrings of the AID.
//   - A SELECT refused because of P2 (e.g. FCI of an EF) does not change
//     the current EF.
//   - GET DATA / PUT DATA with P1P2=0000 and no current EF answer 6986
//     (GA: 6981); VERIFY or CHANGE REFERENCE DATA before any PIN has been
//     set answer 6984 (GA compares against an uninitialised PIN).
//   - PUT DATA must carry exactly one TLV (GA ignores trailing bytes).
//   - Data objects of an EF are listed in ascending tag order by 5C 00 (GA:
//     storage order).
//   - Logout (VERIFY P2=82), RESET RETRY COUNTER and application activation
//     also clear the security environment; PERFORM SECURITY OPERATION
//     re-checks the key's MSE rule, requires the SE to be for the same
//     operation (B6/B8) and answers 6985 when no key is usable (GA:
//     undefined/6F00).
//   - GENERATE and RSA import refuse key EFs without a B6/B8 template, and
//     3DES import key EFs without an A4 template (6984), so the admin key
//     cannot be overwritten by an RSA key. The 3DES key must be 24 bytes.
//   - Capacity: 160 EFs, 255 DOs and 1 MiB of DO values per EF (GA: 30/30).
//   - PKCS#1 v1.5 signing accepts up to k-11 input bytes (GA: 247), with
//     command chaining; raw (0x1?) signing and decipher need exactly k bytes.
//   - OAEP deciphering uses SHA-1 (the CAPI/minidriver default).
//   - PIN bytes are compared as given; like GA the card does not insist on
//     ASCII (OpenSC and Windows send ASCII).
//   - Without Le, GA assumes 256 only for answers it sends through its
//     TransmitManager.sendData (GET DATA, public key, signature, GET
//     RESPONSE) and sends SELECT's FCI, GENERAL AUTHENTICATE's answer and
//     deciphered data with setOutgoingAndSend, i.e. at once; this card
//     assumes 256 for every instruction but GENERATE ASYMMETRIC KEY PAIR.
//     The observable answers are the same for every command GA supports,
//     up to 256 bytes; longer answers get 256 bytes and 61xx.
//   - One response never carries more than 65533 data bytes, even for an
//     extended Le of 0000 (65536): a vpcd frame holds 65535 bytes with the
//     status word (the rest follows by 61xx/GET RESPONSE). GA has no
//     extended-length support.
//
// Like GA, in the creation state all PIN/admin conditions count as
// satisfied but "never" (FF) still refuses; new EFs accept only ACTIVATE
// until activated (6985); there is no admin-key try counter.
//
// Bare § citations in this package refer to docs/reference/gids-protocol.md.
package gids
