package metrics

import (
	"math"
	"math/bits"
	"time"
)

// The latency histogram is log-linear over whole microseconds, in the style
// of HdrHistogram with three sub-bucket bits:
//
//   - values 0 µs to 15 µs each have their own bin (bins 0-15, width 1 µs);
//   - every power of two from 2^4 µs up to 2^27 µs is split into 8 bins of
//     equal width (bins 16-199), so a bin is at most 1/8 of its lower bound
//     wide;
//   - values of 2^27 µs (about 134 s) and more fall into the last bin.
//
// A quantile is reported as the midpoint of the bin that holds it, which is
// within 1/16 (6.25 %) of any value in that bin of 16 µs or more, and within
// 0.5 µs of any value below 16 µs.
const (
	subBucketBits    = 3
	subBuckets       = 1 << subBucketBits // bins per power of two
	linearBins       = 2 * subBuckets     // bins 0..15: one per µs
	maxExponent      = 27                 // values >= 2^27 µs are clamped
	latencyBins      = linearBins + (maxExponent-subBucketBits-1)*subBuckets
	maxLatencyMicros = 1<<maxExponent - 1
)

// MaxLatency is the largest REST latency the histogram resolves; longer
// requests are counted in its last bin, so a quantile never reports more
// than about MaxLatency.
const MaxLatency = time.Duration(maxLatencyMicros) * time.Microsecond

// QuantileRelativeError is the largest relative error of a reported REST
// latency quantile against the exact nearest-rank quantile of the
// observations in the window, for latencies from 16 µs up to MaxLatency.
// Below 16 µs the error is at most half a microsecond.
const QuantileRelativeError = 1.0 / (2 * subBuckets)

// latencyBin returns the histogram bin for d.
func latencyBin(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	us := uint64(d / time.Microsecond)
	if us > maxLatencyMicros {
		us = maxLatencyMicros
	}
	if us < linearBins {
		return int(us)
	}
	exp := bits.Len64(us) - 1 // >= subBucketBits+1
	sub := int(us>>(exp-subBucketBits)) & (subBuckets - 1)
	return linearBins + (exp-subBucketBits-1)*subBuckets + sub
}

// binBounds returns the lower bound and width of bin i, in microseconds.
func binBounds(i int) (lo, width uint64) {
	if i < linearBins {
		return uint64(i), 1
	}
	exp := (i-linearBins)/subBuckets + subBucketBits + 1
	sub := uint64((i - linearBins) % subBuckets)
	width = 1 << (exp - subBucketBits)
	return (subBuckets + sub) * width, width
}

// binValue is the duration a quantile that falls into bin i reports: the
// bin's midpoint.
func binValue(i int) time.Duration {
	lo, width := binBounds(i)
	return time.Duration(lo)*time.Microsecond + time.Duration(width)*time.Microsecond/2
}

// quantiles fills out[k] with the nearest-rank quantile qs[k] of the
// histogram h holding n samples; it leaves out untouched when n is 0. qs
// must be ascending.
func quantiles(h *[latencyBins]uint32, n uint64, qs []float64, out []time.Duration) {
	if n == 0 {
		return
	}
	k := 0
	rank := nearestRank(qs[0], n)
	var cum uint64
	for i := range h {
		cum += uint64(h[i])
		for cum >= rank {
			out[k] = binValue(i)
			k++
			if k == len(qs) {
				return
			}
			rank = nearestRank(qs[k], n)
		}
	}
	// Unreachable while the bins sum to n; report the top bin rather than 0.
	for ; k < len(qs); k++ {
		out[k] = binValue(latencyBins - 1)
	}
}

// nearestRank is the 1-based rank of quantile q among n samples:
// ceil(q·n), at least 1 and at most n.
func nearestRank(q float64, n uint64) uint64 {
	r := uint64(math.Ceil(q * float64(n)))
	if r < 1 {
		r = 1
	}
	if r > n {
		r = n
	}
	return r
}
