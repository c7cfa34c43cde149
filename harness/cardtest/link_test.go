package cardtest_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/testcard"
	"github.com/cardharness/cardharness/vcard/vpcd"
)

// rawTransmit sends cmd with ebfe/scard directly, bypassing package
// pcsc's checks, as a foreign PC/SC client would. If no answer comes
// within d it pulls the card (link.Remove), which is the only way to free
// a vpcd reader that waits for a card, and fails.
func rawTransmit(t *testing.T, reader string, link *vpcd.Link, cmd []byte, d time.Duration) []byte {
	t.Helper()
	_, card := rawConnect(t, reader)
	type result struct {
		resp []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := card.Transmit(cmd)
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		// Free the reader now, not at cleanup: the test goes on with
		// other clients (rawConnect's cleanup then finds it done).
		card.Disconnect(scard.LeaveCard)
		if r.err != nil {
			t.Fatalf("transmit % X: %v", cmd, r.err)
		}
		return r.resp
	case <-time.After(d):
		link.Remove()
		<-done
		t.Fatalf("transmit % X: no answer within %v: the reader hangs", cmd, d)
	}
	return nil
}

// Issue 8 finding 2: a 1-byte APDU through the real pcscd and vpcd is
// answered 67 00 by the card instead of hanging the reader, and the reader
// still serves other clients afterwards.
func TestOneByteAPDUDoesNotHangReader(t *testing.T) {
	st := cardtest.Start(t, &testcard.Echo{})
	reader := st.Slots()[0].Reader
	for _, b := range []byte{0x80, 0xFF} {
		if got := rawTransmit(t, reader, st.Slots()[0].Link, []byte{b}, 10*time.Second); !bytes.Equal(got, []byte{0x67, 0x00}) {
			t.Errorf("1-byte APDU %02X answered % X, want 67 00", b, got)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	card, err := cardtest.Client(t).Connect(ctx, reader)
	if err != nil {
		t.Fatal(err)
	}
	defer card.Close()
	resp, err := card.Transmit(ctx, []byte{0x00, 0xDB, 0x3F, 0xFF, 0x01, 0x42})
	if err != nil || !bytes.Equal(resp, []byte{0x42, 0x90, 0x00}) {
		t.Fatalf("APDU after the 1-byte APDUs: % X, %v", resp, err)
	}
	// Package pcsc refuses what vpcd cannot carry unambiguously.
	for _, cmd := range [][]byte{nil, {0x00}, {0x00, 0xA4, 0x04}} {
		_, err := card.Transmit(ctx, cmd)
		var pe *pcsc.Error
		if !errors.Is(err, pcsc.ErrBadCommand) || !errors.As(err, &pe) || pe.Reader != reader {
			t.Errorf("Transmit(% X) = %v, want a *pcsc.Error for %q wrapping ErrBadCommand", cmd, err, reader)
		}
	}
}
