package cliflag

import (
	"flag"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRepeatedAndList(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var vary Repeated
	var tags List
	fs.Var(&vary, "vary", "")
	fs.Var(&tags, "tag", "")
	if err := fs.Parse([]string{"--vary", "a=1,2", "--tag", " x, ,y", "--vary", "b=3", "--tag", "z"}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a=1,2", "b=3"}, []string(vary)); diff != "" {
		t.Errorf("Repeated (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"x", "y", "z"}, []string(tags)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if got := vary.String(); got != "a=1,2 b=3" {
		t.Errorf("Repeated.String() = %q", got)
	}
	if got := tags.String(); got != "x,y,z" {
		t.Errorf("List.String() = %q", got)
	}
}
