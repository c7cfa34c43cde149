package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/cardharness/cardharness/harness/stack"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/testcard"
)

// doctor is what a newcomer (or a CI log reader) runs first: every line is
// a check with its outcome, and a failure says what to do.
type doctor struct {
	w      io.Writer
	failed int
}

func (d *doctor) check(name string, err error, detail string) bool {
	if err != nil {
		d.failed++
		fmt.Fprintf(d.w, "FAIL  %-34s %v\n", name, err)
		return false
	}
	fmt.Fprintf(d.w, "ok    %-34s %s\n", name, detail)
	return true
}

func runDoctor(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("doctor", "[--cards N] [--apdus N]", stderr)
	cards := fs.Int("cards", 4, "virtual cards to start")
	apdus := fs.Int("apdus", 1000, "APDUs to round-trip per card")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *cards < 1 || *cards > stack.MaxSlots {
		return usageError{fmt.Sprintf("--cards %d: want 1..%d", *cards, stack.MaxSlots)}
	}
	d := &doctor{w: stdout}
	fmt.Fprintf(stdout, "cardharness doctor: checking components, then a private stack with %d virtual cards\n\n", *cards)

	for _, t := range []struct{ bin, pkg string }{
		{"pcscd", "pcscd"}, {"opensc-tool", "opensc"}, {"gids-tool", "opensc"},
		{"pkcs11-tool", "opensc"}, {"pkcs15-tool", "opensc"}, {"openssl", "openssl"},
	} {
		p, err := lookPath(t.bin)
		if err != nil {
			err = fmt.Errorf("not found; apt-get install %s (or make deps)", t.pkg)
		}
		d.check("tool "+t.bin, err, p)
	}
	_, err := os.Stat(stack.DefaultDriver)
	if err != nil {
		err = fmt.Errorf("%s missing; apt-get install vsmartcard-vpcd", stack.DefaultDriver)
	}
	d.check("vpcd driver", err, stack.DefaultDriver)
	who := "root: mount+net namespaces"
	if os.Geteuid() != 0 {
		who = "user: user+mount+net namespaces"
	}
	d.check("privileges", nil, who)

	cs := make([]vcard.Card, *cards)
	for i := range cs {
		cs[i] = &testcard.Echo{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	st, err := stack.Start(ctx, stack.Config{Cards: cs, Slots: *cards, Log: lf.logger(stderr)})
	if !d.check("private stack", err, fmt.Sprintf("%d readers with cards in %v", *cards, time.Since(start).Round(time.Millisecond))) {
		return d.result(stdout)
	}
	defer st.Close()
	if err := pcsc.UseSocket(st.SocketPath()); err != nil {
		d.check("bind PC/SC client", err, "")
		return d.result(stdout)
	}
	client, err := pcsc.NewClient()
	if !d.check("PC/SC client", err, st.SocketPath()) {
		return d.result(stdout)
	}
	defer client.Close()

	for _, sl := range st.Slots()[:*cards] {
		rate, err := roundTrips(ctx, client, sl.Reader, *apdus)
		d.check("round trips "+sl.Reader, err, fmt.Sprintf("%d APDUs, %.0f APDU/s", *apdus, rate))
	}
	drate := directRate(*apdus * 10)
	d.check("round trips in process (direct)", nil, fmt.Sprintf("%.0f APDU/s", drate))

	if p, err := lookPath("opensc-tool"); err == nil {
		cmd := exec.CommandContext(ctx, p, "-l")
		cmd.Env = append(os.Environ(), st.Env()...)
		out, err := cmd.CombinedOutput()
		n := strings.Count(string(out), "Yes")
		if err == nil && n != *cards {
			err = fmt.Errorf("opensc-tool -l sees %d cards, want %d:\n%s", n, *cards, out)
		}
		d.check("opensc-tool -l", err, fmt.Sprintf("%d readers with a card", n))
	}
	if err := st.Close(); !d.check("stack cleanup", err, "pcscd stopped, "+st.Dir()+" removed") {
		return d.result(stdout)
	}
	return d.result(stdout)
}

func (d *doctor) result(w io.Writer) error {
	fmt.Fprintln(w)
	if d.failed > 0 {
		fmt.Fprintf(w, "doctor: %d check(s) failed\n", d.failed)
		return exitError{1}
	}
	fmt.Fprintln(w, "doctor: all checks passed")
	return nil
}

func lookPath(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	p := "/usr/sbin/" + bin
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found", bin)
}

func roundTrips(ctx context.Context, c *pcsc.Client, reader string, n int) (float64, error) {
	card, err := c.Connect(ctx, reader)
	if err != nil {
		return 0, err
	}
	defer card.Close()
	cmd := []byte{0x00, 0xDB, 0x3F, 0xFF, 0x04, 1, 2, 3, 4}
	want := []byte{1, 2, 3, 4, 0x90, 0x00}
	start := time.Now()
	for i := 0; i < n; i++ {
		resp, err := card.Transmit(ctx, cmd)
		if err != nil {
			return 0, fmt.Errorf("APDU %d: %w", i, err)
		}
		if !bytes.Equal(resp, want) {
			return 0, fmt.Errorf("APDU %d: response % X, want % X", i, resp, want)
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func directRate(n int) float64 {
	d := pcsc.NewDirect(&testcard.Echo{})
	cmd := []byte{0x00, 0xDB, 0x3F, 0xFF, 0x04, 1, 2, 3, 4}
	start := time.Now()
	for i := 0; i < n; i++ {
		_, _ = d.Transmit(context.Background(), cmd)
	}
	return float64(n) / time.Since(start).Seconds()
}
