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

// slot is one time bucket of the ring.
type slot struct {
	c   [numCounters]uint64
	lat [latencyBins]uint32
}

// window is a ring of time buckets plus running totals over the live ones.
// Bucket number b (time since the Recorder started, divided by the
// resolution) lives in slots[b % len(slots)]. The live buckets are
// head-len(slots)+1 through head; total always equals their sum, so reading
// the window costs the same whatever its length. window is not safe for
// concurrent use: the Recorder guards it with its mutex.
type window struct {
	slots    []slot
	head     int64 // newest bucket number
	total    [numCounters]uint64
	totalLat [latencyBins]uint32
}

func newWindow(buckets int) window {
	return window{slots: make([]slot, buckets)}
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
			w.total = [numCounters]uint64{}
			w.totalLat = [latencyBins]uint32{}
		} else {
			for x := w.head + 1; x <= b; x++ {
				w.drop(&w.slots[x%n])
			}
		}
		w.head = b
	}
	return &w.slots[w.head%n]
}

// drop subtracts s from the totals and clears it.
func (w *window) drop(s *slot) {
	for i, v := range s.c {
		w.total[i] -= v
	}
	if s.c[cLatencySamples] != 0 {
		for i, v := range s.lat {
			w.totalLat[i] -= v
		}
		s.lat = [latencyBins]uint32{}
	}
	s.c = [numCounters]uint64{}
}

// add adds v to counter c in slot s and in the totals.
func (w *window) add(s *slot, c counter, v uint64) {
	s.c[c] += v
	w.total[c] += v
}

// addLatency counts one REST latency sample in histogram bin i.
func (w *window) addLatency(s *slot, i int) {
	s.lat[i]++
	w.totalLat[i]++
	w.add(s, cLatencySamples, 1)
}
