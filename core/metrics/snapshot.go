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
