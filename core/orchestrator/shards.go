package orchestrator

import (
	"errors"
	"fmt"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/gateway"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/shard"
	"github.com/lifeline-bot/lifeline/core/telemetry"
)

// ShardRange is the shards one process runs, First to Last inclusive, out
// of the bot's shard count.
type ShardRange = shard.Range

// ShardProgress reports one more shard READY during Start ("5 of 8 shards
// READY").
type ShardProgress = shard.Progress

// ShardView is every shard of the process at one moment, with their
// aggregate.
type ShardView = shard.View

// ErrShardConfig is returned (wrapped) by New when the shard count, range
// or ID is invalid.
var ErrShardConfig = errors.New("invalid shard configuration")

// shardPlan is what New resolved of Config's shard fields: the count to
// ask the manager for (shard.Auto for Discord's recommendation), the range
// (nil for every shard) and the first shard this process runs.
type shardPlan struct {
	count int
	rng   *shard.Range
	first int
}

// planShards resolves Config.ShardCount, ShardRange and ShardID, and the
// policy's connection.shards, as Config's comments describe.
func planShards(cfg *Config) (shardPlan, error) {
	count := cfg.ShardCount
	if count < 0 {
		return shardPlan{}, fmt.Errorf("%w: negative shard count %d", ErrShardConfig, count)
	}
	if count == shard.Auto && cfg.Policy != nil && cfg.Policy.Connection.Shards > 0 {
		count = cfg.Policy.Connection.Shards
	}
	rng := cfg.ShardRange
	if rng == nil && cfg.ShardID != 0 {
		if cfg.ShardID < 0 {
			return shardPlan{}, fmt.Errorf("%w: negative shard ID %d", ErrShardConfig, cfg.ShardID)
		}
		rng = &shard.Range{First: cfg.ShardID, Last: cfg.ShardID}
	}
	if rng != nil {
		r := *rng
		if r.First < 0 || r.Last < r.First || (count != shard.Auto && r.Last >= count) {
			return shardPlan{}, fmt.Errorf("%w: shards %s of %d (want 0 <= first <= last < count)", ErrShardConfig, r, count)
		}
		rng = &r
	}
	p := shardPlan{count: count, rng: rng}
	if rng != nil {
		p.first = rng.First
	}
	return p, nil
}

// newManager builds the shard manager from the resolved plan and the
// policy in force at New; nothing connects until Start.
func (o *Orchestrator) newManager(mask discordgo.Intent) error {
	p := o.cfg.Policy
	cc := connConfig(p.Connection)
	cc.Token = o.cfg.Token
	cc.Intents = mask
	cc.GatewayURL = o.cfg.GatewayURL
	cc.GatewayDialer = o.cfg.GatewayDialer
	cc.Clock, cc.Events, cc.Logger = o.clk, o.bus, o.cfg.Logger
	cc.Observer = telemetryObserver{tel: o.tel}
	if o.cfg.Tune != nil {
		o.cfg.Tune(&cc)
		o.cfg.Tune = nil
	}
	sc := shard.Config{
		Token:          o.cfg.Token,
		ShardCount:     o.plan.count,
		Range:          o.plan.rng,
		Conn:           cc,
		SkipGatewayBot: o.cfg.SkipGatewayBot,
		RESTTransport:  o.cfg.RESTTransport,
		RESTBaseURL:    o.cfg.RESTBaseURL,
		RESTObserver:   conn.RESTObserverFunc(o.tel.ObserveREST),
		NewSession:     o.newSession,
		IdentifyWindow: o.cfg.IdentifyWindow,
		OnBudgetLow:    o.budgetLow,
		Breaker:        breakerSettings(p.CircuitBreaker, o.clk, o.bus),
		NewBreaker: func(id int) *breaker.Breaker {
			if id == o.plan.first {
				return o.brk
			}
			return nil
		},
		Metrics:    metrics.Options{Window: o.cfg.MetricsWindow},
		NewMonitor: o.newShardMonitor,
		TuneShard:  o.tuneShard,
		OnProgress: o.cfg.OnShardProgress,
		Clock:      o.clk,
		Events:     o.bus,
		Logger:     o.cfg.Logger,
	}
	if err := o.fleetManagerConfig(&sc); err != nil { // with a coordination block (fleet.go)
		return fmt.Errorf("orchestrator: %w", err)
	}
	m, err := shard.New(sc)
	if err != nil {
		return fmt.Errorf("orchestrator: %w", err)
	}
	o.mgr = m
	return nil
}

// newSession gives the first shard the Session made at New (the one the
// bot added its handlers to), once; every other shard, and the first
// after a re-shard, a new one.
func (o *Orchestrator) newSession(id int) (*discordgo.Session, error) {
	if id == o.plan.first && o.firstSession.CompareAndSwap(false, true) {
		return o.cfg.Session, nil
	}
	if o.cfg.NewSession != nil {
		return o.cfg.NewSession(id)
	}
	return discordgo.New("Bot " + o.cfg.Token)
}

// tuneShard points a shard's connection at the process's engines: its
// REST calls go through the degrade Transport (read-only mode, cache,
// concurrency limit, scaled timeouts) before the shared observing
// transport, the handshake deadline follows increase_timeouts, and the
// recovery engine plans every recovery of the shard.
func (o *Orchestrator) tuneShard(id int, cc *conn.Config) {
	cc.RESTTransport = o.eng.kit.Transport
	cc.RESTTimeout = -1 // the degrade Transport bounds each call, scaled by increase_timeouts
	cc.TimeoutScale = o.eng.kit.Timeouts.Scale
	cc.Planner = o.eng.recov.ConnPlanner(id)
}

// multi reports whether the process runs more than one shard (false
// before Start: a process is one shard until its manager says otherwise).
func (o *Orchestrator) multi() bool { return o.mgr != nil && o.mgr.Range().Len() > 1 }

// processShard is the Shard of process-wide events that used to concern
// the one shard: the shard itself when the process runs one, NoShard
// when it runs several.
func (o *Orchestrator) processShard() int {
	if o.multi() {
		return events.NoShard
	}
	return o.plan.first
}

// stampShard is the Publisher of the first shard's breaker (made at New,
// before the manager): its events carry the shard.
type stampShard struct {
	next  events.Publisher
	shard int
}

func (p stampShard) Publish(e events.Event) {
	if e.Shard == events.NoShard {
		e.Shard = p.shard
	}
	p.next.Publish(e)
}

// processEvents is the Publisher of the process health monitor: with one
// shard its events concern that shard (as they always did), with several
// the whole process.
type processEvents struct{ o *Orchestrator }

func (p processEvents) Publish(e events.Event) {
	e.Shard = p.o.processShard()
	p.o.bus.Publish(e)
}

// budgetLow warns that the daily session-start budget is running out.
func (o *Orchestrator) budgetLow(remaining int, resetAt time.Time) {
	o.log.Warn("the daily session-start budget is running out: each new IDENTIFY spends one",
		"remaining", remaining, "resets_at", resetAt.UTC().Format(time.RFC3339))
	o.bus.Publish(events.ForShard(o.clk.Now(), o.processShard(), events.Error{Source: "identify", Kind: "budget_low",
		Message: fmt.Sprintf("%d session starts left until %s", remaining, resetAt.UTC().Format(time.RFC3339))}))
}

// newShardMonitor gives each shard of a multi-shard process a health
// monitor with the policy's built-in checks, judging the shard's own
// Snapshot; the manager's Tick runs them, and their verdicts make the
// shards' conditions (shards.* in the policy). A one-shard process has
// none: the process monitor judges that shard, and the tick hands its
// verdict to the shard.
func (o *Orchestrator) newShardMonitor(id int, source func() metrics.Snapshot) (*health.Monitor, error) {
	if !o.multi() {
		return nil, nil
	}
	p := o.policy.Load()
	mon := health.NewMonitor(health.Options{
		Clock:    o.clk,
		Events:   o.bus,
		Shard:    id,
		Source:   source,
		Interval: p.Health.Interval,
		Timeout:  p.Health.Timeout,
		Retries:  retries(p.Health.Retries),
		Tick:     o.cfg.TickInterval,
	})
	if err := configureBuiltinChecks(mon, p); err != nil {
		return nil, err
	}
	return mon, nil
}

// configureBuiltinChecks adds, retunes or replaces the policy's built-in
// checks on mon: a shard's, or the process's while it runs one shard
// (placeBuiltinChecks; plugin checks are the process monitor's only).
// Their interval, timeout and retries are mon's (healthDefaults).
func configureBuiltinChecks(mon *health.Monitor, p *policy.Policy) error {
	for _, c := range p.Health.Checks {
		if c.Type == "" {
			continue
		}
		cfg := health.CheckConfig{Critical: c.Critical}
		chk, err := builtinCheck(c)
		if err != nil {
			return fmt.Errorf("orchestrator: check %q: %w", c.Name, err)
		}
		if err := mon.Configure(c.Name, cfg); err != nil {
			if err := mon.Add(c.Name, chk, cfg); err != nil {
				return fmt.Errorf("orchestrator: check %q: %w", c.Name, err)
			}
			continue
		}
		if err := mon.Replace(c.Name, chk); err != nil {
			return fmt.Errorf("orchestrator: check %q: %w", c.Name, err)
		}
	}
	return nil
}

// placeBuiltinChecks puts the built-in checks of p (gateway, latency,
// error_rate) where they judge one connection. While the process runs one
// shard (and before Start, until the manager knows the count) they are the
// process monitor's: the process Snapshot is that shard's. With several
// shards each shard's monitor has them (newShardMonitor, setShardPolicy)
// and the process monitor keeps only the plugin checks, what is
// process-wide: run on the merged Snapshot, the gateway check would fail
// whenever any one shard is down and make health.* CRITICAL for one shard
// of many. A nil p puts the last policy's checks on the right side again
// when the shard count changed sides since (Start learning the count, a
// re-shard); the tick calls it so.
func (o *Orchestrator) placeBuiltinChecks(p *policy.Policy) error {
	o.checksMu.Lock()
	defer o.checksMu.Unlock()
	onProcess := !o.multi()
	if p == nil {
		if o.checksPolicy == nil || onProcess == o.procBuiltins {
			return nil
		}
		p = o.checksPolicy
	}
	if onProcess {
		if err := configureBuiltinChecks(o.mon, p); err != nil {
			return err
		}
	} else {
		removeBuiltinChecks(o.mon, p)
	}
	o.checksPolicy, o.procBuiltins = p, onProcess
	return nil
}

// removeBuiltinChecks removes p's built-in checks from mon (those it
// does not have are skipped).
func removeBuiltinChecks(mon *health.Monitor, p *policy.Policy) {
	for _, c := range p.Health.Checks {
		if c.Type != "" {
			_ = mon.Remove(c.Name) // health.ErrUnknownCheck: not there
		}
	}
}

// setShardPolicy puts p's breaker settings and built-in checks in force on
// every shard.
func (o *Orchestrator) setShardPolicy(p *policy.Policy) error {
	o.mgr.SetBreakerSettings(breakerSettings(p.CircuitBreaker, o.clk, o.bus))
	for _, s := range o.mgr.Shards() {
		mon := s.Monitor()
		if mon == nil {
			continue
		}
		mon.SetDefaults(healthDefaults(p))
		if err := configureBuiltinChecks(mon, p); err != nil {
			return fmt.Errorf("shard %d: %w", s.ID(), err)
		}
		dropUnusedChecks(mon, p)
	}
	return nil
}

// processSnapshot builds the tick's Snapshot: the manager's view merged
// (shard.View.Snapshot: gateway.down_for is the longest any shard has been
// down, gateway.connections the sessions every shard brought up) after the
// process monitor's verdict, the degradation level and the first shard's
// breaker (which stands for the gateway before any shard exists) are set
// on the process Recorder. Before any shard exists it names the shard and
// count this process was planned with.
func (o *Orchestrator) processSnapshot(v *shard.View) metrics.Snapshot {
	s := v.Snapshot()
	if len(v.Shards) == 0 {
		count := o.plan.count
		if count == shard.Auto {
			count = 1
		}
		s.Shard = metrics.ShardInfo{ID: o.plan.first, Count: count}
	}
	return s
}

// feedProcess sets what the process Recorder carries besides its own
// observations, right before a view is built.
func (o *Orchestrator) feedProcess() {
	if err := o.placeBuiltinChecks(nil); err != nil {
		o.log.Error("built-in health checks not placed on the process monitor", "error", err)
	}
	rec := o.mgr.Recorder()
	m := o.brk.Metrics()
	rec.SetBreaker(metrics.BreakerView{State: m.State.String(), Failures: m.FailuresInWindow, Rejections: m.Rejections})
	hv := o.mon.View()
	rec.SetHealth(hv)
	rec.SetDegradation(o.eng.deg.View())
	if shards := o.mgr.Shards(); len(shards) == 1 && shards[0].Monitor() == nil {
		// One shard: the process monitor's verdict is the shard's.
		shards[0].Recorder().SetHealth(hv)
	}
}

// ShardManager returns the shard manager: every shard's connection,
// Session, breaker, Recorder and monitor, the identify queue and the
// reconnect gate.
func (o *Orchestrator) ShardManager() *shard.Manager { return o.mgr }

// Shards returns the shards this process runs, in ID order; nil before
// Start.
func (o *Orchestrator) Shards() []*shard.Shard { return o.mgr.Shards() }

// Shard returns shard id, or nil when this process does not run it (or
// before Start).
func (o *Orchestrator) Shard(id int) *shard.Shard { return o.mgr.Shard(id) }

// ShardForGuild returns the shard of this process that receives guildID's
// events, or nil when another process runs it (or before Start).
func (o *Orchestrator) ShardForGuild(guildID string) *shard.Shard {
	return o.mgr.ShardForGuild(guildID)
}

// ShardView returns every shard's view and their aggregate as of the last
// tick (the manager's View before the first).
func (o *Orchestrator) ShardView() ShardView {
	if v := o.view.Load(); v != nil {
		return *v
	}
	return o.mgr.View()
}

// AddHandler adds a discordgo event handler to every shard's Session,
// those Start and a re-shard create included (Session().AddHandler
// reaches the first shard only). Add handlers before Start to see READY.
// It returns a function that removes the handler from every Session.
func (o *Orchestrator) AddHandler(handler any) (remove func()) { return o.mgr.AddHandler(handler) }

// first returns the first shard of the range, nil before Start.
func (o *Orchestrator) firstShard() *shard.Shard {
	if sh := o.mgr.Shards(); len(sh) > 0 {
		return sh[0]
	}
	return nil
}

// telemetryObserver feeds the wire's heartbeat round trips and the close
// codes lifeline sends to the telemetry (every shard's; the shards'
// Recorders are fed by the shard manager).
type telemetryObserver struct{ tel *telemetry.Telemetry }

func (t telemetryObserver) Observe(o gateway.Observation) {
	switch o.Kind {
	case gateway.ObsAck:
		t.tel.ObserveHeartbeatRTT(o.RTT)
	case gateway.ObsCloseSent:
		t.tel.ObserveCloseSent(o.CloseCode)
	}
}

// shardStatuses is the last tick's shards as the telemetry reports them.
func shardStatuses(v *shard.View) []telemetry.ShardStatus {
	out := make([]telemetry.ShardStatus, len(v.Shards))
	for i := range v.Shards {
		sv := &v.Shards[i]
		s := &sv.Snapshot
		out[i] = telemetry.ShardStatus{
			ID: sv.ID, State: sv.State, Condition: sv.Condition.String(), Connected: s.Gateway.Connected,
			HeartbeatLatency: s.Latency.Heartbeat, AckAge: s.Gateway.LastAckAge, LastCloseCode: s.Gateway.LastCloseCode,
			Reconnects: s.Gateway.Reconnects, Resumes: s.Gateway.Resumes, Identifies: s.Gateway.Identifies,
			Dispatches: s.Gateway.Dispatches, Breaker: s.Breaker.State, HealthScore: s.Health.Score,
		}
	}
	return out
}
