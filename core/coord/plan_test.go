package coord

import (
	"slices"
	"testing"
)

func TestAssign(t *testing.T) {
	tests := []struct {
		name    string
		count   int
		current []string
		live    []string
		want    []string
		moved   int // shards whose owner changed from a live current owner, at most
	}{
		{name: "nobody", count: 3, live: nil, want: []string{"", "", ""}},
		{name: "one takes all", count: 3, live: []string{"a"}, want: []string{"a", "a", "a"}},
		{name: "even spread", count: 6, live: []string{"b", "a", "c"}, want: []string{"a", "a", "b", "b", "c", "c"}},
		{name: "uneven spread", count: 7, live: []string{"a", "b", "c"}, want: []string{"a", "a", "a", "b", "b", "c", "c"}},
		{name: "sticky", count: 4, current: []string{"b", "a", "b", "a"}, live: []string{"a", "b"},
			want: []string{"b", "a", "b", "a"}},
		{name: "join moves a fair share only", count: 6, current: []string{"a", "a", "a", "b", "b", "b"}, live: []string{"a", "b", "c"},
			want: []string{"a", "a", "c", "b", "b", "c"}, moved: 2},
		{name: "leave spreads the leaver's shards", count: 6, current: []string{"a", "a", "c", "b", "b", "c"}, live: []string{"a", "b"},
			want: []string{"a", "a", "a", "b", "b", "b"}},
		{name: "more processes than shards", count: 2, live: []string{"a", "b", "c"}, want: []string{"a", "b"}},
		{name: "extra shard stays with its holder", count: 5, current: []string{"b", "b", "b", "a", "a"}, live: []string{"a", "b"},
			want: []string{"b", "b", "b", "a", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := assign(tt.count, tt.current, tt.live)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("assign = %v, want %v", got, tt.want)
			}
			// Balanced: counts differ by at most one.
			if len(tt.live) > 0 {
				n := map[string]int{}
				for _, p := range got {
					n[p]++
				}
				lo, hi := tt.count, 0
				for _, p := range tt.live {
					lo, hi = min(lo, n[p]), max(hi, n[p])
				}
				if hi-lo > 1 {
					t.Fatalf("unbalanced: %v", n)
				}
			}
			if tt.moved > 0 {
				moved := 0
				for s, p := range got {
					if s < len(tt.current) && tt.current[s] != "" && tt.current[s] != p {
						moved++
					}
				}
				if moved > tt.moved {
					t.Fatalf("%d shards moved, want at most %d", moved, tt.moved)
				}
			}
			// Deterministic: the same input gives the same plan.
			if again := assign(tt.count, tt.current, tt.live); !slices.Equal(again, got) {
				t.Fatalf("not deterministic: %v then %v", got, again)
			}
		})
	}
}
