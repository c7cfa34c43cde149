package minidriver

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
	"github.com/cardharness/cardharness/winerr"
)

// AuthenticatePIN is CardAuthenticatePin for the user PIN (reference
// 0x80, docs/reference/gids-protocol.md §2.5). A wrong PIN is a *CardError carrying
// SCARD_W_WRONG_CHV and a *WrongPINError with the retries the card
// reports; a blocked PIN is SCARD_W_CHV_BLOCKED.
func (c *Card) AuthenticatePIN(ctx context.Context, pin string) error {
	_, sw, err := c.transmit(ctx, apdu.Command{INS: apdu.INSVerify, P2: refUserPIN, Data: []byte(pin)})
	if err != nil {
		return fmt.Errorf("CardAuthenticatePin: %w", err)
	}
	return pinResult("CardAuthenticatePin: VERIFY", sw)
}

// Key references of the PIN and admin key (docs/reference/gids-protocol.md §2.5, §2.9).
const (
	refUserPIN  = 0x80 // VERIFY / CHANGE REFERENCE DATA / RESET RETRY COUNTER P2
	refLogout   = 0x82 // VERIFY without data: log out of PIN and admin
	refAdminKey = 0x80 // MSE 83 / PUT KEY 84: the admin key
)

func pinResult(op string, sw apdu.Status) error {
	if sw.OK() {
		return nil
	}
	if n, ok := sw.Retries(); ok {
		if n == 0 {
			return cardErr(op, apdu.SWAuthMethodBlocked)
		}
		return cardErr(op, sw)
	}
	return cardErr(op, sw)
}

// PINTries reads the PIN status DO 7F71: tries left and the limit.
func (c *Card) PINTries(ctx context.Context) (left, limit int, err error) {
	resp, err := c.do(ctx, "PIN status: GET DATA 3FFF/7F71", apdu.Command{INS: apdu.INSGetData, P1: 0x3F, P2: 0xFF, Data: getDataTagList(0x7F71), Ne: leMax})
	if err != nil {
		return 0, 0, err
	}
	v, ok, _ := ber.Find(resp, 0x7F71)
	if !ok {
		return 0, 0, fmt.Errorf("PIN status: no 7F71 in % X", resp)
	}
	l, ok1, _ := ber.Find(v, 0x97)
	m, ok2, _ := ber.Find(v, 0x93)
	if !ok1 || !ok2 || len(l) != 1 || len(m) != 1 {
		return 0, 0, fmt.Errorf("PIN status: malformed 7F71 % X", v)
	}
	return int(l[0]), int(m[0]), nil
}

// Deauthenticate is CardDeauthenticate: logout of PIN and admin (`00 20 00
// 82`).
func (c *Card) Deauthenticate(ctx context.Context) error {
	_, err := c.do(ctx, "CardDeauthenticate: VERIFY logout", apdu.Command{INS: apdu.INSVerify, P2: refLogout})
	return err
}

// AuthenticateAdmin is CardAuthenticateChallenge/CardAuthenticateEx for
// the admin key: GIDS mutual authentication with 3DES-CBC, zero IV
// (docs/reference/gids-protocol.md §2.9). random supplies R1 and Z1 (nil: crypto/rand).
func (c *Card) AuthenticateAdmin(ctx context.Context, key [24]byte, random io.Reader) error {
	const op = "admin authentication"
	if random == nil {
		random = rand.Reader
	}
	if _, err := c.do(ctx, op+": MSE", apdu.Command{INS: apdu.INSManageSecurityEnvironment, P1: 0xC1, P2: 0xA4, Data: ber.Encode(0x83, []byte{refAdminKey})}); err != nil {
		return err
	}
	r1 := make([]byte, 16)
	z1 := make([]byte, 7)
	if _, err := io.ReadFull(random, r1); err != nil {
		return err
	}
	if _, err := io.ReadFull(random, z1); err != nil {
		return err
	}
	resp, err := c.do(ctx, op+": GENERAL AUTHENTICATE (challenge)", apdu.Command{INS: apdu.INSGeneralAuthenticate, Data: ber.Encode(0x7C, ber.Encode(0x81, r1)), Ne: leMax})
	if err != nil {
		return err
	}
	dyn, ok, _ := ber.Find(resp, 0x7C)
	r2, ok2, _ := ber.Find(dyn, 0x81)
	if !ok || !ok2 || len(r2) != 16 {
		return fmt.Errorf("%s: card challenge malformed: % X", op, resp)
	}
	block, err := des.NewTripleDESCipher(key[:])
	if err != nil {
		return err
	}
	plain := append(append(append(append([]byte{}, r2...), r1...), z1...), 0x80)
	crypt := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, make([]byte, 8)).CryptBlocks(crypt, plain)
	resp, err = c.do(ctx, op+": GENERAL AUTHENTICATE (response)", apdu.Command{INS: apdu.INSGeneralAuthenticate, Data: ber.Encode(0x7C, ber.Encode(0x82, crypt)), Ne: leMax})
	if err != nil {
		return err
	}
	dyn, ok, _ = ber.Find(resp, 0x7C)
	cc, ok2, _ := ber.Find(dyn, 0x82)
	if !ok || !ok2 || len(cc) != 40 {
		return fmt.Errorf("%s: card cryptogram malformed: % X", op, resp)
	}
	dec := make([]byte, 40)
	cipher.NewCBCDecrypter(block, make([]byte, 8)).CryptBlocks(dec, cc)
	if !bytes.Equal(dec[:16], r1) || !bytes.Equal(dec[16:32], r2) {
		return fmt.Errorf("%s: the card did not prove it knows the admin key: %w", op, winerr.SCARD_W_WRONG_CHV)
	}
	return nil
}

// ChangePIN is CardChangeAuthenticator for the user PIN: the old PIN is
// verified, bPinsFreshness bumped (per pol), then CHANGE REFERENCE DATA.
func (c *Card) ChangePIN(ctx context.Context, oldPIN, newPIN string, pol Bump) error {
	const op = "CardChangeAuthenticator"
	return c.mutate(ctx, op, pol, func(w *writer) error {
		if err := c.AuthenticatePIN(ctx, oldPIN); err != nil {
			return err
		}
		return w.step(fs.CategoryPins, func() error {
			data := append([]byte(oldPIN), newPIN...)
			_, sw, err := c.transmit(ctx, apdu.Command{INS: apdu.INSChangeReferenceData, P2: refUserPIN, Data: data})
			if err != nil {
				return err
			}
			return pinResult(op+": CHANGE REFERENCE DATA", sw)
		})
	})
}

// UnblockPIN is CardUnblockPin with the admin challenge-response: admin
// authentication, bPinsFreshness bumped (the admin may write A010 on a
// GIDS card), RESET RETRY COUNTER. The card deauthenticates afterwards.
func (c *Card) UnblockPIN(ctx context.Context, adminKey [24]byte, newPIN string, pol Bump) error {
	const op = "CardUnblockPin"
	return c.mutate(ctx, op, pol, func(w *writer) error {
		if err := c.AuthenticateAdmin(ctx, adminKey, c.opts.Rand); err != nil {
			return err
		}
		return w.step(fs.CategoryPins, func() error {
			_, err := c.do(ctx, op+": RESET RETRY COUNTER", apdu.Command{INS: apdu.INSResetRetryCounter, P1: 0x02, P2: refUserPIN, Data: []byte(newPIN)})
			return err
		})
	})
}

// ChangeAdminKey replaces the admin key (PUT KEY on B080, §2.12); the
// current key authenticates first.
func (c *Card) ChangeAdminKey(ctx context.Context, oldKey, newKey [24]byte, pol Bump) error {
	const op = "change admin key"
	return c.mutate(ctx, op, pol, func(w *writer) error {
		if err := c.AuthenticateAdmin(ctx, oldKey, c.opts.Rand); err != nil {
			return err
		}
		return w.step(fs.CategoryPins, func() error {
			// 70 { 84 key ref, A5 { 87 key, 88 B0 73 DC } } (§2.12).
			key := append(ber.Encode(0x87, newKey[:]), ber.Encode(0x88, []byte{0xB0, 0x73, 0xDC})...)
			data := ber.Encode(0x70, append(ber.Encode(0x84, []byte{refAdminKey}), ber.Encode(0xA5, key)...))
			_, err := c.do(ctx, op+": PUT DATA 3FFF", apdu.Command{INS: apdu.INSPutData, P1: 0x3F, P2: 0xFF, Data: data})
			return err
		})
	})
}

// IsWrongPIN reports a wrong-PIN error and the retries left.
func IsWrongPIN(err error) (retries int, ok bool) {
	var w *WrongPINError
	if errors.As(err, &w) {
		return w.Retries, true
	}
	return 0, false
}
