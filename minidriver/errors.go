package minidriver

import (
	"errors"
	"fmt"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/winerr"
)

// CardError is a command the card refused. Code is the Windows error the
// minidriver API reports for it; SW is what the card said. Both match with
// errors.Is: errors.Is(err, winerr.SCARD_W_WRONG_CHV) and
// errors.Is(err, apdu.SWSecurityStatusNotSatisfied).
type CardError struct {
	Op   string // the minidriver operation and the APDU, e.g. "CardReadFile mscp/kxc00: GET DATA A010/DF24"
	SW   apdu.Status
	Code winerr.Code
}

func (e *CardError) Error() string {
	return fmt.Sprintf("%s: card answered %v (%s)", e.Op, e.SW, e.Code.Name())
}

// Is matches the Windows code or the status word.
func (e *CardError) Is(target error) bool {
	switch t := target.(type) {
	case winerr.Code:
		return t == e.Code
	case apdu.Status:
		return e.SW.Is(t) || e.SW == t
	}
	return false
}

// WrongPINError: the PIN was wrong; Retries is what the card reported.
type WrongPINError struct {
	Retries int
}

func (e *WrongPINError) Error() string {
	return fmt.Sprintf("wrong PIN, %d tries left: %v", e.Retries, winerr.SCARD_W_WRONG_CHV)
}

// Is matches winerr.SCARD_W_WRONG_CHV.
func (e *WrongPINError) Is(target error) bool { return target == winerr.SCARD_W_WRONG_CHV }

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
