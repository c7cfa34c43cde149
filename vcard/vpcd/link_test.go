package vpcd

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/vpcdtest"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/testcard"
)

func startLink(t *testing.T, card vcard.Card, r *vpcdtest.Reader) (*Link, context.CancelFunc) {
	l := NewLink(card, TCPDialer(r.Addr()), WithRedialInterval(50*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l, cancel
}

func TestControlAndAPDUFrames(t *testing.T) {
	card := &testcard.Echo{}
	r := vpcdtest.NewReader(t)
	startLink(t, card, r)
	c := r.Accept()

	// The reader's sequence on insertion (reference §1.4), with a reset and
	// an ATR request coalesced into one segment as Windows' vpcd sends them.
	c.Write(vpcdtest.Frame(CtrlATR))
	if got := vpcdtest.ReadFrame(t, c); !bytes.Equal(got, testcard.DefaultATR) {
		t.Fatalf("ATR % X", got)
	}
	c.Write(append(vpcdtest.Frame(CtrlOn), vpcdtest.Frame(CtrlATR)...))
	vpcdtest.ReadFrame(t, c)
	c.Write(append(vpcdtest.Frame(CtrlReset), vpcdtest.Frame(CtrlATR)...))
	vpcdtest.ReadFrame(t, c)
	c.Write(vpcdtest.Frame(0x00, 0xDB, 0x3F, 0xFF, 0x02, 0xAB, 0xCD))
	if got := vpcdtest.ReadFrame(t, c); !bytes.Equal(got, []byte{0xAB, 0xCD, 0x90, 0x00}) {
		t.Fatalf("APDU response % X", got)
	}
	// An APDU split across segments is still one frame.
	whole := vpcdtest.Frame(0x00, 0xDB, 0x3F, 0xFF, 0x01, 0x77)
	c.Write(whole[:3])
	time.Sleep(10 * time.Millisecond)
	c.Write(whole[3:])
	if got := vpcdtest.ReadFrame(t, c); !bytes.Equal(got, []byte{0x77, 0x90, 0x00}) {
		t.Fatalf("split APDU response % X", got)
	}
	c.Write(vpcdtest.Frame(CtrlOff))
	c.Write(vpcdtest.Frame(CtrlATR)) // answered powered or not
	vpcdtest.ReadFrame(t, c)
	st := card.Stats()
	if st.PowerOns != 1 || st.Resets != 1 || st.PowerOffs != 1 || st.Powered {
		t.Errorf("card saw %+v", st)
	}
}

// shortCard returns responses without a status word.
type shortCard struct{ testcard.Echo }

func (*shortCard) Process([]byte) []byte { return nil }

func TestNeverSendsAnEmptyFrame(t *testing.T) {
	r := vpcdtest.NewReader(t)
	startLink(t, &shortCard{}, r)
	c := r.Accept()
	c.Write(vpcdtest.Frame(0x00, 0xA4, 0x00, 0x00))
	if got := vpcdtest.ReadFrame(t, c); !bytes.Equal(got, []byte{0x6F, 0x00}) {
		t.Fatalf("response % X, want 6F00 in place of an empty frame", got)
	}
}

func TestRedialsWhenReaderGoesAway(t *testing.T) {
	r := vpcdtest.NewReader(t)
	startLink(t, &testcard.Echo{}, r)
	c := r.Accept()
	c.Close() // pcscd restarting
	c2 := r.Accept()
	c2.Write(vpcdtest.Frame(CtrlATR))
	vpcdtest.ReadFrame(t, c2)
}

func TestRemoveAndInsert(t *testing.T) {
	r := vpcdtest.NewReader(t)
	l, _ := startLink(t, &testcard.Echo{}, r)
	c := r.Accept()
	<-l.Attached()
	l.Remove()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after Remove the reader reads %v, want EOF", err)
	}
	// No re-dial while removed.
	if c, err := r.AcceptWithin(300 * time.Millisecond); err == nil {
		c.Close()
		t.Fatal("removed card dialled again")
	}
	l.Insert()
	r.Accept()
}

// faultyLink is a link to an echo card, connected, with fault armed and
// an APDU sent that triggers it.
func faultyLink(t *testing.T, fault Fault) (*Link, net.Conn) {
	r := vpcdtest.NewReader(t)
	l, _ := startLink(t, &testcard.Echo{}, r)
	c := r.Accept()
	l.InjectFault(fault)
	c.Write(vpcdtest.Frame(0x00, 0xCA, 0x00, 0x00, 0x01))
	return l, c
}

func TestFaults(t *testing.T) {
	t.Run("drop", func(t *testing.T) {
		l, c := faultyLink(t, FaultDropOnAPDU)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 8)); err != io.EOF {
			t.Fatalf("read %d bytes, %v; want EOF (card died)", n, err)
		}
		if l.Inserted() {
			t.Error("a card that died still counts as inserted")
		}
	})
	t.Run("hang", func(t *testing.T) {
		l, c := faultyLink(t, FaultHangOnAPDU)
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 8)); err == nil {
			t.Fatal("hanging card answered")
		}
		l.Remove()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 8)); err != io.EOF {
			t.Fatalf("after Remove: %v, want EOF", err)
		}
	})
}

// FuzzFrames feeds arbitrary byte streams to the link as the reader side:
// the link must never panic, never send an empty frame, and every frame it
// sends must be well formed.
func FuzzFrames(f *testing.F) {
	f.Add(vpcdtest.Frame(CtrlATR))
	f.Add(append(vpcdtest.Frame(CtrlReset), vpcdtest.Frame(CtrlATR)...))
	f.Add(vpcdtest.Frame(0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0x00, 0x00))
	f.Add([]byte{0x00, 0x00, 0x00, 0x01, 0x04})
	f.Add([]byte{0xFF, 0xFF, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		host, cardSide := net.Pipe()
		l := NewLink(&testcard.Echo{}, nil)
		done := make(chan error, 1)
		go func() { done <- l.serve(cardSide) }()
		go func() { host.Write(in); host.Close() }()
		var out bytes.Buffer
		io.Copy(&out, host)
		<-done
		b := out.Bytes()
		for len(b) > 0 {
			if len(b) < 2 {
				t.Fatalf("truncated header in output % X", out.Bytes())
			}
			n := int(binary.BigEndian.Uint16(b))
			if n == 0 {
				t.Fatalf("empty frame sent")
			}
			if len(b) < 2+n {
				t.Fatalf("truncated frame in output")
			}
			b = b[2+n:]
		}
	})
}

// A 1-byte frame that is not a control byte the card acts on is a 1-byte
// "APDU" from an application (vpcd frames both alike): vpcd then waits
// for an answer, so the card must send one or the reader hangs for every
// client (issue 8 finding 2).
func TestUnknownControlByteIsAnswered(t *testing.T) {
	card := &testcard.Echo{}
	r := vpcdtest.NewReader(t)
	startLink(t, card, r)
	c := r.Accept()
	for _, b := range []byte{0x03, 0x05, 0x80, 0xA4, 0xFF} {
		c.Write(vpcdtest.Frame(b))
		if got := vpcdtest.ReadFrame(t, c); !bytes.Equal(got, []byte{0x67, 0x00}) {
			t.Fatalf("1-byte frame %02X answered % X, want 67 00", b, got)
		}
	}
	// The link is still in step: the next control and APDU work.
	c.Write(vpcdtest.Frame(CtrlATR))
	if got := vpcdtest.ReadFrame(t, c); !bytes.Equal(got, testcard.DefaultATR) {
		t.Fatalf("ATR after unknown bytes: % X", got)
	}
	c.Write(vpcdtest.Frame(0x00, 0xDB, 0x3F, 0xFF, 0x01, 0x77))
	if got := vpcdtest.ReadFrame(t, c); !bytes.Equal(got, []byte{0x77, 0x90, 0x00}) {
		t.Fatalf("APDU after unknown bytes: % X", got)
	}
	if st := card.Stats(); st.PowerOns != 0 || st.PowerOffs != 0 || st.Resets != 0 {
		t.Errorf("unknown bytes changed the card's power state: %+v", st)
	}
}

// bigCard answers every APDU with more than a vpcd frame holds.
type bigCard struct{ testcard.Echo }

func (*bigCard) Process([]byte) []byte { return make([]byte, 70000) }

// A response longer than a vpcd frame would make vpcd drop the card; the
// link answers 67 00 instead and stays up (issue 8 finding 3).
func TestOversizeResponseIsAStatusWord(t *testing.T) {
	r := vpcdtest.NewReader(t)
	startLink(t, &bigCard{}, r)
	c := r.Accept()
	for range 2 {
		c.Write(vpcdtest.Frame(0x00, 0xCB, 0x00, 0x00, 0x00, 0x00, 0x00))
		if got := vpcdtest.ReadFrame(t, c); !bytes.Equal(got, []byte{0x67, 0x00}) {
			t.Fatalf("oversize response sent as % X, want 67 00", got)
		}
	}
}

// After a connection that was up ends, the link waits more than one pcscd
// poll period before dialling again, so that pcscd sees the card gone
// (issue 8 finding 3). Sleeps are recorded, not slept.
func TestRedialWaitsForPoll(t *testing.T) {
	r := vpcdtest.NewReader(t)
	l := NewLink(&testcard.Echo{}, TCPDialer(r.Addr()))
	var mu sync.Mutex
	var slept []time.Duration
	l.sleep = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return ctx.Err() == nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for range 3 {
		c := r.Accept()
		c.Close() // vpcd dropped the card
	}
	r.Accept()
	mu.Lock()
	defer mu.Unlock()
	if len(slept) < 3 {
		t.Fatalf("link slept %v before re-dialling 3 times", slept)
	}
	for i, d := range slept[:3] {
		// The recorded value is what was left of the gap when the loop
		// got there, so allow for the time the loop itself took.
		if d < PollPeriod {
			t.Errorf("wait %d before re-dialling was %v, want more than pcscd's poll period %v", i, d, PollPeriod)
		}
	}
}

func TestRedialGap(t *testing.T) {
	l := NewLink(&testcard.Echo{}, nil)
	l.jitter = func(n int64) int64 { return n - 1 } // the most jitter
	var gaps []time.Duration
	for range 8 {
		gaps = append(gaps, l.redialGap(time.Millisecond).Round(time.Millisecond))
	}
	want := []time.Duration{625, 1250, 2500, 5000, 6250, 6250, 6250, 6250}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if d := cmp.Diff(want, gaps); d != "" {
		t.Errorf("gaps with maximal jitter for a flapping reader (-want +got):\n%s", d)
	}
	// A connection that lasted resets the backoff; no jitter gives the
	// floor, which is more than one poll period.
	l.jitter = func(int64) int64 { return 0 }
	if g := l.redialGap(time.Minute); g != minRedialGap || g <= PollPeriod {
		t.Errorf("gap after a long connection %v, want %v (> %v)", g, minRedialGap, PollPeriod)
	}
	// A cap below the floor does not shorten the wait.
	l2 := NewLink(&testcard.Echo{}, nil, WithRedialInterval(time.Millisecond))
	l2.jitter = func(int64) int64 { return 0 }
	if g := l2.redialGap(time.Millisecond); g < minRedialGap {
		t.Errorf("gap with a tiny cap %v, want at least %v", g, minRedialGap)
	}
}
