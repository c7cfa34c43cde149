package minidriver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cardharness/cardharness/internal/gidstest"
	"github.com/cardharness/cardharness/internal/golden"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/gids"
)

// recorder is a transport that logs every command APDU it passes on.
type recorder struct {
	pcsc.Transport
	cmds  [][]byte
	lines []string // the transcript: commands in hex, and "# step" notes
}

func (r *recorder) Transmit(ctx context.Context, cmd []byte) ([]byte, error) {
	r.cmds = append(r.cmds, append([]byte(nil), cmd...))
	line := fmt.Sprintf("% X", cmd)
	if len(cmd) > 9 && cmd[1] == apdu.INSGeneralAuthenticate {
		// The host's challenge R1 is random: keep the header, the
		// template's tags and lengths, and Le.
		line = fmt.Sprintf("% X <%d random bytes> % X", cmd[:9], len(cmd)-10, cmd[len(cmd)-1:])
	}
	r.lines = append(r.lines, line)
	return r.Transport.Transmit(ctx, cmd)
}

func (r *recorder) transcript() string {
	return strings.Join(r.lines, "\n") + "\n"
}

// deterministicCard is a card whose challenges come from a fixed stream.
func deterministicCard(t *testing.T) *gids.Card {
	t.Helper()
	card := gidstest.New(t, gids.Options{Rand: bytes.NewReader(bytes.Repeat([]byte{0x5A}, 1<<16))}, gids.InitParams{PIN: pin, AdminKey: adminKey, CardID: [16]byte{1, 2, 3}})
	return card
}

// TestCommandTranscript pins the bytes of every command the client
// builds, one operation of each kind, to testdata/commands.golden. The
// file was recorded before the commands were built from apdu.Command, so
// the refactoring provably sends the same bytes.
func TestCommandTranscript(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{Transport: pcsc.NewDirect(deterministicCard(t))}
	c, err := minidriver.Acquire(ctx, rec, minidriver.Options{GenerateWithLe: true})
	if err != nil {
		t.Fatal(err)
	}
	step := func(name string, err error) {
		t.Helper()
		rec.lines = append(rec.lines, "# "+name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	_, _, err = c.PINTries(ctx)
	step("PINTries", err)
	step("wrong PIN", nil)
	if err := c.AuthenticatePIN(ctx, "000000"); err == nil {
		t.Fatal("wrong PIN accepted")
	}
	step("AuthenticatePIN", c.AuthenticatePIN(ctx, pin))
	idx, err := c.CreateContainer(ctx, minidriver.ContainerSpec{GUID: "transcript", KeySpec: fs.AT_KEYEXCHANGE, Bits: 2048}, minidriver.BumpCorrect)
	step("CreateContainer", err)
	_, err = c.PublicKey(ctx, idx)
	step("PublicKey", err)
	digest := sha256.Sum256([]byte("transcript"))
	_, err = c.SignData(ctx, idx, append([]byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, digest[:]...))
	step("SignData", err)
	step("Decrypt (the card refuses the made-up ciphertext)", nil)
	_, _ = c.Decrypt(ctx, idx, bytes.Repeat([]byte{0x01}, 256))
	step("CreateFile", c.CreateFile(ctx, "longfile", minidriver.BumpCorrect))
	step("WriteFile (chained)", c.WriteFile(ctx, "longfile", bytes.Repeat([]byte{0xAB}, 600), minidriver.BumpCorrect))
	step("ChangePIN", c.ChangePIN(ctx, pin, "654321", minidriver.BumpCorrect))
	step("UnblockPIN", c.UnblockPIN(ctx, adminKey, pin, minidriver.BumpCorrect))
	step("ChangeAdminKey", c.ChangeAdminKey(ctx, adminKey, adminKey, minidriver.BumpCorrect))
	step("DeleteContainer", c.DeleteContainer(ctx, idx, minidriver.DeleteOptions{MoveDefaultTo: -1}, minidriver.BumpCorrect))
	step("Deauthenticate", c.Deauthenticate(ctx))
	golden.Check(t, "commands.golden", []byte(rec.transcript()))
}

// TestChainingThreshold: data longer than the chunk is chained; with
// Windows' 240-byte chunk a 241..255-byte payload is chained (240 + the
// rest), with OpenSC's 255 it goes whole (docs/reference/gids-protocol.md §2.1).
func TestChainingThreshold(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		chunk, n int
		want     []string // CLA and Lc of each PUT DATA APDU
	}{
		{240, 236, []string{"00 F0"}}, // 236 bytes of value + the DF 24 81 EC header = 240
		{240, 237, []string{"10 F0", "00 01"}},
		{240, 251, []string{"10 F0", "00 0F"}},
		{255, 251, []string{"00 FF"}},
		{255, 252, []string{"10 FF", "00 01"}},
		{240, 600, []string{"10 F0", "10 F0", "00 7D"}},
		{255, 600, []string{"10 FF", "10 FF", "00 5F"}},
	} {
		t.Run(fmt.Sprintf("chunk %d, %d bytes", tt.chunk, tt.n), func(t *testing.T) {
			rec := &recorder{Transport: pcsc.NewDirect(deterministicCard(t))}
			c, err := minidriver.Acquire(ctx, rec, minidriver.Options{ChunkSize: tt.chunk})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.AuthenticatePIN(ctx, pin); err != nil {
				t.Fatal(err)
			}
			if err := c.CreateFile(ctx, "chain", minidriver.BumpNone); err != nil {
				t.Fatal(err)
			}
			rec.cmds = nil
			data := bytes.Repeat([]byte{0xCD}, tt.n)
			if err := c.WriteFile(ctx, "chain", data, minidriver.BumpNone); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, cmd := range rec.cmds {
				if cmd[1] == apdu.INSPutData {
					got = append(got, fmt.Sprintf("%02X %02X", cmd[0], cmd[4]))
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("PUT DATA parts (CLA Lc) = %v, want %v", got, tt.want)
			}
			back, err := c.ReadFile(ctx, "chain")
			if err != nil || !bytes.Equal(back, data) {
				t.Errorf("read back %d bytes, %v; want the %d written", len(back), err, tt.n)
			}
		})
	}
}

// TestNoHandWrittenCommands is a vet-style check over the client's source:
// commands are apdu.Command values encoded in one place (Card.send), so no
// file may write an APDU as a byte literal, count an Lc by hand
// (byte(len(...))), re-parse its own command bytes, or call Transmit
// outside send.
func TestNoHandWrittenCommands(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	ins := map[int64]bool{}
	for _, b := range []byte{apdu.INSVerify, apdu.INSManageSecurityEnvironment, apdu.INSChangeReferenceData,
		apdu.INSPerformSecurityOperation, apdu.INSResetRetryCounter, apdu.INSActivateFile,
		apdu.INSGenerateAsymmetricKeyPair, apdu.INSGeneralAuthenticate, apdu.INSSelect, apdu.INSGetResponse,
		apdu.INSGetData, apdu.INSPutData, apdu.INSCreateFile, apdu.INSDeleteFile, apdu.INSTerminateDF} {
		ins[int64(b)] = true
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, d := range f.Decls {
			fn, _ := d.(*ast.FuncDecl)
			ast.Inspect(d, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					if len(n.Elts) >= 2 && isByteSlice(n.Type) && isLit(n.Elts[0], 0x00, 0x10, 0x80, 0x90) && isLitIn(n.Elts[1], ins) {
						t.Errorf("%s: byte literal that looks like an APDU header; build an apdu.Command instead", fset.Position(n.Pos()))
					}
				case *ast.CallExpr:
					if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "byte" && len(n.Args) == 1 {
						if call, ok := n.Args[0].(*ast.CallExpr); ok {
							if l, ok := call.Fun.(*ast.Ident); ok && l.Name == "len" {
								t.Errorf("%s: byte(len(...)) is a hand-counted length; let apdu.Command or ber.Encode compute it", fset.Position(n.Pos()))
							}
						}
					}
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
						switch sel.Sel.Name {
						case "ParseCommand":
							t.Errorf("%s: the client re-parses command bytes; keep the apdu.Command", fset.Position(n.Pos()))
						case "Transmit":
							if fn == nil || fn.Name.Name != "send" {
								t.Errorf("%s: Transmit outside Card.send; send commands through Card.transmit", fset.Position(n.Pos()))
							}
						}
					}
				}
				return true
			})
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d files; the glob is wrong", checked)
	}
}

func isByteSlice(e ast.Expr) bool {
	at, ok := e.(*ast.ArrayType)
	if !ok || at.Len != nil {
		return false
	}
	id, ok := at.Elt.(*ast.Ident)
	return ok && id.Name == "byte"
}

func litValue(e ast.Expr) (int64, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.INT {
		return 0, false
	}
	v, err := strconv.ParseInt(bl.Value, 0, 64)
	return v, err == nil
}

func isLit(e ast.Expr, vals ...int64) bool {
	v, ok := litValue(e)
	if !ok {
		return false
	}
	for _, w := range vals {
		if v == w {
			return true
		}
	}
	return false
}

func isLitIn(e ast.Expr, set map[int64]bool) bool {
	v, ok := litValue(e)
	return ok && set[v]
}
