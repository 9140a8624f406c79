package metrics

import "time"

// Snapshot is one immutable view of a connection's health, built once per
// tick by a Recorder. Health checks and policy conditions read it; nothing
// writes to it after Build returns. Durations are time.Duration; the policy
// layer exposes them to conditions in the units its reference documents.
type Snapshot struct {
	// Time is when the Snapshot was built (from the Recorder's clock).
	Time time.Time `json:"time"`
	// Uptime is the time since the Recorder was created.
	Uptime time.Duration `json:"uptime"`

	Shard       ShardInfo       `json:"shard"`
	Latency     Latency         `json:"latency"`
	Errors      Errors          `json:"errors"`
	Gateway     Gateway         `json:"gateway"`
	REST        REST            `json:"rest"`
	Breaker     BreakerView     `json:"breaker"`
	Health      HealthView      `json:"health"`
	Degradation DegradationView `json:"degradation"`
	// Shards summarises the shards of the process: the process Snapshot
	// of a lifeline running a shard manager has it; a single shard's own
	// Snapshot leaves it zero.
	Shards Shards `json:"shards"`
	// Fleet is the fleet this process belongs to (core/orchestrator fills
	// it; a process without a coordination block is a fleet of one). A
	// Recorder's own Snapshots leave it zero.
	Fleet Fleet `json:"fleet"`
}

// ShardInfo says which shard a Snapshot describes.
type ShardInfo struct {
	ID    int `json:"id"`
	Count int `json:"count"`
}

// Latency holds round-trip figures.
type Latency struct {
	// Heartbeat is the last heartbeat → ACK round trip; 0 before the first ACK.
	Heartbeat time.Duration `json:"heartbeat"`
	// HeartbeatAvg is the mean heartbeat round trip over the window.
	HeartbeatAvg time.Duration `json:"heartbeat_avg"`
	// RESTP50, RESTP95 and RESTP99 are REST request latency quantiles over
	// the window; 0 when no request finished in the window.
	RESTP50 time.Duration `json:"rest_p50"`
	RESTP95 time.Duration `json:"rest_p95"`
	RESTP99 time.Duration `json:"rest_p99"`
}

// Errors summarises failed operations (REST requests, connection attempts,
// heartbeats) over the window.
type Errors struct {
	// Rate is failed / total operations over the window, in [0, 1]; 0 when
	// nothing happened.
	Rate float64 `json:"rate"`
	// InWindow counts failures within the window.
	InWindow uint64 `json:"in_window"`
	// Operations counts operations (failed or not) within the window, the
	// denominator of Rate; it tells "no failures" from "no traffic".
	Operations uint64 `json:"operations"`
	// Consecutive counts failures since the last success.
	Consecutive uint64 `json:"consecutive"`
	// Total counts failures since the Recorder was created.
	Total uint64 `json:"total"`
	// Window is the length of the sliding window the rates cover.
	Window time.Duration `json:"window"`
}

// Gateway describes the WebSocket connection.
type Gateway struct {
	// State is the connection state machine's state name, e.g. "READY".
	State string `json:"state"`
	// Connected is true while a gateway session is READY (or RESUMED).
	Connected bool `json:"connected"`
	// HeartbeatInterval is the interval HELLO gave; 0 before the first HELLO.
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	// LastAckAge is the time since the last HEARTBEAT_ACK (or since the
	// connection opened if none came yet); 0 when not connected.
	LastAckAge time.Duration `json:"last_ack_age"`
	// DownFor is the time since the gateway was last connected: 0 while
	// connected, and 0 before the first connection (a first handshake is
	// not an outage; Connections tells it apart).
	DownFor time.Duration `json:"down_for"`
	// Connections counts the times a session came up (READY or RESUMED)
	// since the Recorder was created; 0 while the first handshake is in
	// progress.
	Connections uint64 `json:"connections"`
	// Sequence is the last dispatch sequence number seen.
	Sequence int64 `json:"sequence"`
	// Reconnects, Resumes and Identifies count since the Recorder was created.
	Reconnects uint64 `json:"reconnects"`
	Resumes    uint64 `json:"resumes"`
	Identifies uint64 `json:"identifies"`
	// LastCloseCode is the last WebSocket close code seen; 0 if none.
	LastCloseCode int `json:"last_close_code"`
	// Dispatches counts dispatch events received since the Recorder was created.
	Dispatches uint64 `json:"dispatches"`
}

// REST summarises HTTP traffic to Discord's REST API over the window.
type REST struct {
	Requests     uint64 `json:"requests"`      // in the window
	RateLimited  uint64 `json:"rate_limited"`  // 429 responses in the window
	ServerErrors uint64 `json:"server_errors"` // 5xx responses in the window
	Failures     uint64 `json:"failures"`      // transport errors in the window
}

// BreakerView is the circuit breaker as the policy sees it.
type BreakerView struct {
	State      string `json:"state"` // CLOSED, OPEN or HALF_OPEN
	Failures   uint64 `json:"failures"`
	Rejections uint64 `json:"rejections"`
}

// HealthView is the health monitor's last verdict.
type HealthView struct {
	Score  float64 `json:"score"`  // 0-100
	Status string  `json:"status"` // UNKNOWN (no run yet), HEALTHY, DEGRADED, UNHEALTHY, CRITICAL
	Trend  string  `json:"trend"`  // improving, stable, degrading
}

// DegradationView is the degradation engine's current level.
type DegradationView struct {
	Level string    `json:"level"` // NONE, MINIMAL, MODERATE, SEVERE, CRITICAL
	Since time.Time `json:"since"`
}

// Shards summarises the shards one process runs, so a policy can act on
// the process from the share of its shards in trouble (for instance:
// degrade when more than 20% of shards are unhealthy). Counts are of the
// process's shards (Total of them); ratios are fractions in [0, 1] of
// Total, 0 when Total is 0. It is computed in one place, core/shard's
// Summarize (whose Aggregate embeds it, with what a diagnostics page adds);
// core/shard's Classify says what makes a shard starting, healthy,
// degraded or unhealthy.
type Shards struct {
	// Total is how many shards this process runs (the bot's count is
	// Snapshot.Shard.Count).
	Total int `json:"total"`
	// Ready counts the shards whose connection is READY now.
	Ready int `json:"ready"`
	// Starting, Healthy, Degraded and Unhealthy count the shards in each
	// condition; they add up to Total.
	Starting  int `json:"starting"`
	Healthy   int `json:"healthy"`
	Degraded  int `json:"degraded"`
	Unhealthy int `json:"unhealthy"`
	// Reconnecting counts shards that were READY and are recovering now;
	// Failed counts shards stopped for good. Both are also Unhealthy.
	Reconnecting int `json:"reconnecting"`
	Failed       int `json:"failed"`
	// BreakersOpen counts shards whose circuit breaker is OPEN.
	BreakersOpen int `json:"breakers_open"`
	// ReadyRatio is Ready/Total; UnhealthyRatio is Unhealthy/Total;
	// DegradedRatio is (Degraded+Unhealthy)/Total: the shards doing worse
	// than healthy (starting shards count in none of them).
	ReadyRatio     float64 `json:"ready_ratio"`
	UnhealthyRatio float64 `json:"unhealthy_ratio"`
	DegradedRatio  float64 `json:"degraded_ratio"`
	// WorstAckAge is the longest time since a HEARTBEAT_ACK among the
	// connected shards; 0 when none is connected.
	WorstAckAge time.Duration `json:"worst_ack_age"`
	// WorstLatency is the slowest last heartbeat round trip of a shard and
	// MeanLatency the mean over the shards that have one.
	WorstLatency time.Duration `json:"worst_latency"`
	MeanLatency  time.Duration `json:"mean_latency"`
	// MaxErrorRate is the worst single shard's error rate over the window.
	MaxErrorRate float64 `json:"max_error_rate"`
	// MinHealthScore is the lowest health score among shards with a
	// verdict; 100 when none has one (and 0 when Total is 0).
	MinHealthScore float64 `json:"min_health_score"`
}
