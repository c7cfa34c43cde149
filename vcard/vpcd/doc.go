// Package vpcd is the card side of vsmartcard's vpcd reader driver: the
// link that connects a vcard.Card to a pcscd reader slot over TCP.
//
// Wire protocol (docs/reference/vpcd-and-peers.md §1, vsmartcard doc/api.txt):
// every message in either direction is a 2-byte big-endian length followed by
// that many bytes. A 1-byte message from the reader is a control byte
// (00 power off, 01 power on, 02 reset, 04 "send your ATR"); anything longer
// is a command APDU, answered by exactly one frame holding the response APDU.
//
// # 1-byte frames are ambiguous
//
// vpcd sends a 1-byte command APDU from an application exactly like a
// control byte (§1.3). For the controls 00 (off), 01 (on) and 02 (reset)
// vpcd expects no answer, while for a 1-byte APDU it waits for one without
// a timeout: the card cannot tell the two apart, so a 1-byte APDU 00, 01
// or 02 is taken as a control and leaves that application's transmit (and
// with it the reader, for every client) waiting until the card is removed;
// a 1-byte APDU 04 gets the ATR as its "response". Answering 00/01/02
// would put a stray frame on the link and desynchronise every later
// exchange, so the link does not. Every other 1-byte frame is answered
// 67 00 (wrong length), which ends the transmit. The host side of this
// project (package pcsc) refuses command APDUs shorter than 4 bytes before
// they reach the reader, so only foreign clients can send them.
//
// Three facts shape this implementation:
//   - Debian's vpcd 3.3 writes the length and the payload in two send()
//     calls without TCP_NODELAY. With Linux's delayed ACK that costs ~44 ms per
//     APDU unless the card re-arms TCP_QUICKACK after every read (§0 finding 1, §5).
//   - The reader side parses a stream, and so must we: a reset and an ATR
//     request may arrive in one TCP segment (§1.4), so frames are read with
//     io.ReadFull, never one frame per Read.
//   - An empty frame makes vpcd eject the card (§1.3), so the link never sends
//     one, whatever the card returns.
//
// Closing the connection is how a card is "removed"; dialling again is how it
// is "inserted" (§1.7). Link.Remove and Link.Insert do exactly that, and the
// link re-dials on its own when the reader goes away.
//
// # Frame limits and re-dialling
//
// A vpcd frame holds at most 65535 bytes (§1.2); vpcd drops the card when
// asked to send a longer command, and a longer response cannot be framed.
// The link never sends one: a response over the limit is replaced by 67 00
// (apdu.Session already keeps responses within it with 61xx), and package
// pcsc refuses longer commands. When a connection that was up ends while
// the card is inserted (vpcd dropped it, pcscd restarted), the link dials
// again only after more than one pcscd presence poll (PollPeriod, 400 ms,
// plus a margin and up to 25 % jitter), doubling the wait for a reader
// that keeps dropping the card, up to a cap (WithRedialInterval, default
// 5 s). A card that came back before the poll would never be seen removed:
// clients would keep handles to a card that lost its security state. The
// same wait applies to Insert shortly after Remove. Failed dials (nothing
// connected) are retried quickly. Each re-dial is logged at info level, at
// most once every 30 s.
//
// Bare § citations in this package refer to docs/reference/vpcd-and-peers.md.
package vpcd
