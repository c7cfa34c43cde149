package tools_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cardharness/cardharness/harness/cardtest"
	"github.com/cardharness/cardharness/harness/tools"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/vcard/gids"
)

// peer drives the OpenSC 0.23 tools against one card and keeps the card
// itself at hand, so every step checks the tool's output *and* what the
// card now holds.
type peer struct {
	t    *testing.T
	r    *tools.Runner
	card *gids.Card
	dir  string
}

func (p *peer) run(args ...string) string {
	p.t.Helper()
	res, err := p.r.Run(context.Background(), args[0], args[1:]...)
	if err != nil {
		p.t.Fatalf("%v", err)
	}
	return res.Output()
}

// fail runs a command that must fail and returns its output.
func (p *peer) fail(args ...string) string {
	p.t.Helper()
	res, err := p.r.Run(context.Background(), args[0], args[1:]...)
	if err == nil {
		p.t.Fatalf("%s succeeded, want failure:\n%s", strings.Join(args, " "), res.Output())
	}
	if !tools.IsExit(err) {
		p.t.Fatal(err)
	}
	return res.Output()
}

func (p *peer) file(name string) string { return filepath.Join(p.dir, name) }

func (p *peer) write(name string, b []byte) string {
	p.t.Helper()
	if err := os.WriteFile(p.file(name), b, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return p.file(name)
}

func (p *peer) read(name string) []byte {
	p.t.Helper()
	b, err := os.ReadFile(p.file(name))
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

func mustContain(t *testing.T, step, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: output lacks %q:\n%s", step, w, out)
		}
	}
}

func (p *peer) cmap() fs.ContainerMap {
	p.t.Helper()
	b, _ := p.card.DO(fs.EFEveryoneReadUserWriteAc, fs.DOCmapFile)
	m, err := fs.ParseContainerMap(b)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

func (p *peer) masterfile() fs.MasterFile {
	p.t.Helper()
	b, _ := p.card.DO(fs.EFUserCreateDeleteDirAc, fs.DOMasterFile)
	m, err := fs.ParseMasterFile(b)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

func (p *peer) cardcf() []byte {
	b, _ := p.card.DO(fs.EFEveryoneReadUserWriteAc, fs.DOCardCF)
	return b
}

// pubkey reads container id's public key through pkcs11-tool and checks it
// against the key the card holds.
func (p *peer) pubkey(id string, kref byte) *rsa.PublicKey {
	p.t.Helper()
	p.run("pkcs11-tool", "--read-object", "--type", "pubkey", "--id", id, "-o", p.file("pub"+id+".der"))
	k, err := x509.ParsePKIXPublicKey(p.read("pub" + id + ".der"))
	if err != nil {
		p.t.Fatalf("public key from pkcs11-tool: %v", err)
	}
	pub := k.(*rsa.PublicKey)
	onCard, ok := p.card.PublicKey(kref)
	if !ok || !pub.Equal(onCard) {
		p.t.Fatalf("pkcs11-tool's public key %s differs from the card's key %02X", id, kref)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	p.write("pub"+id+".pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	return pub
}

// signAndVerify signs with the card through PKCS#11 and verifies with
// openssl, with a hashing mechanism and with raw RSA-PKCS.
func (p *peer) signAndVerify(id, pin string) {
	p.t.Helper()
	data := p.write("data", []byte("hello world"))
	p.run("pkcs11-tool", "--login", "--pin", pin, "--sign", "--mechanism", "SHA256-RSA-PKCS", "--id", id, "-i", data, "-o", p.file("sig256"))
	out := p.run("openssl", "dgst", "-sha256", "-verify", p.file("pub"+id+".pem"), "-signature", p.file("sig256"), data)
	mustContain(p.t, "SHA256-RSA-PKCS verify", out, "Verified OK")
	p.run("pkcs11-tool", "--login", "--pin", pin, "--sign", "--mechanism", "RSA-PKCS", "--id", id, "-i", data, "-o", p.file("sigraw"))
	p.run("openssl", "pkeyutl", "-verifyrecover", "-pubin", "-inkey", p.file("pub"+id+".pem"), "-in", p.file("sigraw"), "-out", p.file("recovered"))
	if got := p.read("recovered"); string(got) != "hello world" {
		p.t.Fatalf("RSA-PKCS signature recovers %q", got)
	}
}

func (p *peer) decrypt(id, pin string) {
	p.t.Helper()
	msg := p.write("msg", []byte("a secret for the card"))
	p.run("openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", p.file("pub"+id+".pem"), "-in", msg, "-out", p.file("ct"))
	p.run("pkcs11-tool", "--login", "--pin", pin, "--decrypt", "--mechanism", "RSA-PKCS", "--id", id, "-i", p.file("ct"), "-o", p.file("pt"))
	if got := p.read("pt"); string(got) != "a secret for the card" {
		p.t.Fatalf("decrypt round trip gave %q", got)
	}
}

func certFor(t *testing.T, pub *rsa.PublicKey, cn string) []byte {
	t.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "peer test CA"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

const (
	adminKeyHex  = "000000000000000000000000000000000000000000000000"
	adminKey2Hex = "0102030405060708090A0B0C0D0E0F101112131415161718"
	serialHex    = "00112233445566778899AABBCCDDEEFF"
)

// TestOpenSCPeerSuite is the extended peer suite of docs/reference/gids-protocol.md §6:
// the real OpenSC 0.23 tools against a blank virtual GIDS card on a
// private pcscd + vpcd stack, every step checked in the tool's output and
// on the card.
func TestOpenSCPeerSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the OpenSC peer suite takes about a minute")
	}
	card, err := gids.New(gids.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := cardtest.Start(t, card)
	p := &peer{t: t, card: card, dir: t.TempDir()}
	p.r = &tools.Runner{Env: st.Env(), Dir: p.dir, Log: func(r *tools.Result) {
		p.t.Logf("$ %s  (exit %d, %v)", strings.Join(r.Args, " "), r.ExitCode, r.Duration.Round(time.Millisecond))
	}}

	t.Run("detection", func(t *testing.T) {
		p.t = t
		mustContain(t, "opensc-tool -n", p.run("opensc-tool", "-n"), "GIDS Smart Card")
	})
	t.Run("initialize", func(t *testing.T) {
		p.t = t
		p.run("gids-tool", "--initialize", "--pin", "123456", "--admin-key", adminKeyHex, "--serial", serialHex)
		if card.LifeCycle() != gids.Operational {
			t.Fatalf("after gids-tool --initialize the card is %v", card.LifeCycle())
		}
		out := p.run("gids-tool")
		mustContain(t, "gids-tool dump", out, "Found 5 entries in the masterfile", `File: \cardid`, `File: \cardapps`, `File: \cardcf`, `File: mscp\cmapfile`, "no container found")
		id, _ := card.DO(0xA012, 0xDF20)
		if strings.ToUpper(hex.EncodeToString(id)) != serialHex {
			t.Errorf("cardid %X, want the serial %s", id, serialHex)
		}
	})
	t.Run("refuses to re-initialise", func(t *testing.T) {
		p.t = t
		// gids-tool prints the failure but exits 0 (docs/reference/gids-protocol.md §2.14).
		res, _ := p.r.Run(context.Background(), "gids-tool", "--initialize", "--pin", "654321", "--admin-key", adminKeyHex, "--serial", "FFEEDDCCBBAA99887766554433221100")
		mustContain(t, "second gids-tool --initialize", res.Output(), "SC_CARDCTL_GIDS_INITIALIZE", "failed")
		id, _ := card.DO(0xA012, 0xDF20)
		if strings.ToUpper(hex.EncodeToString(id)) != serialHex {
			t.Errorf("re-initialisation changed the cardid to %X", id)
		}
	})
	t.Run("pkcs15-tool -D", func(t *testing.T) {
		p.t = t
		out := p.run("pkcs15-tool", "-D")
		mustContain(t, "pkcs15-tool -D", out, "PKCS#15 Card [GIDS card]", "PIN [UserPIN]", "Tries left     : 3", "Serial number  : 00112233445566778899aabbccddeeff")
	})
	t.Run("pkcs11-tool -L", func(t *testing.T) {
		p.t = t
		out := p.run("pkcs11-tool", "-L")
		mustContain(t, "pkcs11-tool -L", out, "token label        : GIDS card (UserPIN)", "pin min/max        : 4/15", "serial num         : 8899aabbccddeeff")
	})
	t.Run("keygen rsa:2048", func(t *testing.T) {
		p.t = t
		out := p.run("pkcs11-tool", "--login", "--pin", "123456", "--keypairgen", "--key-type", "rsa:2048", "--label", "key2048")
		mustContain(t, "keygen", out, "Key pair generated", "Public Key Object; RSA 2048 bits")
		m := p.cmap()
		if len(m) != 1 || m[0].Flags != 0x03 || m[0].KeyExchangeKeySizeBits != 2048 || m[0].GUID != "key2048" {
			t.Errorf("cmapfile after keygen: %+v", m)
		}
		// OpenSC bumps containers once and files twice (docs/reference/gids-protocol.md §3.5).
		if cf := p.cardcf(); !bytes.Equal(cf, []byte{0, 0, 1, 0, 2, 0}) {
			t.Errorf("cardcf after one keygen % X, want 00 00 01 00 02 00", cf)
		}
		mustContain(t, "pkcs11-tool -O", p.run("pkcs11-tool", "-O"), "Public Key Object; RSA 2048 bits", "ID:         00")
		p.pubkey("00", 0x81)
	})
	t.Run("certificate store and read back", func(t *testing.T) {
		p.t = t
		der := certFor(t, p.pubkey("00", 0x81), "peer test 2048")
		certPEM := p.write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		p.run("pkcs15-init", "--store-certificate", certPEM, "--id", "00", "--auth-id", "80", "--verify-pin", "--pin", "123456")
		if _, ok := p.masterfile().Lookup("mscp", "kxc00"); !ok {
			t.Fatalf("masterfile lacks mscp\\kxc00: %+v", p.masterfile())
		}
		if cf := p.cardcf(); !bytes.Equal(cf, []byte{0, 0, 1, 0, 4, 0}) {
			t.Errorf("cardcf after storing the certificate % X, want 00 00 01 00 04 00", cf)
		}
		p.run("pkcs11-tool", "--read-object", "--type", "cert", "--id", "00", "-o", p.file("back.der"))
		if !bytes.Equal(p.read("back.der"), der) {
			t.Fatal("certificate read back differs from the one stored")
		}
	})
	t.Run("sign SHA256-RSA-PKCS and RSA-PKCS, verified by openssl", func(t *testing.T) {
		p.t = t
		p.signAndVerify("00", "123456")
	})
	t.Run("decrypt RSA-PKCS round trip", func(t *testing.T) {
		p.t = t
		p.decrypt("00", "123456")
	})
	t.Run("pkcs11-tool --test", func(t *testing.T) {
		p.t = t
		out := p.run("pkcs11-tool", "--login", "--pin", "123456", "--test")
		mustContain(t, "--test", out, "C_GenerateRandom failed: CKR_FUNCTION_NOT_SUPPORTED", "RSA-PKCS: OK", "SHA256-RSA-PKCS: OK", "1 errors")
		if n := strings.Count(out, "ERR:"); n != 1 {
			t.Errorf("%d errors in pkcs11-tool --test, want only C_GenerateRandom:\n%s", n, out)
		}
	})
	t.Run("PIN change", func(t *testing.T) {
		p.t = t
		p.run("pkcs11-tool", "--login", "--pin", "123456", "--change-pin", "--new-pin", "654321")
		p.fail("pkcs11-tool", "--login", "--pin", "123456", "-O")
		p.run("pkcs11-tool", "--login", "--pin", "654321", "-O")
	})
	t.Run("three wrong PINs block, admin unblocks", func(t *testing.T) {
		p.t = t
		for want := 2; want >= 0; want-- {
			out := p.fail("pkcs11-tool", "--login", "--pin", "000000", "-O")
			mustContain(t, "wrong PIN", out, "CKR_PIN_INCORRECT")
			if got := card.PINTriesLeft(); got != want {
				t.Fatalf("tries left %d, want %d", got, want)
			}
		}
		mustContain(t, "right PIN on a blocked card", p.fail("pkcs11-tool", "--login", "--pin", "654321", "-O"), "CKR_PIN_LOCKED")
		p.run("gids-tool", "--unblock", "--admin-key", adminKeyHex, "--pin", "123456")
		p.run("pkcs11-tool", "--login", "--pin", "123456", "-O")
		if got := card.PINTriesLeft(); got != 3 {
			t.Errorf("tries after unblock: %d", got)
		}
	})
	t.Run("admin key change", func(t *testing.T) {
		p.t = t
		p.run("gids-tool", "--change-admin-key", "--admin-key", adminKeyHex, "--new-admin-key", adminKey2Hex)
		p.fail("gids-tool", "--unblock", "--admin-key", adminKeyHex, "--pin", "123456")
		p.run("gids-tool", "--unblock", "--admin-key", adminKey2Hex, "--pin", "123456")
	})
	t.Run("keygen rsa:1024 sign-only is a signature container", func(t *testing.T) {
		p.t = t
		p.run("pkcs11-tool", "--login", "--pin", "123456", "--keypairgen", "--key-type", "rsa:1024", "--usage-sign", "--label", "sign1024")
		m := p.cmap()
		if len(m) != 2 || m[1].SigKeySizeBits != 1024 || m[1].KeyExchangeKeySizeBits != 0 || m[1].Flags != 0x01 {
			t.Fatalf("cmapfile: %+v", m)
		}
		p.pubkey("01", 0x82)
		p.run("pkcs11-tool", "--login", "--pin", "123456", "--sign", "--mechanism", "SHA256-RSA-PKCS", "--id", "01", "-i", p.write("d1", []byte("x")), "-o", p.file("s1"))
		mustContain(t, "verify", p.run("openssl", "dgst", "-sha256", "-verify", p.file("pub01.pem"), "-signature", p.file("s1"), p.file("d1")), "Verified OK")
	})
	t.Run("EC keygen refused", func(t *testing.T) {
		p.t = t
		before := card.KeyRefs()
		out := p.fail("pkcs11-tool", "--login", "--pin", "123456", "--keypairgen", "--key-type", "EC:prime256v1")
		mustContain(t, "EC keygen", out, "not supported")
		if after := card.KeyRefs(); !bytes.Equal(before, after) {
			t.Errorf("key references changed from % X to % X", before, after)
		}
	})
	t.Run("key import", func(t *testing.T) {
		p.t = t
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM := p.write("import.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
		p.run("pkcs15-init", "--store-private-key", keyPEM, "--auth-id", "80", "--verify-pin", "--pin", "123456", "--label", "imported")
		var found bool
		for _, kref := range card.KeyRefs() {
			if pub, ok := card.PublicKey(kref); ok && pub.Equal(&k.PublicKey) {
				found = true
			}
		}
		if !found {
			t.Fatalf("no key on the card matches the imported key (refs % X)", card.KeyRefs())
		}
	})
	t.Run("certificate and key deletion", func(t *testing.T) {
		p.t = t
		p.run("pkcs15-init", "--delete-objects", "cert", "--id", "00", "--auth-id", "80", "--verify-pin", "--pin", "123456")
		if _, ok := p.masterfile().Lookup("mscp", "kxc00"); ok {
			t.Error("masterfile still lists kxc00")
		}
		p.run("pkcs15-init", "--delete-objects", "privkey,pubkey", "--id", "00", "--auth-id", "80", "--verify-pin", "--pin", "123456")
		if m := p.cmap(); m.Valid(0) {
			t.Errorf("cmapfile record 0 still valid: %+v", m[0])
		}
		for _, kref := range card.KeyRefs() {
			if kref == 0x81 {
				t.Error("key 81 still on the card")
			}
		}
	})
	for _, bits := range []int{3072, 4096} {
		t.Run(fmt.Sprintf("keygen rsa:%d sign and decrypt", bits), func(t *testing.T) {
			p.t = t
			label := fmt.Sprintf("key%d", bits)
			p.run("pkcs11-tool", "--login", "--pin", "123456", "--keypairgen", "--key-type", fmt.Sprintf("rsa:%d", bits), "--label", label)
			out := p.run("pkcs11-tool", "-O")
			re := regexp.MustCompile(fmt.Sprintf(`(?s)Public Key Object; RSA %d bits\s+label:\s+%s\s+ID:\s+(\w+)`, bits, label))
			m := re.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no %d-bit public key object labelled %s:\n%s", bits, label, out)
			}
			id := m[1]
			var idx int
			fmt.Sscanf(id, "%x", &idx)
			p.pubkey(id, byte(0x81+idx))
			p.signAndVerify(id, "123456")
			p.decrypt(id, "123456")
		})
	}
}
