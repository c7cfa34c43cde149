package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/testcard"
)

func init() {
	register(command{name: "stack", summary: "run a private pcscd with virtual cards until interrupted", run: runStack})
	register(command{name: "exec", summary: "run a command against a fresh private pcscd with virtual cards", run: runExec})
}

// cardFlags are the flags that say which cards a stack holds.
type cardFlags struct {
	cards int
	slots int
	kind  string
	debug bool
}

func (c *cardFlags) add(fs interface {
	IntVar(*int, string, int, string)
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}) {
	fs.IntVar(&c.cards, "cards", 1, "number of virtual cards, in slots 0, 1, ...")
	fs.IntVar(&c.slots, "slots", 0, "number of reader slots (default: --cards; vpcd slots come in pairs, so an odd number gets one more; at most 16)")
	fs.StringVar(&c.kind, "card", "echo", "card type: echo (a trivial test card that echoes data)")
	fs.BoolVar(&c.debug, "pcscd-debug", false, "run pcscd with -d -a; its log is DIR/pcscd.log (see --keep)")
}

func (c *cardFlags) slotCount() int {
	if c.slots > 0 {
		return c.slots
	}
	return max(c.cards, 1)
}

func (c *cardFlags) make() ([]vcard.Card, error) {
	if c.cards < 0 || c.cards > stack.MaxSlots {
		return nil, usageError{fmt.Sprintf("--cards %d: want 0..%d", c.cards, stack.MaxSlots)}
	}
	if c.slots != 0 && c.slots < c.cards {
		return nil, usageError{fmt.Sprintf("--slots %d cannot hold --cards %d", c.slots, c.cards)}
	}
	cards := make([]vcard.Card, c.cards)
	for i := range cards {
		switch c.kind {
		case "echo":
			cards[i] = &testcard.Echo{}
		default:
			return nil, usageError{fmt.Sprintf("--card %q: unknown card type (known: echo)", c.kind)}
		}
	}
	return cards, nil
}

func runStack(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("stack", "--dir DIR [--cards N]", stderr)
	dir := fs.String("dir", "", "directory for the stack's socket, configuration and logs (required)")
	keep := fs.Bool("keep", false, "keep the stack's files in DIR after exit")
	var cf cardFlags
	cf.add(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{"--dir is required"}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	cards, err := cf.make()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	st, err := stack.Start(ctx, stack.Config{Dir: *dir, Cards: cards, Slots: cf.slotCount(), Debug: cf.debug, KeepDir: *keep, Log: lf.logger(stderr)})
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(stdout, "PCSCLITE_CSOCK_NAME=%s\n", st.SocketPath())
	for i, sl := range st.Slots() {
		if i < len(cards) {
			fmt.Fprintf(stdout, "READER %s\n", sl.Reader)
		}
	}
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	<-ctx.Done()
	return st.Close()
}

func runExec(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("exec", "[--cards N] -- COMMAND [ARGS...]", stderr)
	var cf cardFlags
	cf.add(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{"no command given (cardharness exec [flags] -- COMMAND [ARGS...])"}
	}
	cards, err := cf.make()
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	st, err := stack.Start(context.Background(), stack.Config{Cards: cards, Slots: cf.slotCount(), Debug: cf.debug, Log: lf.logger(stderr)})
	if err != nil {
		return err
	}
	defer st.Close()

	// The command dies with us (Pdeathsig): without the stack it is
	// talking to nothing. Pdeathsig follows the thread that forked, so keep
	// this goroutine on its thread.
	runtime.LockOSThread()
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Env = append(os.Environ(), st.Env()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			if cerr := st.Close(); cerr != nil {
				fmt.Fprintf(stderr, "cardharness exec: %v\n", cerr)
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return exitError{128 + int(ws.Signal())}
				}
				return exitError{ee.ExitCode()}
			}
			return err
		}
	}
}
