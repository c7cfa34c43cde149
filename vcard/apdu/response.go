package apdu

// Response is a response APDU: optional data followed by the status word.
type Response struct {
	Data []byte
	SW   Status
}

// Err returns a data-less response carrying sw; it is the usual way for a
// handler to refuse a command.
func Err(sw Status) Response { return Response{SW: sw} }

// Bytes encodes the response as data || SW1 SW2.
func (r Response) Bytes() []byte {
	out := make([]byte, 0, len(r.Data)+2)
	out = append(out, r.Data...)
	return append(out, r.SW.SW1(), r.SW.SW2())
}

// ParseResponse splits a response APDU into data and status word. The
// only malformed shape is one without a complete status word. Data is a
// copy and nil when the response carries none.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, perr("SW", 0, "response needs 2 status bytes, have %d", len(b))
	}
	n := len(b) - 2
	r := Response{SW: Status(b[n])<<8 | Status(b[n+1])}
	if n > 0 {
		r.Data = append([]byte(nil), b[:n]...)
	}
	return r, nil
}
