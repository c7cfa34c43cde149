package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/cardharness/cardharness/vcard"
	"github.com/cardharness/cardharness/vcard/gids"
	"github.com/cardharness/cardharness/vcard/store"
	"github.com/cardharness/cardharness/vcard/testcard"
	"github.com/cardharness/cardharness/vcard/trace"
	"github.com/cardharness/cardharness/vcard/vpcd"
)

// Defaults of the `initialized` profile: the values OpenSC's CI and the
// GIDS reference use (PIN 123456, an all-zero 3DES admin key), so that
// documentation examples work as written. Scenarios set their own.
const (
	defaultPIN      = "123456"
	defaultAdminKey = "000000000000000000000000000000000000000000000000"
)

// cardSpec is everything that makes one virtual card.
type cardSpec struct {
	kind     string // gids | echo
	profile  string // blank | initialized
	pin      string
	adminKey string
	cardID   string
	atr      string
	stateDir string // "" = in memory
	trace    string // "" = none
	secrets  bool   // keep PINs and keys in the trace
	seed     int64  // 0: real random keys; else seeded test keys
}

func (s *cardSpec) addFlags(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	Int64Var(*int64, string, int64, string)
}, withState bool) {
	fs.StringVar(&s.kind, "card", "gids", "card type: gids (the virtual GIDS card) or echo (a trivial test card)")
	fs.StringVar(&s.profile, "profile", "blank", "gids card profile: blank (what gids-tool --initialize expects) or initialized (as after gids-tool --initialize)")
	fs.StringVar(&s.pin, "pin", defaultPIN, "user PIN of the initialized profile")
	fs.StringVar(&s.adminKey, "admin-key", defaultAdminKey, "3DES admin key of the initialized profile, 48 hex digits")
	fs.StringVar(&s.cardID, "cardid", "", "cardid of the initialized profile, 32 hex digits (default: random)")
	fs.StringVar(&s.atr, "atr", "", "ATR in hex (default: the card type's own)")
	if withState {
		fs.StringVar(&s.stateDir, "state", "", "keep card state in this directory across restarts (default: in memory)")
	}
	fs.StringVar(&s.trace, "trace", "", "write the card-side APDU trace (JSON lines, mode 0600, PINs and key material masked) to this file; print it with cardharness trace")
	fs.BoolVar(&s.secrets, "trace-secrets", false, "keep PINs and key material in the --trace file (default: masked)")
	fs.Int64Var(&s.seed, "seed", 0, "make on-card key generation deterministic: keys from a pool of PUBLIC test keys chosen by this seed (for tests only: such keys protect nothing; default: real random keys)")
}

// keySeed is card n's gids.Options.KeySeed: nil (real random keys) unless
// --seed; each card of a stack gets its own, so two cards never share keys
// by accident of the seed.
func (s *cardSpec) keySeed(n int) []byte {
	if s.seed == 0 {
		return nil
	}
	return fmt.Appendf(nil, "cardharness --seed %d card %d", s.seed, n)
}

// build makes card number n. With several cards, --state DIR holds one
// subdirectory per card and --trace FILE one file per card.
func (s *cardSpec) build(n, total int) (vcard.Card, func() error, error) {
	closeFn := func() error { return nil }
	var atr []byte
	if s.atr != "" {
		b, err := hex.DecodeString(strings.ReplaceAll(s.atr, " ", ""))
		if err != nil || len(b) < 2 || len(b) > 33 {
			return nil, nil, usageError{fmt.Sprintf("--atr %q: want 2..33 bytes of hex", s.atr)}
		}
		atr = b
	}
	var card vcard.Card
	switch s.kind {
	case "echo":
		card = &testcard.Echo{AnswerToReset: atr}
	case "gids":
		st := store.NewMemory()
		if s.stateDir != "" {
			dir := s.stateDir
			if total > 1 {
				dir = filepath.Join(dir, fmt.Sprintf("card%d", n))
			}
			// OpenDir locks the directory for as long as this card
			// runs: a second card on it is refused, naming our PID.
			var err error
			if st, err = store.OpenDir(dir); err != nil {
				return nil, nil, err
			}
		}
		g, err := gids.New(gids.Options{Store: st, ATR: atr, KeySeed: s.keySeed(n)})
		if err == nil {
			err = s.applyProfile(g)
		}
		if err != nil {
			st.Close()
			return nil, nil, err
		}
		closeFn = st.Close
		card = g
	default:
		return nil, nil, usageError{fmt.Sprintf("--card %q: unknown card type (known: gids, echo)", s.kind)}
	}
	if s.trace != "" {
		name := s.trace
		if total > 1 {
			ext := filepath.Ext(name)
			name = fmt.Sprintf("%s.card%d%s", strings.TrimSuffix(name, ext), n, ext)
		}
		f, err := trace.Create(name)
		if err != nil {
			closeFn()
			return nil, nil, err
		}
		tw := trace.NewWriter(f)
		tw.KeepSecrets = s.secrets
		card = trace.Card(card, tw)
		closeStore := closeFn
		closeFn = func() error { return errors.Join(f.Close(), closeStore()) }
	}
	return card, closeFn, nil
}

// applyProfile brings a gids card into the requested profile. A card with
// persistent state keeps what it has: --profile only shapes a blank card.
func (s *cardSpec) applyProfile(g *gids.Card) error {
	switch s.profile {
	case "blank":
		return nil
	case "initialized":
		if g.LifeCycle() != gids.Creation {
			return nil // already initialised (persistent state)
		}
		var p gids.InitParams
		p.PIN = s.pin
		key, err := hex.DecodeString(s.adminKey)
		if err != nil || len(key) != 24 {
			return usageError{"--admin-key: want 48 hex digits (a 24-byte 3DES key)"}
		}
		copy(p.AdminKey[:], key)
		if s.cardID != "" {
			id, err := hex.DecodeString(s.cardID)
			if err != nil || len(id) != 16 {
				return usageError{"--cardid: want 32 hex digits"}
			}
			copy(p.CardID[:], id)
		}
		if len(s.pin) < 4 || len(s.pin) > 16 {
			return usageError{"--pin: GIDS PINs have 4 to 16 characters"}
		}
		return g.Initialize(p)
	}
	return usageError{fmt.Sprintf("--profile %q: unknown profile (known: blank, initialized)", s.profile)}
}

func runCard(args []string, stdout, stderr io.Writer) error {
	fs, lf := newFlags("card", "--vpcd HOST:PORT [--state DIR] [--profile blank|initialized] [--atr HEX] [--trace FILE]", stderr)
	addr := fs.String("vpcd", fmt.Sprintf("127.0.0.1:%d", vpcd.DefaultPort), "vpcd slot to dial (host:port; slot n of a reader entry is port 35963+n)")
	var spec cardSpec
	spec.addFlags(fs, true)
	if err := parseFlagsOnly(fs, args); err != nil {
		return err
	}
	card, closeTrace, err := spec.build(0, 1)
	if err != nil {
		return err
	}
	defer closeTrace()
	ctx, stop := serveContext()
	defer stop()
	log := lf.logger(stderr)
	link := vpcd.NewLink(card, vpcd.TCPDialer(*addr), vpcd.WithLogger(log))
	fmt.Fprintf(stderr, "cardharness card: serving a %s card (%s) to vpcd at %s; Ctrl-C to stop\n", spec.kind, spec.profile, *addr)
	go func() {
		select {
		case <-link.Attached():
			log.Info("connected to vpcd", "addr", *addr)
		case <-ctx.Done():
		}
	}()
	if err := link.Run(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
