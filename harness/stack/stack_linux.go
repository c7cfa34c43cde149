package stack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/vpcd"
)

// entries the stack creates in its directory; removed on cleanup.
var stackEntries = []string{"run", "conf", "drivers", "helper.sock", "pcscd.log", "helper.log"}

func removeEntries(dir string) {
	for _, e := range stackEntries {
		_ = os.RemoveAll(filepath.Join(dir, e))
	}
}

// maxSockPath is sun_path's size minus the terminating NUL.
const maxSockPath = 107

// Stack is a running private pcscd with its slots.
type Stack struct {
	cfg    Config
	dir    string
	ownDir bool
	log    *slog.Logger

	helper     *exec.Cmd
	lifeline   *os.File
	helperDone chan struct{}
	closing    atomic.Bool // set by Close before it stops the helper
	deathErr   error       // why the helper stopped on its own; set before helperDone closes

	ctx    context.Context // lives until Close; the cards' links run on it
	cancel context.CancelFunc
	links  sync.WaitGroup

	mu    sync.Mutex
	slots []Slot
	stops []func() // per slot: stops its link and waits for it (Eject)

	closeOnce sync.Once
	closeErr  error
}

// Start starts a stack as cfg says and returns once pcscd lists every slot
// and reports every card in cfg.Cards present.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Pcscd == "" {
		cfg.Pcscd = DefaultPcscd
	}
	if cfg.Driver == "" {
		cfg.Driver = DefaultDriver
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Slots == 0 {
		cfg.Slots = max(4, len(cfg.Cards))
	}
	if cfg.Slots < len(cfg.Cards) {
		return nil, fmt.Errorf("stack: %d cards do not fit in %d slots", len(cfg.Cards), cfg.Slots)
	}
	cfg.Slots += cfg.Slots % 2
	if cfg.Slots > MaxSlots {
		return nil, fmt.Errorf("stack: %d slots requested; pcsc-lite supports at most %d readers", cfg.Slots, MaxSlots)
	}
	pcscdPath, err := findPcscd(cfg.Pcscd)
	if err != nil {
		return nil, err
	}
	cfg.Pcscd = pcscdPath
	if _, err := os.Stat(cfg.Driver); err != nil {
		return nil, &ErrMissing{What: "vpcd driver", Path: cfg.Driver, Package: "vsmartcard-vpcd"}
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	s := &Stack{cfg: cfg, log: cfg.Log}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.makeDir(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	s.slots = make([]Slot, cfg.Slots)
	s.stops = make([]func(), cfg.Slots)
	for i := range s.slots {
		s.slots[i] = Slot{Index: i, Reader: readerName(i), Port: vpcd.DefaultPort + i}
	}
	// The start-up cards are inserted as soon as the helper serves, while
	// pcscd is still starting: their first dial waits for vpcd to listen
	// (dialSlot), so pcscd finds them at its first presence check instead
	// of a poll period later (docs/DESIGN.md "Stack start-up").
	var used []int
	insertErr := make(chan error, 1)
	early := func() {
		for i, c := range cfg.Cards {
			if c == nil {
				continue
			}
			if _, err := s.insert(i, c, s.earlyDialer(i)); err != nil {
				insertErr <- err
				return
			}
			used = append(used, i)
		}
		insertErr <- nil
	}
	if err := s.startHelper(ctx, early); err != nil {
		return nil, err
	}
	if err := <-insertErr; err != nil {
		return nil, err
	}
	names, err := s.readers(ctx, cfg.Slots)
	if err != nil {
		return nil, s.withLogs(err)
	}
	for _, sl := range s.slots {
		if !slices.Contains(names, sl.Reader) {
			return nil, fmt.Errorf("stack: pcscd lists readers %q, expected %q among them", names, sl.Reader)
		}
	}
	if err := s.WaitPresent(ctx, used...); err != nil {
		return nil, s.withLogs(err)
	}
	s.log.Debug("stack ready", "dir", s.dir, "slots", cfg.Slots, "cards", len(used))
	return s, nil
}

func findPcscd(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	// Debian puts pcscd in /usr/sbin, which an ordinary user's PATH lacks.
	if !strings.Contains(name, "/") {
		p := filepath.Join("/usr/sbin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", &ErrMissing{What: "pcscd", Path: name, Package: "pcscd"}
}

func (s *Stack) makeDir() error {
	if s.cfg.Dir == "" {
		d, err := os.MkdirTemp("", "cardharness-") // mode 0700
		if err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else {
		d, err := filepath.Abs(s.cfg.Dir)
		if err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		if _, err := os.Lstat(d); errors.Is(err, os.ErrNotExist) {
			s.ownDir = true
			if err := os.MkdirAll(d, 0o700); err != nil {
				return fmt.Errorf("stack: %w", err)
			}
		}
		s.dir = d
		if err := s.makePrivate(); err != nil {
			return err
		}
	}
	for _, p := range []string{s.SocketPath(), filepath.Join(s.dir, "helper.sock")} {
		if len(p) > maxSockPath {
			return fmt.Errorf("stack: socket path %s is %d bytes, longer than a Unix socket allows (%d); use a shorter --dir or TMPDIR", p, len(p), maxSockPath)
		}
	}
	for _, sub := range []string{"run", "conf", "drivers"} {
		p := filepath.Join(s.dir, sub)
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("stack: %s already exists; is another stack using %s?", p, s.dir)
		}
		if err := os.Mkdir(p, 0o700); err != nil {
			return fmt.Errorf("stack: %w", err)
		}
	}
	return nil
}

// makePrivate makes the stack's directory reachable by its owner only.
// pcscd creates its socket 0666 and checks no credentials, so whoever can
// reach DIR/run/pcscd.comm can use the cards (PIN prompts, signatures):
// the directory is the only gate. A directory of another user, or a
// symbolic link, is refused (its owner could widen it again, or point it
// elsewhere); our own directory is narrowed to 0700, whatever its mode was,
// and stays so after the stack (docs/DESIGN.md, "Stack files").
func (s *Stack) makePrivate() error {
	fi, err := os.Lstat(s.dir)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("stack: %s is a symbolic link; give the stack a real directory (it must be private to you)", s.dir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("stack: %s exists and is not a directory", s.dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("stack: %s belongs to uid %d, not to you (uid %d); the stack's directory must be private to the user running it: use a directory of your own", s.dir, st.Uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		if err := os.Chmod(s.dir, 0o700); err != nil {
			return fmt.Errorf("stack: make %s private: %w", s.dir, err)
		}
		if perm&0o077 != 0 {
			s.log.Info("stack: made the directory private (others could have used the cards through pcscd's socket)", "dir", s.dir, "was", fmt.Sprintf("%#o", perm), "now", "0700")
		}
	}
	return nil
}

// writeConfig writes one reader.conf entry per pair of slots, each with its
// own copy of the driver (reference §1.5: entries sharing a .so clobber each
// other's slots).
func (s *Stack) writeConfig() error {
	var b strings.Builder
	for e := 0; e < s.cfg.Slots/2; e++ {
		lib := filepath.Join(s.dir, "drivers", fmt.Sprintf("libifdvpcd-%d.so", e))
		if err := copyFile(s.cfg.Driver, lib); err != nil {
			return fmt.Errorf("stack: copy vpcd driver: %w", err)
		}
		port := vpcd.DefaultPort + 2*e
		fmt.Fprintf(&b, "FRIENDLYNAME \"%s\"\nDEVICENAME /dev/null:0x%X\nLIBPATH %s\nCHANNELID 0x%X\n\n", friendlyName(e), port, lib, port)
	}
	return os.WriteFile(filepath.Join(s.dir, "conf", "reader.conf"), []byte(b.String()), 0o600)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (s *Stack) startHelper(ctx context.Context, onListening func()) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	logf, err := os.OpenFile(filepath.Join(s.dir, "helper.log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		w.Close()
		return err
	}
	defer logf.Close()

	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"cardharness-stack-helper"}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, pcsc.SocketEnv+"=") && !strings.HasPrefix(kv, "_CARDHARNESS_") {
			env = append(env, kv)
		}
	}
	clean := "1"
	if s.cfg.KeepDir {
		clean = "0"
	}
	owned := "0"
	if s.ownDir && !s.cfg.KeepDir {
		owned = "1"
	}
	debug := "0"
	if s.cfg.Debug {
		debug = "1"
	}
	env = append(env,
		helperEnv+"=1",
		helperDirEnv+"="+s.dir,
		helperOwnedEnv+"="+owned,
		helperCleanEnv+"="+clean,
		helperPcscdEnv+"="+s.cfg.Pcscd,
		helperDebugEnv+"="+debug,
		helperEarlyEnv+"="+s.earlyPorts(),
		pcsc.SocketEnv+"="+s.SocketPath(),
	)
	cmd.Env = env
	cmd.ExtraFiles = []*os.File{r} // becomes fd 3, the lifeline
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		w.Close()
		return err
	}
	cmd.SysProcAttr = namespaceAttr()
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("stack: start helper in new namespaces: %w%s", err, usernsHint(err))
	}
	s.helper, s.lifeline = cmd, w
	s.helperDone = make(chan struct{})

	first := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		line, _ := br.ReadString('\n')
		line = strings.TrimSpace(line)
		if line == "listening" {
			onListening()
			line, _ = br.ReadString('\n')
			line = strings.TrimSpace(line)
		}
		first <- line
		// After "ready" the helper speaks only to say why it stopped.
		var died string
		for {
			l, err := br.ReadString('\n')
			if m, ok := strings.CutPrefix(strings.TrimSpace(l), "died: "); ok {
				if u, err := strconv.Unquote(m); err == nil {
					died = u
				} else {
					died = m
				}
			}
			if err != nil {
				break
			}
		}
		werr := cmd.Wait()
		if line == "ready" && (died != "" || !s.closing.Load()) {
			if died == "" {
				died = fmt.Sprintf("stack helper exited unexpectedly (%s); its log:\n%s", exitDescription(werr), tail(filepath.Join(s.dir, "helper.log"), 10))
			}
			s.deathErr = fmt.Errorf("%w: %s", ErrDied, died)
			cause, _, _ := strings.Cut(died, "\n")
			s.log.Error("stack stopped on its own; its cards are unreachable (see Stack.Err)", "dir", s.dir, "cause", cause)
		}
		close(s.helperDone)
	}()
	select {
	case line := <-first:
		if line == "ready" {
			return nil
		}
		if line == "" {
			line = "helper exited without a word"
		}
		if m, ok := strings.CutPrefix(line, "error: "); ok {
			if u, err := strconv.Unquote(m); err == nil {
				line = "error: " + u
			}
		}
		return fmt.Errorf("stack: %s%s\nhelper log:\n%s", line, usernsHint(errors.New(line)), tail(filepath.Join(s.dir, "helper.log"), 20))
	case <-ctx.Done():
		return fmt.Errorf("stack: helper not ready: %w\nhelper log:\n%s", ctx.Err(), tail(filepath.Join(s.dir, "helper.log"), 20))
	}
}

// namespaceAttr is `unshare --mount --net`, plus `--user --map-root-user`
// when we are not root.
func namespaceAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWNET,
		// Its own process group: a terminal's Ctrl-C goes to the parent,
		// which then stops the stack in order.
		Setpgid: true,
	}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	return attr
}

func usernsHint(err error) string {
	if os.Geteuid() == 0 {
		return ""
	}
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) ||
		strings.Contains(err.Error(), "operation not permitted") {
		return " (unprivileged user namespaces look disabled here: check sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces>0, and on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0; or run as root)"
	}
	return ""
}

func (s *Stack) withLogs(err error) error {
	return fmt.Errorf("%w\npcscd log (%s):\n%s", err, filepath.Join(s.dir, "pcscd.log"), tail(filepath.Join(s.dir, "pcscd.log"), 15))
}

// earlyPorts lists the vpcd ports of the start-up cards for the helper
// (spinConnect).
func (s *Stack) earlyPorts() string {
	var ports []string
	for i, c := range s.cfg.Cards {
		if c != nil {
			ports = append(ports, strconv.Itoa(vpcd.DefaultPort+i))
		}
	}
	return strings.Join(ports, ",")
}

func (s *Stack) helperSock() string { return filepath.Join(s.dir, "helper.sock") }

func (s *Stack) readers(ctx context.Context, n int) ([]string, error) {
	resp, _, err := call(ctx, s.helperSock(), request{Op: "readers", N: n, TimeoutMS: remaining(ctx)})
	if err != nil {
		return nil, err
	}
	return resp.Readers, nil
}

func remaining(ctx context.Context) int64 {
	if dl, ok := ctx.Deadline(); ok {
		return max(1, time.Until(dl).Milliseconds())
	}
	return DefaultTimeout.Milliseconds()
}

// Dir returns the stack's directory.
func (s *Stack) Dir() string { return s.dir }

// SocketPath is the value for PCSCLITE_CSOCK_NAME.
func (s *Stack) SocketPath() string { return filepath.Join(s.dir, "run", "pcscd.comm") }

// Env returns the environment entries a PC/SC client needs to use this
// stack.
func (s *Stack) Env() []string { return []string{pcsc.SocketEnv + "=" + s.SocketPath()} }

// Slots returns a snapshot of the slots.
func (s *Stack) Slots() []Slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.slots)
}

// Dialer returns the function that connects a card to slot n from inside
// the stack's network namespace.
func (s *Stack) Dialer(n int) vpcd.DialFunc {
	return func(ctx context.Context) (net.Conn, error) { return s.dial(ctx, n, false) }
}

// earlyDialer is Dialer for a start-up card: its first dial is made while
// pcscd starts (dialSlot's early), its re-dials are ordinary.
func (s *Stack) earlyDialer(n int) vpcd.DialFunc {
	var dialled atomic.Bool
	return func(ctx context.Context) (net.Conn, error) { return s.dial(ctx, n, !dialled.Swap(true)) }
}

func (s *Stack) dial(ctx context.Context, n int, early bool) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, f, err := call(ctx, s.helperSock(), request{Op: "dial", Port: vpcd.DefaultPort + n, Early: early, TimeoutMS: remaining(ctx)})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return net.FileConn(f)
}

// Insert puts card into the empty slot n and starts its link. It does not
// wait for pcscd to notice; see WaitPresent.
func (s *Stack) Insert(n int, card vcard.Card, opts ...vpcd.Option) (*vpcd.Link, error) {
	return s.insert(n, card, s.Dialer(n), opts...)
}

func (s *Stack) insert(n int, card vcard.Card, dial vpcd.DialFunc, opts ...vpcd.Option) (*vpcd.Link, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 || n >= len(s.slots) {
		return nil, fmt.Errorf("stack: no slot %d (the stack has %d)", n, len(s.slots))
	}
	if s.slots[n].Link != nil {
		return nil, fmt.Errorf("stack: slot %d already holds a card", n)
	}
	if s.ctx.Err() != nil {
		return nil, errors.New("stack: closed")
	}
	opts = append([]vpcd.Option{vpcd.WithLogger(s.log.With("slot", n))}, opts...)
	link := vpcd.NewLink(card, dial, opts...)
	s.slots[n].Link = link
	ctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	s.stops[n] = func() { cancel(); <-done }
	s.links.Add(1)
	go func() {
		defer s.links.Done()
		defer close(done)
		_ = link.Run(ctx)
	}()
	return link, nil
}

// Eject takes the card out of slot n for good: its link stops (the reader
// sees the card removed at its next poll) and the slot is empty again, for
// Insert to put another card (or the same card, re-opened from its store:
// how the soak restarts a killed card). Ejecting an empty slot is a no-op.
func (s *Stack) Eject(n int) error {
	s.mu.Lock()
	if n < 0 || n >= len(s.slots) {
		s.mu.Unlock()
		return fmt.Errorf("stack: no slot %d (the stack has %d)", n, len(s.slots))
	}
	stop := s.stops[n]
	s.stops[n] = nil
	s.slots[n].Link = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
	return nil
}

// WaitPresent waits until pcscd reports a card in each of the given slots.
func (s *Stack) WaitPresent(ctx context.Context, slots ...int) error {
	return s.waitSlots(ctx, "present", slots)
}

// WaitAbsent waits until pcscd reports each of the given slots empty (after
// Eject: pcscd notices a removal at its next poll of the reader).
func (s *Stack) WaitAbsent(ctx context.Context, slots ...int) error {
	return s.waitSlots(ctx, "absent", slots)
}

func (s *Stack) waitSlots(ctx context.Context, op string, slots []int) error {
	if len(slots) == 0 {
		return nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.Timeout)
		defer cancel()
	}
	var names []string
	for _, n := range slots {
		if n < 0 || n >= len(s.slots) {
			return fmt.Errorf("stack: no slot %d", n)
		}
		names = append(names, s.slots[n].Reader)
	}
	_, _, err := call(ctx, s.helperSock(), request{Op: op, Readers: names, TimeoutMS: remaining(ctx)})
	return err
}

// Done is closed when the stack stops: after Close, or on its own when
// pcscd or the helper dies. Err then says which.
func (s *Stack) Done() <-chan struct{} { return s.helperDone }

// Err is nil while the stack runs and after a plain Close; once the stack
// has stopped on its own (pcscd died, the helper was killed) it is an
// ErrDied naming the cause, with the last lines of pcscd's log. Such a
// stack is not restarted: see doc.go.
func (s *Stack) Err() error {
	select {
	case <-s.helperDone:
		return s.deathErr
	default:
		return nil
	}
}

// Close removes the cards, stops pcscd and removes the stack's files. If
// the stack had died on its own before, Close still cleans up and returns
// the ErrDied.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.cancel()
		s.links.Wait()
		if s.lifeline != nil {
			s.lifeline.Close() // the helper stops pcscd and cleans up
			select {
			case <-s.helperDone:
			case <-time.After(10 * time.Second):
				s.closeErr = errors.New("stack: helper did not stop within 10s; killed")
				_ = syscall.Kill(-s.helper.Process.Pid, syscall.SIGKILL)
				<-s.helperDone
			}
			if s.deathErr != nil && s.closeErr == nil {
				s.closeErr = s.deathErr
			}
		}
		if s.dir != "" && !s.cfg.KeepDir {
			removeEntries(s.dir)
			if s.ownDir {
				_ = os.Remove(s.dir)
			}
		}
	})
	return s.closeErr
}

// Preflight checks that the components Start needs are installed, without
// starting anything: a caller about to start many stacks reports a missing
// pcscd or vpcd driver once, up front.
func Preflight(cfg Config) error {
	if cfg.Pcscd == "" {
		cfg.Pcscd = DefaultPcscd
	}
	if cfg.Driver == "" {
		cfg.Driver = DefaultDriver
	}
	if _, err := findPcscd(cfg.Pcscd); err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Driver); err != nil {
		return &ErrMissing{What: "vpcd driver", Path: cfg.Driver, Package: "vsmartcard-vpcd"}
	}
	return nil
}
