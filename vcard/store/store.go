// Package store keeps a virtual card's persistent state: a set of named
// records (data objects, key files, PIN and admin state, life cycle) that
// change only through atomic updates.
//
// A real card's EEPROM writes are transactional where it matters: a card
// torn out of the reader mid-command holds either the old or the new
// state. The harness depends on that (a fault-injection scenario must not
// find half a certificate), so every command's writes go through one
// Update, and Update commits by writing the whole state to a temporary file
// and renaming it over the old one. A rename is atomic on POSIX file
// systems, so after a crash or SIGKILL at any point the file holds either
// all of an update's changes or none. The state of a card is small (keys
// and compressed certificates, tens of kilobytes), so rewriting it whole is
// cheap and keeps recovery trivial: there is no journal to replay.
//
// The file system is an afero.Fs (Open), or a directory on disk with
// `--state DIR` (OpenDir). By default (NewMemory) the state lives in memory
// only, with no file: the commit steps (and their tear points) remain.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/afero"
)

// FileName is the state file inside the store's directory.
const FileName = "card.state"

var magic = []byte("CHCARD01")

// ErrCorrupt: the state file exists but does not decode. The store refuses
// to start rather than silently present a blank card.
var ErrCorrupt = errors.New("store: state file is corrupt")

// Store is a card's committed state. It is safe for concurrent use.
type Store struct {
	fs  afero.Fs // nil: NewMemory, no state file
	dir string

	mu    sync.RWMutex
	state map[string][]byte
	// tear, when set, is called before each commit step; an error aborts
	// the commit at that point, as a power cut would.
	tear func(step string) error

	lock *dirLock // held by OpenDir's stores until Close
}

// NewMemory returns an empty store held in memory only. It has no state
// file: one on a file system of its own that nothing else can open would
// only ever be written (encoding and writing the whole state on every
// update was a tenth of an in-process scenario run). Its commits still
// pass the tear steps (SetTearHook) in order, so a torn update keeps the
// old state as on disk. Open(afero.NewMemMapFs(), dir) keeps a file, for
// tests that reopen a state.
func NewMemory() *Store {
	return &Store{dir: "/card", state: map[string][]byte{}}
}

// Open loads the state in dir on fs, creating dir if needed. A missing
// state file is an empty (factory-fresh) card.
func Open(fs afero.Fs, dir string) (*Store, error) {
	if err := fs.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// A temporary file is an update that never committed: drop it.
	_ = fs.Remove(path.Join(dir, FileName+".tmp"))
	s := &Store{fs: fs, dir: dir, state: map[string][]byte{}}
	b, err := afero.ReadFile(fs, path.Join(dir, FileName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("store: %w", err)
	}
	st, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path.Join(dir, FileName), err)
	}
	s.state = st
	return s, nil
}

// OpenDir opens a store in a directory of the OS file system and locks
// the directory (LockName) until Close: a second OpenDir of the same
// directory, from this or another process, fails with a *LockedError
// naming the holder's PID, since two cards on one state would overwrite
// each other's updates. Open does not lock: it serves other file systems
// and tests that reopen a directory to simulate a restart.
func OpenDir(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	lk, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s, err := Open(afero.NewOsFs(), dir)
	if err != nil {
		lk.Close()
		return nil, err
	}
	s.lock = lk
	return s, nil
}

// Close releases the directory lock of a store opened with OpenDir; the
// committed state stays readable. Closing twice, or a store without a
// lock, does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Get returns a copy of the committed value of key.
func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.state[key]
	return slices.Clone(v), ok
}

// Keys returns the committed keys with the given prefix, sorted.
func (s *Store) Keys(prefix string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return keys(s.state, prefix)
}

func keys(m map[string][]byte, prefix string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// Tx is an update in progress. It sees its own writes.
type Tx struct {
	base    map[string][]byte
	writes  map[string][]byte // nil value = delete
	changed bool
}

// Get returns the value of key as of this transaction.
func (tx *Tx) Get(key string) ([]byte, bool) {
	if v, ok := tx.writes[key]; ok {
		if v == nil {
			return nil, false
		}
		return slices.Clone(v), true
	}
	v, ok := tx.base[key]
	return slices.Clone(v), ok
}

// Put sets key to a copy of val.
func (tx *Tx) Put(key string, val []byte) {
	if val == nil {
		val = []byte{}
	}
	tx.writes[key] = slices.Clone(val)
	tx.changed = true
}

// Delete removes key.
func (tx *Tx) Delete(key string) {
	tx.writes[key] = nil
	tx.changed = true
}

// Keys returns the keys with prefix as of this transaction, sorted.
func (tx *Tx) Keys(prefix string) []string {
	var out []string
	for k := range tx.base {
		if v, written := tx.writes[k]; strings.HasPrefix(k, prefix) && (!written || v != nil) {
			out = append(out, k)
		}
	}
	for k, v := range tx.writes {
		if _, inBase := tx.base[k]; !inBase && v != nil && strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (tx *Tx) merged() map[string][]byte {
	m := maps.Clone(tx.base)
	for k, v := range tx.writes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// Update runs fn in a transaction and commits its writes atomically. If fn
// returns an error nothing is written and that error is returned. If the
// commit fails (a file system error, or an injected tear) the committed
// state is unchanged and the error is returned.
func (s *Store) Update(fn func(tx *Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &Tx{base: s.state, writes: map[string][]byte{}}
	if err := fn(tx); err != nil {
		return err
	}
	if !tx.changed {
		return nil
	}
	if s.fs == nil {
		// NewMemory: no file to write the next state to, so the writes
		// go into the state in place once the commit's tear steps pass
		// (the lock is held; Get and Snapshot return copies).
		if err := s.commit(nil); err != nil {
			return err
		}
		for k, v := range tx.writes {
			if v == nil {
				delete(s.state, k)
			} else {
				s.state[k] = v
			}
		}
		return nil
	}
	next := tx.merged()
	if err := s.commit(next); err != nil {
		return err
	}
	s.state = next
	return nil
}

// Reset returns the card to factory state: no records.
func (s *Store) Reset() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := map[string][]byte{}
	if err := s.commit(next); err != nil {
		return err
	}
	s.state = next
	return nil
}

// Snapshot returns a deep copy of the committed state.
func (s *Store) Snapshot() map[string][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string][]byte, len(s.state))
	for k, v := range s.state {
		out[k] = slices.Clone(v)
	}
	return out
}

// Restore replaces the committed state with a copy of snap, atomically.
func (s *Store) Restore(snap map[string][]byte) error {
	next := make(map[string][]byte, len(snap))
	for k, v := range snap {
		next[k] = slices.Clone(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.commit(next); err != nil {
		return err
	}
	s.state = next
	return nil
}

// SetTearHook installs f, called with "write", "sync" and "rename" before
// each commit step; an error from f aborts the commit there. Fault
// injection uses it to tear the card at a chosen point.
func (s *Store) SetTearHook(f func(step string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tear = f
}

func (s *Store) step(name string) error {
	if s.tear == nil {
		return nil
	}
	if err := s.tear(name); err != nil {
		return fmt.Errorf("store: commit torn at %s: %w", name, err)
	}
	return nil
}

func (s *Store) commit(state map[string][]byte) error {
	if s.fs == nil { // NewMemory: the new state map is the commit
		for _, st := range []string{"write", "sync", "rename"} {
			if err := s.step(st); err != nil {
				return err
			}
		}
		return nil
	}
	final := path.Join(s.dir, FileName)
	tmp := final + ".tmp"
	b := encode(state)
	if err := s.step("write"); err != nil {
		return err
	}
	f, err := s.fs.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("store: %w", err)
	}
	if err := s.step("sync"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := s.step("rename"); err != nil {
		return err
	}
	if err := s.fs.Rename(tmp, final); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	// Make the rename itself durable across a power cut (no-op in memory).
	if d, err := s.fs.Open(s.dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// encode: magic, count, then (key length, key, value length, value) with
// uvarint lengths in key order, then CRC-32 (IEEE) of everything before it.
func encode(state map[string][]byte) []byte {
	// One allocation of the final size: the state is rewritten on every
	// card update, and growing a buffer was most of encode's time.
	size := len(magic) + binary.MaxVarintLen64 + 4
	for k, v := range state {
		size += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	b := make([]byte, 0, size)
	b = append(b, magic...)
	b = binary.AppendUvarint(b, uint64(len(state)))
	for _, k := range slices.Sorted(maps.Keys(state)) {
		v := state[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func decode(b []byte) (map[string][]byte, error) {
	if len(b) < len(magic)+4 || !bytes.Equal(b[:len(magic)], magic) {
		return nil, errors.New("not a card state file")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch")
	}
	r := bytes.NewReader(body[len(magic):])
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(body)) {
		return nil, fmt.Errorf("record count %d too large", n)
	}
	state := make(map[string][]byte, n)
	readBytes := func() ([]byte, error) {
		l, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, err
		}
		if l > uint64(r.Len()) {
			return nil, io.ErrUnexpectedEOF
		}
		v := make([]byte, l)
		_, err = io.ReadFull(r, v)
		return v, err
	}
	for i := uint64(0); i < n; i++ {
		k, err := readBytes()
		if err != nil {
			return nil, fmt.Errorf("record %d key: %w", i, err)
		}
		v, err := readBytes()
		if err != nil {
			return nil, fmt.Errorf("record %d value: %w", i, err)
		}
		state[string(k)] = v
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", r.Len())
	}
	return state, nil
}
