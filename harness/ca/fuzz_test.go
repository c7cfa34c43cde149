package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cardharness/cardharness/winerr"
)

// The fuzz environment is deterministic (fixed keys, clock and serial
// stream), so seeds built in the coordinator mean the same in every worker.
var (
	fuzzOnce  sync.Once
	fuzzE     *env
	fuzzSeeds [][]byte
)

func fuzzSetup(tb testing.TB) (*env, [][]byte) {
	fuzzOnce.Do(func() {
		e := newEnv(tb, nil)
		e.issueAgent(tb, true)
		tp := sclTemplate()
		tp.RequiredSignatures = 0
		e.ca.SetTemplate(tp)
		mods := []func(*RenewalRequest){
			func(*RenewalRequest) {},
			func(r *RenewalRequest) { r.ReverseSigners = true },
			func(r *RenewalRequest) { r.OmitRenewalAttribute = true },
			func(r *RenewalRequest) { r.OmitOldSigner = true },
			func(r *RenewalRequest) { r.CorruptDigest = OldSigner },
			func(r *RenewalRequest) { r.Template = tmplOther },
			func(r *RenewalRequest) { r.Agent, r.AgentKey, r.OnBehalfOf = e.agent, testKey(tb, kAgent), aliceNT },
			func(r *RenewalRequest) { r.Subject = []byte{0x30, 0} },
		}
		for _, m := range mods {
			r := e.renewal(tb)
			m(&r)
			der, err := BuildRenewal(r)
			if err != nil {
				tb.Fatal(err)
			}
			fuzzSeeds = append(fuzzSeeds, der)
		}
		p7, err := EncodeCertsOnly(e.old, e.ca.Certificate())
		if err != nil {
			tb.Fatal(err)
		}
		csr, err := BuildCSR(testKey(tb, kAlt), pkix.Name{CommonName: "x"}, nil)
		if err != nil {
			tb.Fatal(err)
		}
		fuzzSeeds = append(fuzzSeeds, p7, csr)
		fuzzE = e
	})
	if fuzzE == nil {
		tb.Fatal("fuzz setup failed")
	}
	return fuzzE, fuzzSeeds
}

// The fuzz inputs are edits of the seed requests rather than whole
// requests: a CMC renewal is ~5 KB, and Go minimises every new interesting
// input for up to a minute, which with 5 KB inputs would eat the whole
// run. An edit is (seed, mode, offset, bytes): overwrite, insert, delete
// len(bytes)+1, XOR, or mode 4: the bytes alone (arbitrary input, so any
// byte string is still reachable).
func edit(seeds [][]byte, seed, mode uint8, off uint16, b []byte) []byte {
	if mode%5 == 4 {
		return b
	}
	d := bytes.Clone(seeds[int(seed)%len(seeds)])
	p := int(off) % (len(d) + 1)
	switch mode % 5 {
	case 0:
		for i, x := range b {
			if p+i < len(d) {
				d[p+i] = x
			} else {
				d = append(d, x)
			}
		}
	case 1:
		d = slices.Insert(d, p, b...)
	case 2:
		d = slices.Delete(d, p, min(p+len(b)+1, len(d)))
	case 3:
		for i, x := range b {
			if p+i < len(d) {
				d[p+i] ^= x
			}
		}
	}
	return d
}

func addEditSeeds(f *testing.F, seeds [][]byte) {
	for i, s := range seeds {
		f.Add(uint8(i), uint8(0), uint16(0), []byte{})            // the seed itself
		f.Add(uint8(i), uint8(3), uint16(len(s)/2), []byte{0x01}) // a bit flip in the middle
		f.Add(uint8(i), uint8(2), uint16(len(s)-40), []byte{0})   // a cut near the end
	}
	f.Add(uint8(0), uint8(4), uint16(0), []byte{0x30, 0x03, 0x06, 0x01, 0x00})
}

func FuzzParseRenewal(f *testing.F) {
	_, seeds := fuzzSetup(f)
	addEditSeeds(f, seeds)
	f.Fuzz(func(t *testing.T, seed, mode uint8, off uint16, b []byte) {
		data := edit(seeds, seed, mode, off, b)
		p, err := ParseRenewal(data)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Code != winerr.ERROR_INVALID_DATA {
				t.Fatalf("ParseRenewal error %v is not ERROR_INVALID_DATA", err)
			}
		} else {
			if _, err := p.Verify(); err != nil && codeOf(err) == 0 {
				t.Fatalf("Verify error without a code: %v", err)
			}
			_, _ = p.RenewalCertificate()
			_, _ = RegInfo(p.Controls)
			for _, si := range p.Signers {
				_ = si.SID()
				_, _ = si.ContentType()
				_, _ = si.MessageDigest()
			}
			if csr := p.CSR(); csr != nil {
				_ = csr.SubjectKeyID()
			}
		}
		if csr, err := ParseCSR(data); err == nil {
			_ = csr.CheckSignature()
			_, _, _ = csr.Template()
			_, _ = csr.Subject()
		}
		_, _ = ParseCertsOnly(data)
	})
}

func FuzzSubmitRenewal(f *testing.F) {
	e, seeds := fuzzSetup(f)
	addEditSeeds(f, seeds[:8])
	f.Fuzz(func(t *testing.T, seed, mode uint8, off uint16, b []byte) {
		data := edit(seeds[:8], seed, mode, off, b)
		requester := alice
		if off%7 == 3 { // now and then, a server submitting the user's renewal
			requester = webServer
		}
		resp, err := e.ca.SubmitRenewal(data, requester)
		if err != nil {
			t.Fatalf("CA failure: %v", err)
		}
		if resp == nil {
			t.Fatal("nil response")
		}
		switch resp.Disposition {
		case Denied:
			if resp.Cert != nil || codeOf(resp.Status) == 0 {
				t.Fatalf("denied with cert %v, status %v", resp.Cert != nil, resp.Status)
			}
			return
		case Issued, Pending:
		default:
			t.Fatalf("disposition %v", resp.Disposition)
		}
		// Issued or pending: the request must verify, checked here
		// without the package's verifier.
		csrKey, err := independentlyVerified(data)
		if err != nil {
			t.Fatalf("CA said %v for a request that does not verify: %v (%s)", resp.Disposition, err, resp.Explanation)
		}
		if resp.Disposition == Issued && !PublicKeyEqual(csrKey, resp.Cert.PublicKey) {
			t.Fatal("issued certificate is not for the PKCS#10 key")
		}
		if resp.Renewal {
			p, _ := ParseRenewal(data)
			if len(p.RenewalCertBytes) != 1 || !bytes.Equal(p.RenewalCertBytes[0], resp.OldCert.Raw) {
				t.Fatal("renewal of a certificate other than the one in the attribute")
			}
			if len(p.SignerFor(resp.OldCert)) == 0 {
				t.Fatal("renewal without a signer for the old certificate")
			}
		}
	})
}

// independentlyVerified re-checks a request with crypto/x509 and the
// crypto packages directly (only the DER walk is shared with the package):
// the PKCS#10 signature, and for every SignerInfo the content type, the
// message digest and the signature with the key its sid names.
func independentlyVerified(data []byte) (crypto.PublicKey, error) {
	p, err := ParseRenewal(data)
	if err != nil {
		return nil, err
	}
	sd := p.SignedData
	if !sd.EContentType.Equal(OIDPKIData) || len(p.Requests) != 1 || p.Requests[0].CSR == nil {
		return nil, errors.New("not one PKCS#10 in PKIData")
	}
	xr, err := x509.ParseCertificateRequest(p.Requests[0].Raw)
	if err != nil {
		return nil, err
	}
	if err := xr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("PKCS#10: %w", err)
	}
	var spki struct {
		Alg pkix.AlgorithmIdentifier
		Key asn1.BitString
	}
	if _, err := asn1.Unmarshal(xr.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.Key.Bytes)
	primary := false
	for _, si := range p.Signers {
		var pub crypto.PublicKey
		switch {
		case si.BySKI() && bytes.Equal(si.SubjectKeyID, sum[:]):
			pub, primary = xr.PublicKey, true
		default:
			for _, c := range p.Certificates {
				if si.BySKI() && bytes.Equal(si.SubjectKeyID, c.SubjectKeyId) ||
					!si.BySKI() && bytes.Equal(si.RawIssuer, c.RawIssuer) && si.SerialNumber.Cmp(c.SerialNumber) == 0 {
					pub = c.PublicKey
				}
			}
		}
		if pub == nil {
			return nil, fmt.Errorf("signer %s unresolved", si.SID())
		}
		var h crypto.Hash
		switch si.DigestAlgorithm.String() {
		case "2.16.840.1.101.3.4.2.1":
			h = crypto.SHA256
		case "2.16.840.1.101.3.4.2.2":
			h = crypto.SHA384
		case "2.16.840.1.101.3.4.2.3":
			h = crypto.SHA512
		case "1.3.14.3.2.26":
			h = crypto.SHA1
		default:
			return nil, errors.New("digest algorithm")
		}
		ct, err := si.ContentType()
		if err != nil || !ct.Equal(OIDPKIData) {
			return nil, errors.New("content type attribute")
		}
		md, err := si.MessageDigest()
		d := h.New()
		d.Write(sd.EContent)
		if err != nil || !bytes.Equal(md, d.Sum(nil)) {
			return nil, errors.New("message digest")
		}
		signed := bytes.Clone(si.RawSignedAttrs)
		signed[0] = 0x31
		d = h.New()
		d.Write(signed)
		switch k := pub.(type) {
		case *rsa.PublicKey:
			err = rsa.VerifyPKCS1v15(k, h, d.Sum(nil), si.Signature)
		case *ecdsa.PublicKey:
			if !ecdsa.VerifyASN1(k, d.Sum(nil), si.Signature) {
				err = errors.New("ecdsa")
			}
		default:
			err = errors.New("key type")
		}
		if err != nil {
			return nil, fmt.Errorf("signer %s: %w", si.SID(), err)
		}
	}
	if !primary {
		return nil, errors.New("no primary signer")
	}
	return xr.PublicKey, nil
}

func TestFuzzSeedsVerify(t *testing.T) {
	e, seeds := fuzzSetup(t)
	type r struct {
		D        Disposition
		Verified bool
	}
	var got []r
	for _, s := range seeds[:8] {
		resp, err := e.ca.SubmitRenewal(s, alice)
		if err != nil {
			t.Fatal(err)
		}
		_, verr := independentlyVerified(s)
		got = append(got, r{resp.Disposition, verr == nil})
	}
	// The oracle of FuzzSubmitRenewal agrees with the CA on the seeds.
	want := []r{{Issued, true}, {Issued, true}, {Issued, true}, {Denied, true}, {Denied, false},
		{Pending, true}, {Issued, true}, {Issued, true}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("seed %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
