package minidriver_test

import (
	"testing"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/vcard/gids"
)

// stackEnv puts a fresh initialised card behind a private pcscd + vpcd, so
// the suite runs over the real PC/SC path (chaining, GET RESPONSE, and
// SCardBeginTransaction included).
func stackEnv(t *testing.T) env {
	card := gidstest.New(t, gids.Options{}, gids.InitParams{PIN: pin, AdminKey: adminKey})
	st := cardtest.Start(t, card)
	conn := cardtest.Connect(t, st, 0)
	return env{card: card, t: conn}
}

func TestMinidriverStack(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the pcscd stack run is the slow half of this suite")
	}
	runSuite(t, stackEnv)
}
