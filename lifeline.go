package lifeline

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/core/degrade"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/telemetry"
)

// Config configures lifeline; see orchestrator.Config for every field and
// its default. The zero value plus a token (or DISCORD_TOKEN in the
// environment) is a working configuration.
type Config = orchestrator.Config

// Diagnostics is the whole system's state in one JSON-ready value.
type Diagnostics = orchestrator.Diagnostics

// ShardProgress reports one more shard READY during Start.
type ShardProgress = orchestrator.ShardProgress

// HandlerOptions configures Handler, the operator's HTTP surface (/metrics,
// /health, /livez, /readyz, /debug/lifeline, the dashboard) for mounting
// in a bot's own server.
type HandlerOptions = telemetry.HandlerOptions

// Event is one thing that happened: a state change, a health change, a
// breaker transition, a recovery, an error.
type Event = events.Event

// Event types a listener can subscribe to; All matches every type.
const (
	All                     = events.All
	StateChanged            = events.StateChanged
	HealthChanged           = events.HealthChanged
	CircuitBreakerTriggered = events.CircuitBreakerTriggered
	DegradationActivated    = events.DegradationActivated
	DegradationDeactivated  = events.DegradationDeactivated
	ErrorOccurred           = events.ErrorOccurred
	RecoveryAttempted       = events.RecoveryAttempted
	RecoveryCompleted       = events.RecoveryCompleted
	PolicyReloaded          = events.PolicyReloaded
	PolicyReloadFailed      = events.PolicyReloadFailed
	PluginStarted           = events.PluginStarted
	PluginExited            = events.PluginExited
	PluginLogsDropped       = events.PluginLogsDropped
)

// Feature classes for Features().Register: how much a feature matters when
// the bot is degraded.
const (
	// Optional features (music, games) are switched off by
	// disable_non_critical_features.
	Optional = degrade.ClassOptional
	// Critical features stay on at every level.
	Critical = degrade.ClassCritical
	// Analytics features are switched off by disable_analytics.
	Analytics = degrade.ClassAnalytics
)

// Level is a degradation level, NONE < MINIMAL < MODERATE < SEVERE <
// CRITICAL.
type Level = degrade.Level

// The degradation levels.
const (
	LevelNone     = degrade.None
	LevelMinimal  = degrade.Minimal
	LevelModerate = degrade.Moderate
	LevelSevere   = degrade.Severe
	LevelCritical = degrade.Critical
)

// ErrReadOnly is returned (wrapped; test with errors.Is) by REST calls that
// would change something while enable_read_only_mode is active, unless
// their context is marked Essential.
var ErrReadOnly = degrade.ErrReadOnly

// Essential marks a REST call's context as essential: read-only mode lets
// it through, and the concurrency limit serves it first. With discordgo:
// s.ChannelMessageSend(ch, msg, discordgo.WithContext(lifeline.Essential(ctx))).
func Essential(ctx context.Context) context.Context { return degrade.Essential(ctx) }

// Background wraps a loop as a service for Services().Register: it runs in
// its own goroutine until its context is cancelled.
func Background(run func(ctx context.Context)) degrade.Service { return degrade.Background(run) }

// Lifeline is a running connection manager: a discordgo Session kept
// connected (one per shard when the bot shards), with its health, breaker,
// policy and events. All the methods of orchestrator.Orchestrator are
// available on it: Start, Stop, Session, AddHandler, Events,
// AddEventListener, Diagnostics, HealthMonitor, CircuitBreaker, Snapshot,
// Decision, SetPolicy, ReloadPolicy, Degradation, Features, Services,
// Recovery, Handler, and for shards Shards, Shard, ShardForGuild,
// ShardView and ShardManager.
type Lifeline struct {
	*orchestrator.Orchestrator
}

// An Option adjusts the Config given to New.
type Option func(*Config) error

// New builds lifeline from cfg and opts (applied in order). The policy is
// layered (see Config.Policy): the built-in defaults, a preset
// (WithPreset), the policy file (WithPolicyFile), environment variables
// (docs/configuration.md's table, read through WithEnv's lookup or the
// process environment) and settings (WithSetting), each overriding the
// ones before. When cfg.Token is empty it is read from the variable the
// policy names (DISCORD_TOKEN by default). Nothing connects until Start.
func New(cfg Config, opts ...Option) (*Lifeline, error) {
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("lifeline: %w", err)
		}
	}
	if cfg.Token == "" && cfg.Policy != nil && cfg.PolicyFile == "" {
		// A policy given as a value is not layered, so the orchestrator
		// reads no environment for it: DISCORD_TOKEN is read here.
		lookup := cfg.Env
		if lookup == nil {
			lookup = os.LookupEnv
		}
		cfg.Token, _ = lookup("DISCORD_TOKEN")
	}
	o, err := orchestrator.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("lifeline: %w", err)
	}
	return &Lifeline{o}, nil
}

// WithPolicy sets the policy.
func WithPolicy(p *policy.Policy) Option {
	return func(c *Config) error { c.Policy = p; return nil }
}

// WithPolicyFile loads, validates and sets the policy in path, and
// watches it while lifeline runs: a valid edit takes effect live, an
// invalid one is reported (POLICY_RELOAD_FAILED) and the running policy
// stays. A broken file makes New fail with its diagnostics (file:line:col).
func WithPolicyFile(path string) Option {
	return func(c *Config) error { c.PolicyFile = path; return nil }
}

// WithPreset starts the policy from a preset by bot size: "small",
// "medium" or "large" (policies/NAME.hcl); the policy file, environment
// variables and settings override its values.
func WithPreset(name string) Option {
	return func(c *Config) error { c.Preset = name; return nil }
}

// WithEnv reads environment variables (the token, the settings of
// docs/configuration.md's table, the policy's env() calls) through lookup
// instead of the process environment.
func WithEnv(lookup func(name string) (value string, ok bool)) Option {
	return func(c *Config) error { c.Env = lookup; return nil }
}

// WithSetting sets one setting by key ("health.interval",
// "connection.max_reconnect_attempts"; `lifeline config export` shows
// them all), the last layer: it wins over the preset, the file and the
// environment. value is a Go value of the setting's kind (a
// time.Duration, an int, a bool, ...) or a string read like the
// environment variable. An unknown key or a bad value fails New.
func WithSetting(key string, value any) Option {
	return func(c *Config) error { c.Settings = append(c.Settings, config.Set(key, value)); return nil }
}

// WithIntents sets the gateway intents by name ("Guilds",
// "GuildMessages", "MessageContent", ...).
func WithIntents(names ...string) Option {
	return func(c *Config) error { c.Intents = names; return nil }
}

// WithLogger sets the logger.
func WithLogger(l hclog.Logger) Option {
	return func(c *Config) error { c.Logger = l; return nil }
}

// WithClock sets the clock every timer runs on (tests use clock.NewFake).
func WithClock(clk clock.Clock) Option {
	return func(c *Config) error { c.Clock = clk; return nil }
}

// WithShard runs the one shard id of count in this process (other
// processes run the others).
func WithShard(id, count int) Option {
	return WithShardRange(id, id, count)
}

// WithShards runs every shard of count in this process; 0 (the default)
// takes the policy's connection.shards, else the count Discord recommends
// (GET /gateway/bot), and re-shards when Discord asks for more (close
// code 4011).
func WithShards(count int) Option {
	return func(c *Config) error {
		if count < 0 {
			return fmt.Errorf("WithShards(%d): negative shard count", count)
		}
		c.ShardCount, c.ShardRange, c.ShardID = count, nil, 0
		return nil
	}
}

// WithShardRange runs shards first to last (inclusive) of count in this
// process ("shards 0 to 15 of 64"); other processes run the rest. count
// 0 takes Discord's recommendation.
func WithShardRange(first, last, count int) Option {
	return func(c *Config) error {
		if first < 0 || last < first || (count > 0 && last >= count) || count < 0 {
			return fmt.Errorf("WithShardRange(%d, %d, %d): want 0 <= first <= last < count", first, last, count)
		}
		c.ShardCount, c.ShardRange, c.ShardID = count, &orchestrator.ShardRange{First: first, Last: last}, 0
		return nil
	}
}

// WithShardProgress calls fn during Start each time one more shard is
// READY (ShardProgress.String() reads "5 of 8 shards READY").
func WithShardProgress(fn func(ShardProgress)) Option {
	return func(c *Config) error { c.OnShardProgress = fn; return nil }
}

// WithNetwork sends REST requests through rest and dials the gateway with
// dialer: how a bot is pointed at the fake Discord (discordtest.Server's
// Transport and Dialer) or through a proxy.
func WithNetwork(rest http.RoundTripper, dialer *websocket.Dialer) Option {
	return func(c *Config) error { c.RESTTransport, c.GatewayDialer = rest, dialer; return nil }
}
