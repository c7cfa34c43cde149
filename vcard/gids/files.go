package gids

import (
	"slices"

	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/store"
)

// Capacity limits. GidsApplet allows 30 files and 30 DOs per EF; a virtual
// card can afford more, but limits keep a misbehaving host from growing
// the state file without bound. Exceeding one is answered 6A84.
const (
	maxEFs       = 160        // 6 DO EFs + admin key + 126 containers (GIDS_MAX_CONTAINER) fit
	maxDOsPerEF  = 255        // per DO container EF
	maxEFContent = 1024 << 10 // total value bytes of the DOs of one EF
)

// systemFID reports whether fid is one of the files gids-tool creates at
// personalisation (docs/reference/gids-protocol.md §2.14, §3.1): the DO
// container EFs A000 and A010..A014 and the admin key EF B080. Only the
// admin may delete one or create one that is missing, so that nobody who
// knows only the PIN can replace the admin key or re-create an admin-write
// file with an access rule of their own.
func systemFID(fid uint16) bool {
	switch fid {
	case 0xA000, 0xA010, 0xA011, 0xA012, 0xA013, 0xA014, 0xB000 | adminKeyRef:
		return true
	}
	return false
}

// adminSC is the security condition "admin key authenticated".
const adminSC = 0x20

// selectFile implements SELECT (docs/reference/gids-protocol.md §1.4, §1.5; GA
// GidsFileSystem.processSelectFile).
//
//   - P1=04 selects the application by DF name: any prefix of the AID of at
//     least 9 bytes. Selecting it is a logout: all volatile state (PIN and
//     admin status, security environment, current EF, challenge, chains) is
//     dropped. An unknown name is answered 6A82 and changes nothing.
//   - P1=00 selects by FID: no data or 3FFF is the application DF (current
//     EF cleared, authentication kept), any other FID an EF created with
//     CREATE FILE (6A82 if none).
//   - Anything else, notably select by path (P1=08/09), is answered 6A86.
//
// P2 (only b4b3 may be set, else 6A86): 00 FCI, 04 FCP, 08 FMD, 0C nothing.
// FCI and FMD exist only for the application (6A86 for an EF). Unlike GA,
// which selects the EF before refusing such a P2, a refused SELECT changes
// nothing.
func (c *Card) selectFile(cmd apdu.Command) ([]byte, error) {
	if cmd.P2&0xF3 != 0 {
		return nil, apdu.SWIncorrectP1P2
	}
	switch cmd.P1 {
	case 0x04:
		if !matchAID(cmd.Data) {
			return nil, apdu.SWFileNotFound
		}
		data, err := appSelectResponse(cmd.P2)
		if err != nil {
			return nil, err
		}
		c.deselect()
		return data, nil
	case 0x00:
		var fid uint16
		switch len(cmd.Data) {
		case 0:
			fid = 0x3FFF
		case 2:
			fid = uint16(cmd.Data[0])<<8 | uint16(cmd.Data[1])
		default:
			return nil, apdu.SWWrongLength
		}
		if fid == 0x3FFF {
			data, err := appSelectResponse(cmd.P2)
			if err != nil {
				return nil, err
			}
			c.sec.currentEF = 0
			return data, nil
		}
		if reservedFID(fid) {
			return nil, apdu.SWFileNotFound
		}
		f, err := existingEF(c.store, fid)
		if err != nil {
			return nil, err
		}
		var data []byte
		switch cmd.P2 & 0x0C {
		case 0x04:
			data = slices.Clone(f.fcp)
		case 0x0C:
		default:
			return nil, apdu.SWIncorrectP1P2
		}
		c.sec.currentEF = fid
		return data, nil
	}
	return nil, apdu.SWIncorrectP1P2
}

// appSelectResponse returns the application's FCI, FCP or FMD for P2.
func appSelectResponse(p2 byte) ([]byte, error) {
	switch p2 & 0x0C {
	case 0x00:
		return slices.Clone(appFCI), nil
	case 0x04:
		return slices.Clone(appFCP), nil
	case 0x08:
		return slices.Clone(appFMD), nil
	}
	return nil, nil
}

// createFile implements CREATE FILE (docs/reference/gids-protocol.md §2.13; GA
// GidsFileSystem.processCreateFile, getSafeFile). The data is an FCP (62):
// 83 FID, 82 descriptor 39 (DO container) or 18 (key file with an A5 CRT
// list of 11..127 bytes), optional 8C access rule. A malformed FCP, an
// unsupported descriptor, a reserved or already used FID: 6984. Then the
// application's "create EF" rule (8C 03 03 30 30: PIN or admin) applies
// (6982), and a system file (systemFID) may only be created by the admin
// (6982); more than maxEFs files: 6A84. The new EF is in creation state
// (only ACTIVATE FILE is accepted on it) and becomes the current EF.
func (c *Card) createFile(cmd apdu.Command) ([]byte, error) {
	if cmd.P1 != 0 || cmd.P2 != 0 {
		return nil, apdu.SWIncorrectP1P2
	}
	info, err := parseFCP(cmd.Data)
	if err != nil || reservedFID(info.fid) {
		return nil, apdu.SWReferenceDataNotUsable
	}
	err = c.update(func(tx *store.Tx) error {
		lc, err := loadLifeCycle(tx)
		if err != nil {
			return err
		}
		if _, exists := tx.Get(efKey(info.fid)); exists {
			return apdu.SWReferenceDataNotUsable
		}
		if err := c.checkACL(appACL, opCreateEF, lc == Creation); err != nil {
			return err
		}
		if systemFID(info.fid) {
			if err := c.checkSC(adminSC, lc == Creation); err != nil {
				return err
			}
		}
		if countEFs(tx) >= maxEFs {
			return apdu.SWNotEnoughMemory
		}
		rec := &efRecord{fid: info.fid, kind: info.kind, state: Creation, fcp: cmd.Data}
		tx.Put(efKey(info.fid), rec.encode())
		// A file never leaves data behind (deleteFile removes it), but a
		// restored or hand-edited store might: start clean.
		for _, k := range tx.Keys(doPrefix(info.fid)) {
			tx.Delete(k)
		}
		if _, ok := tx.Get(keyKey(info.fid)); ok {
			tx.Delete(keyKey(info.fid))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.sec.currentEF = info.fid
	return nil, nil
}

// activateFile implements ACTIVATE FILE (docs/reference/gids-protocol.md §2.13, §4.1; GA
// GidsFileSystem.processActivateFile). It activates the current EF, or,
// when no EF is current (after SELECT 3FFF or the AID), the application:
// the card leaves the creation state, access rules are enforced from now
// on and all authentication is cleared. Windows sends it as case 2
// (00 44 00 00 00); a data field is refused with 6700.
func (c *Card) activateFile(cmd apdu.Command) ([]byte, error) {
	if err := noParameters(cmd); err != nil {
		return nil, err
	}
	if fid := c.sec.currentEF; fid != 0 {
		return nil, c.activateEF(fid)
	}
	return nil, c.activateApplication()
}

// activateApplication ends the creation state (the application's
// activate rule applies) and clears all authentication.
func (c *Card) activateApplication() error {
	err := c.update(func(tx *store.Tx) error {
		lc, err := loadLifeCycle(tx)
		if err != nil {
			return err
		}
		if err := c.checkACL(appACL, opActivate, lc == Creation); err != nil {
			return err
		}
		if lc != Operational {
			tx.Put(recLifeCycle, encodeLifeCycle(Operational))
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.logout()
	return nil
}

// activateEF makes EF fid operational (its activate rule applies).
func (c *Card) activateEF(fid uint16) error {
	return c.update(func(tx *store.Tx) error {
		f, err := existingEF(tx, fid)
		if err != nil {
			return err
		}
		if err := c.allowedIn(tx, f, opActivate); err != nil {
			return err
		}
		if f.state != Operational {
			f.state = Operational
			tx.Put(efKey(fid), f.encode())
		}
		return nil
	})
}

// deleteFile implements DELETE FILE (docs/reference/gids-protocol.md §2.13; GA
// GidsFileSystem.processDeleteFile): it deletes the current EF with all its
// data objects or key material. P1P2 must be 0000 (6A86) and there must be
// no data field (6700); with no current EF the target would be the
// application, which cannot be deleted (6986). An EF still in creation
// state cannot be deleted (6985, as in GA).
//
// Deviation from GidsApplet (recommended by docs/reference/gids-protocol.md §2.13): GA
// checks only the EF's own "delete" bit (40), which OpenSC never sets, so
// anyone may delete A010 there. This card checks, in this order (6982 at
// the first that fails):
//
//  1. the application's "delete child" rule (8C 03 03 30 30: PIN or
//     admin), as MS-INBOX requires;
//  2. the EF's own "delete" rule (40), if present;
//  3. the EF's own write rule (02: PUT DATA of a DO container, PUT KEY of
//     a key EF), if present, unless the admin is authenticated: deleting
//     an EF and creating it again is a way of writing it, so whoever may
//     not write it may not delete it (the admin, the card's owner, may
//     delete a user's key container it cannot write, as Windows'
//     minidriver does after an admin operation);
//  4. for a system file (systemFID), the admin.
//
// So the PIN holder deletes key containers (8C 05 8F 10 10 10 00) and DO
// EFs of their own, but neither A012 (admin write) nor the admin key EF.
func (c *Card) deleteFile(cmd apdu.Command) ([]byte, error) {
	if err := noParameters(cmd); err != nil {
		return nil, err
	}
	fid := c.sec.currentEF
	if fid == 0 {
		return nil, apdu.SWCommandNotAllowedNoCurrentEF
	}
	err := c.update(func(tx *store.Tx) error {
		f, err := existingEF(tx, fid)
		if err != nil {
			return err
		}
		lc, err := loadLifeCycle(tx)
		if err != nil {
			return err
		}
		creation := lc == Creation
		if f.state == Creation {
			return apdu.SWConditionsNotSatisfied
		}
		if err := c.checkACL(appACL, opDeleteChild, creation); err != nil {
			return err
		}
		if err := c.checkACL(f.acl, opDelete, creation); err != nil {
			return err
		}
		// The admin may delete what it may not write (a user's key
		// container); that grants nobody anything.
		if err := c.checkACL(f.acl, opWrite, creation); err != nil && c.checkSC(adminSC, creation) != nil {
			return err
		}
		if systemFID(fid) {
			if err := c.checkSC(adminSC, creation); err != nil {
				return err
			}
		}
		tx.Delete(efKey(fid))
		for _, k := range tx.Keys(doPrefix(fid)) {
			tx.Delete(k)
		}
		if _, ok := tx.Get(keyKey(fid)); ok {
			tx.Delete(keyKey(fid))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.sec.currentEF = 0
	if c.sec.se.set && 0xB000|uint16(c.sec.se.kref) == fid {
		c.sec.se = secEnv{}
	}
	return nil, nil
}

// terminateDF implements TERMINATE DF (docs/reference/gids-protocol.md §4.1; GA
// GidsApplet.processTerminateDF): 00 E6 00 00 puts the application in the
// terminated state, after which every command is answered 6285 until an
// out-of-band FactoryReset.
//
// Deviation from GidsApplet: the application's access rule has no
// "terminate" bit, so GA lets anyone terminate an operational card. This
// card requires the admin key (SC 20) once the application is
// operational: terminating destroys the card for its owner, and the PIN
// holder may not delete the system files either.
func (c *Card) terminateDF(cmd apdu.Command) ([]byte, error) {
	if err := noParameters(cmd); err != nil {
		return nil, err
	}
	err := c.update(func(tx *store.Tx) error {
		lc, err := loadLifeCycle(tx)
		if err != nil {
			return err
		}
		if err := c.checkSC(adminSC, lc == Creation); err != nil {
			return err
		}
		tx.Put(recLifeCycle, encodeLifeCycle(Terminated))
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.deselect()
	return nil, nil
}

// existingEF is loadEF for a command that names the EF: a missing one is
// 6A82.
func existingEF(r reader, fid uint16) (*efRecord, error) {
	f, ok, err := loadEF(r, fid)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apdu.SWFileNotFound
	}
	return f, nil
}

// doEF is existingEF for GET DATA and PUT DATA: the EF must be a DO
// container (6981 for a key file).
func doEF(r reader, fid uint16) (*efRecord, error) {
	f, err := existingEF(r, fid)
	if err != nil {
		return nil, err
	}
	if f.kind != kindDO {
		return nil, apdu.SWIncompatibleFileStructure
	}
	return f, nil
}

// noParameters checks a command that acts on the current EF or the
// application and takes nothing else: P1P2 must be 0000 (6A86) and there
// must be no data field (6700).
func noParameters(cmd apdu.Command) error {
	if cmd.P1 != 0 || cmd.P2 != 0 {
		return apdu.SWIncorrectP1P2
	}
	if len(cmd.Data) != 0 {
		return apdu.SWWrongLength
	}
	return nil
}
