package scenarios

import "strings"

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

// editDistance is the Levenshtein distance, with an adjacent swap counted
// as one edit (the commonest typo).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 30 // not a typo of a name; and keeps this cheap
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// DidYouMean is didYouMean for the command line: " (did you mean X?)" or
// "".
func DidYouMean(v string, known []string) string { return didYouMean(v, known) }
