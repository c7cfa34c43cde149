package fs

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/testutil"
)

var (
	certOnce sync.Once
	certDER  []byte
	certErr  error
)

// testCert returns a self-signed RSA-2048 certificate of exactly 689
// bytes, the size of the certificate in the observed DO
// DF 24 82 02 A7 01 00 B1 02 78 9C … (docs/reference/gids-protocol.md §3.9). The common
// name is padded until the DER has that size; everything else is fixed,
// so the size only depends on the name.
func testCert(t testing.TB) []byte {
	t.Helper()
	certOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			certErr = err
			return
		}
		// The name appears twice (subject and issuer) and moves the size
		// in steps of two; the serial number appears once and fixes odd
		// differences.
		cn, serialLen := "cardharness test", 2
		for range 8 {
			serial := new(big.Int).Lsh(big.NewInt(0x40), uint(8*(serialLen-1)))
			tmpl := &x509.Certificate{
				SerialNumber: serial,
				Subject:      pkix.Name{CommonName: cn},
				NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				NotAfter:     time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
				KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				certErr = err
				return
			}
			switch d := 689 - len(der); {
			case d == 0:
				certDER = der
				return
			case d%2 != 0 && d > 0:
				serialLen++
			case d%2 != 0:
				serialLen--
			case d > 0:
				cn += strings.Repeat("x", d/2)
			default:
				cn = cn[:len(cn)+d/2]
			}
		}
		certErr = errShortCert
	})
	if certErr != nil {
		t.Fatal(certErr)
	}
	return certDER
}

var errShortCert = errors.New("could not build a 689-byte certificate")

func TestCertObservedHeader(t *testing.T) {
	der := testCert(t)
	enc, err := EncodeCert(der)
	if err != nil {
		t.Fatal(err)
	}
	if want := testutil.Hex(t, "01 00 B1 02 78 9C"); !bytes.HasPrefix(enc, want) {
		t.Errorf("header % X, want % X (observed)", enc[:6], want)
	}
	got, err := DecodeCert(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, der) {
		t.Error("round trip changed the certificate")
	}
	if _, err := x509.ParseCertificate(got); err != nil {
		t.Error(err)
	}
}

// zlibStream compresses data with the given level (Windows writes 78 DA,
// OpenSC 78 9C; both must decode).
func zlibStream(t testing.TB, data []byte, level int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zlib.NewWriterLevel(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func certFile(n uint16, stream []byte) []byte {
	h := []byte{0x01, 0x00, 0, 0}
	binary.LittleEndian.PutUint16(h[2:], n)
	return testutil.Cat(h, stream)
}

func TestDecodeCertWriters(t *testing.T) {
	der := testCert(t)
	for _, tt := range []struct {
		name   string
		level  int
		header string
	}{
		{"OpenSC (default level)", zlib.DefaultCompression, "78 9C"},
		{"Windows (best compression, GA FileSystemTest)", zlib.BestCompression, "78 DA"},
		{"stored blocks", zlib.NoCompression, "78 01"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := certFile(uint16(len(der)), zlibStream(t, der, tt.level))
			if !bytes.Equal(f[4:6], testutil.Hex(t, tt.header)) {
				t.Fatalf("stream header % X", f[4:6])
			}
			got, err := DecodeCert(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, der) {
				t.Error("decoded certificate differs")
			}
		})
	}
}

func TestEncodeCertLimits(t *testing.T) {
	max := bytes.Repeat([]byte{0x30}, MaxCertSize)
	enc, err := EncodeCert(max)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc[:4], testutil.Hex(t, "01 00 FF FF")) {
		t.Errorf("header % X", enc[:4])
	}
	if got, err := DecodeCert(enc); err != nil || !bytes.Equal(got, max) {
		t.Errorf("65535-byte round trip: %v", err)
	}
	_, err = EncodeCert(make([]byte, MaxCertSize+1))
	checkFormatErr(t, err, FormatError{File: "certificate", Offset: 2}, "65536 bytes; the 16-bit length field allows at most 65535")
	_, err = EncodeCert(nil)
	checkFormatErr(t, err, FormatError{File: "certificate", Offset: 2}, "empty certificate")
}

func TestDecodeCertErrors(t *testing.T) {
	der := testCert(t)
	n := uint16(len(der))
	good := zlibStream(t, der, zlib.DefaultCompression)
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-1] ^= 0xFF // Adler-32
	var raw, gz bytes.Buffer
	fw, _ := flate.NewWriter(&raw, flate.DefaultCompression)
	fw.Write(der)
	fw.Close()
	gw := gzip.NewWriter(&gz)
	gw.Write(der)
	gw.Close()

	// zlib readers are reused (cert.go): a failed decode must leave
	// nothing behind for the next, so each case is followed by a good one.
	decodeThenGood := func(b []byte) ([]byte, error) {
		out, err := DecodeCert(b)
		if got, gerr := DecodeCert(certFile(n, good)); gerr != nil || !bytes.Equal(got, der) {
			t.Errorf("a good certificate after this one: %v (%d bytes, want %d)", gerr, len(got), len(der))
		}
		return out, err
	}
	checkParseErrors(t, decodeThenGood, []formatErrCase[[]byte]{
		{"empty", nil, FormatError{File: "certificate", Offset: 0}, "0 bytes, shorter than the 4-byte header"},
		{"header only, three bytes", testutil.Hex(t, "01 00 B1"), FormatError{File: "certificate", Offset: 0}, "3 bytes"},
		{"uncompressed DER", der, FormatError{File: "certificate", Offset: 0}, "unknown compression method"},
		{"method 00 00", testutil.Cat(testutil.Hex(t, "00 00"), good), FormatError{File: "certificate", Offset: 0}, "unknown compression method 0000"},
		{"method 02 00", testutil.Cat(testutil.Hex(t, "02 00 B1 02"), good), FormatError{File: "certificate", Offset: 0}, "unknown compression method 0002"},
		{"method 01 01", testutil.Cat(testutil.Hex(t, "01 01 B1 02"), good), FormatError{File: "certificate", Offset: 0}, "unknown compression method 0101"},
		{"length zero", certFile(0, zlibStream(t, nil, zlib.DefaultCompression)), FormatError{File: "certificate", Offset: 2}, "uncompressed length is 0"},
		{"header length one short", certFile(n-1, good), FormatError{File: "certificate", Offset: 2}, "more than the 688 bytes"},
		{"header length one long", certFile(n+1, good), FormatError{File: "certificate", Offset: 2}, "inflates to 689 bytes, header announces 690"},
		{"no stream", certFile(n, nil), FormatError{File: "certificate", Offset: 4}, "zlib header"},
		{"raw deflate", certFile(n, raw.Bytes()), FormatError{File: "certificate", Offset: 4}, "zlib header"},
		{"gzip", certFile(n, gz.Bytes()), FormatError{File: "certificate", Offset: 4}, "zlib header"},
		{"truncated stream", certFile(n, good[:len(good)-10]), FormatError{File: "certificate", Offset: 4}, "zlib stream"},
		{"bad checksum", certFile(n, corrupt), FormatError{File: "certificate", Offset: 4}, "checksum"},
		{"trailing bytes", testutil.Cat(certFile(n, good), []byte{0, 0, 0}), FormatError{File: "certificate", Offset: 4 + len(good)}, "3 bytes after the end of the zlib stream"},
	})
}

// TestDecodeCertBomb feeds a stream that inflates to 64 MiB under a
// header announcing 1000 bytes: decoding must fail after at most 1001
// inflated bytes, without allocating anything near the stream's size.
func TestDecodeCertBomb(t *testing.T) {
	var b bytes.Buffer
	w, _ := zlib.NewWriterLevel(&b, zlib.BestCompression)
	chunk := make([]byte, 1<<20)
	for range 64 {
		w.Write(chunk)
	}
	w.Close()
	f := certFile(1000, b.Bytes())
	t.Logf("bomb: %d bytes inflating to 64 MiB", len(f))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := DecodeCert(f)
	runtime.ReadMemStats(&after)
	checkFormatErr(t, err, FormatError{File: "certificate", Offset: 2}, "more than the 1000 bytes")
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("DecodeCert allocated %d bytes for a 1000-byte certificate", alloc)
	}

	// The largest header value caps inflation at 65536 bytes as well.
	f = certFile(0xFFFF, b.Bytes())
	_, err = DecodeCert(f)
	checkFormatErr(t, err, FormatError{File: "certificate", Offset: 2}, "more than the 65535 bytes")
}

func TestCertFileName(t *testing.T) {
	tests := []struct {
		index int
		spec  KeySpec
		want  string
	}{
		{0, AT_KEYEXCHANGE, "kxc00"},
		{0, AT_SIGNATURE, "ksc00"},
		{1, AT_SIGNATURE, "ksc01"},
		{9, AT_KEYEXCHANGE, "kxc09"},
		{10, AT_KEYEXCHANGE, "kxc0A"},
		{10, AT_SIGNATURE, "ksc0A"},
		{16, AT_SIGNATURE, "ksc10"},
		{MaxContainerIndex, AT_KEYEXCHANGE, "kxc7E"},
		{255, AT_SIGNATURE, "kscFF"},
	}
	for _, tt := range tests {
		got := CertFileName(tt.index, tt.spec)
		if got != tt.want {
			t.Errorf("CertFileName(%d, %v) = %q, want %q", tt.index, tt.spec, got, tt.want)
		}
		i, s, ok := ParseCertFileName(got)
		if !ok || i != tt.index || s != tt.spec {
			t.Errorf("ParseCertFileName(%q) = %d, %v, %v", got, i, s, ok)
		}
	}
	for _, bad := range []struct {
		index int
		spec  KeySpec
	}{{-1, AT_KEYEXCHANGE}, {256, AT_KEYEXCHANGE}, {0, 0}, {0, 3}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("CertFileName(%d, %v) did not panic", bad.index, bad.spec)
				}
			}()
			CertFileName(bad.index, bad.spec)
		}()
	}
}

func TestParseCertFileName(t *testing.T) {
	type res struct {
		Index int
		Spec  KeySpec
		OK    bool
	}
	tests := []struct {
		name string
		want res
	}{
		{"kxc00", res{0, AT_KEYEXCHANGE, true}},
		{"kxc0A", res{10, AT_KEYEXCHANGE, true}}, // OpenSC
		{"kxc0a", res{10, AT_KEYEXCHANGE, true}}, // libgtop11dotnet, MS-FS lower-case advice
		{"KXC0A", res{10, AT_KEYEXCHANGE, true}}, // MS-FS: names are case-insensitive
		{"Ksc7e", res{126, AT_SIGNATURE, true}},  //
		{"ksc10", res{16, AT_SIGNATURE, true}},   // OpenSC minidriver's decimal 10 reads as hex
		{"kxc0g", res{}},                         // not hex
		{"kxc0", res{}},                          // one digit
		{"kxc000", res{}},                        // three digits
		{"kxc", res{}},                           //
		{"", res{}},                              //
		{"kyc00", res{}},                         //
		{"cmapfile", res{}},                      //
		{"msroots", res{}},                       //
		{"kxc\u0660\u0661", res{}},               // Arabic-Indic digits are not hex
		{"kxc 0", res{}},                         //
	}
	for _, tt := range tests {
		i, s, ok := ParseCertFileName(tt.name)
		if d := cmp.Diff(tt.want, res{i, s, ok}); d != "" {
			t.Errorf("ParseCertFileName(%q) (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestKeySpecString(t *testing.T) {
	for k, want := range map[KeySpec]string{AT_KEYEXCHANGE: "AT_KEYEXCHANGE", AT_SIGNATURE: "AT_SIGNATURE", 0: "KeySpec(0)", 7: "KeySpec(7)"} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q", uint32(k), got)
		}
	}
}
