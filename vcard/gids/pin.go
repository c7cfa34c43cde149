package gids

import (
	"crypto/subtle"
	"slices"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/store"
)

// The card has one PIN, reference 80 (P2=00 is an alias, as in GA), 4..16
// bytes compared as given (OpenSC and Windows send ASCII without padding),
// 3 tries. There is no PUK: unblocking is RESET RETRY COUNTER after admin
// authentication (docs/reference/gids-protocol.md §4.3).

// pinRef reports whether p2 names the user PIN.
func pinRef(p2 byte) bool { return p2 == 0x80 || p2 == 0x00 }

func pinLenOK(n int) bool { return n >= pinMinLen && n <= pinMaxLen }

// verify implements VERIFY (docs/reference/gids-protocol.md §2.5; GA
// GidsPINManager.processVerify).
//
//	P1≠00 → 6A86. P2=82: logout (PIN and admin status, challenge and
//	security environment cleared), 9000. P2 not 00/80 → 6A88.
//	No PIN set yet → 9000 for an empty VERIFY in the creation state,
//	else 6984 (GA compares against an uninitialised PIN instead).
//	PIN blocked → 6983, even for the right PIN.
//	Lc=0 → 9000 in the creation state, else 63Cx (even when verified).
//	Length outside 4..16 → 63Cx without using a try.
//	Wrong PIN → the try counter is decremented in the store before the
//	answer 63Cx (x = tries left) is sent, and PIN status is cleared.
//	Right PIN → counter back to the limit, PIN verified, 9000.
func (c *Card) verify(cmd apdu.Command) ([]byte, error) {
	if cmd.P1 != 0 {
		return nil, apdu.SWIncorrectP1P2
	}
	if cmd.P2 == 0x82 {
		c.logout()
		return nil, nil
	}
	if !pinRef(cmd.P2) {
		return nil, apdu.SWReferencedDataNotFound
	}
	var result error
	verified := false
	err := c.update(func(tx *store.Tx) error {
		lc, err := loadLifeCycle(tx)
		if err != nil {
			return err
		}
		p, set, err := loadPIN(tx)
		if err != nil {
			return err
		}
		n := len(cmd.Data)
		if !set {
			if n == 0 && lc == Creation {
				return nil
			}
			if n == 0 {
				result = apdu.RetriesLeft(int(p.tries))
				return nil
			}
			return apdu.SWReferenceDataNotUsable
		}
		if p.tries == 0 {
			return apdu.SWAuthMethodBlocked
		}
		if n == 0 {
			if lc != Creation {
				result = apdu.RetriesLeft(int(p.tries))
			}
			return nil
		}
		if !pinLenOK(n) {
			result = apdu.RetriesLeft(int(p.tries))
			return nil
		}
		if subtle.ConstantTimeCompare(cmd.Data, p.value) != 1 {
			p.tries--
			tx.Put(recPIN, p.encode())
			result = apdu.RetriesLeft(int(p.tries))
			c.sec.pin = false // the check itself clears the status (Java Card OwnerPIN)
			return nil
		}
		if p.tries != p.limit {
			p.tries = p.limit
			tx.Put(recPIN, p.encode())
		}
		verified = true
		return nil
	})
	if err != nil {
		// The store may not have recorded a failed try: report nothing
		// but the error, and keep the card logged out.
		c.sec.pin = false
		return nil, err
	}
	if verified {
		c.sec.pin = true
	}
	return nil, result
}

// changeReferenceData implements CHANGE REFERENCE DATA (docs/reference/gids-protocol.md
// §2.6; GA GidsPINManager.processChangeReferenceData).
//
// P1=01 sets the PIN without the old one: P2 not 00/80 → 6A88, length
// outside 4..16 → 6700, in the operational state the PIN must be verified
// (6982). The try counter is reset and the PIN status cleared (Java Card
// OwnerPIN.update), so the new PIN must be presented. gids-tool uses this
// in the creation state to set the first PIN.
//
// P1=00 changes the PIN: data = old PIN ‖ new PIN, split at the stored
// PIN's length. Total length outside 8..32 → 63Cx without using a try;
// blocked → 6983; old PIN wrong → try used, 63Cx; old PIN right → counter
// reset and PIN verified, then a new PIN outside 4..16 → 6700, else the
// new PIN is stored, 9000 (PIN stays verified).
//
// Other P1 → 6A86.
func (c *Card) changeReferenceData(cmd apdu.Command) ([]byte, error) {
	switch cmd.P1 {
	case 0x01:
		if !pinRef(cmd.P2) {
			return nil, apdu.SWReferencedDataNotFound
		}
		if !pinLenOK(len(cmd.Data)) {
			return nil, apdu.SWWrongLength
		}
		err := c.update(func(tx *store.Tx) error {
			lc, err := loadLifeCycle(tx)
			if err != nil {
				return err
			}
			if lc != Creation && !c.sec.pin {
				return apdu.SWSecurityStatusNotSatisfied
			}
			p := pinRecord{tries: pinTryLimit, limit: pinTryLimit, value: cmd.Data}
			tx.Put(recPIN, p.encode())
			return nil
		})
		if err != nil {
			return nil, err
		}
		c.sec.pin = false
		return nil, nil

	case 0x00:
		if !pinRef(cmd.P2) {
			return nil, apdu.SWReferencedDataNotFound
		}
		var result error
		verified := false
		err := c.update(func(tx *store.Tx) error {
			p, set, err := loadPIN(tx)
			if err != nil {
				return err
			}
			if !set {
				return apdu.SWReferenceDataNotUsable
			}
			n := len(cmd.Data)
			if n < 2*pinMinLen || n > 2*pinMaxLen {
				result = apdu.RetriesLeft(int(p.tries))
				return nil
			}
			if p.tries == 0 {
				return apdu.SWAuthMethodBlocked
			}
			cur := min(len(p.value), n)
			if subtle.ConstantTimeCompare(cmd.Data[:cur], p.value) != 1 {
				p.tries--
				tx.Put(recPIN, p.encode())
				c.sec.pin = false
				result = apdu.RetriesLeft(int(p.tries))
				return nil
			}
			verified = true
			p.tries = p.limit
			if newPIN := cmd.Data[cur:]; pinLenOK(len(newPIN)) {
				p.value = slices.Clone(newPIN)
			} else {
				result = apdu.SWWrongLength
			}
			tx.Put(recPIN, p.encode())
			return nil
		})
		if err != nil {
			c.sec.pin = false
			return nil, err
		}
		if verified {
			c.sec.pin = true
		}
		return nil, result
	}
	return nil, apdu.SWIncorrectP1P2
}

// resetRetryCounter implements RESET RETRY COUNTER (docs/reference/gids-protocol.md §2.7;
// GA GidsPINManager.processResetRetryCounter): 00 2C 02 80 <new PIN> after
// admin authentication (§2.9). Creation state → 6986; P1≠02 → 6A86;
// P2≠80 → 6A88; admin not authenticated → 6982; length outside 4..16 →
// 6700. Sets the PIN, resets the try counter, then clears all
// authentication.
func (c *Card) resetRetryCounter(cmd apdu.Command) ([]byte, error) {
	lc, err := loadLifeCycle(c.store)
	if err != nil {
		return nil, err
	}
	switch {
	case lc == Creation:
		return nil, apdu.SWCommandNotAllowedNoCurrentEF
	case cmd.P1 != 0x02:
		return nil, apdu.SWIncorrectP1P2
	case cmd.P2 != 0x80:
		return nil, apdu.SWReferencedDataNotFound
	case !c.sec.keys.has(adminKeyRef):
		return nil, apdu.SWSecurityStatusNotSatisfied
	case !pinLenOK(len(cmd.Data)):
		return nil, apdu.SWWrongLength
	}
	err = c.update(func(tx *store.Tx) error {
		p := pinRecord{tries: pinTryLimit, limit: pinTryLimit, value: cmd.Data}
		tx.Put(recPIN, p.encode())
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.logout()
	return nil, nil
}
