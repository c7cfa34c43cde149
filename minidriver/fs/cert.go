package fs

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
)

// Certificate file header (docs/reference/gids-protocol.md §3.9).
const (
	CertHeaderSize = 4
	MaxCertSize    = 0xFFFF // the header's length is 16 bits
)

// zlibWriters and zlibReaders keep zlib writers and readers between
// certificates: a new writer allocates and clears the compressor's state
// (hundreds of KiB), which was a tenth of a sweep's time, and a new reader
// its 32 KiB window; Reset makes one behave as a new one, so the bytes
// (and the errors) are the same. A few are kept, not a sync.Pool: a pool
// is emptied by every garbage collection, and the runner collects often.
var (
	zlibWriters = make(chan *zlib.Writer, 4)
	zlibReaders = make(chan io.ReadCloser, 4) // zlib's reader, a zlib.Resetter
)

func getZlibWriter(w io.Writer) *zlib.Writer {
	select {
	case zw := <-zlibWriters:
		zw.Reset(w)
		return zw
	default:
		return zlib.NewWriter(w)
	}
}

func putZlibWriter(zw *zlib.Writer) {
	zw.Reset(nil) // do not keep the last output alive
	select {
	case zlibWriters <- zw:
	default:
	}
}

// getZlibReader is zlib.NewReader(src), reusing a reader when one is kept.
func getZlibReader(src io.Reader) (io.ReadCloser, error) {
	select {
	case zr := <-zlibReaders:
		if err := zr.(zlib.Resetter).Reset(src, nil); err != nil {
			putZlibReader(zr)
			return nil, err
		}
		return zr, nil
	default:
		return zlib.NewReader(src)
	}
}

func putZlibReader(zr io.ReadCloser) {
	select {
	case zlibReaders <- zr:
	default:
	}
}

// EncodeCert encodes a DER certificate as a kxcNN/kscNN file the way
// OpenSC's gids_encode_certificate and the Windows minidriver do:
// 01 00 (compression format), the uncompressed length as uint16 LE, then a
// zlib stream (RFC 1950, default level, so it starts 78 9C like OpenSC's).
// Base CSP compresses certificates itself for cards without
// fCertificateCompression, which is why the format is the minidriver's
// rather than GIDS's. An empty certificate or one over 65535 bytes cannot
// be written.
func EncodeCert(der []byte) ([]byte, error) {
	if len(der) == 0 {
		return nil, formatErr("certificate", 2, "empty certificate")
	}
	if len(der) > MaxCertSize {
		return nil, formatErr("certificate", 2, "certificate is %d bytes; the 16-bit length field allows at most %d", len(der), MaxCertSize)
	}
	var buf bytes.Buffer
	buf.Write([]byte{0x01, 0x00, 0, 0})
	binary.LittleEndian.PutUint16(buf.Bytes()[2:], uint16(len(der)))
	zw := getZlibWriter(&buf)
	defer putZlibWriter(zw)
	if _, err := zw.Write(der); err != nil {
		return nil, err // bytes.Buffer does not fail; kept for the contract
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeCert returns the DER certificate in a kxcNN/kscNN file, as strict
// as OpenSC 0.23's gids_read_binary: header 01 00 or "unknown compression
// method", a zlib stream (not raw deflate or gzip, since OpenSC uses
// uncompress()), and a decompressed size equal to the header's length.
// Uncompressed certificates are not accepted: nothing in the GIDS or
// minidriver material defines another header.
//
// Two choices go beyond OpenSC. Decompression stops one byte past the
// header's length (at most 65536 bytes), so a small file cannot expand
// into a large allocation. Bytes after the end of the zlib stream are an
// error, where zlib's uncompress() ignores them: no writer produces them
// and re-encoding would silently drop them. A zero length is also an
// error, matching EncodeCert.
func DecodeCert(b []byte) ([]byte, error) {
	if len(b) < CertHeaderSize {
		return nil, formatErr("certificate", 0, "%d bytes, shorter than the %d-byte header", len(b), CertHeaderSize)
	}
	if b[0] != 0x01 || b[1] != 0x00 {
		return nil, formatErr("certificate", 0, "unknown compression method %04X (want 0001, written 01 00)", binary.LittleEndian.Uint16(b))
	}
	want := int(binary.LittleEndian.Uint16(b[2:]))
	if want == 0 {
		return nil, formatErr("certificate", 2, "uncompressed length is 0")
	}
	src := bytes.NewReader(b[CertHeaderSize:])
	zr, err := getZlibReader(src)
	if err != nil {
		return nil, formatErr("certificate", CertHeaderSize, "zlib header: %v", err)
	}
	defer putZlibReader(zr)
	der, err := readAllInto(make([]byte, 0, want+1), io.LimitReader(zr, int64(want)+1))
	if len(der) > want {
		return nil, formatErr("certificate", 2, "zlib stream inflates to more than the %d bytes the header announces", want)
	}
	if err != nil {
		return nil, formatErr("certificate", CertHeaderSize, "zlib stream: %v", err)
	}
	if len(der) < want {
		return nil, formatErr("certificate", 2, "zlib stream inflates to %d bytes, header announces %d", len(der), want)
	}
	if n := src.Len(); n > 0 {
		return nil, formatErr("certificate", len(b)-n, "%d bytes after the end of the zlib stream", n)
	}
	return der, nil
}

// readAllInto is io.ReadAll appending to buf: with buf's capacity the most
// r can give (a LimitReader's limit) the result is allocated once; it
// grows, as io.ReadAll does, if r gives more.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return buf, err
		}
	}
}

// CertFileName returns the mscp file name of container index's
// certificate: kxcNN for AT_KEYEXCHANGE, kscNN for AT_SIGNATURE, NN two
// upper-case hex digits. Upper case follows OpenSC (gids_save_certificate
// uses %02X) because OpenSC 0.23 looks names up with strcmp: a card
// carrying kxc0a would hide index 10's certificate from it. Windows' own
// spelling beyond index 9 is unknown (docs/reference/gids-protocol.md §9), which is why
// ParseCertFileName accepts both cases. It panics on an index outside
// 0..255 or an unknown key spec, which are programming errors.
func CertFileName(index int, spec KeySpec) string {
	if index < 0 || index > 0xFF {
		panic(fmt.Sprintf("fs: CertFileName: container index %d does not fit two hex digits", index))
	}
	switch spec {
	case AT_KEYEXCHANGE:
		return fmt.Sprintf("kxc%02X", index)
	case AT_SIGNATURE:
		return fmt.Sprintf("ksc%02X", index)
	}
	panic(fmt.Sprintf("fs: CertFileName: %v", spec))
}

// ParseCertFileName recognises a certificate file name and returns its
// container index and key spec. Names are matched case-insensitively
// (MS-FS file names are), so kxc0a, kxc0A and KXC0A are all container
// 10. The digits are always hex: OpenSC's Windows minidriver names files
// with decimal %02i, and its kxc10 for container 10 reads here as
// container 16 — the mismatch scenario S14 is about — while decimal-only
// forms cannot be told apart from hex ones, so no attempt is made.
func ParseCertFileName(name string) (index int, spec KeySpec, ok bool) {
	if len(name) != 5 {
		return 0, 0, false
	}
	switch {
	case equalFoldASCII(name[:3], "kxc"):
		spec = AT_KEYEXCHANGE
	case equalFoldASCII(name[:3], "ksc"):
		spec = AT_SIGNATURE
	default:
		return 0, 0, false
	}
	hi, ok1 := hexVal(name[3])
	lo, ok2 := hexVal(name[4])
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	return hi<<4 | lo, spec, true
}

func hexVal(c byte) (int, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}
