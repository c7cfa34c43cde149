package ca

import "testing"

// FuzzParseCMCResponse: a Full PKI Response from anywhere (the EST
// client side reads it) never panics; the seeds, the CA's own responses,
// parse back to their status.
func FuzzParseCMCResponse(f *testing.F) {
	e := newEnv(f, nil)
	want := map[Disposition]int{Issued: CMCSuccess, Denied: CMCFailed, Pending: CMCPending, Error: CMCFailed}
	for _, d := range []Disposition{Issued, Denied, Pending, Error} {
		resp := &Response{Disposition: d, RequestID: 7}
		if d == Issued {
			resp.Cert = e.old
		}
		der, err := e.ca.EncodeCMCResponse(resp)
		if err != nil {
			f.Fatal(err)
		}
		if r, err := ParseCMCResponse(der, e.ca.Certificate()); err != nil || r.Status != want[d] {
			f.Fatalf("%s: %+v %v", d.CRName(), r, err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		_, _ = ParseCMCResponse(der, e.ca.Certificate())
	})
}
