// Package cardclean brings a personalised GIDS card back to a clean state
// with standard GIDS commands only, so that a suite can run one scenario
// after another on one real card: every key file, certificate file and
// container record is deleted, the PIN and its retry counter are reset
// with the admin key, and the minidriver files are restored to what
// gids-tool --initialize and the Windows inbox profile write
// (docs/reference/gids-protocol.md §2.14, §3.2). Verify then checks that
// state independently.
//
// Order matters on a card whose access rules hold (§4.2, §4.3): admin
// mutual authentication (§2.9) first, because only the admin can reset the
// retry counter and RESET RETRY COUNTER (§2.7) also sets the PIN, so a
// blocked or changed PIN is no obstacle; it deauthenticates, so the PIN is
// then verified for the deletions and writes, which need the EF's own
// write right (PIN for user key EFs and A010/A000 DOs). cardid is left as
// it is: it identifies the card, and writing it needs the admin.
//
// Cards that cannot be cleaned this way (no admin key, vendor-specific
// file systems) are reset with a vendor tool instead: see RunResetCommand.
package cardclean

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/cardharness/cardharness/harness/cardio"
	"github.com/cardharness/cardharness/minidriver"
	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/pcsc"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// Config says what the card uses.
type Config struct {
	PIN      string   // the PIN the card is personalised with (and gets back)
	AdminKey [24]byte // the card's 3DES admin key
}

// Errors. A failed step is a *StepError (errors.Is matches ErrClean and
// the card's status word); a card left in the wrong state is a
// *StateError (errors.Is matches ErrNotClean).
var (
	ErrClean    = errors.New("cardclean: cleaning failed")
	ErrNotClean = errors.New("cardclean: card is not in the clean state")
)

// StepError is a cleaning step the card refused.
type StepError struct {
	Step string
	Cmd  []byte
	SW   apdu.Status
	Err  error // transport or minidriver error, if any
}

func (e *StepError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("cardclean: %s: %v", e.Step, e.Err)
	}
	return fmt.Sprintf("cardclean: %s: %s answered %04X (%v)", e.Step, cardio.Hex(e.Cmd), uint16(e.SW), e.SW)
}

func (e *StepError) Is(t error) bool {
	if t == ErrClean {
		return true
	}
	if sw, ok := t.(apdu.Status); ok {
		return e.SW == sw
	}
	return false
}

func (e *StepError) Unwrap() error { return e.Err }

// StateError lists what differs from the clean state.
type StateError struct{ Problems []string }

func (e *StateError) Error() string {
	return "cardclean: card is not clean: " + strings.Join(e.Problems, "; ")
}

func (e *StateError) Is(t error) bool { return t == ErrNotClean }

// Report says what a cleaning removed.
type Report struct {
	KeyRefs []byte   // key references whose key EFs were deleted
	DOs     []string // data objects deleted, as "EF/TAG"
	APDUs   int      // APDUs sent, verification included
}

// Key references a GIDS card can hold (B081..B0FF, §3.1).
const firstKeyRef, lastKeyRef = fs.FirstKeyRef, 0xFF

// The data objects of the clean state (§3.2): anything else in A010 or
// A000 is a left-over (a certificate, the keymap) and is deleted.
var cleanDOs = map[uint16][]uint16{
	fs.EFEveryoneReadUserWriteAc: {fs.DOCardApps, fs.DOCardCF, fs.DOCmapFile},
	fs.EFUserCreateDeleteDirAc:   {fs.DOMasterFile},
}

// Content of the restored files (§2.14 steps 19-22).
func restored() ([]struct {
	ef, tag uint16
	name    string
	value   []byte
}, error) {
	mf, err := fs.InitialMasterFile().Bytes()
	if err != nil {
		return nil, err
	}
	apps, err := fs.InitialCardApps().Bytes()
	if err != nil {
		return nil, err
	}
	return []struct {
		ef, tag uint16
		name    string
		value   []byte
	}{
		{fs.EFUserCreateDeleteDirAc, fs.DOMasterFile, "masterfile", mf},
		{fs.EFEveryoneReadUserWriteAc, fs.DOCardApps, "cardapps", apps},
		{fs.EFEveryoneReadUserWriteAc, fs.DOCardCF, "cardcf", make([]byte, fs.CardCFSize)},
		{fs.EFEveryoneReadUserWriteAc, fs.DOCmapFile, "cmapfile", nil},
	}, nil
}

type cleaner struct {
	ctx context.Context
	c   *cardio.Conn
	cfg Config
	rep *Report
}

// step sends cmd and insists on 9000.
func (k *cleaner) step(name string, cmd []byte) ([]byte, error) {
	data, sw, err := k.c.Send(k.ctx, cmd)
	if err != nil {
		return nil, &StepError{Step: name, Cmd: cmd, Err: err}
	}
	if !sw.OK() {
		return nil, &StepError{Step: name, Cmd: cmd, SW: sw}
	}
	return data, nil
}

func selectAID() []byte {
	return cardio.Short(0x00, 0xA4, 0x04, 0x00, []byte{0xA0, 0x00, 0x00, 0x03, 0x97, 0x42, 0x54, 0x46, 0x59}, true)
}

func selectFID(fid uint16) []byte {
	return cardio.Short(0x00, 0xA4, 0x00, 0x0C, []byte{byte(fid >> 8), byte(fid)}, false)
}

func getDO(ef, tag uint16) []byte {
	return cardio.Short(0x00, 0xCB, byte(ef>>8), byte(ef), []byte{0x5C, 0x02, byte(tag >> 8), byte(tag)}, true)
}

func putDO(ef, tag uint16, value []byte) []byte {
	return cardio.Short(0x00, 0xDB, byte(ef>>8), byte(ef), ber.Encode(uint32(tag), value), false)
}

func verifyPIN(pin string) []byte {
	return cardio.Short(0x00, 0x20, 0x00, 0x80, []byte(pin), false)
}

// Clean brings the card in t to the clean state and verifies it. The card
// must be a GIDS card in the operational state with cfg's admin key.
func Clean(ctx context.Context, t pcsc.Transport, cfg Config) (*Report, error) {
	if n := len(cfg.PIN); n < 4 || n > 16 {
		return nil, fmt.Errorf("%w: PIN must have 4 to 16 characters, has %d", ErrClean, n)
	}
	k := &cleaner{ctx: ctx, c: cardio.New(t), cfg: cfg, rep: &Report{}}
	err := k.clean()
	if err == nil {
		err = verify(ctx, k.c, cfg)
	}
	k.rep.APDUs = k.c.Count
	return k.rep, err
}

func (k *cleaner) clean() error {
	if _, err := k.step("SELECT GIDS application", selectAID()); err != nil {
		return err
	}
	// Admin first: RESET RETRY COUNTER sets the PIN and its counter
	// whatever a scenario left (changed, blocked).
	md, err := minidriver.Acquire(k.ctx, k.c, minidriver.Options{})
	if err != nil {
		return &StepError{Step: "select and read cardid", Err: err}
	}
	if err := md.AuthenticateAdmin(k.ctx, k.cfg.AdminKey, nil); err != nil {
		return &StepError{Step: "admin mutual authentication (is --admin-key right?)", Err: err}
	}
	if _, err := k.step("RESET RETRY COUNTER (set PIN, reset tries)",
		cardio.Short(0x00, 0x2C, 0x02, 0x80, []byte(k.cfg.PIN), false)); err != nil {
		return err
	}
	if _, err := k.step("VERIFY PIN", verifyPIN(k.cfg.PIN)); err != nil {
		return err
	}
	if err := k.deleteKeys(); err != nil {
		return err
	}
	if err := k.deleteDOs(); err != nil {
		return err
	}
	files, err := restored()
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := k.writeDO("restore "+f.name, f.ef, f.tag, f.value); err != nil {
			return err
		}
	}
	_, err = k.step("logout", []byte{0x00, 0x20, 0x00, 0x82})
	return err
}

// deleteKeys deletes every user key EF. There is no directory listing in
// GIDS, so every key reference is probed by SELECT (a key EF can exist
// without a cmapfile record after an aborted container creation).
func (k *cleaner) deleteKeys() error {
	for ref := firstKeyRef; ref <= lastKeyRef; ref++ {
		fid := 0xB000 | uint16(ref)
		cmd := selectFID(fid)
		_, sw, err := k.c.Send(k.ctx, cmd)
		if err != nil {
			return &StepError{Step: fmt.Sprintf("SELECT key EF %04X", fid), Cmd: cmd, Err: err}
		}
		if sw == apdu.SWFileNotFound {
			continue
		}
		if !sw.OK() {
			return &StepError{Step: fmt.Sprintf("SELECT key EF %04X", fid), Cmd: cmd, SW: sw}
		}
		del := []byte{0x00, 0xE4, 0x00, 0x00}
		_, sw, err = k.c.Send(k.ctx, del)
		if err != nil {
			return &StepError{Step: fmt.Sprintf("DELETE FILE %04X", fid), Cmd: del, Err: err}
		}
		if sw == apdu.SWConditionsNotSatisfied {
			// An EF still in creation state (an aborted CREATE FILE)
			// accepts only ACTIVATE (§4.1): activate, then delete.
			if _, err := k.step(fmt.Sprintf("ACTIVATE FILE %04X before deleting it", fid), []byte{0x00, 0x44, 0x00, 0x00}); err != nil {
				return err
			}
			_, sw, err = k.c.Send(k.ctx, del)
			if err != nil {
				return &StepError{Step: fmt.Sprintf("DELETE FILE %04X", fid), Cmd: del, Err: err}
			}
		}
		if !sw.OK() {
			return &StepError{Step: fmt.Sprintf("DELETE FILE %04X", fid), Cmd: del, SW: sw}
		}
		k.rep.KeyRefs = append(k.rep.KeyRefs, byte(ref))
	}
	return nil
}

// listDOs returns the tags of the DOs in ef: GET DATA with 5C 00 lists
// them all (§2.3). A card that cannot list falls back to the tags the
// masterfile references plus the keymap.
func listDOs(ctx context.Context, c *cardio.Conn, ef uint16) ([]uint16, error) {
	cmd := cardio.Short(0x00, 0xCB, byte(ef>>8), byte(ef), []byte{0x5C, 0x00}, true)
	data, sw, err := c.Send(ctx, cmd)
	if err != nil {
		return nil, &StepError{Step: fmt.Sprintf("list DOs of %04X", ef), Cmd: cmd, Err: err}
	}
	if sw.OK() {
		tlvs, err := ber.Parse(data)
		if err != nil {
			return nil, &StepError{Step: fmt.Sprintf("list DOs of %04X", ef), Cmd: cmd, Err: fmt.Errorf("malformed answer: %w", err)}
		}
		var tags []uint16
		for _, t := range tlvs {
			tags = append(tags, uint16(t.Tag))
		}
		return tags, nil
	}
	// Fallback: what the masterfile names, and the keymap.
	mfData, sw, err := c.Send(ctx, getDO(fs.EFUserCreateDeleteDirAc, fs.DOMasterFile))
	if err != nil || !sw.OK() {
		return nil, &StepError{Step: fmt.Sprintf("list DOs of %04X (5C 00 refused, masterfile unreadable)", ef), Cmd: cmd, SW: sw, Err: err}
	}
	v, ok, _ := ber.Find(mfData, uint32(fs.DOMasterFile))
	if !ok {
		return nil, &StepError{Step: "read masterfile", Err: fmt.Errorf("no DF1F in % X", mfData)}
	}
	mf, perr := fs.ParseMasterFile(v)
	if perr != nil {
		return nil, &StepError{Step: "read masterfile", Err: perr}
	}
	var tags []uint16
	for _, r := range mf {
		if r.EF == ef && r.DO != 0 {
			tags = append(tags, r.DO)
		}
	}
	if ef == fs.EFUserCreateDeleteDirAc {
		tags = append(tags, fs.DOKeyMap)
	}
	return tags, nil
}

// deleteDOs deletes every DO of A010 and A000 that the clean state does
// not have. PUT DATA of an empty value empties a DO; a second one deletes
// it on cards with GidsApplet's semantics (§2.4); either is acceptable to
// OpenSC and Windows, which only read what the masterfile references.
func (k *cleaner) deleteDOs() error {
	for _, ef := range []uint16{fs.EFEveryoneReadUserWriteAc, fs.EFUserCreateDeleteDirAc} {
		tags, err := listDOs(k.ctx, k.c, ef)
		if err != nil {
			return err
		}
		for _, tag := range tags {
			if slices.Contains(cleanDOs[ef], tag) {
				continue
			}
			if err := k.deleteDO(ef, tag); err != nil {
				return err
			}
			k.rep.DOs = append(k.rep.DOs, fmt.Sprintf("%04X/%04X", ef, tag))
		}
	}
	return nil
}

// deleteDO removes one DO with PUT DATA of an empty value: that empties a
// non-empty DO and deletes an empty one (GidsApplet's semantics, §2.4), so
// a DO that is empty afterwards gets a second one. A card that keeps empty
// DOs is fine too: OpenSC and Windows only read what the masterfile
// references, and Verify tolerates empty left-overs.
func (k *cleaner) deleteDO(ef, tag uint16) error {
	name := fmt.Sprintf("delete DO %04X/%04X", ef, tag)
	if _, err := k.step(name, putDO(ef, tag, nil)); err != nil {
		return err
	}
	data, sw, err := k.c.Send(k.ctx, getDO(ef, tag))
	if err != nil {
		return &StepError{Step: name, Err: err}
	}
	if v, ok, _ := ber.Find(data, uint32(tag)); sw.OK() && ok && len(v) == 0 {
		_, err = k.step(name+" (empty)", putDO(ef, tag, nil))
	}
	return err
}

// writeDO stores value in a DO. An empty value cannot simply be PUT: on an
// already empty DO that deletes it (§2.4), so a one-byte placeholder goes
// first.
func (k *cleaner) writeDO(name string, ef, tag uint16, value []byte) error {
	if len(value) == 0 {
		if _, err := k.step(name+" (placeholder)", putDO(ef, tag, []byte{0})); err != nil {
			return err
		}
	}
	_, err := k.step(name, putDO(ef, tag, value))
	return err
}

// Verify checks that the card in t is in the clean state, reading it with
// standard commands only: no user key EF, the minidriver files as
// initialised, no other DO (an emptied one is tolerated), the PIN accepted
// with every try left. It authenticates the PIN and logs out.
func Verify(ctx context.Context, t pcsc.Transport, cfg Config) error {
	return verify(ctx, cardio.New(t), cfg)
}

func verify(ctx context.Context, c *cardio.Conn, cfg Config) error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if _, sw, err := c.Send(ctx, selectAID()); err != nil || !sw.OK() {
		return &StepError{Step: "SELECT GIDS application", Cmd: selectAID(), SW: sw, Err: err}
	}
	files, err := restored()
	if err != nil {
		return err
	}
	for _, f := range files {
		data, sw, err := c.Send(ctx, getDO(f.ef, f.tag))
		if err != nil {
			return &StepError{Step: "read " + f.name, Err: err}
		}
		if !sw.OK() {
			bad("%s: GET DATA %04X/%04X answered %04X", f.name, f.ef, f.tag, uint16(sw))
			continue
		}
		tlv, _, perr := ber.ParseOne(data)
		if perr != nil || tlv.Tag != uint32(f.tag) {
			bad("%s: answer does not start with DO %04X: % X", f.name, f.tag, data)
			continue
		}
		if string(tlv.Value) != string(f.value) {
			bad("%s is % X, want % X", f.name, tlv.Value, f.value)
		}
	}
	for _, ef := range []uint16{fs.EFEveryoneReadUserWriteAc, fs.EFUserCreateDeleteDirAc} {
		tags, err := listDOs(ctx, c, ef)
		if err != nil {
			return err
		}
		for _, tag := range tags {
			if slices.Contains(cleanDOs[ef], tag) {
				continue
			}
			data, sw, err := c.Send(ctx, getDO(ef, tag))
			if err != nil {
				return &StepError{Step: fmt.Sprintf("read DO %04X/%04X", ef, tag), Err: err}
			}
			if v, ok, _ := ber.Find(data, uint32(tag)); sw.OK() && ok && len(v) > 0 {
				bad("left-over DO %04X/%04X (%d bytes)", ef, tag, len(v))
			}
		}
	}
	for ref := firstKeyRef; ref <= lastKeyRef; ref++ {
		fid := 0xB000 | uint16(ref)
		_, sw, err := c.Send(ctx, selectFID(fid))
		if err != nil {
			return &StepError{Step: fmt.Sprintf("SELECT key EF %04X", fid), Err: err}
		}
		if sw != apdu.SWFileNotFound {
			bad("key EF %04X exists (SELECT answered %04X)", fid, uint16(sw))
		}
	}
	// Tries before VERIFY: a correct VERIFY would hide a lowered counter.
	resp, sw, err := c.Send(ctx, cardio.Short(0x00, 0xCB, 0x3F, 0xFF, []byte{0x5C, 0x02, 0x7F, 0x71}, true))
	if err != nil {
		return &StepError{Step: "PIN status", Err: err}
	}
	left, limit, ok := pinTries(resp)
	switch {
	case !sw.OK() || !ok:
		bad("PIN status 7F71 unreadable (%04X % X)", uint16(sw), resp)
	case left != limit:
		bad("PIN has %d of %d tries left", left, limit)
	}
	if _, sw, err := c.Send(ctx, verifyPIN(cfg.PIN)); err != nil {
		return &StepError{Step: "VERIFY PIN", Err: err}
	} else if !sw.OK() {
		bad("VERIFY with the configured PIN answered %04X (%v)", uint16(sw), sw)
	}
	if _, _, err := c.Send(ctx, []byte{0x00, 0x20, 0x00, 0x82}); err != nil {
		return &StepError{Step: "logout", Err: err}
	}
	if len(problems) > 0 {
		return &StateError{Problems: problems}
	}
	return nil
}

// pinTries reads 7F71 { 97 left, 93 limit } (§2.3).
func pinTries(resp []byte) (left, limit int, ok bool) {
	v, ok1, _ := ber.Find(resp, 0x7F71)
	l, ok2, _ := ber.Find(v, 0x97)
	m, ok3, _ := ber.Find(v, 0x93)
	if !ok1 || !ok2 || !ok3 || len(l) != 1 || len(m) != 1 {
		return 0, 0, false
	}
	return int(l[0]), int(m[0]), true
}

// RunResetCommand runs a vendor's erase/personalise tool (--reset-cmd)
// through sh -c, with PCSCLITE_CSOCK_NAME and CARDHARNESS_READER set so
// the tool reaches the same card. Its output is returned in the error when
// it fails.
func RunResetCommand(ctx context.Context, command, reader string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Env = append(os.Environ(), "CARDHARNESS_READER="+reader)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("--reset-cmd %q: %w\n%s", command, err, strings.TrimSpace(string(out)))
	}
	return nil
}
