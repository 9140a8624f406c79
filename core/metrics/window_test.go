package metrics

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// refEvent is one observation as the reference model sees it.
type refEvent struct {
	bucket     int64
	delta      [numCounters]uint64
	latency    time.Duration
	hasLatency bool
}

// refModel recomputes the windowed figures from a plain list of every
// observation, straight from the rules in doc.go, to check the ring and
// its running totals against.
type refModel struct {
	start   time.Time
	res     time.Duration
	buckets int64
	head    int64
	events  []refEvent
	hbOut   bool
	hbSent  time.Time
}

func (m *refModel) bucketAt(t time.Time) int64 {
	d := t.Sub(m.start)
	if d < 0 {
		return 0
	}
	b := int64(d / m.res)
	m.head = max(m.head, b)
	return m.head
}

func (m *refModel) rest(now time.Time, lat time.Duration, status int, transport bool) {
	e := refEvent{bucket: m.bucketAt(now)}
	e.delta[cRequests] = 1
	switch {
	case transport || status < 100:
		e.delta[cTransport] = 1
		e.delta[cOperations], e.delta[cFailures] = 1, 1
	case status == 429:
		e.delta[cRateLimited] = 1
		e.latency, e.hasLatency = lat, true
	case status >= 500:
		e.delta[cServerErrors] = 1
		e.delta[cOperations], e.delta[cFailures] = 1, 1
		e.latency, e.hasLatency = lat, true
	default:
		e.delta[cOperations] = 1
		e.latency, e.hasLatency = lat, true
	}
	m.events = append(m.events, e)
}

func (m *refModel) op(now time.Time, failed bool) {
	e := refEvent{bucket: m.bucketAt(now)}
	e.delta[cOperations] = 1
	if failed {
		e.delta[cFailures] = 1
	}
	m.events = append(m.events, e)
}

func (m *refModel) heartbeatSent(now time.Time) {
	if m.hbOut {
		m.op(now, true)
	}
	m.hbOut, m.hbSent = true, now
}

func (m *refModel) heartbeatAcked(now time.Time) {
	if !m.hbOut {
		return
	}
	m.hbOut = false
	e := refEvent{bucket: m.bucketAt(now)}
	rtt := max(now.Sub(m.hbSent), 0)
	e.delta[cHeartbeats], e.delta[cHeartbeatNanos] = 1, uint64(rtt)
	e.delta[cOperations] = 1
	m.events = append(m.events, e)
}

// live returns the counter sums and sorted latencies of the events still in
// the window at time now.
func (m *refModel) live(now time.Time) (sum [numCounters]uint64, lats []time.Duration) {
	head := m.bucketAt(now)
	for _, e := range m.events {
		if e.bucket <= head-m.buckets {
			continue
		}
		for i, v := range e.delta {
			sum[i] += v
		}
		if e.hasLatency {
			sum[cLatencySamples]++
			lats = append(lats, e.latency)
		}
	}
	slices.Sort(lats)
	return sum, lats
}

func checkTotals(t *testing.T, w *window, step int) {
	t.Helper()
	var c [numCounters]uint64
	var lat [latencyBins]uint32
	for k, s := range w.slots {
		for i, v := range s.c {
			c[i] += v
		}
		if w.lat == nil {
			continue
		}
		var n uint32
		for i, v := range w.lat[k] {
			lat[i] += v
			n += v
		}
		if uint64(n) != s.c[cLatencySamples] {
			t.Fatalf("step %d: bucket %d holds %d latencies but counts %d", step, k, n, s.c[cLatencySamples])
		}
	}
	if c != w.total || lat != *w.totalLat() {
		t.Fatalf("step %d: running totals differ from the sum of the buckets", step)
	}
}

// manualClock is a clock.Fake whose Now is set directly, backwards too
// (clock.Fake only moves forward). Single goroutine only.
type manualClock struct {
	*clock.Fake
	now time.Time
}

func (c *manualClock) Now() time.Time                  { return c.now }
func (c *manualClock) Since(t time.Time) time.Duration { return c.now.Sub(t) }

// TestWindowMatchesReferenceModel drives a Recorder and a reference model
// with the same random observations and clock moves (forward by less than a
// bucket, by several, past the whole window, and backwards) and compares
// every windowed figure at every Build.
func TestWindowMatchesReferenceModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		clk := &manualClock{Fake: clock.NewFake(time.Time{})}
		clk.now = clk.Fake.Now()
		r := NewRecorder(Options{Clock: clk, Window: 10 * time.Second, Buckets: 5})
		m := &refModel{start: clk.Now(), res: r.Resolution(), buckets: 5}
		rng := rand.New(rand.NewPCG(seed, 99))
		statuses := []int{200, 201, 204, 400, 404, 429, 500, 502, 503, 0}
		builds := 0
		for step := range 4000 {
			now := clk.Now()
			switch k := rng.IntN(100); {
			case k < 15:
				clk.now = now.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
			case k < 17:
				clk.now = now.Add(time.Duration(rng.Int64N(int64(30 * time.Second))))
			case k < 18:
				clk.now = now.Add(-time.Duration(rng.Int64N(int64(5 * time.Second))))
			case k < 50:
				lat := time.Duration(rng.ExpFloat64() * float64(200*time.Millisecond))
				status := statuses[rng.IntN(len(statuses))]
				transport := rng.IntN(20) == 0
				r.ObserveREST(lat, status, transport)
				m.rest(now, lat, status, transport)
			case k < 60:
				r.OperationSucceeded()
				m.op(now, false)
			case k < 70:
				r.OperationFailed()
				m.op(now, true)
			case k < 78:
				r.HeartbeatSent()
				m.heartbeatSent(now)
			case k < 85:
				r.HeartbeatAcked()
				m.heartbeatAcked(now)
			default:
				builds++
				s := r.Build()
				sum, lats := m.live(now)
				compareWithModel(t, step, s, sum, lats)
			}
			checkTotals(t, &r.w, step)
		}
		if builds < 100 {
			t.Fatalf("seed %d: only %d builds compared", seed, builds)
		}
	}
}

func compareWithModel(t *testing.T, step int, s Snapshot, sum [numCounters]uint64, lats []time.Duration) {
	t.Helper()
	got := REST{Requests: s.REST.Requests, RateLimited: s.REST.RateLimited, ServerErrors: s.REST.ServerErrors, Failures: s.REST.Failures}
	want := REST{Requests: sum[cRequests], RateLimited: sum[cRateLimited], ServerErrors: sum[cServerErrors], Failures: sum[cTransport]}
	if got != want {
		t.Fatalf("step %d: REST = %+v, want %+v", step, got, want)
	}
	if s.Errors.Operations != sum[cOperations] || s.Errors.InWindow != sum[cFailures] {
		t.Fatalf("step %d: operations/failures = %d/%d, want %d/%d", step,
			s.Errors.Operations, s.Errors.InWindow, sum[cOperations], sum[cFailures])
	}
	var wantRate float64
	if sum[cOperations] > 0 {
		wantRate = float64(sum[cFailures]) / float64(sum[cOperations])
	}
	if s.Errors.Rate != wantRate {
		t.Fatalf("step %d: rate = %v, want %v", step, s.Errors.Rate, wantRate)
	}
	var wantAvg time.Duration
	if sum[cHeartbeats] > 0 {
		wantAvg = time.Duration(sum[cHeartbeatNanos] / sum[cHeartbeats])
	}
	if s.Latency.HeartbeatAvg != wantAvg {
		t.Fatalf("step %d: heartbeat avg = %v, want %v", step, s.Latency.HeartbeatAvg, wantAvg)
	}
	gotQ := []time.Duration{s.Latency.RESTP50, s.Latency.RESTP95, s.Latency.RESTP99}
	for i, q := range []float64{0.5, 0.95, 0.99} {
		var want time.Duration
		if len(lats) > 0 {
			exact := lats[nearestRank(q, uint64(len(lats)))-1]
			want = binValue(latencyBin(exact))
		}
		if gotQ[i] != want {
			t.Fatalf("step %d: p%v = %v, want %v (%d samples)", step, q*100, gotQ[i], want, len(lats))
		}
	}
}

// TestRecorderMemoryIsFixed checks that observations never grow the
// Recorder: the ring is allocated once, at its configured size.
func TestRecorderMemoryIsFixed(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	r := NewRecorder(Options{Clock: fake})
	before := cap(r.w.slots)
	r.ObserveREST(time.Millisecond, 200, false)
	lat := &r.w.lat[0]
	for i := range 10000 {
		r.ObserveREST(time.Duration(i)*time.Millisecond, 200, false)
		r.OperationFailed()
		fake.Advance(37 * time.Millisecond)
	}
	if cap(r.w.slots) != before || len(r.w.slots) != DefaultBuckets {
		t.Fatalf("ring has %d slots (cap %d), want %d (cap %d)", len(r.w.slots), cap(r.w.slots), DefaultBuckets, before)
	}
	if &r.w.lat[0] != lat || len(r.w.lat) != DefaultBuckets+1 {
		t.Fatalf("latency histograms reallocated or resized: %d rows, want %d", len(r.w.lat), DefaultBuckets+1)
	}
}

// TestLatencyHistogramsOnlyWithREST checks that the latency histograms
// are allocated by the first REST latency and by nothing else: a shard's
// Recorder, which sees heartbeats and operations but no REST request,
// stays at its counters' size, and the first latency costs exactly one
// allocation, after which the window's figures are what they would have
// been with the histograms there from the start.
func TestLatencyHistogramsOnlyWithREST(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	r := NewRecorder(Options{Clock: fake})
	for range 100 {
		r.HeartbeatSent()
		fake.Advance(40 * time.Millisecond)
		r.HeartbeatAcked()
		r.OperationFailed()
		r.ObserveREST(0, 0, true) // a transport error records no latency
		fake.Advance(time.Second)
		_ = r.Build()
	}
	if r.w.lat != nil {
		t.Fatal("latency histograms allocated without a REST latency")
	}
	if s := r.Build(); s.Latency.RESTP50 != 0 || s.REST.Requests == 0 {
		t.Fatalf("without latencies: p50 %v, %d requests", s.Latency.RESTP50, s.REST.Requests)
	}

	base := testing.AllocsPerRun(50, func() { _ = NewRecorder(Options{Clock: fake}) })
	first := testing.AllocsPerRun(50, func() {
		NewRecorder(Options{Clock: fake}).ObserveREST(80*time.Millisecond, 200, false)
	})
	if first-base != 1 {
		t.Fatalf("the first REST latency made %v allocations, want 1", first-base)
	}

	r.ObserveREST(80*time.Millisecond, 200, false)
	r.ObserveREST(120*time.Millisecond, 503, false)
	checkTotals(t, &r.w, 0)
	s := r.Build()
	if s.Latency.RESTP50 < 70*time.Millisecond || s.Latency.RESTP50 > 90*time.Millisecond ||
		s.Latency.RESTP99 < 110*time.Millisecond || s.Latency.RESTP99 > 130*time.Millisecond {
		t.Fatalf("p50 %v, p99 %v; want about 80ms and 120ms", s.Latency.RESTP50, s.Latency.RESTP99)
	}
	fake.Advance(DefaultWindow)
	if s := r.Build(); s.Latency.RESTP50 != 0 || s.REST.Requests != 0 {
		t.Fatalf("a window later: p50 %v, %d requests; want both gone", s.Latency.RESTP50, s.REST.Requests)
	}
	checkTotals(t, &r.w, 1)
}

// TestMemoryFootprint keeps the sizes doc.go states true.
func TestMemoryFootprint(t *testing.T) {
	if got := unsafe.Sizeof(slot{}); got != 72 {
		t.Errorf("a bucket's counters are %d bytes; doc.go and MaxBuckets say 72", got)
	}
	if got := unsafe.Sizeof(latencyRow{}); got != 800 {
		t.Errorf("a bucket's latency histogram is %d bytes; doc.go and MaxBuckets say 800", got)
	}
	if got := unsafe.Sizeof(Recorder{}); got > 600 {
		t.Errorf("a Recorder without its buckets is %d bytes; doc.go says about 0.5 KB", got)
	}
}
