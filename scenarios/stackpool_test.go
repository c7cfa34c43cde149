//go:build linux

package scenarios

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/gids"
)

const isolationChildEnv = "_CARDHARNESS_TEST_REUSE_CHILD"

// wallClockInTrace: the trace fields that are wall-clock times.
var wallClockInTrace = regexp.MustCompile(`,"time":"[^"]*"|,"dur_us":\d+`)

// TestReusedStackIsolation: on one reused stack (a long-lived worker's,
// --reuse-stacks), scenario after scenario starts from scratch. The same
// scenario run three times exchanges byte-identical APDUs (a fresh card:
// same seeded cardid, no containers left; a fresh pcscd: no power-off of
// a card that was there before); every scenario gets a new pcscd, its
// cards in the slots a stack of its own would give them, and pcscd shows
// no card of the scenario before; and a PC/SC handle and context of the
// first scenario are dead in the next. It runs in a child process, since
// libpcsclite binds a process to one pcscd.
func TestReusedStackIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a private pcscd")
	}
	if err := Preflight(Options{Stack: "pcscd"}); err != nil {
		t.Fatal(err)
	}
	if os.Getenv(isolationChildEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReusedStackIsolation$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), isolationChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestReusedStackIsolation")) {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	pool, err := newStackPool()
	if err != nil {
		t.Fatal(err)
	}
	workerPool = pool
	defer func() { workerPool = nil; pool.close() }()
	ctx := t.Context()

	// 1. The same scenario three times: runs 1 and 3 use the same slot.
	var traces [3][][]byte
	for i := range 3 {
		sc, err := Ref{Path: "builtin/enrollment/certenroll.yaml", Builtin: true}.load()
		if err != nil {
			t.Fatal(err)
		}
		res := RunOne(ctx, sc, Options{Stack: "pcscd", TraceDir: t.TempDir(), TraceAll: true})
		if res.Status != Pass || len(res.Traces) == 0 {
			t.Fatalf("run %d: %s %s (traces %v)", i+1, res.Status, res.Failure, res.Traces)
		}
		for _, p := range res.Traces {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			traces[i] = append(traces[i], wallClockInTrace.ReplaceAll(b, nil))
		}
		t.Logf("run %d: %d APDUs, traces %v", i+1, res.APDUs, filepath.Base(res.Traces[0]))
	}
	for _, i := range []int{1, 2} {
		if len(traces[i]) != len(traces[0]) {
			t.Fatalf("run %d saved %d traces, run 1 %d", i+1, len(traces[i]), len(traces[0]))
		}
		for j := range traces[0] {
			if !bytes.Equal(traces[i][j], traces[0][j]) {
				t.Errorf("run %d's APDU trace %d differs from run 1's: the card was not fresh\n%s", i+1, j, firstDiff(traces[0][j], traces[i][j]))
			}
		}
	}

	// 2. Handles, contexts and pcscd's view of the reader.
	newCard := func() vcard.Card {
		c, err := gids.New(gids.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	selectGIDS := []byte{0x00, 0xA4, 0x04, 0x00, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59, 0x02, 0x01, 0x00}
	h1, err := pool.acquire(ctx, []vcard.Card{newCard()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	reader := h1.readers[0]
	k1, err := h1.connect(ctx, reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k1.Transmit(ctx, selectGIDS); err != nil {
		t.Fatalf("first scenario's handle: %v", err)
	}
	if _, present, err := h1.client.EventCount(reader); err != nil || !present {
		t.Fatalf("first scenario's card: present %v: %v", present, err)
	}
	pcscd1 := testutil.PcscdProcesses(pool.dir)
	client1 := h1.client
	h1.close()
	h2, err := pool.acquire(ctx, []vcard.Card{newCard(), newCard()}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.close()
	if pcscd2 := testutil.PcscdProcesses(pool.dir); len(pcscd1) != 1 || len(pcscd2) != 1 || pcscd1[0] == pcscd2[0] {
		t.Errorf("pcscd processes: %q for the first scenario, %q for the next; want a new one", pcscd1, pcscd2)
	}
	slots := pool.st.Slots()
	if h2.readers[0] != reader || h2.readers[1] != slots[1].Reader {
		t.Errorf("the next scenario's cards are in %q; want the first slots, %q and %q, as on a stack of its own", h2.readers, reader, slots[1].Reader)
	}
	for i, sl := range slots {
		_, present, err := h2.client.EventCount(sl.Reader)
		if err != nil || present != (i < 2) {
			t.Errorf("%s: present %v (err %v) in the next scenario, which has cards in the first two slots only", sl.Reader, present, err)
		}
	}
	if _, err := k1.Transmit(ctx, selectGIDS); err == nil {
		t.Error("a PC/SC handle from the first scenario still transmits to the card in its reader")
	}
	if _, err := client1.Readers(); err == nil {
		t.Error("the first scenario's PC/SC context still works")
	}
	k2, err := h2.connect(ctx, reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.Transmit(ctx, selectGIDS); err != nil {
		t.Fatalf("next scenario's handle: %v", err)
	}
}

// firstDiff shows the first line where two traces differ.
func firstDiff(a, b []byte) string {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, la[i], lb[i])
		}
	}
	return fmt.Sprintf("%d lines vs %d", len(la), len(lb))
}
