package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/shard"
	"github.com/lifeline-bot/lifeline/core/telemetry"
)

// DefaultTickInterval is how often a Snapshot is built and the policy
// evaluated when Config.TickInterval is zero.
const DefaultTickInterval = time.Second

// ErrNoToken is returned by New when Config.Token is empty.
var ErrNoToken = errors.New("no Discord token: set DISCORD_TOKEN (or Config.Token)")

// ErrAlreadyStarted is returned by Start on an Orchestrator that was
// started before.
var ErrAlreadyStarted = errors.New("already started")

// Config configures an Orchestrator. Token is required; every other field
// has a default stated in its comment.
type Config struct {
	// Token is the bot token, without "Bot ". It is a secret: lifeline
	// never logs, prints or exports it. Default: the environment variable
	// the policy names (token = env("NAME"); DISCORD_TOKEN unless it says
	// otherwise), read through Env; New fails with ErrNoToken without one.
	Token string
	// Policy supplies the connection, health, breaker, degradation and
	// recovery settings as they are: no preset, environment variable or
	// setting is layered over it (combining it with Preset or Settings
	// fails New with ErrPolicyAndLayers). Default: the layered
	// configuration below (core/config): the built-in defaults, Preset,
	// PolicyFile, the environment (Env) and Settings, in that order.
	Policy *policy.Policy
	// PolicyFile, when set, is loaded by New with the other layers around
	// it (a broken file, or a malformed environment variable, fails New
	// with every diagnostic) and watched from Start to Stop: each valid
	// edit is put in force live (SetPolicy) with the same layers, an
	// invalid one keeps the running policy and publishes
	// POLICY_RELOAD_FAILED. It takes precedence over Policy. Default: ""
	// (no file, no reload).
	PolicyFile string
	// Preset puts a preset under PolicyFile: "small", "medium" or
	// "large" (policies/NAME.hcl; `lifeline config presets` lists them).
	// Default: "" (the built-in defaults).
	Preset string
	// Env looks up environment variables: the settings of
	// docs/configuration.md's table (DISCORD_INTENTS,
	// DISCORD_MAX_RECONNECT_ATTEMPTS, ...), which override the preset and
	// PolicyFile, and the policy file's env() calls. Every reload reads
	// them again. Not used with Policy. Default: os.LookupEnv.
	Env func(name string) (value string, ok bool)
	// Settings are explicit values (config.Set,
	// config.WithMaxReconnectAttempts, ...), the last layer: they win
	// over every other. Default: none.
	Settings []config.Option
	// PolicyDebounce is the quiet time after the last change to
	// PolicyFile before it is reloaded. Default: policy.DefaultDebounce.
	PolicyDebounce time.Duration
	// Intents overrides the policy's intents by name ("Guilds",
	// "GuildMessages", ...; see conn.ParseIntents). Default: the policy's.
	Intents []string
	// ShardCount is the bot's total number of shards. Default: 0
	// (shard.Auto): the policy's connection.shards when it names a
	// number, else what GET /gateway/bot recommends (1 with
	// SkipGatewayBot). With Auto and no ShardRange, close code 4011
	// (sharding required) makes lifeline re-shard.
	ShardCount int
	// ShardRange is the shards this process runs, First to Last
	// inclusive, out of ShardCount ("shards 0 to 15 of 64": other
	// processes run the rest). Default: nil, every shard; or, when
	// ShardID is not 0, that one shard.
	ShardRange *ShardRange
	// ShardID, with ShardRange nil, makes this process run the one shard
	// ShardID of ShardCount (as ShardRange {ShardID, ShardID} does). Set
	// ShardRange for shard 0 alone. Default: 0 (see ShardRange).
	ShardID int
	// OnShardProgress, when set, is called on Start's goroutine each time
	// one more shard is READY during Start ("5 of 8 shards READY").
	// Default: nil.
	OnShardProgress func(ShardProgress)
	// OnPluginProgress, when set, is called each time one more plugin of
	// the policy is up, or failed to start, after Start launched them
	// ("plugin 2 of 3 started"). Plugins start in the background, beside
	// the gateway connection: it may be called before or after Start
	// returns, on an event listener's goroutine. Default: nil.
	OnPluginProgress func(PluginProgress)
	// Session is the discordgo Session of the first shard this process
	// runs: the one Session() returns, that the bot adds handlers to
	// (AddHandler reaches every shard's). Default: a new one. lifeline
	// owns its connection: do not call Open or Close.
	Session *discordgo.Session
	// NewSession returns the Session of every other shard (and of the
	// first after a re-shard), for bots that set options per Session;
	// lifeline sets its token, client, dialer and rate limiter. Default:
	// discordgo.New.
	NewSession func(shard int) (*discordgo.Session, error)
	// RESTTransport sends REST requests (wrapped by lifeline's observing
	// transport). Default: a clone of http.DefaultTransport.
	RESTTransport http.RoundTripper
	// RESTBaseURL sends requests aimed at discord.com to another base URL
	// (the fake Discord). Default: "" (Discord itself).
	RESTBaseURL string
	// GatewayURL overrides the gateway /gateway/bot returns. Default: "",
	// ask /gateway/bot.
	GatewayURL string
	// GatewayDialer dials the gateway. Default: a new websocket.Dialer.
	GatewayDialer *websocket.Dialer
	// SkipGatewayBot skips GET /gateway/bot at Start; lifeline then uses
	// GatewayURL (or Discord's default) and Discord's default session
	// start limit (1000 a day, max_concurrency 1). Default: false.
	SkipGatewayBot bool
	// IdentifyWindow is the time between two IDENTIFYs of one bucket.
	// Default: 5s, Discord's; the fake Discord scales it down.
	IdentifyWindow time.Duration
	// Clock drives every timer. Default: clock.Real.
	Clock clock.Clock
	// Logger receives lifeline's logs. Default: hclog's null logger.
	Logger hclog.Logger
	// TickInterval is how often the Snapshot is built and the policy
	// evaluated. Default: DefaultTickInterval (1s).
	TickInterval time.Duration
	// MetricsWindow is the sliding window of the Snapshot's rates and
	// percentiles (errors.rate, REST p95, ...). Default:
	// metrics.DefaultWindow (60s).
	MetricsWindow time.Duration
	// EventQueueSize bounds each event subscriber's queue.
	// Default: events.DefaultQueueSize.
	EventQueueSize int
	// Tune, when set, adjusts the shards' connection configuration, once,
	// in New, after the policy and the fields above: for tests and
	// advanced embedding (timeouts, backoff, zombie factor). The shard
	// manager then sets each shard's own parts (ID, Session, identify
	// queue, reconnect gate, breaker, events, observers) and lifeline its
	// REST transport and recovery planner.
	Tune func(*conn.Config)
	// OnTick, when set, is called at the end of every tick with the
	// tick's Snapshot, the policy's Decision and the degradation level
	// after the engine acted on it (core/flight's recorder fits here). It
	// runs on the tick goroutine: keep it short. Default: nil.
	OnTick func(metrics.Snapshot, policy.Decision, policy.Level)
	// PluginRestart says how the policy's plugins are restarted when
	// they exit, and when one out of restarts (FAILED) is tried again.
	// Default: the zero value, pluginhost's defaults (after 1s, doubling
	// up to 1m, at most 5 in a row; a FAILED plugin retried after 10m).
	PluginRestart pluginhost.RestartPolicy
}

// Orchestrator is one running lifeline system: the shards of one process
// (one shard by default) with their process-wide policy, health,
// degradation, recovery, plugins and telemetry.
type Orchestrator struct {
	cfg     Config
	log     hclog.Logger
	clk     clock.Clock
	bus     *events.Bus
	plan    shardPlan
	mgr     *shard.Manager
	fleet   *fleetPart       // nil without a coordination block (fleet.go)
	brk     *breaker.Breaker // the first shard's, made here so it exists before Start
	mon     *health.Monitor  // the process's
	tel     *telemetry.Telemetry
	eng     engines
	tickMu  sync.Mutex
	plugins *pluginhost.Host
	started time.Time

	policy   atomic.Pointer[policy.Policy]
	layers   *layered
	snapshot atomic.Pointer[metrics.Snapshot]
	decision atomic.Pointer[policy.Decision]
	view     atomic.Pointer[shard.View]
	// firstSession is set once the first shard has taken Config.Session.
	firstSession atomic.Bool

	// pluginMu serialises the launches of plugin processes (plugins.go).
	pluginMu sync.Mutex

	// checksMu guards where the built-in checks are (placeBuiltinChecks,
	// shards.go): on the process monitor (procBuiltins) or the shards',
	// as of the policy checksPolicy.
	checksMu     sync.Mutex
	checksPolicy *policy.Policy
	procBuiltins bool

	mu       sync.Mutex
	state    runState
	runCtx   context.Context // ends at Stop
	cancel   context.CancelFunc
	loops    sync.WaitGroup
	subs     []*events.Subscription
	ticks    uint64
	watcher  *policy.Watcher
	stopOnce sync.Once
}

type runState int

const (
	idle runState = iota
	running
	stopped
)

// New builds the system; nothing connects until Start.
func New(cfg Config) (*Orchestrator, error) {
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	bus := events.NewBus(events.Options{QueueSize: cfg.EventQueueSize})
	keep := &layered{}
	watcher, err := loadPolicy(&cfg, bus, keep)
	if err != nil {
		bus.Close()
		return nil, fmt.Errorf("orchestrator: %w", err)
	}
	if cfg.Token == "" {
		// The variable the policy names (token = env("NAME"), DISCORD_TOKEN
		// by default), read through Env.
		if c := keep.last.Load(); c != nil {
			cfg.Token = c.Token.Reveal()
		}
	}
	if cfg.Token == "" {
		if watcher != nil {
			watcher.Close()
		}
		bus.Close()
		return nil, fmt.Errorf("orchestrator: %w", ErrNoToken)
	}
	cleanup := func() {
		if watcher != nil {
			watcher.Close()
		}
		bus.Close()
	}
	if cfg.Policy == nil {
		cfg.Policy = policy.Default()
	}
	plan, err := planShards(&cfg)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("orchestrator: %w", err)
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	intents := cfg.Intents
	if len(intents) == 0 {
		intents = cfg.Policy.Connection.Intents
	}
	mask, err := conn.ParseIntents(intents)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("orchestrator: intents: %w", err)
	}

	if cfg.Session == nil {
		// Created here, not at Start, so the bot can add its handlers
		// (READY included) before anything connects.
		if cfg.Session, err = discordgo.New("Bot " + cfg.Token); err != nil {
			cleanup()
			return nil, fmt.Errorf("orchestrator: %w", err)
		}
	}
	o := &Orchestrator{cfg: cfg, clk: cfg.Clock, log: cfg.Logger.Named("lifeline"), layers: keep, plan: plan}
	o.policy.Store(cfg.Policy)
	o.bus = bus
	if watcher != nil {
		o.watcher = watcher
		watcher.OnReload(func(old, gen *policy.Generation) {
			if err := o.SetPolicy(gen.Policy); err != nil {
				o.log.Error("reloaded policy could not be applied; keeping the previous one", "error", err)
				o.bus.Publish(events.New(o.clk.Now(), events.PolicyReload{Failed: true, Path: gen.Path,
					FromGeneration: old.Number, ToGeneration: old.Number, Diagnostics: []string{err.Error()}}))
			}
		})
	}
	o.tel = newTelemetry(o)
	o.brk = breaker.New(breakerSettings(cfg.Policy.CircuitBreaker, cfg.Clock, stampShard{next: o.bus, shard: plan.first}))
	o.mon = health.NewMonitor(health.Options{
		Clock:    cfg.Clock,
		Events:   processEvents{o},
		Shard:    plan.first,
		Source:   o.Snapshot,
		Interval: cfg.Policy.Health.Interval,
		Timeout:  cfg.Policy.Health.Timeout,
		Retries:  retries(cfg.Policy.Health.Retries),
		Tick:     cfg.TickInterval,
		// Each run's check results at debug level (telemetry.go).
		OnEvaluation: o.logEvaluation,
	})
	if err := o.placeBuiltinChecks(cfg.Policy); err != nil {
		cleanup()
		return nil, err
	}
	if err := o.newManager(mask); err != nil {
		cleanup()
		return nil, err
	}
	if err := o.buildEngines(o.mgr.REST()); err != nil {
		cleanup()
		return nil, err
	}
	if err := o.buildPlugins(cfg.Policy); err != nil {
		cleanup()
		return nil, err
	}
	if err := o.setEnginePolicy(cfg.Policy); err != nil {
		cleanup()
		return nil, err
	}
	o.subs = append(o.subs, o.bus.SubscribeAll(o.tel.ObserveEvent))
	return o, nil
}

// Start launches the policy's plugins in the background (their checks are
// pending until they are up; Config.OnPluginProgress hears of each), asks
// /gateway/bot for the gateway, the shard count and the session-start
// budget, refuses to start more shards than the budget allows (before any
// IDENTIFY, with the reset time), brings the shards up in identify order
// (Config.OnShardProgress hears of each), and returns once every shard is
// READY (or with the error that stopped one, or ctx's error), whether the
// plugins are up or not. The system keeps running and recovering after
// Start returns, until Stop.
func (o *Orchestrator) Start(ctx context.Context) error {
	o.mu.Lock()
	if o.state != idle {
		o.mu.Unlock()
		return fmt.Errorf("orchestrator: %w", ErrAlreadyStarted)
	}
	o.state = running
	o.started = o.clk.Now()
	o.mu.Unlock()

	runCtx, cancel := context.WithCancel(context.Background())
	o.mu.Lock()
	o.runCtx, o.cancel = runCtx, cancel
	o.mu.Unlock()
	if o.watcher != nil {
		if err := o.watcher.Start(); err != nil {
			cancel()
			return fmt.Errorf("orchestrator: watch the policy file: %w", err)
		}
	}
	// Plugins start beside the connection, not before it: their checks
	// are pending until they are up.
	o.launchPlugins(true)
	o.tick(runCtx) // a first Snapshot before anything connects
	o.loops.Add(1)
	go o.tickLoop(runCtx)
	if err := o.mgr.Start(ctx); err != nil {
		return fmt.Errorf("orchestrator: %w", err)
	}
	if err := o.startFleet(ctx); err != nil { // with a coordination block: join, wait for this process's share
		return err
	}
	o.startServices(ctx)
	// The monitor starts once connected, on a Snapshot taken after READY:
	// judging the handshake would report a failure that lasts until the
	// next round (30s by default).
	o.tick(runCtx)
	if o.policy.Load().Health.Enabled {
		if err := o.mon.Start(runCtx); err != nil {
			o.log.Error("health monitor did not start", "error", err)
		}
	}
	return nil
}

// Stop closes every shard's gateway connection resumably (close code
// 4000), stops the monitors and the tick, closes the event bus after
// delivering what is queued, and waits for every goroutine lifeline
// started, or for ctx.
func (o *Orchestrator) Stop(ctx context.Context) error {
	var err error
	o.stopOnce.Do(func() {
		o.stopFleet(ctx) // with a coordination block: hand every shard over first, while the fleet runs
		o.mu.Lock()
		cancel := o.cancel
		o.state = stopped
		o.mu.Unlock()
		// The tick and the monitor stop first, so a connection going
		// down on purpose is not reported as a health failure.
		if cancel != nil {
			cancel()
		}
		o.mon.Stop()
		if o.watcher != nil {
			o.watcher.Close()
		}
		err = o.mgr.Stop(ctx)
		done := make(chan struct{})
		go func() { o.loops.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
		}
		o.releaseDegradation(ctx)
		o.stopServices(ctx)
		o.plugins.Stop()
		o.bus.Close()
		o.tel.Close()
	})
	return err
}

// Session returns the discordgo Session of the first shard this process
// runs (shard 0 by default): the one the bot adds handlers to and calls
// REST with (REST is shared by every shard). It stays the same Session for
// the shard's life: recoveries happen underneath it (a re-shard after
// close code 4011 gives the shards new Sessions; handlers added with
// AddHandler follow them). It exists from New on, so handlers added before
// Start see READY. Shard(id).Session() is another shard's.
func (o *Orchestrator) Session() *discordgo.Session {
	if s := o.firstShard(); s != nil {
		return s.Session()
	}
	return o.cfg.Session
}

// Connection returns the first shard's managed connection, nil before
// Start; Shard(id).Connection() is another shard's.
func (o *Orchestrator) Connection() *conn.Connection {
	if s := o.firstShard(); s != nil {
		return s.Connection()
	}
	return nil
}

// Events returns the event bus: subscribe to one type or to all.
func (o *Orchestrator) Events() *events.Bus { return o.bus }

// AddEventListener calls fn for every event of type t (events.All for
// every type), in order, on the listener's own goroutine. It returns a
// function that removes the listener.
func (o *Orchestrator) AddEventListener(t events.Type, fn func(events.Event)) (remove func()) {
	var s *events.Subscription
	if t == events.All {
		s = o.bus.SubscribeAll(fn)
	} else {
		s = o.bus.Subscribe(t, fn)
	}
	return s.Unsubscribe
}

// HealthMonitor returns the process's health monitor, to add or
// reconfigure checks; its verdict is the policy's health.*. With one
// shard it judges the process Snapshot (that shard's) with the policy's
// built-in checks and the plugins'. With several it holds only what is
// process-wide, the plugins' checks: each shard's own monitor
// (Shard(id).Monitor()) runs the built-in checks on that shard's figures,
// and their verdicts reach the policy through shards.*, so one shard of
// many down does not fail the process's health.
func (o *Orchestrator) HealthMonitor() *health.Monitor { return o.mon }

// CircuitBreaker returns the breaker that guards the first shard's
// connection attempts (Shard(id).Breaker() is another shard's). It exists
// from New on.
func (o *Orchestrator) CircuitBreaker() *breaker.Breaker { return o.brk }

// Recorder returns the process metrics Recorder: REST requests, and the
// errors of REST and every shard pooled. Each shard's own Recorder
// (gateway, heartbeats) is Shard(id).Recorder(); Snapshot merges them.
func (o *Orchestrator) Recorder() *metrics.Recorder { return o.mgr.Recorder() }

// Policy returns the policy in force.
func (o *Orchestrator) Policy() *policy.Policy { return o.policy.Load() }

// Snapshot returns the process Snapshot of the last tick (a fresh one
// before the first tick): with one shard, that shard's figures with REST;
// with several, their summary (shard.View.Snapshot says how) with the
// shards.* aggregate.
func (o *Orchestrator) Snapshot() metrics.Snapshot {
	if s := o.snapshot.Load(); s != nil {
		return *s
	}
	v := o.mgr.View()
	return o.processSnapshot(&v)
}

// Decision returns the policy's Decision at the last tick.
func (o *Orchestrator) Decision() policy.Decision {
	if d := o.decision.Load(); d != nil {
		return *d
	}
	return policy.Decision{}
}

// SetPolicy puts a new policy in force without losing any state: every
// shard's breaker takes its new settings live (breaker.Update), every
// monitor (the process's and each shard's) its new interval, timeout and
// retries and every check, built-in or plugin, follows them, the plugin
// host bounds its calls by the new timeout (nine tenths of it, at most
// 5s: a hung plugin's call ends before its check does), the plugins
// are reconciled in the background (a new plugin's checks are pending, not
// failing, until it is up), and the next tick evaluates the new
// conditions. Connection settings (intents, backoff, shard count) apply to
// the next Start.
func (o *Orchestrator) SetPolicy(p *policy.Policy) error {
	if p == nil {
		return errors.New("orchestrator: SetPolicy: nil policy")
	}
	o.brk.Update(breakerSettings(p.CircuitBreaker, o.clk, o.bus))
	o.mon.SetDefaults(healthDefaults(p))
	o.plugins.SetCallTimeout(pluginCallTimeout(p.Health))
	if err := o.placeBuiltinChecks(p); err != nil {
		return err
	}
	if err := o.registerPlugins(p); err != nil {
		return err
	}
	if err := o.setEnginePolicy(p); err != nil {
		return err
	}
	dropUnusedChecks(o.mon, p)
	if err := o.setShardPolicy(p); err != nil {
		return fmt.Errorf("orchestrator: %w", err)
	}
	o.noteCoordinationChange(p) // read at start only (fleet.go)
	o.policy.Store(p)
	o.launchPlugins(false)
	return nil
}

// ReloadPolicy reloads PolicyFile now (what SIGHUP does in `lifeline
// run`): a valid file is put in force, an invalid one is reported (the
// error carries its diagnostics) and the running policy stays.
func (o *Orchestrator) ReloadPolicy() error {
	if o.watcher == nil {
		return errors.New("orchestrator: no policy file to reload (Config.PolicyFile is empty)")
	}
	if _, err := o.watcher.Reload(); err != nil {
		return fmt.Errorf("orchestrator: %w", err)
	}
	return nil
}

// tickLoop builds a Snapshot and evaluates the policy every TickInterval.
func (o *Orchestrator) tickLoop(ctx context.Context) {
	defer o.loops.Done()
	t := o.clk.NewTicker(o.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			o.tick(ctx)
		}
	}
}

// tick is one turn of the data flow described in the package doc.
func (o *Orchestrator) tick(ctx context.Context) {
	// Start ticks once itself while the loop runs: ticks never overlap.
	o.tickMu.Lock()
	defer o.tickMu.Unlock()
	o.feedProcess()
	v := o.mgr.Tick(ctx) // the shards' due health checks, then their view
	s := o.processSnapshot(&v)
	o.fillFleet(&v, &s) // fleet.* (fleet.go)
	p := o.policy.Load()
	d := p.Evaluate(&s)
	o.applyDecision(ctx, p, d)
	o.view.Store(&v)
	o.snapshot.Store(&s)
	o.decision.Store(&d)
	o.mu.Lock()
	o.ticks++
	o.mu.Unlock()
	o.tel.Sample()
	if o.cfg.OnTick != nil {
		o.cfg.OnTick(s, d, o.eng.deg.Level())
	}
}

func retries(n int) int {
	if n == 0 {
		return -1 // the policy's 0 means none; the monitor's 0 means default
	}
	return n
}

// healthDefaults are the settings p's health block gives every check of a
// monitor (no check sets its own: a reload's change reaches them all).
func healthDefaults(p *policy.Policy) health.Defaults {
	h := p.Health
	return health.Defaults{Interval: h.Interval, Timeout: h.Timeout, Retries: retries(h.Retries)}
}

func builtinCheck(c policy.Check) (health.Checker, error) {
	switch c.Type {
	case "latency":
		return health.NewLatencyCheck(health.LatencyConfig{Threshold: c.Threshold.Duration})
	case "gateway":
		return health.NewGatewayCheck(health.GatewayConfig{MaxAckAge: c.Threshold.Duration})
	case "error_rate":
		return health.NewErrorRateCheck(health.ErrorRateConfig{Threshold: c.Threshold.Number})
	}
	return nil, fmt.Errorf("unknown built-in check type %q (want latency, gateway or error_rate)", c.Type)
}

func breakerSettings(p policy.CircuitBreaker, clk clock.Clock, pub events.Publisher) breaker.Settings {
	return breaker.Settings{
		Name:              "gateway",
		FailureThreshold:  p.FailureThreshold,
		MonitoringPeriod:  p.MonitoringPeriod,
		OpenTimeout:       p.OpenTimeout,
		HalfOpenMaxCalls:  p.HalfOpenMaxCalls,
		RecoveryThreshold: p.RecoveryThreshold,
		ResetTimeout:      p.ResetTimeout,
		Backoff:           breaker.Backoff{Multiplier: p.BackoffMultiplier, Max: p.MaxOpenTimeout},
		Clock:             clk,
		Events:            pub,
	}
}

func connConfig(p policy.Connection) conn.Config {
	c := conn.Config{
		ReconnectDelay:       p.ReconnectDelay,
		BackoffMultiplier:    p.BackoffMultiplier,
		MaxReconnectDelay:    p.MaxReconnectDelay,
		MaxReconnectAttempts: p.MaxReconnectAttempts,
		ZombieFactor:         p.ZombieAfter,
	}
	if !p.AutoReconnect {
		c.MaxReconnectAttempts = 1
	}
	return c
}
