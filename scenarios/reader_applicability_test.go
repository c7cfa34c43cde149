package scenarios

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestReaderApplicability: what makes a scenario not applicable to one
// card in a reader, decided from the file alone.
func TestReaderApplicability(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cards string
		steps string
		opts  Options
		want  string // "" : applies
	}{
		{"one card", "card: {}", "- {do: check-card, card: card}", Options{}, ""},
		{"two cards", "a: {}\n  b: {}", "- {do: check-card, card: a}", Options{}, "declares 2 cards; a reader holds one"},
		{"blank card", "card: {profile: blank}", "- {do: check-card, card: card}", Options{}, "card card is blank"},
		{"chosen cardid", "card: {cardid: 00112233445566778899aabbccddeeff}", "- {do: check-card, card: card}", Options{}, "chooses its cardid"},
		{"card fault", "card: {faults: [drop-cardcf-writes]}", "- {do: check-card, card: card}", Options{}, "injects faults"},
		{"internals", "card: {}", "- {do: reinitialize, card: card}", Options{}, "(reinitialize) needs card internals"},
		{"internals in a repeat", "card: {}", "- do: repeat\n  times: 2\n  steps:\n    - {do: reinitialize, card: card}", Options{}, "needs card internals"},
		{"admin key not given", "card: {}", "- {do: writer-unblock-pin, card: card, new: \"111111\"}", Options{}, "needs the card's admin key: give --admin-key"},
		{"literal PIN, other --pin", "card: {}", "- {do: writer-change-pin, card: card, old: \"123456\", new: \"654321\"}", Options{PIN: "24682468"}, "gives the PIN literally (old:)"},
		{"literal PIN, same --pin", "card: {}", "- {do: writer-change-pin, card: card, old: \"123456\", new: \"654321\"}", Options{PIN: "123456"}, ""},
		{"${card.pin}", "card: {}", "- {do: tool, card: card, run: [pkcs11-tool, --pin, \"${card.pin}\", -L]}", Options{PIN: "24682468"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "name: t\ncards:\n  " + tc.cards + "\nsteps:\n  " + strings.ReplaceAll(tc.steps, "\n", "\n  ") + "\n"
			sc, err := Load(fstest.MapFS{"t.yaml": {Data: []byte(src)}}, "t.yaml")
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			why := strings.Join(Applicability(sc, tc.opts), "; ")
			if tc.want == "" && why != "" {
				t.Errorf("not applicable: %s", why)
			}
			if tc.want != "" && !strings.Contains(why, tc.want) {
				t.Errorf("reasons %q, want %q", why, tc.want)
			}
		})
	}
}
