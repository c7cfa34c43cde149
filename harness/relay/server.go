package relay

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cardharness/cardharness/harness/ca"
)

// Config configures a relay.
type Config struct {
	// CA is the CA the relay submits to. Required.
	CA *ca.CA
	// Addr to listen on; "" is 127.0.0.1:0 (a free loopback port).
	Addr string
	// Identity maps a verified client certificate to the requester name
	// the CA sees; nil takes the first UPN of the SAN, else the first
	// rfc822Name, else the subject CN.
	Identity func(*x509.Certificate) (string, error)
	// ESTTemplate is the template of an EST simpleenroll whose PKCS#10
	// names none (standard clients never do); simplereenroll uses the
	// template of the certificate being renewed.
	ESTTemplate ca.TemplateID
	// MaxBodyBytes bounds request bodies; 0 is 64 KiB.
	MaxBodyBytes int64
	// LookupCAAfterImpersonation reproduces the founding document's first
	// bug on every request: the CA configuration is read with the user's
	// token and is not found (ERROR_FILE_NOT_FOUND). The fix, and the
	// default, is to look the CA up before impersonating.
	LookupCAAfterImpersonation bool
	// Hold bounds how long the Timeout fault holds a request when the
	// client does not give up first; 0 is 1 minute. Then: 504.
	Hold time.Duration
	// ErrorLog receives the HTTP server's own errors (failed handshakes:
	// a wrong CA, a client that gave up); nil discards them.
	ErrorLog *log.Logger
	// PendApproveAfter: a request pended by the CAPend fault is approved
	// this long after submission on the CA's clock; 0: never by itself.
	PendApproveAfter time.Duration
}

// Exchange is what the relay did with one request, for tests and reports.
type Exchange struct {
	Path        string
	Requester   string // "" when no client certificate was given
	Fault       Fault
	HTTPStatus  int // 0 when the connection was dropped or abandoned
	Disposition ca.Disposition
	RequestID   int
	Submitted   bool // the CA saw the request
}

// Server is a running relay.
type Server struct {
	cfg     Config
	ca      *ca.CA
	tlsCert tls.Certificate
	srv     *http.Server
	ln      net.Listener
	closing chan struct{}
	done    chan struct{}

	mu       sync.Mutex
	faults   []Fault
	log      []Exchange
	owners   map[int]string // request ID → requester who submitted it
	estPend  map[string]int // EST: requester + CSR key → pending request ID
	closed   bool
	serveErr error
}

// New prepares a relay: a server key and a certificate for localhost
// from the CA. Start listens.
func New(cfg Config) (*Server, error) {
	if cfg.CA == nil {
		return nil, errors.New("relay: Config.CA is required")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.Hold == 0 {
		cfg.Hold = time.Minute
	}
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = log.New(io.Discard, "", 0)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := cfg.CA.IssueServerCertificate(key.Public(), "cardharness relay",
		[]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, 0)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, ca: cfg.CA, owners: map[int]string{}, estPend: map[string]int{},
		closing: make(chan struct{}), done: make(chan struct{})}
	s.tlsCert = tls.Certificate{Certificate: [][]byte{cert.Raw, cfg.CA.Certificate().Raw}, PrivateKey: key, Leaf: cert}
	return s, nil
}

// TLSConfig is the server side: the relay's certificate, client
// certificates requested and, when given, verified against the CA
// (VerifyClientCertIfGiven, so EST's /cacerts works without one; every
// other endpoint answers 401 without one). HTTP/1.1 only.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		Certificates:          []tls.Certificate{s.tlsCert},
		ClientAuth:            tls.RequestClientCert,
		VerifyPeerCertificate: s.verifyClient,
		NextProtos:            []string{"http/1.1"},
		MinVersion:            tls.VersionTLS12,
	}
}

// verifyClient checks a client certificate chain against the CA at the
// CA's time (the virtual clock), for any EKU (smart-card logon
// certificates need not carry clientAuth), and refuses revoked ones.
func (s *Server) verifyClient(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return fmt.Errorf("relay: client certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.ca.Certificate())
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: s.ca.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("relay: client certificate not issued by %q: %w", s.ca.Certificate().Subject.CommonName, err)
	}
	if s.ca.IsRevoked(leaf.SerialNumber) {
		return fmt.Errorf("relay: client certificate serial %x is revoked", leaf.SerialNumber)
	}
	return nil
}

// Start listens on Config.Addr and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("relay: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// An empty map disables HTTP/2: a hijacked (dropped) connection
		// must be the TCP connection itself.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     s.cfg.ErrorLog,
	}
	go func() {
		defer close(s.done)
		err := s.srv.ServeTLS(ln, "", "")
		if !errors.Is(err, http.ErrServerClosed) {
			s.mu.Lock()
			s.serveErr = err
			s.mu.Unlock()
		}
	}()
	return nil
}

// URL is the base URL, e.g. https://127.0.0.1:40123.
func (s *Server) URL() string { return "https://" + s.ln.Addr().String() }

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Certificate is the relay's TLS server certificate.
func (s *Server) Certificate() *x509.Certificate { return s.tlsCert.Leaf }

// Close stops the server; held requests are released.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serveErr != nil {
		return s.serveErr
	}
	return err
}

// Inject queues faults, one per following request that reaches the
// submission path (requests refused for bad input do not consume one).
func (s *Server) Inject(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// SetPendApproveAfter changes Config.PendApproveAfter for the requests
// that follow (a scenario step sets it with its fault).
func (s *Server) SetPendApproveAfter(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.PendApproveAfter = d
}

func (s *Server) pendApproveAfter() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg.PendApproveAfter
}

func (s *Server) nextFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return NoFault
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f
}

// Exchanges returns what the relay did so far, oldest first.
func (s *Server) Exchanges() []Exchange {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

func (s *Server) record(e Exchange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, e)
}

// DefaultIdentity is the identity mapping of a nil Config.Identity.
func DefaultIdentity(cert *x509.Certificate) (string, error) {
	upns, emails := ca.CertIdentities(cert)
	switch {
	case len(upns) > 0:
		return upns[0], nil
	case len(emails) > 0:
		return emails[0], nil
	case cert.Subject.CommonName != "":
		return cert.Subject.CommonName, nil
	}
	return "", errors.New("relay: client certificate names no UPN, e-mail or common name")
}

// requesterOf maps the request's verified client certificate.
func (s *Server) requesterOf(r *http.Request) (string, *x509.Certificate, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", nil, errNoClientCert
	}
	cert := r.TLS.PeerCertificates[0]
	id := s.cfg.Identity
	if id == nil {
		id = DefaultIdentity
	}
	name, err := id(cert)
	if err != nil {
		return "", cert, err
	}
	return name, cert, nil
}

var errNoClientCert = errors.New("a TLS client certificate issued by the relay's CA is required")

// timeAfter is time.After; the Timeout fault's bound is a real duration
// (it guards the server, not the scenario's clock).
var timeAfter = time.After
