package cardtest_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/vcard/testcard"
)

// fakeT is the part of testing.TB that cardtest uses, for the victim
// process (which has no real *testing.T) and for catching a Fatalf.
type fakeT struct {
	testing.TB // nil: a method cardtest should not call panics
	name       string
	fatal      string
	cleanups   []func()
}

func (f *fakeT) Helper()      {}
func (f *fakeT) Name() string { return f.name }
func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeT) Errorf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (f *fakeT) Cleanup(fn func())                 { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Context() context.Context          { return context.Background() }
func (f *fakeT) done() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// inGoroutine runs fn as a test body would run: Fatalf ends it.
func inGoroutine(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// TestSecondStackInOneProcessNamesTheFirst: while one test's stack runs,
// another Start fails with a message that says why and what to do.
func TestSecondStackInOneProcessNamesTheFirst(t *testing.T) {
	cardtest.Start(t, &testcard.Echo{})
	second := &fakeT{name: "TestSomethingParallel"}
	inGoroutine(func() { cardtest.Start(second, &testcard.Echo{}) })
	defer second.done()
	for _, want := range []string{"TestSomethingParallel starts a stack while the stack of " + t.Name() + " is still running", "PCSCLITE_CSOCK_NAME once per process", "t.Parallel", "separate packages"} {
		if !strings.Contains(second.fatal, want) {
			t.Errorf("second Start failed with %q, want it to say %q", second.fatal, want)
		}
	}
}

// TestStacksOneAfterAnother: closing the first stack frees the process
// for the next one.
func TestStacksOneAfterAnother(t *testing.T) {
	for i := range 2 {
		ft := &fakeT{name: fmt.Sprintf("TestRound%d", i)}
		inGoroutine(func() { cardtest.Start(ft, &testcard.Echo{}) })
		ft.done()
		if ft.fatal != "" {
			t.Fatalf("stack %d: %s", i, ft.fatal)
		}
	}
}

// TestHoldPrintsSocketAndWaits runs this test binary with -cardtest.hold:
// the held stack must be usable from outside (opensc-tool -l through the
// printed PCSCLITE_CSOCK_NAME) and SIGUSR1 must let the test go on.
func TestHoldPrintsSocketAndWaits(t *testing.T) {
	testutil.NeedTool(t, "opensc-tool", "opensc")
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-cardtest.hold=2m")
	cmd.Env = append(os.Environ(), "CARDTEST_HOLD_VICTIM=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	var held []string
	var sock string
	for sc.Scan() {
		held = append(held, sc.Text())
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "export PCSCLITE_CSOCK_NAME="); ok {
			sock = v
			break
		}
	}
	if sock == "" || !strings.Contains(strings.Join(held, "\n"), fmt.Sprintf("holding the stack of TestHeldByDeveloper for 2m0s (kill -USR1 %d to go on)", cmd.Process.Pid)) {
		t.Fatalf("held process printed:\n%s", strings.Join(held, "\n"))
	}
	lst := exec.Command("opensc-tool", "-l")
	lst.Env = append(os.Environ(), "PCSCLITE_CSOCK_NAME="+sock)
	out, err := lst.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Yes") || !strings.Contains(string(out), "Cardharness VPCD 0 00 00") {
		t.Errorf("opensc-tool -l against the held stack: %v\n%s", err, out)
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for sc.Scan() {
		rest = append(rest, sc.Text())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("held process after SIGUSR1: %v\n%s", err, strings.Join(rest, "\n"))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("held process still running 30s after SIGUSR1")
	}
	if !strings.Contains(strings.Join(rest, "\n"), "TestHeldByDeveloper goes on") || !strings.Contains(strings.Join(rest, "\n"), "VICTIM DONE") {
		t.Errorf("after SIGUSR1 the process printed:\n%s", strings.Join(rest, "\n"))
	}
}

// TestMain doubles as the held process of TestHoldPrintsSocketAndWaits.
func TestMain(m *testing.M) {
	if os.Getenv("CARDTEST_HOLD_VICTIM") == "1" {
		testing.Init() // TestMain runs before testing parses its flags
		flag.Parse()
		ft := &fakeT{name: "TestHeldByDeveloper"}
		inGoroutine(func() { cardtest.Start(ft, &testcard.Echo{}) })
		ft.done()
		if ft.fatal != "" {
			fmt.Fprintln(os.Stderr, "VICTIM FAILED:", ft.fatal)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "VICTIM DONE")
		os.Exit(0)
	}
	os.Exit(m.Run())
}
