package scenarios

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
)

// Actions of the Windows-fidelity work (docs/windows-fidelity.md):
// CryptAcquireCertificatePrivateKey with any dwFlags, the founding report's
// addCardCertToStore.exe, the Certificate Propagation service restart, the
// writers and checks of catalogue entries S2, S5, S6, S13, and the CA
// template and on-behalf-of renewal of S17.
func init() {
	argFlags := Arg{Name: "flags", Type: String, Default: "0",
		Doc: "dwFlags as written in C: names joined by | (with or without CRYPT_ACQUIRE_ and _FLAG), a number, or 0"}
	keyFields := []Field{
		{Name: "in_store", Type: Bool, Doc: "the certificate was found in the store"},
		{Name: "key", Type: Key, Doc: "the key handle, for sign"},
		{Name: "guid", Type: GUID, Doc: "the container the key lives in"},
		{Name: "api", Type: String, Doc: "the API of the handle: CAPI or CNG"},
		{Name: "keyspec", Type: String, Doc: "*pdwKeySpec: 0x1 AT_KEYEXCHANGE, 0x2 AT_SIGNATURE, 0xFFFFFFFF CERT_NCRYPT_KEY_SPEC"},
		{Name: "caller_free", Type: Bool, Doc: "*pfCallerFreeProvOrNCryptKey"},
		{Name: "provider", Type: String, Doc: "the provider the context's CERT_KEY_PROV_INFO names after the call (<none>: no property)"},
		{Name: "cert", Type: Cert, Doc: "the certificate"},
	}
	acquireErrors := []string{"CRYPT_E_NO_KEY_PROPERTY", "NTE_BAD_PROV_TYPE", "NTE_BAD_PROVIDER", "NTE_BAD_KEYSET", "NTE_BAD_PUBLIC_KEY", "NTE_SILENT_CONTEXT"}
	register(&Action{
		Name: "restart-certprop-service", Actor: ActorHost,
		Doc:     "an administrator restarts the Certificate Propagation service: every inserted card is propagated again (ledger H-PROP-TRIGGERS)",
		Args:    []Arg{argHost},
		Result:  []Field{{Name: "pending", Type: Int, Doc: "propagations scheduled"}},
		Example: "{do: restart-certprop-service, host: desktop}",
		Run:     onHost(restartCertProp),
	}, &Action{
		Name: "acquire-cert-key", Actor: ActorProcess,
		Doc:     "CryptAcquireCertificatePrivateKey with any dwFlags on a context found in My or REQUEST (ledger H-ACQ-API)",
		Args:    processArgs(argCert, argFlags, argStore),
		Result:  keyFields,
		Errors:  acquireErrors,
		Example: "{do: acquire-cert-key, host: desktop, cert: $issued.cert, flags: ALLOW_NCRYPT_KEY|COMPARE_KEY, save: k}",
		Run:     acquireCertKey,
	}, &Action{
		Name: "add-card-cert-to-store", Actor: ActorProcess,
		Doc: "the founding report's addCardCertToStore.exe: read the certificate from the key (KP_CERTIFICATE), make a context from the bytes, " +
			"CryptAcquireCertificatePrivateKey(flags), and on success add the context with its properties to My (ledger H-ACQ-HEAL, H-CTX)",
		Args: []Arg{argHost, {Name: "guid", Type: GUID, Required: true, Doc: "the container the certificate is read from"}, argFlags,
			{Name: "process", Type: String, Default: "addCardCertToStore.exe", Doc: "the tool's process (a new one each run)"}, argSilent},
		Result:  keyFields,
		Errors:  acquireErrors,
		Example: "{do: add-card-cert-to-store, host: desktop, guid: $key.guid, expect: {error: CRYPT_E_NO_KEY_PROPERTY}}",
		Run:     addCardCertToStore,
	}, &Action{
		Name: "writer-bump", Actor: ActorWriter, Internals: true,
		Doc:     "a tool bumps cardcf counters in a transaction of its own, with no change: the first half of a writer that bumps and writes in separate transactions (S2)",
		Args:    []Arg{argCard, {Name: "counters", Type: String, Required: true, Doc: "files, containers, pins, joined with |"}, argWPIN},
		Result:  []Field{{Name: "cardcf", Type: String, Doc: "the cardcf written (hex)"}},
		Example: "{do: writer-bump, card: card, counters: files}",
		Run:     writerBump,
	}, &Action{
		Name: "writer-unblock-pin", Actor: ActorWriter, Internals: true,
		Doc:     "a tool unblocks the user PIN with the admin key (CardUnblockPin); the user PIN is never verified, so bump: none is what a writer that cannot write cardcf leaves (S6)",
		Args:    []Arg{argCard, {Name: "new", Type: String, Required: true, Doc: "the new user PIN"}, argBump},
		Example: "{do: writer-unblock-pin, card: card, new: \"111111\", bump: none}",
		Run:     onClient(writerUnblockPIN),
	}, &Action{
		Name: "writer-crash-create-container", Actor: ActorWriter, Internals: true,
		Doc: "a tool creates a container and the card loses power between the keymap write and the cmapfile write (S13): the key file and keymap record exist, " +
			"the cmapfile record does not (modelled by writing the cmapfile back as it was, with the reserved record)",
		Args: []Arg{argCard, argNewGUID, {Name: "bits", Type: Int, Default: "1024", Min: "1024", Max: "4096", Doc: "RSA modulus size"}, argWPIN},
		Result: []Field{{Name: "guid", Type: GUID, Doc: "the half-created container's GUID"},
			{Name: "index", Type: Int, Doc: "its index (keymap only)"}},
		Example: "{do: writer-crash-create-container, card: card, save: orphan}",
		Run:     writerCrashCreate,
	}, &Action{
		Name: "writer-repair-container", Actor: ActorWriter, Internals: true,
		Doc:     "a tool repairs a diverged container index by deleting it (CardDeleteContainer: key file, keymap record, cmapfile record), S13",
		Args:    []Arg{argCard, {Name: "index", Type: Int, Required: true, Min: "0", Max: "126", Doc: "the container index"}, argBump, argWPIN},
		Example: "{do: writer-repair-container, card: card, index: $orphan.index}",
		Run:     writerRepair,
	}, &Action{
		Name: "check-pin", Actor: ActorCard,
		Doc:     "the user PIN's remaining and maximum tries, read from the card (spent tries show here)",
		Args:    []Arg{argCard},
		Result:  []Field{{Name: "tries_left", Type: Int, Doc: "tries left"}, {Name: "tries_limit", Type: Int, Doc: "the retry limit"}},
		Example: "{do: check-pin, card: card, expect: {result: {tries_left: 3}}}",
		Run:     onClient(checkPIN),
	}, &Action{
		Name: "check-metadata", Actor: ActorCard, Internals: true,
		Doc:     "compare the card's GIDS keymap with its cmapfile (consistent, or why not), read directly",
		Args:    []Arg{argCard},
		Result:  []Field{{Name: "consistent", Type: Bool, Doc: "keymap and cmapfile agree"}, {Name: "problem", Type: String, Doc: "why not"}},
		Example: "{do: check-metadata, card: card, expect: {result: {consistent: true}}}",
		Run:     onClient(checkMetadata),
	}, &Action{
		Name: "ca-set-template", Actor: ActorCA,
		Doc: "an administrator edits the User template (S17): valid-existing (\"For reenrollment: Valid existing certificate\"), " +
			"pend-all (CA certificate manager approval), ra-signatures (authorised signatures required)",
		Args: []Arg{{Name: "valid-existing", Type: Bool, Default: "true", Doc: "CT_FLAG_PREVIOUS_APPROVAL_VALIDATE_REENROLLMENT"},
			{Name: "pend-all", Type: Bool, Default: "false", Doc: "CT_FLAG_PEND_ALL_REQUESTS"},
			{Name: "ra-signatures", Type: Int, Default: "0", Min: "0", Max: "9", Doc: "msPKI-RA-Signature"}},
		Example: "{do: ca-set-template, valid-existing: false, pend-all: true}",
		Run:     caSetTemplate,
	}, &Action{
		Name: "ca-renew-on-behalf", Actor: ActorCA,
		Doc: "a server (a machine account such as CONTOSO\\SRV01$) submits the user's CMC renewal on their behalf (requestername), without an enrollment agent signature (S17)",
		Args: renewalArgs(
			Arg{Name: "requester", Type: String, Required: true, Doc: "the submitting account"},
			Arg{Name: "on-behalf-of", Type: String, Required: true, Doc: "the requestername (DOMAIN\\user)"},
			Arg{Name: "agent", Type: Bool, Default: "false", Doc: "sign as an enrollment agent too (a Certificate Request Agent certificate the CA issues to the server on first use)"}),
		Result:  caFields,
		Errors:  []string{"CERTSRV_E_BAD_RENEWAL_SUBJECT", "CERTSRV_E_SIGNATURE_COUNT"},
		Example: "{do: ca-renew-on-behalf, host: desktop, old-cert: $oldcert.cert, old-guid: $old.guid, new-guid: $new.guid, requester: CONTOSO\\SRV01$, on-behalf-of: CONTOSO\\user}",
		Run:     onProcess(caRenewOnBehalf),
	})
}

func restartCertProp(e *env, s *stepCtx, h *winhost.Host) (Values, error) {
	h.RestartCertPropService(e.ctx)
	return Values{"pending": h.PendingPropagations()}, nil
}

func storeName(s string) winhost.StoreName {
	if strings.EqualFold(s, "request") {
		return winhost.StoreRequest
	}
	return winhost.StoreMy
}

func acquireCertKey(e *env, s *stepCtx) (Values, error) {
	f, err := winhost.ParseAcquireFlags(s.str("flags"))
	if err != nil {
		return nil, s.argErr("flags", "%v", err)
	}
	p, _, cert, err := e.certOfUser(s)
	if err != nil {
		return nil, err
	}
	c, err := p.FindCertificateInStore(storeName(s.str("store")), winhost.Thumbprint(cert))
	if err != nil {
		return Values{"in_store": false}, err
	}
	k, err := c.AcquirePrivateKey(e.ctx, f)
	return keyValues(c, k, err)
}

func addCardCertToStore(e *env, s *stepCtx) (Values, error) {
	f, err := winhost.ParseAcquireFlags(s.str("flags"))
	if err != nil {
		return nil, s.argErr("flags", "%v", err)
	}
	h, err := e.host(s)
	if err != nil {
		return nil, err
	}
	if _, err := signedIn(h); err != nil {
		return nil, err
	}
	p := h.StartProcess(s.str("process"), winhost.ProcessOptions{Silent: s.bool("silent")})
	defer p.Exit()
	der, err := p.ReadKeyCertificate(e.ctx, s.str("guid"))
	if err != nil {
		return nil, err
	}
	c, err := p.CreateCertificateContext(der)
	if err != nil {
		return nil, err
	}
	k, err := c.AcquirePrivateKey(e.ctx, f)
	v, err := keyValues(c, k, err)
	if err != nil {
		return v, err
	}
	if _, err := c.AddToStore(winhost.StoreMy, winhost.AddReplaceInheritProperties, true); err != nil {
		return v, err
	}
	return v, nil
}

// keyValues is the result of an acquisition: the key and what
// CryptAcquireCertificatePrivateKey reports, and the provider the context's
// CERT_KEY_PROV_INFO names after it (healing may have set it).
func keyValues(c *winhost.CertContext, k *winhost.KeyHandle, err error) (Values, error) {
	v := Values{"in_store": true, "provider": "<none>", "cert": c.Certificate().Cert}
	if pi := c.ProvInfo(); pi != nil {
		v["provider"] = pi.Provider
	}
	if err != nil {
		return v, err
	}
	v["key"] = k
	v["guid"] = k.ContainerGUID()
	v["api"] = k.API().String()
	v["keyspec"] = fmt.Sprintf("0x%X", k.ResultKeySpec())
	v["caller_free"] = k.CallerFree()
	return v, nil
}

func writerBump(e *env, s *stepCtx) (Values, error) {
	cats, err := parseCounters(s.str("counters"))
	if err != nil {
		return nil, s.argErr("counters", "%v", err)
	}
	var cf fs.CardCF
	err = e.writer(s, func(md *minidriver.Card, _ minidriver.Bump) error {
		var err error
		if cf, err = md.CardCF(e.ctx); err != nil {
			return err
		}
		if cats&fs.CategoryFiles != 0 {
			cf.FilesFreshness++
		}
		if cats&fs.CategoryContainers != 0 {
			cf.ContainersFreshness++
		}
		if cats&fs.CategoryPins != 0 {
			cf.PinsFreshness++
		}
		return md.WriteCardCF(e.ctx, cf)
	})
	if err != nil {
		return nil, err
	}
	return Values{"cardcf": fmt.Sprintf("%x", cf.Bytes())}, nil
}

func writerUnblockPIN(e *env, s *stepCtx, c *cardEnv, md *minidriver.Card) (Values, error) {
	if err := md.UnblockPIN(e.ctx, c.admin, s.str("new"), s.bump()); err != nil {
		return nil, err
	}
	c.pin = s.str("new")
	return nil, nil
}

func writerCrashCreate(e *env, s *stepCtx) (Values, error) {
	guid := s.str("guid")
	if guid == "" {
		guid = e.newGUID()
	}
	idx := -1
	err := e.writer(s, func(md *minidriver.Card, _ minidriver.Bump) error {
		before, err := md.Containers(e.ctx)
		if err != nil {
			return err
		}
		if idx, err = md.CreateContainer(e.ctx, minidriver.ContainerSpec{GUID: guid, KeySpec: fs.AT_KEYEXCHANGE, Bits: s.int("bits")}, minidriver.BumpCorrect); err != nil {
			return err
		}
		for len(before) <= idx {
			before = append(before, fs.ContainerRecord{})
		}
		b, err := before.Bytes()
		if err != nil {
			return err
		}
		return md.WriteFile(e.ctx, "mscp/cmapfile", b, minidriver.BumpNone)
	})
	if err != nil {
		return nil, err
	}
	return Values{"guid": guid, "index": idx}, nil
}

func writerRepair(e *env, s *stepCtx) (Values, error) {
	return nil, e.writer(s, func(md *minidriver.Card, bump minidriver.Bump) error {
		return md.DeleteContainer(e.ctx, s.int("index"), minidriver.DeleteOptions{MoveDefaultTo: -1}, bump)
	})
}

func checkPIN(e *env, s *stepCtx, c *cardEnv, md *minidriver.Card) (Values, error) {
	left, limit, err := md.PINTries(e.ctx)
	if err != nil {
		return nil, err
	}
	return Values{"tries_left": left, "tries_limit": limit}, nil
}

func checkMetadata(e *env, s *stepCtx, c *cardEnv, md *minidriver.Card) (Values, error) {
	cmap, err := md.Containers(e.ctx)
	if err != nil {
		return nil, err
	}
	km, err := md.KeyMap(e.ctx)
	if err != nil {
		return nil, err
	}
	if err := fs.CheckConsistent(cmap, km); err != nil {
		return Values{"consistent": false, "problem": err.Error()}, nil
	}
	return Values{"consistent": true, "problem": ""}, nil
}

func caSetTemplate(e *env, s *stepCtx) (Values, error) {
	cca, err := e.getCA()
	if err != nil {
		return nil, err
	}
	cca.SetTemplate(ca.Template{ID: defaultTemplate, ValidExistingCertificate: s.bool("valid-existing"),
		PendAllRequests: s.bool("pend-all"), RequiredSignatures: s.int("ra-signatures"),
		Validity: 365 * 24 * time.Hour, EnrolleeSuppliesSubject: true})
	return nil, nil
}

func caRenewOnBehalf(e *env, s *stepCtx, p *winhost.Process) (Values, error) {
	req, err := renewalRequest(e, s, p)
	if err != nil {
		return nil, err
	}
	req.Template, req.OnBehalfOf = defaultTemplate, s.str("on-behalf-of")
	cca, err := e.getCA()
	if err != nil {
		return nil, err
	}
	if s.bool("agent") {
		if req.Agent, req.AgentKey, err = enrollmentAgent(cca, s.str("requester")); err != nil {
			return nil, err
		}
	}
	der, err := ca.BuildRenewal(req)
	if err != nil {
		return nil, err
	}
	resp, err := cca.SubmitRenewal(der, s.str("requester"))
	return caResult(resp, err)
}

// enrollmentAgent has the test CA issue requester an enrollment agent
// certificate (EKU Certificate Request Agent, template EnrollmentAgent) for
// a software key (the fixed test key agentKey).
func enrollmentAgent(cca *ca.CA, requester string) (*x509.Certificate, crypto.Signer, error) {
	key := agentKey()
	tid := ca.TemplateID{Name: "EnrollmentAgent"}
	cca.SetTemplate(ca.Template{ID: tid, Validity: 365 * 24 * time.Hour})
	te, err := tid.Extension()
	if err != nil {
		return nil, nil, err
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{ca.OIDCertificateRequestAgt})
	if err != nil {
		return nil, nil, err
	}
	csr, err := ca.BuildCSR(key, pkix.Name{CommonName: requester}, []pkix.Extension{te, {Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: eku}})
	if err != nil {
		return nil, nil, err
	}
	resp, err := cca.IssueFromCSR(csr, ca.TemplateID{}, requester)
	if err != nil {
		return nil, nil, err
	}
	if resp.Cert == nil {
		return nil, nil, fmt.Errorf("enrollment agent certificate: %v %v (%s)", resp.Disposition, resp.Status, resp.Explanation)
	}
	return resp.Cert, key, nil
}
