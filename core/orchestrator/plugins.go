package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/degrade"
	"github.com/lifeline-bot/lifeline/core/events"
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
	o.plugins = pluginhost.New(pluginhost.Options{
		Clock:       o.clk,
		Logger:      o.cfg.Logger,
		Events:      o.bus,
		Services:    hostServices{o},
		BaseDir:     base,
		CallTimeout: pluginCallTimeout(p.Health),
		OnCall:      o.tel.ObservePluginCall,
		Restart:     o.cfg.PluginRestart,
	})
	return o.registerPlugins(p)
}

// pluginCallTimeout bounds each call to a plugin under health h (New, and
// SetPolicy on every reload): pluginhost.DefaultCallTimeout (5s), or nine
// tenths of h's timeout when that is shorter. A check's call must end,
// timed out by the host, before the monitor gives up on the check: the
// host's timeout counts against the plugin's breaker, which kills and
// restarts a wedged plugin, while a call the monitor cancels at its own
// timeout counts for nothing. With equal bounds the two timers race.
func pluginCallTimeout(h policy.Health) time.Duration {
	d := pluginhost.DefaultCallTimeout
	if t := h.Timeout * 9 / 10; t > 0 && t < d {
		d = t
	}
	return d
}

// registerPlugins adds the adapters for what p uses from its plugins. A
// check already registered (a reload) takes its new block's settings and
// adapter; its interval, timeout and retries are the monitor's, which
// SetPolicy sets from p's health block.
func (o *Orchestrator) registerPlugins(p *policy.Policy) error {
	for _, spec := range pluginhost.SpecsFromPolicy(p) {
		for _, use := range spec.Checks {
			chk := pluginCheck{host: o.plugins, plugin: spec.Name, check: o.plugins.Checker(spec.Name, use)}
			cfg := health.CheckConfig{Critical: checkCritical(p, use.Name)}
			if err := o.mon.Add(use.Name, chk, cfg); err != nil {
				if !errors.Is(err, health.ErrDuplicateCheck) {
					return fmt.Errorf("orchestrator: plugin check %q: %w", use.Name, err)
				}
				if err := o.mon.Configure(use.Name, cfg); err != nil {
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

// pluginCheck is a plugin's health check as the monitors run it: pending,
// not failing, while its plugin has not come up yet (not launched, or in
// its first start), so that a slow start or a reload adding the plugin
// costs no health; once the plugin has run, the check is the plugin's own
// (and fails, with the reason, while a crashed plugin restarts).
type pluginCheck struct {
	host   *pluginhost.Host
	plugin string
	check  *pluginhost.Checker
}

// Check runs the plugin's check, or reports it pending.
func (c pluginCheck) Check(ctx context.Context, s metrics.Snapshot) health.Result {
	if why, starting := c.starting(); starting {
		return health.Result{Pending: true, Message: why}
	}
	return c.check.Check(ctx, s)
}

// starting reports whether the plugin has not come up yet, and why.
func (c pluginCheck) starting() (string, bool) {
	for _, st := range c.host.Status() {
		if st.Name != c.plugin {
			continue
		}
		if st.State == pluginhost.Starting && st.Restarts == 0 && st.LastExit == "" && st.LastError == "" {
			return fmt.Sprintf("plugin %q STARTING", c.plugin), true
		}
		return "", false
	}
	return fmt.Sprintf("plugin %q not started yet", c.plugin), true
}

// launchPlugins reconciles the plugin processes with the policy in force,
// in the background: neither Start nor a reload waits for a plugin (a slow
// or hanging start must not delay the gateway connection), and the
// plugin's checks are pending until it is up (pluginCheck). Launches run
// one at a time, each with the policy in force when it begins, so a later
// reload's set wins over an earlier one. With progress, each plugin of the
// set that comes up (or fails to) is reported to Config.OnPluginProgress.
// It does nothing once Stop has begun.
func (o *Orchestrator) launchPlugins(progress bool) {
	o.mu.Lock()
	if o.state != running || o.runCtx == nil {
		o.mu.Unlock()
		return
	}
	ctx := o.runCtx
	o.loops.Add(1)
	o.mu.Unlock()
	began := o.clk.Now()
	go func() {
		defer o.loops.Done()
		o.pluginMu.Lock()
		defer o.pluginMu.Unlock()
		if ctx.Err() != nil {
			return
		}
		specs := pluginhost.SpecsFromPolicy(o.policy.Load())
		if progress && o.cfg.OnPluginProgress != nil && len(specs) > 0 {
			o.watchPluginProgress(specs, began)
		}
		if err := o.plugins.Reconcile(ctx, specs); err != nil && ctx.Err() == nil {
			// A plugin that cannot start is reported and retried by the
			// host; its checks fail meanwhile. The bot keeps running.
			o.log.Error("plugins", "error", err)
		}
	}()
}

// PluginProgress reports one more plugin of the policy up, or failed to
// start, after Start launched them ("plugin 2 of 3 started").
type PluginProgress struct {
	// Name is the plugin's name in the policy.
	Name string
	// PID is its process id; 0 when it did not start.
	PID int
	// Err says why it did not start (it is retried with backoff when a
	// restart can cure it); "" when it started.
	Err string
	// Started counts the plugins of the set up so far, Done those
	// reported (started or not), out of Total.
	Started, Done, Total int
	// Elapsed is the time since Start launched the plugins.
	Elapsed time.Duration
}

// watchPluginProgress reports, through Config.OnPluginProgress, the first
// PLUGIN_STARTED or PLUGIN_EXITED of each plugin in specs, in the order
// the events come; it stops listening once every plugin is reported.
func (o *Orchestrator) watchPluginProgress(specs []pluginhost.Spec, began time.Time) {
	waiting := make(map[string]bool, len(specs))
	for _, sp := range specs {
		waiting[sp.Name] = true
	}
	total := len(specs)
	var started, done int
	var sub *events.Subscription
	var subMu sync.Mutex // sub is set after SubscribeAll returns; the listener may run before
	subMu.Lock()
	defer subMu.Unlock()
	sub = o.bus.SubscribeAll(func(e events.Event) {
		d, ok := e.Data.(events.Plugin)
		if !ok || !waiting[d.Name] {
			return
		}
		delete(waiting, d.Name)
		done++
		pp := PluginProgress{Name: d.Name, Done: done, Total: total, Elapsed: max(e.Time.Sub(began), 0)}
		if d.Exited {
			pp.Err = d.Reason
		} else {
			started++
			pp.PID = d.PID
		}
		pp.Started = started
		o.cfg.OnPluginProgress(pp)
		if len(waiting) == 0 {
			subMu.Lock()
			sub.Unsubscribe()
			subMu.Unlock()
		}
	})
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
