package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/vcard"
)

// cardFlags are the flags that say which cards a stack holds.
type cardFlags struct {
	cards int
	slots int
	debug bool
	spec  cardSpec
}

func (c *cardFlags) add(fs *flag.FlagSet, withState bool) {
	fs.IntVar(&c.cards, "cards", 1, "number of virtual cards, in slots 0, 1, ...")
	fs.IntVar(&c.slots, "slots", 0, "number of reader slots (default: --cards; vpcd slots come in pairs, so an odd number gets one more; at most 16)")
	fs.BoolVar(&c.debug, "pcscd-debug", false, "run pcscd with -d -a; its log is DIR/pcscd.log (see --keep)")
	c.spec.addFlags(fs, withState)
}

func (c *cardFlags) slotCount() int {
	if c.slots > 0 {
		return c.slots
	}
	return max(c.cards, 1)
}

// make builds the cards; the returned function closes their traces.
func (c *cardFlags) make() ([]vcard.Card, func(), error) {
	if c.cards < 0 || c.cards > stack.MaxSlots {
		return nil, nil, usageError{fmt.Sprintf("--cards %d: want 0..%d", c.cards, stack.MaxSlots)}
	}
	if c.slots != 0 && c.slots < c.cards {
		return nil, nil, usageError{fmt.Sprintf("--slots %d cannot hold --cards %d", c.slots, c.cards)}
	}
	cards := make([]vcard.Card, c.cards)
	var closers []func() error
	closeAll := func() {
		for _, f := range closers {
			_ = f()
		}
	}
	for i := range cards {
		card, closeFn, err := c.spec.build(i, c.cards)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cards[i] = card
		closers = append(closers, closeFn)
	}
	return cards, closeAll, nil
}

func runStack(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("stack", "--dir DIR [--cards N] [--state DIR] [--card gids|echo] [--profile blank|initialized]", stderr)
	dir := fs.String("dir", "", "directory for the stack's socket, configuration and logs (required)")
	keep := fs.Bool("keep", false, "keep the stack's files in DIR after exit")
	var cf cardFlags
	cf.add(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{"--dir is required"}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	cards, closeCards, err := cf.make()
	if err != nil {
		return err
	}
	defer closeCards()
	ctx, stop := serveContext()
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
	select {
	case <-ctx.Done():
		return st.Close()
	case <-st.Done():
		// pcscd died: its clients are cut off; exit non-zero so whatever
		// runs us notices (docs/DESIGN.md, "Stack files and deaths").
		return st.Close()
	}
}

// Exit statuses of exec besides the command's own, as env(1) and
// docker run use them: the harness itself failed (bad flags, the stack did
// not start or died), the command could not be run, the command was not
// found.
const (
	execHarnessFailed = 125
	execCannotRun     = 126
	execNotFound      = 127
)

// runExec: every failure of its own is execHarnessFailed, so that a
// script can tell it from the command's status.
func runExec(args []string, stdout, stderr io.Writer) error {
	err := execCommand(args, stdout, stderr)
	var ee exitError
	var se statusError
	if err == nil || errors.Is(err, flag.ErrHelp) || errors.As(err, &ee) || errors.As(err, &se) {
		return err
	}
	return statusError{execHarnessFailed, err}
}

func execCommand(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("exec", "[--cards N] [--grace D] -- COMMAND [ARGS...]", stderr)
	grace := fs.Duration("grace", 10*time.Second, "after passing SIGINT/SIGTERM/SIGHUP on to COMMAND (or sending SIGTERM when the stack dies), wait this long, then SIGKILL it")
	var cf cardFlags
	cf.add(fs, true)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{"no command given (cardharness exec [flags] -- COMMAND [ARGS...])"}
	}
	if *grace <= 0 {
		return usageError{fmt.Sprintf("--grace %v: want a positive duration", *grace)}
	}
	cards, closeCards, err := cf.make()
	if err != nil {
		return err
	}
	defer closeCards()
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
		code := execCannotRun
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = execNotFound
		}
		return statusError{code, err}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// The grace period starts at the first signal we pass on; a command
	// that ignores it is killed when it ends.
	var (
		killTimer <-chan time.Time
		sentWhat  string
		stackErr  error
		stackDone = st.Done()
	)
	terminate := func(s os.Signal, why string) {
		_ = cmd.Process.Signal(s)
		if killTimer == nil {
			killTimer = time.After(*grace)
			sentWhat = why
		}
	}
	for {
		select {
		case s := <-sigs:
			terminate(s, s.String())
		case <-stackDone:
			stackDone = nil
			stackErr = st.Err()
			fmt.Fprintf(stderr, "cardharness exec: %v\ncardharness exec: stopping %s (SIGTERM, SIGKILL after %v)\n", stackErr, fs.Arg(0), *grace)
			terminate(syscall.SIGTERM, "SIGTERM (the stack died)")
		case <-killTimer:
			killTimer = make(chan time.Time) // never again
			fmt.Fprintf(stderr, "cardharness exec: %s still running %v after %s; sending SIGKILL\n", fs.Arg(0), *grace, sentWhat)
			_ = cmd.Process.Kill()
		case err := <-done:
			cerr := st.Close()
			if stackErr != nil {
				// Already reported; the command's status would hide it.
				return statusError{code: execHarnessFailed}
			}
			if cerr != nil {
				fmt.Fprintf(stderr, "cardharness exec: %v\n", cerr)
			}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return exitError{128 + int(ws.Signal())}
				}
				return exitError{ee.ExitCode()}
			}
			if err != nil {
				return err
			}
			if cerr != nil {
				return statusError{code: execHarnessFailed}
			}
			return nil
		}
	}
}
