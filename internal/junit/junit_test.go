package junit

import (
	"bytes"
	"encoding/xml"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWrite(t *testing.T) {
	type item struct {
		Name string `xml:"name,attr"`
	}
	type doc struct {
		XMLName xml.Name `xml:"suite"`
		Items   []item   `xml:"item"`
	}
	var b bytes.Buffer
	if err := Write(&b, doc{Items: []item{{"a"}, {"b&c"}}}); err != nil {
		t.Fatal(err)
	}
	want := xml.Header + "<suite>\n  <item name=\"a\"></item>\n  <item name=\"b&amp;c\"></item>\n</suite>\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("Write (-want +got):\n%s", diff)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

// A writer that fails at the header, the body or the final newline: the
// error reaches the caller each time.
func TestWriteError(t *testing.T) {
	for after := 0; after < 3; after++ {
		if err := Write(&failWriter{after: after}, struct {
			XMLName xml.Name `xml:"x"`
		}{}); err == nil {
			t.Errorf("writer failing after %d writes: no error", after)
		}
	}
}
