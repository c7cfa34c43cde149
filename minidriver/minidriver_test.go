package minidriver_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/internal/testutil"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/gids"
	"github.com/cardharness/cardharness/winerr"
)

const pin = "123456"

var adminKey = [24]byte{}

// suite is the minidriver test suite; it runs over every transport.
type env struct {
	card *gids.Card
	t    pcsc.Transport
}

type transportMaker func(t *testing.T) env

func directEnv(t *testing.T) env {
	card := gidstest.New(t, gids.Options{}, gids.InitParams{PIN: pin, AdminKey: adminKey})
	return env{card: card, t: pcsc.NewDirect(card)}
}

func acquire(t *testing.T, e env) *minidriver.Card {
	t.Helper()
	c, err := minidriver.Acquire(context.Background(), e.t, minidriver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func cardcf(t *testing.T, c *minidriver.Card) fs.CardCF {
	t.Helper()
	cf, err := c.CardCF(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

func runSuite(t *testing.T, mk transportMaker) {
	ctx := context.Background()
	t.Run("acquire reads cardid", func(t *testing.T) {
		e := mk(t)
		c := acquire(t, e)
		want, _ := e.card.DO(0xA012, 0xDF20)
		if got := c.CardID().Bytes(); !cmp.Equal(got, want) {
			t.Errorf("cardid %x, card has %x", got, want)
		}
	})
	t.Run("create container, sign, certificate round trip", func(t *testing.T) {
		e := mk(t)
		c := acquire(t, e)
		if err := c.AuthenticatePIN(ctx, pin); err != nil {
			t.Fatal(err)
		}
		before := cardcf(t, c)
		i, err := c.CreateContainer(ctx, minidriver.ContainerSpec{GUID: "257f0362-2ee7-44f5-9885-36fa490f30c1", KeySpec: fs.AT_KEYEXCHANGE, Bits: 2048}, minidriver.BumpCorrect)
		if err != nil {
			t.Fatal(err)
		}
		if i != 0 {
			t.Errorf("first container at index %d", i)
		}
		after := cardcf(t, c)
		if d := after.Diff(before); d&fs.CategoryContainers == 0 || d&fs.CategoryFiles == 0 {
			t.Errorf("cardcf %x -> %x: want containers and files bumped", before.Bytes(), after.Bytes())
		}
		info, err := c.ContainerInfo(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if !info.Default || info.Bits != 2048 || info.KeySpec != fs.AT_KEYEXCHANGE {
			t.Errorf("container info %+v", info)
		}
		cardPub, _ := e.card.PublicKey(0x81)
		if !info.PublicKey.Equal(cardPub) {
			t.Error("public key read differs from the card's key")
		}
		signer, err := c.Signer(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte("hello"))
		sig, err := signer.Sign(nil, h[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPKCS1v15(info.PublicKey, crypto.SHA256, h[:], sig); err != nil {
			t.Errorf("card signature does not verify: %v", err)
		}
		//lint:ignore SA1019 GIDS decipher is PKCS#1 v1.5 (CardRSADecrypt); the test must make such ciphertext.
		ct, _ := rsa.EncryptPKCS1v15(rand.Reader, info.PublicKey, []byte("secret"))
		pt, err := c.Decrypt(ctx, i, ct)
		if err != nil || string(pt) != "secret" {
			t.Errorf("decrypt: %q, %v", pt, err)
		}
		der := testutil.SelfSigned(t, signer, "cardharness test")
		cf0 := cardcf(t, c)
		if err := c.WriteCertificate(ctx, i, fs.AT_KEYEXCHANGE, der, minidriver.BumpCorrect); err != nil {
			t.Fatal(err)
		}
		if d := cardcf(t, c).Diff(cf0); d != fs.CategoryFiles {
			t.Errorf("certificate write bumped %v, want files", d)
		}
		got, err := c.ReadCertificate(ctx, i, fs.AT_KEYEXCHANGE)
		if err != nil || !cmp.Equal(got, der) {
			t.Fatalf("certificate read back: %v", err)
		}
		files, _ := c.EnumFiles(ctx, "mscp")
		if !cmp.Equal(files, []string{"cmapfile", "kxc00"}) {
			t.Errorf("mscp files %q", files)
		}
	})
	t.Run("bump policies", func(t *testing.T) {
		tests := []struct {
			pol  minidriver.Bump
			want func(before, after fs.CardCF) bool
		}{
			{minidriver.BumpCorrect, func(b, a fs.CardCF) bool {
				return a.FilesFreshness == b.FilesFreshness+1 && a.ContainersFreshness == b.ContainersFreshness
			}},
			{minidriver.BumpNone, func(b, a fs.CardCF) bool { return !a.Changed(b) }},
			{minidriver.BumpLate, func(b, a fs.CardCF) bool { return a.FilesFreshness == b.FilesFreshness+1 }},
			{minidriver.BumpWrongCounter, func(b, a fs.CardCF) bool {
				return a.FilesFreshness == b.FilesFreshness && a.ContainersFreshness == b.ContainersFreshness+1
			}},
			{minidriver.BumpResetToZero, func(b, a fs.CardCF) bool { return a.FilesFreshness == 0 && a.ContainersFreshness == 0 }},
		}
		for _, tt := range tests {
			t.Run(tt.pol.String(), func(t *testing.T) {
				e := mk(t)
				c := acquire(t, e)
				_ = c.AuthenticatePIN(ctx, pin)
				_ = c.WriteCardCF(ctx, fs.CardCF{ContainersFreshness: 5, FilesFreshness: 9})
				before := cardcf(t, c)
				if err := c.WriteFile(ctx, "cardapps", []byte("mscp\x00\x00\x00\x00"), tt.pol); err != nil {
					t.Fatal(err)
				}
				if after := cardcf(t, c); !tt.want(before, after) {
					t.Errorf("%v: cardcf %x -> %x", tt.pol, before.Bytes(), after.Bytes())
				}
			})
		}
	})
	t.Run("delete container is idempotent and moves the default", func(t *testing.T) {
		e := mk(t)
		c := acquire(t, e)
		_ = c.AuthenticatePIN(ctx, pin)
		a, _ := c.CreateContainer(ctx, minidriver.ContainerSpec{GUID: "old", KeySpec: fs.AT_KEYEXCHANGE, Bits: 1024}, minidriver.BumpCorrect)
		b, err := c.CreateContainer(ctx, minidriver.ContainerSpec{GUID: "new", KeySpec: fs.AT_KEYEXCHANGE, Bits: 1024}, minidriver.BumpCorrect)
		if err != nil || a != 0 || b != 1 {
			t.Fatalf("indexes %d %d, %v", a, b, err)
		}
		for range 2 {
			if err := c.DeleteContainer(ctx, a, minidriver.DeleteOptions{MoveDefaultTo: b}, minidriver.BumpCorrect); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}
		cmap, _ := c.Containers(ctx)
		if cmap.Valid(a) || !cmap[b].IsDefault() || cmap.Default() != b {
			t.Errorf("after delete: %+v", cmap)
		}
		km, _ := c.KeyMap(ctx)
		if err := fs.CheckConsistent(cmap, km); err != nil {
			t.Error(err)
		}
		if err := c.DeleteContainer(ctx, 40, minidriver.DeleteOptions{MoveDefaultTo: -1}, minidriver.BumpCorrect); err != nil {
			t.Errorf("deleting a container that never existed: %v", err)
		}
		// The freed index is reused.
		n, _ := c.CreateContainer(ctx, minidriver.ContainerSpec{GUID: "again", KeySpec: fs.AT_SIGNATURE, Bits: 1024}, minidriver.BumpCorrect)
		if n != a {
			t.Errorf("new container at %d, want the freed index %d", n, a)
		}
	})
	t.Run("PIN errors carry Windows codes", func(t *testing.T) {
		e := mk(t)
		c := acquire(t, e)
		err := c.AuthenticatePIN(ctx, "000000")
		if n, ok := minidriver.IsWrongPIN(err); !ok || n != 2 || !errors.Is(err, winerr.SCARD_W_WRONG_CHV) {
			t.Fatalf("wrong PIN: %v", err)
		}
		// One way to ask: the CardError unwraps to the code and the tries.
		var code winerr.Code
		var ce *minidriver.CardError
		var wrong *minidriver.WrongPINError
		if !errors.As(err, &code) || code != winerr.SCARD_W_WRONG_CHV || !errors.As(err, &ce) || ce.SW != apdu.RetriesLeft(2) || !errors.As(err, &wrong) || wrong.Retries != 2 {
			t.Fatalf("wrong PIN does not unwrap to SCARD_W_WRONG_CHV, its 63C2 and 2 tries: %#v", err)
		}
		_ = c.AuthenticatePIN(ctx, "000000")
		_ = c.AuthenticatePIN(ctx, "000000")
		if err := c.AuthenticatePIN(ctx, pin); !errors.Is(err, winerr.SCARD_W_CHV_BLOCKED) || !errors.Is(err, apdu.SWAuthMethodBlocked) {
			t.Fatalf("blocked PIN: %v", err)
		}
		if err := c.UnblockPIN(ctx, adminKey, "654321", minidriver.BumpCorrect); err != nil {
			t.Fatal(err)
		}
		if err := c.AuthenticatePIN(ctx, "654321"); err != nil {
			t.Fatal(err)
		}
		if err := c.ChangePIN(ctx, "654321", pin, minidriver.BumpCorrect); err != nil {
			t.Fatal(err)
		}
		if left, limit, err := c.PINTries(ctx); err != nil || left != limit {
			t.Errorf("tries %d/%d %v", left, limit, err)
		}
		var wrongAdmin [24]byte
		wrongAdmin[0] = 0x80 // not the parity bit: DES ignores bit 0 of each key byte
		if err := c.AuthenticateAdmin(ctx, wrongAdmin, nil); !errors.Is(err, winerr.SCARD_W_SECURITY_VIOLATION) {
			t.Errorf("wrong admin key: %v", err)
		}
	})
	t.Run("writes need the PIN", func(t *testing.T) {
		e := mk(t)
		c := acquire(t, e)
		_, err := c.CreateContainer(ctx, minidriver.ContainerSpec{GUID: "x", KeySpec: fs.AT_KEYEXCHANGE, Bits: 1024}, minidriver.BumpCorrect)
		if !errors.Is(err, winerr.SCARD_W_SECURITY_VIOLATION) {
			t.Errorf("unauthenticated create: %v", err)
		}
	})
}

func TestMinidriverDirect(t *testing.T) { runSuite(t, directEnv) }
