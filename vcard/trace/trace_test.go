package trace

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cardharness/cardharness/internal/golden"

	"github.com/cardharness/cardharness/vcard/testcard"
)

// session drives a traced echo card through what a trace records: power
// events, commands (one with a PIN, masked), a malformed one, a marker.
func session(w *Writer) {
	clock := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	w.Now = func() time.Time { clock = clock.Add(1500 * time.Microsecond); return clock }
	c := Card(&testcard.Echo{}, w)
	c.PowerOn()
	c.Process([]byte{0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0xFF})
	c.Process([]byte{0x00, 0xCA, 0x00, 0x00, 0x03})
	c.Process([]byte{0x00}) // the echo card answers 6700
	c.Reset()
	c.PowerOff()
}

func TestCardSideTraceRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	session(NewWriter(&buf))
	golden.Check(t, "card.jsonl", buf.Bytes())

	recs, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Format(&out, recs); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "card.txt", out.Bytes())
}

func TestReadNamesTheBadLine(t *testing.T) {
	_, err := Read(strings.NewReader(`{"seq":1,"dir":">"}` + "\n" + "not json\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("error %v does not name line 2", err)
	}
}

// A Buffer encodes later to the bytes a Writer writes at once.
func TestBufferWritesWhatWriterWrites(t *testing.T) {
	more := func(w *Writer) {
		// Times keep their zone (a Buffer stores it apart).
		cet := time.Date(2026, 11, 22, 11, 0, 0, 123456789, time.FixedZone("CET", 3600))
		w.Now = func() time.Time { cet = cet.Add(time.Millisecond); return cet }
		w.Marker(2, "scenario.yaml:9 verify-pin \"quoted\" <&>")
		w.Command([]byte{0x00, 0x20, 0x00, 0x80, 0x04, '1', '2', '3', '4'}).Done(nil, errors.New("card removed"))
		w.Command([]byte{0x00, 0xCA, 0x01, 0x00}).Done([]byte{0x90}, nil)
		w.Event("reset", errors.New("no card"))
		// Enough to fill several of a Buffer's chunks.
		data := bytes.Repeat([]byte{0xA5}, 250)
		for i := range 600 {
			cmd := append([]byte{0x00, 0xD6, byte(i >> 8), byte(i), 250}, data...)
			w.Command(cmd).Done(append(data[:i%250:i%250], 0x90, 0x00), nil)
		}
	}
	var direct bytes.Buffer
	w := NewWriter(&direct)
	session(w)
	more(w)

	b := NewBuffer()
	session(b)
	more(b)
	if b.Len() != strings.Count(direct.String(), "\n") {
		t.Fatalf("buffer holds %d records, the writer wrote %d lines", b.Len(), strings.Count(direct.String(), "\n"))
	}
	var later bytes.Buffer
	n, err := b.WriteTo(&later)
	if err != nil || n != int64(later.Len()) {
		t.Fatalf("WriteTo: %d bytes, %v (wrote %d)", n, err, later.Len())
	}
	if diff := cmp.Diff(direct.String(), later.String()); diff != "" {
		t.Fatalf("buffer differs from writer (-writer +buffer):\n%s", diff)
	}
	if strings.Contains(later.String(), "31323334") {
		t.Fatal("the buffer kept a PIN")
	}
}
