package scenarios

import (
	"github.com/cardharness/cardharness/harness/winhost"
)

// CertEnroll-like enrollment on a host (docs/reference/minidriver-semantics.md §3.1 step
// 5 and day N step 3): a dummy certificate in REQUEST carries the key's
// provider information until the response is installed.
func init() {
	procArgs := []string{"process", "api", "silent"}
	register(&Action{Name: "create-request", Actor: "host", Doc: "CertEnroll CreateRequest: put the dummy certificate for a container into REQUEST",
		Required: []string{"host", "guid"}, Args: append([]string{"subject", "request-id"}, procArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, err := e.process(s)
			if err != nil {
				return nil, err
			}
			name, err := parseSubject(s.str("subject", "CN=cardharness user"))
			if err != nil {
				return nil, s.argErr("subject", "%v", err)
			}
			d, err := p.CreateRequest(e.ctx, s.str("guid", ""), winhost.RequestOptions{Subject: name,
				Enrollment: winhost.EnrollmentProperty{RequestID: s.int("request-id", 1), CAName: "cardharness test CA"}})
			if err != nil {
				return nil, err
			}
			return Values{"dummy": d, "cert": d.Cert, "thumbprint": d.Thumbprint()}, nil
		}})
	register(&Action{Name: "install-response", Actor: "host", Doc: "CertEnroll InstallResponse: the issued certificate replaces the REQUEST dummy (onto the card and into My with provinfo)",
		Required: []string{"host", "cert"}, Args: append([]string{"allow-no-request"}, procArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, err := e.process(s)
			if err != nil {
				return nil, err
			}
			cert, err := s.cert("cert")
			if err != nil {
				return nil, err
			}
			sc, err := p.InstallResponse(e.ctx, cert, winhost.InstallResponseOptions{AllowNoOutstandingRequest: s.bool("allow-no-request", false), Silent: s.bool("silent", false)})
			if err != nil {
				return nil, err
			}
			return Values{"thumbprint": sc.Thumbprint(), "cert": cert}, nil
		}})
	register(&Action{Name: "abort-request", Actor: "host", Doc: "roll an enrollment back: delete the new container and the REQUEST dummy (idempotent)",
		Required: []string{"host", "dummy"}, Args: procArgs,
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, err := e.process(s)
			if err != nil {
				return nil, err
			}
			v, err := s.obj("dummy")
			if err != nil {
				return nil, err
			}
			if r, ok := v.(Values); ok {
				v = r["dummy"]
			}
			d, ok := v.(winhost.StoreCert)
			if !ok {
				return nil, s.argErr("dummy", "not a REQUEST dummy (save the result of create-request)")
			}
			return nil, p.AbortRequest(e.ctx, d)
		}})
}
