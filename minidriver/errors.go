package minidriver

import (
	"errors"
	"fmt"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/winerr"
)

// CardError is a command the card refused. Code is the Windows error the
// minidriver API reports for it; SW is what the card said. It unwraps to
// its winerr.Code (errors.As(err, &code), errors.Is(err,
// winerr.SCARD_W_WRONG_CHV)) and, when the card answered 63Cx, to a
// *WrongPINError with the tries left; errors.Is(err,
// apdu.SWSecurityStatusNotSatisfied) matches the status word.
type CardError struct {
	Op   string // the minidriver operation and the APDU, e.g. "CardReadFile mscp/kxc00: GET DATA A010/DF24"
	SW   apdu.Status
	Code winerr.Code
}

func (e *CardError) Error() string {
	return fmt.Sprintf("%s: card answered %v (%s)", e.Op, e.SW, e.Code.Name())
}

// Is matches the status word.
func (e *CardError) Is(target error) bool {
	t, ok := target.(apdu.Status)
	return ok && (e.SW.Is(t) || e.SW == t)
}

// Unwrap hands out the Windows code and, for a wrong PIN, the tries left.
func (e *CardError) Unwrap() []error {
	if n, ok := e.SW.Retries(); ok && n > 0 {
		return []error{e.Code, &WrongPINError{Retries: n}}
	}
	return []error{e.Code}
}

// WrongPINError: the PIN was wrong; Retries is what the card reported
// (63Cx). It is reached through a *CardError (errors.As(err, &wrong)).
type WrongPINError struct {
	Retries int
}

func (e *WrongPINError) Error() string {
	return fmt.Sprintf("wrong PIN, %d tries left: %v", e.Retries, winerr.SCARD_W_WRONG_CHV)
}

// Unwrap is winerr.SCARD_W_WRONG_CHV.
func (e *WrongPINError) Unwrap() error { return winerr.SCARD_W_WRONG_CHV }

// swCode maps a status word to the minidriver API's error, as the inbox
// minidriver reports card failures.
func swCode(sw apdu.Status) winerr.Code {
	switch {
	case sw == apdu.SWFileNotFound, sw == apdu.SWReferencedDataNotFound:
		return winerr.SCARD_E_FILE_NOT_FOUND
	case sw == apdu.SWSecurityStatusNotSatisfied:
		return winerr.SCARD_W_SECURITY_VIOLATION
	case sw == apdu.SWAuthMethodBlocked:
		return winerr.SCARD_W_CHV_BLOCKED
	case sw.Is(apdu.SWVerifyFailed):
		return winerr.SCARD_W_WRONG_CHV
	case sw == apdu.SWNotEnoughMemory:
		return winerr.SCARD_E_WRITE_TOO_MANY
	case sw == apdu.SWReferenceDataNotUsable:
		return winerr.SCARD_E_NO_KEY_CONTAINER
	case sw == apdu.SWWrongLength, sw == apdu.SWWrongData, sw == apdu.SWIncorrectP1P2:
		return winerr.SCARD_E_INVALID_PARAMETER
	}
	return winerr.SCARD_F_INTERNAL_ERROR
}

func cardErr(op string, sw apdu.Status) error {
	return &CardError{Op: op, SW: sw, Code: swCode(sw)}
}

// Errors of the API itself.
var (
	// ErrNoContainer: no valid container at that index.
	ErrNoContainer = fmt.Errorf("minidriver: no such container: %w", winerr.SCARD_E_NO_KEY_CONTAINER)
	// ErrCardFull: no free container slot (cmapfile full or the card has no
	// room for another key file).
	ErrCardFull = fmt.Errorf("minidriver: no free container: %w", winerr.SCARD_E_WRITE_TOO_MANY)
	// ErrNotGIDS: the card did not select the GIDS application.
	ErrNotGIDS = errors.New("minidriver: not a GIDS card (SELECT of the GIDS AID failed)")
)
