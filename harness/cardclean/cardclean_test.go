package cardclean_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/cardclean"
	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/internal/hosttest"
	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/gids"
)

// Credentials other than the defaults: the cleaner must use what it is
// told.
const testPIN = gidstest.OwnPIN

var testAdminKey = gidstest.OwnAdminKey

// onStack initialises a card and serves it through a private pcscd + vpcd.
func onStack(t *testing.T) (*gids.Card, pcsc.Transport) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs a pcscd stack")
	}
	card := gidstest.New(t, gids.Options{}, gids.InitParams{PIN: testPIN, AdminKey: testAdminKey})
	st := cardtest.Start(t, card)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := cardtest.Client(t).Connect(ctx, st.Slots()[0].Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return card, conn
}

// leftOver is a certificate as a suite of scenarios leaves one behind.
func leftOver(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.SelfSigned(t, k, "left-over")
}

// dirty leaves what a suite of scenarios leaves: containers with
// certificates, an extra file, a key EF still in creation state, a
// changed PIN with a lowered retry counter, bumped counters.
func dirty(t *testing.T, ctx context.Context, tr pcsc.Transport) {
	t.Helper()
	md, err := minidriver.Acquire(ctx, tr, minidriver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := md.AuthenticatePIN(ctx, testPIN); err != nil {
		t.Fatal(err)
	}
	for i, spec := range []fs.KeySpec{fs.AT_KEYEXCHANGE, fs.AT_SIGNATURE, fs.AT_KEYEXCHANGE} {
		idx, err := md.CreateContainer(ctx, minidriver.ContainerSpec{GUID: "leftover-" + string(rune('a'+i)), KeySpec: spec, Bits: 1024}, minidriver.BumpCorrect)
		if err != nil {
			t.Fatal(err)
		}
		if err := md.WriteCertificate(ctx, idx, spec, leftOver(t), minidriver.BumpCorrect); err != nil {
			t.Fatal(err)
		}
	}
	if err := md.CreateFile(ctx, "mscp/extra", minidriver.BumpCorrect); err != nil {
		t.Fatal(err)
	}
	if err := md.WriteFile(ctx, "mscp/extra", []byte("left over"), minidriver.BumpCorrect); err != nil {
		t.Fatal(err)
	}
	// A key EF created but never activated (an aborted key creation).
	fcp := []byte{0x62, 0x1B, 0x82, 0x01, 0x18, 0x83, 0x02, 0xB0, 0xF0, 0x8C, 0x05, 0x8F, 0x10, 0x10, 0x10, 0x00,
		0xA5, 0x0B, 0xB6, 0x09, 0x80, 0x01, 0x56, 0x83, 0x01, 0xF0, 0x95, 0x01, 0x40}
	resp, err := tr.Transmit(ctx, append([]byte{0x00, 0xE0, 0x00, 0x00, byte(len(fcp))}, fcp...))
	if err != nil || !bytes.Equal(resp, []byte{0x90, 0x00}) {
		t.Fatalf("CREATE FILE B0F0: % X %v", resp, err)
	}
	if err := md.ChangePIN(ctx, testPIN, "99999999", minidriver.BumpCorrect); err != nil {
		t.Fatal(err)
	}
	if err := md.AuthenticatePIN(ctx, "00000000"); err == nil {
		t.Fatal("wrong PIN accepted")
	}
}

func TestCleanRestoresAPersonalisedCard(t *testing.T) {
	card, tr := onStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cardID, _ := card.DO(0xA012, 0xDF20)
	dirty(t, ctx, tr)
	cfg := cardclean.Config{PIN: testPIN, AdminKey: testAdminKey}
	if err := cardclean.Verify(ctx, tr, cfg); !errors.Is(err, cardclean.ErrNotClean) {
		t.Fatalf("Verify on a dirty card: %v, want ErrNotClean", err)
	}
	rep, err := cardclean.Clean(ctx, tr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rep.KeyRefs, []byte{0x81, 0x82, 0x83, 0xF0}; !bytes.Equal(got, want) {
		t.Errorf("deleted key refs % X, want % X", got, want)
	}
	if len(rep.DOs) != 5 { // three certificates, mscp/extra, keymap
		t.Errorf("deleted DOs %v, want 3 certificates, the extra file and the keymap", rep.DOs)
	}
	if rep.APDUs < 127 {
		t.Errorf("APDU count %d: the key EF probe alone is 127", rep.APDUs)
	}
	// The card's own view, independent of the cleaner's verification.
	hosttest.CheckClean(t, card, cardID)
	if got, ok := card.DO(0xA010, 0xDF22); !ok || !bytes.Equal(got, make([]byte, 6)) {
		t.Errorf("cardcf % X", got)
	}
	if got, ok := card.DO(0xA010, 0xDF23); !ok || len(got) != 0 {
		t.Errorf("cmapfile % X", got)
	}
	if _, ok := card.DO(0xA000, 0xDF20); ok {
		t.Error("keymap left")
	}
	md, err := minidriver.Acquire(ctx, tr, minidriver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := md.AuthenticatePIN(ctx, testPIN); err != nil {
		t.Errorf("configured PIN after cleaning: %v", err)
	}
	// Cleaning a clean card is a no-op that still verifies.
	rep, err = cardclean.Clean(ctx, tr, cfg)
	if err != nil || len(rep.KeyRefs)+len(rep.DOs) != 0 {
		t.Errorf("second clean: %+v %v", rep, err)
	}
}

func TestCleanUnblocksABlockedPIN(t *testing.T) {
	card, tr := onStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	md, err := minidriver.Acquire(ctx, tr, minidriver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		md.AuthenticatePIN(ctx, "0000")
	}
	if card.PINTriesLeft() != 0 {
		t.Fatalf("PIN not blocked: %d", card.PINTriesLeft())
	}
	if _, err := cardclean.Clean(ctx, tr, cardclean.Config{PIN: testPIN, AdminKey: testAdminKey}); err != nil {
		t.Fatal(err)
	}
	if card.PINTriesLeft() != 3 {
		t.Errorf("tries %d after cleaning", card.PINTriesLeft())
	}
}

func TestCleanWithTheWrongAdminKeySaysSo(t *testing.T) {
	card, tr := onStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := cardclean.Clean(ctx, tr, cardclean.Config{PIN: testPIN}) // all-zero key: wrong here
	var se *cardclean.StepError
	if !errors.As(err, &se) || !errors.Is(err, cardclean.ErrClean) || !strings.Contains(err.Error(), "admin-key") {
		t.Fatalf("err = %v, want a StepError naming --admin-key", err)
	}
	if card.PINTriesLeft() != 3 {
		t.Errorf("a refused clean touched the PIN: %d", card.PINTriesLeft())
	}
}

func TestRunResetCommand(t *testing.T) {
	ctx := context.Background()
	if err := cardclean.RunResetCommand(ctx, `test "$CARDHARNESS_READER" = "R 0"`, "R 0"); err != nil {
		t.Errorf("reader not passed: %v", err)
	}
	err := cardclean.RunResetCommand(ctx, "echo erase failed >&2; exit 3", "R")
	if err == nil || !strings.Contains(err.Error(), "erase failed") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("err = %v", err)
	}
}
