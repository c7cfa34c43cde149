package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/winerr"
)

func TestRenewalRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	resp := e.submitRenewal(t)
	if resp.Disposition != Issued {
		t.Fatalf("disposition %v, status %v (%s)", resp.Disposition, resp.Status, resp.Explanation)
	}
	cert := resp.Cert
	oldSAN, _ := findExtension(e.old.Extensions, oidSubjectAltName)
	newSAN, _ := findExtension(cert.Extensions, oidSubjectAltName)
	tmpl, _ := TemplateOf(cert)
	type view struct {
		NewKey, OldKey        bool
		Subject               string
		SAN                   []byte
		Template              TemplateID
		NotBefore, NotAfter   time.Time
		EKU                   []asn1.ObjectIdentifier
		SignedByCA            bool
		Renewal, AsNewRequest bool
		OldSerial             string
		Chain                 int
	}
	chain, err := ParseCertsOnly(resp.PKCS7)
	if err != nil {
		t.Fatal(err)
	}
	got := view{
		NewKey:       PublicKeyEqual(testKey(t, kNew).Public(), cert.PublicKey),
		OldKey:       PublicKeyEqual(testKey(t, kOld).Public(), cert.PublicKey),
		Subject:      cert.Subject.String(),
		SAN:          newSAN.Value,
		Template:     tmpl,
		NotBefore:    cert.NotBefore,
		NotAfter:     cert.NotAfter,
		EKU:          ekuOIDs(cert),
		SignedByCA:   cert.CheckSignatureFrom(e.ca.Certificate()) == nil,
		Renewal:      resp.Renewal,
		AsNewRequest: resp.AsNewRequest,
		OldSerial:    resp.OldCert.SerialNumber.String(),
		Chain:        len(chain),
	}
	now := e.clk.Now()
	want := view{
		NewKey:     true,
		Subject:    e.old.Subject.String(),
		SAN:        oldSAN.Value,
		Template:   TemplateID{OID: tmplSCL.OID, Major: tmplSCL.Major, Minor: tmplSCL.Minor},
		NotBefore:  now,
		NotAfter:   now.Add(365 * 24 * time.Hour),
		EKU:        []asn1.ObjectIdentifier{OIDSmartcardLogon, oidClientAuth},
		SignedByCA: true,
		Renewal:    true,
		OldSerial:  e.old.SerialNumber.String(),
		Chain:      2,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("issued certificate (-want +got):\n%s", d)
	}
	if !bytes.Equal(cert.RawSubject, e.old.RawSubject) {
		t.Errorf("subject bytes differ from the old certificate's")
	}
	if e.old.Subject.CommonName != "Alice Example" {
		t.Errorf("old subject %q", e.old.Subject)
	}
}

// outcome is the part of a Response the table compares.
type outcome struct {
	Disposition   Disposition
	Code          winerr.Code
	Check         int
	Renewal       bool
	AsNewRequest  bool
	RenewalReason winerr.Code
}

func outcomeOf(r *Response) outcome {
	o := outcome{Disposition: r.Disposition, Renewal: r.Renewal, AsNewRequest: r.AsNewRequest,
		Code: codeOf(r.Status), RenewalReason: codeOf(r.RenewalStatus)}
	var re *RequestError
	if errors.As(r.Status, &re) {
		o.Check = re.Check
	}
	return o
}

func TestSubmitRenewal(t *testing.T) {
	issued := outcome{Disposition: Issued, Renewal: true}
	denied := func(c winerr.Code, check int) outcome { return outcome{Disposition: Denied, Code: c, Check: check} }
	deniedRenewal := func(c winerr.Code, check int) outcome {
		return outcome{Disposition: Denied, Code: c, Check: check, Renewal: true}
	}
	// fallback: renewal verified, but new-request rules applied and the
	// template pends (CT_FLAG_PEND_ALL_REQUESTS).
	pendingAsNew := func(reason winerr.Code) outcome {
		return outcome{Disposition: Pending, Renewal: true, AsNewRequest: true, RenewalReason: reason}
	}
	pend := func(tp *Template) { tp.PendAllRequests = true }
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		opts  func(*Options)
		tmpl  func(*Template) // applied to the renewal template after the first enrollment
		setup func(*testing.T, *env)
		req   func(*RenewalRequest, *env)
		sub   SubmitOptions // Requester defaults to alice
		want  outcome
		check func(*testing.T, *env, *Response)
	}{
		{name: "valid existing certificate: issued without approval", tmpl: pend, want: issued},
		{name: "valid existing certificate, no approval configured", want: issued},
		{name: "signers in reverse order", tmpl: pend, req: func(r *RenewalRequest, _ *env) { r.ReverseSigners = true }, want: issued},
		{name: "SHA-384", req: func(r *RenewalRequest, _ *env) { r.Hash = 0x6 /* crypto.SHA384 */ }, want: issued},
		{name: "ECDSA P-256 new key", req: func(r *RenewalRequest, _ *env) { r.NewKey = ecKey }, want: issued,
			check: func(t *testing.T, _ *env, r *Response) {
				if !PublicKeyEqual(ecKey.Public(), r.Cert.PublicKey) {
					t.Error("certificate is not for the ECDSA key")
				}
			}},
		// Check 1: structure.
		{name: "not signedData", req: func(r *RenewalRequest, _ *env) { r.ContentType = OIDData }, want: denied(winerr.ERROR_INVALID_DATA, 1)},
		{name: "wrong eContentType", req: func(r *RenewalRequest, _ *env) { r.EContentType = OIDData }, want: denied(winerr.ERROR_INVALID_DATA, 1)},
		{name: "zero requests", req: func(r *RenewalRequest, _ *env) { r.ZeroRequests = true }, want: denied(winerr.ERROR_INVALID_DATA, 1)},
		{name: "two requests", req: func(r *RenewalRequest, _ *env) { r.TwoRequests = true }, want: denied(winerr.ERROR_INVALID_DATA, 1)},
		// Check 2.
		{name: "bad PKCS#10 self-signature", req: func(r *RenewalRequest, _ *env) { r.CorruptCSRSignature = true }, want: denied(winerr.NTE_BAD_SIGNATURE, 2)},
		// Check 3.
		{name: "renewal attribute absent: new request (template pends)", tmpl: pend,
			req:  func(r *RenewalRequest, _ *env) { r.OmitRenewalAttribute = true },
			want: outcome{Disposition: Pending, AsNewRequest: true}},
		{name: "renewal attribute absent: new request (issued)",
			req:  func(r *RenewalRequest, _ *env) { r.OmitRenewalAttribute = true },
			want: outcome{Disposition: Issued, AsNewRequest: true}},
		{name: "renewal attribute is not the signing certificate",
			req: func(r *RenewalRequest, e *env) {
				r.RenewalCertOverride = e.enroll(t, e.ca, testKey(t, kOld2), "bob@contoso.test", tmplSCL)
			},
			want: denied(winerr.CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE, 3)},
		{name: "only the primary signer", req: func(r *RenewalRequest, _ *env) { r.OmitOldSigner = true },
			want: denied(winerr.CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE, 3)},
		// Check 4.
		{name: "primary signer's SKI is not the PKCS#10 key",
			req:  func(r *RenewalRequest, _ *env) { r.PrimarySKI = bytes.Repeat([]byte{0x42}, 20) },
			want: denied(winerr.CRYPT_E_SIGNER_NOT_FOUND, 4)},
		{name: "primary signer is another key (its own SKI)",
			req: func(r *RenewalRequest, _ *env) {
				r.SignPrimaryWith = testKey(t, kOther)
				r.PrimarySKI, _ = SubjectKeyID(testKey(t, kOther).Public())
			},
			want: denied(winerr.CRYPT_E_SIGNER_NOT_FOUND, 4)},
		{name: "primary signer claims the new key, another key signs",
			req:  func(r *RenewalRequest, _ *env) { r.SignPrimaryWith = testKey(t, kOther) },
			want: denied(winerr.NTE_BAD_SIGNATURE, 4)},
		{name: "no primary signer", req: func(r *RenewalRequest, _ *env) { r.OmitPrimarySigner = true },
			want: denied(winerr.CRYPT_E_SIGNER_NOT_FOUND, 4)},
		// Check 5.
		{name: "old certificate claimed, another key signs",
			req:  func(r *RenewalRequest, _ *env) { r.SignOldWith = testKey(t, kOther) },
			want: denied(winerr.NTE_BAD_SIGNATURE, 5)},
		{name: "old signer's signature corrupted", req: func(r *RenewalRequest, _ *env) { r.CorruptSignature = OldSigner },
			want: denied(winerr.NTE_BAD_SIGNATURE, 5)},
		{name: "old certificate missing from certificates", req: func(r *RenewalRequest, _ *env) { r.OmitCertificates = true },
			want: denied(winerr.CRYPT_E_SIGNER_NOT_FOUND, 5)},
		// Check 6.
		{name: "messageDigest wrong (old signer)", req: func(r *RenewalRequest, _ *env) { r.CorruptDigest = OldSigner },
			want: denied(winerr.CRYPT_E_HASH_VALUE, 6)},
		{name: "messageDigest wrong (primary signer)", req: func(r *RenewalRequest, _ *env) { r.CorruptDigest = PrimarySigner },
			want: denied(winerr.CRYPT_E_HASH_VALUE, 6)},
		{name: "content-type attribute wrong", req: func(r *RenewalRequest, _ *env) { r.WrongContentTypeAttr = OldSigner },
			want: denied(winerr.ERROR_INVALID_DATA, 6)},
		// Check 7.
		{name: "old certificate not issued by this CA",
			setup: func(t *testing.T, e *env) {
				other, err := New(Options{Name: "Fabrikam CA", Key: testKey(t, kCA2), Clock: e.clk.Now, Rand: detRand(2),
					Templates: []Template{sclTemplate()}, RequesterIdentity: directory})
				if err != nil {
					t.Fatal(err)
				}
				e.old = e.enroll(t, other, testKey(t, kOld), alice, tmplSCL)
			},
			want: deniedRenewal(winerr.CERT_E_CHAINING, 7)},
		{name: "old certificate expired (virtual clock)",
			setup: func(_ *testing.T, e *env) { e.clk.Advance(70 * 24 * time.Hour) },
			want:  deniedRenewal(winerr.CERT_E_EXPIRED, 7)},
		{name: "old certificate revoked",
			setup: func(_ *testing.T, e *env) { e.ca.Revoke(e.old.SerialNumber) },
			want:  deniedRenewal(winerr.CRYPT_E_REVOKED, 7)},
		// Check 8: template.
		{name: "template extension missing (InheritExtensionsFlag only)",
			req:  func(r *RenewalRequest, _ *env) { r.OmitTemplate = true },
			want: deniedRenewal(winerr.CERTSRV_E_NO_CERT_TYPE, 8)},
		{name: "template extension missing, template given as request attribute",
			req: func(r *RenewalRequest, _ *env) { r.OmitTemplate = true },
			sub: SubmitOptions{Requester: alice, Template: TemplateID{Name: tmplSCL.Name}}, want: issued},
		{name: "template inherited from the old certificate (zero Template)",
			req: func(r *RenewalRequest, _ *env) { r.Template = TemplateID{} }, want: issued},
		{name: "wrong template ID (another template of this CA)",
			req:  func(r *RenewalRequest, _ *env) { r.Template = tmplOther },
			want: pendingAsNew(winerr.CERTSRV_E_UNSUPPORTED_CERT_TYPE)},
		{name: "wrong template ID (unknown to the CA)",
			req: func(r *RenewalRequest, _ *env) {
				r.Template = TemplateID{OID: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 21, 8, 1, 1}, Major: 100}
			},
			want: deniedRenewal(winerr.CERTSRV_E_UNSUPPORTED_CERT_TYPE, 8)},
		{name: "template version newer than the CA's",
			req: func(r *RenewalRequest, _ *env) {
				r.Template = TemplateID{OID: tmplSCL.OID, Major: tmplSCL.Major + 1}
			},
			want: deniedRenewal(winerr.CERTSRV_E_BAD_TEMPLATE_VERSION, 8)},
		{name: "v1 template: no reenrollment shortcut", tmpl: pend,
			setup: func(_ *testing.T, e *env) {
				e.ca.SetTemplate(Template{ID: tmplV1, ValidExistingCertificate: true, PendAllRequests: true})
			},
			req:  func(r *RenewalRequest, _ *env) { r.Template = tmplV1 },
			want: pendingAsNew(winerr.CERTSRV_E_UNSUPPORTED_CERT_TYPE)},
		// Check 9: subject.
		{name: "subject changed, enrollee supplies subject",
			tmpl: func(tp *Template) { tp.PendAllRequests, tp.EnrolleeSuppliesSubject = true, true },
			req: func(r *RenewalRequest, _ *env) {
				r.Subject, _ = asn1.Marshal(pkix.Name{CommonName: "Mallory"}.ToRDNSequence())
			},
			want: pendingAsNew(winerr.CERTSRV_E_BAD_REQUESTSUBJECT)},
		{name: "subject unchanged, enrollee supplies subject",
			tmpl: func(tp *Template) { tp.PendAllRequests, tp.EnrolleeSuppliesSubject = true, true },
			want: issued},
		{name: "empty subject, enrollee supplies subject",
			tmpl: func(tp *Template) { tp.PendAllRequests, tp.EnrolleeSuppliesSubject = true, true },
			req:  func(r *RenewalRequest, _ *env) { r.Subject = []byte{0x30, 0} },
			want: pendingAsNew(winerr.CERTSRV_E_BAD_REQUESTSUBJECT)},
		{name: "subject changed, CA builds subject: request subject ignored", tmpl: pend,
			req: func(r *RenewalRequest, _ *env) {
				r.Subject, _ = asn1.Marshal(pkix.Name{CommonName: "Mallory"}.ToRDNSequence())
			},
			want: issued,
			check: func(t *testing.T, e *env, r *Response) {
				if !bytes.Equal(r.Cert.RawSubject, e.old.RawSubject) {
					t.Errorf("subject %q, want the old %q", r.Cert.Subject, e.old.Subject)
				}
			}},
		// Check 10: renewal authorisation mode.
		{name: "same criteria as for enrollment: pending",
			tmpl: func(tp *Template) { tp.ValidExistingCertificate, tp.PendAllRequests = false, true },
			want: outcome{Disposition: Pending, Renewal: true, AsNewRequest: true}},
		{name: "same criteria, no approval configured: issued",
			tmpl: func(tp *Template) { tp.ValidExistingCertificate = false },
			want: outcome{Disposition: Issued, Renewal: true, AsNewRequest: true}},
		// Check 11: key.
		{name: "same key as the old certificate",
			req:  func(r *RenewalRequest, _ *env) { r.NewKey = r.OldKey },
			want: deniedRenewal(winerr.CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY, 11)},
		{name: "same key, allowed by policy",
			tmpl: func(tp *Template) { tp.AllowSameKey = true },
			req:  func(r *RenewalRequest, _ *env) { r.NewKey = r.OldKey },
			want: issued},
		{name: "template requires the same key, request has a new one",
			tmpl: func(tp *Template) { tp.RequireSameKey = true },
			want: deniedRenewal(winerr.CERTSRV_E_RENEWAL_BAD_PUBLIC_KEY, 11)},
		// Check 12: who submits.
		{name: "server submits with its own identity: new-request rules", tmpl: pend,
			sub:  SubmitOptions{Requester: webServer},
			want: pendingAsNew(winerr.CERTSRV_E_BAD_REQUESTSUBJECT)},
		{name: "server submits with its own identity, template without approval: issued as new request",
			sub:  SubmitOptions{Requester: webServer},
			want: outcome{Disposition: Issued, Renewal: true, AsNewRequest: true, RenewalReason: winerr.CERTSRV_E_BAD_REQUESTSUBJECT}},
		{name: "server, renew-on-behalf-of flag, CA allows", tmpl: pend,
			opts: func(o *Options) { o.AllowRenewOnBehalfOf = true },
			sub:  SubmitOptions{Requester: webServer, RenewOnBehalfOf: true},
			want: issued,
			check: func(t *testing.T, _ *env, r *Response) {
				if r.EndEntity.UPN != alice {
					t.Errorf("end entity %+v, want alice", r.EndEntity)
				}
			}},
		{name: "server, renew-on-behalf-of flag, CA does not allow", tmpl: pend,
			sub:  SubmitOptions{Requester: webServer, RenewOnBehalfOf: true},
			want: deniedRenewal(winerr.E_ACCESSDENIED, 12)},
		{name: "enroll on behalf of, template requires an RA signature",
			tmpl:  func(tp *Template) { tp.PendAllRequests, tp.RequiredSignatures = true, 1 },
			setup: func(t *testing.T, e *env) { e.issueAgent(t, true) },
			req: func(r *RenewalRequest, e *env) {
				r.Agent, r.AgentKey, r.OnBehalfOf = e.agent, testKey(t, kAgent), aliceNT
			},
			sub: SubmitOptions{Requester: webServer}, want: issued,
			check: func(t *testing.T, _ *env, r *Response) {
				if r.EndEntity.Name != aliceNT {
					t.Errorf("subject identity %+v", r.EndEntity)
				}
			}},
		{name: "enroll on behalf of, template requires no signature",
			setup: func(t *testing.T, e *env) { e.issueAgent(t, true) },
			req: func(r *RenewalRequest, e *env) {
				r.Agent, r.AgentKey, r.OnBehalfOf = e.agent, testKey(t, kAgent), aliceNT
			},
			sub: SubmitOptions{Requester: webServer}, want: deniedRenewal(winerr.CERTSRV_E_BAD_RENEWAL_SUBJECT, 12)},
		{name: "enroll on behalf of, same criteria, agent accepted: pending",
			tmpl: func(tp *Template) {
				tp.ValidExistingCertificate, tp.PendAllRequests, tp.RequiredSignatures = false, true, 1
			},
			setup: func(t *testing.T, e *env) { e.issueAgent(t, true) },
			req: func(r *RenewalRequest, e *env) {
				r.Agent, r.AgentKey, r.OnBehalfOf = e.agent, testKey(t, kAgent), aliceNT
			},
			sub: SubmitOptions{Requester: webServer}, want: outcome{Disposition: Pending, Renewal: true, AsNewRequest: true}},
		{name: "enroll on behalf of, same criteria, agent certificate lacks the EKU",
			tmpl: func(tp *Template) {
				tp.ValidExistingCertificate, tp.RequiredSignatures = false, 1
			},
			setup: func(t *testing.T, e *env) { e.issueAgent(t, false) },
			req: func(r *RenewalRequest, e *env) {
				r.Agent, r.AgentKey, r.OnBehalfOf = e.agent, testKey(t, kAgent), aliceNT
			},
			sub:  SubmitOptions{Requester: webServer},
			want: outcome{Disposition: Denied, Code: winerr.CERTSRV_E_SIGNATURE_COUNT, Check: 12, Renewal: true, AsNewRequest: true}},
		{name: "unknown requester", sub: SubmitOptions{Requester: "mallory@evil.test"}, want: denied(winerr.CERTSRV_E_ENROLL_DENIED, 12)},
		{name: "template ACL denies the requester",
			tmpl: func(tp *Template) { tp.Enroll = func(id Identity) bool { return id.Name != aliceNT } },
			want: deniedRenewal(winerr.CERTSRV_E_TEMPLATE_DENIED, 12)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opts)
			if tc.tmpl != nil {
				tp := sclTemplate()
				tc.tmpl(&tp)
				e.ca.SetTemplate(tp)
			}
			if tc.setup != nil {
				tc.setup(t, e)
			}
			r := e.renewal(t)
			if tc.req != nil {
				tc.req(&r, e)
			}
			der, err := BuildRenewal(r)
			if err != nil {
				t.Fatal(err)
			}
			sub := tc.sub
			if sub.Requester == "" {
				sub.Requester = alice
			}
			resp, err := e.ca.SubmitCMC(der, sub)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, outcomeOf(resp)); d != "" {
				t.Errorf("outcome (-want +got):\n%s\nstatus: %v\nexplanation: %s", d, resp.Status, resp.Explanation)
			}
			if resp.Disposition == Issued && resp.Cert == nil {
				t.Error("issued without a certificate")
			}
			if resp.Disposition == Denied && resp.Cert != nil {
				t.Error("denied with a certificate")
			}
			if tc.check != nil && resp.Cert != nil {
				tc.check(t, e, resp)
			}
		})
	}
}

func TestSignerOrderIndependence(t *testing.T) {
	e := newEnv(t, nil)
	newSKI, err := SubjectKeyID(testKey(t, kNew).Public())
	if err != nil {
		t.Fatal(err)
	}
	type signers struct {
		Order       []int // versions in wire order
		PrimaryV    int
		OldV        int
		Disposition Disposition
	}
	got := map[bool]signers{}
	for _, reverse := range []bool{false, true} {
		r := e.renewal(t)
		r.ReverseSigners = reverse
		der, err := BuildRenewal(r)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseRenewal(der)
		if err != nil {
			t.Fatal(err)
		}
		var s signers
		for _, si := range p.Signers {
			s.Order = append(s.Order, si.Version)
		}
		if ps := p.SignerBySKI(newSKI); len(ps) == 1 {
			s.PrimaryV = ps[0].Version
		}
		if os := p.SignerFor(e.old); len(os) == 1 {
			s.OldV = os[0].Version
		}
		resp, err := e.ca.SubmitRenewal(der, alice)
		if err != nil {
			t.Fatal(err)
		}
		s.Disposition = resp.Disposition
		got[reverse] = s
	}
	want := map[bool]signers{
		false: {Order: []int{3, 1}, PrimaryV: 3, OldV: 1, Disposition: Issued},
		true:  {Order: []int{1, 3}, PrimaryV: 3, OldV: 1, Disposition: Issued},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestParseRenewalView(t *testing.T) {
	e := newEnv(t, nil)
	der, err := BuildRenewal(e.renewal(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseRenewal(der)
	if err != nil {
		t.Fatal(err)
	}
	csr := p.CSR()
	if csr == nil {
		t.Fatal("no PKCS#10")
	}
	rc, err := p.RenewalCertificate()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _, _ := csr.Template()
	var extIDs []string
	for _, x := range csr.Extensions {
		extIDs = append(extIDs, x.Id.String())
	}
	type view struct {
		SignedDataVersion int
		DigestAlgs        []string
		EContentType      string
		BodyPartID        int
		RenewalIsOld      bool
		Template          TemplateID
		Extensions        []string
		Certificates      int
		Signers           int
		SubjectIsOld      bool
	}
	var algs []string
	for _, a := range p.SignedData.DigestAlgorithms {
		algs = append(algs, a.String())
	}
	got := view{p.SignedData.Version, algs, p.SignedData.EContentType.String(), p.Requests[0].BodyPartID,
		bytes.Equal(rc.Raw, e.old.Raw), tmpl, extIDs, len(p.Certificates), len(p.Signers),
		bytes.Equal(csr.RawSubject, e.old.RawSubject)}
	want := view{3, []string{"2.16.840.1.101.3.4.2.1"}, "1.3.6.1.5.5.7.12.2", 1, true, tmplSCL.withoutName(),
		// inherited: KU? (none in the old cert) EKU, SAN; then template, SKI of the new key
		[]string{"2.5.29.37", "2.5.29.17", "1.3.6.1.4.1.311.21.7", "2.5.29.14"}, 1, 2, true}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// crypto/x509 parses the same PKCS#10 and agrees on the signature.
	xr, err := x509.ParseCertificateRequest(csr.Raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := xr.CheckSignature(); err != nil {
		t.Errorf("crypto/x509 rejects the PKCS#10 signature: %v", err)
	}
	v, err := p.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if v.Primary == nil || v.Old == nil || !bytes.Equal(v.OldCert.Raw, e.old.Raw) {
		t.Errorf("verification %+v", v)
	}
}

func (t TemplateID) withoutName() TemplateID { t.Name = ""; return t }

func TestBuildCSRIsStandard(t *testing.T) {
	key := testKey(t, kAlt)
	san, err := SANExtension("carol@contoso.test", "carol@contoso.test")
	if err != nil {
		t.Fatal(err)
	}
	der, err := BuildCSR(key, pkix.Name{CommonName: "Carol"}, []pkix.Extension{san},
		Attribute{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 13, 2, 3}, Values: [][]byte{mustMarshal(t, "10.0.26100.2")}})
	if err != nil {
		t.Fatal(err)
	}
	xr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := xr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	if xr.Subject.CommonName != "Carol" || len(xr.EmailAddresses) != 1 {
		t.Errorf("x509 view: %v %v", xr.Subject, xr.EmailAddresses)
	}
	upns, emails, ok := sanIdentities(san.Value)
	if d := cmp.Diff([]any{[]string{"carol@contoso.test"}, []string{"carol@contoso.test"}, true}, []any{upns, emails, ok}); d != "" {
		t.Error(d)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPendingApproveDenyRetrieve(t *testing.T) {
	e := newEnv(t, nil)
	tp := sclTemplate()
	tp.ValidExistingCertificate, tp.PendAllRequests = false, true
	e.ca.SetTemplate(tp)
	submit := func() *Response {
		resp := e.submitRenewal(t)
		if resp.Disposition != Pending {
			t.Fatalf("disposition %v", resp.Disposition)
		}
		return resp
	}
	a, b := submit(), submit()
	e.clk.Advance(24 * time.Hour) // approval the next day: validity starts then
	approved, err := e.ca.Approve(a.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	denied, err := e.ca.Deny(b.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	ra, _ := e.ca.Retrieve(a.RequestID)
	rb, _ := e.ca.Retrieve(b.RequestID)
	type st struct {
		D         Disposition
		Code      winerr.Code
		NotBefore time.Time
	}
	got := []st{{approved.Disposition, codeOf(approved.Status), approved.Cert.NotBefore},
		{denied.Disposition, codeOf(denied.Status), time.Time{}},
		{ra.Disposition, 0, ra.Cert.NotBefore}, {rb.Disposition, codeOf(rb.Status), time.Time{}}}
	want := []st{{Issued, 0, e.clk.Now()}, {Denied, winerr.CERTSRV_E_ADMIN_DENIED_REQUEST, time.Time{}},
		{Issued, 0, e.clk.Now()}, {Denied, winerr.CERTSRV_E_ADMIN_DENIED_REQUEST, time.Time{}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if _, err := e.ca.Approve(a.RequestID); err == nil {
		t.Error("approving twice succeeded")
	}
}

func TestIssueFromCSR(t *testing.T) {
	e := newEnv(t, nil)
	type res struct {
		D    Disposition
		Code winerr.Code
	}
	csrNoTemplate, err := BuildCSR(testKey(t, kAlt), pkix.Name{CommonName: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(csrNoTemplate)
	bad[len(bad)-5] ^= 1
	var got []res
	for _, c := range []struct {
		der  []byte
		tmpl TemplateID
	}{
		{csrNoTemplate, TemplateID{}},
		{csrNoTemplate, TemplateID{Name: "cardharnesssmartcardlogon"}},
		{bad, tmplSCL},
		{[]byte{0x30, 0x03, 0x02, 0x01, 0x00}, tmplSCL},
	} {
		r, err := e.ca.IssueFromCSR(c.der, c.tmpl, alice)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res{r.Disposition, codeOf(r.Status)})
	}
	want := []res{{Denied, winerr.CERTSRV_E_NO_CERT_TYPE}, {Issued, 0}, {Denied, winerr.NTE_BAD_SIGNATURE}, {Denied, winerr.ERROR_INVALID_DATA}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestCertsOnlyRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	der, err := EncodeCertsOnly(e.old, e.ca.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertsOnly(der)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for _, c := range certs {
		got = append(got, c.Raw)
	}
	if d := cmp.Diff(sortedDER([][]byte{e.old.Raw, e.ca.Certificate().Raw}), got); d != "" {
		t.Error(d)
	}
}

func TestErrorsIsAs(t *testing.T) {
	err := error(wrapErr(winerr.NTE_BAD_SIGNATURE, 5, errors.New("crypto/rsa: verification error"), "signer"))
	var re *RequestError
	if !errors.Is(err, winerr.NTE_BAD_SIGNATURE) || errors.Is(err, winerr.CERT_E_EXPIRED) || !errors.As(err, &re) || re.Check != 5 {
		t.Errorf("errors.Is/As on %v", err)
	}
	if got, want := (&RequestError{Code: winerr.CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE}).Error(),
		"CERTSRV_E_BAD_RENEWAL_CERT_ATTRIBUTE (0x8009400E): the request contains an invalid renewal certificate attribute"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
}
