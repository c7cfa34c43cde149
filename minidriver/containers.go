package minidriver

import (
	"context"
	"crypto/rsa"
	"fmt"
	"math/big"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/vcard/apdu"
	"github.com/cardharness/cardharness/vcard/ber"
)

func keyRef(index int) byte     { return byte(fs.FirstKeyRef + index) }
func keyFID(index int) uint16   { return 0xB000 | uint16(keyRef(index)) }
func keyFIDBytes(i int) [2]byte { return [2]byte{0xB0, keyRef(i)} }

// Containers reads the cmapfile (A010/DF23).
func (c *Card) Containers(ctx context.Context) (fs.ContainerMap, error) {
	b, err := c.readDO(ctx, "read cmapfile", fs.EFEveryoneReadUserWriteAc, fs.DOCmapFile)
	if err != nil {
		return nil, err
	}
	return fs.ParseContainerMap(b)
}

// maps reads the cmapfile and the keymap, the pair every container
// change works on.
func (c *Card) maps(ctx context.Context, op string) (fs.ContainerMap, fs.KeyMap, error) {
	cmap, err := c.Containers(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	km, err := c.KeyMap(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	return cmap, km, nil
}

// KeyMap reads the GIDS keymap (A000/DF20); a card that never had a key has
// none, which is an empty keymap.
func (c *Card) KeyMap(ctx context.Context) (fs.KeyMap, error) {
	b, err := c.readDO(ctx, "read keymap", fs.EFUserCreateDeleteDirAc, fs.DOKeyMap)
	if isNotFound(err) {
		return fs.KeyMap{}, nil
	}
	if err != nil {
		return nil, err
	}
	return fs.ParseKeyMap(b)
}

// ContainerSpec describes a container to create.
type ContainerSpec struct {
	// GUID is the container name (cmapfile wszGuid): a GUID string for
	// Windows writers, a label for OpenSC.
	GUID string
	// KeySpec: AT_KEYEXCHANGE (sign + decrypt, kxcNN) or AT_SIGNATURE
	// (sign only, kscNN).
	KeySpec fs.KeySpec
	// Bits: 1024, 2048, 3072 or 4096.
	Bits int
	// Default makes it the default container even if another valid one is
	// (the flag moves). Without it, the container is default only if no
	// valid default exists.
	Default bool
}

// CreateContainer is CardCreateContainer with on-card key generation: the
// container takes the first free cmapfile index. Steps, as the GIDS
// drivers do them (docs/reference/gids-protocol.md §5.2): reserve the cmapfile record,
// create the key file, write the keymap record, write the cmapfile record,
// generate the key. The caller must have authenticated the user PIN.
func (c *Card) CreateContainer(ctx context.Context, spec ContainerSpec, pol Bump) (index int, err error) {
	alg, err := fs.AlgID(spec.Bits)
	if err != nil {
		return -1, fmt.Errorf("CardCreateContainer: %w", err)
	}
	if spec.KeySpec != fs.AT_KEYEXCHANGE && spec.KeySpec != fs.AT_SIGNATURE {
		return -1, fmt.Errorf("CardCreateContainer: key spec %v: want AT_KEYEXCHANGE or AT_SIGNATURE", spec.KeySpec)
	}
	op := fmt.Sprintf("CardCreateContainer %q", spec.GUID)
	index = -1
	err = c.mutate(ctx, op, pol, func(w *writer) error {
		cmap, km, err := c.maps(ctx, op)
		if err != nil {
			return err
		}
		if err := fs.CheckConsistent(cmap, km); err != nil {
			return fmt.Errorf("%s: card metadata inconsistent, refusing to add a container: %w", op, err)
		}
		i := cmap.FirstFree()
		if i < 0 || i >= c.opts.MaxContainers {
			return fmt.Errorf("%s: %w", op, ErrCardFull)
		}
		index = i
		if i == len(cmap) { // reserve the record
			cmap = append(cmap, fs.ContainerRecord{})
			b, err := cmap.Bytes()
			if err != nil {
				return err
			}
			if err := w.step(fs.CategoryFiles, func() error {
				return c.writeDO(ctx, op+" (reserve)", fs.EFEveryoneReadUserWriteAc, fs.DOCmapFile, b)
			}); err != nil {
				return err
			}
		}
		for len(km) < len(cmap) {
			km = append(km, fs.DeletedKeyRecord())
		}
		rec, err := fs.NewKeyRecord(i, spec.KeySpec, spec.Bits)
		if err != nil {
			return err
		}
		km[i] = rec
		if err := w.step(fs.CategoryContainers, func() error {
			if err := c.createKeyFile(ctx, op, i, spec.KeySpec, alg); err != nil {
				return err
			}
			return c.writeDO(ctx, op+" (keymap)", fs.EFUserCreateDeleteDirAc, fs.DOKeyMap, km.Bytes())
		}); err != nil {
			return err
		}
		r := fs.ContainerRecord{GUID: spec.GUID, Flags: fs.ContainerValid}
		if spec.KeySpec == fs.AT_KEYEXCHANGE {
			r.KeyExchangeKeySizeBits = uint16(spec.Bits)
		} else {
			r.SigKeySizeBits = uint16(spec.Bits)
		}
		cmap[i] = r
		if spec.Default || cmap.Default() < 0 {
			if err := cmap.SetDefault(i); err != nil {
				return err
			}
		}
		b, err := cmap.Bytes()
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if err := w.step(fs.CategoryFiles|fs.CategoryContainers, func() error {
			return c.writeDO(ctx, op+" (cmapfile)", fs.EFEveryoneReadUserWriteAc, fs.DOCmapFile, b)
		}); err != nil {
			return err
		}
		return c.generate(ctx, op, i, alg)
	})
	return index, err
}

// keyFileFCP is the FCP of a user key file (docs/reference/gids-protocol.md §3.8): ACL
// `8C 05 8F 10 10 10 00` (GENERATE, MSE and PUT KEY need the PIN; public
// key read free) and one CRT per usage. Unlike OpenSC, the signature CRTs
// carry the real key reference.
func keyFileFCP(index int, spec fs.KeySpec, alg byte) []byte {
	kref := keyRef(index)
	crt := func(tag, a byte) []byte {
		return []byte{tag, 0x09, 0x80, 0x01, a, 0x83, 0x01, kref, 0x95, 0x01, 0x40}
	}
	var crts []byte
	if spec == fs.AT_KEYEXCHANGE {
		crts = append(crts, crt(0xB8, alg)...)
		crts = append(crts, crt(0xB8, 0x80|alg)...)
		crts = append(crts, crt(0xB8, 0x40|alg)...)
	}
	crts = append(crts, crt(0xB6, 0x10|alg)...)
	crts = append(crts, crt(0xB6, 0x50|alg)...)
	fid := keyFIDBytes(index)
	body := []byte{0x82, 0x01, 0x18, 0x83, 0x02, fid[0], fid[1], 0x8C, 0x05, 0x8F, 0x10, 0x10, 0x10, 0x00}
	body = append(body, ber.Encode(0xA5, crts)...)
	return ber.Encode(0x62, body)
}

// createKeyFile creates and activates B0(81+i). A key file left behind by
// an interrupted creation is deleted first: CardCreateContainer overwrites.
func (c *Card) createKeyFile(ctx context.Context, op string, index int, spec fs.KeySpec, alg byte) error {
	if err := c.deleteKeyFile(ctx, op, index); err != nil {
		return err
	}
	fcp := keyFileFCP(index, spec, alg)
	if _, err := c.do(ctx, fmt.Sprintf("%s: CREATE FILE %04X", op, keyFID(index)), apdu.Command{INS: apdu.INSCreateFile, Data: fcp}); err != nil {
		return err
	}
	_, err := c.do(ctx, fmt.Sprintf("%s: ACTIVATE FILE %04X", op, keyFID(index)), apdu.Command{INS: apdu.INSActivateFile})
	return err
}

// deleteKeyFile selects and deletes B0(81+i); a missing file is fine.
func (c *Card) deleteKeyFile(ctx context.Context, op string, index int) error {
	fid := keyFIDBytes(index)
	_, err := c.do(ctx, fmt.Sprintf("%s: SELECT %04X", op, keyFID(index)), apdu.Command{INS: apdu.INSSelect, P1: 0x00, P2: 0x0C, Data: fid[:]})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = c.do(ctx, fmt.Sprintf("%s: DELETE FILE %04X", op, keyFID(index)), apdu.Command{INS: apdu.INSDeleteFile})
	if isNotFound(err) {
		return nil
	}
	return err
}

func (c *Card) generate(ctx context.Context, op string, index int, alg byte) error {
	// AC { 80 algorithm, 83 key reference } (§2.10).
	crt := append(ber.Encode(0x80, []byte{alg}), ber.Encode(0x83, []byte{keyRef(index)})...)
	cmd := apdu.Command{INS: apdu.INSGenerateAsymmetricKeyPair, Data: ber.Encode(0xAC, crt)}
	if c.opts.GenerateWithLe {
		cmd.Ne = leMax
	}
	_, err := c.do(ctx, op+": GENERATE ASYMMETRIC KEY PAIR", cmd)
	return err
}

// ContainerInfo is CardGetContainerInfo: the container's public key as the
// card reports it (GET DATA 3FFF with a 7F49 template, §2.10).
type ContainerInfo struct {
	Index     int
	GUID      string
	KeySpec   fs.KeySpec
	Bits      int
	Default   bool
	PublicKey *rsa.PublicKey
}

// ContainerInfo reads container index's record and public key.
func (c *Card) ContainerInfo(ctx context.Context, index int) (*ContainerInfo, error) {
	op := fmt.Sprintf("CardGetContainerInfo %d", index)
	cmap, err := c.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !cmap.Valid(index) {
		return nil, fmt.Errorf("%s: %w", op, ErrNoContainer)
	}
	spec, bits, ok := cmap[index].Key()
	if !ok {
		return nil, fmt.Errorf("%s: record has no single key size: %w", op, ErrNoContainer)
	}
	pub, err := c.PublicKey(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return &ContainerInfo{Index: index, GUID: cmap[index].GUID, KeySpec: spec, Bits: bits, Default: cmap[index].IsDefault(), PublicKey: pub}, nil
}

// PublicKey reads the public key of key reference 0x81+index.
func (c *Card) PublicKey(ctx context.Context, index int) (*rsa.PublicKey, error) {
	op := fmt.Sprintf("read public key %02X", keyRef(index))
	// 70 { 84 key reference, A5 { 7F49 80 } }: the public-key template
	// request as OpenSC sends it (§2.10); "7F49 80" is a tag list, not a
	// TLV, so it is written as bytes.
	data := ber.Encode(0x70, append(ber.Encode(0x84, []byte{keyRef(index)}), ber.Encode(0xA5, []byte{0x7F, 0x49, 0x80})...))
	resp, err := c.do(ctx, op+": GET DATA 3FFF", apdu.Command{INS: apdu.INSGetData, P1: 0x3F, P2: 0xFF, Data: data, Ne: leMax})
	if err != nil {
		return nil, err
	}
	tmpl, ok, err := ber.Find(resp, 0x7F49)
	if err != nil || !ok {
		return nil, fmt.Errorf("%s: no 7F49 template in % X", op, resp)
	}
	n, ok1, _ := ber.Find(tmpl, 0x81)
	e, ok2, _ := ber.Find(tmpl, 0x82)
	if !ok1 || !ok2 || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("%s: 7F49 template lacks modulus or exponent: % X", op, tmpl)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
}

// DeleteOptions refine DeleteContainer.
type DeleteOptions struct {
	// MoveDefaultTo, if ≥ 0 and the deleted container was the default,
	// makes that container the default in the same cmapfile write
	// (renewal: the new container takes over, docs/reference/minidriver-semantics.md §3.2).
	MoveDefaultTo int
}

// DeleteContainer is CardDeleteContainer with version 7 semantics: deleting
// a container that does not exist succeeds, so a rollback can run twice.
// The key file is deleted, the keymap record marked deleted, the cmapfile
// record zeroed (never removed: indexes are stable).
func (c *Card) DeleteContainer(ctx context.Context, index int, opts DeleteOptions, pol Bump) error {
	op := fmt.Sprintf("CardDeleteContainer %d", index)
	if index < 0 || index >= 127 {
		return fmt.Errorf("%s: index out of range: %w", op, ErrNoContainer)
	}
	return c.mutate(ctx, op, pol, func(w *writer) error {
		cmap, km, err := c.maps(ctx, op)
		if err != nil {
			return err
		}
		if err := w.step(fs.CategoryContainers, func() error {
			if err := c.deleteKeyFile(ctx, op, index); err != nil {
				return err
			}
			if index < len(km) && km[index] != fs.DeletedKeyRecord() {
				km[index] = fs.DeletedKeyRecord()
				return c.writeDO(ctx, op+" (keymap)", fs.EFUserCreateDeleteDirAc, fs.DOKeyMap, km.Bytes())
			}
			return nil
		}); err != nil {
			return err
		}
		if index >= len(cmap) || cmap[index] == (fs.ContainerRecord{}) {
			return nil // nothing recorded: idempotent success
		}
		wasDefault := cmap[index].IsDefault()
		if err := cmap.Zero(index); err != nil {
			return err
		}
		if wasDefault && opts.MoveDefaultTo >= 0 && cmap.Valid(opts.MoveDefaultTo) {
			if err := cmap.SetDefault(opts.MoveDefaultTo); err != nil {
				return err
			}
		}
		b, err := cmap.Bytes()
		if err != nil {
			return err
		}
		return w.step(fs.CategoryFiles|fs.CategoryContainers, func() error {
			return c.writeDO(ctx, op+" (cmapfile)", fs.EFEveryoneReadUserWriteAc, fs.DOCmapFile, b)
		})
	})
}

// SetDefaultContainer moves the default flag to container index.
func (c *Card) SetDefaultContainer(ctx context.Context, index int, pol Bump) error {
	op := fmt.Sprintf("set default container %d", index)
	return c.mutate(ctx, op, pol, func(w *writer) error {
		cmap, err := c.Containers(ctx)
		if err != nil {
			return err
		}
		if !cmap.Valid(index) {
			return fmt.Errorf("%s: %w", op, ErrNoContainer)
		}
		if err := cmap.SetDefault(index); err != nil {
			return err
		}
		b, err := cmap.Bytes()
		if err != nil {
			return err
		}
		return w.step(fs.CategoryFiles|fs.CategoryContainers, func() error {
			return c.writeDO(ctx, op, fs.EFEveryoneReadUserWriteAc, fs.DOCmapFile, b)
		})
	})
}
