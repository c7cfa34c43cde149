// Package tools runs the external programs the harness drives (OpenSC's
// opensc-tool, pkcs11-tool, pkcs15-tool, pkcs15-init, gids-tool; openssl)
// and turns their output into values and their failures into errors a
// person can act on: the command line, the exit status, the tail of stderr,
// and for a missing program the Debian package to install.
package tools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// DefaultTimeout bounds one tool run. RSA-4096 key generation on the card
// is the slowest thing a tool waits for.
const DefaultTimeout = 3 * time.Minute

// packages maps programs to the Debian package that ships them.
var packages = map[string]string{
	"opensc-tool": "opensc", "pkcs11-tool": "opensc", "pkcs15-tool": "opensc",
	"pkcs15-init": "opensc", "gids-tool": "opensc", "opensc-explorer": "opensc",
	"openssl": "openssl", "pcsc_scan": "pcsc-tools", "curl": "curl",
}

// ErrMissing: the program is not installed.
type ErrMissing struct{ Program, Package string }

func (e *ErrMissing) Error() string {
	return fmt.Sprintf("%s not found: apt-get install %s (or make deps)", e.Program, e.Package)
}

// Result is a finished run.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	ExitCode int
	Duration time.Duration
}

// Output is stdout and stderr together, as a person would have seen them.
func (r *Result) Output() string { return r.Stdout + r.Stderr }

// ExitError: the program ran and failed (or ran too long).
type ExitError struct {
	*Result
	Err error // the exec error (exit status, or context deadline)
}

func (e *ExitError) Error() string {
	tail := strings.TrimSpace(e.Stderr)
	if tail == "" {
		tail = strings.TrimSpace(e.Stdout)
	}
	if lines := strings.Split(tail, "\n"); len(lines) > 8 {
		tail = "...\n" + strings.Join(lines[len(lines)-8:], "\n")
	}
	return fmt.Sprintf("%s: %v\n%s", strings.Join(e.Args, " "), e.Err, tail)
}

func (e *ExitError) Unwrap() error { return e.Err }

// Runner runs programs against one stack (or the system pcscd).
type Runner struct {
	// Env is added to the environment, e.g. the stack's
	// PCSCLITE_CSOCK_NAME.
	Env []string
	// Dir is the working directory (where relative file names point).
	Dir string
	// Timeout per run (default DefaultTimeout).
	Timeout time.Duration
	// Log, if set, sees every finished run (for test logs and reports).
	Log func(*Result)
}

// Run runs name with args. A non-zero exit is an *ExitError carrying the
// result; a missing program is an *ErrMissing.
func (r *Runner) Run(ctx context.Context, name string, args ...string) (*Result, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		pkg := packages[name]
		if pkg == "" {
			pkg = "(the package that provides " + name + ")"
		}
		return nil, &ErrMissing{Program: name, Package: pkg}
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(), r.Env...)
	// Tools must never wait on a terminal for a PIN: they get the PIN on
	// the command line or fail.
	cmd.Stdin = nil
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	res := &Result{
		Args:     append([]string{name}, args...),
		Stdout:   stdout.String(),
		Stderr:   stderr.String(),
		ExitCode: cmd.ProcessState.ExitCode(),
		Duration: time.Since(start),
	}
	if r.Log != nil {
		r.Log(res)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %v", ctx.Err(), timeout)
		}
		return res, &ExitError{Result: res, Err: err}
	}
	return res, nil
}

// IsExit reports whether err is a tool that ran and exited non-zero (as
// opposed to one that could not start).
func IsExit(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee)
}
