package metrics

import (
	"math/rand/v2"
	"testing"
	"time"
)

// histogramTestValues returns microsecond values covering every linear bin,
// both sides of every power of two, and a seeded random spread.
func histogramTestValues() []uint64 {
	var vs []uint64
	for us := uint64(0); us < 4096; us++ {
		vs = append(vs, us)
	}
	for e := 4; e < maxExponent; e++ {
		p := uint64(1) << e
		vs = append(vs, p-1, p, p+1)
	}
	vs = append(vs, maxLatencyMicros-1, maxLatencyMicros)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		vs = append(vs, rng.Uint64N(maxLatencyMicros+1))
	}
	return vs
}

func TestLatencyBinHoldsValue(t *testing.T) {
	for _, us := range histogramTestValues() {
		d := time.Duration(us) * time.Microsecond
		i := latencyBin(d)
		if i < 0 || i >= latencyBins {
			t.Fatalf("latencyBin(%v) = %d, outside [0, %d)", d, i, latencyBins)
		}
		lo, width := binBounds(i)
		if us < lo || us >= lo+width {
			t.Fatalf("latencyBin(%v) = %d with bounds [%d, %d) µs, which do not hold %d µs", d, i, lo, lo+width, us)
		}
		// Any duration inside the microsecond maps to the same bin.
		if j := latencyBin(d + 999*time.Nanosecond); j != i {
			t.Fatalf("latencyBin(%v) = %d but latencyBin(%v) = %d", d, i, d+999, j)
		}
	}
}

func TestBinBoundsAreContiguous(t *testing.T) {
	var next uint64
	for i := range latencyBins {
		lo, width := binBounds(i)
		if lo != next {
			t.Fatalf("bin %d starts at %d µs, want %d (gap or overlap)", i, lo, next)
		}
		if i >= linearBins && float64(width)/float64(lo) > 1.0/subBuckets {
			t.Fatalf("bin %d is %d µs wide at %d µs: wider than 1/%d of its lower bound", i, width, lo, subBuckets)
		}
		next = lo + width
	}
	if next != maxLatencyMicros+1 {
		t.Fatalf("bins end at %d µs, want %d", next, maxLatencyMicros+1)
	}
}

func TestLatencyBinClamps(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want int
	}{
		{"negative", -time.Second, 0},
		{"zero", 0, 0},
		{"sub-microsecond", 999 * time.Nanosecond, 0},
		{"max", MaxLatency, latencyBins - 1},
		{"above max", MaxLatency + time.Microsecond, latencyBins - 1},
		{"hour", time.Hour, latencyBins - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := latencyBin(tt.d); got != tt.want {
				t.Errorf("latencyBin(%v) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}

func TestBinValueError(t *testing.T) {
	for _, us := range histogramTestValues() {
		for _, extra := range []time.Duration{0, 500, 999} {
			d := time.Duration(us)*time.Microsecond + extra
			got := binValue(latencyBin(d))
			diff := got - d
			if diff < 0 {
				diff = -diff
			}
			if us >= linearBins {
				if rel := float64(diff) / float64(d); rel > QuantileRelativeError {
					t.Fatalf("binValue for %v = %v: relative error %.4f > %.4f", d, got, rel, QuantileRelativeError)
				}
			} else if diff > 500*time.Nanosecond {
				t.Fatalf("binValue for %v = %v: off by %v, more than 0.5µs", d, got, diff)
			}
		}
	}
}

func TestNearestRank(t *testing.T) {
	tests := []struct {
		q    float64
		n    uint64
		want uint64
	}{
		{0.5, 1, 1},
		{0.99, 1, 1},
		{0.5, 2, 1},
		{0.5, 3, 2},
		{0.95, 20, 19},
		{0.95, 21, 20},
		{0.99, 100, 99},
		{0.99, 101, 100},
		{0, 10, 1},
		{1, 10, 10},
		{1.5, 10, 10},
	}
	for _, tt := range tests {
		if got := nearestRank(tt.q, tt.n); got != tt.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", tt.q, tt.n, got, tt.want)
		}
	}
}

func TestQuantilesOnHistogram(t *testing.T) {
	var h [latencyBins]uint32
	// 90 samples in bin 3, 9 in bin 100, 1 in bin 199.
	h[3], h[100], h[199] = 90, 9, 1
	qs := []float64{0.5, 0.9, 0.91, 0.99, 1}
	out := make([]time.Duration, len(qs))
	quantiles(&h, 100, qs, out)
	want := []time.Duration{binValue(3), binValue(3), binValue(100), binValue(100), binValue(199)}
	for i := range qs {
		if out[i] != want[i] {
			t.Errorf("q%v = %v, want %v", qs[i], out[i], want[i])
		}
	}

	untouched := []time.Duration{7, 7}
	quantiles(&[latencyBins]uint32{}, 0, []float64{0.5, 0.99}, untouched)
	if untouched[0] != 7 || untouched[1] != 7 {
		t.Errorf("quantiles of an empty histogram wrote %v", untouched)
	}
}
