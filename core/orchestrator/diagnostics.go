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
	// State is the connection state machine's state: with several shards,
	// that of the first shard not READY ("READY" when all are).
	State string `json:"state"`
	// Error is the error that made a shard FAILED (the first), if any.
	Error string `json:"error,omitempty"`
	// Connection holds the first shard's session id, sequence and
	// dropped-send counters.
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
	// Breaker is the gateway circuit breaker's counters: with several
	// shards, the worst state among the shards' breakers and their
	// counters added up.
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
	// Shards is every shard as of the last tick: its state, condition,
	// connection, latency, last close code, resumes, identifies, breaker
	// and health, with the aggregate, the shared REST figures, the
	// reconnect gate and the identify budget. Nil before Start.
	Shards *ShardView `json:"shards,omitempty"`
	// Fleet is the fleet this process belongs to (who owns which shards,
	// the leader, this process's coordination counters); nil without a
	// coordination block.
	Fleet *FleetDiagnostics `json:"fleet,omitempty"`
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
	ticks, started := o.ticks, o.started
	o.mu.Unlock()
	now := o.clk.Now()
	d := Diagnostics{
		Time:                   now,
		State:                  conn.Disconnected.String(),
		SessionStartsRemaining: -1,
		Snapshot:               o.Snapshot(),
		Health:                 o.mon.Diagnostics(),
		Breaker:                o.breakerMetrics(),
		Events:                 o.bus.Stats(),
		Ticks:                  ticks,
	}
	if !o.cfg.SkipGatewayBot {
		d.Gateway = o.mgr.Gateway()
	}
	if !started.IsZero() {
		d.Uptime = now.Sub(started)
	}
	if shards := o.mgr.Shards(); len(shards) > 0 {
		d.State = shards[0].State().String()
		for _, s := range shards {
			if st := s.State(); st != conn.Ready {
				d.State = st.String()
				break
			}
		}
		for _, s := range shards {
			if err := s.Connection().Err(); err != nil {
				d.Error = err.Error()
				break
			}
		}
		d.Connection = shards[0].Connection().Stats()
		if v := o.view.Load(); v != nil {
			d.Shards = v
		}
	}
	if rem, reset, ok := o.mgr.SessionStarts(); ok {
		d.SessionStartsRemaining, d.SessionStartsResetAt = rem, reset
	}
	d.DegradationState = o.eng.deg.Diagnostics()
	d.Fleet = o.fleetDiagnostics()
	dec := o.Decision()
	d.Degradation = DecisionView{Level: dec.Level.String(), Actions: dec.Actions, Recover: dec.Recover, Reason: dec.Reason}
	if dec.Err != nil {
		d.Degradation.Error = dec.Err.Error()
	}
	return d
}

// breakerMetrics is the gateway breaker as one: the first shard's with one
// shard; with several, the worst state of their breakers (OPEN, then
// HALF_OPEN, then CLOSED; Since and the round's figures are that
// breaker's) and their counters added up.
func (o *Orchestrator) breakerMetrics() breaker.Metrics {
	shards := o.mgr.Shards()
	if len(shards) <= 1 {
		return o.brk.Metrics()
	}
	rank := map[breaker.State]int{breaker.StateClosed: 0, breaker.StateHalfOpen: 1, breaker.StateOpen: 2}
	var out breaker.Metrics
	for i, s := range shards {
		m := s.Breaker().Metrics()
		if i == 0 || rank[m.State] > rank[out.State] {
			calls, succ, fail, ign, rej, changes, win := out.Calls, out.Successes, out.Failures, out.Ignored, out.Rejections, out.StateChanges, out.FailuresInWindow
			out = m
			out.Calls, out.Successes, out.Failures, out.Ignored, out.Rejections, out.StateChanges, out.FailuresInWindow = calls, succ, fail, ign, rej, changes, win
		}
		out.Calls += m.Calls
		out.Successes += m.Successes
		out.Failures += m.Failures
		out.Ignored += m.Ignored
		out.Rejections += m.Rejections
		out.StateChanges += m.StateChanges
		out.FailuresInWindow += m.FailuresInWindow
	}
	return out
}
