package stack_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/testcard"
	"github.com/cardharness/cardharness/vcard/vpcd"
)

func TestThousandAPDUsRoundTrip(t *testing.T) {
	echo := &testcard.Echo{}
	st := cardtest.Start(t, echo, &testcard.Echo{})
	card := cardtest.Connect(t, st, 0)
	if got := card.ATR(); !bytes.Equal(got, testcard.DefaultATR) {
		t.Fatalf("ATR = % X, want % X", got, testcard.DefaultATR)
	}
	before := echo.Stats().Commands
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		data := []byte(fmt.Sprintf("apdu %04d", i))
		cmd := append([]byte{0x00, 0xDB, 0x3F, 0xFF, byte(len(data))}, data...)
		resp, err := card.Transmit(ctx, cmd)
		if err != nil {
			t.Fatalf("APDU %d: %v", i, err)
		}
		want := append(data, 0x90, 0x00)
		if !bytes.Equal(resp, want) {
			t.Fatalf("APDU %d: response % X, want % X", i, resp, want)
		}
	}
	if n := echo.Stats().Commands - before; n != 1000 {
		t.Errorf("card saw %d commands, want 1000", n)
	}
}

func TestReadersAndPresence(t *testing.T) {
	st := cardtest.Start(t, &testcard.Echo{}, &testcard.Echo{}, &testcard.Echo{}, &testcard.Echo{})
	readers, err := cardtest.Client(t).Readers()
	if err != nil {
		t.Fatal(err)
	}
	if len(readers) != 4 {
		t.Fatalf("pcscd lists %d readers %q, want 4", len(readers), readers)
	}
	// Every slot answers on its own: four independent cards, which Debian's
	// vpcd only gives with one driver copy per pair of slots.
	for i, sl := range st.Slots() {
		card := cardtest.Connect(t, st, i)
		resp, err := card.Transmit(context.Background(), []byte{0x00, 0xCA, 0x00, 0x00, 0x01, byte(i)})
		if err != nil {
			t.Fatalf("slot %d (%s): %v", i, sl.Reader, err)
		}
		if !bytes.Equal(resp, []byte{byte(i), 0x90, 0x00}) {
			t.Errorf("slot %d: % X", i, resp)
		}
	}
}

func waitEvent(t *testing.T, w *pcsc.Watcher, want pcsc.EventKind) pcsc.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watcher stopped: %v", w.Err())
		}
		if ev.Kind != want {
			t.Fatalf("event %v in %s, want %v", ev.Kind, ev.Reader, want)
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatalf("no %v event within 5s", want)
	}
	return pcsc.Event{}
}

func TestInsertionAndRemovalEvents(t *testing.T) {
	st := cardtest.Start(t, &testcard.Echo{})
	sl := st.Slots()[0]
	w, err := pcsc.Watch(sl.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Cancel()
	first := waitEvent(t, w, pcsc.CardInserted) // the current state
	if !bytes.Equal(first.ATR, testcard.DefaultATR) {
		t.Errorf("ATR in event: % X", first.ATR)
	}
	sl.Link.Remove()
	rm := waitEvent(t, w, pcsc.CardRemoved)
	sl.Link.Insert()
	in := waitEvent(t, w, pcsc.CardInserted)
	if !(first.Counter < rm.Counter && rm.Counter < in.Counter) {
		t.Errorf("event counters %d, %d, %d do not increase", first.Counter, rm.Counter, in.Counter)
	}
	// A card inserted into an empty slot is seen too.
	w2, err := pcsc.Watch(st.Slots()[1].Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Cancel()
	if _, err := st.Insert(1, &testcard.Echo{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, w2, pcsc.CardInserted)
}

func TestCardDyingMidAPDUIsAnError(t *testing.T) {
	st := cardtest.Start(t, &testcard.Echo{})
	card := cardtest.Connect(t, st, 0)
	st.Slots()[0].Link.InjectFault(vpcd.FaultDropOnAPDU)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := card.Transmit(ctx, []byte{0x00, 0xCA, 0x00, 0x00, 0x04})
	if err == nil {
		t.Fatalf("transmit to a card that died succeeded with % X", resp)
	}
	if !errors.Is(err, pcsc.ErrEmptyResponse) && !errors.Is(err, pcsc.ErrRemovedCard) && !errors.Is(err, pcsc.ErrNotTransacted) {
		t.Errorf("error %v is not a transport failure", err)
	}
	if ctx.Err() != nil {
		t.Errorf("the error came only after the deadline")
	}
	t.Logf("card died mid-APDU: %v", err)
}

func TestHangingCardIsCutOffByDeadline(t *testing.T) {
	st := cardtest.Start(t, &testcard.Echo{})
	card := cardtest.Connect(t, st, 0)
	link := st.Slots()[0].Link
	link.InjectFault(vpcd.FaultHangOnAPDU)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := card.Transmit(ctx, []byte{0x00, 0xCA, 0x00, 0x00, 0x04})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("transmit to a hanging card: %v, want a deadline error", err)
	}
	if _, err := card.Transmit(context.Background(), []byte{0x00, 0xCA, 0x00, 0x00, 0x04}); !errors.Is(err, pcsc.ErrAbandoned) {
		t.Errorf("second transmit on the abandoned connection: %v, want ErrAbandoned", err)
	}
	link.Remove() // releases the stuck PC/SC call so the stack can close
}

func TestDirectTransportMatchesStack(t *testing.T) {
	d := pcsc.NewDirect(&testcard.Echo{})
	resp, err := d.Transmit(context.Background(), []byte{0x00, 0xCA, 0x00, 0x00, 0x03})
	if err != nil || !bytes.Equal(resp, []byte{0, 1, 2, 0x90, 0x00}) {
		t.Fatalf("direct: % X, %v", resp, err)
	}
}

// TestParentKilledLeavesNothing kills a process that runs a stack with
// SIGKILL and checks that its pcscd and directory go away.
func TestParentKilledLeavesNothing(t *testing.T) {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("cardharness-kill-%d", os.Getpid()))
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CARDHARNESS_TEST_PARENT=1", "CARDHARNESS_TEST_DIR="+dir)
	var out lockedBuffer // the child writes while the test reads
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "STACK UP") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("child did not start a stack:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pids := testutil.PcscdProcesses(dir); len(pids) == 0 {
		t.Fatalf("no pcscd running for %s while the child is up", dir)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for {
		pids := testutil.PcscdProcesses(dir)
		_, statErr := os.Stat(dir)
		if len(pids) == 0 && errors.Is(statErr, os.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after SIGKILL: pcscd %q, dir %s: %v", pids, dir, statErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMain doubles as the victim process of TestParentKilledLeavesNothing:
// with CARDHARNESS_TEST_PARENT=1 it starts a stack, says so, and waits to be
// killed.
func TestMain(m *testing.M) {
	if os.Getenv("CARDHARNESS_TEST_PARENT") == "1" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := stack.Start(ctx, stack.Config{Dir: os.Getenv("CARDHARNESS_TEST_DIR"), Cards: []vcard.Card{&testcard.Echo{}}})
		cancel()
		if err != nil {
			fmt.Println("STACK FAILED:", err)
			os.Exit(1)
		}
		fmt.Println("STACK UP", st.Dir())
		time.Sleep(time.Minute)
		os.Exit(2)
	}
	os.Exit(m.Run())
}
