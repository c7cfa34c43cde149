package winhost

import (
	"errors"
	"fmt"

	"github.com/cardharness/cardharness/winerr"
)

// Error is a failed host operation. Code is what the Windows API would
// return; Err, if set, is the cause (a card error, a minidriver error).
// It unwraps to both, the Code first, so errors.As(err, &code) gives the
// Windows API's answer and errors.Is(err, winerr.NTE_BAD_KEYSET) matches
// it, while the cause stays reachable with errors.Is/As.
type Error struct {
	Op   string // the Windows-side operation, e.g. "CryptAcquireCertificatePrivateKey"
	Code winerr.Code
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s: %v", e.Op, e.Code)
	}
	return fmt.Sprintf("%s: %v: %v", e.Op, e.Code, e.Err)
}

// Unwrap returns the Windows code, then the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Code}
	}
	return []error{e.Code, e.Err}
}

func newErr(op string, code winerr.Code, cause error) *Error {
	return &Error{Op: op, Code: code, Err: cause}
}

// InsertCardError is the outcome of a non-silent operation that needs a card
// no reader holds: Windows shows the "insert smart card" dialog
// (SCardUIDlgSelectCard filtered on the container, §2.7 step 2). The
// harness has nobody to insert a card, so the dialog is reported as this
// error; errors.Is(err, ErrInsertCardDialog) matches it. A silent
// operation in the same situation fails with Knobs.SilentNoContainerError
// instead.
type InsertCardError struct {
	Op            string
	ContainerGUID string
}

func (e *InsertCardError) Error() string {
	return fmt.Sprintf("%s: no inserted card holds container %q: Windows would show the insert-smart-card dialog", e.Op, e.ContainerGUID)
}

// Is matches ErrInsertCardDialog.
func (e *InsertCardError) Is(target error) bool { return target == ErrInsertCardDialog }

// Errors of the model itself (no Windows code applies).
var (
	// ErrInsertCardDialog matches every InsertCardError.
	ErrInsertCardDialog = errors.New("winhost: insert-smart-card dialog")
	// ErrNotSignedIn: the operation needs the signed-in user's stores.
	ErrNotSignedIn = errors.New("winhost: no user is signed in")
	// ErrProcessExited: the process was ended (Exit, Logoff, Reboot).
	ErrProcessExited = errors.New("winhost: process has exited")
	// ErrCardUnusableForSignIn: logon could not acquire the card's default
	// container silently (§2.6, T11). The cause carries the Windows code.
	ErrCardUnusableForSignIn = errors.New("winhost: card unusable for sign-in")
	// ErrReaderOccupied: InsertCard into a reader that holds a card.
	ErrReaderOccupied = errors.New("winhost: reader already holds a card")
)

func noCard(op, reader string) error {
	return newErr(op, winerr.SCARD_E_NO_SMARTCARD, fmt.Errorf("no card in reader %q", reader))
}

// cardCode is the Windows code a minidriver error carries (the CardError
// code, SCARD_W_WRONG_CHV for a wrong PIN), or fallback.
func cardCode(err error, fallback winerr.Code) winerr.Code {
	if c, ok := winerr.FromError(err); ok {
		return c
	}
	return fallback
}
