package metrics

// counter names one windowed count.
type counter int

const (
	cRequests       counter = iota // REST requests finished
	cRateLimited                   // REST 429 responses
	cServerErrors                  // REST 5xx responses
	cTransport                     // REST transport errors
	cOperations                    // operations (see doc.go)
	cFailures                      // failed operations
	cHeartbeats                    // heartbeat round trips measured
	cHeartbeatNanos                // sum of those round trips, in ns
	cLatencySamples                // REST latencies in the histogram
	numCounters
)

// slot is one time bucket of the ring: its counters. Its REST latency
// histogram, when there is one, is the row of window.lat with the same
// index.
type slot struct {
	c [numCounters]uint64
}

// latencyRow is one histogram of REST latencies.
type latencyRow = [latencyBins]uint32

// window is a ring of time buckets plus running totals over the live ones.
// Bucket number b (time since the Recorder started, divided by the
// resolution) lives in slots[b % len(slots)]. The live buckets are
// head-len(slots)+1 through head; total always equals their sum, so reading
// the window costs the same whatever its length.
//
// The REST latency histograms (800 bytes a bucket, ten times the counters)
// are allocated by the first latency sample: a Recorder that never sees a
// REST request, as a shard's does when its manager counts REST in a
// process Recorder, never holds them. lat has one row per slot and one
// more, the last, for the running totals. window is not safe for
// concurrent use: the Recorder guards it with its mutex.
type window struct {
	slots []slot
	lat   []latencyRow // nil until the first latency sample; else len(slots)+1 rows
	head  int64        // newest bucket number
	total [numCounters]uint64
}

// noLatencies is the histogram of a window that has no latency sample yet.
var noLatencies latencyRow

func newWindow(buckets int) window {
	return window{slots: make([]slot, buckets)}
}

// totalLat returns the running totals of the latency histograms.
func (w *window) totalLat() *latencyRow {
	if w.lat == nil {
		return &noLatencies
	}
	return &w.lat[len(w.slots)]
}

// at moves the window forward to bucket b, dropping the buckets that leave
// it, and returns the slot observations made in bucket b go to. A bucket
// number before head (the clock went backwards, or a caller read the clock
// before another one moved the window on) maps to the head bucket, so an
// observation is never lost and never lands in a bucket that is about to
// expire. The cost is bounded by the number of buckets, whatever the gap.
func (w *window) at(b int64) *slot {
	n := int64(len(w.slots))
	if b > w.head {
		if b-w.head >= n {
			clear(w.slots)
			clear(w.lat)
			w.total = [numCounters]uint64{}
		} else {
			for x := w.head + 1; x <= b; x++ {
				w.drop(int(x % n))
			}
		}
		w.head = b
	}
	return &w.slots[w.head%n]
}

// drop subtracts slot i from the totals and clears it.
func (w *window) drop(i int) {
	s := &w.slots[i]
	for k, v := range s.c {
		w.total[k] -= v
	}
	if s.c[cLatencySamples] != 0 {
		row, tot := &w.lat[i], &w.lat[len(w.slots)]
		for k, v := range row {
			tot[k] -= v
		}
		*row = latencyRow{}
	}
	s.c = [numCounters]uint64{}
}

// add adds v to counter c in slot s and in the totals.
func (w *window) add(s *slot, c counter, v uint64) {
	s.c[c] += v
	w.total[c] += v
}

// addLatency counts one REST latency sample in histogram bin i of the head
// bucket (at returned its slot, s). The first sample allocates the
// histograms, once for the Recorder's life.
func (w *window) addLatency(s *slot, i int) {
	if w.lat == nil {
		w.lat = make([]latencyRow, len(w.slots)+1)
	}
	w.lat[w.head%int64(len(w.slots))][i]++
	w.lat[len(w.slots)][i]++
	w.add(s, cLatencySamples, 1)
}
