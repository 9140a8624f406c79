package telemetry_test

import (
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/telemetry"
)

// A source that runs several shards gets one series per shard in the
// lifeline_shard_* families, each with its own shard label.
func TestShardFamilies(t *testing.T) {
	src := &stub{status: healthy(), shards: []telemetry.ShardStatus{
		{ID: 0, State: "READY", Condition: "HEALTHY", Connected: true, HeartbeatLatency: 40 * time.Millisecond,
			AckAge: 2 * time.Second, Identifies: 1, Dispatches: 7, Breaker: "CLOSED", HealthScore: 100},
		{ID: 1, State: "RESUMING", Condition: "UNHEALTHY", LastCloseCode: 4000, Reconnects: 2, Resumes: 2,
			Identifies: 1, Breaker: "HALF_OPEN", HealthScore: 40},
		{ID: 2, State: "READY", Condition: "DEGRADED", Connected: true, HeartbeatLatency: 900 * time.Millisecond,
			Identifies: 2, Breaker: "CLOSED", HealthScore: 70},
	}}
	tel := newTelemetry(t, src, clock.NewFake(t0))
	fams := scrape(t, newServer(t, tel))
	tests := []struct {
		family string
		labels []string
		want   float64
	}{
		{"lifeline_shard_state", []string{"shard", "0", "state", "READY"}, 1},
		{"lifeline_shard_state", []string{"shard", "1", "state", "RESUMING"}, 1},
		{"lifeline_shard_state", []string{"shard", "1", "state", "READY"}, 0},
		{"lifeline_shard_condition", []string{"shard", "1", "condition", "UNHEALTHY"}, 1},
		{"lifeline_shard_condition", []string{"shard", "2", "condition", "DEGRADED"}, 1},
		{"lifeline_shard_connected", []string{"shard", "1"}, 0},
		{"lifeline_shard_heartbeat_latency_seconds", []string{"shard", "2"}, 0.9},
		{"lifeline_shard_heartbeat_ack_age_seconds", []string{"shard", "0"}, 2},
		{"lifeline_shard_last_close_code", []string{"shard", "1"}, 4000},
		{"lifeline_shard_reconnects_total", []string{"shard", "1"}, 2},
		{"lifeline_shard_resumes_total", []string{"shard", "1"}, 2},
		{"lifeline_shard_identifies_total", []string{"shard", "2"}, 2},
		{"lifeline_shard_dispatches_total", []string{"shard", "0"}, 7},
		{"lifeline_shard_breaker_state", []string{"shard", "1", "state", "HALF_OPEN"}, 1},
		{"lifeline_shard_health_score", []string{"shard", "2"}, 70},
	}
	for _, tt := range tests {
		if got, ok := series(fams, tt.family, tt.labels...); !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.family, tt.labels, got, ok, tt.want)
		}
	}
	if n := len(fams["lifeline_shard_identifies_total"].GetMetric()); n != 3 {
		t.Errorf("lifeline_shard_identifies_total has %d series, want one per shard", n)
	}
	// The process families keep the process's constant shard label.
	if v, ok := labelValue(fams["lifeline_connection_state"].GetMetric()[0], "shard"); !ok || v != "0" {
		t.Errorf("process family shard label %q", v)
	}
}

// Attempts are followed per shard: two shards starting on one bus are two
// "start" IDENTIFYs, not a start and a reconnect, and a close on one shard
// is the cause of that shard's next attempt only.
func TestAttemptCausesPerShard(t *testing.T) {
	tel := newTelemetry(t, &stub{status: healthy()}, clock.NewFake(t0))
	ev := func(shard int, d events.Data) { tel.ObserveEvent(events.ForShard(t0, shard, d)) }
	for _, sh := range []int{0, 1} {
		ev(sh, events.StateChange{From: "DISCONNECTED", To: "CONNECTING"})
	}
	for _, sh := range []int{1, 0} {
		ev(sh, events.StateChange{From: "CONNECTING", To: "IDENTIFYING"})
		ev(sh, events.StateChange{From: "IDENTIFYING", To: "READY"})
	}
	ev(1, events.Error{Source: "conn", Kind: "zombie"})
	ev(0, events.StateChange{From: "READY", To: "CONNECTING"}) // a recovery someone asked for
	ev(1, events.StateChange{From: "READY", To: "CONNECTING"})
	ev(0, events.StateChange{From: "CONNECTING", To: "RESUMING"})
	ev(1, events.StateChange{From: "CONNECTING", To: "RESUMING"})

	fams := scrape(t, newServer(t, tel))
	for _, tt := range []struct {
		family, cause string
		want          float64
	}{
		{"lifeline_gateway_identifies_total", "start", 2},
		{"lifeline_gateway_reconnects_total", "requested", 1},
		{"lifeline_gateway_reconnects_total", "zombie", 1},
		{"lifeline_gateway_resumes_total", "requested", 1},
		{"lifeline_gateway_resumes_total", "zombie", 1},
	} {
		if got, _ := series(fams, tt.family, "cause", tt.cause); got != tt.want {
			t.Errorf("%s{cause=%q} = %v, want %v", tt.family, tt.cause, got, tt.want)
		}
	}
	if _, ok := series(fams, "lifeline_gateway_reconnects_total", "cause", "start"); ok {
		t.Error("a shard's first attempt counted as a reconnect")
	}
}
