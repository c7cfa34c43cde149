// Package vcard holds the software smart cards of cardharness and the
// interface every reader link drives them through.
//
// A card is a passive thing: a reader powers it, resets it, asks for its ATR
// and hands it one command APDU at a time. Keeping that contract tiny lets the
// same card sit behind vsmartcard's vpcd (vcard/vpcd), behind an in-process
// transport (pcsc.Direct) or inside a unit test, and keeps vcard free of any
// host-side import: the card must build for Windows and macOS in pure Go.
package vcard

// Card is a smart card as a reader sees it. A reader link calls the methods
// from one goroutine at a time; implementations need no locking for a single
// link but must tolerate being moved from one link to another.
type Card interface {
	// ATR returns the answer to reset. Readers ask for it at any time,
	// powered or not (vpcd polls it every 400 ms as a presence probe), so it
	// must be cheap and must not change card state.
	ATR() []byte
	// PowerOn, PowerOff and Reset clear volatile security state the way a
	// real card does when its contacts lose power or RST is asserted.
	PowerOn()
	PowerOff()
	Reset()
	// Process executes one command APDU and returns the full response APDU
	// (data followed by SW1 SW2). It never returns fewer than two bytes:
	// an empty frame on the vpcd link means "card removed".
	Process(cmd []byte) []byte
}
