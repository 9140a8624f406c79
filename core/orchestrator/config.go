package orchestrator

import (
	"errors"
	"os"
	"sync/atomic"

	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// ErrPolicyAndLayers is returned by New when Config.Policy is combined with
// Config.Preset or Config.Settings: a *policy.Policy is complete as it is,
// so there is nothing for a preset to sit under or a setting to override.
var ErrPolicyAndLayers = errors.New("Config.Policy cannot be combined with Config.Preset or Config.Settings")

// layered is the configuration core/config built for the policy in force,
// kept so Configuration can say where each value came from.
type layered struct{ last atomic.Pointer[config.Config] }

// loadPolicy sets cfg.Policy. A Policy given without PolicyFile is used as
// it is. Otherwise core/config builds it from its layers: the built-in
// defaults, cfg.Preset, cfg.PolicyFile, the environment (cfg.Env) and
// cfg.Settings; with a PolicyFile the returned Watcher re-applies the same
// layers on every reload.
func loadPolicy(cfg *Config, bus *events.Bus, keep *layered) (*policy.Watcher, error) {
	if cfg.Policy != nil && cfg.PolicyFile == "" {
		if cfg.Preset != "" || len(cfg.Settings) > 0 {
			return nil, ErrPolicyAndLayers
		}
		return nil, nil
	}
	lookup := cfg.Env
	if lookup == nil {
		lookup = os.LookupEnv
	}
	opts := []config.Option{config.WithEnv(lookup)}
	if cfg.Token != "" {
		// Known to the loader so that no diagnostic repeats it.
		opts = append(opts, config.WithToken(cfg.Token))
	}
	if cfg.Preset != "" {
		opts = append(opts, config.WithPreset(cfg.Preset))
	}
	opts = append(opts, cfg.Settings...)
	if cfg.PolicyFile == "" {
		c, err := config.Load(opts...)
		if err != nil {
			return nil, err
		}
		keep.last.Store(c)
		cfg.Policy = c.Policy
		return nil, nil
	}
	w, err := policy.NewWatcher(policy.WatcherOptions{Path: cfg.PolicyFile, Debounce: cfg.PolicyDebounce,
		Clock: cfg.Clock, Logger: cfg.Logger, Events: bus,
		Load: config.Decoder(func(c *config.Config) { keep.last.Store(c) }, opts...)})
	if err != nil {
		return nil, err
	}
	cfg.Policy = w.Policy()
	return w, nil
}

// Configuration returns the layered configuration of the policy in force:
// its Sources say where each value came from (a default, the preset, the
// policy file's line, an environment variable, a setting). It returns nil
// when the policy in force was given as a *policy.Policy (Config.Policy
// without PolicyFile, or SetPolicy).
func (o *Orchestrator) Configuration() *config.Config {
	c := o.layers.last.Load()
	if c == nil || c.Policy != o.policy.Load() {
		return nil
	}
	return c
}
