package scenarios

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// Values is what a step observed: the fields an expectation may check and
// a later step may use through a saved variable ($name.field).
type Values map[string]any

// Action is one verb of the scenario language.
type Action struct {
	Name     string
	Actor    string // card, host, writer, ca, clock, tool: for the README table
	Doc      string
	Args     []string // accepted arguments
	Required []string
	// Internals: the step needs the card's insides (introspection, faults,
	// re-initialisation); with --reader it is skipped and reported.
	Internals bool
	// Tool: the step runs an external program against the card.
	Tool bool
	Run  func(e *env, s *stepCtx) (Values, error)
}

func (a *Action) takes(name string) bool {
	for _, n := range a.Args {
		if n == name {
			return true
		}
	}
	return false
}

func (a *Action) argNames() []string { return a.Args }

var actions = map[string]*Action{}

func register(a *Action) {
	for _, r := range a.Required {
		if !a.takes(r) {
			a.Args = append(a.Args, r)
		}
	}
	sort.Strings(a.Args)
	actions[a.Name] = a
}

// ActionNames lists the actions, sorted.
func ActionNames() []string {
	out := make([]string, 0, len(actions))
	for n := range actions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Actions returns the action table (for documentation).
func Actions() []*Action {
	var out []*Action
	for _, n := range ActionNames() {
		out = append(out, actions[n])
	}
	return out
}

// The scenario's names for Windows codes are winerr's (a name or a hex
// value); an error's code is what it unwraps to.
func validErrorName(name string) bool { _, ok := winerr.Parse(name); return ok }

func errorCode(name string) uint32 { c, _ := winerr.Parse(name); return uint32(c) }

func codeOf(err error) (uint32, bool) { c, ok := winerr.FromError(err); return uint32(c), ok }

func keySpecArg(s *stepCtx, name string, def fs.KeySpec) (fs.KeySpec, error) {
	v := s.str(name, "")
	switch strings.ToLower(v) {
	case "":
		return def, nil
	case "exchange", "at_keyexchange", "keyexchange":
		return fs.AT_KEYEXCHANGE, nil
	case "signature", "at_signature":
		return fs.AT_SIGNATURE, nil
	}
	return 0, s.argErr(name, "key spec %q: want exchange or signature", v)
}

func bumpArg(s *stepCtx) (minidriver.Bump, error) {
	v := s.str("bump", "correct")
	b, err := minidriver.ParseBump(v)
	if err != nil {
		return 0, s.argErr("bump", "%v", err)
	}
	return b, nil
}

func init() {
	register(&Action{Name: "repeat", Actor: "scenario", Doc: "run the nested steps: a number of times; ${i} is the round (1..times)",
		Required: []string{"times"}, Run: func(e *env, s *stepCtx) (Values, error) { return nil, nil }})

	// ---- clock ----
	register(&Action{Name: "advance", Actor: "clock", Doc: "advance the virtual clock (runs due certificate propagations)",
		Required: []string{"by"}, Run: func(e *env, s *stepCtx) (Values, error) {
			d, err := ParseDuration(s.str("by", ""))
			if err != nil {
				return nil, s.argErr("by", "%v", err)
			}
			e.clock.Advance(d)
			return Values{"now": e.clock.Now().UTC().Format("2006-01-02T15:04:05Z")}, nil
		}})

	// ---- host: readers, logon, service ----
	register(&Action{Name: "insert", Actor: "host", Doc: "insert a card into a host (triggers certificate propagation if a user is signed in)",
		Required: []string{"host", "card"}, Run: func(e *env, s *stepCtx) (Values, error) {
			h, c, err := e.hostCard(s)
			if err != nil {
				return nil, err
			}
			return nil, h.InsertCard(e.ctx, c.reader, c.source, c.mdOpts)
		}})
	register(&Action{Name: "remove", Actor: "host", Doc: "remove a card from a host", Required: []string{"host", "card"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, c, err := e.hostCard(s)
			if err != nil {
				return nil, err
			}
			return nil, h.RemoveCard(c.reader)
		}})
	register(&Action{Name: "reinsert", Actor: "host", Doc: "remove and insert a card again", Required: []string{"host", "card"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, c, err := e.hostCard(s)
			if err != nil {
				return nil, err
			}
			if err := h.RemoveCard(c.reader); err != nil {
				return nil, err
			}
			return nil, h.InsertCard(e.ctx, c.reader, c.source, c.mdOpts)
		}})
	register(&Action{Name: "logon", Actor: "host", Doc: "sign the user in (triggers propagation)", Required: []string{"host"}, Args: []string{"user"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			return nil, h.Logon(e.ctx, s.str("user", "user"), winhost.LogonOptions{})
		}})
	register(&Action{Name: "logoff", Actor: "host", Doc: "sign the user out", Required: []string{"host"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			h.Logoff()
			return nil, nil
		}})
	register(&Action{Name: "restart-card-service", Actor: "host", Doc: "restart the smart-card service (the global cache survives per knob)", Required: []string{"host"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			h.RestartCardService()
			return nil, nil
		}})
	register(&Action{Name: "logon-enumeration", Actor: "host", Doc: "logon-time enumeration of the inserted cards (default container, certificates)",
		Required: []string{"host"}, Args: []string{"card"}, Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			cards := h.EnumerateLogonCards(e.ctx)
			r := Values{"cards": len(cards)}
			for _, lc := range cards {
				if name := s.str("card", ""); name != "" && e.cards[name] != nil && lc.Reader != e.cards[name].reader {
					continue
				}
				r["usable"] = lc.Usable
				r["default_container"] = lc.DefaultContainer
				r["certificates"] = len(lc.Certificates)
				if lc.Err != nil {
					return r, lc.Err
				}
			}
			return r, nil
		}})

	// ---- host process: CSP operations ----
	procArgs := []string{"process", "api", "silent"}
	register(&Action{Name: "generate-key", Actor: "host", Doc: "generate a key pair in a new GUID-named container through Base CSP (correct counter bumps)",
		Required: []string{"host", "card"}, Args: append([]string{"guid", "keyspec", "bits", "default"}, procArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, c, err := e.processCard(s)
			if err != nil {
				return nil, err
			}
			spec, err := keySpecArg(s, "keyspec", fs.AT_KEYEXCHANGE)
			if err != nil {
				return nil, err
			}
			guid := s.str("guid", "")
			if guid == "" {
				guid = e.newGUID()
			}
			ct, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Reader: c.reader, GUID: guid, KeySpec: spec,
				Bits: s.int("bits", 2048), Default: s.bool("default", false), Silent: s.bool("silent", false)})
			if err != nil {
				return nil, err
			}
			return containerResult(ct.GUID, ct.Index, ct.PublicKey, ct.Default), nil
		}})
	register(&Action{Name: "make-csr", Actor: "host", Doc: "build a PKCS#10 signed on the card by a container's key",
		Required: []string{"host", "guid"}, Args: append([]string{"subject"}, procArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, err := e.process(s)
			if err != nil {
				return nil, err
			}
			signer, err := p.Signer(e.ctx, s.str("guid", ""))
			if err != nil {
				return nil, err
			}
			return makeCSR(s, signer)
		}})
	register(&Action{Name: "install-certificate", Actor: "host", Doc: "install an issued certificate: onto the card (kxcNN/kscNN) and into My with its key-provider property (CertEnroll InstallResponse)",
		Required: []string{"host", "cert"}, Args: append([]string{"guid", "card-only", "skip-key-check"}, procArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, err := e.process(s)
			if err != nil {
				return nil, err
			}
			cert, err := s.cert("cert")
			if err != nil {
				return nil, err
			}
			sc, err := p.InstallCertificate(e.ctx, cert, winhost.InstallOptions{ContainerGUID: s.str("guid", ""),
				CardOnly: s.bool("card-only", false), SkipKeyCheck: s.bool("skip-key-check", false), Silent: s.bool("silent", false)})
			if err != nil {
				return nil, err
			}
			return Values{"thumbprint": sc.Thumbprint(), "cert": cert}, nil
		}})
	register(&Action{Name: "acquire-key", Actor: "host", Doc: "CryptAcquireCertificatePrivateKey on a certificate from My (looked up by thumbprint)",
		Required: []string{"host", "cert"}, Args: append([]string{"compare-key", "ncrypt", "store"}, procArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, h, err := e.processHost(s)
			if err != nil {
				return nil, err
			}
			cert, err := s.cert("cert")
			if err != nil {
				return nil, err
			}
			store, err := signedIn(h)
			if err != nil {
				return nil, err
			}
			sc, ok := storeOf(store, s.str("store", "My")).FindCert(cert)
			if !ok {
				return Values{"in_store": false}, fmt.Errorf("certificate %q is not in %s: %w", cert.Subject.CommonName, s.str("store", "My"), winerr.CRYPT_E_NOT_FOUND)
			}
			k, err := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{Silent: s.bool("silent", false),
				CompareKey: s.bool("compare-key", false), AllowNCrypt: s.bool("ncrypt", false)})
			if err != nil {
				return Values{"in_store": true}, err
			}
			return Values{"in_store": true, "key": k, "guid": k.ContainerGUID(), "api": k.API().String()}, nil
		}})
	register(&Action{Name: "sign", Actor: "host", Doc: "sign data with an acquired key and verify the signature with the certificate (NTE_BAD_SIGNATURE if it does not verify)",
		Required: []string{"key", "cert"}, Args: []string{"data"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			kv, err := s.obj("key")
			if err != nil {
				return nil, err
			}
			k, ok := kv.(*winhost.KeyHandle)
			if !ok {
				return nil, s.argErr("key", "not a key handle (save the result of acquire-key)")
			}
			cert, err := s.cert("cert")
			if err != nil {
				return nil, err
			}
			digest := sha256.Sum256([]byte(s.str("data", "cardharness")))
			sig, err := k.Sign(e.ctx, digest[:], crypto.SHA256)
			if err != nil {
				return nil, err
			}
			if err := winhost.VerifyWithCertificate(cert, crypto.SHA256, digest[:], sig); err != nil {
				return Values{"verified": false}, err
			}
			return Values{"verified": true}, nil
		}})
	register(&Action{Name: "delete-container", Actor: "host", Doc: "delete a container through Base CSP, moving the default flag if asked",
		Required: []string{"host", "guid"}, Args: append([]string{"move-default-to"}, procArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, err := e.process(s)
			if err != nil {
				return nil, err
			}
			return nil, p.DeleteContainer(e.ctx, s.str("guid", ""), winhost.DeleteOptions{MoveDefaultTo: s.str("move-default-to", ""), Silent: s.bool("silent", false)})
		}})
	register(&Action{Name: "change-pin", Actor: "host", Doc: "change the user PIN through Base CSP", Required: []string{"host", "card", "old", "new"}, Args: procArgs,
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, c, err := e.processCard(s)
			if err != nil {
				return nil, err
			}
			return nil, p.ChangePIN(e.ctx, c.reader, s.str("old", ""), s.str("new", ""))
		}})
	register(&Action{Name: "read-card-certificates", Actor: "host", Doc: "read the card's certificates through the host's caches (what an application sees)",
		Required: []string{"host", "card"}, Args: append([]string{"cert"}, procArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, c, err := e.processCard(s)
			if err != nil {
				return nil, err
			}
			certs, err := p.CardCertificates(e.ctx, c.reader)
			if err != nil {
				return nil, err
			}
			r := Values{"count": len(certs)}
			var subjects []string
			for _, cc := range certs {
				subjects = append(subjects, cc.Cert.Subject.CommonName)
			}
			sort.Strings(subjects)
			r["subjects"] = subjects
			if s.has("cert") {
				want, err := s.cert("cert")
				if err != nil {
					return nil, err
				}
				r["contains"] = false
				for _, cc := range certs {
					if cc.Cert.Equal(want) {
						r["contains"] = true
						r["guid"] = cc.ProvInfo.Container
					}
				}
			}
			return r, nil
		}})
	register(&Action{Name: "read-containers", Actor: "host", Doc: "list the card's containers through the host's caches",
		Required: []string{"host", "card"}, Args: procArgs,
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, c, err := e.processCard(s)
			if err != nil {
				return nil, err
			}
			cts, err := p.Containers(e.ctx, c.reader)
			if err != nil {
				return nil, err
			}
			var guids []string
			def := ""
			for _, ct := range cts {
				guids = append(guids, ct.GUID)
				if ct.Default {
					def = ct.GUID
				}
			}
			sort.Strings(guids)
			return Values{"count": len(cts), "guids": guids, "default": def}, nil
		}})
	register(&Action{Name: "read-public-key", Actor: "host", Doc: "read a container's public key through the host's caches and compare it with a certificate's",
		Required: []string{"host", "card", "guid", "cert"}, Args: procArgs,
		Run: func(e *env, s *stepCtx) (Values, error) {
			p, c, err := e.processCard(s)
			if err != nil {
				return nil, err
			}
			cts, err := p.Containers(e.ctx, c.reader)
			if err != nil {
				return nil, err
			}
			cert, err := s.cert("cert")
			if err != nil {
				return nil, err
			}
			for _, ct := range cts {
				if ct.GUID == s.str("guid", "") {
					pub, _ := cert.PublicKey.(*rsa.PublicKey)
					return Values{"found": true, "matches_certificate": pub != nil && ct.PublicKey.Equal(pub)}, nil
				}
			}
			return Values{"found": false}, nil
		}})
	register(&Action{Name: "stats", Actor: "host", Doc: "host (or process) counters: card reads, cache hits/stale/misses, PIN prompts",
		Required: []string{"host"}, Args: []string{"process"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			st := h.Stats()
			if s.has("process") {
				p, err := e.process(s)
				if err != nil {
					return nil, err
				}
				st = p.Stats()
			}
			return Values{"card_reads": st.CardReads, "cache_hits": st.CacheHits, "cache_stale": st.CacheStale,
				"cache_misses": st.CacheMisses, "pin_prompts": st.PINPrompts, "transactions": st.Transactions}, nil
		}})

	// ---- host stores ----
	register(&Action{Name: "check-store", Actor: "host", Doc: "look at the user's My or REQUEST store (count, subjects, and for cert: presence and key-provider property)",
		Required: []string{"host"}, Args: []string{"store", "cert"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			u, err := signedIn(h)
			if err != nil {
				return nil, err
			}
			st := storeOf(u, s.str("store", "My"))
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
		}})
	register(&Action{Name: "store-add", Actor: "host", Doc: "add a certificate to My or REQUEST by hand, with or without a key-provider property",
		Required: []string{"host", "cert"}, Args: []string{"store", "guid", "keyspec", "provider", "request-id"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			u, err := signedIn(h)
			if err != nil {
				return nil, err
			}
			cert, err := s.cert("cert")
			if err != nil {
				return nil, err
			}
			sc := winhost.StoreCert{Cert: cert, Source: "scenario"}
			if g := s.str("guid", ""); g != "" {
				spec, err := keySpecArg(s, "keyspec", fs.AT_KEYEXCHANGE)
				if err != nil {
					return nil, err
				}
				prov := winhost.ProviderCAPI
				if s.str("provider", "capi") == "ksp" {
					prov = winhost.ProviderKSP
				}
				sc.ProvInfo = &winhost.KeyProvInfo{Provider: prov, Container: g, KeySpec: spec}
			}
			if s.has("request-id") {
				sc.Enrollment = &winhost.EnrollmentProperty{RequestID: s.int("request-id", 0)}
			}
			storeOf(u, s.str("store", "My")).Add(sc, 0)
			return nil, nil
		}})
	register(&Action{Name: "store-delete", Actor: "host", Doc: "delete a certificate from My or REQUEST", Required: []string{"host", "cert"}, Args: []string{"store"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			h, err := e.host(s)
			if err != nil {
				return nil, err
			}
			cert, err := s.cert("cert")
			if err != nil {
				return nil, err
			}
			u, err := signedIn(h)
			if err != nil {
				return nil, err
			}
			return Values{"deleted": storeOf(u, s.str("store", "My")).Delete(winhost.Thumbprint(cert))}, nil
		}})

	// ---- out-of-band writer (the minidriver client, any bump policy) ----
	wArgs := []string{"bump", "pin"}
	register(&Action{Name: "writer-generate-key", Actor: "writer", Doc: "an enrollment tool generates a key in a GUID-named container, outside Base CSP",
		Required: []string{"card"}, Args: append([]string{"guid", "keyspec", "bits", "default"}, wArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			var res Values
			err := e.writer(s, func(md *minidriver.Card, bump minidriver.Bump) error {
				spec, err := keySpecArg(s, "keyspec", fs.AT_KEYEXCHANGE)
				if err != nil {
					return err
				}
				guid := s.str("guid", "")
				if guid == "" {
					guid = e.newGUID()
				}
				i, err := md.CreateContainer(e.ctx, minidriver.ContainerSpec{GUID: guid, KeySpec: spec, Bits: s.int("bits", 2048), Default: s.bool("default", false)}, bump)
				if err != nil {
					return err
				}
				info, err := md.ContainerInfo(e.ctx, i)
				if err != nil {
					return err
				}
				res = containerResult(guid, i, info.PublicKey, info.Default)
				return nil
			})
			return res, err
		}})
	register(&Action{Name: "writer-make-csr", Actor: "writer", Doc: "an enrollment tool builds a PKCS#10 signed on the card by a container's key",
		Required: []string{"card", "guid"}, Args: append([]string{"subject"}, wArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			var res Values
			err := e.writer(s, func(md *minidriver.Card, _ minidriver.Bump) error {
				i, err := findContainer(e.ctx, md, s.str("guid", ""))
				if err != nil {
					return err
				}
				signer, err := md.Signer(e.ctx, i)
				if err != nil {
					return err
				}
				res, err = makeCSR(s, signer)
				return err
			})
			return res, err
		}})
	register(&Action{Name: "writer-write-certificate", Actor: "writer", Doc: "an enrollment tool writes the issued certificate to the container found by GUID (compressed kxcNN/kscNN)",
		Required: []string{"card", "cert", "guid"}, Args: append([]string{"keyspec", "check-key"}, wArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			var res Values
			err := e.writer(s, func(md *minidriver.Card, bump minidriver.Bump) error {
				cert, err := s.cert("cert")
				if err != nil {
					return err
				}
				i, err := findContainer(e.ctx, md, s.str("guid", ""))
				if err != nil {
					return err
				}
				info, err := md.ContainerInfo(e.ctx, i)
				if err != nil {
					return err
				}
				if s.bool("check-key", true) {
					if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(info.PublicKey) {
						return fmt.Errorf("certificate key does not match container %d's key: %w", i, winerr.NTE_BAD_PUBLIC_KEY)
					}
				}
				res = Values{"index": i, "file": "mscp/" + fs.CertFileName(i, info.KeySpec)}
				return md.WriteCertificate(e.ctx, i, info.KeySpec, cert.Raw, bump)
			})
			return res, err
		}})
	register(&Action{Name: "writer-delete-container", Actor: "writer", Doc: "a tool deletes a container (and its certificate file) outside Base CSP",
		Required: []string{"card", "guid"}, Args: append([]string{"move-default-to", "keep-certificate"}, wArgs...),
		Run: func(e *env, s *stepCtx) (Values, error) {
			return nil, e.writer(s, func(md *minidriver.Card, bump minidriver.Bump) error {
				i, err := findContainer(e.ctx, md, s.str("guid", ""))
				if err != nil {
					return err
				}
				move := -1
				if g := s.str("move-default-to", ""); g != "" {
					if move, err = findContainer(e.ctx, md, g); err != nil {
						return err
					}
				}
				cmap, err := md.Containers(e.ctx)
				if err != nil {
					return err
				}
				spec, _, _ := cmap[i].Key()
				if !s.bool("keep-certificate", false) {
					if err := md.DeleteCertificate(e.ctx, i, spec, bump); err != nil && !errors.Is(err, winerr.SCARD_E_FILE_NOT_FOUND) {
						return err
					}
				}
				return md.DeleteContainer(e.ctx, i, minidriver.DeleteOptions{MoveDefaultTo: move}, bump)
			})
		}})
	register(&Action{Name: "writer-change-pin", Actor: "writer", Doc: "a tool changes the PIN outside Base CSP", Required: []string{"card", "old", "new"}, Args: []string{"bump"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			bump, err := bumpArg(s)
			if err != nil {
				return nil, err
			}
			c, err := e.card(s)
			if err != nil {
				return nil, err
			}
			md, closeFn, err := e.mdClient(c)
			if err != nil {
				return nil, err
			}
			defer closeFn()
			if err := md.ChangePIN(e.ctx, s.str("old", ""), s.str("new", ""), bump); err != nil {
				return nil, err
			}
			c.pin = s.str("new", "")
			return nil, nil
		}})

	// ---- card ----
	register(&Action{Name: "reinitialize", Actor: "card", Doc: "factory-reset and re-personalise the card (keep-cardid: the bug of S3)", Internals: true,
		Required: []string{"card"}, Args: []string{"keep-cardid"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			c, err := e.card(s)
			if err != nil {
				return nil, err
			}
			return nil, e.reinitialize(c, s.bool("keep-cardid", false))
		}})
	register(&Action{Name: "check-card", Actor: "card", Doc: "read the card directly (no host cache): cardcf counters, containers, default, certificates, free space",
		Required: []string{"card"}, Run: func(e *env, s *stepCtx) (Values, error) {
			c, err := e.card(s)
			if err != nil {
				return nil, err
			}
			return e.cardState(c)
		}})

	// ---- CA ----
	register(&Action{Name: "ca-issue", Actor: "ca", Doc: "the test CA issues a certificate from a PKCS#10", Required: []string{"csr"}, Args: []string{"template", "requester"},
		Run: func(e *env, s *stepCtx) (Values, error) {
			v, err := s.obj("csr")
			if err != nil {
				return nil, err
			}
			csr, ok := v.([]byte)
			if !ok {
				return nil, s.argErr("csr", "not a PKCS#10 (save the result of make-csr)")
			}
			cca, err := e.getCA()
			if err != nil {
				return nil, err
			}
			resp, err := cca.IssueFromCSR(csr, e.template(s.str("template", "")), s.str("requester", "user"))
			return caResult(resp, err)
		}})
	register(&Action{Name: "ca-renew", Actor: "ca", Doc: "build a CMC renewal request on the card (new key signs as primary by SKI, old key by issuer+serial) and submit it",
		Required: []string{"host", "old-cert", "old-guid", "new-guid"},
		Args:     append([]string{"template", "requester", "fault"}, procArgs...),
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
			req := ca.RenewalRequest{OldCert: old, OldKey: oldKey, NewKey: newKey, Template: e.template(s.str("template", ""))}
			if err := applyRenewalFault(&req, s); err != nil {
				return nil, err
			}
			der, err := ca.BuildRenewal(req)
			if err != nil {
				return nil, err
			}
			cca, err := e.getCA()
			if err != nil {
				return nil, err
			}
			resp, err := cca.SubmitRenewal(der, s.str("requester", "user"))
			return caResult(resp, err)
		}})

	// ---- external tools ----
	register(&Action{Name: "tool", Actor: "tool", Tool: true, Doc: "run an OpenSC/OpenSSL tool against the card's reader (PCSCLITE_CSOCK_NAME set)",
		Required: []string{"card", "run"}, Run: func(e *env, s *stepCtx) (Values, error) {
			c, err := e.card(s)
			if err != nil {
				return nil, err
			}
			return e.runTool(c, s)
		}})
}

func containerResult(guid string, index int, pub *rsa.PublicKey, def bool) Values {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return Values{"guid": guid, "index": index, "default": def, "public_key": pub, "spki_sha256": hex.EncodeToString(sum[:8])}
}

func makeCSR(s *stepCtx, signer crypto.Signer) (Values, error) {
	subject := s.str("subject", "CN=cardharness user")
	name, err := parseSubject(subject)
	if err != nil {
		return nil, s.argErr("subject", "%v", err)
	}
	csr, err := ca.BuildCSR(signer, name, nil)
	if err != nil {
		return nil, err
	}
	return Values{"csr": csr}, nil
}

// parseSubject reads "CN=...,O=...".
func parseSubject(s string) (pkix.Name, error) {
	var n pkix.Name
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return n, fmt.Errorf("subject %q: want attributes such as CN=name,O=org", s)
		}
		switch strings.ToUpper(k) {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "C":
			n.Country = append(n.Country, v)
		default:
			return n, fmt.Errorf("subject attribute %q not supported (CN, O, OU, C)", k)
		}
	}
	return n, nil
}

func caResult(resp *ca.Response, err error) (Values, error) {
	if err != nil {
		return nil, err
	}
	r := Values{"disposition": strings.ToLower(resp.Disposition.String()), "request_id": resp.RequestID, "renewal": resp.Renewal, "as_new_request": resp.AsNewRequest}
	if resp.Cert != nil {
		r["cert"] = resp.Cert
		r["subject"] = resp.Cert.Subject.CommonName
	}
	if resp.Status != nil {
		return r, resp.Status
	}
	return r, nil
}

var renewalFaults = map[string]func(*ca.RenewalRequest){
	"no-renewal-attribute": func(r *ca.RenewalRequest) { r.OmitRenewalAttribute = true },
	"no-old-signer":        func(r *ca.RenewalRequest) { r.OmitOldSigner = true },
	"no-template":          func(r *ca.RenewalRequest) { r.OmitTemplate = true },
	"two-requests":         func(r *ca.RenewalRequest) { r.TwoRequests = true },
	"same-key":             func(r *ca.RenewalRequest) { r.NewKey = r.OldKey },
	"old-signed-by-new":    func(r *ca.RenewalRequest) { r.SignOldWith = r.NewKey },
	"corrupt-csr":          func(r *ca.RenewalRequest) { r.CorruptCSRSignature = true },
}

func applyRenewalFault(r *ca.RenewalRequest, s *stepCtx) error {
	f := s.str("fault", "")
	if f == "" {
		return nil
	}
	fn, ok := renewalFaults[f]
	if !ok {
		names := make([]string, 0, len(renewalFaults))
		for n := range renewalFaults {
			names = append(names, n)
		}
		sort.Strings(names)
		return s.argErr("fault", "unknown renewal fault %q (known: %s)", f, strings.Join(names, ", "))
	}
	fn(r)
	return nil
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

func findContainer(ctx context.Context, md *minidriver.Card, guid string) (int, error) {
	cmap, err := md.Containers(ctx)
	if err != nil {
		return -1, err
	}
	for i, r := range cmap {
		if r.IsValid() && r.GUID == guid {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no container %q on the card: %w", guid, winerr.NTE_BAD_KEYSET)
}
