package orchestrator

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/telemetry"
)

// minSampleInterval bounds how often the dashboard's plots get a point
// when the tick is faster (tests tick every few milliseconds).
const minSampleInterval = 250 * time.Millisecond

// newTelemetry builds the system's telemetry. New feeds it: every event of
// the bus, the wire's heartbeat round trips and close codes, every REST
// result, and a sample per tick.
func newTelemetry(o *Orchestrator) *telemetry.Telemetry {
	o.subs = append(o.subs, o.bus.SubscribeAll(o.logEvent))
	return telemetry.New(telemetry.Options{
		Source:         telemetrySource{o},
		Shard:          o.plan.first,
		Clock:          o.clk,
		SampleInterval: max(o.cfg.TickInterval, minSampleInterval),
		StaleAfter:     max(telemetry.DefaultStaleAfter, 10*o.cfg.TickInterval),
	})
}

// Telemetry returns the system's telemetry: its Prometheus registry (one
// per Orchestrator, never the global one), the recent events and the
// dashboard's samples.
func (o *Orchestrator) Telemetry() *telemetry.Telemetry { return o.tel }

// Handler returns the operator's HTTP surface for this system, to mount in
// the bot's own server or serve with telemetry.Listen and telemetry.Serve:
// /metrics (Prometheus), /health (application/health+json), /livez,
// /readyz, /debug/lifeline, /events, POST /-/reload and the live dashboard
// on /. See telemetry.Handler for the routes and opts for the bearer
// token.
func (o *Orchestrator) Handler(opts telemetry.HandlerOptions) *telemetry.Handler {
	opts.Gatherers = append(opts.Gatherers, o.fleetGatherers()...) // with a coordination block (fleet_metrics.go)
	return o.tel.Handler(opts)
}

// telemetrySource is the Orchestrator as the telemetry sees it.
type telemetrySource struct{ o *Orchestrator }

// Status implements telemetry.Source.
func (s telemetrySource) Status() telemetry.Status {
	o := s.o
	d := o.Diagnostics()
	level := d.Snapshot.Degradation.Level // the degradation engine's, once it feeds the Recorder
	if level == "" {
		level = d.Degradation.Level // else what the policy asks for
	}
	return telemetry.Status{
		Time:                   d.Time,
		Uptime:                 d.Uptime,
		Shard:                  o.plan.first,
		ShardCount:             max(o.mgr.Count(), 1),
		State:                  d.State,
		Error:                  d.Error,
		SessionStartsRemaining: d.SessionStartsRemaining,
		Snapshot:               d.Snapshot,
		Health:                 d.Health,
		Breaker:                d.Breaker,
		Degradation:            telemetry.Degradation{Level: level, Reason: d.Degradation.Reason, PolicyActions: d.Degradation.Actions},
		Events:                 d.Events,
		Policy:                 s.policy(),
		Plugins:                s.plugins(),
	}
}

// plugins returns the plugin host's view of each plugin, by name.
func (s telemetrySource) plugins() []pluginhost.Status {
	if s.o.plugins == nil {
		return nil
	}
	st := s.o.plugins.Status()
	slices.SortFunc(st, func(a, b pluginhost.Status) int { return strings.Compare(a.Name, b.Name) })
	return st
}

func (s telemetrySource) policy() telemetry.PolicyInfo {
	w := s.o.watcher
	if w == nil {
		return telemetry.PolicyInfo{}
	}
	st := w.Stats()
	info := telemetry.PolicyInfo{Path: s.o.cfg.PolicyFile, Generation: st.Generation, Hash: st.Hash,
		Reloads: st.Reloads, Failures: st.Failures, LastSuccess: st.LastSuccess}
	if st.LastError != nil {
		info.LastError = st.LastError.Error()
	}
	return info
}

// Diagnostics implements telemetry.Source.
func (s telemetrySource) Diagnostics() any { return s.o.Diagnostics() }

// ShardStatuses implements telemetry.ShardSource: every shard as of the
// last tick, for the lifeline_shard_* families.
func (s telemetrySource) ShardStatuses() []telemetry.ShardStatus {
	v := s.o.view.Load()
	if v == nil {
		return nil
	}
	return shardStatuses(v)
}

// ReloadPolicy implements telemetry.Source: what ReloadPolicy does, with
// the generations before and after.
func (s telemetrySource) ReloadPolicy() (telemetry.Reload, error) {
	w := s.o.watcher
	if w == nil {
		return telemetry.Reload{}, fmt.Errorf("orchestrator: %w (Config.PolicyFile is empty)", telemetry.ErrNoPolicyFile)
	}
	before := w.Current()
	gen, err := w.Reload()
	r := telemetry.Reload{Path: s.o.cfg.PolicyFile, Previous: before.Number, Generation: gen.Number, Hash: gen.Hash,
		Changed: gen.Number != before.Number}
	if err != nil {
		return r, fmt.Errorf("orchestrator: %w", err)
	}
	return r, nil
}

// logEvent logs what no other component logs: breaker transitions (its
// actions), health status changes, and at debug level every error event.
// With several shards, a shard's own health changes are logged at debug
// level (the process's health and the shards' share are what matter; a
// thousand shards must not flood the log) and every line names its shard.
// State changes (core/conn), degradation (core/degrade), recoveries
// (core/recovery), reloads (core/policy) and plugins (core/pluginhost) are
// logged where they happen.
func (o *Orchestrator) logEvent(e events.Event) {
	switch d := e.Data.(type) {
	case events.BreakerTransition:
		args := []any{"breaker", d.Breaker, "from", d.From, "to", d.To, "reason", d.Reason}
		if o.multi() && e.Shard != events.NoShard {
			args = append(args, "shard", e.Shard)
		}
		if d.OpenTimeout > 0 {
			args = append(args, "open_for", d.OpenTimeout)
		}
		if d.To == "OPEN" {
			o.log.Warn("circuit breaker opened: attempts are held back", args...)
		} else {
			o.log.Info("circuit breaker", args...)
		}
	case events.HealthChange:
		args := []any{"from", d.From, "to", d.To, "score", d.Score}
		if len(d.Failing) > 0 {
			args = append(args, "failing", d.Failing)
		}
		if o.multi() && e.Shard != events.NoShard {
			o.log.Debug("shard health", append(args, "shard", e.Shard)...)
			return
		}
		if d.To == health.Healthy.String() {
			o.log.Info("health", args...)
		} else {
			o.log.Warn("health", args...)
		}
	case events.Error:
		if o.log.IsDebug() {
			o.log.Debug("error event", "source", d.Source, "kind", d.Kind, "close_code", d.CloseCode, "fatal", d.Fatal, "message", d.Message)
		}
	}
}

// logEvaluation logs each health run's check results at debug level.
func (o *Orchestrator) logEvaluation(ev health.Evaluation) {
	if !o.log.IsDebug() {
		return
	}
	for _, r := range ev.Results {
		if r.Pending {
			o.log.Debug("health check", "check", r.Name, "pending", true, "message", r.Message)
			continue
		}
		o.log.Debug("health check", "check", r.Name, "passed", r.Passed, "value", r.Value, "threshold", r.Threshold,
			"unit", r.Unit, "message", r.Message, "attempts", r.Attempts, "timed_out", r.TimedOut)
	}
	o.log.Debug("health evaluation", "status", ev.Status, "score", ev.Score, "trend", ev.Trend, "failing", ev.Failing)
}
