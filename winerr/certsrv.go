package winerr

// Codes of the renewal relay's path to the CA (harness/relay, issue 12):
// kept in their own file so the error-vocabulary work on winerr.go merges
// cleanly.
const (
	// ERROR_FILE_NOT_FOUND, HRESULT_FROM_WIN32(2): the relay looked up the
	// CA (the CA configuration string, read from the machine's
	// configuration) after impersonating the user, whose token may not
	// read it: the founding document's first bug. The fix is to look the
	// CA up before impersonating [S founding document].
	ERROR_FILE_NOT_FOUND Code = 0x80070002
	// ERROR_NO_SUCH_USER, HRESULT_FROM_WIN32(1317): "The specified account
	// does not exist." The founding document's second bug: a CA that
	// fails delegated (impersonated), certificate-based requests with
	// 0x80070525 [S founding document; the cause on the CA side is not
	// known, I].
	ERROR_NO_SUCH_USER Code = 0x80070525
	// ERROR_TIMEOUT, HRESULT_FROM_WIN32(1460): the relay gave up waiting
	// for the CA [I].
	ERROR_TIMEOUT Code = 0x800705B4
	// SEC_E_NO_CREDENTIALS: Schannel has no usable client credential (the
	// certificate has no private key reference).
	SEC_E_NO_CREDENTIALS Code = 0x8009030E
	// HTTP_E_STATUS_SERVER_ERROR, HTTP_E_STATUS_BAD_GATEWAY,
	// HTTP_E_STATUS_GATEWAY_TIMEOUT: an HTTP 500, 502, 504 answer
	// (0x80190000 + the status, winerror.h) without a CA status.
	HTTP_E_STATUS_SERVER_ERROR    Code = 0x801901F4
	HTTP_E_STATUS_BAD_GATEWAY     Code = 0x801901F6
	HTTP_E_STATUS_GATEWAY_TIMEOUT Code = 0x801901F8
	// ERROR_WINHTTP_TIMEOUT (12002) and ERROR_WINHTTP_CONNECTION_ERROR
	// (12030) as HRESULTs: the client gave up waiting, or the connection
	// was closed without an answer.
	ERROR_WINHTTP_TIMEOUT          Code = 0x80072EE2
	ERROR_WINHTTP_CONNECTION_ERROR Code = 0x80072EFE
	// E_PENDING: "the data necessary to complete this operation is not
	// yet available": the CA pended the request and the client does not
	// wait for it (it rolls back) [I: the code a client reports is its
	// own choice].
	E_PENDING Code = 0x8000000A
)

// init adds these codes to the table (and the by-name index, built
// before init functions run) that winerr.go keeps.
func init() {
	for _, c := range []struct {
		code       Code
		name, text string
	}{
		{ERROR_FILE_NOT_FOUND, "ERROR_FILE_NOT_FOUND", "the system cannot find the file specified"},
		{ERROR_NO_SUCH_USER, "ERROR_NO_SUCH_USER", "the specified account does not exist"},
		{ERROR_TIMEOUT, "ERROR_TIMEOUT", "this operation returned because the timeout period expired"},
		{SEC_E_NO_CREDENTIALS, "SEC_E_NO_CREDENTIALS", "no credentials are available in the security package"},
		{HTTP_E_STATUS_SERVER_ERROR, "HTTP_E_STATUS_SERVER_ERROR", "internal server error (HTTP 500)"},
		{HTTP_E_STATUS_BAD_GATEWAY, "HTTP_E_STATUS_BAD_GATEWAY", "bad gateway (HTTP 502)"},
		{HTTP_E_STATUS_GATEWAY_TIMEOUT, "HTTP_E_STATUS_GATEWAY_TIMEOUT", "gateway timeout (HTTP 504)"},
		{ERROR_WINHTTP_TIMEOUT, "ERROR_WINHTTP_TIMEOUT", "the operation timed out"},
		{ERROR_WINHTTP_CONNECTION_ERROR, "ERROR_WINHTTP_CONNECTION_ERROR", "the connection with the server was reset or terminated"},
		{E_PENDING, "E_PENDING", "the data necessary to complete this operation is not yet available"},
	} {
		table[c.code] = info{c.name, c.text}
		byName[c.name] = c.code
	}
}
