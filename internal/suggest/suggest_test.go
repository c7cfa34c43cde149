package suggest

import "testing"

func TestClosest(t *testing.T) {
	cmds := []string{"actions", "card", "doctor", "exec", "run", "stack", "trace"}
	flags := []string{"cards", "slots", "pcscd-debug", "card", "profile", "state", "junit", "parallel", "stack"}
	tests := []struct {
		word       string
		candidates []string
		want       string
	}{
		{"exce", cmds, "exec"},   // transposition
		{"exe", cmds, "exec"},    // deletion
		{"stakc", cmds, "stack"}, // transposition
		{"doctr", cmds, "doctor"},
		{"RUN", cmds, "run"}, // case
		{"tracee", cmds, "trace"},
		{"frobnicate", cmds, ""}, // nothing near
		{"x", cmds, ""},
		{"", cmds, ""},
		{"card", flags, "card"},               // exact beats near ("cards")
		{"crads", flags, "cards"},             // transposition
		{"paralel", flags, "parallel"},        // deletion
		{"pcscd-debgu", flags, "pcscd-debug"}, // long word, transposition
		{"jun", flags, "junit"},               // unique prefix
		{"sta", flags, ""},                    // prefix of both stack and state: ambiguous, no guess
		{"profiel", flags, "profile"},
		{"zzzzzzz", flags, ""},
		{"pi", []string{"pin", "pin-tries"}, "pin"},
	}
	for _, tt := range tests {
		if got := Closest(tt.word, tt.candidates); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	if got := DidYouMean("--carsd", []string{"--cards"}, ""); got != ` (did you mean "--cards"?)` {
		t.Errorf("got %q", got)
	}
	if got := DidYouMean("carsd", []string{"cards"}, "--%s"); got != " (did you mean --cards?)" {
		t.Errorf("got %q", got)
	}
	if got := DidYouMean("nothing-like-it", []string{"cards"}, ""); got != "" {
		t.Errorf("got %q, want no suggestion", got)
	}
}

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"ab", "ba", 1}, {"abc", "acb", 1}, {"ca", "abc", 3}, {"été", "ete", 2},
	} {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
