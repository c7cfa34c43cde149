// Package apdu is the card side of the ISO 7816-4 command/response layer
// for the virtual GIDS card.
//
// The virtual card receives raw command APDUs from vpcd and must answer
// them exactly as a physical card on a T=1 reader would, because the peers
// under test — OpenSC 0.23 and the Windows inbox minidriver — were written
// against such cards and react to every transport detail. The rules below
// come from the project's GIDS reference, docs/reference/gids-protocol.md (cited as §n),
// which in turn cites OpenSC's apdu.c/iso7816.c and GidsApplet's
// TransmitManager, both read as ISO 7816-4 in practice.
//
// # Codec
//
// ParseCommand and Command.Bytes implement the seven ISO 7816-4 §5.1
// shapes (cases 1, 2S, 3S, 4S, 2E, 3E, 4E). Malformed length fields are
// reported as *ParseError naming the field rather than repaired, since a
// harness that guesses would mask host bugs. Command.HasLe keeps "no Le"
// apart from "Le present", which matters because OpenSC treats a 61xx
// answer to a command without Le as plain success (§2.1). OpenSC itself
// only ever sends short APDUs to a GIDS card (§2.1); the extended forms
// are implemented so that other hosts and tests can use them.
//
// Status is the status word. It implements error so handlers can return
// it through normal error paths; errors.Is matches exact values and, via
// Status.Is, the parameterised families 63Cx, 61xx and 6Cxx. The named
// constants cover everything GidsApplet and OpenSC exchange (§2.16).
//
// # Session: chaining and GET RESPONSE
//
// Session sits between the raw bytes and a handler func(Command) Response
// so the handler deals only in whole commands and whole responses:
//
//   - Command chaining (CLA bit 0x10, ISO 7816-4 §5.4.2). OpenSC chains
//     PUT DATA and PERFORM SECURITY OPERATION in 255-byte chunks, Windows
//     in 240-byte chunks (§2.1); any chunk size is accepted. Each non-final
//     chunk is answered 9000 without data and the handler sees one
//     assembled Command (CLA bit 0x10 cleared, Le/Ne of the final chunk).
//     As in GidsApplet, only some instructions may chain (default 2A, 47,
//     DB; otherwise 6884). A chain interrupted by an APDU with a different
//     INS, P1, P2 or CLA (ignoring the chaining bit) is dropped and that
//     APDU is answered 6900 without being executed. GidsApplet answers
//     6900 too (6884 if the interrupting INS cannot chain at all) but
//     keeps the stale chain, which only delays the failure. Assembled data is capped (Session.MaxChainData, default
//     65535 = the largest extended Nc); overflow is answered 6A84, the
//     status GidsApplet uses when its chaining buffer is full.
//
//   - Response data longer than Ne. The first Ne bytes are sent with 61xx
//     (xx = bytes left, 00 for 256 or more) and the rest waits for GET
//     RESPONSE (00 C0 00 00 Le), which again returns at most Ne bytes and
//     61xx until the last part carries the handler's own status word
//     (§2.1, observed 256 + 61 00, 256 + 61 AC, 172 + 9000 for a 684-byte
//     DO, §2.3). The same rule covers every case: short Le=00 gives
//     256-byte parts, a smaller Le gives smaller parts (ISO allows 61xx
//     here; 6Cxx would make the host resend the command, and OpenSC needs
//     neither), an extended Le gives up to MaxResponseData (65533) bytes at
//     once, since a vpcd frame carries 65535 bytes with the status word
//     (a longer one makes vpcd drop the card).
//
//   - A command without Le (case 1/3) that has response data is answered
//     as if Le were 256: up to 256 bytes with the handler's status word,
//     more with 256 bytes and 61xx. This is what GidsApplet does
//     (TransmitManager.sendData assumes 256 when "le has not been set", a
//     fix for VMware's shared reader, which strips Le) and what Windows
//     relies on: its inbox minidriver sends the GIDS SELECT
//     00 A4 04 00 09 A0 00 00 03 97 42 54 46 59 without Le and sends no
//     GET RESPONSE after it (§1.2, §1.4); GENERAL AUTHENTICATE and GET
//     DATA are treated alike. ISO 7816-4 would have the card send no data
//     to a case 3 command; a card that answers 61xx there risks being
//     taken for an unknown device. The exception, again as in GidsApplet,
//     is GENERATE ASYMMETRIC KEY PAIR (Session.WithholdWithoutLe): without
//     Le it answers 61 00 / 61 8C and no data, which OpenSC turns into
//     9000 (§2.10). Handlers that have nothing to say to a case 3 command
//     simply return no data.
//     GET RESPONSE with nothing pending is answered 6985 (the status
//     GidsApplet's documentation gives, though its code sends an empty
//     9000; an error shows a confused host more clearly), with P1-P2
//     other than 0000 6A86, with
//     a data field 6700; without Le it serves 256 bytes, as GidsApplet
//     does for VMware's shared reader, which strips Le (§7). Any other
//     APDU discards undelivered data, as on a real card.
//
//   - Status hygiene. Handler data accompanying an error status (SW1
//     64..6F) is dropped, because ISO 7816-4 sends none with those and a
//     host would misread it; a status word that cannot exist on the wire
//     (e.g. the zero value) becomes 6F00. Process never returns an empty
//     response and never panics on any input.
//
//   - Class byte. Before anything else every APDU's CLA is checked, so a
//     handler only ever sees CLA 00 by default (DefaultCheckCLA:
//     GidsApplet's 6882 for secure messaging and 6E00 for
//     non-interindustry classes, §2.1, plus 6881 for logical channels,
//     which this single-channel card does not offer).
//
// Session.Reset must be called on card reset and application selection;
// the session cannot see those events itself (§1.5).
//
// Bare § citations in this package refer to docs/reference/gids-protocol.md.
package apdu
