package scenarios

import (
	"fmt"
	"strings"
	"time"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
)

// Actions of the Windows-fidelity work (issue 11; docs/windows-fidelity.md):
// CryptAcquireCertificatePrivateKey with any dwFlags, the founding report's
// addCardCertToStore.exe, the Certificate Propagation service restart and
// the card's PIN tries.

func init() {
	fidProcArgs := []string{"process", "api", "silent"}
	register(&Action{Name: "restart-certprop-service", Actor: "host",
		Doc:      "an administrator restarts the Certificate Propagation service: every inserted card is propagated again (ledger H-PROP-TRIGGERS)",
		Required: []string{"host"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			h.RestartCertPropService(e.ctx)
			return Values{"pending": h.PendingPropagations()}, nil
		}})
	register(&Action{Name: "acquire-cert-key", Actor: "host",
		Doc:      "CryptAcquireCertificatePrivateKey on a certificate from My (or store: request) with dwFlags written as in C (flags: \"0\", \"ALLOW_NCRYPT_KEY|COMPARE_KEY\"; ledger H-ACQ-API)",
		Required: []string{"host", "cert"}, Args: append([]string{"flags", "store"}, fidProcArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			f, err := winhost.ParseAcquireFlags(s.str("flags", "0"))
			if err != nil {
				return nil, s.argErr("flags", "%v", err)
			}
			p, h, err := e.processHost(s)
			if err != nil {
				return nil, err
			}
			cert, err := s.cert("cert")
			if err != nil {
				return nil, err
			}
			if _, err := signedIn(h); err != nil {
				return nil, err
			}
			c, err := p.FindCertificateInStore(storeName(s.str("store", "My")), winhost.Thumbprint(cert))
			if err != nil {
				return Values{"in_store": false}, err
			}
			k, err := c.AcquirePrivateKey(e.ctx, f)
			return keyValues(c, k, err)
		}})
	register(&Action{Name: "add-card-cert-to-store", Actor: "host",
		Doc: "the founding report's addCardCertToStore.exe: read the certificate from the key (KP_CERTIFICATE), make a context from the bytes, " +
			"CryptAcquireCertificatePrivateKey(flags, default 0), and on success add the context with its properties to My (ledger H-ACQ-HEAL, H-CTX)",
		Required: []string{"host", "guid"}, Args: append([]string{"flags"}, fidProcArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			f, err := winhost.ParseAcquireFlags(s.str("flags", "0"))
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
			p := h.StartProcess(s.str("process", "addCardCertToStore.exe"), winhost.ProcessOptions{Silent: s.bool("silent", false)})
			defer p.Exit()
			der, err := p.ReadKeyCertificate(e.ctx, s.str("guid", ""))
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
			v["cert"] = c.Certificate().Cert
			return v, nil
		}})
	register(&Action{Name: "writer-unblock-pin", Actor: "writer",
		Doc:      "a tool unblocks the user PIN with the admin key (CardUnblockPin); the user PIN is never verified, so bump: none is what a writer that cannot write cardcf leaves (S6)",
		Required: []string{"card", "new"}, Args: []string{"bump"},
		Internals: true,
		Run: func(e *env, s *stepCtx) (Values, error) {
			c, err := e.card(s)
			if err != nil {
				return nil, err
			}
			pol, err := minidriver.ParseBump(s.str("bump", "correct"))
			if err != nil {
				return nil, s.argErr("bump", "%v", err)
			}
			md, closeFn, err := e.mdClient(c)
			if err != nil {
				return nil, err
			}
			defer closeFn()
			if err := md.UnblockPIN(e.ctx, c.admin, s.str("new", ""), pol); err != nil {
				return nil, err
			}
			c.pin = s.str("new", "")
			return nil, nil
		}})
	register(&Action{Name: "writer-bump", Actor: "writer",
		Doc:      "a tool bumps cardcf counters (counters: files|containers|pins) in a transaction of its own, with no change: the first half of a writer that bumps and writes in separate transactions (S2)",
		Required: []string{"card", "counters"}, Args: []string{"pin"},
		Internals: true,
		Run: func(e *env, s *stepCtx) (Values, error) {
			var cats fs.Category
			for _, part := range strings.Split(s.str("counters", ""), "|") {
				switch strings.TrimSpace(part) {
				case "files":
					cats |= fs.CategoryFiles
				case "containers":
					cats |= fs.CategoryContainers
				case "pins":
					cats |= fs.CategoryPins
				default:
					return nil, s.argErr("counters", "%q: want files, containers, pins (joined with |)", part)
				}
			}
			var cf fs.CardCF
			err := e.writer(s, func(md *minidriver.Card, _ minidriver.Bump) error {
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
		}})
	register(&Action{Name: "writer-crash-create-container", Actor: "writer",
		Doc: "a tool creates a container and the card loses power between the keymap write and the cmapfile write (S13): " +
			"the key file and keymap record exist, the cmapfile record does not (modelled by writing the cmapfile back as it was, with the reserved record)",
		Required: []string{"card"}, Args: []string{"guid", "bits", "pin"},
		Internals: true,
		Run: func(e *env, s *stepCtx) (Values, error) {
			guid := s.str("guid", "")
			if guid == "" {
				guid = e.newGUID()
			}
			idx := -1
			err := e.writer(s, func(md *minidriver.Card, _ minidriver.Bump) error {
				before, err := md.Containers(e.ctx)
				if err != nil {
					return err
				}
				if idx, err = md.CreateContainer(e.ctx, minidriver.ContainerSpec{GUID: guid, KeySpec: fs.AT_KEYEXCHANGE, Bits: s.int("bits", 1024)}, minidriver.BumpCorrect); err != nil {
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
		}})
	register(&Action{Name: "writer-repair-container", Actor: "writer",
		Doc:      "a tool repairs a diverged container index by deleting it (CardDeleteContainer: key file, keymap record, cmapfile record), S13",
		Required: []string{"card", "index"}, Args: []string{"bump", "pin"},
		Internals: true,
		Run: func(e *env, s *stepCtx) (Values, error) {
			return nil, e.writer(s, func(md *minidriver.Card, bump minidriver.Bump) error {
				return md.DeleteContainer(e.ctx, s.int("index", -1), minidriver.DeleteOptions{MoveDefaultTo: -1}, bump)
			})
		}})
	register(&Action{Name: "check-metadata", Actor: "card",
		Doc:       "compare the card's GIDS keymap with its cmapfile (consistent, or why not), read directly",
		Required:  []string{"card"},
		Internals: true,
		Run: func(e *env, s *stepCtx) (Values, error) {
			c, err := e.card(s)
			if err != nil {
				return nil, err
			}
			md, closeFn, err := e.mdClient(c)
			if err != nil {
				return nil, err
			}
			defer closeFn()
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
		}})
	register(&Action{Name: "ca-set-template", Actor: "ca",
		Doc: "an administrator edits the User template (S17): valid-existing (\"For reenrollment: Valid existing certificate\", default true), " +
			"pend-all (CA certificate manager approval, default false), ra-signatures (authorised signatures required, default 0)",
		Args: []string{"valid-existing", "pend-all", "ra-signatures"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			cca, err := e.getCA()
			if err != nil {
				return nil, err
			}
			cca.SetTemplate(ca.Template{ID: defaultTemplate, ValidExistingCertificate: s.bool("valid-existing", true),
				PendAllRequests: s.bool("pend-all", false), RequiredSignatures: s.int("ra-signatures", 0),
				Validity: 365 * 24 * time.Hour, EnrolleeSuppliesSubject: true})
			return nil, nil
		}})
	register(&Action{Name: "ca-renew-on-behalf", Actor: "ca",
		Doc: "a server (requester, a machine account such as CONTOSO\\SRV01$) submits the user's CMC renewal on their behalf " +
			"(requestername on-behalf-of), without an enrollment agent signature (S17)",
		Required: []string{"host", "old-cert", "old-guid", "new-guid", "requester", "on-behalf-of"}, Args: fidProcArgs,
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, err := e.process(s)
			if err != nil {
				return nil, err
			}
			old, err := s.cert("old-cert")
			if err != nil {
				return nil, err
			}
			oldKey, err := p.Signer(e.ctx, s.str("old-guid", ""))
			if err != nil {
				return nil, err
			}
			newKey, err := p.Signer(e.ctx, s.str("new-guid", ""))
			if err != nil {
				return nil, err
			}
			der, err := ca.BuildRenewal(ca.RenewalRequest{OldCert: old, OldKey: oldKey, NewKey: newKey, Template: defaultTemplate, OnBehalfOf: s.str("on-behalf-of", "")})
			if err != nil {
				return nil, err
			}
			cca, err := e.getCA()
			if err != nil {
				return nil, err
			}
			resp, err := cca.SubmitRenewal(der, s.str("requester", ""))
			return caResult(resp, err)
		}})
	register(&Action{Name: "set-user-pin", Actor: "host", Doc: "what the host's user types at PIN prompts from now on",
		Required: []string{"host", "pin"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			h.SetUserPIN(s.str("pin", ""))
			return nil, nil
		}})
	register(&Action{Name: "check-pin", Actor: "card", Doc: "the user PIN's remaining and maximum tries, read from the card (spent tries show here)",
		Required: []string{"card"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			c, err := e.card(s)
			if err != nil {
				return nil, err
			}
			md, closeFn, err := e.mdClient(c)
			if err != nil {
				return nil, err
			}
			defer closeFn()
			left, limit, err := md.PINTries(e.ctx)
			if err != nil {
				return nil, err
			}
			return Values{"tries_left": left, "tries_limit": limit}, nil
		}})
}

func storeName(s string) winhost.StoreName {
	if s == "request" || s == "REQUEST" || s == "Request" {
		return winhost.StoreRequest
	}
	return winhost.StoreMy
}

// keyValues is the result of an acquisition: the key and what
// CryptAcquireCertificatePrivateKey reports, and the provider the context's
// CERT_KEY_PROV_INFO names after it (healing may have set it).
func keyValues(c *winhost.CertContext, k *winhost.KeyHandle, err error) (Values, error) {
	v := Values{"in_store": true, "provider": "<none>"}
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
