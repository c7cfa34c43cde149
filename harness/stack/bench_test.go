package stack_test

import (
	"context"
	"testing"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/gids"
	"github.com/cardharness/cardharness/vcard/testcard"
	"github.com/cardharness/cardharness/vcard/vpcd"
)

// benchStack starts one stack for the whole benchmark (sub-benchmarks run
// several times; the stack must outlive each run): slot 0 holds an echo card
// with TCP_QUICKACK, slot 1 one without, slot 2 an initialised GIDS card.
func benchStack(b *testing.B, g *gids.Card) *stack.Stack {
	st := cardtest.Start(b, &testcard.Echo{})
	if _, err := st.Insert(1, &testcard.Echo{}, vpcd.WithoutQuickAck()); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Insert(2, g); err != nil {
		b.Fatal(err)
	}
	if err := st.WaitPresent(context.Background(), 1, 2); err != nil {
		b.Fatal(err)
	}
	return st
}

func benchGIDS(b *testing.B) *gids.Card {
	return gidstest.New(b, gids.Options{}, gids.InitParams{PIN: "123456"})
}

// getCardCF is GET DATA of cardcf (A010/DF22), the APDU every Windows card
// transaction starts with.
var getCardCF = []byte{0x00, 0xCB, 0xA0, 0x10, 0x04, 0x5C, 0x02, 0xDF, 0x22, 0x00}

var echoCmd = []byte{0x00, 0xDB, 0x3F, 0xFF, 0x04, 1, 2, 3, 4}

func benchTransmit(b *testing.B, t pcsc.Transport, cmd []byte) {
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := t.Transmit(ctx, cmd)
		if err != nil {
			b.Fatal(err)
		}
		if resp[len(resp)-2] != 0x90 {
			b.Fatalf("% X -> % X", cmd, resp)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "apdu/s")
}

// BenchmarkRoundTrip measures APDU round trips per second: through pcscd and
// Debian's vpcd with and without the card re-arming TCP_QUICKACK, and in
// process; for the echo card and for GET DATA on the GIDS card. Compare
// them with `make bench`, which prints the ratios.
func BenchmarkRoundTrip(b *testing.B) {
	g := benchGIDS(b)
	st := benchStack(b, g)
	client := cardtest.Client(b)
	for _, sb := range []struct {
		name string
		slot int // the card's slot in benchStack
		cmd  []byte
	}{
		{"stack-echo", 0, echoCmd},
		{"stack-gids-getdata", 2, getCardCF},
		{"stack-echo-noquickack", 1, echoCmd},
	} {
		b.Run(sb.name, func(b *testing.B) {
			card, err := client.Connect(context.Background(), st.Slots()[sb.slot].Reader)
			if err != nil {
				b.Fatal(err)
			}
			defer card.Close()
			benchTransmit(b, card, sb.cmd)
		})
	}
	b.Run("direct-echo", func(b *testing.B) {
		benchTransmit(b, pcsc.NewDirect(&testcard.Echo{}), echoCmd)
	})
	b.Run("direct-gids-getdata", func(b *testing.B) {
		benchTransmit(b, pcsc.NewDirect(benchGIDS(b)), getCardCF)
	})
}
