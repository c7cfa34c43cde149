package minidriver

import (
	"context"
	"fmt"
	"strings"

	"github.com/cardharness/cardharness/minidriver/fs"
	"github.com/cardharness/cardharness/winerr"
)

// splitPath turns "mscp/cmapfile" into ("mscp", "cmapfile") and "cardid"
// into ("", "cardid").
func splitPath(path string) (dir, name string) {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return "", path
}

// MasterFile reads the GIDS masterfile (A000/DF1F), the table that maps
// minidriver file names to data objects.
func (c *Card) MasterFile(ctx context.Context) (fs.MasterFile, error) {
	b, err := c.readDO(ctx, "read masterfile", fs.EFUserCreateDeleteDirAc, fs.DOMasterFile)
	if err != nil {
		return nil, err
	}
	return fs.ParseMasterFile(b)
}

func (c *Card) lookup(ctx context.Context, op, path string) (fs.MasterRecord, error) {
	mf, err := c.MasterFile(ctx)
	if err != nil {
		return fs.MasterRecord{}, fmt.Errorf("%s: %w", op, err)
	}
	dir, name := splitPath(path)
	rec, ok := mf.Lookup(dir, name)
	if !ok || rec.IsDir() {
		return fs.MasterRecord{}, fmt.Errorf("%s: %q is not in the masterfile: %w", op, path, winerr.SCARD_E_FILE_NOT_FOUND)
	}
	return rec, nil
}

// ReadFile is CardReadFile: the file's bytes as stored (a certificate file
// is returned compressed, as the minidriver API does).
func (c *Card) ReadFile(ctx context.Context, path string) ([]byte, error) {
	var out []byte
	err := c.transaction(ctx, func() error {
		op := "CardReadFile " + path
		rec, err := c.lookup(ctx, op, path)
		if err != nil {
			return err
		}
		out, err = c.readDO(ctx, op, rec.EF, rec.DO)
		return err
	})
	return out, err
}

// WriteFile is CardWriteFile: it replaces an existing file's content.
func (c *Card) WriteFile(ctx context.Context, path string, data []byte, pol Bump) error {
	op := "CardWriteFile " + path
	return c.mutate(ctx, op, pol, func(w *writer) error {
		rec, err := c.lookup(ctx, op, path)
		if err != nil {
			return err
		}
		return w.step(c.fileCategory(path), func() error { return c.writeDO(ctx, op, rec.EF, rec.DO, data) })
	})
}

// fileCategory: a write of cmapfile also covers containers (OpenSC bumps
// both along the container path; docs/reference/minidriver-semantics.md §1.2).
func (c *Card) fileCategory(path string) fs.Category {
	if strings.EqualFold(path, "mscp/cmapfile") {
		return fs.CategoryFiles | fs.CategoryContainers
	}
	return fs.CategoryFiles
}

// CreateFile is CardCreateFile: it registers a new file in the masterfile
// (GIDS allocates it a data object in A010, like OpenSC's gids_create_file).
func (c *Card) CreateFile(ctx context.Context, path string, pol Bump) error {
	return c.mutateFile(ctx, "CardCreateFile", path, pol, c.createFile)
}

// mutateFile runs fn, the body of the file call api on path, as one
// mutation under pol; fn is also a step of larger mutations
// (WriteCertificate creates a missing file), so it takes the writer and
// the operation name.
func (c *Card) mutateFile(ctx context.Context, api, path string, pol Bump, fn func(ctx context.Context, w *writer, op, path string) error) error {
	op := api + " " + path
	return c.mutate(ctx, op, pol, func(w *writer) error { return fn(ctx, w, op, path) })
}

func (c *Card) createFile(ctx context.Context, w *writer, op, path string) error {
	mf, err := c.MasterFile(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	dir, name := splitPath(path)
	if _, ok := mf.Lookup(dir, name); ok {
		return fmt.Errorf("%s: file exists: %w", op, winerr.NTE_EXISTS)
	}
	if _, err := mf.Create(dir, name); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	b, err := mf.Bytes()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return w.step(fs.CategoryFiles, func() error {
		return c.writeDO(ctx, op, fs.EFUserCreateDeleteDirAc, fs.DOMasterFile, b)
	})
}

// DeleteFile is CardDeleteFile: the data object is emptied and the
// masterfile record removed, as OpenSC deletes certificates.
func (c *Card) DeleteFile(ctx context.Context, path string, pol Bump) error {
	return c.mutateFile(ctx, "CardDeleteFile", path, pol, c.deleteFile)
}

func (c *Card) deleteFile(ctx context.Context, w *writer, op, path string) error {
	mf, err := c.MasterFile(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	dir, name := splitPath(path)
	rec, ok := mf.Remove(dir, name)
	if !ok {
		return fmt.Errorf("%s: %w", op, winerr.SCARD_E_FILE_NOT_FOUND)
	}
	b, err := mf.Bytes()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return w.step(fs.CategoryFiles, func() error {
		if err := c.writeDO(ctx, op, rec.EF, rec.DO, nil); err != nil {
			return err
		}
		return c.writeDO(ctx, op, fs.EFUserCreateDeleteDirAc, fs.DOMasterFile, b)
	})
}

// EnumFiles is CardEnumFiles: the files of dir ("" for the root).
func (c *Card) EnumFiles(ctx context.Context, dir string) ([]string, error) {
	mf, err := c.MasterFile(ctx)
	if err != nil {
		return nil, fmt.Errorf("CardEnumFiles %q: %w", dir, err)
	}
	var out []string
	found := dir == ""
	for _, r := range mf {
		if strings.EqualFold(r.Dir, dir) {
			if r.IsDir() {
				found = true
				continue
			}
			out = append(out, r.Name)
		}
	}
	if !found {
		return nil, fmt.Errorf("CardEnumFiles %q: %w", dir, winerr.SCARD_E_DIR_NOT_FOUND)
	}
	return out, nil
}

// WriteCertificate stores der as the certificate of container index
// (mscp/kxcNN or kscNN by key spec), creating the file if needed: what
// Base CSP does when a certificate is installed, and what an offline
// enrollment writer does.
func (c *Card) WriteCertificate(ctx context.Context, index int, spec fs.KeySpec, der []byte, pol Bump) error {
	path := "mscp/" + fs.CertFileName(index, spec)
	op := "write certificate " + path
	data, err := fs.EncodeCert(der)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return c.mutate(ctx, op, pol, func(w *writer) error {
		mf, err := c.MasterFile(ctx)
		if err != nil {
			return err
		}
		if _, ok := mf.Lookup(splitPath(path)); !ok {
			if err := c.createFile(ctx, w, op, path); err != nil {
				return err
			}
		}
		rec, err := c.lookup(ctx, op, path)
		if err != nil {
			return err
		}
		return w.step(fs.CategoryFiles, func() error { return c.writeDO(ctx, op, rec.EF, rec.DO, data) })
	})
}

// ReadCertificate reads and decompresses the certificate of container
// index. The file name is matched in either case (kxc0a and kxc0A).
func (c *Card) ReadCertificate(ctx context.Context, index int, spec fs.KeySpec) ([]byte, error) {
	path := "mscp/" + fs.CertFileName(index, spec)
	b, err := c.ReadFile(ctx, path)
	if err != nil {
		return nil, err
	}
	der, err := fs.DecodeCert(b)
	if err != nil {
		return nil, fmt.Errorf("read certificate %s: %w", path, err)
	}
	return der, nil
}

// DeleteCertificate deletes the certificate file of container index.
func (c *Card) DeleteCertificate(ctx context.Context, index int, spec fs.KeySpec, pol Bump) error {
	return c.DeleteFile(ctx, "mscp/"+fs.CertFileName(index, spec), pol)
}
