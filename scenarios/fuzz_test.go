package scenarios

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// The parser's fuzz targets start from small inputs: whole built-in files
// (kilobytes each) made FuzzParse spend its budget minimising them (21
// executions in 45 s). Instead the seeds are
//   - one-construct scenarios (testdata/fuzz/FuzzParse holds more), and
//   - every flow-style step of the built-in suite, alone in a minimal
//     scenario, so that the mutator works on real action syntax;
// and FuzzParseStep builds the YAML from typed parts, so that mutations
// land in action names, argument names and values instead of breaking the
// YAML syntax first.

// fuzzFS is what includes can reach in the fuzz targets.
var fuzzFS = fstest.MapFS{
	"inc.yaml":  {Data: []byte("steps: []\n")},
	"_ab.yaml":  {Data: []byte("cards: {b: {}}\nsteps: [{do: advance, by: 1s}]\n")},
	"loop.yaml": {Data: []byte("include: [loop.yaml]\n")},
}

var smallSeeds = []string{
	"name: x\nsteps: []\n",
	"name: x\nseed: 7\ncards: {c: {}}\nhosts: {h: {}}\nsteps:\n  - {do: logon, host: h}\n",
	"name: x\ncards: {c: {profile: blank, pin: '1234', cardid: 0102030405060708090A0B0C0D0E0F10}}\nsteps: []\n",
	"name: x\nhosts: {h: {user_pin: '0000', knobs: {propagation_delay: 5s, granularity: whole-snapshot}}}\nsteps: []\n",
	"name: x\ninclude: [inc.yaml]\nsteps: []\n",
	"name: x\ninclude: [_ab.yaml, inc.yaml]\nsteps: []\n",
	"name: x\ninclude: [loop.yaml]\nsteps: []\n",
	"name: x\nvars: {n: 3}\nsteps:\n  - {do: advance, by: '${n}d'}\n",
	"name: x\nsteps:\n  - do: repeat\n    times: 2\n    steps: [{do: advance, by: 1d}]\n",
	"name: x\ncards: {c: {}}\nhosts: {h: {}}\nsteps:\n  - {do: acquire-key, host: h, cert: $k.cert, silent: true, expect: {error: CRYPT_E_NO_KEY_PROPERTY}}\n",
	"name: x\ncards: {c: {}}\nsteps:\n  - {do: writer-generate-key, card: c, bits: 2048, bump: none, save: k}\n  - {do: check-card, card: c, expect: {result: {containers: 1}}}\n",
	"name: x\ninvariants: {counters_may_go_back: true}\nsteps: []\n",
	"name: x\ntags: [a, b]\nsteps: []\n",
	"steps:\n- name: n\n  do: advance\n  by: 10s\n",
}

func FuzzParse(f *testing.F) {
	for _, s := range smallSeeds {
		f.Add([]byte(s))
	}
	for _, line := range builtinStepLines(f) {
		f.Add([]byte("name: x\ncards: {card: {}}\nhosts: {desktop: {}}\nsteps:\n" + line + "\n"))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		parseMustNotPanic(t, b)
	})
}

// FuzzParseStep: one step assembled from its parts, `- {do: DO, ARG:
// VALUE}` repeated `times` times under a repeat, so that the fuzzer
// explores action names, argument names and values.
func FuzzParseStep(f *testing.F) {
	f.Add("advance", "by", "1d", 1)
	f.Add("insert", "card", "card", 0)
	f.Add("writer-generate-key", "bits", "2048", 2)
	f.Add("writer-write-certificate", "bump", "late", 0)
	f.Add("acquire-key", "expect", "{error: 0x8009200B}", 1)
	f.Add("check-card", "expect", "{result: {containers: 2}}", 0)
	f.Add("tool", "run", "[pkcs11-tool, -L]", 0)
	f.Add("ca-renew", "fault", "two-requests", 0)
	f.Add("advance", "by", "-100h", 0)
	f.Add("repeat", "times", "-5", 3)
	f.Fuzz(func(t *testing.T, do, arg, value string, times int) {
		step := fmt.Sprintf("{do: %s, host: desktop, %s: %s}", do, arg, value)
		body := "  - " + step + "\n"
		if times != 0 {
			body = fmt.Sprintf("  - do: repeat\n    times: %d\n    steps:\n      - %s\n", times, step)
		}
		parseMustNotPanic(t, []byte("name: x\ncards: {card: {}}\nhosts: {desktop: {}}\nsteps:\n"+body))
	})
}

// parseMustNotPanic: no text makes the parser panic; every rejection is a
// ParseErrors list.
func parseMustNotPanic(t *testing.T, b []byte) {
	_, err := Parse(fuzzFS, "f.yaml", b)
	if err != nil {
		if _, ok := err.(ParseErrors); !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
	}
}

// builtinStepLines returns every one-line step of the built-in suite.
func builtinStepLines(f *testing.F) []string {
	var lines []string
	err := fs.WalkDir(Builtin, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := Builtin.ReadFile(p)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(strings.TrimSpace(l), "- {do:") {
				lines = append(lines, "  "+strings.TrimSpace(l))
			}
		}
		return nil
	})
	if err != nil || len(lines) < 20 {
		f.Fatalf("built-in step lines: %d, %v", len(lines), err)
	}
	return lines
}
