package cardtest_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/gids"
	"github.com/cardharness/cardharness/vcard/testcard"
)

// eventCount is pcsc-lite's per-reader event counter (upper 16 bits of
// dwEventState, docs/reference/vpcd-and-peers.md §1.7): it goes up on every
// insertion and removal pcscd sees.
func eventCount(t *testing.T, ctx *scard.Context, reader string) (count int, state scard.StateFlag) {
	t.Helper()
	rs := []scard.ReaderState{{Reader: reader, CurrentState: scard.StateUnaware}}
	if err := ctx.GetStatusChange(rs, 0); err != nil {
		t.Fatal(err)
	}
	return int(rs[0].EventState >> 16), rs[0].EventState & 0xFFFF
}

// recoverCard plays a PC/SC client after its card went away: SCardReconnect
// until it succeeds and a harmless APDU gets 90 00 (with a deadline that
// only catches a card that never comes back), then checks that pcscd
// reports the card present to a fresh status query and that it saw the
// card leave (events > before): a card that re-dials before
// pcscd's poll notices the drop is never seen removed, so clients keep
// handles to a card that lost its security state.
func recoverCard(t *testing.T, ctx *scard.Context, card *scard.Card, reader string, probe []byte, before int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var lastErr error
	start := time.Now()
	defer func() { t.Logf("recovered after %v (last error %v)", time.Since(start), lastErr) }()
	for {
		if time.Now().After(deadline) {
			t.Fatalf("card not usable again after the link dropped; last error: %v", lastErr)
		}
		if lastErr = card.Reconnect(scard.ShareShared, scard.ProtocolAny, scard.ResetCard); lastErr == nil {
			resp, err := card.Transmit(probe)
			if err == nil && len(resp) >= 2 && bytes.Equal(resp[len(resp)-2:], []byte{0x90, 0x00}) {
				break
			}
			lastErr = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	n, state := eventCount(t, ctx, reader)
	if state&scard.StatePresent == 0 {
		t.Errorf("reader state %#x after recovery: card not present", state)
	}
	// pcscd counts the removal; the insertion is counted too unless
	// SCardReconnect found the card first (pcsc-lite then updates the
	// reader state itself), so only "at least one" is certain.
	if n <= before {
		t.Errorf("pcscd counted no reader event across the drop: the card came back before the reader saw it gone")
	}
}

// rawConnect connects to reader with ebfe/scard directly, bypassing
// package pcsc, as a foreign PC/SC client would; the context and the
// connection end with the test.
func rawConnect(t *testing.T, reader string) (*scard.Context, *scard.Card) {
	t.Helper()
	ctx, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctx.Release() })
	card, err := ctx.Connect(reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { card.Disconnect(scard.LeaveCard) })
	return ctx, card
}

// Issue 8 finding 3, first trigger: a command APDU longer than a vpcd
// frame (65535 bytes). vpcd refuses to send it and closes the card's
// socket; the card must come back so that SCardReconnect finds it.
func TestReconnectAfterOversizeCommand(t *testing.T) {
	st := cardtest.Start(t, &testcard.Echo{})
	reader := st.Slots()[0].Reader
	ctx, card := rawConnect(t, reader)
	before, _ := eventCount(t, ctx, reader)
	// Case 3E with Nc = 65533: 4 + 3 + 65533 = 65540 bytes.
	big := append([]byte{0x00, 0xDB, 0x3F, 0xFF, 0x00, 0xFF, 0xFD}, make([]byte, 65533)...)
	resp, err := card.Transmit(big)
	t.Logf("oversize command: %d bytes, %v", len(resp), err)
	recoverCard(t, ctx, card, reader, []byte{0x00, 0xA4, 0x00, 0x0C}, before)
}

var selectGIDS = []byte{0x00, 0xA4, 0x04, 0x0C, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59}

// Issue 8 finding 3, second trigger: a response the card would build
// longer than a vpcd frame (GET DATA of 80000 bytes of DOs with an
// extended Le). The card must answer within the frame (61xx, the rest by
// GET RESPONSE) and never drop the link; and if it had dropped, come back.
func TestReconnectAfterOversizeResponse(t *testing.T) {
	c := gidstest.New(t, gids.Options{}, gids.InitParams{PIN: "123456"})
	mustProcess := func(cmd []byte) {
		if r := c.Process(cmd); !bytes.Equal(r[len(r)-2:], []byte{0x90, 0x00}) {
			t.Fatalf("setup APDU % X: % X", cmd[:min(len(cmd), 8)], r)
		}
	}
	mustProcess([]byte{0x00, 0x20, 0x00, 0x80, 0x06, '1', '2', '3', '4', '5', '6'})
	for _, tag := range []byte{0x30, 0x31} {
		// PUT DATA A010 DF3x of 40000 bytes as one extended APDU.
		value := bytes.Repeat([]byte{tag}, 40000)
		tlv := append([]byte{0xDF, tag, 0x82, 0x9C, 0x40}, value...)
		mustProcess(append([]byte{0x00, 0xDB, 0xA0, 0x10, 0x00, byte(len(tlv) >> 8), byte(len(tlv))}, tlv...))
	}
	st := cardtest.Start(t, vcard.Card(c))
	reader := st.Slots()[0].Reader
	ctx, card := rawConnect(t, reader)
	before, _ := eventCount(t, ctx, reader)
	getAll := []byte{0x00, 0xCB, 0xA0, 0x10, 0x00, 0x00, 0x02, 0x5C, 0x00, 0x00, 0x00}
	resp, err := card.Transmit(getAll)
	if err != nil || len(resp) < 2 {
		t.Errorf("GET DATA of 80000 bytes with extended Le: % X, %v (link dropped?)", resp[max(0, len(resp)-2):], err)
	} else {
		data, sw := resp[:len(resp)-2], resp[len(resp)-2:]
		for sw[0] == 0x61 {
			more, err := card.Transmit([]byte{0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00})
			if err != nil || len(more) < 2 {
				t.Fatalf("GET RESPONSE: % X, %v", more, err)
			}
			data, sw = append(data, more[:len(more)-2]...), more[len(more)-2:]
		}
		// The two DOs plus cardapps, cardcf and the empty cmapfile that
		// gids-tool's initialisation put into A010 (11 + 9 + 3 bytes).
		const want = 2*(40000+5) + 23
		if len(data) != want || !bytes.Equal(sw, []byte{0x90, 0x00}) {
			t.Errorf("GET DATA: %d bytes, SW % X; want %d bytes and 90 00", len(data), sw, want)
		}
	}
	if len(resp) == 0 && err == nil {
		// The link dropped: the card must come back as a new insertion.
		recoverCard(t, ctx, card, reader, selectGIDS, before)
		return
	}
	// The link held: the same handle goes on working, no event.
	if resp, err := card.Transmit(selectGIDS); err != nil || !bytes.Equal(resp, []byte{0x90, 0x00}) {
		t.Errorf("SELECT after the large response: % X, %v", resp, err)
	}
	if n, _ := eventCount(t, ctx, reader); n != before {
		t.Errorf("%d reader events although the link held", n-before)
	}
}
