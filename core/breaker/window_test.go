package breaker

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestWindowBoundaries(t *testing.T) {
	const period = 64 * time.Second // 32 buckets of 2s
	tests := []struct {
		name        string
		fail, query time.Duration
		want        uint64
	}{
		{"just now", 0, 0, 1},
		{"same bucket", 10 * time.Second, 11 * time.Second, 1},
		{"age 31 buckets is always counted", 10 * time.Second, 72 * time.Second, 1},
		{"age just under the period from a bucket start", 0, period - time.Nanosecond, 1},
		{"age of a full period never counts", 0, period, 0},
		{"age of a full period never counts (mid-bucket)", 3 * time.Second, 3*time.Second + period, 0},
		{"may be dropped within the last bucket of the period", 1500 * time.Millisecond, period, 0},
		{"long gone", 0, time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(period)
			w.add(tt.fail, 1)
			if got := w.count(tt.query); got != tt.want {
				t.Fatalf("failure at %v counted %d at %v, want %d", tt.fail, got, tt.query, tt.want)
			}
		})
	}
}

// TestWindowGuarantee checks the documented guarantee against an exact
// list of failure times: every failure younger than 31/32 of the period is
// counted and none as old as the period is.
func TestWindowGuarantee(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, period := range []time.Duration{time.Second, 64 * time.Second, 5 * time.Minute, 7*time.Minute + 3} {
		w := newWindow(period)
		width := bucketWidth(period)
		var times []time.Duration
		now := time.Duration(0)
		for i := range 2000 {
			now += time.Duration(rng.Int64N(int64(period / 20)))
			if i%3 != 0 {
				w.add(now, 1)
				times = append(times, now)
			}
			var sure, possible uint64
			for _, f := range times {
				age := now - f
				if age <= (numBuckets-1)*width {
					sure++
				}
				if age < numBuckets*width {
					possible++
				}
			}
			got := w.count(now)
			if got < sure || got > possible {
				t.Fatalf("period %v at %v: count %d, want within [%d, %d]", period, now, got, sure, possible)
			}
		}
	}
}

func TestWindowResize(t *testing.T) {
	tests := []struct {
		name      string
		from, to  time.Duration
		fails     []time.Duration
		now       time.Duration
		wantNow   uint64
		later     time.Duration
		wantLater uint64
	}{
		{"longer period keeps failures", 64 * time.Second, 128 * time.Second,
			[]time.Duration{0, 40 * time.Second}, 40 * time.Second, 2, 100 * time.Second, 2},
		{"longer period still ends them by the new period", 64 * time.Second, 128 * time.Second,
			[]time.Duration{0, 40 * time.Second}, 40 * time.Second, 2, 160 * time.Second, 1},
		{"shorter period drops older ones", 128 * time.Second, 32 * time.Second,
			[]time.Duration{0, 90 * time.Second, 100 * time.Second}, 100 * time.Second, 2, 110 * time.Second, 2},
		{"same bucket width is a no-op", 64 * time.Second, 64*time.Second + 1,
			[]time.Duration{5 * time.Second}, 6 * time.Second, 1, 6 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindow(tt.from)
			for _, f := range tt.fails {
				w.add(f, 1)
			}
			w.resize(tt.to, tt.now)
			if got := w.count(tt.now); got != tt.wantNow {
				t.Fatalf("right after resize: %d, want %d", got, tt.wantNow)
			}
			if got := w.count(tt.later); got != tt.wantLater {
				t.Fatalf("at %v: %d, want %d", tt.later, got, tt.wantLater)
			}
		})
	}
}

func TestWindowTinyPeriod(t *testing.T) {
	w := newWindow(time.Nanosecond)
	if w.width != 1 {
		t.Fatalf("width %v, want 1ns", w.width)
	}
	w.add(0, 3)
	if got := w.count(31); got != 3 {
		t.Fatalf("count %d", got)
	}
	if got := w.count(32); got != 0 {
		t.Fatalf("count %d", got)
	}
}
