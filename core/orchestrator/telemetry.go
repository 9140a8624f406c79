package orchestrator

import (
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/telemetry"
)

// minSampleInterval bounds how often the dashboard's plots get a point
// when the tick is faster (tests tick every few milliseconds).
const minSampleInterval = 250 * time.Millisecond

// newTelemetry builds the system's telemetry. New feeds it: every event of
// the bus, the wire's heartbeat round trips and close codes, every REST
// result, and a sample per tick.
func newTelemetry(o *Orchestrator) *telemetry.Telemetry {
	return telemetry.New(telemetry.Options{
		Source:         telemetrySource{o},
		Shard:          o.cfg.ShardID,
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
		Shard:                  o.cfg.ShardID,
		ShardCount:             o.cfg.ShardCount,
		State:                  d.State,
		Error:                  d.Error,
		SessionStartsRemaining: d.SessionStartsRemaining,
		Snapshot:               d.Snapshot,
		Health:                 d.Health,
		Breaker:                d.Breaker,
		Degradation:            telemetry.Degradation{Level: level, Reason: d.Degradation.Reason, PolicyActions: d.Degradation.Actions},
		Events:                 d.Events,
		Policy:                 s.policy(),
	}
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
