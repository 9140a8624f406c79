package telemetry

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ShardSource is implemented by a Source that runs several shards (a
// shard manager): its shards are reported one by one in the
// lifeline_shard_* families, each series labelled with its own shard. A
// Source without it serves none of them.
type ShardSource interface {
	// ShardStatuses returns every shard the system runs, in ID order, as
	// of its last tick. It must return promptly.
	ShardStatuses() []ShardStatus
}

// ShardStatus is one shard as /metrics reports it.
type ShardStatus struct {
	// ID is the shard's ID.
	ID int `json:"id"`
	// State is the connection state ("READY", ...).
	State string `json:"state"`
	// Condition is the shard's health in a word: STARTING, HEALTHY,
	// DEGRADED or UNHEALTHY (core/shard's Classify).
	Condition string `json:"condition"`
	// Connected is true while the shard's session is READY.
	Connected bool `json:"connected"`
	// HeartbeatLatency is the last heartbeat round trip; 0 before the
	// first ACK.
	HeartbeatLatency time.Duration `json:"heartbeat_latency"`
	// AckAge is the time since the last HEARTBEAT_ACK; 0 while not
	// connected.
	AckAge time.Duration `json:"ack_age"`
	// LastCloseCode is the last WebSocket close code; 0 if none.
	LastCloseCode int `json:"last_close_code"`
	// Reconnects, Resumes, Identifies and Dispatches count since the
	// shard started.
	Reconnects uint64 `json:"reconnects"`
	Resumes    uint64 `json:"resumes"`
	Identifies uint64 `json:"identifies"`
	Dispatches uint64 `json:"dispatches"`
	// Breaker is the shard's circuit breaker state (CLOSED, OPEN,
	// HALF_OPEN).
	Breaker string `json:"breaker"`
	// HealthScore is the shard's health score, 0-100.
	HealthScore float64 `json:"health_score"`
}

// ShardConditions returns the condition names in order.
func ShardConditions() []string { return []string{"STARTING", "HEALTHY", "DEGRADED", "UNHEALTHY"} }

// The per-shard families, read from ShardSource at scrape time.
var (
	descShardState = prometheus.NewDesc("lifeline_shard_state",
		"1 for a shard's current connection state, 0 for the others, by shard.", []string{"shard", "state"}, nil)
	descShardCondition = prometheus.NewDesc("lifeline_shard_condition",
		"1 for a shard's current condition (STARTING, HEALTHY, DEGRADED, UNHEALTHY), 0 for the others, by shard.", []string{"shard", "condition"}, nil)
	descShardConnected = prometheus.NewDesc("lifeline_shard_connected",
		"1 while the shard's gateway session is READY, else 0.", []string{"shard"}, nil)
	descShardLatency = prometheus.NewDesc("lifeline_shard_heartbeat_latency_seconds",
		"The shard's last heartbeat round trip; 0 before the first ACK.", []string{"shard"}, nil)
	descShardAckAge = prometheus.NewDesc("lifeline_shard_heartbeat_ack_age_seconds",
		"Time since the shard's last HEARTBEAT_ACK; 0 while not connected.", []string{"shard"}, nil)
	descShardCloseCode = prometheus.NewDesc("lifeline_shard_last_close_code",
		"The last WebSocket close code the shard saw; 0 if none.", []string{"shard"}, nil)
	descShardReconnects = prometheus.NewDesc("lifeline_shard_reconnects_total",
		"Connection attempts of the shard after its first.", []string{"shard"}, nil)
	descShardResumes = prometheus.NewDesc("lifeline_shard_resumes_total",
		"RESUMEs the shard sent.", []string{"shard"}, nil)
	descShardIdentifies = prometheus.NewDesc("lifeline_shard_identifies_total",
		"IDENTIFYs the shard sent (each spends a daily session start).", []string{"shard"}, nil)
	descShardDispatches = prometheus.NewDesc("lifeline_shard_dispatches_total",
		"Dispatch events the shard received.", []string{"shard"}, nil)
	descShardBreaker = prometheus.NewDesc("lifeline_shard_breaker_state",
		"1 for the state of the shard's gateway circuit breaker (CLOSED, OPEN, HALF_OPEN), 0 for the others.", []string{"shard", "state"}, nil)
	descShardScore = prometheus.NewDesc("lifeline_shard_health_score",
		"The shard's health score, 0-100.", []string{"shard"}, nil)
)

// shardCollector emits the lifeline_shard_* families.
type shardCollector struct{ t *Telemetry }

func (c *shardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descShardState, descShardCondition, descShardConnected, descShardLatency,
		descShardAckAge, descShardCloseCode, descShardReconnects, descShardResumes, descShardIdentifies,
		descShardDispatches, descShardBreaker, descShardScore} {
		ch <- d
	}
}

func (c *shardCollector) Collect(ch chan<- prometheus.Metric) {
	src, ok := c.t.src.(ShardSource)
	if !ok {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	states := ConnectionStates()
	for _, s := range src.ShardStatuses() {
		id := strconv.Itoa(s.ID)
		for _, st := range enumWith(states, s.State) {
			gauge(descShardState, b2f(st == s.State), id, st)
		}
		for _, cd := range enumWith(ShardConditions(), s.Condition) {
			gauge(descShardCondition, b2f(cd == s.Condition), id, cd)
		}
		gauge(descShardConnected, b2f(s.Connected), id)
		gauge(descShardLatency, s.HeartbeatLatency.Seconds(), id)
		gauge(descShardAckAge, s.AckAge.Seconds(), id)
		gauge(descShardCloseCode, float64(s.LastCloseCode), id)
		counter(descShardReconnects, s.Reconnects, id)
		counter(descShardResumes, s.Resumes, id)
		counter(descShardIdentifies, s.Identifies, id)
		counter(descShardDispatches, s.Dispatches, id)
		for _, st := range enumWith(BreakerStates(), s.Breaker) {
			gauge(descShardBreaker, b2f(st == s.Breaker), id, st)
		}
		gauge(descShardScore, s.HealthScore, id)
	}
}
