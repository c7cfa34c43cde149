// Package minidriver is a client of the Windows smart-card minidriver API
// (CardAcquireContext, CardReadFile, CardCreateContainer, ...) implemented
// over APDUs to a GIDS card, through any pcsc.Transport.
//
// It does what Microsoft's inbox GIDS minidriver and OpenSC's GIDS driver do
// on the card (docs/reference/gids-protocol.md §2, §3, §5): files are data
// objects mapped by the masterfile, containers are cmapfile records with a
// key file B0(81+i) and a keymap record, certificates are zlib-compressed
// kxcNN/kscNN files. What it adds is an explicit counter-bump policy on
// every write: a correct writer bumps the right cardcf counter before the
// write, inside one card transaction; the faulty writers that the Windows
// host model needs to reproduce stale-cache bugs (no bump, a late bump in a
// separate transaction, the wrong counter, counters reset to zero) are one
// argument away (docs/reference/minidriver-semantics.md §1.2-1.3, §2.4).
//
// The client caches nothing: every call reads the card. Caching is the
// host's business (harness/winhost), and mixing the two would hide exactly
// the bugs the harness exists to show.
//
// Bare § citations in this package refer to docs/reference/gids-protocol.md.
package minidriver
