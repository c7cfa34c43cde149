package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cardharness/cardharness/pcsc"
)

// Environment of the helper process. Any binary that imports this package
// can act as the helper: the stack re-executes /proc/self/exe with
// helperEnv set, and init hands control to helperMain before main (or
// TestMain) runs. That is what lets `go test` binaries start stacks with no
// extra setup, as httptest does for servers.
const (
	helperEnv      = "_CARDHARNESS_STACK_HELPER"
	helperDirEnv   = "_CARDHARNESS_STACK_DIR"
	helperOwnedEnv = "_CARDHARNESS_STACK_OWNED" // "1": remove the whole dir at exit
	helperCleanEnv = "_CARDHARNESS_STACK_CLEAN" // "1": remove the stack's entries in the dir at exit
	helperPcscdEnv = "_CARDHARNESS_STACK_PCSCD"
	helperDebugEnv = "_CARDHARNESS_STACK_DEBUG"
	helperEarlyEnv = "_CARDHARNESS_STACK_EARLY" // ports of the start-up cards, comma-separated
)

// lifelineFD is the read end of a pipe whose write end only the parent
// holds: EOF means the parent is gone, however it died.
const lifelineFD = 3

func init() {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain())
	}
}

// helperMain runs inside the new namespaces. On stdout it says
// "listening" once it serves requests (before pcscd starts), then "ready"
// once pcscd serves, or "error: ..."; the parent waits for them.
func helperMain() int {
	// Pdeathsig on pcscd is tied to the thread that started it; keep this
	// goroutine on one thread for the life of the process.
	runtime.LockOSThread()
	dir := os.Getenv(helperDirEnv)
	h := &helper{dir: dir, owned: os.Getenv(helperOwnedEnv) == "1", clean: os.Getenv(helperCleanEnv) == "1"}
	lifeline := os.NewFile(lifelineFD, "lifeline")
	if err := h.start(); err != nil {
		// Quoted: the error spans lines (pcscd's log), and the parent
		// reads one line; the stack directory is gone once it reads it.
		fmt.Printf("error: %q\n", err.Error())
		h.stop()
		return 1
	}
	fmt.Println("ready")

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	parentGone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, lifeline)
		close(parentGone)
	}()
	select {
	case <-parentGone:
		fmt.Fprintln(os.Stderr, "helper: parent closed the lifeline; stopping")
	case s := <-sigs:
		fmt.Fprintf(os.Stderr, "helper: %v; stopping\n", s)
	case <-h.pcscdDone:
		// Restarting pcscd is not safe: every client's context and card
		// handle died with it, and the cards' links would reconnect to a
		// reader table the clients no longer know. The parent hears why
		// on stdout and stops too.
		msg := fmt.Sprintf("pcscd exited unexpectedly (%v); last lines of its log:\n%s", exitDescription(h.pcscdErr), tail(filepath.Join(h.dir, "pcscd.log"), 10))
		fmt.Fprintln(os.Stderr, "helper: "+msg+"\nhelper: stopping")
		fmt.Printf("died: %q\n", msg)
	}
	h.stop()
	return 0
}

// exitDescription says how a child ended, "signal: killed" or "exit status 1".
func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

type helper struct {
	dir       string
	owned     bool
	clean     bool
	pcscd     *exec.Cmd
	pcscdDone chan struct{}
	pcscdErr  error
	ln        *net.UnixListener
	early     map[int]chan earlyConn // by port; see spinConnect
}

// earlyConn is what spinConnect got for a port.
type earlyConn struct {
	c   net.Conn
	err error
}

func (h *helper) start() error {
	if h.dir == "" {
		return errors.New("no stack directory")
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return fmt.Errorf("bring up loopback: %w", err)
	}
	if err := bindRunDir(filepath.Join(h.dir, "run")); err != nil {
		return err
	}
	// The helper serves before pcscd starts, and says "listening", so that
	// the parent can dial its start-up cards while pcscd creates the
	// readers (dialSlot).
	sock := filepath.Join(h.dir, "helper.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("make %s private: %w", sock, err)
	}
	h.ln = ln
	ports, err := parsePorts(os.Getenv(helperEarlyEnv))
	if err != nil {
		return err
	}
	// h.early is complete before the first request is served.
	h.early = make(map[int]chan earlyConn, len(ports))
	for _, p := range ports {
		h.early[p] = make(chan earlyConn, 1)
	}
	go h.serve()
	fmt.Println("listening")
	if len(ports) > 0 {
		go spinConnect(h.early)
	}
	return h.startPcscd()
}

func parsePorts(v string) ([]int, error) {
	var ports []int
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' }) {
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("%s: bad port %q", helperEarlyEnv, f)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// loopbackUp is `ip link set lo up`: a new network namespace starts with lo
// down, and vpcd listens on it.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// bindRunDir puts src over /run/pcscd. Where /run/pcscd does not exist (no
// system pcscd has ever run, or a container), a private tmpfs over /run
// provides the mount point without creating anything on the host.
func bindRunDir(src string) error {
	const target = "/run/pcscd"
	if _, err := os.Stat(target); err != nil {
		if strings.HasPrefix(src, "/run/") {
			return fmt.Errorf("%s does not exist and the stack directory %s is under /run, which the stack must cover; set TMPDIR or --dir elsewhere", target, src)
		}
		if err := unix.Mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("mount private tmpfs on /run: %w", err)
		}
		if err := os.Mkdir(target, 0o755); err != nil {
			return fmt.Errorf("create %s in private /run: %w", target, err)
		}
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s over %s: %w", src, target, err)
	}
	return nil
}

func (h *helper) startPcscd() error {
	bin := os.Getenv(helperPcscdEnv)
	args := []string{"-f", "-c", filepath.Join(h.dir, "conf")}
	if os.Getenv(helperDebugEnv) == "1" {
		args = append(args, "-d", "-a")
	}
	logf, err := os.OpenFile(filepath.Join(h.dir, "pcscd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pcscd: %w", err)
	}
	h.pcscd = cmd
	h.pcscdDone = make(chan struct{})
	go func() {
		h.pcscdErr = cmd.Wait()
		close(h.pcscdDone)
	}()
	// pcscd is ready when its socket exists.
	sock := filepath.Join(h.dir, "run", "pcscd.comm")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			// pcscd makes its socket 0666; the 0700 directory already
			// keeps others out, this is the second lock.
			if err := os.Chmod(sock, 0o600); err != nil {
				return fmt.Errorf("make %s private: %w", sock, err)
			}
			return nil
		}
		select {
		case <-h.pcscdDone:
			return fmt.Errorf("pcscd exited during start-up (%v); its log:\n%s", h.pcscdErr, tail(filepath.Join(h.dir, "pcscd.log"), 20))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pcscd did not create %s within 10s; its log:\n%s", sock, tail(filepath.Join(h.dir, "pcscd.log"), 20))
		}
	}
}

func (h *helper) serve() {
	for {
		c, err := h.ln.AcceptUnix()
		if err != nil {
			return
		}
		go serveConn(c, h.handle)
	}
}

func (h *helper) handle(req request) (response, *os.File) {
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch req.Op {
	case "dial":
		c, err := h.dialSlot(ctx, req.Port, req.Early)
		if err != nil {
			return response{Err: err.Error()}, nil
		}
		defer c.Close()
		f, err := c.(*net.TCPConn).File()
		if err != nil {
			return response{Err: err.Error()}, nil
		}
		return response{}, f
	case "readers":
		cl, err := newClient(ctx)
		if err != nil {
			return response{Err: err.Error()}, nil
		}
		defer cl.Close()
		names, err := cl.WaitReaders(ctx, req.N)
		if err != nil {
			return response{Err: err.Error(), Readers: names}, nil
		}
		if err := h.privatise(); err != nil {
			return response{Err: err.Error()}, nil
		}
		return response{Readers: names}, nil
	case "present":
		cl, err := newClient(ctx)
		if err != nil {
			return response{Err: err.Error()}, nil
		}
		defer cl.Close()
		if err := cl.WaitPresent(ctx, req.Readers...); err != nil {
			return response{Err: err.Error()}, nil
		}
		return response{}, nil
	case "absent":
		cl, err := newClient(ctx)
		if err != nil {
			return response{Err: err.Error()}, nil
		}
		defer cl.Close()
		if err := cl.WaitAbsent(ctx, req.Readers...); err != nil {
			return response{Err: err.Error()}, nil
		}
		return response{}, nil
	}
	return response{Err: fmt.Sprintf("unknown op %q", req.Op)}, nil
}

// dialSlot connects to vpcd's port for a slot. early: the slot holds a
// start-up card, whose connection spinConnect made (or is making) while
// pcscd started; it is handed over once, later dials are ordinary.
func (h *helper) dialSlot(ctx context.Context, port int, early bool) (net.Conn, error) {
	if ch, ok := h.early[port]; ok && early {
		select {
		case r := <-ch:
			if r.c != nil || !errors.Is(r.err, unix.ECONNREFUSED) {
				return r.c, r.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
}

// spinConnect connects to the start-up cards' vpcd ports while pcscd
// starts, so that each card is in vpcd's accept backlog before pcscd's
// first presence check of its reader. That check follows vpcd's listen()
// by some tens of microseconds; a card that misses it is seen one poll
// (400 ms) later, which is what every start-up cost before. So it tries
// each port still refused every 20 us, on one locked thread, with bare
// connect(2) calls (Go's dialer costs tens of microseconds an attempt) and
// a raw nanosleep (through the runtime's syscall path the thread loses its
// P, and getting it back took milliseconds under load), from before pcscd
// starts until every port has a connection, or for one second: a port
// still refused then gets that error, and its card dials the ordinary way
// (and waits for a poll). A thread woken on pcscd's first open of its
// configuration (inotify) instead of polling missed the window: its
// wake-up came milliseconds late under load.
//
// The first presence check sends GET ATR on the connection and waits for
// the answer; the parent attaches the card as soon as the helper says
// "listening", so that wait is short and pcscd's start-up never depends
// on it.
func spinConnect(ports map[int]chan earlyConn) {
	runtime.LockOSThread()
	// The thread is not returned to the runtime (it may have real-time
	// priority): it ends with the goroutine.
	//
	// Best effort: SCHED_FIFO keeps other load from delaying the loop past
	// the window; without CAP_SYS_NICE (a user namespace) it stays an
	// ordinary thread and misses more often under load. With one CPU it
	// would compete with the pcscd it waits for, so then it does not ask.
	if runtime.NumCPU() > 1 {
		_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 1}, 0)
	}
	pending := make([]int, 0, len(ports))
	for p := range ports {
		pending = append(pending, p)
	}
	deadline := time.Now().Add(time.Second)
	pause := unix.NsecToTimespec(20_000)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			for _, p := range pending {
				ports[p] <- earlyConn{err: unix.ECONNREFUSED}
			}
			return
		}
		for i := 0; i < len(pending); i++ {
			c, err := connectOnce(pending[i])
			if errors.Is(err, unix.ECONNREFUSED) {
				continue
			}
			ports[pending[i]] <- earlyConn{c, err}
			pending = append(pending[:i], pending[i+1:]...)
			i--
		}
		_, _, _ = unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&pause)), 0, 0)
	}
}

// connectOnce is one blocking connect(2) to 127.0.0.1:port.
func connectOnce(port int) (net.Conn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "vpcd")
	defer f.Close()
	return net.FileConn(f)
}

// newClient connects to the stack's pcscd. Its socket file appears a
// moment before pcscd serves it, so "no service" is retried until ctx ends
// (seen under load: the first EstablishContext failing right after start).
func newClient(ctx context.Context) (*pcsc.Client, error) {
	for {
		cl, err := pcsc.NewClient()
		if err == nil || !errors.Is(err, pcsc.ErrNoService) {
			return cl, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// privatise narrows what pcscd created in run/: it makes the directory
// 0755 and its socket 0666 (after bind(), possibly after the chmod in
// startPcscd). The stack's 0700 directory already keeps others out; this
// is the second lock. Called once pcscd serves, when it has done its own
// chmods.
func (h *helper) privatise() error {
	run := filepath.Join(h.dir, "run")
	for _, p := range []struct {
		name string
		mode os.FileMode
	}{{run, 0o700}, {filepath.Join(run, "pcscd.comm"), 0o600}, {filepath.Join(run, "pcscd.pid"), 0o600}} {
		if err := os.Chmod(p.name, p.mode); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", p.name, err)
		}
	}
	return nil
}

// stop ends pcscd (SIGTERM lets it remove its socket and pid file) and
// removes the stack's files.
func (h *helper) stop() {
	if h.ln != nil {
		h.ln.Close()
	}
	if h.pcscd != nil && h.pcscd.Process != nil {
		_ = h.pcscd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.pcscdDone:
		case <-time.After(5 * time.Second):
			_ = h.pcscd.Process.Kill()
			<-h.pcscdDone
		}
	}
	if h.dir != "" && h.clean {
		removeEntries(h.dir)
		if h.owned {
			_ = os.Remove(h.dir)
		}
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
