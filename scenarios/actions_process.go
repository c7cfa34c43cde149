package scenarios

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/cardharness/cardharness/harness/ca"
	"github.com/cardharness/cardharness/harness/winhost"
	"github.com/cardharness/cardharness/winerr"
)

// A process on a host: what applications do through Base CSP (CAPI) or the
// smart-card KSP (CNG), with the host's caches in between. CertEnroll's
// enrollment (create-request, install-response, abort-request) follows
// docs/reference/minidriver-semantics.md §3.1: a dummy certificate in
// REQUEST carries the key's provider information until the response is
// installed.
func init() {
	register(&Action{
		Name: "generate-key", Actor: ActorProcess,
		Doc:     "generate a key pair in a new GUID-named container through Base CSP (correct counter bumps)",
		Args:    processArgs(argCard, argNewGUID, argKeySpec, argBits, argDefault),
		Result:  containerFields,
		Errors:  []string{"NTE_TOKEN_KEYSET_STORAGE_FULL", "NTE_EXISTS", "SCARD_W_WRONG_CHV", "NTE_SILENT_CONTEXT"},
		Example: "{do: generate-key, host: desktop, card: card, bits: 2048, save: key}",
		Run:     onProcessCard(generateKey),
	}, &Action{
		Name: "make-csr", Actor: ActorProcess,
		Doc:     "build a PKCS#10 signed on the card by a container's key",
		Args:    processArgs(argSigner, argSubject),
		Result:  csrFields,
		Errors:  []string{"NTE_BAD_KEYSET", "SCARD_W_WRONG_CHV"},
		Example: "{do: make-csr, host: desktop, guid: $key.guid, subject: CN=alice, save: req}",
		Run:     onProcess(makeCSRAction),
	}, &Action{
		Name: "create-request", Actor: ActorProcess,
		Doc: "CertEnroll CreateRequest: put the dummy certificate for a container into REQUEST",
		Args: processArgs(Arg{Name: "guid", Type: GUID, Required: true, Doc: "the new key's container"}, argSubject,
			Arg{Name: "request-id", Type: Int, Default: "1", Min: "0", Doc: "the request ID recorded in the dummy"}),
		Result: []Field{
			{Name: "dummy", Type: Dummy, Doc: "the REQUEST dummy, for abort-request"},
			{Name: "cert", Type: Cert, Doc: "the dummy's certificate"},
			{Name: "thumbprint", Type: String, Doc: "its SHA-1 thumbprint"},
		},
		Errors:  []string{"NTE_BAD_KEYSET"},
		Example: "{do: create-request, host: desktop, guid: $key.guid, save: pending}",
		Run:     onProcess(createRequest),
	}, &Action{
		Name: "install-response", Actor: ActorProcess,
		Doc: "CertEnroll InstallResponse: the issued certificate replaces the REQUEST dummy (onto the card and into My with provinfo)",
		Args: processArgs(Arg{Name: "cert", Type: Cert, Required: true, Doc: "the issued certificate"},
			Arg{Name: "allow-no-request", Type: Bool, Default: "false", Doc: "install even without an outstanding request (AllowNoOutstandingRequest)"}),
		Result: []Field{
			{Name: "thumbprint", Type: String, Doc: "the installed certificate's thumbprint"},
			{Name: "cert", Type: Cert, Doc: "the installed certificate"},
		},
		Errors:  []string{"CRYPT_E_NOT_FOUND", "NTE_BAD_PUBLIC_KEY"},
		Example: "{do: install-response, host: desktop, cert: $issued.cert}",
		Run:     onProcess(installResponse),
	}, &Action{
		Name: "abort-request", Actor: ActorProcess,
		Doc:     "roll an enrollment back: delete the new container and the REQUEST dummy (idempotent)",
		Args:    processArgs(Arg{Name: "dummy", Type: Dummy, Required: true, Doc: "the result of create-request"}),
		Example: "{do: abort-request, host: desktop, dummy: $pending}",
		Run:     onProcess(abortRequest),
	}, &Action{
		Name: "install-certificate", Actor: ActorProcess,
		Doc: "install an issued certificate: onto the card (kxcNN/kscNN) and into My with its key-provider property",
		Args: processArgs(argCert,
			Arg{Name: "guid", Type: GUID, Doc: "the container (default: the one whose key matches)"},
			Arg{Name: "card-only", Type: Bool, Default: "false", Doc: "write the card only, not My"},
			Arg{Name: "skip-key-check", Type: Bool, Default: "false", Doc: "do not check that the container's key matches"}),
		Result: []Field{
			{Name: "thumbprint", Type: String, Doc: "the certificate's thumbprint"},
			{Name: "cert", Type: Cert, Doc: "the certificate"},
		},
		Errors:  []string{"NTE_BAD_KEYSET", "NTE_BAD_PUBLIC_KEY", "SCARD_E_WRITE_TOO_MANY"},
		Example: "{do: install-certificate, host: desktop, cert: $issued.cert}",
		Run:     onProcess(installCertificate),
	}, &Action{
		Name: "acquire-key", Actor: ActorProcess,
		Doc: "CryptAcquireCertificatePrivateKey on a certificate from My (looked up by thumbprint)",
		Args: processArgs(argCert,
			Arg{Name: "compare-key", Type: Bool, Default: "false", Doc: "CRYPT_ACQUIRE_COMPARE_KEY_FLAG: check the card's key matches"},
			Arg{Name: "ncrypt", Type: Bool, Default: "false", Doc: "CRYPT_ACQUIRE_ALLOW_NCRYPT_KEY_FLAG"},
			argStore),
		Result: []Field{
			{Name: "in_store", Type: Bool, Doc: "the certificate was found in the store"},
			{Name: "key", Type: Key, Doc: "the key handle, for sign"},
			{Name: "guid", Type: GUID, Doc: "the container the key lives in"},
			{Name: "api", Type: String, Doc: "the API of the handle: capi or cng"},
		},
		Errors:  []string{"CRYPT_E_NO_KEY_PROPERTY", "CRYPT_E_NOT_FOUND", "NTE_BAD_KEYSET", "SCARD_E_NO_KEY_CONTAINER", "NTE_BAD_PUBLIC_KEY", "NTE_SILENT_CONTEXT", "SCARD_W_WRONG_CHV"},
		Example: "{do: acquire-key, host: desktop, cert: $issued.cert, silent: true, save: k}",
		Run:     acquireKey,
	}, &Action{
		Name: "sign", Actor: ActorProcess,
		Doc: "sign data with an acquired key and verify the signature with the certificate (NTE_BAD_SIGNATURE if it does not verify)",
		Args: []Arg{{Name: "key", Type: Key, Required: true, Doc: "a key handle saved from acquire-key"},
			{Name: "cert", Type: Cert, Required: true, Doc: "the certificate to verify with"},
			{Name: "data", Type: String, Default: "cardharness", Doc: "the data whose SHA-256 is signed"}},
		Result:  []Field{{Name: "verified", Type: Bool, Doc: "the signature verifies under the certificate"}},
		Errors:  []string{"NTE_BAD_SIGNATURE", "SCARD_W_WRONG_CHV", "SCARD_W_CHV_BLOCKED", "NTE_SILENT_CONTEXT", "SCARD_W_REMOVED_CARD"},
		Example: "{do: sign, key: $k.key, cert: $issued.cert, expect: {result: {verified: true}}}",
		Run:     sign,
	}, &Action{
		Name: "delete-container", Actor: ActorProcess,
		Doc: "delete a container through Base CSP, moving the default flag if asked",
		Args: processArgs(argGUID,
			argMoveDefault),
		Errors:  []string{"NTE_BAD_KEYSET"},
		Example: "{do: delete-container, host: desktop, guid: $old.guid, move-default-to: $new.guid}",
		Run:     onProcess(deleteContainer),
	}, &Action{
		Name: "change-pin", Actor: ActorProcess,
		Doc: "change the user PIN through Base CSP (bumps the PIN counter per the change_pin_bumps_pins knob)",
		Args: processArgs(argCard, argOldPIN,
			argNewPIN),
		Errors:  []string{"SCARD_W_WRONG_CHV", "SCARD_W_CHV_BLOCKED"},
		Example: "{do: change-pin, host: desktop, card: card, old: \"123456\", new: \"654321\"}",
		Run:     onProcessCard(changePIN),
	}, &Action{
		Name: "read-card-certificates", Actor: ActorProcess,
		Doc:  "read the card's certificates through the host's caches (what an application sees)",
		Args: processArgs(argCard, Arg{Name: "cert", Type: Cert, Doc: "look for this certificate"}),
		Result: []Field{
			{Name: "count", Type: Int, Doc: "certificates seen"},
			{Name: "subjects", Type: List, Doc: "their subject CNs, sorted"},
			{Name: "contains", Type: Bool, Doc: "cert: is among them"},
			{Name: "guid", Type: GUID, Doc: "the container cert: is in"},
		},
		Example: "{do: read-card-certificates, host: desktop, card: card, expect: {result: {count: 1}}}",
		Run:     onProcessCard(readCardCertificates),
	}, &Action{
		Name: "read-containers", Actor: ActorProcess,
		Doc:  "list the card's containers through the host's caches",
		Args: processArgs(argCard),
		Result: []Field{
			{Name: "count", Type: Int, Doc: "valid containers"},
			{Name: "guids", Type: List, Doc: "their GUIDs, sorted"},
			{Name: "default", Type: GUID, Doc: "the default container's GUID (empty: none)"},
		},
		Example: "{do: read-containers, host: desktop, card: card, expect: {result: {count: 2}}}",
		Run:     onProcessCard(readContainers),
	}, &Action{
		Name: "read-public-key", Actor: ActorProcess,
		Doc: "read a container's public key through the host's caches and compare it with a certificate's",
		Args: processArgs(argCard, argGUID,
			Arg{Name: "cert", Type: Cert, Required: true, Doc: "the certificate to compare with"}),
		Result: []Field{
			{Name: "found", Type: Bool, Doc: "the container is listed"},
			{Name: "matches_certificate", Type: Bool, Doc: "its public key is the certificate's"},
		},
		Example: "{do: read-public-key, host: desktop, card: card, guid: $key.guid, cert: $issued.cert}",
		Run:     onProcessCard(readPublicKey),
	})
}

func generateKey(e *env, s *stepCtx, p *winhost.Process, c *cardEnv) (Values, error) {
	guid := s.str("guid")
	if guid == "" {
		guid = e.newGUID()
	}
	ct, err := p.GenerateKeyPair(e.ctx, winhost.GenerateRequest{Reader: c.reader, GUID: guid, KeySpec: s.keySpec("keyspec"),
		Bits: s.int("bits"), Default: s.bool("default"), Silent: s.bool("silent")})
	if err != nil {
		return nil, err
	}
	return containerResult(ct.GUID, ct.Index, ct.PublicKey, ct.Default), nil
}

func makeCSRAction(e *env, s *stepCtx, p *winhost.Process) (Values, error) {
	signer, err := p.Signer(e.ctx, s.str("guid"))
	if err != nil {
		return nil, err
	}
	return makeCSR(s, signer)
}

func createRequest(e *env, s *stepCtx, p *winhost.Process) (Values, error) {
	name, err := parseSubject(s.str("subject"))
	if err != nil {
		return nil, s.argErr("subject", "%v", err)
	}
	d, err := p.CreateRequest(e.ctx, s.str("guid"), winhost.RequestOptions{Subject: name,
		Enrollment: winhost.EnrollmentProperty{RequestID: s.int("request-id"), CAName: "cardharness test CA"}})
	if err != nil {
		return nil, err
	}
	return Values{"dummy": d, "cert": d.Cert, "thumbprint": d.Thumbprint()}, nil
}

func installResponse(e *env, s *stepCtx, p *winhost.Process) (Values, error) {
	cert, err := s.cert("cert")
	if err != nil {
		return nil, err
	}
	sc, err := p.InstallResponse(e.ctx, cert, winhost.InstallResponseOptions{AllowNoOutstandingRequest: s.bool("allow-no-request"), Silent: s.bool("silent")})
	if err != nil {
		return nil, err
	}
	return Values{"thumbprint": sc.Thumbprint(), "cert": cert}, nil
}

func abortRequest(e *env, s *stepCtx, p *winhost.Process) (Values, error) {
	d, err := savedAs[winhost.StoreCert](s, "dummy", "dummy", "not a REQUEST dummy (save the result of create-request)")
	if err != nil {
		return nil, err
	}
	return nil, p.AbortRequest(e.ctx, d)
}

func installCertificate(e *env, s *stepCtx, p *winhost.Process) (Values, error) {
	cert, err := s.cert("cert")
	if err != nil {
		return nil, err
	}
	sc, err := p.InstallCertificate(e.ctx, cert, winhost.InstallOptions{ContainerGUID: s.str("guid"),
		CardOnly: s.bool("card-only"), SkipKeyCheck: s.bool("skip-key-check"), Silent: s.bool("silent")})
	if err != nil {
		return nil, err
	}
	return Values{"thumbprint": sc.Thumbprint(), "cert": cert}, nil
}

func acquireKey(e *env, s *stepCtx) (Values, error) {
	p, store, cert, err := e.certOfUser(s)
	if err != nil {
		return nil, err
	}
	sc, ok := storeOf(store, s.str("store")).FindCert(cert)
	if !ok {
		return Values{"in_store": false}, fmt.Errorf("certificate %q is not in %s: %w", cert.Subject.CommonName, s.str("store"), winerr.CRYPT_E_NOT_FOUND)
	}
	k, err := p.AcquireCertificatePrivateKey(e.ctx, sc, winhost.AcquireFlags{Silent: s.bool("silent"),
		CompareKey: s.bool("compare-key"), AllowNCrypt: s.bool("ncrypt")})
	if err != nil {
		return Values{"in_store": true}, err
	}
	return Values{"in_store": true, "key": k, "guid": k.ContainerGUID(), "api": k.API().String()}, nil
}

func sign(e *env, s *stepCtx) (Values, error) {
	k, err := savedAs[*winhost.KeyHandle](s, "key", "key", "not a key handle (save the result of acquire-key)")
	if err != nil {
		return nil, err
	}
	cert, err := s.cert("cert")
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(s.str("data")))
	sig, err := k.Sign(e.ctx, digest[:], crypto.SHA256)
	if err != nil {
		return nil, err
	}
	if err := winhost.VerifyWithCertificate(cert, crypto.SHA256, digest[:], sig); err != nil {
		return Values{"verified": false}, err
	}
	return Values{"verified": true}, nil
}

func deleteContainer(e *env, s *stepCtx, p *winhost.Process) (Values, error) {
	return nil, p.DeleteContainer(e.ctx, s.str("guid"), winhost.DeleteOptions{MoveDefaultTo: s.str("move-default-to"), Silent: s.bool("silent")})
}

func changePIN(e *env, s *stepCtx, p *winhost.Process, c *cardEnv) (Values, error) {
	if err := p.ChangePIN(e.ctx, c.reader, s.str("old"), s.str("new")); err != nil {
		return nil, err
	}
	c.pin = s.str("new")
	return nil, nil
}

func readCardCertificates(e *env, s *stepCtx, p *winhost.Process, c *cardEnv) (Values, error) {
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
}

func readContainers(e *env, s *stepCtx, p *winhost.Process, c *cardEnv) (Values, error) {
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
}

func readPublicKey(e *env, s *stepCtx, p *winhost.Process, c *cardEnv) (Values, error) {
	cts, err := p.Containers(e.ctx, c.reader)
	if err != nil {
		return nil, err
	}
	cert, err := s.cert("cert")
	if err != nil {
		return nil, err
	}
	for _, ct := range cts {
		if ct.GUID == s.str("guid") {
			pub, _ := cert.PublicKey.(*rsa.PublicKey)
			return Values{"found": true, "matches_certificate": pub != nil && ct.PublicKey.Equal(pub)}, nil
		}
	}
	return Values{"found": false}, nil
}

// containerFields is the result of a key generation (containerResult).
var containerFields = []Field{
	{Name: "guid", Type: GUID, Doc: "the new container's GUID"},
	{Name: "index", Type: Int, Doc: "its cmapfile index"},
	{Name: "default", Type: Bool, Doc: "it is the card's default container"},
	{Name: "public_key", Type: Other, Doc: "the public key"},
	{Name: "spki_sha256", Type: String, Doc: "the first 8 bytes of the SHA-256 of the public key (hex)"},
}

func containerResult(guid string, index int, pub *rsa.PublicKey, def bool) Values {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return Values{"guid": guid, "index": index, "default": def, "public_key": pub, "spki_sha256": hex.EncodeToString(sum[:8])}
}

func makeCSR(s *stepCtx, signer crypto.Signer) (Values, error) {
	name, err := parseSubject(s.str("subject"))
	if err != nil {
		return nil, s.argErr("subject", "%v", err)
	}
	csr, err := ca.BuildCSR(signer, name, nil)
	if err != nil {
		return nil, err
	}
	return Values{"csr": csr}, nil
}
