// Package relay is the renewal relay of the founding document: an HTTPS
// server on loopback that requires a TLS client certificate issued by the
// test CA (harness/ca), maps it to the requester's identity, and submits
// the request to the CA on the user's behalf ("impersonating" the user:
// ca.SubmitOptions.Delegated).
//
// Two interfaces share the server:
//
//   - the founding document's shape: POST /certsrv/submit with a base64
//     CMC (or PKCS#10) request; the answer is JSON with the CR_DISP_*
//     disposition, its message, the request ID, the HRESULT status and,
//     when issued, the base64 certificate and certs-only PKCS#7. GET
//     /certsrv/retrieve?id=N retrieves a pending request later (only by
//     the identity that submitted it), as ICertRequest::RetrievePending.
//   - EST (RFC 7030 §4): GET /.well-known/est/cacerts (no client
//     certificate needed, RFC 7030 §4.1.1), POST /.well-known/est/simpleenroll and
//     /simplereenroll (PKCS#10 in, certs-only PKCS#7 out, RFC 7030 §4.2) and
//     /fullcmc (CMC in, CMC Full PKI Response out, RFC 7030 §4.3), every body
//     base64 with Content-Transfer-Encoding: base64.
//
// Faults are injected per request (Server.Inject): an HTTP 500, the
// connection dropped after the CA issued, a timeout (the relay holds the
// request until the client gives up), a CA denial or pend, the CA looked
// up after impersonation ("file not found", the founding document's first
// bug; Config.LookupCAAfterImpersonation makes it permanent), and a CA
// profile failing delegated certificate-based requests with 0x80070525
// (its second bug).
//
// The relay speaks HTTP/1.1 only (so a dropped connection is a real
// one). Client certificates are verified against the CA at the CA's
// (virtual) time; revoked ones are refused in the handshake. TLS 1.2 and
// 1.3 are offered; a card whose middleware cannot sign RSA-PSS (OpenSC
// 0.23's GIDS driver) must use TLS 1.2 with PKCS#1 v1.5 signatures.
package relay
