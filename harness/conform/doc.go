// Package conform checks a GIDS card against what Windows' inbox
// minidriver and OpenSC's GIDS driver need from it, in the spirit of
// Microsoft's minidriver certification tests, from Linux through PC/SC:
// the discovery sequence, the minidriver file system of the GIDS
// electrical profile, PIN and admin authentication, key generation,
// signing and deciphering, the transport rules (chaining, long
// responses), the access rules, persistence.
//
// Every check names the section of docs/reference/gids-protocol.md it
// comes from. Checks that write to the card run only with
// Options.Destructive; without it they are reported not applicable, so a
// read-only run is safe on a card in use. Checks that need the PIN or the
// admin key are not applicable when none is given: nothing assumes a
// default. A destructive run deletes what it created and leaves the PIN
// as it found it; it does not otherwise clean the card.
//
// Bare § citations in this package refer to
// docs/reference/gids-protocol.md.
package conform
