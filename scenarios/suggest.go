package scenarios

import (
	"strings"
	"unicode/utf8"

	"github.com/cardharness/cardharness/internal/suggest"
)

// didYouMean returns " (did you mean X?)" for the known name closest to v,
// or "" when none is close: a suggestion should be a likely typo, not a
// guess.
func didYouMean(v string, known []string) string {
	best, bestD := "", -1
	lv := strings.ToLower(v)
	for _, k := range known {
		d := editDistance(lv, strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	limit := len(v) / 3
	if limit < 1 {
		limit = 1
	}
	if bestD < 0 || bestD > limit || strings.EqualFold(best, v) {
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is suggest.Distance (Levenshtein, with an adjacent swap
// counted as one edit), except that a long string is no typo of a name:
// the cap keeps hostile scenario files cheap.
func editDistance(a, b string) int {
	if utf8.RuneCountInString(a) > 64 || utf8.RuneCountInString(b) > 64 {
		return 1 << 30
	}
	return suggest.Distance(a, b)
}

// DidYouMean is didYouMean for the command line: " (did you mean X?)" or
// "".
func DidYouMean(v string, known []string) string { return didYouMean(v, known) }
