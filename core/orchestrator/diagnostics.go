package orchestrator

import (
	"time"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/degrade"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Diagnostics is the whole system in one JSON-ready value: what an
// operator's diagnostics page or a support request needs. It never holds
// the token.
type Diagnostics struct {
	// Time is when the diagnostics were taken (the system's clock).
	Time time.Time `json:"time"`
	// Uptime is the time since Start.
	Uptime time.Duration `json:"uptime"`
	// State is the connection state machine's state.
	State string `json:"state"`
	// Error is the error that made the connection FAILED, if any.
	Error string `json:"error,omitempty"`
	// Connection holds the session id, sequence and dropped-send counters.
	Connection conn.Stats `json:"connection"`
	// Gateway is what /gateway/bot said at Start (nil when skipped).
	Gateway *GatewayBot `json:"gateway,omitempty"`
	// SessionStartsRemaining is the identify budget left, and when it
	// resets; -1 before Start.
	SessionStartsRemaining int       `json:"session_starts_remaining"`
	SessionStartsResetAt   time.Time `json:"session_starts_reset_at,omitempty"`
	// Snapshot is the last tick's Snapshot.
	Snapshot metrics.Snapshot `json:"snapshot"`
	// Health is the monitor's checks, score and trend.
	Health health.Diagnostics `json:"health"`
	// Breaker is the circuit breaker's counters.
	Breaker breaker.Metrics `json:"breaker"`
	// Degradation is the level the policy asks for and why.
	Degradation DecisionView `json:"degradation"`
	// DegradationState is the engine's side: the level in force, the
	// active actions, pending retries and manual holds.
	DegradationState degrade.Diagnostics `json:"degradation_state"`
	// Events are the bus's delivery and drop counters.
	Events events.Stats `json:"events"`
	// Ticks counts the ticks since Start.
	Ticks uint64 `json:"ticks"`
}

// DecisionView is the policy's last Decision, for display.
type DecisionView struct {
	Level   string   `json:"level"`
	Actions []string `json:"actions,omitempty"`
	Recover bool     `json:"recover"`
	Reason  string   `json:"reason,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Diagnostics returns the system's state now.
func (o *Orchestrator) Diagnostics() Diagnostics {
	o.mu.Lock()
	c, gb, q, ticks, started := o.conn, o.gwBot, o.queue, o.ticks, o.started
	o.mu.Unlock()
	now := o.clk.Now()
	d := Diagnostics{
		Time:                   now,
		State:                  conn.Disconnected.String(),
		Gateway:                gb,
		SessionStartsRemaining: -1,
		Snapshot:               o.Snapshot(),
		Health:                 o.mon.Diagnostics(),
		Breaker:                o.brk.Metrics(),
		Events:                 o.bus.Stats(),
		Ticks:                  ticks,
	}
	if !started.IsZero() {
		d.Uptime = now.Sub(started)
	}
	if c != nil {
		d.State = c.State().String()
		if err := c.Err(); err != nil {
			d.Error = err.Error()
		}
		d.Connection = c.Stats()
	}
	if q != nil {
		d.SessionStartsRemaining, d.SessionStartsResetAt = q.Remaining()
	}
	d.DegradationState = o.eng.deg.Diagnostics()
	dec := o.Decision()
	d.Degradation = DecisionView{Level: dec.Level.String(), Actions: dec.Actions, Recover: dec.Recover, Reason: dec.Reason}
	if dec.Err != nil {
		d.Degradation.Error = dec.Err.Error()
	}
	return d
}
