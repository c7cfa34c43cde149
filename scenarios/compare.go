package scenarios

// Comparing what a step observed with what the scenario expects.

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cardharness/cardharness/winerr"
)

func checkError(st *Step, err error) (msg, diff string) {
	want := st.ExpectError
	if want == "" || want == "none" {
		if err != nil {
			return "unexpected error: " + err.Error(), plainDiff(map[string]any{"error": "none"}, map[string]any{"error": errName(err)})
		}
		return "", ""
	}
	if err == nil {
		return "expected error " + want + ", the step succeeded", plainDiff(map[string]any{"error": want}, map[string]any{"error": "none"})
	}
	code, ok := codeOf(err)
	if !ok || code != errorCode(want) {
		return fmt.Sprintf("expected error %s, got: %v", want, err), plainDiff(map[string]any{"error": want}, map[string]any{"error": errName(err)})
	}
	return "", ""
}

func errName(err error) string {
	if code, ok := codeOf(err); ok {
		return winerr.Code(code).Name()
	}
	return "error: " + err.Error()
}

// compareResult checks the fields the scenario names; list values compare
// as lists, everything else as text.
func compareResult(want *yaml.Node, got Values, resolve func(string) string) string {
	w := map[string]any{}
	g := map[string]any{}
	for i := 0; i+1 < len(want.Content); i += 2 {
		k, v := want.Content[i].Value, want.Content[i+1]
		obs, ok := got[k]
		switch v.Kind {
		case yaml.SequenceNode:
			var list []string
			for _, x := range v.Content {
				list = append(list, resolve(x.Value))
			}
			w[k] = list
			if !ok {
				g[k] = absent
				continue
			}
			g[k] = asStrings(obs)
		default:
			if k == "output_contains" {
				out := fmt.Sprint(got["output"])
				w[k] = resolve(v.Value)
				g[k] = w[k]
				if !strings.Contains(out, resolve(v.Value)) {
					g[k] = "<not in output>"
				}
				continue
			}
			w[k] = resolve(v.Value)
			if !ok {
				g[k] = absent
				continue
			}
			g[k] = fmt.Sprint(obs)
			if sameValue(obs, resolve(v.Value)) {
				g[k] = w[k]
			}
		}
	}
	return plainDiff(w, g)
}

// sameValue compares an observed value with the text the scenario wrote:
// numbers as numbers (1, "01" and 1.0 match an integer 1), booleans as
// booleans (yes, on, true), anything else as text.
func sameValue(obs any, want string) bool {
	switch x := obs.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		n, err := strconv.ParseFloat(strings.TrimSpace(want), 64)
		if err != nil {
			return false
		}
		o, _ := strconv.ParseFloat(fmt.Sprint(x), 64)
		return n == o
	case bool:
		b, ok := parseBool(want)
		return ok && b == x
	}
	return fmt.Sprint(obs) == want
}

// outputNote is what a failed output_contains shows: the output itself
// (its end, if long), since "not in output" alone says nothing.
func outputNote(want *yaml.Node, got Values) string {
	if want == nil {
		return ""
	}
	for i := 0; i+1 < len(want.Content); i += 2 {
		if want.Content[i].Value == "output_contains" {
			out, ok := got["output"].(string)
			if !ok {
				return ""
			}
			const max = 4000
			if len(out) > max {
				out = "..." + out[len(out)-max:]
			}
			return "; the output was:\n" + indent(strings.TrimRight(out, "\n"), "      | ")
		}
	}
	return ""
}

func asStrings(v any) any {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return fmt.Sprint(v)
}
