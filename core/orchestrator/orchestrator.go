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
	// ShardID and ShardCount say which shard this process runs.
	// Default: 0 of 1.
	ShardID, ShardCount int
	// Session is the discordgo Session the bot adds handlers to. Default:
	// a new one. lifeline owns its connection: do not call Open or Close.
	Session *discordgo.Session
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
	// Tune, when set, adjusts the connection's configuration last, after
	// the policy and the fields above: for tests and advanced embedding.
	Tune func(*conn.Config)
	// OnTick, when set, is called at the end of every tick with the
	// tick's Snapshot, the policy's Decision and the degradation level
	// after the engine acted on it (core/flight's recorder fits here). It
	// runs on the tick goroutine: keep it short. Default: nil.
	OnTick func(metrics.Snapshot, policy.Decision, policy.Level)
}

// Orchestrator is one running lifeline system for one shard.
type Orchestrator struct {
	cfg     Config
	log     hclog.Logger
	clk     clock.Clock
	bus     *events.Bus
	rec     *metrics.Recorder
	brk     *breaker.Breaker
	mon     *health.Monitor
	rest    *conn.Transport
	conn    *conn.Connection
	tel     *telemetry.Telemetry
	eng     engines
	tickMu  sync.Mutex
	plugins *pluginhost.Host
	started time.Time

	policy   atomic.Pointer[policy.Policy]
	layers   *layered
	snapshot atomic.Pointer[metrics.Snapshot]
	decision atomic.Pointer[policy.Decision]

	mu       sync.Mutex
	state    runState
	cancel   context.CancelFunc
	loops    sync.WaitGroup
	subs     []*events.Subscription
	queue    *conn.LocalIdentifyQueue
	gwBot    *GatewayBot
	ticks    uint64
	watcher  *policy.Watcher
	connCfg  conn.Config // completed by Start from /gateway/bot
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
	if cfg.ShardCount <= 0 {
		cfg.ShardCount = 1
	}
	if cfg.ShardID < 0 || cfg.ShardID >= cfg.ShardCount {
		cleanup()
		return nil, fmt.Errorf("orchestrator: shard %d out of range [0, %d)", cfg.ShardID, cfg.ShardCount)
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
	o := &Orchestrator{cfg: cfg, clk: cfg.Clock, log: cfg.Logger.Named("lifeline"), layers: keep}
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
	o.rec = metrics.NewRecorder(metrics.Options{Clock: cfg.Clock, ShardID: cfg.ShardID, ShardCount: cfg.ShardCount, Window: cfg.MetricsWindow})
	o.tel = newTelemetry(o)
	o.brk = breaker.New(breakerSettings(cfg.Policy.CircuitBreaker, cfg.Clock, o.bus))
	o.mon = health.NewMonitor(health.Options{
		Clock:    cfg.Clock,
		Events:   o.bus,
		Shard:    cfg.ShardID,
		Source:   o.Snapshot,
		Interval: cfg.Policy.Health.Interval,
		Timeout:  cfg.Policy.Health.Timeout,
		Retries:  retries(cfg.Policy.Health.Retries),
		Tick:     cfg.TickInterval,
		// Each run's check results at debug level (telemetry.go).
		OnEvaluation: o.logEvaluation,
	})
	if err := o.addChecks(cfg.Policy.Health); err != nil {
		cleanup()
		return nil, err
	}
	o.rest, err = conn.NewTransport(conn.TransportSettings{
		Base:     cfg.RESTTransport,
		Observer: restObserver{rec: o.rec, tel: o.tel},
		Clock:    cfg.Clock,
		BaseURL:  cfg.RESTBaseURL,
	})
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("orchestrator: REST transport: %w", err)
	}

	cc := connConfig(cfg.Policy.Connection)
	cc.Token = cfg.Token
	cc.Intents = mask
	cc.ShardID, cc.ShardCount = cfg.ShardID, cfg.ShardCount
	cc.GatewayURL = cfg.GatewayURL
	cc.Session = cfg.Session
	cc.RESTTransport = o.rest
	cc.GatewayDialer = cfg.GatewayDialer
	cc.Clock = cfg.Clock
	cc.Events = o.bus
	cc.Logger = cfg.Logger
	cc.Observer = wireObserver{rec: o.rec, tel: o.tel, onAck: probeOnAck(o.brk)}
	cc.Breaker = o.brk
	if err := o.buildEngines(&cc); err != nil {
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
	if cfg.Tune != nil {
		cfg.Tune(&cc)
	}
	o.cfg.Tune = nil
	o.connCfg = cc
	o.subs = append(o.subs, o.bus.SubscribeAll(o.record), o.bus.SubscribeAll(o.tel.ObserveEvent))
	return o, nil
}

func (o *Orchestrator) setConn(c *conn.Connection) {
	o.mu.Lock()
	o.conn = c
	o.mu.Unlock()
}

// Start asks /gateway/bot for the gateway and the session-start budget,
// connects, and returns once the Session has received READY (or with the
// error that stopped it, or ctx's error). The system keeps running and
// recovering after Start returns, until Stop.
func (o *Orchestrator) Start(ctx context.Context) error {
	o.mu.Lock()
	if o.state != idle {
		o.mu.Unlock()
		return fmt.Errorf("orchestrator: %w", ErrAlreadyStarted)
	}
	o.state = running
	o.started = o.clk.Now()
	o.mu.Unlock()

	cc := o.connCfg
	limit := conn.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: 24 * time.Hour, MaxConcurrency: 1}
	if !o.cfg.SkipGatewayBot {
		gb, err := fetchGatewayBot(ctx, &http.Client{Transport: o.rest, Timeout: 20 * time.Second}, o.cfg.Token)
		if err != nil {
			return fmt.Errorf("orchestrator: %w", err)
		}
		o.mu.Lock()
		o.gwBot = gb
		o.mu.Unlock()
		limit = gb.Limit
		if cc.GatewayURL == "" {
			cc.GatewayURL = gb.URL
		}
		o.log.Info("gateway", "url", gb.URL, "recommended_shards", gb.Shards,
			"session_starts_remaining", gb.Limit.Remaining, "max_concurrency", gb.Limit.MaxConcurrency)
	}
	if cc.IdentifyQueue == nil {
		q := conn.NewLocalIdentifyQueue(limit, conn.IdentifyQueueOptions{
			Clock:  o.clk,
			Window: o.cfg.IdentifyWindow,
			OnLow: func(remaining int, resetAt time.Time) {
				o.log.Warn("the daily session-start budget is running out: each new IDENTIFY spends one",
					"remaining", remaining, "resets_at", resetAt.UTC().Format(time.RFC3339))
				o.bus.Publish(events.ForShard(o.clk.Now(), o.cfg.ShardID, events.Error{Source: "identify", Kind: "budget_low",
					Message: fmt.Sprintf("%d session starts left until %s", remaining, resetAt.UTC().Format(time.RFC3339))}))
			},
		})
		if err := q.CheckBudget(1); err != nil {
			return fmt.Errorf("orchestrator: %w", err)
		}
		o.mu.Lock() // Diagnostics reads it, from an HTTP handler during Start
		o.queue = q
		o.mu.Unlock()
		cc.IdentifyQueue = q
	}
	c, err := conn.New(cc)
	if err != nil {
		return fmt.Errorf("orchestrator: %w", err)
	}
	o.setConn(c)

	runCtx, cancel := context.WithCancel(context.Background())
	o.mu.Lock()
	o.cancel = cancel
	o.mu.Unlock()
	if o.watcher != nil {
		if err := o.watcher.Start(); err != nil {
			cancel()
			return fmt.Errorf("orchestrator: watch the policy file: %w", err)
		}
	}
	o.startPlugins(ctx, o.policy.Load())
	o.tick(runCtx) // a first Snapshot before anything connects
	o.loops.Add(1)
	go o.tickLoop(runCtx)
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("orchestrator: %w", err)
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

// Stop closes the gateway connection resumably (close code 4000), stops the
// monitor and the tick, closes the event bus after delivering what is
// queued, and waits for every goroutine lifeline started, or for ctx.
func (o *Orchestrator) Stop(ctx context.Context) error {
	var err error
	o.stopOnce.Do(func() {
		o.mu.Lock()
		c, cancel := o.conn, o.cancel
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
		if c != nil {
			err = c.Stop(ctx)
		}
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

// Session returns the discordgo Session the bot adds handlers to and calls
// REST with. It stays the same Session for the system's life: recoveries
// happen underneath it. It exists from New on, so handlers added before
// Start see READY.
func (o *Orchestrator) Session() *discordgo.Session {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn != nil {
		return o.conn.Session()
	}
	return o.cfg.Session
}

// Connection returns the managed connection, nil before Start.
func (o *Orchestrator) Connection() *conn.Connection {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conn
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

// HealthMonitor returns the health monitor, to add or reconfigure checks.
func (o *Orchestrator) HealthMonitor() *health.Monitor { return o.mon }

// CircuitBreaker returns the breaker that guards connection attempts.
func (o *Orchestrator) CircuitBreaker() *breaker.Breaker { return o.brk }

// Recorder returns the metrics Recorder the Snapshots are built from.
func (o *Orchestrator) Recorder() *metrics.Recorder { return o.rec }

// Policy returns the policy in force.
func (o *Orchestrator) Policy() *policy.Policy { return o.policy.Load() }

// Snapshot returns the Snapshot of the last tick (a fresh one before the
// first tick).
func (o *Orchestrator) Snapshot() metrics.Snapshot {
	if s := o.snapshot.Load(); s != nil {
		return *s
	}
	return o.rec.Build()
}

// Decision returns the policy's Decision at the last tick.
func (o *Orchestrator) Decision() policy.Decision {
	if d := o.decision.Load(); d != nil {
		return *d
	}
	return policy.Decision{}
}

// SetPolicy puts a new policy in force without losing any state: the
// breaker takes its new settings live (breaker.Update), the monitor its
// new schedule, and the next tick evaluates the new conditions. Connection
// settings (intents, backoff) apply to the next Start.
func (o *Orchestrator) SetPolicy(p *policy.Policy) error {
	if p == nil {
		return errors.New("orchestrator: SetPolicy: nil policy")
	}
	o.brk.Update(breakerSettings(p.CircuitBreaker, o.clk, o.bus))
	for _, c := range p.Health.Checks {
		if c.Type == "" {
			continue
		}
		cfg := health.CheckConfig{Interval: p.Health.Interval, Timeout: p.Health.Timeout,
			Retries: retries(p.Health.Retries), Critical: c.Critical}
		if err := o.mon.Configure(c.Name, cfg); err != nil {
			chk, cerr := builtinCheck(c)
			if cerr != nil {
				return fmt.Errorf("orchestrator: check %q: %w", c.Name, cerr)
			}
			if err := o.mon.Add(c.Name, chk, cfg); err != nil {
				return fmt.Errorf("orchestrator: check %q: %w", c.Name, err)
			}
			continue
		}
		chk, err := builtinCheck(c)
		if err != nil {
			return fmt.Errorf("orchestrator: check %q: %w", c.Name, err)
		}
		if err := o.mon.Replace(c.Name, chk); err != nil {
			return fmt.Errorf("orchestrator: check %q: %w", c.Name, err)
		}
	}
	if err := o.registerPlugins(p); err != nil {
		return err
	}
	if err := o.setEnginePolicy(p); err != nil {
		return err
	}
	o.dropUnusedChecks(p)
	o.policy.Store(p)
	o.mu.Lock()
	live := o.state == running
	o.mu.Unlock()
	if live {
		o.startPlugins(context.Background(), p)
	}
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
	m := o.brk.Metrics()
	o.rec.SetBreaker(metrics.BreakerView{State: m.State.String(), Failures: m.FailuresInWindow, Rejections: m.Rejections})
	o.rec.SetHealth(o.mon.View())
	o.degradeView()
	s := o.rec.Build()
	p := o.policy.Load()
	d := p.Evaluate(&s)
	o.applyDecision(ctx, p, d)
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

// record feeds events into the Recorder: the state machine's state,
// failed connection attempts, close codes and reconnects.
func (o *Orchestrator) record(e events.Event) {
	switch d := e.Data.(type) {
	case events.StateChange:
		o.rec.SetGatewayState(d.To, d.To == conn.Ready.String())
	case events.Error:
		if d.Source == "conn" {
			o.rec.OperationFailed()
		}
		if d.CloseCode != 0 {
			o.rec.CloseCode(d.CloseCode)
		}
	case events.Recovery:
		if !d.Completed {
			o.rec.ReconnectStarted()
		}
	}
}

func retries(n int) int {
	if n == 0 {
		return -1 // the policy's 0 means none; the monitor's 0 means default
	}
	return n
}

func (o *Orchestrator) addChecks(h policy.Health) error {
	for _, c := range h.Checks {
		if c.Type == "" {
			continue // a plugin's check: buildPlugins registers it
		}
		chk, err := builtinCheck(c)
		if err != nil {
			return fmt.Errorf("orchestrator: check %q: %w", c.Name, err)
		}
		if err := o.mon.Add(c.Name, chk, health.CheckConfig{Critical: c.Critical}); err != nil {
			return fmt.Errorf("orchestrator: check %q: %w", c.Name, err)
		}
	}
	return nil
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
