package coord

import (
	"cmp"
	"slices"
)

// plan is the JSON of the leader's assignment: Owners[shard] is the
// process the shard is assigned to ("" when none is live).
type plan struct {
	Generation uint64   `json:"gen"`
	Leader     string   `json:"leader"`
	Owners     []string `json:"owners"`
}

// assign spreads count shards over the live processes (sorted IDs): every
// process gets count/len(live) shards, the first count%len(live) of them
// (those holding the most now, then by ID) one more. A shard stays where it
// is (current[shard], the previous plan or its actual owner) while that
// process is live and under its quota, so a join or a leave moves only the
// shards it must. The rest go, in shard order, to the first process (by ID)
// with room left, so a fresh plan gives each process a contiguous range. The result depends only on the arguments.
func assign(count int, current []string, live []string) []string {
	out := make([]string, count)
	if len(live) == 0 || count == 0 {
		return out
	}
	isLive := make(map[string]bool, len(live))
	for _, p := range live {
		isLive[p] = true
	}
	held := map[string]int{}
	for s := range count {
		if s < len(current) && isLive[current[s]] {
			held[current[s]]++
		}
	}
	order := slices.Clone(live)
	slices.SortFunc(order, func(a, b string) int {
		if c := cmp.Compare(held[b], held[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	base, extra := count/len(live), count%len(live)
	quota := make(map[string]int, len(live))
	for i, p := range order {
		quota[p] = base
		if i < extra {
			quota[p]++
		}
	}
	got := map[string]int{}
	for s := range count {
		if s >= len(current) {
			continue
		}
		if p := current[s]; isLive[p] && got[p] < quota[p] {
			out[s] = p
			got[p]++
		}
	}
	sorted := slices.Clone(live)
	slices.Sort(sorted)
	next := 0
	for s := range count {
		if out[s] != "" {
			continue
		}
		for got[sorted[next]] >= quota[sorted[next]] {
			next++
		}
		out[s] = sorted[next]
		got[sorted[next]]++
	}
	return out
}
