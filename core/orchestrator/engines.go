package orchestrator

import (
	"context"
	"fmt"
	"net/http"

	"github.com/lifeline-bot/lifeline/core/degrade"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

// engines are the parts that act on the policy's Decision and on failures:
// the degradation engine with the components its eight built-in actions
// change, and the recovery engine that chooses how the connection recovers.
type engines struct {
	kit   *degrade.Kit
	deg   *degrade.Engine
	recov *recovery.Engine
}

// buildEngines creates the engines; next is the shared observing REST
// transport the degrade Transport sends to. tuneShard (shards.go) points
// every shard's connection at them. The recovery engine gets its policy
// after the plugins' strategies are registered (setEnginePolicy).
func (o *Orchestrator) buildEngines(next http.RoundTripper) error {
	o.eng.kit = degrade.NewKit(degrade.KitSettings{
		Logger:    o.cfg.Logger,
		Transport: degrade.TransportSettings{Next: next, Clock: o.clk},
	})
	deg, err := degrade.New(degrade.Settings{
		Clock:   o.clk,
		Events:  o.bus,
		Logger:  o.cfg.Logger.Named("degrade"),
		Policy:  o.policy.Load,
		Actions: o.eng.kit.Actions(),
	})
	if err != nil {
		return fmt.Errorf("orchestrator: degradation engine: %w", err)
	}
	o.eng.deg = deg
	o.eng.recov = recovery.New(recovery.Settings{
		Clock:    o.clk,
		Events:   o.bus,
		Logger:   o.cfg.Logger.Named("recovery"),
		Snapshot: o.recoverySnapshot,
	})
	return nil
}

// recoverySnapshot is what a shard's recovery rules read besides error.*:
// the process Snapshot of the last tick, and, when the process runs
// several shards, the failing shard's own latency, errors, gateway,
// breaker and health in place of the process's summary of them.
func (o *Orchestrator) recoverySnapshot(id int) *metrics.Snapshot {
	s := o.Snapshot()
	if o.multi() {
		if sh := o.mgr.Shard(id); sh != nil {
			own := sh.Snapshot()
			s.Shard, s.Gateway, s.Breaker = own.Shard, own.Gateway, own.Breaker
			s.Latency.Heartbeat, s.Latency.HeartbeatAvg = own.Latency.Heartbeat, own.Latency.HeartbeatAvg
			s.Errors = own.Errors
			if own.Health.Status != "" {
				s.Health = own.Health
			}
		}
	}
	return &s
}

// applyDecision lets the degradation engine act on the tick's Decision.
func (o *Orchestrator) applyDecision(ctx context.Context, p *policy.Policy, d policy.Decision) {
	o.eng.deg.ApplyDecision(ctx, p, d)
}

// setEnginePolicy binds a new policy's recovery rules; the degradation
// engine reads the policy in force on each tick.
func (o *Orchestrator) setEnginePolicy(p *policy.Policy) error {
	if err := o.eng.recov.SetPolicy(p); err != nil {
		return fmt.Errorf("orchestrator: recovery rules: %w", err)
	}
	return nil
}

// releaseDegradation rolls every degradation action back at Stop, so the
// bot's logger, services and features are left as they were found.
func (o *Orchestrator) releaseDegradation(ctx context.Context) {
	if o.eng.deg.Level() == degrade.None && len(o.eng.deg.Active()) == 0 {
		return
	}
	if _, err := o.eng.deg.Deactivate(ctx, "lifeline stopping"); err != nil {
		o.log.Warn("degradation actions not all rolled back at stop", "error", err)
	}
}

// Degradation returns the degradation engine: its level, active actions,
// history, and manual Activate/Deactivate.
func (o *Orchestrator) Degradation() *degrade.Engine { return o.eng.deg }

// Features returns the feature registry: a bot registers features as
// critical, optional or analytics, and asks Enabled("music") before using
// one; disable_non_critical_features and disable_analytics switch them.
func (o *Orchestrator) Features() *degrade.Features { return o.eng.kit.Features }

// Services returns the service registry: background work a bot registers
// as essential or not; shutdown_non_essential_services stops the others.
func (o *Orchestrator) Services() *degrade.Services { return o.eng.kit.Services }

// Recovery returns the recovery engine, to add strategies from Go
// (AddRecoveryStrategy) or read its counters.
func (o *Orchestrator) Recovery() *recovery.Engine { return o.eng.recov }

// startServices starts the services the bot registered (they run while
// lifeline runs; shutdown_non_essential_services stops some for a while).
func (o *Orchestrator) startServices(ctx context.Context) {
	if err := o.eng.kit.Services.Start(ctx); err != nil {
		o.log.Error("a registered service did not start", "error", err)
	}
}

// stopServices stops them at Stop.
func (o *Orchestrator) stopServices(ctx context.Context) {
	if err := o.eng.kit.Services.Stop(ctx); err != nil {
		o.log.Warn("a registered service did not stop cleanly", "error", err)
	}
}

// DegradationKit returns the components the built-in actions change: the
// feature and service registries, the timeout multiplier and the REST
// Transport (its Stats show read-only mode, the cache and the limit).
func (o *Orchestrator) DegradationKit() *degrade.Kit { return o.eng.kit }
