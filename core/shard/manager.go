package shard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Auto, as Config.ShardCount, takes the shard count Discord recommends in
// GET /gateway/bot.
const Auto = 0

var (
	// ErrNoToken is returned by New when Config.Token is empty.
	ErrNoToken = errors.New("no Discord token: set DISCORD_TOKEN (or Config.Token)")
	// ErrInvalidRange is returned (wrapped) by New or Start when the
	// shard range is empty, negative, or reaches past the shard count.
	ErrInvalidRange = errors.New("invalid shard range")
	// ErrAlreadyStarted is returned by Start on a Manager started before.
	ErrAlreadyStarted = errors.New("already started")
	// ErrStopped is returned by Start when Stop was called before or
	// during it, and by AddShard and RemoveShard after Stop.
	ErrStopped = errors.New("manager stopped")
	// ErrNotDynamic is returned by AddShard and RemoveShard on a Manager
	// whose Config.Dynamic is false (its shards are its range).
	ErrNotDynamic = errors.New("the manager runs a fixed range of shards (Config.Dynamic is false)")
	// ErrNotRunning is returned by AddShard and RemoveShard before Start
	// has returned successfully.
	ErrNotRunning = errors.New("the manager is not running (Start has not returned)")
	// ErrShardRunning is returned by AddShard for a shard the manager
	// runs already.
	ErrShardRunning = errors.New("shard already running")
	// ErrNoSuchShard is returned by RemoveShard for a shard the manager
	// does not run, and by AddShard for an ID outside the shard count.
	ErrNoSuchShard = errors.New("no such shard")
)

// Range is the shards one process runs: IDs First to Last, both included,
// out of the bot's shard count ("shards = [0, 15] of total = 64").
type Range struct {
	First, Last int
}

// Len returns how many shards the range holds.
func (r Range) Len() int { return r.Last - r.First + 1 }

// Contains reports whether shard id is in the range.
func (r Range) Contains(id int) bool { return id >= r.First && id <= r.Last }

// String returns "[first, last]".
func (r Range) String() string { return fmt.Sprintf("[%d, %d]", r.First, r.Last) }

// validate checks r against a shard count.
func (r Range) validate(count int) error {
	if r.First < 0 || r.Last < r.First || r.Last >= count {
		return fmt.Errorf("%w: %s of %d shards (want 0 <= first <= last < %d)", ErrInvalidRange, r, count, count)
	}
	return nil
}

// Progress reports one more shard READY during Start.
type Progress struct {
	// Shard is the shard that just became READY.
	Shard int
	// Ready counts the shards READY so far; Total is how many Start
	// brings up (the range's length).
	Ready, Total int
	// Elapsed is the time since Start began, on the manager's clock.
	Elapsed time.Duration
}

// String returns e.g. "5 of 8 shards READY".
func (p Progress) String() string {
	return fmt.Sprintf("%d of %d shards READY", p.Ready, p.Total)
}

// Config configures a Manager. Token is required; every other field has
// the default its comment states.
type Config struct {
	// Token is the bot token, without "Bot ". It is a secret: lifeline
	// never logs, prints or exports it.
	Token string
	// ShardCount is the bot's total number of shards. Default: Auto (0),
	// the count /gateway/bot recommends (1 when /gateway/bot is skipped).
	ShardCount int
	// Range is the shards this process runs. Default: nil, every shard
	// from 0 to ShardCount-1.
	Range *Range
	// Dynamic makes the Manager start no shard of its own: Start
	// resolves the shard count, the gateway and the identify queue and
	// returns, and the shards it runs are those AddShard starts and
	// RemoveShard stops, any set of IDs below the count, given to it by a
	// fleet coordinator (see CoordHandler). Range must be nil. A shard
	// closed with 4011 fails with that error: the fleet shares one count,
	// so one process cannot re-shard. Default: false.
	Dynamic bool
	// Holds, when set, is asked before every reconnect of a shard (every
	// attempt after its first): the attempt waits, asking again every
	// HoldPoll, until Holds returns true, and only then waits in the
	// reconnect gate. A fleet sets it to its Ownership().Holds, so a
	// process whose lease has expired does not reconnect (RESUME or
	// IDENTIFY) a shard another process may run by now. Default: nil,
	// never wait.
	Holds func(shard int) bool
	// HoldPoll is how often a reconnect waiting for Holds asks again.
	// Default: 100ms.
	HoldPoll time.Duration
	// Conn is the template of every shard's connection settings: intents,
	// handshake timeout, zombie factor, backoff, attempt limit, watchdog,
	// Rand, GatewayDialer (shared by the shards when set) and GatewayURL
	// (which overrides /gateway/bot's). The manager sets the rest per
	// shard: Token, ShardID, ShardCount, Session, RESTTransport, Clock,
	// Events, Logger, Breaker, IdentifyQueue and ReconnectGate; Observer,
	// when set, receives every shard's wire observations after the
	// manager's own. Default: the zero conn.Config (conn's defaults).
	Conn conn.Config
	// Gateway, when set, is used instead of asking GET /gateway/bot (the
	// caller asked already). Default: nil, ask at Start.
	Gateway *GatewayBot
	// SkipGatewayBot skips GET /gateway/bot: the gateway is Conn.GatewayURL
	// (or Discord's), the shard count 1 unless ShardCount says otherwise,
	// and the budget Discord's default (1000 a day, max_concurrency 1).
	// Default: false.
	SkipGatewayBot bool
	// RESTTransport sends every shard's REST requests: one RoundTripper,
	// one connection pool, wrapped once in lifeline's observing transport;
	// the shards' Sessions also share one discordgo rate limiter, so
	// Discord's per-route limits are tracked once for the bot. Default: a
	// clone of http.DefaultTransport.
	RESTTransport http.RoundTripper
	// RESTBaseURL sends requests aimed at discord.com to another base URL
	// (the fake Discord). Default: "" (Discord itself).
	RESTBaseURL string
	// RESTObserver, when set, receives every REST result of the shared
	// transport after the process Recorder has counted it (for telemetry).
	// It runs on the request's goroutine and must not block. Default: nil.
	RESTObserver conn.RESTObserver
	// NewSession returns the discordgo Session for a shard, so a bot can
	// set presence or state options per shard. The manager sets its
	// shard, token, client, dialer and rate limiter, and adds the
	// handlers given to AddHandler. Default: discordgo.New.
	NewSession func(shard int) (*discordgo.Session, error)
	// IdentifyQueue paces every shard's IDENTIFYs and holds the daily
	// budget; it is shared by all shards (and, with a fleet-wide
	// implementation, by several processes). If it has a
	// Remaining() (int, time.Time) or CheckBudget(int) error method
	// (conn.LocalIdentifyQueue has both), Start checks the budget with it.
	// Default: a conn.LocalIdentifyQueue built from /gateway/bot's
	// session_start_limit.
	IdentifyQueue conn.IdentifyQueue
	// IdentifyWindow is the time between two IDENTIFYs of one bucket for
	// the default queue. Default: 5s, Discord's; the fake scales it down.
	IdentifyWindow time.Duration
	// IdentifyMargin is added to IdentifyWindow by the default queue.
	// Default: conn.DefaultIdentifyMargin(IdentifyWindow) (IdentifyWindow/20,
	// at least conn.MinIdentifyMargin).
	IdentifyMargin time.Duration
	// OnBudgetLow is called by the default queue each time a session
	// start leaves less than a tenth of the budget. Default: a warning in
	// the log.
	OnBudgetLow func(remaining int, resetAt time.Time)
	// Gate spreads the shards' reconnects (see Gate). A manager running a
	// single shard uses no gate: there is nothing to spread. Default: the
	// zero GateSettings, with Clock from this Config.
	Gate GateSettings
	// ReconnectGate replaces the Gate entirely (for instance a fleet-wide
	// one), single shard included. Default: nil, a Gate from Gate.
	ReconnectGate conn.ReconnectGate
	// Breaker is the template of each shard's circuit breaker, which
	// guards that shard's connection attempts. Name defaults to "gateway";
	// Clock and Events are set by the manager (events carry the shard).
	// SetBreakerSettings changes it live. Default: breaker defaults.
	Breaker breaker.Settings
	// NewBreaker, when set, returns the circuit breaker of a shard (for
	// instance one made before Start, so the bot can hold it early); nil
	// means one from the Breaker template. The manager never changes a
	// breaker it did not make except through SetBreakerSettings. Its
	// events should carry the shard. Default: nil.
	NewBreaker func(shard int) *breaker.Breaker
	// Metrics is the template of each shard's Recorder and of the process
	// Recorder (Window, Buckets). ShardID, ShardCount, Clock and Parent are
	// set by the manager.
	Metrics metrics.Options
	// NewMonitor, when set, builds a shard's health monitor (nil for
	// none). source returns the shard's Snapshot. The monitor should
	// publish to the same Publisher with Shard set to the shard's ID. The
	// manager never starts it: Tick runs its due checks. Default: nil, no
	// monitor (a shard's condition then comes from its connection and
	// breaker alone, or from a health verdict its owner sets on the
	// shard's Recorder).
	NewMonitor func(shard int, source func() metrics.Snapshot) (*health.Monitor, error)
	// TuneShard, when set, adjusts a shard's connection settings last,
	// after the template and the manager's own: for per-shard parts such
	// as a recovery Planner bound to that shard. Changing what the manager
	// set (the queue, the gate, Events, Observer) takes that shard out of
	// the manager's pacing or metrics. Default: nil.
	TuneShard func(shard int, c *conn.Config)
	// OnProgress is called on Start's goroutine each time one more shard
	// is READY ("5 of 8 shards READY"). Default: nothing.
	OnProgress func(Progress)
	// Clock drives every timer. Default: clock.Real.
	Clock clock.Clock
	// Events receives every shard's events (each with its Shard set).
	// Default: none.
	Events events.Publisher
	// Logger receives the manager's and the shards' logs. Default:
	// hclog's null logger.
	Logger hclog.Logger
}

// Manager runs a range of a bot's shards in one process: one managed
// connection per shard, each with its own breaker, Recorder and state,
// sharing one REST transport and rate limiter, one identify queue and one
// reconnect gate. Create it with New, add handlers, then Start and Stop.
type Manager struct {
	cfg     Config
	clk     clock.Clock
	log     hclog.Logger
	pub     events.Publisher
	rest    *conn.Transport
	procRec *metrics.Recorder
	gate    *Gate // nil when Config.ReconnectGate replaces it
	rgate   conn.ReconnectGate
	limiter *discordgo.RateLimiter

	mu       sync.Mutex
	state    runState
	handlers []*handlerEntry
	// shards is sorted by ID and copy-on-write: AddShard and RemoveShard
	// build a new slice, never write the old one, so a reader may keep
	// the slice it read under mu after unlocking (View, Stop,
	// SetBreakerSettings do).
	shards   []*Shard
	count    int
	rng      Range
	gw       *GatewayBot
	queue    conn.IdentifyQueue
	pacer    *pacer
	cancel   context.CancelFunc
	launches sync.WaitGroup
	// life ends at Stop; background re-shards run under it, counted by bg.
	life       context.Context
	lifeCancel context.CancelFunc
	bg         sync.WaitGroup
	resharding bool
	// adding holds the IDs AddShard is building (not yet in shards).
	adding map[int]bool
	// closing counts removed shards whose Session is still closing.
	closing  sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
	stopDone chan struct{}
}

type runState int

const (
	idle runState = iota
	starting
	running
	stopped
)

type handlerEntry struct {
	h any
	// removes takes the handler off each shard's Session.
	removes map[*Shard]func()
}

// New checks cfg and prepares a Manager; nothing connects until Start.
func New(cfg Config) (*Manager, error) {
	if cfg.Token == "" {
		return nil, fmt.Errorf("shard: %w", ErrNoToken)
	}
	if cfg.ShardCount < 0 {
		return nil, fmt.Errorf("shard: negative shard count %d", cfg.ShardCount)
	}
	if cfg.Dynamic && cfg.Range != nil {
		return nil, fmt.Errorf("shard: %w: Dynamic takes its shards from AddShard, not from Range %s", ErrInvalidRange, *cfg.Range)
	}
	if cfg.Range != nil {
		if cfg.ShardCount != Auto {
			if err := cfg.Range.validate(cfg.ShardCount); err != nil {
				return nil, fmt.Errorf("shard: %w", err)
			}
		} else if err := cfg.Range.validate(int(^uint(0) >> 1)); err != nil {
			return nil, fmt.Errorf("shard: %w", err)
		}
	}
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	m := &Manager{
		cfg:      cfg,
		clk:      cfg.Clock,
		log:      cfg.Logger.Named("shards"),
		pub:      events.OrDiscard(cfg.Events),
		limiter:  discordgo.NewRatelimiter(),
		stopDone: make(chan struct{}),
	}
	m.life, m.lifeCancel = context.WithCancel(context.Background())
	m.procRec = metrics.NewRecorder(metrics.Options{Clock: cfg.Clock, Window: cfg.Metrics.Window,
		Buckets: cfg.Metrics.Buckets, ShardID: events.NoShard, ShardCount: cfg.ShardCount})
	restObs := cfg.RESTObserver
	rest, err := conn.NewTransport(conn.TransportSettings{
		Base: cfg.RESTTransport,
		Observer: conn.RESTObserverFunc(func(r conn.RESTResult) {
			m.procRec.ObserveREST(r.Latency, r.Status, r.Err != nil)
			if restObs != nil {
				restObs.ObserveREST(r)
			}
		}),
		Clock:   cfg.Clock,
		BaseURL: cfg.RESTBaseURL,
	})
	if err != nil {
		return nil, fmt.Errorf("shard: REST transport: %w", err)
	}
	m.rest = rest
	m.rgate = cfg.ReconnectGate
	if m.rgate == nil {
		gs := cfg.Gate
		if gs.Clock == nil {
			gs.Clock = cfg.Clock
		}
		m.gate = NewGate(gs)
		m.rgate = m.gate
	}
	if cfg.Holds != nil {
		poll := cfg.HoldPoll
		if poll <= 0 {
			poll = 100 * time.Millisecond
		}
		m.rgate = holdGate{inner: m.rgate, holds: cfg.Holds, clk: cfg.Clock, poll: poll}
	}
	return m, nil
}

// AddHandler adds a discordgo event handler (the same kinds
// Session.AddHandler takes) to every shard's Session, those Start creates
// included: add handlers before Start to see READY. It returns a function
// that removes the handler from every Session.
func (m *Manager) AddHandler(handler any) (remove func()) {
	e := &handlerEntry{h: handler, removes: map[*Shard]func(){}}
	m.mu.Lock()
	m.handlers = append(m.handlers, e)
	for _, s := range m.shards {
		e.removes[s] = s.Session().AddHandler(handler)
	}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		for i, h := range m.handlers {
			if h == e {
				m.handlers = append(m.handlers[:i], m.handlers[i+1:]...)
				break
			}
		}
		for _, r := range e.removes {
			r()
		}
		clear(e.removes)
	}
}

// Start resolves the shard count and gateway (GET /gateway/bot unless
// told otherwise), refuses to go on when the session-start budget cannot
// IDENTIFY every shard of the range (an error wrapping
// conn.ErrSessionStartLimit, with the reset time, before any IDENTIFY),
// then brings the shards up in identify order: the first shard of each
// bucket (shard_id % max_concurrency) at once, each next one of a bucket
// dialling when the one before it has its turn in the identify queue, a
// window before its own. It returns
// when every shard is READY, or with the first shard's error (everything
// started is then stopped) or ctx's error. The shards keep running and
// recovering after Start returns, until Stop.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	switch m.state {
	case stopped:
		m.mu.Unlock()
		return fmt.Errorf("shard: %w", ErrStopped)
	case idle:
	default:
		m.mu.Unlock()
		return fmt.Errorf("shard: %w", ErrAlreadyStarted)
	}
	m.state = starting
	startCtx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	m.mu.Unlock()

	err := m.start(startCtx)
	cancel()
	m.mu.Lock()
	if err == nil && m.state == stopped {
		err = fmt.Errorf("shard: %w", ErrStopped)
	}
	if err == nil {
		m.state = running
	}
	m.mu.Unlock()
	return err
}

func (m *Manager) start(ctx context.Context) error {
	gw, err := m.gateway(ctx)
	if err != nil {
		return err
	}
	count := m.cfg.ShardCount
	if count == Auto {
		count = max(gw.Shards, 1)
	}
	queue := m.cfg.IdentifyQueue
	if queue == nil {
		onLow := m.cfg.OnBudgetLow
		if onLow == nil {
			onLow = func(remaining int, resetAt time.Time) {
				m.log.Warn("the daily session-start budget is running out: each new IDENTIFY spends one",
					"remaining", remaining, "resets_at", resetAt.UTC().Format(time.RFC3339))
			}
		}
		queue = conn.NewLocalIdentifyQueue(gw.Limit, conn.IdentifyQueueOptions{Clock: m.clk,
			Window: m.cfg.IdentifyWindow, Margin: m.cfg.IdentifyMargin, OnLow: onLow})
	}
	m.mu.Lock()
	m.gw, m.queue = gw, queue
	m.pacer = newPacer(m.clk, m.cfg.IdentifyWindow, m.cfg.IdentifyMargin, gw.Limit.MaxConcurrency)
	if m.cfg.Dynamic {
		// No shard yet: AddShard brings them, and each IDENTIFY takes its
		// session start from the queue (which refuses when none is left).
		m.count, m.rng = count, Range{First: 0, Last: count - 1}
		m.mu.Unlock()
		m.log.Info("shard manager ready for shards", "of", count, "max_concurrency", max(gw.Limit.MaxConcurrency, 1))
		return nil
	}
	m.mu.Unlock()
	return m.bringUpResharding(ctx, count, 0)
}

// MaxReshards is how many times in a row the manager re-shards after
// close code 4011 before it gives up and reports the error.
const MaxReshards = 3

// bringUpResharding brings count shards up and, when Discord answers 4011
// (sharding required) and the manager may re-shard, stops them all and
// brings up the next count, up to MaxReshards times.
func (m *Manager) bringUpResharding(ctx context.Context, count, reshards int) error {
	for ; ; reshards++ {
		err := m.bringUp(ctx, count)
		if err == nil || !errors.Is(err, conn.ErrShardingRequired) || !m.mayReshard() {
			return err
		}
		if reshards >= MaxReshards {
			return fmt.Errorf("shard: still sharding required after %d re-shards (%d shards): %w", reshards, count, err)
		}
		next, ferr := m.nextCount(ctx, count)
		if ferr != nil {
			return fmt.Errorf("shard: re-shard after %v: %w", err, ferr)
		}
		count = next
	}
}

// mayReshard reports whether the manager chooses the shard count itself:
// Auto, and this process runs every shard (with a range, the other
// processes' shards would have to change too).
func (m *Manager) mayReshard() bool {
	return m.cfg.ShardCount == Auto && m.cfg.Range == nil && !m.cfg.Dynamic
}

// nextCount is the shard count after a 4011: what /gateway/bot recommends
// now when that is more, else twice the current count (which keeps a
// count Discord assigned a multiple of, as very large bots need).
func (m *Manager) nextCount(ctx context.Context, count int) (int, error) {
	rec := 0
	if !m.cfg.SkipGatewayBot {
		gw, err := FetchGatewayBot(ctx, &http.Client{Transport: m.rest, Timeout: 20 * time.Second}, m.cfg.Token)
		if err != nil {
			return 0, err
		}
		rec = gw.Shards
	}
	next := count * 2
	if rec > count {
		next = rec
	}
	msg := fmt.Sprintf("Discord closed a shard with 4011 (sharding required): restarting %d shards as %d", count, next)
	m.log.Warn(msg, "recommended", rec)
	m.pub.Publish(events.New(m.clk.Now(), events.Error{Source: "shard", Kind: "resharding", Message: msg,
		CloseCode: 4011}))
	return next, nil
}

// bringUp makes and starts count shards (the range, or all), replacing
// the shards there were: it checks the budget, builds them, publishes them
// and launches them in identify order. On error, what it started is
// stopped.
func (m *Manager) bringUp(ctx context.Context, count int) error {
	rng := Range{First: 0, Last: count - 1}
	if m.cfg.Range != nil {
		rng = *m.cfg.Range
	}
	if err := rng.validate(count); err != nil {
		return fmt.Errorf("shard: %w", err)
	}
	m.mu.Lock()
	gw, queue, pc := m.gw, m.queue, m.pacer
	m.count, m.rng = count, rng
	m.mu.Unlock()
	if err := m.checkBudget(rng, count, gw); err != nil {
		return err
	}

	shards, err := m.build(gw, count, rng, queue, pc)
	if err != nil {
		stopAll(context.WithoutCancel(ctx), shards)
		return err
	}
	m.mu.Lock()
	if m.state == stopped {
		m.mu.Unlock()
		stopAll(context.WithoutCancel(ctx), shards)
		return fmt.Errorf("shard: %w", ErrStopped)
	}
	// The handlers go on in the same critical section that publishes the
	// shards, so one AddHandler reaches either these shards or the list.
	for _, e := range m.handlers {
		for _, sh := range shards {
			e.removes[sh] = sh.Session().AddHandler(e.h)
		}
	}
	m.shards = shards
	// Counted here, under the lock Stop takes to mark the manager stopped:
	// Stop then either waits for these launches or Start saw the stop.
	m.launches.Add(len(shards))
	m.mu.Unlock()
	m.log.Info("starting shards", "range", rng.String(), "of", count, "max_concurrency", max(gw.Limit.MaxConcurrency, 1))

	began := m.clk.Now()
	if err := m.launch(ctx, shards, began); err != nil {
		stopAll(context.WithoutCancel(ctx), shards)
		return err
	}
	m.log.Info("all shards READY", "shards", len(shards), "took", m.clk.Since(began))
	return nil
}

// shardFailed runs when a shard stops for good. A running manager that
// chooses its own count re-shards when the cause was 4011: Discord wants
// more shards than the bot runs (the bot grew).
func (m *Manager) shardFailed(s *Shard) {
	err := s.conn.Err()
	if !errors.Is(err, conn.ErrShardingRequired) || !m.mayReshard() {
		return
	}
	m.mu.Lock()
	if m.state != running || m.resharding {
		m.mu.Unlock()
		return
	}
	m.resharding = true
	count := m.count
	m.bg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.bg.Done()
		defer func() {
			m.mu.Lock()
			m.resharding = false
			m.mu.Unlock()
		}()
		stopAll(context.WithoutCancel(m.life), m.Shards())
		next, ferr := m.nextCount(m.life, count)
		if ferr == nil {
			ferr = m.bringUpResharding(m.life, next, 1)
		}
		if ferr != nil && m.life.Err() == nil {
			m.log.Error("re-sharding failed; the shards are stopped", "error", ferr)
			m.pub.Publish(events.New(m.clk.Now(), events.Error{Source: "shard", Kind: "resharding",
				Message: ferr.Error(), Fatal: true}))
		}
	}()
}

// gateway returns what /gateway/bot says, or what stands in for it.
func (m *Manager) gateway(ctx context.Context) (*GatewayBot, error) {
	var gw GatewayBot
	switch {
	case m.cfg.Gateway != nil:
		gw = *m.cfg.Gateway
	case m.cfg.SkipGatewayBot:
		gw = GatewayBot{Shards: 1, Limit: conn.SessionStartLimit{Total: 1000, Remaining: 1000,
			ResetAfter: 24 * time.Hour, MaxConcurrency: 1}}
	default:
		got, err := FetchGatewayBot(ctx, &http.Client{Transport: m.rest, Timeout: 20 * time.Second}, m.cfg.Token)
		if err != nil {
			return nil, fmt.Errorf("shard: %w", err)
		}
		gw = *got
		m.log.Info("gateway", "url", gw.URL, "recommended_shards", gw.Shards,
			"session_starts_remaining", gw.Limit.Remaining, "max_concurrency", gw.Limit.MaxConcurrency)
	}
	if m.cfg.Conn.GatewayURL != "" {
		gw.URL = m.cfg.Conn.GatewayURL
	}
	if gw.URL == "" {
		gw.URL = conn.DefaultGatewayURL
	}
	if gw.Limit.MaxConcurrency <= 0 {
		gw.Limit.MaxConcurrency = 1
	}
	return &gw, nil
}

// checkBudget refuses a start that would need more session starts than
// are left: every shard of the range IDENTIFYs once.
func (m *Manager) checkBudget(rng Range, count int, gw *GatewayBot) error {
	need := rng.Len()
	var remaining int
	var resetAt time.Time
	switch q := m.queue.(type) {
	case interface{ Remaining() (int, time.Time) }:
		remaining, resetAt = q.Remaining()
	case interface{ CheckBudget(int) error }:
		if err := q.CheckBudget(need); err != nil {
			return fmt.Errorf("shard: starting shards %s of %d needs %d session starts (one IDENTIFY each): %w",
				rng, count, need, err)
		}
		return nil
	default:
		remaining, resetAt = gw.Limit.Remaining, m.clk.Now().Add(gw.Limit.ResetAfter)
	}
	if remaining >= need {
		return nil
	}
	total := gw.Limit.Total
	if total <= 0 {
		total = 1000
	}
	return fmt.Errorf("shard: starting shards %s of %d needs %d session starts (one IDENTIFY each) but only %d are left until %s (in %s); refusing to start any: %w",
		rng, count, need, remaining, resetAt.UTC().Format(time.RFC3339), resetAt.Sub(m.clk.Now()).Round(time.Second),
		&conn.SessionStartLimitError{Total: total, ResetAt: resetAt})
}

// build makes every shard of the range; nothing connects yet.
func (m *Manager) build(gw *GatewayBot, count int, rng Range, queue conn.IdentifyQueue, pc *pacer) ([]*Shard, error) {
	mc := gw.Limit.MaxConcurrency
	last := make(map[int]*startSlot, mc) // bucket -> its latest shard's slot
	shards := make([]*Shard, 0, rng.Len())
	for id := rng.First; id <= rng.Last; id++ {
		s, err := m.newShard(id, count, gw, queue, pc, nil)
		if err != nil {
			return shards, err
		}
		bucket := id % mc
		s.slot = newStartSlot(last[bucket])
		last[bucket] = s.slot
		s.queue.slot = s.slot
		shards = append(shards, s)
	}
	return shards, nil
}

func (m *Manager) newShard(id, count int, gw *GatewayBot, queue conn.IdentifyQueue, pc *pacer, resume *conn.SavedSession) (*Shard, error) {
	var sess *discordgo.Session
	var err error
	if m.cfg.NewSession != nil {
		sess, err = m.cfg.NewSession(id)
	} else {
		sess, err = discordgo.New("Bot " + m.cfg.Token)
	}
	if err != nil {
		return nil, fmt.Errorf("shard %d: session: %w", id, err)
	}
	if sess == nil {
		return nil, fmt.Errorf("shard %d: NewSession returned no session", id)
	}
	sess.Ratelimiter = m.limiter

	s := &Shard{id: id, count: count, pacer: pc, queue: &orderedQueue{inner: queue, pacer: pc}, onFailed: m.shardFailed}
	mo := m.cfg.Metrics
	mo.Clock, mo.ShardID, mo.ShardCount, mo.Parent = m.clk, id, count, m.procRec
	s.rec = metrics.NewRecorder(mo)
	pub := shardEvents{sh: s, next: m.pub}
	if m.cfg.NewBreaker != nil {
		s.brk = m.cfg.NewBreaker(id)
	}
	if s.brk == nil {
		m.mu.Lock()
		bs := m.cfg.Breaker
		m.mu.Unlock()
		s.brk = breaker.New(m.breakerSettings(bs, pub))
	}

	cc := m.cfg.Conn
	cc.Token = m.cfg.Token
	cc.ShardID, cc.ShardCount = id, count
	cc.GatewayURL = gw.URL
	cc.Session = sess
	cc.RESTTransport = m.rest
	cc.Clock = m.clk
	cc.Events = pub
	cc.Logger = m.cfg.Logger
	cc.Observer = wireObserver{rec: s.rec, brk: s.brk, next: m.cfg.Conn.Observer,
		onIdentify: func(at time.Time) { pc.sent(id, at) }}
	cc.Breaker = s.brk
	cc.IdentifyQueue = s.queue
	if m.cfg.ReconnectGate != nil || m.cfg.Holds != nil || m.Range().Len() > 1 {
		cc.ReconnectGate = m.rgate
	}
	cc.Resume = resume
	if m.cfg.TuneShard != nil {
		m.cfg.TuneShard(id, &cc)
	}
	c, err := conn.New(cc)
	if err != nil {
		return nil, fmt.Errorf("shard %d: %w", id, err)
	}
	s.conn = c
	if m.cfg.NewMonitor != nil {
		mon, err := m.cfg.NewMonitor(id, s.source)
		if err != nil {
			_ = c.Stop(context.Background()) // never started: returns at once
			return nil, fmt.Errorf("shard %d: health monitor: %w", id, err)
		}
		s.mon = mon
	}
	return s, nil
}

type startResult struct {
	s   *Shard
	err error
}

// launch starts every shard, each once the shard before it in its bucket
// has had its turn in the identify queue (a whole window before its own),
// and waits until all are READY or one fails. The caller has counted the
// shards in m.launches.
func (m *Manager) launch(ctx context.Context, shards []*Shard, began time.Time) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan startResult, len(shards))
	for _, s := range shards {
		go func() {
			defer m.launches.Done()
			if p := s.slot.pred; p != nil {
				select {
				case <-p.passed:
				case <-ctx.Done():
				}
			}
			if err := ctx.Err(); err != nil {
				s.slot.pass()
				results <- startResult{s, err}
				return
			}
			results <- startResult{s, s.conn.Start(ctx)}
		}()
	}
	var first error
	ready := 0
	for range shards {
		r := <-results
		if r.err != nil {
			if first == nil {
				if ctx.Err() != nil && errors.Is(r.err, ctx.Err()) {
					first = fmt.Errorf("shard: start interrupted with %d of %d shards READY: %w", ready, len(shards), r.err)
				} else {
					first = fmt.Errorf("shard: shard %d of %d did not start: %w", r.s.id, r.s.count, r.err)
				}
				cancel()
			}
			continue
		}
		if first != nil {
			continue
		}
		ready++
		if m.cfg.OnProgress != nil {
			m.cfg.OnProgress(Progress{Shard: r.s.id, Ready: ready, Total: len(shards), Elapsed: m.clk.Since(began)})
		}
	}
	return first
}

// stopAll stops shards in parallel and waits for all of them.
func stopAll(ctx context.Context, shards []*Shard) error {
	errs := make([]error, len(shards))
	var wg sync.WaitGroup
	for i, s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.conn.Stop(ctx); err != nil {
				errs[i] = fmt.Errorf("shard %d: %w", s.id, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Stop stops every shard in parallel, each closing resumably (close code
// 4000, as conn.Connection.Stop does), ends a Start in progress, and waits
// for every goroutine the manager and its shards started, or for ctx.
// Calling it again returns the first call's result once that is done.
func (m *Manager) Stop(ctx context.Context) error {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		m.state = stopped
		cancel := m.cancel
		m.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		m.lifeCancel()
		// Start either published its shards before seeing the stop or
		// will stop them itself; wait for its launches, then stop what
		// is published.
		done := make(chan struct{})
		go func() {
			m.bg.Wait()
			m.launches.Wait()
			m.mu.Lock()
			shards := m.shards
			m.mu.Unlock()
			m.stopErr = stopAll(ctx, shards)
			m.closing.Wait()
			m.rest.CloseIdleConnections()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			m.stopErr = fmt.Errorf("shard: stop: %w", ctx.Err())
			go func() { <-done; close(m.stopDone) }()
			return
		}
		close(m.stopDone)
	})
	select {
	case <-m.stopDone:
		return m.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shards returns the shards in ID order; nil before Start.
func (m *Manager) Shards() []*Shard {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Shard(nil), m.shards...)
}

// Shard returns shard id, or nil when this process does not run it (or
// before Start).
func (m *Manager) Shard(id int) *Shard {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i, ok := m.indexOf(id); ok {
		return m.shards[i]
	}
	return nil
}

// indexOf finds shard id in m.shards (sorted by ID): its index, or where
// it would go. Called with m.mu held.
func (m *Manager) indexOf(id int) (int, bool) {
	i := sort.Search(len(m.shards), func(i int) bool { return m.shards[i].id >= id })
	return i, i < len(m.shards) && m.shards[i].id == id
}

// ShardForGuild returns the shard of this process that receives guildID's
// events ((guild_id >> 22) % shard count), or nil when another process
// runs it, the ID is not a snowflake, or before Start.
func (m *Manager) ShardForGuild(guildID string) *Shard {
	id, err := strconv.ParseUint(guildID, 10, 64)
	if err != nil {
		return nil
	}
	m.mu.Lock()
	count := m.count
	m.mu.Unlock()
	if count == 0 {
		return nil
	}
	return m.Shard(int((id >> 22) % uint64(count)))
}

// Count returns the bot's total shard count: Config.ShardCount, or what
// /gateway/bot recommended; 0 before Start with Auto.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.count == 0 {
		return m.cfg.ShardCount
	}
	return m.count
}

// Range returns the shards this process runs; the zero Range before Start.
// A Dynamic manager returns every shard of the count, the shards it may be
// given (Shards lists those it runs).
func (m *Manager) Range() Range {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rng
}

// Gateway returns what /gateway/bot said (or what stood in for it), nil
// before Start.
func (m *Manager) Gateway() *GatewayBot {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gw == nil {
		return nil
	}
	gw := *m.gw
	return &gw
}

// SessionStarts returns the session starts left and when the budget
// resets, when the identify queue can tell (ok false otherwise, and
// before Start).
func (m *Manager) SessionStarts() (remaining int, resetAt time.Time, ok bool) {
	m.mu.Lock()
	q := m.queue
	m.mu.Unlock()
	if r, is := q.(interface{ Remaining() (int, time.Time) }); is {
		remaining, resetAt = r.Remaining()
		return remaining, resetAt, true
	}
	return 0, time.Time{}, false
}

// IdentifyQueue returns the identify queue the shards share; nil before
// Start.
func (m *Manager) IdentifyQueue() conn.IdentifyQueue {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.queue
}

// Gate returns the reconnect gate the shards share, nil when
// Config.ReconnectGate replaced it.
func (m *Manager) Gate() *Gate { return m.gate }

// REST returns the RoundTripper every shard's REST requests go through
// (lifeline's observing transport around Config.RESTTransport).
func (m *Manager) REST() http.RoundTripper { return m.rest }

// Recorder returns the process Recorder: the shared REST transport
// reports to it, and it is the Parent of every shard's Recorder, so its
// Snapshots hold the process's REST figures and its errors pooled over
// REST and every shard (the shards' own Recorders hold their gateway
// figures). Its owner may set the process's health and degradation on it
// (View.Snapshot reads them).
func (m *Manager) Recorder() *metrics.Recorder { return m.procRec }

// breakerSettings completes a breaker template for one shard.
func (m *Manager) breakerSettings(bs breaker.Settings, pub events.Publisher) breaker.Settings {
	if bs.Name == "" {
		bs.Name = "gateway"
	}
	bs.Clock, bs.Events = m.clk, pub
	return bs
}

// SetBreakerSettings puts new breaker settings in force: the template of
// the breakers made from now on (after a re-shard) and, live, every
// running shard's breaker (breaker.Update: state and counters are kept;
// Name, Clock and Events are not changed).
func (m *Manager) SetBreakerSettings(bs breaker.Settings) {
	m.mu.Lock()
	m.cfg.Breaker = bs
	shards := m.shards
	m.mu.Unlock()
	for _, s := range shards {
		s.brk.Update(bs)
	}
}

// Shard is one shard of a Manager: its connection, Session, breaker,
// Recorder and optional health monitor.
type Shard struct {
	id, count int
	conn      *conn.Connection
	rec       *metrics.Recorder
	brk       *breaker.Breaker
	mon       *health.Monitor
	queue     *orderedQueue
	pacer     *pacer
	slot      *startSlot
	onFailed  func(*Shard)
	everReady atomic.Bool
	// launched is closed when AddShard's start of the connection has
	// returned, cancelStart ends that start (nil for shards of a range).
	launched    chan struct{}
	cancelStart context.CancelFunc
}

// ID returns the shard's ID.
func (s *Shard) ID() int { return s.id }

// Count returns the bot's shard count the shard was started with.
func (s *Shard) Count() int { return s.count }

// Connection returns the shard's managed connection (to Recover it).
func (s *Shard) Connection() *conn.Connection { return s.conn }

// Session returns the shard's discordgo Session; it stays the same for
// the shard's life.
func (s *Shard) Session() *discordgo.Session { return s.conn.Session() }

// State returns the connection's state.
func (s *Shard) State() conn.State { return s.conn.State() }

// Recorder returns the shard's metrics Recorder.
func (s *Shard) Recorder() *metrics.Recorder { return s.rec }

// Breaker returns the circuit breaker guarding the shard's connection
// attempts.
func (s *Shard) Breaker() *breaker.Breaker { return s.brk }

// Monitor returns the shard's health monitor, nil without
// Config.NewMonitor.
func (s *Shard) Monitor() *health.Monitor { return s.mon }

// source is the health monitor's Source: the breaker's figures and the
// Recorder's Snapshot (the monitor's own verdict is set by Tick).
func (s *Shard) source() metrics.Snapshot {
	s.setBreaker()
	return s.rec.Build()
}

func (s *Shard) setBreaker() {
	bm := s.brk.Metrics()
	s.rec.SetBreaker(metrics.BreakerView{State: bm.State.String(), Failures: bm.FailuresInWindow, Rejections: bm.Rejections})
}

// Snapshot builds the shard's Snapshot now, with its breaker's figures and
// its monitor's latest verdict.
func (s *Shard) Snapshot() metrics.Snapshot {
	s.setBreaker()
	if s.mon != nil {
		s.rec.SetHealth(s.mon.View())
	}
	return s.rec.Build()
}
