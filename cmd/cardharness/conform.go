package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cardharness/cardharness/harness/conform"
	"github.com/cardharness/cardharness/pcsc"
)

func runConform(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("conform", "--reader NAME [--pin PIN] [--admin-key HEX48] [--destructive] [--report text|json] [--junit FILE]", stderr)
	reader := fs.String("reader", "", "the reader holding the card (as pcscd names it; PCSCLITE_CSOCK_NAME picks the pcscd)")
	pin := fs.String("pin", "", "the card's user PIN (without it the PIN checks are not applicable)")
	adminKey := fs.String("admin-key", "", "the card's 3DES admin key, 48 hex digits (without it the admin checks are not applicable)")
	destructive := fs.Bool("destructive", false, "also run the checks that write to the card: keys, files, the PIN counter (use a test card)")
	report := fs.String("report", "text", "report format on stdout: text or json")
	junit := fs.String("junit", "", "also write a JUnit XML report to this file")
	sizes := fs.String("key-sizes", "1024,2048,3072,4096", "RSA key sizes to generate (comma-separated)")
	only := fs.String("only", "", "run only these checks (comma-separated IDs)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *reader == "" {
		return usageError{"--reader is required (cardharness exec -- opensc-tool -l, or pcsc_scan, lists readers)"}
	}
	if err := oneOf("report", *report, "text", "json"); err != nil {
		return err
	}
	opts := conform.Options{PIN: *pin, Destructive: *destructive}
	if *pin != "" && (len(*pin) < 4 || len(*pin) > 16) {
		return usageError{"--pin: GIDS PINs have 4 to 16 characters"}
	}
	if *adminKey != "" {
		k, err := hex.DecodeString(*adminKey)
		if err != nil || len(k) != 24 {
			return usageError{"--admin-key: want 48 hex digits (a 24-byte 3DES key)"}
		}
		var key [24]byte
		copy(key[:], k)
		opts.AdminKey = &key
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || (n != 1024 && n != 2048 && n != 3072 && n != 4096) {
			return usageError{fmt.Sprintf("--key-sizes: %q is not one of 1024, 2048, 3072, 4096", s)}
		}
		opts.KeySizes = append(opts.KeySizes, n)
	}
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	ctx, stop := runContext()
	defer stop()
	client, err := pcsc.NewClient()
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.CheckReader(*reader); err != nil {
		return err
	}
	card, err := client.Connect(ctx, *reader)
	if err != nil {
		return err
	}
	defer card.Close()
	opts.PowerCycle = card.PowerCycle
	if *destructive {
		fmt.Fprintf(stderr, "cardharness conform: --destructive: checks will write to the card in %q (keys, files, PIN counter)\n", *reader)
	}
	if lf.verbose {
		opts.Progress = conform.WriteProgress(stderr)
	}
	rep := conform.Run(ctx, card, *reader, opts)
	if *junit != "" {
		if err := writeFile(*junit, rep.WriteJUnit); err != nil {
			return err
		}
	}
	if *report == "json" {
		if err := rep.WriteJSON(stdout); err != nil {
			return err
		}
	} else {
		rep.WriteText(stdout)
	}
	if !rep.OK() {
		return exitError{1}
	}
	return nil
}
