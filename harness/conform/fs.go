package conform

import (
	"bytes"
	"fmt"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

// readDO reads a DO without authentication and insists that the answer
// starts with the DO's own TLV: OpenSC 0.23 searches the whole buffer
// otherwise (§2.3).
func (t *T) readDO(name string, ef, tag uint16) ([]byte, error) {
	data, err := t.expect(fmt.Sprintf("GET DATA %s %04X/%04X", name, ef, tag), getDO(ef, tag), apdu.SWOK)
	if err != nil {
		return nil, err
	}
	tlv, _, perr := ber.ParseOne(data)
	if perr != nil || tlv.Tag != uint32(tag) {
		return nil, fmt.Errorf("%s: the answer does not start with the DO %04X (§2.3): % X", name, tag, data)
	}
	return tlv.Value, nil
}

// readCardCF reads cardcf where every GIDS minidriver keeps it (A010,
// DO DF22): several checks read it, and the checks that write it read it
// back.
func (t *T) readCardCF() ([]byte, error) {
	return t.readDO("cardcf", fs.EFEveryoneReadUserWriteAc, fs.DOCardCF)
}

func checkMasterfile(t *T) error {
	v, err := t.readDO("masterfile", fs.EFUserCreateDeleteDirAc, fs.DOMasterFile)
	if err != nil {
		return err
	}
	mf, err := fs.ParseMasterFile(v)
	if err != nil {
		return fmt.Errorf("masterfile: %w", err)
	}
	for _, want := range fs.InitialMasterFile() {
		got, ok := mf.Lookup(want.Dir, want.Name)
		if !ok {
			return fmt.Errorf("masterfile has no entry %q/%q (§3.3)", want.Dir, want.Name)
		}
		if got != want {
			return fmt.Errorf("masterfile entry %q/%q is %+v, want %+v", want.Dir, want.Name, got, want)
		}
	}
	return nil
}

func checkCardID(t *T) error {
	v, err := t.readDO("cardid", fs.EFEveryoneReadAdminWriteAc, fs.DOCardID)
	if err != nil {
		return err
	}
	if len(v) != 16 {
		return fmt.Errorf("cardid has %d bytes, want 16 (§3.4)", len(v))
	}
	if bytes.Equal(v, make([]byte, 16)) {
		return fmt.Errorf("cardid is all zero: hosts key their caches by it, every card needs its own (§3.4)")
	}
	return nil
}

func checkCardCF(t *T) error {
	v, err := t.readCardCF()
	if err != nil {
		return err
	}
	if len(v) != fs.CardCFSize {
		return fmt.Errorf("cardcf has %d bytes, want exactly 6 (§3.5)", len(v))
	}
	_, err = fs.ParseCardCF(v)
	return err
}

func checkCardApps(t *T) error {
	v, err := t.readDO("cardapps", fs.EFEveryoneReadUserWriteAc, fs.DOCardApps)
	if err != nil {
		return err
	}
	apps, err := fs.ParseCardApps(v)
	if err != nil {
		return err
	}
	if apps.Index("mscp") < 0 {
		return fmt.Errorf("cardapps %q does not list mscp (§3.2)", apps)
	}
	return nil
}

func (t *T) cmap() (fs.ContainerMap, error) {
	v, err := t.readDO("cmapfile", fs.EFEveryoneReadUserWriteAc, fs.DOCmapFile)
	if err != nil {
		return nil, err
	}
	return fs.ParseContainerMap(v)
}

func checkCmapfile(t *T) error {
	_, err := t.cmap()
	return err
}

func checkKeymap(t *T) error {
	cmap, err := t.cmap()
	if err != nil {
		return err
	}
	data, sw, err := t.c.Send(t.ctx, getDO(fs.EFUserCreateDeleteDirAc, fs.DOKeyMap))
	if err != nil {
		return err
	}
	if sw == apdu.SWReferencedDataNotFound {
		if len(cmap) > 0 {
			return fmt.Errorf("no keymap but %d cmapfile records: OpenSC aborts key creation and deletion (§3.6)", len(cmap))
		}
		return nil
	}
	if !sw.OK() {
		return fmt.Errorf("GET DATA keymap answered %04X, want the DO or 6A88", uint16(sw))
	}
	v, ok, _ := ber.Find(data, uint32(fs.DOKeyMap))
	if !ok {
		return fmt.Errorf("keymap answer without DF20: % X", data)
	}
	km, err := fs.ParseKeyMap(v)
	if err != nil {
		return err
	}
	if len(v) > 0 {
		return fs.CheckConsistent(cmap, km)
	}
	return nil
}

// pinStatus reads 7F71 (§2.3).
func (t *T) pinStatus() (left, limit int, err error) {
	data, err := t.expect("GET DATA PIN status 7F71", apdu.Short(0x00, 0xCB, 0x3F, 0xFF, []byte{0x5C, 0x02, 0x7F, 0x71}, true), apdu.SWOK)
	if err != nil {
		return 0, 0, err
	}
	v, ok1, _ := ber.Find(data, 0x7F71)
	l, ok2, _ := ber.Find(v, 0x97)
	m, ok3, _ := ber.Find(v, 0x93)
	if !ok1 || !ok2 || !ok3 || len(l) != 1 || len(m) != 1 {
		return 0, 0, fmt.Errorf("PIN status % X: want 7F71 { 97 01 left 93 01 limit }", data)
	}
	return int(l[0]), int(m[0]), nil
}

func checkPINStatus(t *T) error {
	left, limit, err := t.pinStatus()
	if err != nil {
		return err
	}
	if limit == 0 || left > limit {
		return fmt.Errorf("PIN status: %d tries left of %d", left, limit)
	}
	return nil
}

func checkPINVerify(t *T) error {
	left, limit, err := t.pinStatus()
	if err != nil {
		return err
	}
	if left == 0 {
		return notApplicable("the PIN is blocked")
	}
	if left < limit {
		return notApplicable("the PIN has %d of %d tries left; a read-only run does not reset the counter", left, limit)
	}
	if err := t.verifyPIN(); err != nil {
		return fmt.Errorf("%w (is --pin right?)", err)
	}
	if l2, _, err := t.pinStatus(); err != nil || l2 != limit {
		return fmt.Errorf("after a correct VERIFY: %d tries left of %d (%v)", l2, limit, err)
	}
	_, err = t.expect("logout VERIFY P2=82", logout, apdu.SWOK)
	return err
}

func checkWriteWithoutAuth(t *T) error {
	// The current value goes back: harmless even on a card that wrongly
	// accepts it, so this check is read-only.
	v, err := t.readCardCF()
	if err != nil {
		return err
	}
	_, err = t.refuse("PUT DATA cardcf without authentication", putDO(fs.EFEveryoneReadUserWriteAc, fs.DOCardCF, v), apdu.SWSecurityStatusNotSatisfied)
	return err
}

func checkCardCFWrite(t *T) error {
	v, err := t.readCardCF()
	if err != nil {
		return err
	}
	cf, err := fs.ParseCardCF(v)
	if err != nil {
		return err
	}
	if err := t.verifyPIN(); err != nil {
		return err
	}
	// A bump, as every correct writer does it (docs/reference/minidriver-semantics.md §1.2).
	cf.BumpFiles()
	want := cf.Bytes()
	if _, err := t.expect("PUT DATA cardcf (files counter bumped)", putDO(fs.EFEveryoneReadUserWriteAc, fs.DOCardCF, want), apdu.SWOK); err != nil {
		return err
	}
	got, err := t.readCardCF()
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("cardcf written as % X reads back as % X: the card dropped the write, hosts will serve stale caches", want, got)
	}
	return nil
}
