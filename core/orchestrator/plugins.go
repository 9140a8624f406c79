package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/degrade"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

// buildPlugins creates the plugin host and registers, for every plugin the
// policy uses, its checks with the monitor, its actions with the
// degradation engine and its strategies with the recovery engine (which
// refuses a policy naming a strategy it does not know). The processes start
// at Start.
func (o *Orchestrator) buildPlugins(p *policy.Policy) error {
	base := ""
	if o.cfg.PolicyFile != "" {
		base = filepath.Dir(o.cfg.PolicyFile)
	}
	// A plugin call must end before the monitor gives up on the check,
	// or a hung plugin would never trip its breaker.
	callTimeout := pluginhost.DefaultCallTimeout
	if t := p.Health.Timeout; t > 0 && t < callTimeout {
		callTimeout = t
	}
	o.plugins = pluginhost.New(pluginhost.Options{
		Clock:       o.clk,
		Logger:      o.cfg.Logger,
		Events:      o.bus,
		Services:    hostServices{o},
		BaseDir:     base,
		CallTimeout: callTimeout,
		OnCall:      o.tel.ObservePluginCall,
	})
	return o.registerPlugins(p)
}

// registerPlugins adds the adapters for what p uses from its plugins.
func (o *Orchestrator) registerPlugins(p *policy.Policy) error {
	for _, spec := range pluginhost.SpecsFromPolicy(p) {
		for _, use := range spec.Checks {
			chk := o.plugins.Checker(spec.Name, use)
			cfg := health.CheckConfig{Critical: checkCritical(p, use.Name)}
			if err := o.mon.Add(use.Name, chk, cfg); err != nil {
				if !errors.Is(err, health.ErrDuplicateCheck) {
					return fmt.Errorf("orchestrator: plugin check %q: %w", use.Name, err)
				}
				if err := o.mon.Replace(use.Name, chk); err != nil {
					return fmt.Errorf("orchestrator: plugin check %q: %w", use.Name, err)
				}
			}
		}
		for _, a := range spec.Actions {
			if err := o.eng.deg.Register(o.plugins.Action(spec.Name, a)); err != nil && !errors.Is(err, degrade.ErrDuplicateAction) {
				return fmt.Errorf("orchestrator: plugin action %s.%s: %w", spec.Name, a, err)
			}
		}
		for _, s := range spec.Strategies {
			name := spec.Name + "." + s
			if err := o.eng.recov.Register(name, o.plugins.Strategy(spec.Name, s)); err != nil && !errors.Is(err, recovery.ErrDuplicate) {
				return fmt.Errorf("orchestrator: plugin strategy %s: %w", name, err)
			}
		}
	}
	return nil
}

func checkCritical(p *policy.Policy, name string) bool {
	for _, c := range p.Health.Checks {
		if c.Name == name {
			return c.Critical
		}
	}
	return false
}

// startPlugins starts (or, after a reload, reconciles) the plugin processes.
func (o *Orchestrator) startPlugins(ctx context.Context, p *policy.Policy) {
	if err := o.plugins.Reconcile(ctx, pluginhost.SpecsFromPolicy(p)); err != nil {
		// A plugin that cannot start is reported and retried by the host;
		// its checks fail meanwhile. The bot keeps running.
		o.log.Error("plugins", "error", err)
	}
}

// Plugins returns the plugin host: the status of each plugin process.
func (o *Orchestrator) Plugins() *pluginhost.Host { return o.plugins }

// hostServices is what plugins may ask of lifeline.
type hostServices struct{ o *Orchestrator }

func (h hostServices) Snapshot() metrics.Snapshot { return h.o.Snapshot() }

// RequestRecovery asks every shard of the process to recover (a plugin
// sees the process, not one shard); the reconnect gate spreads the
// shards' attempts.
func (h hostServices) RequestRecovery(_ context.Context, mode, reason string) error {
	shards := h.o.Shards()
	if len(shards) == 0 {
		return errors.New("lifeline: not connected yet")
	}
	var m conn.RecoverMode
	switch mode {
	case "resume":
		m = conn.RecoverResume
	case "reconnect":
		m = conn.RecoverReconnect
	case "reidentify":
		m = conn.RecoverReidentify
	case "restart_client":
		m = conn.RecoverRestart
	default:
		return fmt.Errorf("lifeline: unknown recovery mode %q (want resume, reconnect, reidentify or restart_client)", mode)
	}
	var errs []error
	for _, s := range shards {
		if err := s.Connection().Recover(m, reason); err != nil {
			errs = append(errs, fmt.Errorf("shard %d: %w", s.ID(), err))
		}
	}
	return errors.Join(errs...)
}

func (h hostServices) SetFeature(name string, on bool) error {
	if name == "" {
		return errors.New("lifeline: empty feature name")
	}
	h.o.eng.kit.Features.SetFlag(name, on)
	return nil
}

// dropUnusedChecks removes from mon the checks a new policy no longer
// declares (a reload that removed a check block).
func dropUnusedChecks(mon *health.Monitor, p *policy.Policy) {
	keep := map[string]bool{}
	for _, c := range p.Health.Checks {
		keep[c.Name] = true
	}
	for _, st := range mon.Diagnostics().Checks {
		if !keep[st.Name] {
			_ = mon.Remove(st.Name)
		}
	}
}
