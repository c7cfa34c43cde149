// Package stack runs a private pcscd with vsmartcard's vpcd driver, with
// virtual cards in its reader slots, without touching the system's pcscd.
//
// The recipe is docs/reference/vpcd-and-peers.md §2.3. pcscd's socket and pid
// file paths are compiled in (/run/pcscd), so a second pcscd needs its own
// mount namespace with a private directory bound over /run/pcscd, and its own
// network namespace so that vpcd's listeners (0.0.0.0:35963+n, no
// authentication) are reachable only from inside. Clients outside find the
// private pcscd through PCSCLITE_CSOCK_NAME, since a Unix socket path is a
// file visible from both sides.
//
// The stack re-executes the current binary as a small helper inside those
// namespaces (see the init hook in helper_linux.go). The helper sets up
// loopback and the bind mount, runs pcscd as its child, dials vpcd ports on
// the cards' behalf and hands the connected sockets back over a Unix socket
// (SCM_RIGHTS). The cards themselves therefore run in the calling process,
// where tests and scenarios can reach their internals, while their TCP
// connections live in the private namespace and dial 127.0.0.1:35963+n.
//
// As root the helper needs no user namespace. As an ordinary user it adds
// one (unshare --user --map-root-user), where the kernel allows it.
//
// Cleanup: Close stops everything and removes the directory. If the calling
// process dies instead, the helper sees its lifeline pipe close and does the
// same: it stops pcscd and removes the directory. The cards die with the
// process that runs them.
//
// Privacy: the stack's directory is made 0700 (an existing one of the
// caller's is narrowed; one of another user, or a symlink, is refused),
// because pcscd's socket is 0666 and unauthenticated.
//
// Death: if pcscd or the helper dies, the stack stops (it does not restart
// pcscd: the clients' handles died with it), logs an error, closes Done and
// reports ErrDied from Err and Close. See docs/DESIGN.md, "Decisions".
//
// vpcd slots come in pairs (Debian builds the driver with two slots per
// reader entry), and two reader entries that share one driver file
// overwrite each other's slot state (§1.5). Each pair of slots therefore
// gets its own copy of the driver.
//
// Bare § citations in this package refer to docs/reference/vpcd-and-peers.md.
package stack
