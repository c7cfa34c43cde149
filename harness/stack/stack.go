package stack

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/vpcd"
)

// Defaults for Config.
const (
	DefaultDriver  = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
	DefaultPcscd   = "pcscd"
	DefaultTimeout = 20 * time.Second
	// MaxSlots is pcsc-lite's PCSCLITE_MAX_READERS_CONTEXTS.
	MaxSlots = 16
)

// Config describes a stack. The zero value is a stack with 4 empty slots.
type Config struct {
	// Dir holds the stack's files (socket, configuration, logs). Empty: a new
	// temporary directory, removed on Close. A given directory is created if
	// missing; only what the stack put there is removed.
	Dir string
	// Slots is the number of reader slots; it is rounded up to an even
	// number and is at least len(Cards). Zero means max(4, len(Cards)).
	Slots int
	// Cards are inserted into slots 0, 1, ... before Start returns, and
	// Start waits until pcscd reports each of them present.
	Cards []vcard.Card
	// Pcscd and Driver name the pcscd binary and the vpcd driver.
	Pcscd  string
	Driver string
	// Debug runs pcscd with -d -a (debug and APDU log) into pcscd.log.
	Debug bool
	// KeepDir leaves the directory behind on Close, for post-mortems.
	KeepDir bool
	// Timeout bounds start-up (default DefaultTimeout).
	Timeout time.Duration
	// Log receives the stack's own log lines (default: slog.Default()).
	Log *slog.Logger
}

// Slot is one reader slot.
type Slot struct {
	Index  int
	Reader string // pcscd's reader name
	Port   int    // vpcd port inside the namespace
	Link   *vpcd.Link
}

// ErrUnsupported: private stacks need Linux namespaces.
var ErrUnsupported = errors.New("stack: private pcscd stacks need Linux (mount and network namespaces)")

// ErrDied: a running stack stopped on its own (pcscd exited, the helper
// was killed). See Stack.Err.
var ErrDied = errors.New("stack: died")

// ErrMissing: a component the stack needs is not installed.
type ErrMissing struct {
	What, Path, Package string
}

func (e *ErrMissing) Error() string {
	return fmt.Sprintf("stack: %s not found (%s); install it: apt-get install %s (or run `make deps`)", e.What, e.Path, e.Package)
}

// readerName is the name pcscd gives slot n: FRIENDLYNAME + " %02X %02X"
// (PCSC 1.9.9 readerfactory.c). Each pair of slots has its own reader entry
// with its own friendly name, because pcscd numbers readers of the same name
// per driver file and would give two entries identical names.
func readerName(n int) string {
	return fmt.Sprintf("Cardharness VPCD %d 00 %02X", n/2, n%2)
}

func friendlyName(entry int) string { return fmt.Sprintf("Cardharness VPCD %d", entry) }
