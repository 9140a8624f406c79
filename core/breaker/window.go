package breaker

import "time"

// numBuckets is how many time buckets the failure window holds. The memory
// of a window is fixed at numBuckets small structs whatever the threshold
// or the failure rate.
const numBuckets = 32

// window counts failures over a sliding period as a ring of numBuckets time
// buckets, each width = period/numBuckets wide. Times are offsets from the
// breaker's epoch. Bucket i covers [i×width, (i+1)×width); at time t the
// window sums the buckets cur−numBuckets+1 .. cur where cur = t/width, so a
// failure at age a is counted when a <= (numBuckets−1)×width and never when
// a >= numBuckets×width <= period. It is not safe for concurrent use (the
// breaker's mutex guards it).
type window struct {
	width   time.Duration
	buckets [numBuckets]bucket
}

type bucket struct {
	idx int64 // which width-long slice of time since the epoch
	n   uint64
}

func newWindow(period time.Duration) window {
	return window{width: bucketWidth(period)}
}

func bucketWidth(period time.Duration) time.Duration {
	w := period / numBuckets
	if w < 1 {
		w = 1
	}
	return w
}

func (w *window) index(at time.Duration) int64 {
	if at < 0 {
		at = 0
	}
	return int64(at / w.width)
}

// add counts n failures at offset at.
func (w *window) add(at time.Duration, n uint64) {
	i := w.index(at)
	b := &w.buckets[i%numBuckets]
	if b.idx != i || b.n == 0 {
		*b = bucket{idx: i}
	}
	b.n += n
}

// count returns the failures in the window ending at offset now.
func (w *window) count(now time.Duration) uint64 {
	cur := w.index(now)
	var sum uint64
	for _, b := range w.buckets {
		if b.n > 0 && b.idx <= cur && b.idx > cur-numBuckets {
			sum += b.n
		}
	}
	return sum
}

// clear forgets every failure.
func (w *window) clear() { w.buckets = [numBuckets]bucket{} }

// resize changes the window's period at offset now, keeping the failures
// still inside it: each bucket's count moves to the new bucket holding the
// old bucket's start, so a failure can only age, never get younger, and
// still never counts for longer than the new period.
func (w *window) resize(period, now time.Duration) {
	nw := bucketWidth(period)
	if nw == w.width {
		return
	}
	old := w.buckets
	oldWidth := w.width
	cur := w.index(now)
	w.clear()
	w.width = nw
	newCur := w.index(now)
	for _, b := range old {
		if b.n == 0 || b.idx > cur || b.idx <= cur-numBuckets {
			continue
		}
		start := time.Duration(b.idx) * oldWidth
		if w.index(start) <= newCur-numBuckets {
			continue
		}
		w.add(start, b.n)
	}
}
