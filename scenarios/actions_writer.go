package scenarios

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"

	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// The out-of-band writer: an enrollment tool that talks to the card through
// the minidriver client directly, outside every host, with an explicit
// counter-bump policy (bump:). It verifies the PIN first (pin:, default the
// card's current PIN).
func init() {
	register(&Action{
		Name: "writer-generate-key", Actor: ActorWriter,
		Doc:     "an enrollment tool generates a key in a GUID-named container, outside Base CSP",
		Args:    []Arg{argCard, argNewGUID, argKeySpec, argBits, argDefault, argBump, argWPIN},
		Result:  containerFields,
		Errors:  []string{"SCARD_E_WRITE_TOO_MANY", "SCARD_W_WRONG_CHV"},
		Example: "{do: writer-generate-key, card: card, bits: 2048, bump: none, save: key}",
		Run:     writerGenerateKey,
	}, &Action{
		Name: "writer-make-csr", Actor: ActorWriter,
		Doc:     "an enrollment tool builds a PKCS#10 signed on the card by a container's key",
		Args:    []Arg{argCard, argSigner, argSubject, argBump, argWPIN},
		Result:  csrFields,
		Errors:  []string{"NTE_BAD_KEYSET", "SCARD_W_WRONG_CHV"},
		Example: "{do: writer-make-csr, card: card, guid: $key.guid, subject: CN=alice, save: req}",
		Run:     writerMakeCSR,
	}, &Action{
		Name: "writer-write-certificate", Actor: ActorWriter,
		Doc: "an enrollment tool writes the issued certificate to the container found by GUID (compressed kxcNN/kscNN)",
		Args: []Arg{argCard, argCert,
			argGUID,
			argKeySpec,
			{Name: "check-key", Type: Bool, Default: "true", Doc: "refuse a certificate whose key is not the container's (NTE_BAD_PUBLIC_KEY)"},
			argBump, argWPIN},
		Result: []Field{
			{Name: "index", Type: Int, Doc: "the container's cmapfile index"},
			{Name: "file", Type: String, Doc: "the certificate file written, e.g. mscp/kxc00"},
		},
		Errors:  []string{"NTE_BAD_KEYSET", "NTE_BAD_PUBLIC_KEY", "SCARD_W_WRONG_CHV"},
		Example: "{do: writer-write-certificate, card: card, guid: $key.guid, cert: $issued.cert, bump: none}",
		Run:     writerWriteCertificate,
	}, &Action{
		Name: "writer-delete-container", Actor: ActorWriter,
		Doc: "a tool deletes a container (and its certificate file) outside Base CSP",
		Args: []Arg{argCard, argGUID,
			argMoveDefault,
			{Name: "keep-certificate", Type: Bool, Default: "false", Doc: "leave the certificate file behind (an orphan)"},
			argBump, argWPIN},
		Errors:  []string{"NTE_BAD_KEYSET", "SCARD_W_WRONG_CHV"},
		Example: "{do: writer-delete-container, card: card, guid: $old.guid, bump: correct}",
		Run:     writerDeleteContainer,
	}, &Action{
		Name: "writer-change-pin", Actor: ActorWriter,
		Doc: "a tool changes the PIN outside Base CSP (bump: none leaves hosts' cached PINs looking valid)",
		Args: []Arg{argCard, argOldPIN,
			argNewPIN, argBump},
		Errors:  []string{"SCARD_W_WRONG_CHV", "SCARD_W_CHV_BLOCKED"},
		Example: "{do: writer-change-pin, card: card, old: \"123456\", new: \"654321\", bump: correct}",
		Run:     onClient(writerChangePIN),
	})
}

func writerGenerateKey(e *env, s *stepCtx) (Values, error) {
	var res Values
	err := e.writer(s, func(md *minidriver.Card, bump minidriver.Bump) error {
		guid := s.str("guid")
		if guid == "" {
			guid = e.newGUID()
		}
		i, err := md.CreateContainer(e.ctx, minidriver.ContainerSpec{GUID: guid, KeySpec: s.keySpec("keyspec"), Bits: s.int("bits"), Default: s.bool("default")}, bump)
		if err != nil {
			return err
		}
		info, err := md.ContainerInfo(e.ctx, i)
		if err != nil {
			return err
		}
		res = containerResult(guid, i, info.PublicKey, info.Default)
		return nil
	})
	return res, err
}

func writerMakeCSR(e *env, s *stepCtx) (Values, error) {
	var res Values
	err := e.writer(s, func(md *minidriver.Card, _ minidriver.Bump) error {
		i, err := findContainer(e.ctx, md, s.str("guid"))
		if err != nil {
			return err
		}
		signer, err := md.Signer(e.ctx, i)
		if err != nil {
			return err
		}
		res, err = makeCSR(s, signer)
		return err
	})
	return res, err
}

func writerWriteCertificate(e *env, s *stepCtx) (Values, error) {
	var res Values
	err := e.writer(s, func(md *minidriver.Card, bump minidriver.Bump) error {
		cert, err := s.cert("cert")
		if err != nil {
			return err
		}
		i, err := findContainer(e.ctx, md, s.str("guid"))
		if err != nil {
			return err
		}
		info, err := md.ContainerInfo(e.ctx, i)
		if err != nil {
			return err
		}
		if s.bool("check-key") {
			if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(info.PublicKey) {
				return fmt.Errorf("certificate key does not match container %d's key: %w", i, winerr.NTE_BAD_PUBLIC_KEY)
			}
		}
		res = Values{"index": i, "file": "mscp/" + fs.CertFileName(i, info.KeySpec)}
		return md.WriteCertificate(e.ctx, i, info.KeySpec, cert.Raw, bump)
	})
	return res, err
}

func writerDeleteContainer(e *env, s *stepCtx) (Values, error) {
	return nil, e.writer(s, func(md *minidriver.Card, bump minidriver.Bump) error {
		i, err := findContainer(e.ctx, md, s.str("guid"))
		if err != nil {
			return err
		}
		move := -1
		if g := s.str("move-default-to"); g != "" {
			if move, err = findContainer(e.ctx, md, g); err != nil {
				return err
			}
		}
		cmap, err := md.Containers(e.ctx)
		if err != nil {
			return err
		}
		spec, _, _ := cmap[i].Key()
		if !s.bool("keep-certificate") {
			if err := md.DeleteCertificate(e.ctx, i, spec, bump); err != nil && !errors.Is(err, winerr.SCARD_E_FILE_NOT_FOUND) {
				return err
			}
		}
		return md.DeleteContainer(e.ctx, i, minidriver.DeleteOptions{MoveDefaultTo: move}, bump)
	})
}

func writerChangePIN(e *env, s *stepCtx, c *cardEnv, md *minidriver.Card) (Values, error) {
	if err := md.ChangePIN(e.ctx, s.str("old"), s.str("new"), s.bump()); err != nil {
		return nil, err
	}
	c.pin = s.str("new")
	return nil, nil
}

func findContainer(ctx context.Context, md *minidriver.Card, guid string) (int, error) {
	cmap, err := md.Containers(ctx)
	if err != nil {
		return -1, err
	}
	for i, r := range cmap {
		if r.IsValid() && r.GUID == guid {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no container %q on the card: %w", guid, winerr.NTE_BAD_KEYSET)
}
