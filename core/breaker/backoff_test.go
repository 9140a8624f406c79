package breaker

import (
	"math"
	"testing"
	"time"
)

// TestBackoffGrowthCapAndReset re-opens the circuit again and again through
// failed probes and checks each open period, then closes it fully and
// checks the next trip starts from OpenTimeout again.
func TestBackoffGrowthCapAndReset(t *testing.T) {
	const s = time.Second
	tests := []struct {
		name    string
		backoff Backoff
		want    []time.Duration // the trip, then each consecutive re-open
	}{
		{"default doubles up to 10x", Backoff{Jitter: -1},
			[]time.Duration{10 * s, 20 * s, 40 * s, 80 * s, 100 * s, 100 * s}},
		{"explicit multiplier and cap", Backoff{Multiplier: 3, Max: 60 * s, Jitter: -1},
			[]time.Duration{10 * s, 30 * s, 60 * s, 60 * s}},
		{"multiplier 1 never grows", Backoff{Multiplier: 1, Jitter: -1},
			[]time.Duration{10 * s, 10 * s, 10 * s}},
		{"fractional multiplier", Backoff{Multiplier: 1.5, Max: 30 * s, Jitter: -1},
			[]time.Duration{10 * s, 15 * s, 22500 * time.Millisecond, 30 * s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Settings{FailureThreshold: 1, OpenTimeout: 10 * s, Backoff: tt.backoff})
			h.fail()
			for i, want := range tt.want {
				m := h.b.Metrics()
				if m.OpenTimeout != want || m.Reopens != i {
					t.Fatalf("open %d: OpenTimeout %v reopens %d, want %v and %d", i, m.OpenTimeout, m.Reopens, want, i)
				}
				if ev := h.rec.last(t); ev.To != "OPEN" || ev.OpenTimeout != want {
					t.Fatalf("open %d: event %+v, want OPEN for %v", i, ev, want)
				}
				h.clk.Advance(want - time.Nanosecond)
				h.wantState(StateOpen)
				h.clk.Advance(time.Nanosecond)
				h.wantState(StateHalfOpen)
				if i < len(tt.want)-1 {
					h.fail() // failed probe: re-open
				}
			}
			h.ok() // full close
			h.wantState(StateClosed)
			h.fail()
			if m := h.b.Metrics(); m.OpenTimeout != 10*s || m.Reopens != 0 {
				t.Fatalf("after a full close the trip lasts %v (reopens %d), want 10s", m.OpenTimeout, m.Reopens)
			}
		})
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	c := resolve(Settings{OpenTimeout: 10 * time.Second, Backoff: Backoff{Multiplier: 2, Max: time.Minute, Jitter: 0.2}})
	rs := []float64{0, 0.1, 0.25, 0.5, 0.75, 0.9, math.Nextafter(1, 0)}
	for level := range 8 {
		base := c.baseOpen(level)
		lo := time.Duration(float64(base) * 0.8)
		hi := min(time.Minute, time.Duration(float64(base)*1.2))
		for _, r := range rs {
			got := c.openFor(level, r)
			if got < lo || got > hi {
				t.Fatalf("level %d r %v: %v outside [%v, %v]", level, r, got, lo, hi)
			}
		}
		if got := c.openFor(level, 0); got != lo {
			t.Fatalf("level %d r=0: %v, want the low bound %v", level, got, lo)
		}
		if got := c.openFor(level, 0.5); got != base {
			t.Fatalf("level %d r=0.5: %v, want the base %v", level, got, base)
		}
	}
	if got := c.openFor(10, math.Nextafter(1, 0)); got != time.Minute {
		t.Fatalf("jitter pushed past the cap: %v", got)
	}
}

// TestBackoffJitterThroughBreaker uses Settings.Rand to pick the jitter and
// checks the open periods the breaker actually uses.
func TestBackoffJitterThroughBreaker(t *testing.T) {
	draws := []float64{0, 0.999, 0.25, 1.5, -1}
	i := 0
	rnd := func() float64 { r := draws[i%len(draws)]; i++; return r }
	h := newHarness(t, Settings{FailureThreshold: 1, OpenTimeout: 10 * time.Second,
		Backoff: Backoff{Multiplier: 2, Max: 100 * time.Second, Jitter: 0.5}, Rand: rnd})
	want := []time.Duration{
		5 * time.Second,             // base 10s, r=0: ×0.5
		time.Duration(20e9 * 1.499), // base 20s, r=0.999: ×1.499
		30 * time.Second,            // base 40s, r=0.25: ×0.75
		100 * time.Second,           // base 80s, r out of range is clamped below 1: capped at Max
		time.Duration(100e9 * 0.5),  // base 100s (capped), r=-1 is clamped to 0: ×0.5
	}
	h.fail()
	for n, w := range want {
		if got := h.b.Metrics().OpenTimeout; got != w {
			t.Fatalf("open %d lasts %v, want %v", n, got, w)
		}
		h.expire()
		h.fail()
	}
}

// TestDefaultJitterStaysInBounds uses the default random source.
func TestDefaultJitterStaysInBounds(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 1, OpenTimeout: 10 * time.Second})
	h.b.rand = defaultRand // the harness set a constant
	seen := map[time.Duration]bool{}
	for range 200 {
		h.fail()
		d := h.b.Metrics().OpenTimeout
		if d < 9*time.Second || d > 11*time.Second {
			t.Fatalf("open for %v, outside 10s ± 10%%", d)
		}
		seen[d] = true
		h.b.ForceClose()
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct open times in 200 draws: jitter is not random", len(seen))
	}
}
