// Package suggest finds the name someone probably meant, for "did you
// mean" hints on mistyped commands, flags, actions or fields.
package suggest

import (
	"fmt"
	"strings"
)

// Closest returns the candidate nearest to word, or "" when none is near
// enough to be a plausible typo. Near enough: an edit distance (insertions,
// deletions, substitutions, and swaps of neighbours, ignoring case) of at
// most one for words up to four letters, two up to eight and three beyond;
// or word being a prefix of exactly one candidate (`--jun` for `--junit`).
// Ties go to the candidate listed first, so callers decide the order.
func Closest(word string, candidates []string) string {
	if word == "" {
		return ""
	}
	w := strings.ToLower(word)
	best, bestD := "", -1
	var prefixed []string
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if lc == w {
			return c
		}
		if strings.HasPrefix(lc, w) {
			prefixed = append(prefixed, c)
		}
		if d := distance(w, lc); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD >= 0 && bestD <= allowed(len(w)) {
		return best
	}
	if len(prefixed) == 1 && len(w) >= 2 {
		return prefixed[0]
	}
	return ""
}

// DidYouMean is Closest phrased for an error message: ` (did you mean
// "exec"?)`, with format's %s holding the candidate (e.g. "--%s"), or "".
func DidYouMean(word string, candidates []string, format string) string {
	c := Closest(word, candidates)
	if c == "" {
		return ""
	}
	if format == "" {
		format = "%q"
	}
	return " (did you mean " + fmt.Sprintf(format, c) + "?)"
}

func allowed(n int) int {
	switch {
	case n <= 4:
		return 1
	case n <= 8:
		return 2
	default:
		return 3
	}
}

// distance is the optimal string alignment distance (Levenshtein plus
// transposition of adjacent characters, the commonest typo), on runes.
func distance(a, b string) int {
	r, s := []rune(a), []rune(b)
	prev2 := make([]int, len(s)+1)
	prev := make([]int, len(s)+1)
	cur := make([]int, len(s)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(r); i++ {
		cur[0] = i
		for j := 1; j <= len(s); j++ {
			cost := 1
			if r[i-1] == s[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && r[i-1] == s[j-2] && r[i-2] == s[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(s)]
}
