package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRelayCommand starts `cardharness relay` on a free port, reads the
// lines it prints, fetches EST cacerts with the CA certificate it wrote
// and posts with the client credential it issued.
func TestRelayCommand(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- relayMain(ctx, []string{"--dir", dir, "--listen", "127.0.0.1:0", "--issue", "alice@contoso.test", "--fault", "http-500"}, pw, &stderr)
		pw.Close()
	}()
	vars := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(vars) < 4 && sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		vars[k] = v
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v (%s)", err, stderr.String())
		}
	}()
	for _, k := range []string{"CA_CERT", "URL", "CLIENT_CERT", "CLIENT_KEY"} {
		if vars[k] == "" {
			t.Fatalf("no %s= line; got %v; stderr %s", k, vars, stderr.String())
		}
	}
	caPEM, err := os.ReadFile(vars["CA_CERT"])
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(caPEM)
	caCert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	cred, err := tls.LoadX509KeyPair(vars["CLIENT_CERT"], vars["CLIENT_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cred}}}}
	resp, err := c.Get(vars["URL"] + "/.well-known/est/cacerts")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkcs7-mime" {
		t.Errorf("cacerts: HTTP %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// --fault http-500 applies to the first submission.
	resp, err = c.Post(vars["URL"]+"/certsrv/submit", "text/plain", strings.NewReader("AAAA"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("first submission with --fault http-500: HTTP %d", resp.StatusCode)
	}
}

func TestRelayCommandUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--dir", t.TempDir(), "--fault", "nope"}, {"--dir", t.TempDir(), "extra"}} {
		var out, errb bytes.Buffer
		err := relayMain(context.Background(), args, &out, &errb)
		if _, ok := err.(usageError); !ok {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
