// Package fs encodes and decodes the Windows smart-card minidriver files as
// a GIDS card stores them. The virtual card keeps them as opaque DOs; this
// package is where their meaning lives, for the host model, for writers
// that must bump cardcf, and for tests that inspect a card.
//
// References: docs/reference/gids-protocol.md (§3.2–3.6, §3.9) for the GIDS placement
// and byte layouts as OpenSC 0.23 and GidsApplet use them, and
// docs/reference/minidriver-semantics.md (§1.1–1.2) for what the files mean to Windows.
//
// # Why the files look the way they do
//
// The minidriver specification (MS-FS) defines a small logical file system
// (cardid, cardcf, cardapps, mscp/cmapfile, mscp/kxcNN, mscp/kscNN) that
// Base CSP reads through any card's minidriver. GIDS has no directories of
// its own, only DO-container EFs whose access rule applies to every DO
// inside, so the inbox GIDS profile adds two files of its own:
//
//   - The masterfile (A000/DF1F, docs/reference/gids-protocol.md §3.3) maps a minidriver
//     path to (EF, DO). Its 28-byte records are a C struct dumped as is —
//     two char[9] names, two alignment bytes, two little-endian ints —
//     which is why the names must keep a NUL inside their 9 bytes (OpenSC
//     0.23 compares with strcmp) and why tags sit in 32-bit fields. New
//     files go to EF A010 at the lowest unreferenced tag from DF21
//     (FreeDO), which is how the first certificate lands in DF24.
//   - The keymap (A000/DF20, §3.6) mirrors the cmapfile with one 12-byte
//     record per container, naming the key EF. It is undocumented and
//     reverse-engineered; its only hard rule known is OpenSC's: the record
//     count equals the cmapfile's (CheckConsistent).
//
// The MS-FS files keep their MS-FS layouts (little-endian, since they are
// Windows structures):
//
//   - cardcf (A010/DF22, §3.5; docs/reference/minidriver-semantics.md §1.1) is
//     CARD_CACHE_FILE_FORMAT, the freshness counters hosts compare to
//     decide whether their cache is stale. Version is 0 on GIDS cards and
//     never a freshness signal; counters wrap and are compared for
//     inequality only. The "per counter or whole snapshot" question is
//     open, so CardCF.Diff returns the set of changed counters and the
//     host model decides (Category).
//   - cmapfile (A010/DF23, §3.6) is an array of 86-byte
//     CONTAINER_MAP_RECORDs whose index is the container's identity: key
//     reference 0x81+i, key EF B0(81+i), certificate kxc/ksc<i>. Hence a
//     deletion zeroes a record and never packs the array (Zero), and a new
//     container takes the first invalid record (FirstFree).
//   - kxcNN/kscNN (§3.9) hold the DER certificate compressed as Base CSP
//     does for cards that do not compress themselves: 01 00, the
//     uncompressed length as uint16 LE, a zlib stream. The 16-bit length is
//     why certificates over 65535 bytes cannot be stored, and OpenSC 0.23
//     rejects a file whose stream does not inflate to exactly that length.
//   - cardapps is a list of 8-byte application names ("mscp"); cardid is
//     16 opaque bytes, the key under which hosts cache everything else.
//
// # Choices
//
// Parsers check structure — lengths, versions, terminators, encodings —
// and keep every byte whose meaning is undefined (cardcf's trailing
// bytes, bFlags bits, bReserved, keymap fields), so that a read-modify-
// write by the harness changes only what it meant to change. Rules about
// content (one default container, keymap values, masterfile uniqueness)
// are in Validate methods and CheckConsistent, so that a card left in a
// faulty state by a writer under test can still be read and reported on.
// Bytes after a NUL terminator inside fixed name fields are ignored, as C
// readers do, and written back as zeros; parse→encode→parse is therefore
// stable, and byte-exact for everything real writers produce.
//
// Certificate names are written with upper-case hex (kxc0A), as OpenSC
// does, because OpenSC 0.23 finds files with a case-sensitive compare;
// they are read in either case, as MS-FS makes names case-insensitive.
// Decimal names (OpenSC's Windows minidriver uses %02i) are not
// recognised as such: kxc10 is container 16.
//
// Malformed input yields a *FormatError naming the file, the byte offset,
// and the record and field; a disagreement between cmapfile and keymap is
// a *ConsistencyError.
//
// Bare § citations in this package refer to docs/reference/gids-protocol.md.
package fs
