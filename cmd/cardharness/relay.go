package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cardharness/cardharness/harness/relay"
)

func runRelay(args []string, stdout, stderr io.Writer) error {
	ctx, stop := serveContext()
	defer stop()
	return relayMain(ctx, args, stdout, stderr)
}

// relayMain is runRelay until ctx ends (tests cancel it).
func relayMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, _ := newFlags("relay", "--dir DIR [--listen ADDR] [--issue UPN] [--fault NAME]... [--lookup-after-impersonation]", stderr)
	listen := fs.String("listen", "127.0.0.1:8443", "`address` to listen on (port 0: any free port)")
	dir := fs.String("dir", "", "`directory` of the CA: ca-key.pem is used or created, ca.pem is written (required)")
	issue := fs.String("issue", "", "also enroll this `UPN` with a software key: DIR/user-cert.pem, DIR/user-key.pem (to try the relay with curl)")
	var faults []relay.Fault
	fs.Func("fault", "inject `NAME` into the next request (repeatable, in order): "+faultList(), func(s string) error {
		f, err := relay.ParseFault(s)
		if err == nil {
			faults = append(faults, f)
		}
		return err
	})
	lookupBug := fs.Bool("lookup-after-impersonation", false, "reproduce the CA lookup after impersonation (ERROR_FILE_NOT_FOUND on every request)")
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{"--dir is required (the CA key and certificate live there)"}
	}
	c, caPath, err := relay.OpenCA(*dir, nil)
	if err != nil {
		return err
	}
	srv, err := relay.New(relay.Config{CA: c, Addr: *listen, ESTTemplate: relay.SmartcardLogonTemplate, LookupCAAfterImpersonation: *lookupBug})
	if err != nil {
		return err
	}
	srv.Inject(faults...)
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "CA_CERT=%s\n", caPath)
	fmt.Fprintf(stdout, "URL=%s\n", srv.URL())
	if *issue != "" {
		certPath, keyPath, err := relay.IssueCredential(c, *dir, "user", *issue)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "CLIENT_CERT=%s\nCLIENT_KEY=%s\n", certPath, keyPath)
	}
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	<-ctx.Done()
	return srv.Close()
}

func faultList() string {
	var names []string
	for _, f := range relay.Faults() {
		names = append(names, f.String())
	}
	return strings.Join(names, ", ")
}
