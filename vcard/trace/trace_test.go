package trace

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cardharness/cardharness/internal/golden"

	"github.com/cardharness/cardharness/vcard/testcard"
)

func TestCardSideTraceRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	clock := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	w.Now = func() time.Time { clock = clock.Add(1500 * time.Microsecond); return clock }
	c := Card(&testcard.Echo{}, w)
	c.PowerOn()
	c.Process([]byte{0x00, 0xA4, 0x04, 0x00, 0x02, 0x3F, 0xFF})
	c.Process([]byte{0x00, 0xCA, 0x00, 0x00, 0x03})
	c.Process([]byte{0x00}) // the echo card answers 6700
	c.Reset()
	c.PowerOff()
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
