package scenarios

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		err  string
	}{
		{"1/1", Shard{1, 1}, ""},
		{"3/4", Shard{3, 4}, ""},
		{"0/4", Shard{}, "1 <= K <= N"},
		{"5/4", Shard{}, "1 <= K <= N"},
		{"2", Shard{}, "want K/N"},
		{"a/4", Shard{}, "numbers"},
	} {
		got, err := ParseShard(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseShard(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestShardsAreDisjointAndCoverTheSuite: for every N, the N shards of the
// built-in suite hold every scenario exactly once, the heaviest shard is
// within one scenario's cost of the lightest, and the partition does not
// depend on the order the scenarios were listed in.
func TestShardsAreDisjointAndCoverTheSuite(t *testing.T) {
	refs := BuiltinRefs()
	cost := map[string]int{}
	maxCost := 0
	for _, r := range refs {
		sc, err := r.load()
		if err != nil {
			t.Fatal(err)
		}
		cost[r.String()] = Cost(sc, "direct")
		maxCost = max(maxCost, cost[r.String()])
	}
	for _, stackKind := range []string{"direct", "pcscd"} {
		for _, n := range []int{1, 2, 3, 4, 5, 7, len(refs) - 1, len(refs), len(refs) + 2} {
			seen := map[string]int{}
			loads := make([]int, n)
			shuffled := append([]Ref(nil), refs...)
			rand.New(rand.NewPCG(uint64(n), 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			for k := 1; k <= n; k++ {
				a := ShardRefs(refs, Shard{k, n}, stackKind)
				b := ShardRefs(shuffled, Shard{k, n}, stackKind)
				if got, want := refNames(b), refNames(a); got != want {
					t.Fatalf("%s shard %d/%d depends on the input order:\n%s\nvs\n%s", stackKind, k, n, got, want)
				}
				for _, r := range a {
					seen[r.String()]++
					loads[k-1] += cost[r.String()]
				}
			}
			for _, r := range refs {
				if seen[r.String()] != 1 {
					t.Errorf("%s, %d shards: %s is in %d shards, want 1", stackKind, n, r, seen[r.String()])
				}
			}
			if len(seen) != len(refs) {
				t.Errorf("%s, %d shards: %d scenarios in the shards, want %d", stackKind, n, len(seen), len(refs))
			}
			if n <= len(refs) && stackKind == "direct" {
				lo, hi := loads[0], loads[0]
				for _, l := range loads {
					lo, hi = min(lo, l), max(hi, l)
				}
				if hi-lo > maxCost {
					t.Errorf("%d shards: loads %v: spread %d exceeds the largest scenario's cost %d", n, loads, hi-lo, maxCost)
				}
			}
		}
	}
}

func refNames(rs []Ref) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.String())
	}
	sort.Strings(s)
	return strings.Join(s, "\n")
}

func TestPartitionBalancesByCost(t *testing.T) {
	costs := []int{10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	p := Partition(costs, func(i int) string { return string(rune('a' + i)) }, 2)
	if len(p[0]) != 1 || p[0][0] != 0 || len(p[1]) != 10 {
		t.Fatalf("Partition = %v: want the heavy item alone and the ten light ones together", p)
	}
}
