package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"

	"github.com/cardharness/cardharness/internal/testutil"
)

func TestUpdateIsAllOrNothing(t *testing.T) {
	s := NewMemory()
	if err := s.Update(func(tx *Tx) error {
		tx.Put("do/A010/DF22", []byte{0, 0, 1, 0, 2, 0})
		tx.Put("pin", []byte("123456"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		tx.Put("do/A010/DF22", []byte{9})
		tx.Delete("pin")
		if v, ok := tx.Get("do/A010/DF22"); !ok || !bytes.Equal(v, []byte{9}) {
			t.Errorf("tx does not see its own write: %x %v", v, ok)
		}
		if _, ok := tx.Get("pin"); ok {
			t.Error("tx sees a deleted key")
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v", err)
	}
	want := map[string][]byte{"do/A010/DF22": {0, 0, 1, 0, 2, 0}, "pin": []byte("123456")}
	if d := cmp.Diff(want, s.Snapshot()); d != "" {
		t.Errorf("state after a failed update (-want +got):\n%s", d)
	}
}

func TestKeysAndPrefixes(t *testing.T) {
	s := NewMemory()
	_ = s.Update(func(tx *Tx) error {
		for _, k := range []string{"key/B082", "do/A010/DF23", "key/B081", "do/A000/DF1F"} {
			tx.Put(k, []byte(k))
		}
		if got := tx.Keys("key/"); !cmp.Equal(got, []string{"key/B081", "key/B082"}) {
			t.Errorf("tx.Keys = %q", got)
		}
		return nil
	})
	if got := s.Keys("do/"); !cmp.Equal(got, []string{"do/A000/DF1F", "do/A010/DF23"}) {
		t.Errorf("Keys = %q", got)
	}
	// Committed keys, minus deleted ones, plus new ones.
	_ = s.Update(func(tx *Tx) error {
		tx.Delete("key/B081")
		tx.Put("key/B083", nil)
		tx.Put("key/B082", []byte{1})
		tx.Delete("key/B084") // never existed
		if got := tx.Keys("key/"); !cmp.Equal(got, []string{"key/B082", "key/B083"}) {
			t.Errorf("tx.Keys after deletes and puts = %q", got)
		}
		return nil
	})
	if got := s.Keys("key/"); !cmp.Equal(got, []string{"key/B082", "key/B083"}) {
		t.Errorf("Keys after the update = %q", got)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	fs := afero.NewMemMapFs()
	s, err := Open(fs, "/state")
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Update(func(tx *Tx) error { tx.Put("a", []byte{1, 2, 3}); tx.Put("empty", nil); return nil })
	s2, err := Open(fs, "/state")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(s.Snapshot(), s2.Snapshot()); d != "" {
		t.Errorf("reopened state differs:\n%s", d)
	}
	if err := s2.Reset(); err != nil {
		t.Fatal(err)
	}
	s3, _ := Open(fs, "/state")
	if n := len(s3.Snapshot()); n != 0 {
		t.Errorf("after factory reset %d records remain", n)
	}
}

func TestTornCommitKeepsOldState(t *testing.T) {
	for _, step := range []string{"write", "sync", "rename"} {
		t.Run(step, func(t *testing.T) {
			fs := afero.NewMemMapFs()
			s, _ := Open(fs, "/c")
			_ = s.Update(func(tx *Tx) error { tx.Put("cert", []byte("old")); return nil })
			s.SetTearHook(func(st string) error {
				if st == step {
					return errors.New("power cut")
				}
				return nil
			})
			err := s.Update(func(tx *Tx) error { tx.Put("cert", []byte("new")); tx.Put("cmap", []byte("x")); return nil })
			if err == nil {
				t.Fatal("torn update reported success")
			}
			if v, _ := s.Get("cert"); string(v) != "old" {
				t.Errorf("in-memory state after tear: %q", v)
			}
			re, err := Open(fs, "/c")
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(map[string][]byte{"cert": []byte("old")}, re.Snapshot()); d != "" {
				t.Errorf("state on disk after tear at %s (-want +got):\n%s", step, d)
			}
		})
	}
}

// A NewMemory store has no file but tears the same way: at each step the
// update fails and the old state stays, and the steps come in order.
func TestMemoryStoreTearsLikeAFile(t *testing.T) {
	for _, step := range []string{"write", "sync", "rename"} {
		s := NewMemory()
		_ = s.Update(func(tx *Tx) error { tx.Put("cert", []byte("old")); return nil })
		var seen []string
		s.SetTearHook(func(st string) error {
			seen = append(seen, st)
			if st == step {
				return errors.New("power cut")
			}
			return nil
		})
		if err := s.Update(func(tx *Tx) error { tx.Put("cert", []byte("new")); return nil }); err == nil {
			t.Fatalf("update torn at %s reported success", step)
		}
		if d := cmp.Diff(map[string][]byte{"cert": []byte("old")}, s.Snapshot()); d != "" {
			t.Errorf("state after a tear at %s (-want +got):\n%s", step, d)
		}
		s.SetTearHook(func(st string) error { seen = append(seen, st); return nil })
		if err := s.Update(func(tx *Tx) error { tx.Put("cert", []byte("new")); return nil }); err != nil {
			t.Fatal(err)
		}
		if v, _ := s.Get("cert"); string(v) != "new" {
			t.Errorf("after an untorn update: %q", v)
		}
		want := map[string][]string{"write": {"write"}, "sync": {"write", "sync"}, "rename": {"write", "sync", "rename"}}[step]
		want = append(want, "write", "sync", "rename")
		if d := cmp.Diff(want, seen); d != "" {
			t.Errorf("tear steps (-want +got):\n%s", d)
		}
	}
}

func TestCorruptFileIsRefused(t *testing.T) {
	fs := afero.NewMemMapFs()
	s, _ := Open(fs, "/c")
	_ = s.Update(func(tx *Tx) error { tx.Put("k", []byte("v")); return nil })
	b, _ := afero.ReadFile(fs, "/c/"+FileName)
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 0x40
		_ = afero.WriteFile(fs, "/c/"+FileName, bad, 0o600)
		if _, err := Open(fs, "/c"); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipping byte %d: Open = %v, want ErrCorrupt", i, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(map[string][]byte{"a": {1}, "do/A010/DF22": make([]byte, 6)}))
	f.Add([]byte("CHCARD01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encode(st), b) {
			t.Errorf("decode/encode does not round-trip")
		}
	})
}

// The kill test: a child process commits updates that each write a pair of
// records that must agree, as fast as it can; the parent SIGKILLs it at
// random moments and checks the directory every time.
const killChildEnv = "CARDHARNESS_STORE_KILL_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(lockChildEnv); dir != "" {
		lockChild(dir)
	}
	if dir := os.Getenv(killChildEnv); dir != "" {
		s, err := OpenDir(dir)
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(1)
		}
		v, _ := s.Get("gen")
		gen, _ := strconv.Atoi(string(v))
		fmt.Println("started")
		for {
			gen++
			// A certificate-sized value, so the write takes a while.
			payload := bytes.Repeat([]byte{byte(gen)}, 3000)
			_ = s.Update(func(tx *Tx) error {
				tx.Put("gen", []byte(strconv.Itoa(gen)))
				tx.Put("cert", payload)
				tx.Put("cmap", payload[:86])
				return nil
			})
		}
	}
	os.Exit(m.Run())
}

func TestSIGKILLNeverTearsAnUpdate(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	lastGen := 0
	for round := 0; round < 25; round++ {
		cmd := testutil.StartChild(t, "started", killChildEnv+"="+dir)
		time.Sleep(time.Duration(rng.IntN(30000)) * time.Microsecond)
		testutil.KillChild(cmd)

		s, err := OpenDir(dir)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// Release the directory for the next child.
		s.Close()
		g, _ := s.Get("gen")
		gen, _ := strconv.Atoi(string(g))
		cert, _ := s.Get("cert")
		cmap, _ := s.Get("cmap")
		if gen == 0 {
			continue
		}
		want := bytes.Repeat([]byte{byte(gen)}, 3000)
		if !bytes.Equal(cert, want) || !bytes.Equal(cmap, want[:86]) {
			t.Fatalf("round %d: torn state at generation %d (cert %d bytes, first %x; cmap first %x)", round, gen, len(cert), cert[:1], cmap[:1])
		}
		if gen < lastGen {
			t.Fatalf("round %d: generation went back from %d to %d", round, lastGen, gen)
		}
		lastGen = gen
	}
	if lastGen == 0 {
		t.Fatal("the child never committed an update; the test proved nothing")
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+".tmp")); err == nil {
		// Open removes it; a leftover means the last Open did not run.
		t.Log("temporary file present after the last kill (removed at next Open)")
	}
	t.Logf("%d generations committed across 25 kills", lastGen)
}
