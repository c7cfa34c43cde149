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
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.usable(); err != nil {
		return &Error{Op: "power cycle", Reader: k.reader, Err: err}
	}
	err := bounded(ctx, func() error {
		return k.card.Reconnect(scard.ShareShared, scard.ProtocolT0|scard.ProtocolT1, scard.UnpowerCard)
	})
	if err != nil {
		if isContextErr(err) {
			k.abandoned = true
		}
		return &Error{Op: "power cycle", Reader: k.reader, Err: err}
	}
	if st, err := k.card.Status(); err == nil {
		k.atr = st.Atr
	}
	return nil
}
