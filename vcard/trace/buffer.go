package trace

import (
	"encoding/binary"
	"errors"
	"io"
	"time"
)

// NewBuffer keeps the records in memory and encodes them only in WriteTo,
// to the same bytes NewWriter would have written. For a trace that is
// written only sometimes: the scenario runner keeps each card's trace but
// saves it only when the scenario fails, and most pass, so the JSON and
// hex encoding (most of a trace's cost) is left to the few that are saved.
func NewBuffer() *Writer { return &Writer{buf: &buffer{}, Now: time.Now} }

// buffer holds entries packed in byte slices, each field in entry's
// order: numbers as varints, strings and byte strings after a uvarint
// length, a time as seconds, nanoseconds and the index of its location in
// locs. Nothing in a chunk is a pointer, so a scenario's trace costs the
// garbage collector nothing to keep; it grows by chunks (4 KiB, doubling
// up to chunkSize), so nothing written is copied again. An entry never
// spans two chunks.
type buffer struct {
	chunks [][]byte
	n      int
	locs   []*time.Location
	one    []byte // the entry being packed, reused
}

const chunkSize = 64 << 10

func (b *buffer) add(e *entry) {
	loc := -1
	for i, l := range b.locs {
		if l == e.t.Location() {
			loc = i
			break
		}
	}
	if loc < 0 {
		loc = len(b.locs)
		b.locs = append(b.locs, e.t.Location())
	}
	l := b.one[:0]
	l = binary.AppendVarint(l, int64(e.seq))
	l = binary.AppendVarint(l, e.t.Unix())
	l = binary.AppendUvarint(l, uint64(e.t.Nanosecond()))
	l = binary.AppendUvarint(l, uint64(loc))
	l = appendBytes(l, e.dir)
	l = appendBytes(l, e.apdu)
	l = appendBytes(l, e.sw)
	l = appendBytes(l, e.err)
	l = binary.AppendVarint(l, e.durUS)
	l = binary.AppendVarint(l, int64(e.step))
	l = appendBytes(l, e.label)
	l = binary.AppendVarint(l, int64(e.masked))
	l = appendBytes(l, e.secret)
	b.one = l
	last := len(b.chunks) - 1
	if last < 0 || len(b.chunks[last])+len(l) > cap(b.chunks[last]) {
		size := 4 << 10 // the first small (most traces are), then doubling to chunkSize
		if last >= 0 {
			size = min(2*cap(b.chunks[last]), chunkSize)
		}
		b.chunks = append(b.chunks, make([]byte, 0, max(size, len(l))))
		last++
	}
	b.chunks[last] = append(b.chunks[last], l...)
	b.n++
}

func appendBytes[T string | []byte](l []byte, v T) []byte {
	return append(binary.AppendUvarint(l, uint64(len(v))), v...)
}

var errBadBuffer = errors.New("trace: corrupt buffer") // a bug here, not bad input

// entries calls f with each entry in order.
func (b *buffer) entries(f func(*entry) error) error {
	var l []byte
	next := 0 // the chunk after l
	bad := false
	varint := func() int64 {
		v, n := binary.Varint(l)
		if n <= 0 {
			bad = true
			return 0
		}
		l = l[n:]
		return v
	}
	uvarint := func() uint64 {
		v, n := binary.Uvarint(l)
		if n <= 0 {
			bad = true
			return 0
		}
		l = l[n:]
		return v
	}
	bytes := func() []byte {
		n := uvarint()
		if bad || n > uint64(len(l)) {
			bad = true
			return nil
		}
		v := l[:n:n]
		l = l[n:]
		return v
	}
	for range b.n {
		if len(l) == 0 && next < len(b.chunks) {
			l = b.chunks[next]
			next++
		}
		var e entry
		e.seq = int(varint())
		sec := varint()
		nsec := uvarint()
		loc := uvarint()
		if bad || loc >= uint64(len(b.locs)) {
			return errBadBuffer
		}
		e.t = time.Unix(sec, int64(nsec)).In(b.locs[loc])
		e.dir = string(bytes())
		e.apdu = bytes()
		e.sw = bytes()
		e.err = string(bytes())
		e.durUS = varint()
		e.step = int(varint())
		e.label = string(bytes())
		e.masked = int(varint())
		e.secret = string(bytes())
		if bad {
			return errBadBuffer
		}
		if err := f(&e); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of records a Buffer holds.
func (w *Writer) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf == nil {
		return 0
	}
	return w.buf.n
}

// WriteTo writes a Buffer's records as JSON lines.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cw := &countingWriter{w: out}
	if w.buf == nil {
		return 0, nil
	}
	enc := newEncoder(cw)
	err := w.buf.entries(func(e *entry) error { return enc.Encode(e.record()) })
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
