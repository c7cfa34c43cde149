package ca

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/winerr"
)

// TestRegInfoTemplate: the template named by a CMC RegInfo pair
// CertificateTemplate (the founding document's way), alone or next to a
// template extension it overrides.
func TestRegInfoTemplate(t *testing.T) {
	cases := []struct {
		name    string
		reg     map[string]string
		omitExt bool
		extTmpl TemplateID
		want    Disposition
		code    winerr.Code
		tmpl    TemplateID
	}{
		{name: "pair by name, no extension", reg: map[string]string{"CertificateTemplate": tmplSCL.Name}, omitExt: true, want: Issued, tmpl: tmplSCL},
		{name: "pair by OID, no extension", reg: map[string]string{"CertificateTemplate": tmplSCL.OID.String()}, omitExt: true, want: Issued, tmpl: tmplSCL},
		{name: "pair name is case-insensitive", reg: map[string]string{"certificatetemplate": tmplSCL.Name}, omitExt: true, want: Issued, tmpl: tmplSCL},
		// The pair wins: the extension names tmplOther (which would pend).
		{name: "pair overrides extension", reg: map[string]string{"CertificateTemplate": tmplSCL.Name}, extTmpl: tmplOther, want: Issued, tmpl: tmplSCL},
		{name: "extension only", extTmpl: tmplSCL, want: Issued, tmpl: tmplSCL},
		{name: "neither", omitExt: true, want: Denied, code: winerr.CERTSRV_E_NO_CERT_TYPE},
		{name: "pair names an unknown template", reg: map[string]string{"CertificateTemplate": "NoSuchTemplate"}, omitExt: true, want: Denied, code: winerr.CERTSRV_E_UNSUPPORTED_CERT_TYPE},
		{name: "pair is a malformed OID", reg: map[string]string{"CertificateTemplate": "1.3.x"}, omitExt: true, want: Denied, code: winerr.ERROR_INVALID_DATA},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			r := e.renewal(t)
			r.Template, r.OmitTemplate, r.RegInfo = tc.extTmpl, tc.omitExt, tc.reg
			der, err := BuildRenewal(r)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.ca.SubmitRenewal(der, alice)
			if err != nil {
				t.Fatal(err)
			}
			type out struct {
				D    Disposition
				Code winerr.Code
				Tmpl TemplateID
			}
			got := out{resp.Disposition, codeOf(resp.Status), TemplateID{}}
			if resp.Cert != nil {
				got.Tmpl, _ = TemplateOf(resp.Cert)
			}
			want := out{tc.want, tc.code, TemplateID{}}
			if tc.want == Issued {
				want.Tmpl = tc.tmpl.withoutName()
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s\n%s", d, resp.Explanation)
			}
		})
	}
}

// TestPendingIssuedDaysLater: a pended renewal is approved three days
// later on the CA's clock; retrieval before that is still pending, after
// it the certificate is issued with validity from the retrieval; a revoked
// certificate then reads as Revoked.
func TestPendingIssuedDaysLater(t *testing.T) {
	e := newEnv(t, nil)
	tp := sclTemplate()
	tp.ValidExistingCertificate, tp.PendAllRequests, tp.ApprovalDelay = false, true, 72*time.Hour
	e.ca.SetTemplate(tp)
	resp := e.submitRenewal(t)
	id := resp.RequestID
	var got []Disposition
	retrieve := func() *Response {
		r, err := e.ca.Retrieve(id)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.Disposition)
		return r
	}
	got = append(got, resp.Disposition)
	e.clk.Advance(24 * time.Hour)
	retrieve()
	e.clk.Advance(48 * time.Hour)
	issued := retrieve()
	issuedAt := e.clk.Now()
	e.clk.Advance(time.Hour)
	again := retrieve()
	e.ca.Revoke(issued.Cert.SerialNumber)
	revoked := retrieve()
	want := []Disposition{Pending, Pending, Issued, Issued, Revoked}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("dispositions (-want +got):\n%s", d)
	}
	if !issued.Cert.NotBefore.Equal(issuedAt) {
		t.Errorf("NotBefore %v, want the retrieval time %v", issued.Cert.NotBefore, issuedAt)
	}
	if !again.Cert.Equal(issued.Cert) || !revoked.Cert.Equal(issued.Cert) {
		t.Error("later retrievals returned another certificate")
	}
	if _, err := e.ca.Retrieve(id + 100); err == nil {
		t.Error("retrieving an unknown request succeeded")
	}
}

func TestIssueOutOfBand(t *testing.T) {
	e := newEnv(t, nil)
	tp := sclTemplate()
	tp.ValidExistingCertificate, tp.PendAllRequests = false, true
	e.ca.SetTemplate(tp)
	resp := e.submitRenewal(t)
	if _, err := e.ca.IssueOutOfBand(resp.RequestID); err != nil {
		t.Fatal(err)
	}
	r, err := e.ca.Retrieve(resp.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Disposition != IssuedOutOfBand || r.Cert == nil || !r.Disposition.HasCertificate() {
		t.Errorf("got %v (cert %v), want CR_DISP_ISSUED_OUT_OF_BAND with the certificate", r.Disposition.CRName(), r.Cert != nil)
	}
}

// TestDelegatedCertRequests: the CA profile of the founding document's
// second bug fails a delegated certificate-signed request with 0x80070525;
// the same request submitted by the user, or to a normal CA, is issued.
func TestDelegatedCertRequests(t *testing.T) {
	for _, tc := range []struct {
		name           string
		profile, deleg bool
		want           Disposition
		code           winerr.Code
	}{
		{"buggy profile, delegated", true, true, Error, winerr.ERROR_NO_SUCH_USER},
		{"buggy profile, user's own call", true, false, Issued, 0},
		{"normal CA, delegated", false, true, Issued, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.FailDelegatedCertRequests = tc.profile })
			der, err := BuildRenewal(e.renewal(t))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.ca.SubmitCMC(der, SubmitOptions{Requester: alice, Delegated: tc.deleg})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Disposition != tc.want || codeOf(resp.Status) != tc.code {
				t.Errorf("got %s %v, want %s %v", resp.Disposition.CRName(), resp.Status, tc.want.CRName(), tc.code)
			}
			if tc.code != 0 && !errors.Is(resp.Status, tc.code) {
				t.Errorf("errors.Is(status, 0x%08X) false", uint32(tc.code))
			}
		})
	}
}

func TestDispositionNames(t *testing.T) {
	want := map[Disposition]string{
		Incomplete: "CR_DISP_INCOMPLETE", Error: "CR_DISP_ERROR", Denied: "CR_DISP_DENIED", Issued: "CR_DISP_ISSUED",
		IssuedOutOfBand: "CR_DISP_ISSUED_OUT_OF_BAND", Pending: "CR_DISP_UNDER_SUBMISSION", Revoked: "CR_DISP_REVOKED",
	}
	goNames := map[string]bool{}
	for d, n := range want {
		if g := d.String(); strings.HasPrefix(g, "Disposition(") || goNames[g] {
			t.Errorf("%s: String() = %q, want a name of its own", n, g)
		} else {
			goNames[g] = true
		}
		if d.CRName() != n {
			t.Errorf("%d: %s, want %s", int(d), d.CRName(), n)
		}
		for _, s := range []string{n, n[len("CR_DISP_"):], "  " + n + " "} {
			if p, err := ParseDisposition(s); err != nil || p != d {
				t.Errorf("ParseDisposition(%q) = %v, %v", s, p, err)
			}
		}
	}
	if _, err := ParseDisposition("granted"); err == nil {
		t.Error("ParseDisposition(granted) succeeded")
	}
}
