package winhost

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// The TLS client of the host model (issue 12): a process opens HTTPS
// connections whose client key is a card key, used through the TLS
// stack's own path to the key (Schannel), so every handshake's
// CertificateVerify signature is computed by the card through APDUs and
// costs a PIN through the TLS stack's PIN cache (Knobs.SchannelPINCache,
// Knobs.SingleTokenPINCache).

// Schannel is the TLS stack as a user of card keys: an API of its own
// for PIN caching (Process.PINPrompts(Schannel) counts its prompts).
const Schannel API = CNG + 1

// SchannelPINCache says where the TLS stack caches the PIN of a card key.
type SchannelPINCache int

const (
	// SchannelOwnPINCache: a cache of its own, separate from Base CSP's
	// and the KSP's (the founding document's observation: the TLS stack
	// and the smart-card CSP cache PINs separately).
	SchannelOwnPINCache SchannelPINCache = iota
	// SchannelSharesProcessCache: the TLS stack uses the process's
	// provider (ProcessOptions.API) and its cache, so a PIN typed for the
	// request also signs the handshake [I: an alternative to compare].
	SchannelSharesProcessCache
)

func (c SchannelPINCache) String() string {
	if c == SchannelSharesProcessCache {
		return "shares-process-cache"
	}
	return "own-cache"
}

// TLSOptions configure Process.NewTLSClient.
type TLSOptions struct {
	// Cert is the client certificate, a My entry whose CERT_KEY_PROV_INFO
	// names the card container.
	Cert StoreCert
	// RootCAs verify the server; nil is the system pool.
	RootCAs *x509.CertPool
	// Timeout is WinHTTP's receive timeout (WinHttpSetTimeouts'
	// dwReceiveTimeout): how long, in real time, the client waits for the
	// answer once its request is sent, before it gives up on a relay that
	// holds the request; 0: no limit. The connection and the handshake
	// (the card signing) are not part of it, so a slow card on a loaded
	// machine is not taken for a relay that holds the request.
	Timeout time.Duration
	// MaxVersion: 0 is TLS 1.2 with PKCS#1 v1.5 client signatures, what
	// the card's providers can do (they sign no RSA-PSS, which TLS 1.3
	// requires).
	MaxVersion uint16
}

// TLSClient is an HTTPS client of one process with a card-backed client
// certificate. It keeps connections alive: a connection opened by one
// call (the founding document's "dummy call") serves the next ones
// without a new handshake signature.
type TLSClient struct {
	p    *Process
	key  *KeyHandle
	http *http.Client

	mu         sync.Mutex
	handshakes int
	signErr    error
}

// NewTLSClient prepares a client for opts.Cert. Nothing touches the card
// until the first handshake.
func (p *Process) NewTLSClient(ctx context.Context, opts TLSOptions) (*TLSClient, error) {
	const op = "AcquireCredentialsHandle(Schannel)"
	if opts.Cert.Cert == nil || opts.Cert.ProvInfo == nil {
		return nil, newErr(op, winerr.SEC_E_NO_CREDENTIALS, errors.New("the client certificate has no CERT_KEY_PROV_INFO"))
	}
	p.h.mu.Lock()
	k, err := p.openKey(ctx, opts.Cert.ProvInfo.Container)
	if err == nil && p.h.knobs.SchannelPINCache == SchannelOwnPINCache {
		k.api = Schannel
	}
	p.h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c := &TLSClient{p: p, key: k}
	maxV := opts.MaxVersion
	if maxV == 0 {
		maxV = tls.VersionTLS12
	}
	chain := [][]byte{opts.Cert.Cert.Raw}
	cfg := &tls.Config{
		RootCAs:    opts.RootCAs,
		MinVersion: tls.VersionTLS12,
		MaxVersion: maxV,
		Time:       p.h.clock.Now, // the server certificate is checked at the host's (virtual) time
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c.mu.Lock()
			c.handshakes++
			c.mu.Unlock()
			return &tls.Certificate{Certificate: chain, PrivateKey: &tlsSigner{c: c, ctx: ctx},
				SupportedSignatureAlgorithms: []tls.SignatureScheme{tls.PKCS1WithSHA256, tls.PKCS1WithSHA384, tls.PKCS1WithSHA512}}, nil
		},
	}
	c.http = &http.Client{Transport: &http.Transport{
		ResponseHeaderTimeout: opts.Timeout,
		TLSClientConfig:       cfg, ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 1,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	return c, nil
}

// Do sends req. A handshake failure caused by the card (a cancelled
// prompt, a wrong PIN) is returned as that error.
func (c *TLSClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		c.mu.Lock()
		se := c.signErr
		c.signErr = nil
		c.mu.Unlock()
		if se != nil {
			return nil, fmt.Errorf("TLS client authentication: %w", se)
		}
	}
	return resp, err
}

// Handshakes is how many TLS handshakes asked for the client certificate.
func (c *TLSClient) Handshakes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.handshakes
}

// Close drops the kept-alive connections.
func (c *TLSClient) Close() { c.http.CloseIdleConnections() }

// CardID is the card the client key is on.
func (c *TLSClient) CardID() fs.CardID { return c.key.cardID }

// tlsSigner signs the handshake on the card through the key's API and
// PIN cache.
type tlsSigner struct {
	c   *TLSClient
	ctx context.Context
}

func (s *tlsSigner) Public() crypto.PublicKey { return s.c.key.pub }

func (s *tlsSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := (&keySigner{ctx: s.ctx, k: s.c.key}).Sign(r, digest, opts)
	if err != nil {
		s.c.mu.Lock()
		s.c.signErr = err
		s.c.mu.Unlock()
	}
	return sig, err
}
