package scenarios

import (
	"crypto/x509"
	"fmt"
	"sort"
	"strings"

	"github.com/cardharness/cardharness/harness/winhost"
)

// The signed-in user's certificate stores (My and REQUEST).
func init() {
	register(&Action{
		Name: "check-store", Actor: ActorStores,
		Doc:  "look at the user's My or REQUEST store (count, subjects, and for cert: presence and key-provider property)",
		Args: []Arg{argHost, argStore, {Name: "cert", Type: Cert, Doc: "look for this certificate"}},
		Result: []Field{
			{Name: "count", Type: Int, Doc: "certificates in the store"},
			{Name: "subjects", Type: List, Doc: "their subject CNs, sorted"},
			{Name: "present", Type: Bool, Doc: "cert: is in the store"},
			{Name: "provinfo", Type: Bool, Doc: "it carries a key-provider property (CERT_KEY_PROV_INFO)"},
			{Name: "guid", Type: GUID, Doc: "the container the property names"},
			{Name: "provider", Type: String, Doc: "the provider the property names"},
		},
		Example: "{do: check-store, host: desktop, cert: $issued.cert, expect: {result: {present: true, provinfo: true}}}",
		Run:     onHost(checkStore),
	}, &Action{
		Name: "store-add", Actor: ActorStores,
		Doc: "add a certificate to My or REQUEST by hand, with or without a key-provider property",
		Args: []Arg{argHost, argCert, argStore,
			{Name: "guid", Type: GUID, Doc: "give it a key-provider property naming this container (default: none)"},
			argKeySpec,
			{Name: "provider", Type: Enum, Default: "capi", Values: []string{"capi", "ksp"}, Doc: "the provider the property names"},
			{Name: "request-id", Type: Int, Min: "0", Doc: "give it an enrollment property with this request ID"}},
		Example: "{do: store-add, host: desktop, cert: $issued.cert}",
		Run:     onHost(storeAdd),
	}, &Action{
		Name: "store-delete", Actor: ActorStores,
		Doc:     "delete a certificate from My or REQUEST",
		Args:    []Arg{argHost, argCert, argStore},
		Result:  []Field{{Name: "deleted", Type: Bool, Doc: "it was in the store"}},
		Example: "{do: store-delete, host: desktop, cert: $old.cert}",
		Run:     onHost(storeDelete),
	})
}

func checkStore(e *env, s *stepCtx, h *winhost.Host) (Values, error) {
	u, err := signedIn(h)
	if err != nil {
		return nil, err
	}
	st := storeOf(u, s.str("store"))
	r := Values{"count": st.Len()}
	var subjects []string
	for _, c := range st.Certificates() {
		subjects = append(subjects, c.Cert.Subject.CommonName)
	}
	sort.Strings(subjects)
	r["subjects"] = subjects
	if s.has("cert") {
		cert, err := s.cert("cert")
		if err != nil {
			return nil, err
		}
		sc, ok := st.FindCert(cert)
		r["present"] = ok
		r["provinfo"] = ok && sc.ProvInfo != nil
		if ok && sc.ProvInfo != nil {
			r["guid"] = sc.ProvInfo.Container
			r["provider"] = sc.ProvInfo.Provider
		}
	}
	return r, nil
}

func storeAdd(e *env, s *stepCtx, h *winhost.Host) (Values, error) {
	u, err := signedIn(h)
	if err != nil {
		return nil, err
	}
	cert, err := s.cert("cert")
	if err != nil {
		return nil, err
	}
	sc := winhost.StoreCert{Cert: cert, Source: "scenario"}
	if g := s.str("guid"); g != "" {
		prov := winhost.ProviderCAPI
		if s.str("provider") == "ksp" {
			prov = winhost.ProviderKSP
		}
		sc.ProvInfo = &winhost.KeyProvInfo{Provider: prov, Container: g, KeySpec: s.keySpec("keyspec")}
	}
	if s.has("request-id") {
		sc.Enrollment = &winhost.EnrollmentProperty{RequestID: s.int("request-id")}
	}
	storeOf(u, s.str("store")).Add(sc, 0)
	return nil, nil
}

func storeDelete(e *env, s *stepCtx, h *winhost.Host) (Values, error) {
	cert, err := s.cert("cert")
	if err != nil {
		return nil, err
	}
	u, err := signedIn(h)
	if err != nil {
		return nil, err
	}
	return Values{"deleted": storeOf(u, s.str("store")).Delete(winhost.Thumbprint(cert))}, nil
}

// certOfUser is what the acquire actions start from: the step's process,
// the user signed in on its host (whose stores hold the certificate), and
// the certificate (cert:).
func (e *env) certOfUser(s *stepCtx) (*winhost.Process, *winhost.User, *x509.Certificate, error) {
	p, h, err := e.processHost(s)
	if err != nil {
		return nil, nil, nil, err
	}
	cert, err := s.cert("cert")
	if err != nil {
		return nil, nil, nil, err
	}
	u, err := signedIn(h)
	if err != nil {
		return nil, nil, nil, err
	}
	return p, u, cert, nil
}

// signedIn returns the host's signed-in user (stores belong to a user).
func signedIn(h *winhost.Host) (*winhost.User, error) {
	u := h.CurrentUser()
	if u == nil {
		return nil, fmt.Errorf("no user is signed in on host %s (add a logon step)", h.Name())
	}
	return u, nil
}

func storeOf(u *winhost.User, name string) *winhost.CertStore {
	if strings.EqualFold(name, "request") {
		return u.Request()
	}
	return u.My()
}
