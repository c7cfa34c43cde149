// Package vpcd is the card side of vsmartcard's vpcd reader driver: the
// link that connects a vcard.Card to a pcscd reader slot over TCP.
//
// Wire protocol (docs/reference/vpcd-and-peers.md §1, vsmartcard doc/api.txt):
// every message in either direction is a 2-byte big-endian length followed by
// that many bytes. A 1-byte message from the reader is a control byte
// (00 power off, 01 power on, 02 reset, 04 "send your ATR"); anything longer
// is a command APDU, answered by exactly one frame holding the response APDU.
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
// Bare § citations in this package refer to docs/reference/vpcd-and-peers.md.
package vpcd
