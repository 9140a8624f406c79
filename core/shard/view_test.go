package shard_test

import (
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/shard"
)

func TestClassify(t *testing.T) {
	snap := func(breaker, health string) *metrics.Snapshot {
		return &metrics.Snapshot{Breaker: metrics.BreakerView{State: breaker}, Health: metrics.HealthView{Status: health}}
	}
	cases := []struct {
		name      string
		state     conn.State
		everReady bool
		snap      *metrics.Snapshot
		want      shard.Condition
	}{
		{"connecting for the first time", conn.Connecting, false, snap("CLOSED", ""), shard.Starting},
		{"identifying for the first time", conn.Identifying, false, snap("CLOSED", "UNKNOWN"), shard.Starting},
		{"ready, no monitor", conn.Ready, true, snap("CLOSED", ""), shard.Healthy},
		{"ready and healthy", conn.Ready, true, snap("CLOSED", "HEALTHY"), shard.Healthy},
		{"ready, health degraded", conn.Ready, true, snap("CLOSED", "DEGRADED"), shard.Degraded},
		{"ready, breaker half open", conn.Ready, true, snap("HALF_OPEN", "HEALTHY"), shard.Degraded},
		{"ready, health unhealthy", conn.Ready, true, snap("CLOSED", "UNHEALTHY"), shard.Unhealthy},
		{"ready, health critical", conn.Ready, true, snap("CLOSED", "CRITICAL"), shard.Unhealthy},
		{"resuming after READY", conn.Resuming, true, snap("CLOSED", "HEALTHY"), shard.Unhealthy},
		{"backing off after READY", conn.BackingOff, true, snap("CLOSED", ""), shard.Unhealthy},
		{"breaker open while starting", conn.BackingOff, false, snap("OPEN", ""), shard.Unhealthy},
		{"failed before READY", conn.Failed, false, snap("CLOSED", ""), shard.Unhealthy},
		{"failed after READY", conn.Failed, true, snap("CLOSED", ""), shard.Unhealthy},
		{"stopped after READY", conn.Stopped, true, snap("CLOSED", ""), shard.Healthy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := shard.Classify(tc.state, tc.everReady, tc.snap); got != tc.want {
				t.Fatalf("Classify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConditionString(t *testing.T) {
	for c, want := range map[shard.Condition]string{shard.Starting: "STARTING", shard.Healthy: "HEALTHY",
		shard.Degraded: "DEGRADED", shard.Unhealthy: "UNHEALTHY", shard.Condition(9): "Condition(9)"} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", c, got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	view := func(id int, state string, c shard.Condition, was bool, f func(*metrics.Snapshot)) shard.ShardView {
		v := shard.ShardView{ID: id, State: state, Condition: c, WasReady: was}
		if f != nil {
			f(&v.Snapshot)
		}
		return v
	}
	connected := func(ack, lat time.Duration) func(*metrics.Snapshot) {
		return func(s *metrics.Snapshot) {
			s.Gateway.Connected, s.Gateway.LastAckAge, s.Latency.Heartbeat = true, ack, lat
			s.Gateway.Identifies, s.Gateway.Dispatches = 1, 10
		}
	}
	cases := []struct {
		name  string
		total int
		views []shard.ShardView
		want  shard.Aggregate
	}{
		// No shard: the counts, ratios and lowest score are all 0 (a
		// process without shards, as a single connection's Snapshot has).
		{"no shards", 4, nil, shard.Aggregate{Count: 4, WorstAckShard: -1, WorstLatencyShard: -1}},
		{
			"mixed", 16,
			[]shard.ShardView{
				view(0, "READY", shard.Healthy, true, connected(100*ms, 40*ms)),
				view(1, "READY", shard.Healthy, true, connected(300*ms, 20*ms)),
				view(2, "READY", shard.Degraded, true, func(s *metrics.Snapshot) {
					connected(200*ms, 90*ms)(s)
					s.Health = metrics.HealthView{Status: "DEGRADED", Score: 60}
					s.Errors = metrics.Errors{Rate: 0.5, InWindow: 2, Operations: 4}
				}),
				view(3, "RESUMING", shard.Unhealthy, true, func(s *metrics.Snapshot) {
					s.Gateway.Resumes, s.Gateway.Reconnects = 2, 2
					s.Errors = metrics.Errors{Rate: 1, InWindow: 2, Operations: 2}
				}),
				view(4, "FAILED", shard.Unhealthy, false, func(s *metrics.Snapshot) { s.Breaker.State = "OPEN" }),
				view(5, "CONNECTING", shard.Starting, false, func(s *metrics.Snapshot) {
					s.Health = metrics.HealthView{Status: "UNKNOWN"}
				}),
			},
			shard.Aggregate{
				Shards: metrics.Shards{
					Total: 6, Ready: 3, Starting: 1, Healthy: 2, Degraded: 1, Unhealthy: 2,
					Reconnecting: 1, Failed: 1, BreakersOpen: 1,
					ReadyRatio: 0.5, UnhealthyRatio: 2.0 / 6, DegradedRatio: 0.5,
					WorstAckAge: 300 * ms, WorstLatency: 90 * ms, MeanLatency: 50 * ms,
					MaxErrorRate: 1, MinHealthScore: 60,
				},
				Count: 16, WorstAckShard: 1, WorstLatencyShard: 2, ErrorRate: 4.0 / 6,
				Reconnects: 2, Resumes: 2, Identifies: 3, Dispatches: 30,
			},
		},
		{
			"a connected shard with a zero ACK age is still the worst when alone", 1,
			[]shard.ShardView{view(0, "READY", shard.Healthy, true, connected(0, 0))},
			shard.Aggregate{Shards: metrics.Shards{Total: 1, Ready: 1, Healthy: 1, ReadyRatio: 1, MinHealthScore: 100},
				Count: 1, WorstAckShard: 0, WorstLatencyShard: -1, Identifies: 1, Dispatches: 10},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := shard.Summarize(tc.total, tc.views); got != tc.want {
				t.Fatalf("Summarize\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// The process Snapshot: one shard gives that shard's figures with the
// process's REST and pooled errors; many shards give means, sums, the
// worst breaker and ACK age, and the state of the shard furthest from
// READY.
func TestViewSnapshot(t *testing.T) {
	ms := time.Millisecond
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	process := metrics.Snapshot{Time: t0, Uptime: time.Minute, Shard: metrics.ShardInfo{ID: -1, Count: 1},
		Errors:  metrics.Errors{Rate: 0.25, InWindow: 1, Operations: 4, Consecutive: 1, Total: 3},
		REST:    metrics.REST{Requests: 7, ServerErrors: 1},
		Latency: metrics.Latency{RESTP95: 80 * ms},
		Health:  metrics.HealthView{Score: 90, Status: "DEGRADED"}, Degradation: metrics.DegradationView{Level: "MINIMAL"}}
	sv := func(id int, state string, c shard.Condition, f func(*metrics.Snapshot)) shard.ShardView {
		v := shard.ShardView{ID: id, State: state, Condition: c, WasReady: true}
		v.Snapshot.Breaker.State = "CLOSED"
		f(&v.Snapshot)
		return v
	}
	ready := func(ack, lat time.Duration, seq int64) func(*metrics.Snapshot) {
		return func(s *metrics.Snapshot) {
			s.Gateway = metrics.Gateway{State: "READY", Connected: true, LastAckAge: ack, HeartbeatInterval: 400 * ms,
				Sequence: seq, Identifies: 1, Resumes: 1, Reconnects: 1, Dispatches: 10, LastCloseCode: 4000, Connections: 2}
			s.Latency.Heartbeat, s.Latency.HeartbeatAvg = lat, lat
		}
	}
	one := []shard.ShardView{sv(3, "READY", shard.Healthy, ready(100*ms, 30*ms, 42))}
	v := shard.View{Range: shard.Range{First: 3, Last: 3}, Shards: one, Process: process}
	v.Aggregate = shard.Summarize(8, v.Shards)
	got := v.Snapshot()
	want := process
	want.Shard = metrics.ShardInfo{ID: 3, Count: 8}
	want.Gateway = one[0].Snapshot.Gateway
	want.Latency.Heartbeat, want.Latency.HeartbeatAvg = 30*ms, 30*ms
	want.Breaker = metrics.BreakerView{State: "CLOSED"}
	want.Shards = metrics.Shards{Total: 1, Ready: 1, Healthy: 1, ReadyRatio: 1, WorstAckAge: 100 * ms,
		WorstLatency: 30 * ms, MeanLatency: 30 * ms, MinHealthScore: 100}
	if got != want {
		t.Fatalf("one shard:\n got %+v\nwant %+v", got, want)
	}

	many := []shard.ShardView{
		sv(0, "READY", shard.Healthy, ready(100*ms, 20*ms, 5)),
		sv(1, "RESUMING", shard.Unhealthy, func(s *metrics.Snapshot) {
			s.Gateway = metrics.Gateway{State: "RESUMING", Sequence: 9, LastCloseCode: 1006, HeartbeatInterval: 400 * ms,
				Identifies: 1, Reconnects: 2, DownFor: 3 * time.Second, Connections: 1}
			s.Breaker = metrics.BreakerView{State: "HALF_OPEN", Failures: 2}
		}),
		sv(2, "READY", shard.Unhealthy, func(s *metrics.Snapshot) {
			ready(900*ms, 60*ms, 7)(s)
			s.Breaker = metrics.BreakerView{State: "OPEN", Failures: 3, Rejections: 4}
		}),
		sv(3, "BACKING_OFF", shard.Unhealthy, func(s *metrics.Snapshot) {
			s.Gateway.State, s.Gateway.DownFor, s.Gateway.Connections = "BACKING_OFF", 10*time.Second, 3
		}),
		// Never READY yet: not down (DownFor 0), no session brought up.
		sv(4, "IDENTIFYING", shard.Starting, func(s *metrics.Snapshot) { s.Gateway.State = "IDENTIFYING" }),
	}
	v = shard.View{Range: shard.Range{First: 0, Last: 4}, Shards: many, Process: process}
	v.Aggregate = shard.Summarize(5, v.Shards)
	got = v.Snapshot()
	// DownFor is the longest outage (shard 3's), Connections the sessions
	// every shard brought up.
	wantG := metrics.Gateway{State: "RESUMING", Connected: false, HeartbeatInterval: 400 * ms, LastAckAge: 900 * ms,
		Sequence: 9, LastCloseCode: 1006, Reconnects: 4, Resumes: 2, Identifies: 3, Dispatches: 20,
		DownFor: 10 * time.Second, Connections: 2 + 1 + 2 + 3}
	if got.Gateway != wantG {
		t.Errorf("gateway\n got %+v\nwant %+v", got.Gateway, wantG)
	}
	if b := (metrics.BreakerView{State: "OPEN", Failures: 5, Rejections: 4}); got.Breaker != b {
		t.Errorf("breaker = %+v, want %+v", got.Breaker, b)
	}
	if got.Latency.Heartbeat != 40*ms || got.Latency.HeartbeatAvg != 40*ms || got.Latency.RESTP95 != 80*ms {
		t.Errorf("latency = %+v, want means of 20ms and 60ms and the process's REST p95", got.Latency)
	}
	if got.Errors != process.Errors || got.REST != process.REST || got.Health != process.Health || got.Shard != (metrics.ShardInfo{ID: 0, Count: 5}) {
		t.Errorf("process parts changed: %+v", got)
	}
	if s := got.Shards; s != v.Aggregate.Shards || s.Total != 5 || s.Unhealthy != 3 || s.UnhealthyRatio != 0.6 || s.Ready != 2 || s.BreakersOpen != 1 {
		t.Errorf("shards = %+v, want the aggregate's %+v", s, v.Aggregate.Shards)
	}

	// A shard that ended for good (FAILED) an hour ago is left out of
	// DownFor while another runs: the others' 3-second blip is 3 seconds
	// old, not an hour. With every shard FAILED, DownFor is theirs.
	failed := func(down time.Duration) shard.ShardView {
		return sv(9, "FAILED", shard.Unhealthy, func(s *metrics.Snapshot) {
			s.Gateway = metrics.Gateway{State: "FAILED", LastCloseCode: 4014, DownFor: down, Connections: 1}
		})
	}
	blip := sv(8, "RESUMING", shard.Unhealthy, func(s *metrics.Snapshot) {
		s.Gateway = metrics.Gateway{State: "RESUMING", DownFor: 3 * time.Second, Connections: 1}
	})
	for _, tt := range []struct {
		name   string
		shards []shard.ShardView
		want   time.Duration
	}{
		{"one FAILED, one resuming", []shard.ShardView{failed(time.Hour), blip}, 3 * time.Second},
		{"one FAILED, one READY", []shard.ShardView{failed(time.Hour), sv(7, "READY", shard.Healthy, ready(100*ms, 20*ms, 1))}, 0},
		{"every shard FAILED", []shard.ShardView{failed(time.Hour), failed(2 * time.Hour)}, 2 * time.Hour},
	} {
		v := shard.View{Range: shard.Range{First: 7, Last: 9}, Shards: tt.shards, Process: process}
		v.Aggregate = shard.Summarize(10, v.Shards)
		if got := v.Snapshot().Gateway.DownFor; got != tt.want {
			t.Errorf("%s: DownFor = %v, want %v", tt.name, got, tt.want)
		}
	}

	empty := shard.View{Process: process}
	if got := empty.Snapshot(); got.Gateway != process.Gateway || got.Shard != (metrics.ShardInfo{Count: 1}) || got.Shards != (metrics.Shards{}) {
		t.Errorf("no shards: %+v", got)
	}
}
