package stack_test

import (
	"context"
	"testing"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/testcard"
	"github.com/cardharness/cardharness/vcard/vpcd"
)

// benchStack starts one stack for the whole benchmark (sub-benchmarks run
// several times; the stack must outlive each run): slot 0 holds an echo card
// with TCP_QUICKACK, slot 1 one without.
func benchStack(b *testing.B) *stack.Stack {
	st := cardtest.Start(b, &testcard.Echo{})
	if _, err := st.Insert(1, &testcard.Echo{}, vpcd.WithoutQuickAck()); err != nil {
		b.Fatal(err)
	}
	if err := st.WaitPresent(context.Background(), 1); err != nil {
		b.Fatal(err)
	}
	return st
}

func benchTransmit(b *testing.B, t pcsc.Transport) {
	cmd := []byte{0x00, 0xDB, 0x3F, 0xFF, 0x04, 1, 2, 3, 4}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := t.Transmit(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "apdu/s")
}

// BenchmarkRoundTrip measures APDU round trips per second: through pcscd and
// Debian's vpcd with and without the card re-arming TCP_QUICKACK, and in
// process. Compare them with `make bench`, which prints the ratios.
func BenchmarkRoundTrip(b *testing.B) {
	st := benchStack(b)
	client := cardtest.Client(b)
	b.Run("stack-echo", func(b *testing.B) {
		card, err := client.Connect(context.Background(), st.Slots()[0].Reader)
		if err != nil {
			b.Fatal(err)
		}
		defer card.Close()
		benchTransmit(b, card)
	})
	b.Run("stack-echo-noquickack", func(b *testing.B) {
		card, err := client.Connect(context.Background(), st.Slots()[1].Reader)
		if err != nil {
			b.Fatal(err)
		}
		defer card.Close()
		benchTransmit(b, card)
	})
	b.Run("direct-echo", func(b *testing.B) {
		benchTransmit(b, pcsc.NewDirect(&testcard.Echo{}))
	})
}
