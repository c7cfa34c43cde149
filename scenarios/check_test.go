package scenarios

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A scenario skeleton the mistakes below are put into: one card, one host
// with a knob block, a saved key and CSR.
const checkBase = `name: check me
cards:
  card: {}
hosts:
  desktop:
    knobs: {KNOB}
steps:
  - {do: logon, host: desktop}
  - {do: writer-generate-key, card: card, bits: 1024, save: key}
  - {do: writer-make-csr, card: card, guid: $key.guid, save: req}
  - STEP
`

// TestCheckCatchesEachMistake feeds run --check (Check) each mistake issue
// 10 and issue 8 list and wants a file:line error naming it, with a
// suggestion where one is likely.
func TestCheckCatchesEachMistake(t *testing.T) {
	tests := []struct {
		name, knob, step string
		want             string // "" : the file must be accepted
	}{
		{"int argument", "", "{do: writer-generate-key, card: card, bits: 2o48}", `check.yaml:11: bits: want a whole number, got "2o48"`},
		{"bool argument", "", "{do: writer-generate-key, card: card, default: ture}", `check.yaml:11: default: want true or false, got "ture" (did you mean true?)`},
		{"enum argument", "", "{do: writer-generate-key, card: card, bump: sometimes}", `check.yaml:11: bump: "sometimes" is not one of correct, none, late, wrong-counter, reset-to-zero`},
		{"enum typo", "", "{do: writer-generate-key, card: card, bump: corect}", `(did you mean correct?)`},
		{"int bound", "", "{do: writer-generate-key, card: card, bits: 100000}", `check.yaml:11: bits: 100000 is above the maximum 4096`},
		{"unknown knob", "propagation_dely: 5s", "{do: advance, by: 1s}", `check.yaml:6: host "desktop": unknown knob "propagation_dely" (did you mean propagation_delay?)`},
		{"bad knob value", "granularity: whole", "{do: advance, by: 1s}", `check.yaml:6: host "desktop": knob granularity: "whole" is not one of per-category, whole-snapshot`},
		{"bad knob bool", "session_pins: maybe", "{do: advance, by: 1s}", `check.yaml:6: host "desktop": knob session_pins: want true or false`},
		{"bad knob error", "silent_no_container_error: NTE_BAD_KEYST", "{do: advance, by: 1s}", `(did you mean NTE_BAD_KEYSET?)`},
		{"session_pins is the spelling", "session_pins: true", "{do: advance, by: 1s}", ""},
		{"a CA code by name", "", "{do: ca-issue, csr: $req.csr, expect: {error: CERTSRV_E_UNSUPPORTED_CERT_TYPE}}", ""},
		{"unknown error name", "", "{do: ca-issue, csr: $req.csr, expect: {error: CRYPT_E_NO_KEY_PROPERTI}}", `check.yaml:11: unknown error "CRYPT_E_NO_KEY_PROPERTI" (did you mean CRYPT_E_NO_KEY_PROPERTY?)`},
		{"unknown result field in expect", "", "{do: check-card, card: card, expect: {result: {container: 1}}}", `check.yaml:11: action "check-card" has no result field "container" (did you mean containers?)`},
		{"expected number", "", "{do: check-card, card: card, expect: {result: {containers: three}}}", `check.yaml:11: expect.result.containers is a number, got "three"`},
		{"expected bool", "", "{do: check-store, host: desktop, cert: $req, expect: {result: {present: ture}}}", `expect.result.present is true or false, got "ture" (did you mean true?)`},
		{"unknown field of a saved result", "", "{do: writer-make-csr, card: card, guid: $key.gid}", `check.yaml:11: writer-make-csr: $key.gid has no field "gid" (did you mean guid?)`},
		{"undefined variable", "", "{do: writer-make-csr, card: card, guid: $kee.guid}", `check.yaml:11: writer-make-csr: $kee.guid is not defined (saved before this step: key, req; save: a step's result, or declare it under vars:) (did you mean key?)`},
		{"undefined variable in text", "", "{do: tool, card: card, run: \"echo ${nope}\"}", `check.yaml:11: tool: $nope is not defined`},
		{"field of the wrong type", "", "{do: ca-issue, csr: $key.guid}", `check.yaml:11: csr: $key.guid is a guid, want a csr`},
		{"literal where a saved value is needed", "", "{do: ca-issue, csr: request.der}", `check.yaml:11: csr: want a saved csr such as $req.csr, got "request.der"`},
		{"unknown argument", "", "{do: insert, host: desktop, card: card, hots: x}", `check.yaml:11: action "insert" takes no argument "hots" (did you mean host?)`},
		{"unknown action", "", "{do: genrate-key}", `check.yaml:11: unknown action "genrate-key" (did you mean generate-key?)`},
		{"undeclared host", "", "{do: logon, host: destkop}", `check.yaml:11: step "logon": no host named "destkop" (did you mean desktop?)`},
		{"negative duration", "", "{do: advance, by: -100h}", `check.yaml:11: by: negative duration "-100h"`},
		{"overflowing duration", "", "{do: advance, by: 999999999999d}", `check.yaml:11: by: bad duration "999999999999d"`},
		{"long duration", "", "{do: advance, by: 99999d}", `check.yaml:11: by: duration "99999d" is longer than 100 years`},
		{"huge repeat", "", "{do: repeat, times: 1000000000, steps: [{do: advance, by: 1s}]}", `check.yaml:11: times: 1000000000 is above the maximum 10000`},
		{"negative repeat", "", "{do: repeat, times: -5, steps: [{do: advance, by: 1s}]}", `check.yaml:11: times: -5 is below the minimum 1`},
		{"nested repeats over the step budget", "", "{do: repeat, times: 10000, steps: [{do: repeat, times: 10000, steps: [{do: advance, by: 1s}]}]}", `the scenario would run 100000003 steps (repeats multiplied out), more than 1000000`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src := strings.Replace(strings.Replace(checkBase, "KNOB", tt.knob, 1), "STEP", tt.step, 1)
			file := filepath.Join(dir, "check.yaml")
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			err := Check([]Ref{{Path: file, Root: dir}})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", tt.want)
			}
			got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
			if !strings.Contains(got, tt.want) {
				t.Errorf("error:\n%s\nwant it to contain:\n%s", got, tt.want)
			}
		})
	}
}
