package scenarios

import (
	"testing"
	"testing/fstest"
)

// FuzzParse: no scenario text makes the parser panic; every rejection is a
// ParseErrors list with positions.
func FuzzParse(f *testing.F) {
	for _, ref := range BuiltinRefs() {
		b, err := Builtin.ReadFile(ref.Path)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: x\nsteps:\n  - do: repeat\n    times: 2\n    steps: [{do: advance, by: 1d}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := Parse(fstest.MapFS{"inc.yaml": {Data: []byte("steps: []\n")}}, "f.yaml", b)
		if err != nil {
			if _, ok := err.(ParseErrors); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
		}
	})
}
