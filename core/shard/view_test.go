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
		{"no shards", 4, nil, shard.Aggregate{Total: 4, WorstAckShard: -1, WorstLatencyShard: -1, MinHealthScore: 100}},
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
				Shards: 6, Total: 16, Ready: 3, Starting: 1, Healthy: 2, Degraded: 1, Unhealthy: 2,
				Reconnecting: 1, Failed: 1, BreakersOpen: 1,
				ReadyShare: 0.5, UnhealthyShare: 2.0 / 6, DegradedShare: 0.5,
				WorstAckAge: 300 * ms, WorstAckShard: 1,
				WorstLatency: 90 * ms, WorstLatencyShard: 2, MeanLatency: 50 * ms,
				ErrorRate: 4.0 / 6, MaxErrorRate: 1, MinHealthScore: 60,
				Reconnects: 2, Resumes: 2, Identifies: 3, Dispatches: 30,
			},
		},
		{
			"a connected shard with a zero ACK age is still the worst when alone", 1,
			[]shard.ShardView{view(0, "READY", shard.Healthy, true, connected(0, 0))},
			shard.Aggregate{Shards: 1, Total: 1, Ready: 1, Healthy: 1, ReadyShare: 1, WorstAckShard: 0,
				WorstLatencyShard: -1, MinHealthScore: 100, Identifies: 1, Dispatches: 10},
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
