package scenarios

import (
	"crypto/x509"
	"strings"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/relay"
	"github.com/cardharness/cardharness/harness/winhost"
)

// The renewal relay (harness/relay) and a host's renewal through it
// (winhost.Process.RenewThroughRelay): the founding document's renewal
// over the internet, the PIN prompts it costs and its faults. The relay
// serves the scenario's test CA on loopback; it starts with the first
// relay step and stops with the scenario.
func init() {
	fields := []Field{
		{Name: "disposition", Type: String, Doc: "the CA's answer: issued, pending, denied, error, incomplete (empty: no answer came)"},
		{Name: "request_id", Type: Int, Doc: "the CA's request ID (0: the request never reached the CA)"},
		{Name: "prompts", Type: Int, Doc: "PIN prompts the renewal cost the process, every provider counted"},
		{Name: "handshakes", Type: Int, Doc: "TLS handshakes that asked for the card's certificate"},
		{Name: "rolled_back", Type: Bool, Doc: "a failure removed the new container and the request dummy"},
		{Name: "cert", Type: Cert, Doc: "the new certificate (issued)"},
		{Name: "guid", Type: GUID, Doc: "the new key's container"},
		{Name: "pending", Type: Other, Doc: "the pending renewal, for relay-retrieve"},
		{Name: "ca_issued", Type: Int, Doc: "certificates the CA has issued so far (one issued but never received shows here)"},
	}
	errs := []string{"HTTP_E_STATUS_SERVER_ERROR", "ERROR_WINHTTP_CONNECTION_ERROR", "ERROR_WINHTTP_TIMEOUT", "CERTSRV_E_ADMIN_DENIED_REQUEST",
		"E_PENDING", "ERROR_FILE_NOT_FOUND", "ERROR_NO_SUCH_USER"}
	register(&Action{
		Name: "relay-renew", Actor: ActorCA,
		Doc: "renew a certificate through the HTTPS relay: new key in a new container, CMC renewal, TLS connection authenticated by the card's old key, submit, install, delete the old certificate; roll back on any failure",
		Args: processArgs(
			Arg{Name: "old-cert", Type: Cert, Required: true, Doc: "the certificate to renew (in My, with its key-provider property)"},
			Arg{Name: "template", Type: String, Default: "User", Doc: "sent as the template extension and a RegInfo pair CertificateTemplate"},
			Arg{Name: "order", Type: Enum, Default: "logical", Values: []string{"logical", "connect-first"}, Doc: "logical: build, connect, submit, install; connect-first: a dummy call opens the connection before the request is built"},
			Arg{Name: "delete-old", Type: Enum, Default: "my-and-card", Values: []string{"my-and-card", "my-only", "keep"}, Doc: "what happens to the old certificate once the new one is in"},
			Arg{Name: "fault", Type: Enum, Values: relayFaultNames(), Doc: "a fault the relay injects into this renewal's request"},
			Arg{Name: "keep-pending", Type: Bool, Default: "false", Doc: "a pending answer keeps the new container and the dummy for relay-retrieve (else: rolled back, E_PENDING)"},
			Arg{Name: "approve-after", Type: Duration, Default: "0s", Max: "3650d", Doc: "with fault ca-pend: a certificate manager approves this long after submission (virtual clock)"},
			Arg{Name: "timeout", Type: Duration, Default: "1s", Min: "100ms", Max: "60s", Doc: "how long the client waits for the answer once its request is sent (WinHTTP's receive timeout; real time: only the timeout fault waits for it)"},
		),
		Result:  fields,
		Errors:  errs,
		Example: "{do: relay-renew, host: desktop, old-cert: $issued.cert, order: connect-first, expect: {result: {prompts: 2}}}",
		Run:     relayRenew,
	}, &Action{
		Name: "relay-retrieve", Actor: ActorCA,
		Doc:     "retrieve a pending renewal through the relay and, once issued, install it and delete the old certificate",
		Args:    processArgs(Arg{Name: "pending", Type: Other, Required: true, Doc: "the pending field of a relay-renew with keep-pending"}),
		Result:  fields,
		Errors:  errs,
		Example: "{do: relay-retrieve, host: desktop, pending: $renewal.pending, expect: {result: {disposition: issued}}}",
		Run:     relayRetrieve,
	})
}

func relayFaultNames() []string {
	var names []string
	for _, f := range relay.Faults() {
		names = append(names, f.String())
	}
	return names
}

// getRelay starts the scenario's relay in front of its CA.
func (e *env) getRelay() (*relay.Server, error) {
	if e.relay != nil {
		return e.relay, nil
	}
	cca, err := e.getCA()
	if err != nil {
		return nil, err
	}
	srv, err := relay.New(relay.Config{CA: cca})
	if err != nil {
		return nil, err
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	e.relay = srv
	return srv, nil
}

func relayRenew(e *env, s *stepCtx) (Values, error) {
	p, h, err := e.processHost(s)
	if err != nil {
		return nil, err
	}
	oldCert, err := s.cert("old-cert")
	if err != nil {
		return nil, err
	}
	u, err := signedIn(h)
	if err != nil {
		return nil, err
	}
	old, ok := u.My().FindCert(oldCert)
	if !ok {
		return nil, s.argErr("old-cert", "is not in the user's My store (install it first)")
	}
	srv, err := e.getRelay()
	if err != nil {
		return nil, err
	}
	if f := s.str("fault"); f != "" {
		fault, err := relay.ParseFault(f)
		if err != nil {
			return nil, s.argErr("fault", "%v", err)
		}
		srv.SetPendApproveAfter(s.duration("approve-after"))
		srv.Inject(fault)
	}
	opts := winhost.RelayRenewalOptions{Old: old, URL: srv.URL(), RootCAs: e.relayRoots(), Template: e.template(s.str("template")),
		KeepPending: s.bool("keep-pending"), Timeout: s.duration("timeout")}
	if s.str("order") == "connect-first" {
		opts.Order = winhost.ConnectFirst
	}
	switch s.str("delete-old") {
	case "my-only":
		opts.DeleteOld = winhost.DeleteOldFromMyOnly
	case "keep":
		opts.DeleteOld = winhost.KeepOld
	}
	res, err := p.RenewThroughRelay(e.ctx, opts)
	return e.relayResult(res, err)
}

func relayRetrieve(e *env, s *stepCtx) (Values, error) {
	p, err := e.process(s)
	if err != nil {
		return nil, err
	}
	v, err := s.obj("pending")
	if err != nil {
		return nil, err
	}
	if r, ok := v.(Values); ok {
		v = r["pending"]
	}
	pr, ok := v.(*winhost.PendingRenewal)
	if !ok || pr == nil {
		return nil, s.argErr("pending", "not a pending renewal (save a relay-renew with keep-pending: true that answered pending)")
	}
	res, err := p.CompletePendingRenewal(e.ctx, pr)
	return e.relayResult(res, err)
}

func (e *env) relayRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	if e.ca != nil {
		pool.AddCert(e.ca.Certificate())
	}
	return pool
}

func (e *env) relayResult(res winhost.RelayRenewalResult, err error) (Values, error) {
	r := Values{"disposition": dispositionName(res), "request_id": res.RequestID, "prompts": res.Prompts,
		"handshakes": res.Handshakes, "rolled_back": res.RolledBack}
	if e.ca != nil {
		r["ca_issued"] = e.ca.IssuedCount() - 1 // not the relay's own server certificate
	}
	if res.New.Cert != nil {
		r["cert"] = res.New.Cert
	}
	if res.NewContainer != "" {
		r["guid"] = res.NewContainer
	}
	if res.Pending != nil {
		r["pending"] = res.Pending
	}
	return r, err
}

func dispositionName(res winhost.RelayRenewalResult) string {
	if res.RequestID == 0 && res.Disposition == ca.Incomplete {
		return ""
	}
	switch res.Disposition {
	case ca.Issued, ca.Denied, ca.Pending:
		return strings.ToLower(res.Disposition.String())
	}
	return strings.ToLower(strings.TrimPrefix(res.Disposition.CRName(), "CR_DISP_"))
}
