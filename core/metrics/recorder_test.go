package metrics_test

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

func newFake(t *testing.T, o metrics.Options) (*metrics.Recorder, *clock.Fake) {
	t.Helper()
	fake := clock.NewFake(time.Time{})
	o.Clock = fake
	return metrics.NewRecorder(o), fake
}

func TestNewRecorderOptions(t *testing.T) {
	tests := []struct {
		name       string
		opts       metrics.Options
		window     time.Duration
		resolution time.Duration
		shard      metrics.ShardInfo
	}{
		{"zero value", metrics.Options{}, 60 * time.Second, 5 * time.Second, metrics.ShardInfo{ID: 0, Count: 1}},
		{"negative values", metrics.Options{Window: -time.Second, Buckets: -3, ShardCount: -1}, 60 * time.Second, 5 * time.Second, metrics.ShardInfo{Count: 1}},
		{"custom", metrics.Options{Window: 10 * time.Second, Buckets: 10, ShardID: 3, ShardCount: 8}, 10 * time.Second, time.Second, metrics.ShardInfo{ID: 3, Count: 8}},
		{"default buckets over custom window", metrics.Options{Window: 30 * time.Second}, 30 * time.Second, 2500 * time.Millisecond, metrics.ShardInfo{Count: 1}},
		{"buckets capped", metrics.Options{Window: time.Hour, Buckets: 100000}, time.Hour, time.Second, metrics.ShardInfo{Count: 1}},
		{"resolution floor", metrics.Options{Window: 5 * time.Millisecond, Buckets: 100}, 5 * time.Millisecond, time.Millisecond, metrics.ShardInfo{Count: 1}},
		{"window below resolution floor", metrics.Options{Window: 500 * time.Microsecond, Buckets: 4}, 500 * time.Microsecond, 500 * time.Microsecond, metrics.ShardInfo{Count: 1}},
		{"window rounded down to buckets", metrics.Options{Window: time.Second, Buckets: 7}, 7 * (time.Second / 7), time.Second / 7, metrics.ShardInfo{Count: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newFake(t, tt.opts)
			if r.Window() != tt.window || r.Resolution() != tt.resolution {
				t.Errorf("window/resolution = %v/%v, want %v/%v", r.Window(), r.Resolution(), tt.window, tt.resolution)
			}
			s := r.Build()
			if s.Errors.Window != tt.window {
				t.Errorf("Errors.Window = %v, want %v", s.Errors.Window, tt.window)
			}
			if s.Shard != tt.shard {
				t.Errorf("Shard = %+v, want %+v", s.Shard, tt.shard)
			}
		})
	}
}

func TestZeroOptionsUseRealClock(t *testing.T) {
	before := time.Now()
	r := metrics.NewRecorder(metrics.Options{})
	r.OperationFailed()
	s := r.Build()
	after := time.Now()
	if s.Time.Before(before) || s.Time.After(after) {
		t.Errorf("Snapshot.Time = %v, not between %v and %v: not the wall clock", s.Time, before, after)
	}
	if s.Errors.Total != 1 || s.Errors.InWindow != 1 {
		t.Errorf("errors = %+v, want one failure", s.Errors)
	}
}

func TestTimeAndUptime(t *testing.T) {
	r, fake := newFake(t, metrics.Options{})
	start := fake.Now()
	fake.Advance(90 * time.Minute)
	s := r.Build()
	if !s.Time.Equal(start.Add(90*time.Minute)) || s.Uptime != 90*time.Minute {
		t.Errorf("Time/Uptime = %v/%v, want %v/%v", s.Time, s.Uptime, start.Add(90*time.Minute), 90*time.Minute)
	}
}

// TestWindowSliding: with a 60 s window in 12 buckets of 5 s, an
// observation made at offset `at` is still counted at offset `in` and gone
// at offset `out`.
func TestWindowSliding(t *testing.T) {
	tests := []struct {
		name    string
		at, in  time.Duration
		out     time.Duration
		observe func(*metrics.Recorder)
		count   func(metrics.Snapshot) uint64
	}{
		{"failure at bucket start", 0, 59999 * time.Millisecond, 60 * time.Second,
			(*metrics.Recorder).OperationFailed, func(s metrics.Snapshot) uint64 { return s.Errors.InWindow }},
		{"failure at bucket end", 4999 * time.Millisecond, 59999 * time.Millisecond, 60 * time.Second,
			(*metrics.Recorder).OperationFailed, func(s metrics.Snapshot) uint64 { return s.Errors.InWindow }},
		{"failure in second bucket", 5 * time.Second, 64999 * time.Millisecond, 65 * time.Second,
			(*metrics.Recorder).OperationFailed, func(s metrics.Snapshot) uint64 { return s.Errors.InWindow }},
		{"success", 12 * time.Second, 64 * time.Second, 70 * time.Second,
			(*metrics.Recorder).OperationSucceeded, func(s metrics.Snapshot) uint64 { return s.Errors.Operations }},
		{"REST 429", 30 * time.Second, 89 * time.Second, 90 * time.Second,
			func(r *metrics.Recorder) { r.ObserveREST(time.Millisecond, 429, false) },
			func(s metrics.Snapshot) uint64 { return s.REST.RateLimited }},
		{"REST 503", 0, 55 * time.Second, 61 * time.Second,
			func(r *metrics.Recorder) { r.ObserveREST(time.Millisecond, 503, false) },
			func(s metrics.Snapshot) uint64 { return s.REST.ServerErrors }},
		{"REST transport", 0, 30 * time.Second, time.Hour,
			func(r *metrics.Recorder) { r.ObserveREST(time.Millisecond, 0, true) },
			func(s metrics.Snapshot) uint64 { return s.REST.Failures }},
		{"REST latency sample", 0, 59 * time.Second, 60 * time.Second,
			func(r *metrics.Recorder) { r.ObserveREST(100*time.Millisecond, 200, false) },
			func(s metrics.Snapshot) uint64 { return uint64(s.Latency.RESTP99 / time.Millisecond) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, fake := newFake(t, metrics.Options{})
			start := fake.Now()
			fake.Set(start.Add(tt.at))
			tt.observe(r)
			if got := tt.count(r.Build()); got == 0 {
				t.Fatalf("not counted right after the observation")
			}
			fake.Set(start.Add(tt.in))
			if got := tt.count(r.Build()); got == 0 {
				t.Fatalf("dropped at +%v, want it counted until +%v", tt.in, tt.out)
			}
			fake.Set(start.Add(tt.out))
			if got := tt.count(r.Build()); got != 0 {
				t.Fatalf("still counted (%d) at +%v", got, tt.out)
			}
		})
	}
}

// TestWindowSlidesGradually spreads one failure per second over two
// minutes and checks the windowed count as the old ones leave bucket by
// bucket, while Total keeps all of them.
func TestWindowSlidesGradually(t *testing.T) {
	r, fake := newFake(t, metrics.Options{Window: 10 * time.Second, Buckets: 5})
	for i := range 120 {
		r.OperationFailed()
		s := r.Build()
		// Buckets are 2 s; the live ones are the current and the 4 before.
		bucket := i / 2
		first := max(bucket-4, 0)
		want := uint64(i - 2*first + 1)
		if s.Errors.InWindow != want || s.Errors.Total != uint64(i+1) {
			t.Fatalf("after %d s: InWindow/Total = %d/%d, want %d/%d", i, s.Errors.InWindow, s.Errors.Total, want, i+1)
		}
		fake.Advance(time.Second)
	}
}

func TestRESTClassification(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		transport bool
		rest      metrics.REST
		ops, fail uint64
		latency   bool
	}{
		{"200", 200, false, metrics.REST{Requests: 1}, 1, 0, true},
		{"204", 204, false, metrics.REST{Requests: 1}, 1, 0, true},
		{"304", 304, false, metrics.REST{Requests: 1}, 1, 0, true},
		{"403 is the bot's error, not a failure", 403, false, metrics.REST{Requests: 1}, 1, 0, true},
		{"404", 404, false, metrics.REST{Requests: 1}, 1, 0, true},
		{"429 is not an operation", 429, false, metrics.REST{Requests: 1, RateLimited: 1}, 0, 0, true},
		{"500", 500, false, metrics.REST{Requests: 1, ServerErrors: 1}, 1, 1, true},
		{"502", 502, false, metrics.REST{Requests: 1, ServerErrors: 1}, 1, 1, true},
		{"transport error", 0, true, metrics.REST{Requests: 1, Failures: 1}, 1, 1, false},
		{"transport error wins over a status", 200, true, metrics.REST{Requests: 1, Failures: 1}, 1, 1, false},
		{"status 0 is a transport error", 0, false, metrics.REST{Requests: 1, Failures: 1}, 1, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newFake(t, metrics.Options{})
			r.ObserveREST(250*time.Millisecond, tt.status, tt.transport)
			s := r.Build()
			if s.REST != tt.rest {
				t.Errorf("REST = %+v, want %+v", s.REST, tt.rest)
			}
			if s.Errors.Operations != tt.ops || s.Errors.InWindow != tt.fail || s.Errors.Total != tt.fail {
				t.Errorf("operations/in window/total = %d/%d/%d, want %d/%d/%d",
					s.Errors.Operations, s.Errors.InWindow, s.Errors.Total, tt.ops, tt.fail, tt.fail)
			}
			if got := s.Latency.RESTP50 != 0; got != tt.latency {
				t.Errorf("latency recorded = %v (p50 %v), want %v", got, s.Latency.RESTP50, tt.latency)
			}
		})
	}
}

func TestErrorRate(t *testing.T) {
	type obs struct {
		status    int // 0 with op set means a generic operation
		transport bool
		op        string // "ok", "fail" or "" for REST
		n         int
	}
	tests := []struct {
		name     string
		obs      []obs
		rate     float64
		ops      uint64
		failures uint64
	}{
		{"nothing happened", nil, 0, 0, 0},
		{"all good", []obs{{status: 200, n: 10}}, 0, 10, 0},
		{"all failed", []obs{{op: "fail", n: 4}}, 1, 4, 0 + 4},
		{"quarter", []obs{{status: 200, n: 3}, {status: 500, n: 1}}, 0.25, 4, 1},
		{"429s are left out", []obs{{status: 429, n: 50}, {status: 200, n: 1}, {status: 503, n: 1}}, 0.5, 2, 1},
		{"mixed sources", []obs{{op: "ok", n: 6}, {op: "fail", n: 2}, {status: 0, transport: true, n: 1}, {status: 201, n: 1}}, 0.3, 10, 3},
		{"only 429s", []obs{{status: 429, n: 5}}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newFake(t, metrics.Options{})
			for _, o := range tt.obs {
				for range o.n {
					switch o.op {
					case "ok":
						r.OperationSucceeded()
					case "fail":
						r.OperationFailed()
					default:
						r.ObserveREST(10*time.Millisecond, o.status, o.transport)
					}
				}
			}
			e := r.Build().Errors
			if math.Abs(e.Rate-tt.rate) > 1e-12 || e.Operations != tt.ops || e.InWindow != tt.failures {
				t.Errorf("rate/operations/failures = %v/%d/%d, want %v/%d/%d", e.Rate, e.Operations, e.InWindow, tt.rate, tt.ops, tt.failures)
			}
			if e.Rate < 0 || e.Rate > 1 {
				t.Errorf("rate %v outside [0, 1]", e.Rate)
			}
		})
	}
}

func TestErrorRateAfterSlide(t *testing.T) {
	r, fake := newFake(t, metrics.Options{})
	for range 9 {
		r.OperationFailed()
	}
	r.OperationSucceeded()
	fake.Advance(30 * time.Second)
	for range 10 {
		r.OperationSucceeded()
	}
	if e := r.Build().Errors; e.Rate != 9.0/20 {
		t.Fatalf("rate with both halves in the window = %v, want %v", e.Rate, 9.0/20)
	}
	fake.Advance(30 * time.Second) // the first ten leave
	if e := r.Build().Errors; e.Rate != 0 || e.Operations != 10 || e.Total != 9 {
		t.Fatalf("after the failures left: %+v, want rate 0 over 10 operations, total 9", e)
	}
}

func TestConsecutive(t *testing.T) {
	type step struct {
		do   func(*metrics.Recorder)
		want uint64
	}
	fail := (*metrics.Recorder).OperationFailed
	ok := (*metrics.Recorder).OperationSucceeded
	rest := func(status int, transport bool) func(*metrics.Recorder) {
		return func(r *metrics.Recorder) { r.ObserveREST(time.Millisecond, status, transport) }
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"counts failures", []step{{fail, 1}, {fail, 2}, {fail, 3}}},
		{"success resets", []step{{fail, 1}, {fail, 2}, {ok, 0}, {fail, 1}}},
		{"REST 5xx and transport errors count", []step{{rest(500, false), 1}, {rest(0, true), 2}, {fail, 3}}},
		{"REST 2xx and 4xx reset", []step{{fail, 1}, {rest(200, false), 0}, {fail, 1}, {rest(404, false), 0}}},
		{"429 neither counts nor resets", []step{{fail, 1}, {rest(429, false), 1}, {fail, 2}}},
		{"missed heartbeat ACK counts, ACK resets", []step{
			{(*metrics.Recorder).HeartbeatSent, 0},
			{(*metrics.Recorder).HeartbeatSent, 1},
			{(*metrics.Recorder).HeartbeatSent, 2},
			{(*metrics.Recorder).HeartbeatAcked, 0},
		}},
		{"non-operations leave it alone", []step{
			{fail, 1},
			{func(r *metrics.Recorder) { r.Dispatch(5) }, 1},
			{func(r *metrics.Recorder) { r.CloseCode(4000) }, 1},
			{(*metrics.Recorder).ReconnectStarted, 1},
			{func(r *metrics.Recorder) { r.SetGatewayState("READY", true) }, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, fake := newFake(t, metrics.Options{})
			for i, st := range tt.steps {
				st.do(r)
				if got := r.Build().Errors.Consecutive; got != st.want {
					t.Fatalf("step %d: Consecutive = %d, want %d", i, got, st.want)
				}
				fake.Advance(time.Second)
			}
		})
	}
}

func TestConsecutiveAndTotalOutliveWindow(t *testing.T) {
	r, fake := newFake(t, metrics.Options{})
	for range 5 {
		r.OperationFailed()
	}
	fake.Advance(time.Hour)
	e := r.Build().Errors
	if e.Consecutive != 5 || e.Total != 5 || e.InWindow != 0 || e.Rate != 0 {
		t.Fatalf("an hour later: %+v, want consecutive 5, total 5, nothing in the window", e)
	}
}

func TestGatewayCounters(t *testing.T) {
	r, _ := newFake(t, metrics.Options{})
	for i := range 7 {
		r.Dispatch(int64(i + 1))
	}
	r.ReconnectStarted()
	r.ReconnectStarted()
	r.ResumeSent()
	r.IdentifySent()
	r.IdentifySent()
	r.IdentifySent()
	r.CloseCode(1006)
	r.CloseCode(4009)
	r.Hello(41250 * time.Millisecond)
	g := r.Build().Gateway
	want := metrics.Gateway{
		HeartbeatInterval: 41250 * time.Millisecond,
		Sequence:          7,
		Reconnects:        2,
		Resumes:           1,
		Identifies:        3,
		LastCloseCode:     4009,
		Dispatches:        7,
	}
	if g != want {
		t.Fatalf("Gateway = %+v\nwant      %+v", g, want)
	}
	// A new session starts its sequence again; the last one seen wins.
	r.Dispatch(1)
	if g := r.Build().Gateway; g.Sequence != 1 || g.Dispatches != 8 {
		t.Fatalf("after a new session: sequence/dispatches = %d/%d, want 1/8", g.Sequence, g.Dispatches)
	}
}

func TestHeartbeat(t *testing.T) {
	r, fake := newFake(t, metrics.Options{})
	if l := r.Build().Latency; l.Heartbeat != 0 || l.HeartbeatAvg != 0 {
		t.Fatalf("before any ACK: %+v, want zeros", l)
	}
	rtts := []time.Duration{40 * time.Millisecond, 60 * time.Millisecond, 110 * time.Millisecond}
	for _, rtt := range rtts {
		r.HeartbeatSent()
		fake.Advance(rtt)
		r.HeartbeatAcked()
		fake.Advance(time.Second)
	}
	s := r.Build()
	if s.Latency.Heartbeat != 110*time.Millisecond || s.Latency.HeartbeatAvg != 70*time.Millisecond {
		t.Fatalf("last/avg = %v/%v, want 110ms/70ms", s.Latency.Heartbeat, s.Latency.HeartbeatAvg)
	}
	if s.Errors.Operations != 3 || s.Errors.InWindow != 0 {
		t.Fatalf("three acknowledged heartbeats: %+v, want 3 operations, no failure", s.Errors)
	}

	// An ACK with nothing outstanding is not a round trip.
	r.HeartbeatAcked()
	if s := r.Build(); s.Latency.Heartbeat != 110*time.Millisecond || s.Errors.Operations != 3 {
		t.Fatalf("unsolicited ACK changed figures: %+v %+v", s.Latency, s.Errors)
	}

	// The average covers the window; the last round trip stays.
	fake.Advance(time.Minute)
	if l := r.Build().Latency; l.Heartbeat != 110*time.Millisecond || l.HeartbeatAvg != 0 {
		t.Fatalf("a minute later: %+v, want last 110ms and no average", l)
	}
}

func TestHeartbeatMissedAndForgotten(t *testing.T) {
	tests := []struct {
		name     string
		between  func(*metrics.Recorder)
		failures uint64
	}{
		{"second heartbeat without ACK counts a miss", func(*metrics.Recorder) {}, 1},
		{"HELLO forgets the outstanding heartbeat", func(r *metrics.Recorder) { r.Hello(time.Second) }, 0},
		{"disconnect forgets the outstanding heartbeat", func(r *metrics.Recorder) { r.SetGatewayState("DISCONNECTED", false) }, 0},
		{"state change while connected does not", func(r *metrics.Recorder) { r.SetGatewayState("RESUMED", true) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, fake := newFake(t, metrics.Options{})
			r.SetGatewayState("READY", true)
			r.HeartbeatSent()
			fake.Advance(time.Second)
			tt.between(r)
			r.HeartbeatSent()
			if e := r.Build().Errors; e.InWindow != tt.failures || e.Total != tt.failures {
				t.Fatalf("failures = %d (total %d), want %d", e.InWindow, e.Total, tt.failures)
			}
			// The second heartbeat's round trip is measured from when it was sent.
			fake.Advance(30 * time.Millisecond)
			r.HeartbeatAcked()
			if l := r.Build().Latency; l.Heartbeat != 30*time.Millisecond {
				t.Fatalf("round trip = %v, want 30ms", l.Heartbeat)
			}
		})
	}
}

func TestLastAckAge(t *testing.T) {
	r, fake := newFake(t, metrics.Options{})
	age := func() time.Duration { return r.Build().Gateway.LastAckAge }

	if a := age(); a != 0 {
		t.Fatalf("never connected: %v, want 0", a)
	}
	r.HeartbeatSent()
	fake.Advance(time.Second)
	r.HeartbeatAcked() // an ACK before the session is up
	fake.Advance(4 * time.Second)
	if a := age(); a != 0 {
		t.Fatalf("not connected yet: %v, want 0", a)
	}
	r.SetGatewayState("READY", true)
	fake.Advance(2 * time.Second)
	if a := age(); a != 2*time.Second {
		t.Fatalf("connected 2s ago, no ACK since: %v, want 2s", a)
	}
	r.HeartbeatSent()
	fake.Advance(500 * time.Millisecond)
	r.HeartbeatAcked()
	fake.Advance(3 * time.Second)
	if a := age(); a != 3*time.Second {
		t.Fatalf("ACK 3s ago: %v, want 3s", a)
	}
	r.SetGatewayState("READY", true) // still connected: the clock does not restart
	fake.Advance(time.Second)
	if a := age(); a != 4*time.Second {
		t.Fatalf("ACK 4s ago: %v, want 4s", a)
	}
	r.SetGatewayState("DISCONNECTED", false)
	if a := age(); a != 0 {
		t.Fatalf("disconnected: %v, want 0", a)
	}
	fake.Advance(10 * time.Second)
	r.SetGatewayState("RESUMED", true)
	fake.Advance(time.Second)
	if a := age(); a != time.Second {
		t.Fatalf("reconnected 1s ago, old ACK 11s ago: %v, want 1s", a)
	}
}

// TestDownForAndConnections follows Gateway.DownFor and Connections
// through a first handshake, a session, an outage and a resume: the
// first handshake is no outage (DownFor 0, Connections 0), an outage
// counts from the moment the session went down, and state changes while
// down (RECONNECTING to RESUMING) do not restart it.
func TestDownForAndConnections(t *testing.T) {
	r, fake := newFake(t, metrics.Options{})
	type want struct {
		down        time.Duration
		connections uint64
	}
	steps := []struct {
		name    string
		do      func()
		advance time.Duration
		want    want
	}{
		{"before anything", func() {}, 0, want{0, 0}},
		{"first handshake, 10s in", func() { r.SetGatewayState("IDENTIFYING", false) }, 10 * time.Second, want{0, 0}},
		{"READY", func() { r.SetGatewayState("READY", true) }, 5 * time.Second, want{0, 1}},
		{"dropped, 3s later", func() { r.SetGatewayState("RECONNECTING", false) }, 3 * time.Second, want{3 * time.Second, 1}},
		{"resuming, 4s more", func() { r.SetGatewayState("RESUMING", false) }, 4 * time.Second, want{7 * time.Second, 1}},
		{"RESUMED", func() { r.SetGatewayState("RESUMED", true) }, time.Minute, want{0, 2}},
		{"still connected, another state", func() { r.SetGatewayState("READY", true) }, time.Second, want{0, 2}},
		{"dropped again, 90s later", func() { r.SetGatewayState("BACKING_OFF", false) }, 90 * time.Second, want{90 * time.Second, 2}},
	}
	for _, st := range steps {
		st.do()
		fake.Advance(st.advance)
		g := r.Build().Gateway
		if got := (want{g.DownFor, g.Connections}); got != st.want {
			t.Errorf("%s: down_for %v, connections %d; want %v, %d", st.name, got.down, got.connections, st.want.down, st.want.connections)
		}
	}
}

func TestGatewayStateAndViews(t *testing.T) {
	r, _ := newFake(t, metrics.Options{})
	since := time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
	r.SetGatewayState("IDENTIFYING", false)
	r.SetBreaker(metrics.BreakerView{State: "OPEN", Failures: 5, Rejections: 2})
	r.SetHealth(metrics.HealthView{Score: 42.5, Status: "DEGRADED", Trend: "degrading"})
	r.SetDegradation(metrics.DegradationView{Level: "MODERATE", Since: since})
	s := r.Build()
	if s.Gateway.State != "IDENTIFYING" || s.Gateway.Connected {
		t.Errorf("gateway = %q connected=%v, want IDENTIFYING, false", s.Gateway.State, s.Gateway.Connected)
	}
	if s.Breaker != (metrics.BreakerView{State: "OPEN", Failures: 5, Rejections: 2}) {
		t.Errorf("Breaker = %+v", s.Breaker)
	}
	if s.Health != (metrics.HealthView{Score: 42.5, Status: "DEGRADED", Trend: "degrading"}) {
		t.Errorf("Health = %+v", s.Health)
	}
	if s.Degradation != (metrics.DegradationView{Level: "MODERATE", Since: since}) {
		t.Errorf("Degradation = %+v", s.Degradation)
	}
	r.SetGatewayState("READY", true)
	if g := r.Build().Gateway; g.State != "READY" || !g.Connected {
		t.Errorf("gateway = %q connected=%v, want READY, true", g.State, g.Connected)
	}
}

// exactQuantile is the nearest-rank quantile of sorted values.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func TestQuantileAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	gen := func(n int, f func() time.Duration) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = f()
		}
		return out
	}
	tests := []struct {
		name   string
		values []time.Duration
	}{
		{"single value", []time.Duration{123456789}},
		{"constant", gen(1000, func() time.Duration { return 87 * time.Millisecond })},
		{"uniform 1ms-1s", gen(5000, func() time.Duration {
			return time.Millisecond + time.Duration(rng.Int64N(int64(999*time.Millisecond)))
		})},
		{"exponential mean 120ms", gen(5000, func() time.Duration {
			return time.Duration(rng.ExpFloat64() * float64(120*time.Millisecond))
		})},
		{"log-normal around 80ms", gen(5000, func() time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*0.8) * float64(80*time.Millisecond))
		})},
		{"bimodal with a slow tail", gen(5000, func() time.Duration {
			if rng.IntN(100) < 3 {
				return 2*time.Second + time.Duration(rng.Int64N(int64(3*time.Second)))
			}
			return 30*time.Millisecond + time.Duration(rng.Int64N(int64(20*time.Millisecond)))
		})},
		{"sub-16µs loopback", gen(2000, func() time.Duration {
			return time.Duration(rng.Int64N(int64(16 * time.Microsecond)))
		})},
		{"few samples", []time.Duration{5 * time.Millisecond, 900 * time.Millisecond, 40 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, fake := newFake(t, metrics.Options{})
			for i, v := range tt.values {
				r.ObserveREST(v, 200, false)
				if i%100 == 99 {
					fake.Advance(time.Second) // spread over many buckets, all in the window
				}
			}
			s := r.Build()
			sorted := slices.Sorted(slices.Values(tt.values))
			got := map[float64]time.Duration{0.5: s.Latency.RESTP50, 0.95: s.Latency.RESTP95, 0.99: s.Latency.RESTP99}
			for _, q := range []float64{0.5, 0.95, 0.99} {
				want := exactQuantile(sorted, q)
				diff := math.Abs(float64(got[q] - want))
				limit := metrics.QuantileRelativeError * float64(want)
				if want < 16*time.Microsecond {
					limit = float64(500 * time.Nanosecond)
				}
				if diff > limit {
					t.Errorf("p%v = %v, exact %v: off by %v, more than %v", q*100, got[q], want, time.Duration(diff), time.Duration(limit))
				}
			}
			if !(s.Latency.RESTP50 <= s.Latency.RESTP95 && s.Latency.RESTP95 <= s.Latency.RESTP99) {
				t.Errorf("quantiles not ordered: %v %v %v", s.Latency.RESTP50, s.Latency.RESTP95, s.Latency.RESTP99)
			}
		})
	}
}

func TestQuantilesFollowTheWindow(t *testing.T) {
	r, fake := newFake(t, metrics.Options{})
	if l := r.Build().Latency; l.RESTP50 != 0 || l.RESTP99 != 0 {
		t.Fatalf("no requests: %+v, want zeros", l)
	}
	for range 100 {
		r.ObserveREST(2*time.Second, 200, false)
	}
	fake.Advance(30 * time.Second)
	for range 100 {
		r.ObserveREST(20*time.Millisecond, 200, false)
	}
	l := r.Build().Latency
	if l.RESTP50 > 21*time.Millisecond || l.RESTP95 < 1900*time.Millisecond {
		t.Fatalf("both halves in the window: p50 %v p95 %v, want ~20ms and ~2s", l.RESTP50, l.RESTP95)
	}
	fake.Advance(30 * time.Second) // the slow half leaves
	l = r.Build().Latency
	if l.RESTP99 > 21*time.Millisecond || l.RESTP99 < 19*time.Millisecond {
		t.Fatalf("slow half gone: p99 %v, want ~20ms", l.RESTP99)
	}
	fake.Advance(30 * time.Second)
	if l := r.Build().Latency; l.RESTP50 != 0 || l.RESTP99 != 0 {
		t.Fatalf("window empty: %+v, want zeros", l)
	}
}

func TestLatencyBeyondRangeIsClamped(t *testing.T) {
	r, _ := newFake(t, metrics.Options{})
	r.ObserveREST(10*time.Minute, 200, false)
	r.ObserveREST(-time.Second, 200, false) // a clock step; counts as 0
	l := r.Build().Latency
	if diff := math.Abs(float64(l.RESTP99 - metrics.MaxLatency)); diff > metrics.QuantileRelativeError*float64(metrics.MaxLatency) {
		t.Errorf("p99 of a 10 minute request = %v, want about MaxLatency (%v)", l.RESTP99, metrics.MaxLatency)
	}
	if l.RESTP50 > time.Microsecond {
		t.Errorf("p50 with a negative latency = %v, want under 1µs", l.RESTP50)
	}
}

// settableClock is a clock.Fake whose Now can also be set backwards, as a
// wall clock stepped by NTP can (clock.Fake only moves forward).
type settableClock struct {
	*clock.Fake
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

func (c *settableClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *settableClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func TestClockGoingBackwards(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &settableClock{Fake: clock.NewFake(start), now: start}
	r := metrics.NewRecorder(metrics.Options{Clock: clk})
	clk.set(start.Add(32 * time.Second))
	r.OperationFailed()
	clk.set(start.Add(-time.Hour)) // before the Recorder even started
	r.OperationFailed()
	if s := r.Build(); s.Errors.InWindow != 2 || s.Uptime != 0 {
		t.Fatalf("after stepping back: in window %d, uptime %v, want 2 and 0", s.Errors.InWindow, s.Uptime)
	}
	clk.set(start.Add(2 * time.Second))
	r.OperationFailed()
	// All three went to the newest bucket (30-35 s), so they stay until
	// +89.999s and leave together at +90s.
	clk.set(start.Add(89 * time.Second))
	if s := r.Build(); s.Errors.InWindow != 3 {
		t.Fatalf("at +89s: in window %d, want 3", s.Errors.InWindow)
	}
	clk.set(start.Add(90 * time.Second))
	if s := r.Build(); s.Errors.InWindow != 0 || s.Errors.Total != 3 {
		t.Fatalf("at +90s: %+v, want none in the window, total 3", s.Errors)
	}
}

func TestSnapshotIsACopy(t *testing.T) {
	r, fake := newFake(t, metrics.Options{ShardID: 2, ShardCount: 4})
	r.SetGatewayState("READY", true)
	r.ObserveREST(50*time.Millisecond, 200, false)
	r.ObserveREST(50*time.Millisecond, 500, false)
	r.Dispatch(10)
	r.SetHealth(metrics.HealthView{Score: 90, Status: "HEALTHY", Trend: "stable"})

	first := r.Build()
	kept := first // a field-by-field copy to compare against later

	// Everything the Recorder does afterwards leaves first alone.
	fake.Advance(10 * time.Second)
	r.ObserveREST(3*time.Second, 503, false)
	r.OperationFailed()
	r.Dispatch(11)
	r.CloseCode(4000)
	r.SetGatewayState("RECONNECTING", false)
	r.SetHealth(metrics.HealthView{Score: 10, Status: "CRITICAL", Trend: "degrading"})
	r.SetBreaker(metrics.BreakerView{State: "OPEN"})
	if !reflect.DeepEqual(first, kept) {
		t.Fatalf("a Snapshot changed after later observations:\n%+v\n%+v", first, kept)
	}

	// Changing a Snapshot leaves the Recorder alone.
	second := r.Build()
	mutated := second
	mutated.Gateway.State = "HACKED"
	mutated.Errors.Total = 999
	mutated.Health.Status = "HEALTHY"
	if third := r.Build(); third.Gateway.State != "RECONNECTING" || third.Errors.Total != 3 || third.Health.Status != "CRITICAL" {
		t.Fatalf("the Recorder saw a change made to a Snapshot: %+v", third)
	}
	if reflect.DeepEqual(first, second) {
		t.Fatalf("later Build returned the same figures as the first")
	}

	// A Snapshot holds no reference types at all, so copies never alias.
	assertNoReferences(t, reflect.TypeOf(metrics.Snapshot{}), "Snapshot")
}

// assertNoReferences fails if typ contains a pointer, slice, map, channel,
// function or interface outside of time.Time (whose *Location is immutable).
func assertNoReferences(t *testing.T, typ reflect.Type, path string) {
	t.Helper()
	if typ == reflect.TypeOf(time.Time{}) {
		return
	}
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		t.Errorf("%s is a %s: a Snapshot copy would share it", path, typ.Kind())
	case reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			assertNoReferences(t, f.Type, path+"."+f.Name)
		}
	case reflect.Array:
		assertNoReferences(t, typ.Elem(), path+"[]")
	}
}

func TestNilRecorder(t *testing.T) {
	var r *metrics.Recorder
	r.ObserveREST(time.Second, 500, false)
	r.OperationSucceeded()
	r.OperationFailed()
	r.HeartbeatSent()
	r.HeartbeatAcked()
	r.Hello(time.Second)
	r.Dispatch(1)
	r.CloseCode(4000)
	r.ReconnectStarted()
	r.ResumeSent()
	r.IdentifySent()
	r.SetGatewayState("READY", true)
	r.SetBreaker(metrics.BreakerView{State: "OPEN"})
	r.SetHealth(metrics.HealthView{Status: "CRITICAL"})
	r.SetDegradation(metrics.DegradationView{Level: "SEVERE"})
	if s := r.Build(); !reflect.DeepEqual(s, metrics.Snapshot{}) {
		t.Fatalf("nil Recorder built %+v, want the zero Snapshot", s)
	}
	if r.Window() != 0 || r.Resolution() != 0 {
		t.Fatalf("nil Recorder window/resolution = %v/%v", r.Window(), r.Resolution())
	}
}

// TestConcurrentUse hammers one Recorder from many goroutines while
// another moves the clock and another builds Snapshots; run it with -race.
// The clock stays inside one window, so every windowed count is exact too.
func TestConcurrentUse(t *testing.T) {
	const (
		workers = 16
		iters   = 500
	)
	r, fake := newFake(t, metrics.Options{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range iters {
				r.ObserveREST(time.Duration(i+1)*time.Millisecond, []int{200, 429, 503}[i%3], false)
				r.ObserveREST(time.Millisecond, 0, true)
				r.OperationSucceeded()
				r.OperationFailed()
				r.HeartbeatSent()
				r.HeartbeatAcked()
				r.Dispatch(int64(w*iters + i))
				r.CloseCode(4000 + i%10)
				r.Hello(41 * time.Second)
				r.ReconnectStarted()
				r.ResumeSent()
				r.IdentifySent()
				r.SetGatewayState("READY", i%2 == 0)
				r.SetBreaker(metrics.BreakerView{State: "CLOSED", Failures: uint64(i)})
				r.SetHealth(metrics.HealthView{Score: float64(i % 100), Status: "HEALTHY"})
				r.SetDegradation(metrics.DegradationView{Level: "NONE"})
			}
		}()
	}
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Add(2)
	go func() { // 100 steps of 500 ms: 50 s, still inside the 60 s window
		defer side.Done()
		for range 100 {
			fake.Advance(500 * time.Millisecond)
		}
	}()
	builderErr := make(chan string, 1)
	go func() {
		defer side.Done()
		for range 2000 {
			select {
			case <-stop:
				return
			default:
			}
			s := r.Build()
			e := s.Errors
			switch {
			case e.Rate < 0 || e.Rate > 1:
				builderErr <- "rate outside [0, 1]"
				return
			case e.InWindow > e.Total || e.InWindow > e.Operations:
				builderErr <- "more failures in the window than in total or than operations"
				return
			case s.Latency.RESTP50 > s.Latency.RESTP95 || s.Latency.RESTP95 > s.Latency.RESTP99:
				builderErr <- "quantiles out of order"
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	side.Wait()
	select {
	case msg := <-builderErr:
		t.Fatal(msg)
	default:
	}

	s := r.Build()
	n := uint64(workers * iters)
	// Per iteration: one REST 200/429/503, one transport error, one success,
	// one failure, one heartbeat pair (which may interleave with other
	// goroutines' pairs, so misses are possible but bounded).
	var restFails uint64 // the 503s
	for i := range iters {
		if i%3 == 2 {
			restFails += workers
		}
	}
	if s.REST.Requests != 2*n || s.REST.Failures != n || s.REST.ServerErrors != restFails {
		t.Errorf("REST = %+v, want %d requests, %d transport failures, %d server errors", s.REST, 2*n, n, restFails)
	}
	if s.Gateway.Dispatches != n || s.Gateway.Reconnects != n || s.Gateway.Resumes != n || s.Gateway.Identifies != n {
		t.Errorf("counters = %+v, want %d each", s.Gateway, n)
	}
	if s.Errors.Total != s.Errors.InWindow {
		t.Errorf("total %d != in window %d though nothing left the window", s.Errors.Total, s.Errors.InWindow)
	}
	minFailures := n + n + restFails // transport + OperationFailed + 503s
	if s.Errors.Total < minFailures || s.Errors.Total > minFailures+n {
		t.Errorf("total failures %d, want between %d and %d (at most one missed ACK per heartbeat)", s.Errors.Total, minFailures, minFailures+n)
	}
}
