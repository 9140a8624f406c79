package telemetry

import (
	"errors"
	"time"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

// ErrNoPolicyFile is returned (wrapped) by Source.ReloadPolicy when the
// system runs a policy given in code rather than read from a file, so there
// is nothing to reload. POST /-/reload answers it with 409 Conflict.
var ErrNoPolicyFile = errors.New("no policy file to reload")

// Source is the running system the telemetry reports on. core/orchestrator
// implements it; this package never imports the orchestrator, so the
// dependency points one way. Every method must be safe for concurrent use
// and return promptly: they run on HTTP handlers' and the scraper's
// goroutines.
type Source interface {
	// Status returns the system's state now.
	Status() Status
	// Diagnostics returns the system's full diagnostics as a JSON-ready
	// value (it must never hold the token); /debug/lifeline embeds it.
	Diagnostics() any
	// ReloadPolicy reads the policy file again and puts it in force when
	// it is valid. The error wraps ErrNoPolicyFile when there is no file,
	// and is (or wraps) a *policy.DiagnosticsError when the file is
	// invalid; the running policy then stays.
	ReloadPolicy() (Reload, error)
}

// Status is one shard's state at one moment: what the gauges on /metrics,
// /health, /readyz and the dashboard read.
type Status struct {
	// Time is when the status was taken, on the system's clock.
	Time time.Time `json:"time"`
	// Uptime is the time since the system started; 0 before Start.
	Uptime time.Duration `json:"uptime"`
	// Shard and ShardCount say which shard this is.
	Shard      int `json:"shard"`
	ShardCount int `json:"shard_count"`
	// State is the connection state machine's state ("READY", ...).
	State string `json:"state"`
	// Error is the error that made the connection FAILED, if any.
	Error string `json:"error,omitempty"`
	// SessionStartsRemaining is the identify budget left; -1 when unknown.
	SessionStartsRemaining int `json:"session_starts_remaining"`
	// Snapshot is the last tick's metrics Snapshot.
	Snapshot metrics.Snapshot `json:"snapshot"`
	// Health is the health monitor's verdict and checks.
	Health health.Diagnostics `json:"health"`
	// Breaker is the gateway circuit breaker's counters.
	Breaker breaker.Metrics `json:"breaker"`
	// Degradation is the degradation level in force and why.
	Degradation Degradation `json:"degradation"`
	// Events are the event bus's counters.
	Events events.Stats `json:"events"`
	// Policy describes the policy in force.
	Policy PolicyInfo `json:"policy"`
	// Plugins are the policy's plugins as the plugin host sees them, by
	// name; none when the policy uses no plugin.
	Plugins []pluginhost.Status `json:"plugins,omitempty"`
}

// Degradation is the degradation level a Status reports.
type Degradation struct {
	// Level is NONE, MINIMAL, MODERATE, SEVERE or CRITICAL.
	Level string `json:"level"`
	// Reason names the condition that chose Level.
	Reason string `json:"reason,omitempty"`
	// PolicyActions are the actions the policy asks for at Level. The
	// actions actually applied are tracked from DEGRADATION_* events.
	PolicyActions []string `json:"policy_actions,omitempty"`
}

// PolicyInfo describes the policy in force.
type PolicyInfo struct {
	// Path is the policy file; "" when the policy was given in code.
	Path string `json:"path,omitempty"`
	// Generation counts the file's loads from 1; 0 without a file.
	Generation uint64 `json:"generation"`
	// Hash is the hex SHA-256 of the file's content in force.
	Hash string `json:"hash,omitempty"`
	// Reloads and Failures count reloads that put a new generation in
	// force and reloads that kept the old one.
	Reloads  uint64 `json:"reloads"`
	Failures uint64 `json:"failures"`
	// LastSuccess is when the file was last read and found valid.
	LastSuccess time.Time `json:"last_success,omitempty"`
	// LastError is the last reload's error, "" once one succeeds.
	LastError string `json:"last_error,omitempty"`
}

// Reload is what Source.ReloadPolicy did.
type Reload struct {
	// Path is the policy file.
	Path string `json:"path"`
	// Previous and Generation are the generations before and after.
	Previous   uint64 `json:"previous_generation"`
	Generation uint64 `json:"generation"`
	// Hash is the content hash of the generation in force.
	Hash string `json:"hash,omitempty"`
	// Changed is false when the file held the content already in force.
	Changed bool `json:"changed"`
}
