package testutil

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recorder stands in for the testing.TB a helper is given, so a test can
// check that the helper fails when it must. Fatal stops the helper's
// goroutine as the testing package's does.
type recorder struct {
	testing.TB
	msgs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// failures runs f with a recorder and returns what it reported.
func failures(t *testing.T, f func(tb testing.TB)) []string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msgs
}

type pair struct{ A, B byte }

func parsePair(b []byte) (pair, error) {
	if len(b) != 2 {
		return pair{}, errors.New("want 2 bytes")
	}
	return pair{b[0], b[1]}, nil
}

func encodePair(p pair) ([]byte, error) { return []byte{p.A, p.B}, nil }

// TestCheckVectorFails: each of the three promises of a vector is
// checked, so a helper bug cannot turn a failing vector into a pass.
func TestCheckVectorFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		parse  func([]byte) (pair, error)
		encode func(pair) ([]byte, error)
		in     []byte
		want   pair
		msg    string // "" for a vector that holds
	}{
		{"holds", parsePair, encodePair, []byte{1, 2}, pair{1, 2}, ""},
		{"parse fails", parsePair, encodePair, []byte{1}, pair{1, 0}, "want 2 bytes"},
		{"other value", parsePair, encodePair, []byte{1, 2}, pair{1, 3}, "parse (-want +got)"},
		{"encoding differs", parsePair, func(p pair) ([]byte, error) { return []byte{p.B, p.A}, nil },
			[]byte{1, 2}, pair{1, 2}, "encode =\n02 01"},
		{"encoder fails", parsePair, func(pair) ([]byte, error) { return nil, errors.New("no") },
			[]byte{1, 2}, pair{1, 2}, "encode: no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := failures(t, func(tb testing.TB) { CheckVector(tb, tc.parse, tc.encode, tc.in, tc.want) })
			if tc.msg == "" {
				if len(got) != 0 {
					t.Errorf("failed a good vector: %q", got)
				}
				return
			}
			if len(got) == 0 || !strings.Contains(strings.Join(got, "\n"), tc.msg) {
				t.Errorf("reported %q, want a failure with %q", got, tc.msg)
			}
		})
	}
}

func TestNeedTool(t *testing.T) {
	if p := NeedTool(t, "sh", "dash"); !strings.HasSuffix(p, "/sh") {
		t.Errorf("NeedTool(sh) = %q", p)
	}
	got := failures(t, func(tb testing.TB) { NeedTool(tb, "cardharness-no-such-tool", "some-package") })
	if len(got) != 1 || !strings.Contains(got[0], "apt-get install some-package") {
		t.Errorf("missing tool reported %q, want the package to install", got)
	}
}

func TestSelfSigned(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(SelfSigned(t, k, "tester"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "tester" || !c.PublicKey.(*rsa.PublicKey).Equal(&k.PublicKey) {
		t.Errorf("certificate for %q, key %v", c.Subject.CommonName, c.PublicKey)
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
}

const childEnv = "CARDHARNESS_TESTUTIL_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		fmt.Println("ready")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestStartChild: the child runs until killed, and a ready line other
// than the one expected fails the test.
func TestStartChild(t *testing.T) {
	cmd := StartChild(t, "ready", childEnv+"=1")
	if cmd.ProcessState != nil {
		t.Fatal("child already exited")
	}
	KillChild(cmd)
	if cmd.ProcessState == nil || cmd.ProcessState.Success() {
		t.Errorf("after KillChild: %v", cmd.ProcessState)
	}
	got := failures(t, func(tb testing.TB) { StartChild(tb, "started", childEnv+"=1") })
	if len(got) != 1 || !strings.Contains(got[0], `said "ready\n", want "started"`) {
		t.Errorf("wrong ready line reported %q", got)
	}
}
