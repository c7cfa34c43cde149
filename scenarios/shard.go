package scenarios

// Shards: a CI matrix runs one slice of the suite per job (--shard K/N).
// Every job computes the same partition from the same command line, so the
// slices are disjoint and together cover the suite without any job talking
// to another; `cardharness report merge` then joins their reports.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Shard is slice K (1-based) of N.
type Shard struct{ K, N int }

// ParseShard reads "K/N" with 1 <= K <= N.
func ParseShard(s string) (Shard, error) {
	k, n, ok := strings.Cut(s, "/")
	if !ok {
		return Shard{}, fmt.Errorf("--shard %q: want K/N, e.g. 2/4", s)
	}
	ki, err1 := strconv.Atoi(strings.TrimSpace(k))
	ni, err2 := strconv.Atoi(strings.TrimSpace(n))
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("--shard %q: K and N must be numbers, e.g. 2/4", s)
	}
	if ni < 1 || ki < 1 || ki > ni {
		return Shard{}, fmt.Errorf("--shard %q: want 1 <= K <= N", s)
	}
	if ni > 10000 {
		return Shard{}, fmt.Errorf("--shard %q: at most 10000 shards", s)
	}
	return Shard{K: ki, N: ni}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// Cost estimates what running a scenario costs, in rough units of one
// in-process step: what shards are balanced on. It counts steps (a repeat
// counts its rounds), key generations by size (RSA key generation is the
// most expensive thing a scenario does when keys are not seeded, and still
// an RSA private-key operation when they are), external tools (a process
// and a stack each) and, for the pcscd stack, the stack start-up every
// scenario pays.
func Cost(sc *Scenario, stackKind string) int {
	c := 2 + 2*len(sc.Cards) + len(sc.Hosts)
	if stackKind == "pcscd" || stackKind == "" {
		c += 20 + 4*len(sc.Cards)
	}
	return c + stepsCost(sc.Steps)
}

func stepsCost(steps []*Step) int {
	c := 0
	for _, st := range steps {
		switch {
		case st.Do == "repeat":
			times := 1
			if n, ok := st.Args["times"]; ok {
				if v, err := strconv.Atoi(n.Value); err == nil && v > 0 {
					times = v
				}
			}
			c += 1 + times*stepsCost(st.Sub)
		case st.Do == "tool":
			c += 40
		default:
			c++
			if st.action != nil && st.action.arg("bits") != nil {
				bits := 2048
				if n, ok := st.Args["bits"]; ok {
					if v, err := strconv.Atoi(n.Value); err == nil {
						bits = v
					}
				}
				c += 2 * bits / 1024
			}
		}
	}
	return c
}

// Partition splits items with the given costs into n slices, balanced by
// cost: the most expensive item first into the lightest slice (ties: the
// lower index), the classic longest-processing-time rule, whose heaviest
// slice is within one item of the best possible. key orders items of
// equal cost, so the result depends only on the items, never on the order
// they were listed in. It returns, for each slice, the indexes of its
// items in their original order.
func Partition(costs []int, key func(i int) string, n int) [][]int {
	order := make([]int, len(costs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		if costs[order[a]] != costs[order[b]] {
			return costs[order[a]] > costs[order[b]]
		}
		return key(order[a]) < key(order[b])
	})
	slices := make([][]int, n)
	load := make([]int, n)
	for _, i := range order {
		best := 0
		for s := 1; s < n; s++ {
			if load[s] < load[best] {
				best = s
			}
		}
		slices[best] = append(slices[best], i)
		load[best] += costs[i]
	}
	for _, s := range slices {
		sort.Ints(s)
	}
	return slices
}

// ShardRefs keeps the scenarios of shard s, balanced by Cost on stackKind.
// A scenario that does not parse goes to shard 1, so that its error is
// reported exactly once.
func ShardRefs(refs []Ref, s Shard, stackKind string) []Ref {
	if s.N <= 1 {
		return refs
	}
	costs := make([]int, len(refs))
	for i, r := range refs {
		sc, err := r.load()
		if err != nil {
			costs[i] = -1
			continue
		}
		costs[i] = Cost(sc, stackKind)
	}
	var out []Ref
	var ok []int
	for i, c := range costs {
		if c < 0 {
			if s.K == 1 {
				out = append(out, refs[i])
			}
			continue
		}
		ok = append(ok, i)
	}
	okCosts := make([]int, len(ok))
	for j, i := range ok {
		okCosts[j] = costs[i]
	}
	part := Partition(okCosts, func(j int) string { return refs[ok[j]].String() }, s.N)
	for _, j := range part[s.K-1] {
		out = append(out, refs[ok[j]])
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].String() < out[b].String() })
	return out
}
