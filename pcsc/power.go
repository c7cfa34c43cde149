package pcsc

import (
	"context"

	"github.com/ebfe/scard"
)

// PowerCycle powers the card down and up again (SCardReconnect with
// SCARD_UNPOWER_CARD): a cold reset, as when the card leaves the reader.
// The card loses its volatile state; what it persisted must survive,
// which is what a conformance check of persistence needs (a warm Reset
// may not cut the power on every reader).
func (k *Card) PowerCycle(ctx context.Context) error {
	return k.reconnect(ctx, "power cycle", scard.UnpowerCard)
}
