package relay

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzHandlers: any body, content type and path from an authenticated
// client gets an answer below 500 (no fault is injected) and never a
// panic; the CA is the real one.
func FuzzHandlers(f *testing.F) {
	e := newEnv(f, nil)
	h := e.srv.Handler()
	for _, seed := range []struct{ path, ct, body string }{
		{PathSubmit, "", base64.StdEncoding.EncodeToString([]byte{0x30, 0x03, 0x02, 0x01, 0x00})},
		{PathSimpleEnroll, "application/pkcs10", "MIIB"},
		{PathFullCMC, "application/pkcs7-mime; smime-type=CMC-request", "AAAA"},
		{PathRetrieve + "?id=1", "", ""},
		{PathSimpleReenroll, "application/pkcs10; x=\"", "\x00\xff"},
	} {
		f.Add(seed.path, seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, path, ct string, body []byte) {
		if len(path) == 0 || path[0] != '/' {
			path = "/" + path
		}
		req, err := http.NewRequest(http.MethodPost, "https://relay"+path, bytes.NewReader(body))
		if err != nil {
			return // not a URL: net/http never hands such a request to a handler
		}
		req.Header.Set("Content-Type", ct)
		req.TLS = &tls.ConnectionState{PeerCertificates: e.peer()}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %q: HTTP %d %s", path, ct, w.Code, w.Body.String())
		}
	})
}
