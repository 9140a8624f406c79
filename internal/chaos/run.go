package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// Config configures a chaos run. Dir is required; every other field has
// the default its comment names.
type Config struct {
	// Seed draws the schedule, the traffic and every jitter the harness
	// controls. Default 1.
	Seed int64
	// Shards is the bot's shard count. Default 1.
	Shards int
	// PerShard runs one lifeline system per shard (WithShard(id, count)),
	// as separate processes would, each with its own identify queue (the
	// fake then gives each shard its own identify bucket); otherwise one
	// system runs every shard (WithShards(count)) and its shards share
	// one identify bucket (max_concurrency 1). Default false.
	PerShard bool
	// Duration is the chaos phase: faults are injected for this long (wall
	// time), then the run waits for recovery and checks. Default 20s.
	Duration time.Duration
	// MaxSteps bounds the schedule's steps. Default: no bound beyond
	// Duration.
	MaxSteps int
	// MeanGap is the mean time between two steps. Default 600ms.
	MeanGap time.Duration
	// Scale runs the fake Discord and the default policy's durations this
	// much faster than Discord's. Default 50.
	Scale float64
	// Dir holds the policy file, the flight recordings and the report.
	// Required.
	Dir string
	// PluginPath is the tcpprobe plugin binary (plugins/tcpprobe) the
	// policy loads; the run fails without it.
	PluginPath string
	// PluginCrashSpacing is the least time between two plugin crashes.
	// Default 10s for a chaos phase up to 45s (two or three crashes);
	// 65s for longer ones, so that the plugin host's count of restarts in
	// a row (5 at most; reset once a process has run for a minute) is not
	// spent by the schedule alone.
	PluginCrashSpacing time.Duration
	// Logf receives progress lines. Default: none.
	Logf func(format string, args ...any)
	// StallTimeout is how long the system may make no progress (no tick)
	// before the watchdog dumps every goroutine and fails the run.
	// Default 60s.
	StallTimeout time.Duration
	// RecoveryGrace is added to the recovery time the policy allows, for a
	// loaded machine. Default 15s.
	RecoveryGrace time.Duration
	// SampleEvery is the heap and goroutine sampling period. Default 2s.
	SampleEvery time.Duration
	// HeapSlackMB is the growth the memory check tolerates on top of 50%.
	// Default 16.
	HeapSlackMB float64
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("chaos: Config.Dir is required")
	}
	if c.PluginPath == "" {
		return c, errors.New("chaos: Config.PluginPath is required (build plugins/tcpprobe)")
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Shards < 1 {
		c.Shards = 1
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.MeanGap <= 0 {
		c.MeanGap = 600 * time.Millisecond
	}
	if c.Scale <= 0 {
		c.Scale = 50
	}
	if c.PluginCrashSpacing <= 0 {
		c.PluginCrashSpacing = 10 * time.Second
		if c.Duration > 45*time.Second {
			c.PluginCrashSpacing = 65 * time.Second
		}
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 60 * time.Second
	}
	if c.RecoveryGrace <= 0 {
		c.RecoveryGrace = 15 * time.Second
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = 2 * time.Second
	}
	if c.HeapSlackMB <= 0 {
		c.HeapSlackMB = 16
	}
	return c, nil
}

// scaled divides a Discord duration by the run's scale.
func (c Config) scaled(d time.Duration) time.Duration { return time.Duration(float64(d) / c.Scale) }

// Token returns the bot token a run with this seed uses: shaped like a
// real one (user ID, timestamp, HMAC) so that a leak of any part of it is
// found.
func Token(seed int64) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("lifeline chaos token %d", seed)))
	h := hex.EncodeToString(sum[:])
	return "MTE" + h[:21] + ".Gc" + h[21:25] + "." + h[25:63]
}

// HTTPToken returns the bearer token a run's HTTP surfaces require.
func HTTPToken(seed int64) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("lifeline chaos http %d", seed)))
	return "op-" + hex.EncodeToString(sum[:12])
}

// member is one running lifeline system (all shards, or one of them).
type member struct {
	shard      int // first shard it runs
	count      int // how many shards it runs
	lf         *lifeline.Lifeline
	rec        *flight.Recorder
	flightPath string
	http       *telemetry.Server
	ticks      atomic.Uint64
	reloads    atomic.Int64
	refused    atomic.Int64
}

type run struct {
	cfg       Config
	rep       *Report
	start     time.Time
	scan      *secretScanner
	logs      *logSink
	srv       *discordtest.Server
	members   []*member
	handled   *handlerLedger
	env       *envelope
	timeline  *timeline
	heap      heapProfiler
	rng       *rand.Rand // the executor's choices (which pid, how to write)
	token     string
	httpToken string
	fdsBefore map[string]string // open descriptors before the run, for a leak report

	policyPath string
	base       string // the chaos policy as started
	mu         sync.Mutex
	disk       string // what the policy file holds now ("" while removed)
	loaded     string // the content of the generation in force
	events     map[string]int
	recov      map[string]int
	recovFail  int
	levels     map[string]int
	maxLevel   policy.Level
	starts     int
	plugins    []string // the last plugin events, for a failure report
	samples    []heapSample
	firstSites map[string]int64 // lifeline's heap by allocation site, first sample after the warm-up
	lastSites  map[string]int64 // and the last one
	emitted    int
	rest       map[string]int
	failures   []string
	abortOnce  sync.Once
	abort      chan struct{}
	progress   atomic.Uint64
}

func (r *run) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.failures = append(r.failures, msg)
	r.mu.Unlock()
	r.cfg.Logf("chaos: FAIL %s", msg)
}

// pluginEvents returns the last plugin events, oldest first.
func (r *run) pluginEvents() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.plugins, "; ")
}

func (r *run) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.failures) > 0
}

// stop ends the chaos phase early (a broken invariant was seen).
func (r *run) stopChaos() { r.abortOnce.Do(func() { close(r.abort) }) }

func (r *run) since() time.Duration { return time.Since(r.start).Round(time.Millisecond) }

// Run plays one chaos run and returns its report. The error is for a run
// that could not be set up; broken invariants are in Report.Failures. For
// the run's duration the standard library's logger (discordgo's) writes
// into the secret scan instead of its usual output.
//
// The run: a fake Discord (discordtest, Scale cfg.Scale) and lifeline with
// the default policy (durations scaled, a tcpprobe plugin check added)
// watched from a file; traffic both ways; the schedule's faults, plugin
// crashes and policy edits for cfg.Duration while invariants are checked
// every half second; then every fault cleared, the wait for READY and
// level NONE, a last burst of messages, the ledger checks, Stop, and the
// leak checks.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	leakBase := goleak.IgnoreCurrent()
	r := &run{
		cfg: cfg, start: time.Now(), handled: newHandlerLedger(), timeline: newTimeline(4000),
		rng:   rand.New(rand.NewPCG(uint64(cfg.Seed), 7)),
		token: Token(cfg.Seed), httpToken: HTTPToken(cfg.Seed),
		events: map[string]int{}, recov: map[string]int{}, levels: map[string]int{}, rest: map[string]int{},
		abort: make(chan struct{}),
	}
	r.rep = &Report{Seed: cfg.Seed, Shards: cfg.Shards, Scale: cfg.Scale, Chaos: cfg.Duration, MeanGap: cfg.MeanGap, Mode: "orchestrator",
		Injected: map[Kind]int{}}
	if cfg.PerShard && cfg.Shards > 1 {
		r.rep.Mode = "per-shard"
	}
	r.scan = newSecretScanner(r.token, r.httpToken)
	r.logs = newLogSink("log", r.scan, 200)
	r.logs.watch = r.timeline.logLine
	// discordgo logs through the standard library's logger: its lines are
	// searched too, for the run's duration.
	prevLog := log.Writer()
	log.SetOutput(newLogSink("discordgo log", r.scan, 0))
	defer log.SetOutput(prevLog)
	r.rep.FDsBefore, r.fdsBefore = openFDs(), fdTargets()

	if err := r.setup(); err != nil {
		r.teardown()
		return nil, err
	}
	cfg.Logf("chaos: seed %d, %d shard(s), %v of chaos; rerun: %s", cfg.Seed, cfg.Shards, cfg.Duration, r.rep.Rerun())
	if err := r.startMembers(ctx); err != nil {
		r.fail("start: %v", err)
		r.finish(leakBase)
		return r.rep, nil
	}
	r.checkPluginEnvs()
	r.chaos(ctx)
	r.recover()
	r.settleAndCheck()
	r.finish(leakBase)
	return r.rep, nil
}

// setup starts the fake Discord, writes the policy file and builds the
// systems.
func (r *run) setup() error {
	cfg := r.cfg
	var err error
	r.srv, err = discordtest.NewServer(discordtest.Options{
		Token:  r.token,
		Scale:  cfg.Scale,
		Seed:   cfg.Seed,
		Guilds: 2 * cfg.Shards,
		// A per-shard run's systems each have their own identify queue,
		// as processes would: each shard gets its own identify bucket.
		// One system running every shard paces them through one bucket.
		MaxConcurrency: map[bool]int{true: cfg.Shards, false: 1}[cfg.PerShard],
		// Discord's "a few minutes" for a session to stay resumable.
		SessionExpiry: cfg.scaled(3 * time.Minute),
		// Generous on a loaded machine: a late heartbeat is a failure of
		// the client only when it is very late.
		HeartbeatTimeout: 6 * cfg.scaled(discordtest.DefaultHeartbeatInterval),
		// The schedule invalidates sessions far more often than Discord
		// would in a day; the budget itself has tests of its own.
		SessionStartTotal: 1_000_000,
		Logger:            hclog.New(&hclog.LoggerOptions{Name: "discordtest", Output: newLogSink("fake-log", r.scan, 0), Level: hclog.Info}),
	})
	if err != nil {
		return fmt.Errorf("chaos: fake Discord: %w", err)
	}
	src, err := ScaledDefaultPolicy(cfg.Scale)
	if err != nil {
		return err
	}
	r.base = string(pluginBlock(src, cfg.PluginPath, r.srv.Addr().String()))
	p, err := policy.LoadSource("chaos.hcl", []byte(r.base), policy.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		return fmt.Errorf("chaos: the chaos policy does not load: %w", err)
	}
	r.policyPath = filepath.Join(cfg.Dir, "policy.hcl")
	if err := os.WriteFile(r.policyPath, []byte(r.base), 0o600); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	r.disk, r.loaded = r.base, r.base
	r.env = newEnvelope(p.Connection.ReconnectDelay, p.Connection.MaxReconnectDelay, p.Connection.BackoffMultiplier,
		cfg.scaled(5*time.Second), 3*time.Second)
	r.rep.RecoveryBound = p.CircuitBreaker.MaxOpenTimeout + p.Connection.MaxReconnectDelay + 2*handshakeTimeout +
		cfg.scaled(metrics.DefaultWindow) + time.Duration(len(p.Degradation.Levels))*p.Degradation.RecoveryDelay +
		p.Health.Interval + cfg.RecoveryGrace

	if cfg.PerShard {
		for i := 0; i < cfg.Shards; i++ {
			m, err := r.newMember(i, 1)
			if err != nil {
				return err
			}
			r.members = append(r.members, m)
		}
	} else {
		m, err := r.newMember(0, cfg.Shards)
		if err != nil {
			return err
		}
		r.members = append(r.members, m)
	}
	return nil
}

// handshakeTimeout bounds each attempt's wait for HELLO and READY. The
// scaled default (10s/Scale) is shorter than a loaded machine's hiccups.
const handshakeTimeout = 2 * time.Second

func (r *run) newMember(shard, count int) (*member, error) {
	cfg := r.cfg
	m := &member{shard: shard, count: count, flightPath: filepath.Join(cfg.Dir, fmt.Sprintf("flight-%d.jsonl", shard))}
	var err error
	m.rec, err = flight.Open(flight.Settings{Path: m.flightPath, MaxFileBytes: 1 << 20, MaxTotalBytes: 4 << 20})
	if err != nil {
		return nil, fmt.Errorf("chaos: flight recorder: %w", err)
	}
	jitter := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(100+shard)))
	var jmu sync.Mutex
	lc := lifeline.Config{
		Token:          r.token,
		PolicyFile:     r.policyPath,
		IdentifyWindow: r.srv.IdentifyWindow(),
		TickInterval:   cfg.scaled(time.Second),
		MetricsWindow:  cfg.scaled(metrics.DefaultWindow),
		EventQueueSize: 1 << 16,
		// A plugin out of restarts (CPU starvation can trip its breaker
		// three times over) is retried after the scaled quiet period
		// (10m/Scale), well inside the recovery bound, as in production
		// it is after 10 minutes. The restart backoff stays real-time.
		PluginRestart: pluginhost.RestartPolicy{RetryFailed: cfg.scaled(pluginhost.DefaultRetryFailed)},
		Logger: hclog.New(&hclog.LoggerOptions{Name: fmt.Sprintf("shard%d", shard), Output: r.logs,
			Level: hclog.Debug}),
		Tune: func(c *conn.Config) {
			c.HandshakeTimeout = handshakeTimeout
			c.CallTimeout = 5 * time.Second
			c.InvalidSessionDelay = [2]time.Duration{cfg.scaled(time.Second), cfg.scaled(5 * time.Second)}
			c.Rand = func() float64 {
				jmu.Lock()
				defer jmu.Unlock()
				return jitter.Float64()
			}
		},
		OnTick: func(s metrics.Snapshot, d policy.Decision, l policy.Level) {
			m.ticks.Add(1)
			r.progress.Add(1)
			if err := m.rec.Tick(s, d, l); err != nil && !errors.Is(err, flight.ErrClosed) {
				r.fail("shard %d: flight recorder: %v", shard, err)
			}
		},
	}
	opts := []lifeline.Option{lifeline.WithNetwork(r.srv.Transport(), r.srv.Dialer())}
	switch {
	case cfg.PerShard && cfg.Shards > 1:
		opts = append(opts, lifeline.WithShard(shard, cfg.Shards))
	default:
		opts = append(opts, lifeline.WithShards(count))
	}
	m.lf, err = lifeline.New(lc, opts...)
	if err != nil {
		return nil, fmt.Errorf("chaos: lifeline.New: %w", err)
	}
	m.lf.AddEventListener(events.All, func(e events.Event) { r.onEvent(m, e) })
	// The ID is copied: the handler ledger keeps it for the whole run, and
	// the heap check counts by allocation site (discordgo decoded it).
	m.lf.AddHandler(func(_ *discordgo.Session, mc *discordgo.MessageCreate) { r.handled.record(strings.Clone(mc.ID)) })
	ln, err := telemetry.Listen("127.0.0.1:0", r.httpToken)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	m.http = telemetry.Serve(ln, m.lf.Handler(telemetry.HandlerOptions{BearerToken: r.httpToken, KeepAlive: time.Second}))
	return m, nil
}

// onEvent is every member's event listener: counts, the envelope, the
// flight recorder and the secret scan.
func (r *run) onEvent(m *member, e events.Event) {
	m.rec.Event(e)
	b, err := json.Marshal(e)
	if err != nil {
		r.fail("event %v does not marshal: %v", e.Type, err)
	}
	r.scan.Scan("events", b)
	r.scan.ScanString("events", e.String())
	r.mu.Lock()
	r.events[e.Type.String()]++
	switch d := e.Data.(type) {
	case events.Recovery:
		if d.Completed && d.Success {
			r.recov[d.Strategy]++
		} else if d.Completed {
			r.recovFail++
		}
	case events.Degradation:
		if d.Activated {
			r.levels[d.To]++
			if lv, err := policy.ParseLevel(d.To); err == nil && lv > r.maxLevel {
				r.maxLevel = lv
			}
		}
	case events.Plugin:
		if !d.Exited {
			r.starts++
		}
		r.plugins = append(r.plugins, e.Time.Format("15:04:05.000")+" "+e.String())
		if len(r.plugins) > 30 {
			r.plugins = r.plugins[1:]
		}
	case events.PolicyReload:
		if d.Failed {
			m.refused.Add(1)
		} else {
			m.reloads.Add(1)
		}
	}
	r.mu.Unlock()
	shard := e.Shard
	if shard == events.NoShard {
		shard = m.shard
	}
	r.timeline.add(shard, e)
	switch d := e.Data.(type) {
	case events.StateChange:
		r.env.observe(shard, e.Time, d.To, d.Cause)
	case events.BreakerTransition:
		if !strings.HasPrefix(d.Breaker, "plugin/") {
			r.env.breaker(shard, d.To)
		}
	}
}

func (r *run) startMembers(ctx context.Context) error {
	for _, m := range r.members {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := m.lf.Start(sctx)
		cancel()
		if err != nil {
			r.scan.ScanString("errors", err.Error())
			return fmt.Errorf("shard %d: %w", m.shard, err)
		}
	}
	return nil
}

// chaos runs the schedule with the traffic, the checker, the watchdog and
// the sampler beside it, until the schedule ends or an invariant breaks.
func (r *run) chaos(ctx context.Context) {
	cfg := r.cfg
	steps := Schedule(ScheduleOptions{
		Seed: cfg.Seed, Shards: cfg.Shards, Length: cfg.Duration, MaxSteps: cfg.MaxSteps, MeanGap: cfg.MeanGap,
		Heartbeat: r.srv.HeartbeatInterval(), PluginCrashSpacing: cfg.PluginCrashSpacing,
	})
	phase, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-r.abort:
		case <-phase.Done():
		}
		cancel()
	}()
	var wg sync.WaitGroup
	spawn := func(f func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(phase) }()
	}
	spawn(r.emitTraffic)
	spawn(r.restTraffic)
	spawn(r.checker)
	spawn(r.sampler)
	spawn(r.scraper)
	watchdogDone := make(chan struct{})
	go func() { defer close(watchdogDone); r.watchdog(phase) }()

	chaosStart := time.Now()
	for _, st := range steps {
		if !sleepUntil(phase, chaosStart.Add(st.At)) {
			break
		}
		r.apply(phase, st)
		r.progress.Add(1)
	}
	sleepUntil(phase, chaosStart.Add(cfg.Duration))
	cancel()
	wg.Wait()
	<-watchdogDone
	r.srv.ClearFaults()
	r.cfg.Logf("chaos: %v: chaos phase over (%d steps); faults cleared", r.since(), len(r.rep.Steps))
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// apply carries out one step.
func (r *run) apply(ctx context.Context, st Step) {
	done := true
	switch st.Kind {
	case KindPluginCrash:
		done = r.crashPlugin()
	case KindPolicyEdit, KindPolicyInvalid:
		r.editPolicy(ctx, policyEdits[st.Edit])
	case KindPolicyRemove:
		r.removePolicy(ctx, st.Lasts)
	default:
		if err := r.srv.Inject(*st.Fault); err != nil {
			r.fail("inject %s: %v", st, err)
			done = false
		}
	}
	if done {
		r.mu.Lock()
		r.rep.Steps = append(r.rep.Steps, st)
		r.rep.Injected[st.Kind]++
		r.mu.Unlock()
	}
}

// crashPlugin kills one running plugin process with SIGKILL.
func (r *run) crashPlugin() bool {
	var pids []int
	for _, m := range r.members {
		for _, s := range m.lf.Plugins().Status() {
			if s.State == pluginhost.Running && s.PID > 0 {
				pids = append(pids, s.PID)
			}
		}
	}
	if len(pids) == 0 {
		return false // every plugin is restarting already
	}
	pid := pids[r.rng.IntN(len(pids))]
	r.checkPluginEnv(pid)
	if err := killProcess(pid); err != nil {
		r.fail("kill plugin %d: %v", pid, err)
		return false
	}
	r.mu.Lock()
	r.rep.PluginCrashes++
	r.mu.Unlock()
	return true
}

// checkPluginEnvs reads every running plugin process's environment.
func (r *run) checkPluginEnvs() {
	for _, m := range r.members {
		for _, s := range m.lf.Plugins().Status() {
			if s.PID > 0 {
				r.checkPluginEnv(s.PID)
			}
		}
	}
}

// checkPluginEnv reads a plugin process's environment: the token must not
// be in it (plugins do not inherit the host's secrets).
func (r *run) checkPluginEnv(pid int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return // no /proc, or the process just exited
	}
	r.scan.Scan("plugin-environment", b)
}

// writePolicy puts content in the policy file, by rename (as editors save)
// or in place, as the seed decides.
func (r *run) writePolicy(content string) error {
	r.mu.Lock()
	inPlace := r.rng.IntN(2) == 0
	r.mu.Unlock()
	if inPlace {
		if err := os.WriteFile(r.policyPath, []byte(content), 0o600); err != nil {
			return err
		}
	} else {
		tmp := r.policyPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, r.policyPath); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.disk = content
	r.mu.Unlock()
	return nil
}

// editPolicy writes an edit of the base policy and checks that every
// system put a valid one in force and refused an invalid one, keeping the
// policy it ran.
func (r *run) editPolicy(ctx context.Context, e policyEdit) {
	content := e.apply(r.base)
	r.mu.Lock()
	same := content == r.loaded
	r.mu.Unlock()
	before := make([]*policy.Policy, len(r.members))
	reloads := make([]int64, len(r.members))
	refused := make([]int64, len(r.members))
	for i, m := range r.members {
		before[i], reloads[i], refused[i] = m.lf.Policy(), m.reloads.Load(), m.refused.Load()
	}
	if err := r.writePolicy(content); err != nil {
		r.fail("write policy: %v", err)
		return
	}
	for i, m := range r.members {
		switch {
		case !e.Valid:
			if !waitFor(ctx, 10*time.Second, func() bool { return m.refused.Load() > refused[i] }) {
				if ctx.Err() == nil {
					r.fail("shard %d: invalid policy edit %q: no POLICY_RELOAD_FAILED", m.shard, e.Name)
				}
				continue
			}
			if m.lf.Policy() != before[i] {
				r.fail("shard %d: invalid policy edit %q replaced the policy in force", m.shard, e.Name)
			}
		case same:
			// Content equal to the generation in force is not a new
			// generation; nothing to wait for.
		default:
			if !waitFor(ctx, 10*time.Second, func() bool { return m.reloads.Load() > reloads[i] && m.lf.Policy() != before[i] }) {
				if ctx.Err() == nil {
					r.fail("shard %d: valid policy edit %q: not put in force", m.shard, e.Name)
				}
			}
		}
	}
	if e.Valid {
		r.mu.Lock()
		r.loaded = content
		r.mu.Unlock()
	}
}

// removePolicy deletes the policy file for a while and writes it back: the
// policy in force must stay.
func (r *run) removePolicy(ctx context.Context, lasts time.Duration) {
	before := make([]*policy.Policy, len(r.members))
	for i, m := range r.members {
		before[i] = m.lf.Policy()
	}
	r.mu.Lock()
	content := r.disk
	r.mu.Unlock()
	if err := os.Remove(r.policyPath); err != nil {
		r.fail("remove policy: %v", err)
		return
	}
	r.mu.Lock()
	r.disk = ""
	r.mu.Unlock()
	sleepUntil(ctx, time.Now().Add(lasts))
	for i, m := range r.members {
		if m.lf.Policy() != before[i] {
			r.fail("shard %d: the policy in force changed while its file was missing", m.shard)
		}
	}
	if err := r.writePolicy(content); err != nil {
		r.fail("restore policy: %v", err)
	}
}

// waitFor polls cond every 10ms until it holds, ctx ends or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond) // polling a live system, bounded by d
	}
}

// emitTraffic posts user messages in the bot's guilds: MESSAGE_CREATE
// dispatches on every shard.
func (r *run) emitTraffic(ctx context.Context) {
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 11))
	guilds := r.srv.Guilds()
	tk := time.NewTicker(40 * time.Millisecond)
	defer tk.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		g := guilds[rng.IntN(len(guilds))]
		if _, err := r.srv.EmitMessage(g.ChannelID, fmt.Sprintf("chaos message %d", n)); err != nil {
			if !errors.Is(err, discordtest.ErrClosed) {
				r.fail("emit: %v", err)
			}
			return
		}
		r.mu.Lock()
		r.emitted++
		r.mu.Unlock()
	}
}

// restTraffic is the bot's own REST use: a message every 250ms and the
// bot's user every second, through lifeline's transport.
func (r *run) restTraffic(ctx context.Context) {
	rng := rand.New(rand.NewPCG(uint64(r.cfg.Seed), 13))
	guilds := r.srv.Guilds()
	tk := time.NewTicker(250 * time.Millisecond)
	defer tk.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		m := r.members[rng.IntN(len(r.members))]
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		var err error
		if n%4 == 3 {
			_, err = m.lf.Session().User("@me", discordgo.WithContext(cctx))
		} else {
			g := guilds[rng.IntN(len(guilds))]
			_, err = m.lf.Session().ChannelMessageSend(g.ChannelID, fmt.Sprintf("bot message %d", n), discordgo.WithContext(cctx))
		}
		cancel()
		outcome := "ok"
		switch {
		case err == nil:
		case errors.Is(err, lifeline.ErrReadOnly):
			outcome = "refused_read_only"
		case ctx.Err() != nil:
			return
		default:
			outcome = "error"
			r.scan.ScanString("errors", err.Error())
		}
		r.mu.Lock()
		r.rest[outcome]++
		r.mu.Unlock()
	}
}

// connections returns every shard's managed connection.
func (r *run) connections() []*conn.Connection {
	var out []*conn.Connection
	for _, m := range r.members {
		for _, sh := range m.lf.Shards() {
			if c := sh.Connection(); c != nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// checker looks at the invariants that can break at any moment: limits,
// duplicates, a connection that gave up.
func (r *run) checker(ctx context.Context) {
	tk := time.NewTicker(500 * time.Millisecond)
	defer tk.Stop()
	seen := 0
	dups := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		v := r.srv.Ledger().Violations()
		for _, x := range v[seen:] {
			if hardViolation(x.Kind) {
				r.fail("%v: ledger violation %s on shard %d: %s", r.since(), x.Kind, x.Shard, x.Detail)
				r.stopChaos()
			}
		}
		seen = len(v)
		if _, _, d := r.handled.counts(); len(d) > dups {
			r.fail("%v: message %s delivered to the handler twice", r.since(), d[dups])
			dups = len(d)
			r.stopChaos()
		}
		for _, c := range r.connections() {
			if c.State() == conn.Failed {
				r.fail("%v: a shard gave up: %v", r.since(), c.Err())
				r.stopChaos()
			}
		}
	}
}

// watchdog fails the run, with every goroutine's stack, when no tick
// happens for StallTimeout.
func (r *run) watchdog(ctx context.Context) {
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	last, lastAt := r.progress.Load(), time.Now()
	ticks := make([]uint64, len(r.members))
	ticksAt := make([]time.Time, len(r.members))
	for i, m := range r.members {
		ticks[i], ticksAt[i] = m.ticks.Load(), time.Now()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		now := time.Now()
		if p := r.progress.Load(); p != last {
			last, lastAt = p, now
		}
		stalled := now.Sub(lastAt) > r.cfg.StallTimeout
		for i, m := range r.members {
			if t := m.ticks.Load(); t != ticks[i] {
				ticks[i], ticksAt[i] = t, now
			} else if now.Sub(ticksAt[i]) > r.cfg.StallTimeout {
				stalled = true
			}
		}
		if stalled {
			r.rep.GoroutineDump = goroutineDump()
			r.fail("%v: no progress for %v (deadlock?): goroutines dumped", r.since(), r.cfg.StallTimeout)
			r.stopChaos()
			return
		}
	}
}

// warmup is how long the heap figures ignore the start of the run.
func (r *run) warmup() time.Duration { return min(r.cfg.Duration/4, 10*time.Second) }

// sampler records the heap (lifeline's side) and the goroutine count.
func (r *run) sampler(ctx context.Context) {
	tk := time.NewTicker(r.cfg.SampleEvery)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		sys, harness, sites := r.heap.sampleSites(true)
		s := heapSample{At: time.Since(r.start), System: sys, Harness: harness, Goroutines: runtime.NumGoroutine()}
		r.mu.Lock()
		r.samples = append(r.samples, s)
		if r.firstSites == nil && s.At >= r.warmup() {
			r.firstSites = sites
		}
		r.lastSites = sites
		r.mu.Unlock()
	}
}

// scraper reads every HTTP surface now and then, for the secret scan and
// the bearer-token rule.
func (r *run) scraper(ctx context.Context) {
	tk := time.NewTicker(3 * time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		r.scrape(ctx)
	}
}

var scrapePaths = []string{"/metrics", "/health", "/livez", "/readyz", "/debug/lifeline?samples=20", "/"}

// scrape reads each member's HTTP surfaces with the bearer token (and
// checks a request without it is refused), its diagnostics, plugin status
// and a config export.
func (r *run) scrape(ctx context.Context) {
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(method, url string, auth bool) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		if err != nil {
			return 0, nil, err
		}
		if auth {
			req.Header.Set("Authorization", "Bearer "+r.httpToken)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		return resp.StatusCode, b, err
	}
	for _, m := range r.members {
		base := m.http.URL()
		for _, p := range scrapePaths {
			code, body, err := get("GET", base+p, true)
			if err != nil {
				if ctx.Err() == nil {
					r.fail("GET %s: %v", p, err)
				}
				return
			}
			r.scan.Scan("http "+strings.SplitN(p, "?", 2)[0], body)
			if code == http.StatusUnauthorized {
				r.fail("GET %s with the bearer token: 401", p)
			}
		}
		if code, _, err := get("GET", base+"/metrics", false); err == nil && code != http.StatusUnauthorized {
			r.fail("GET /metrics without the bearer token: %d, want 401", code)
		}
		if code, _, err := get("POST", base+"/-/reload", false); err == nil && code != http.StatusUnauthorized {
			r.fail("POST /-/reload without the bearer token: %d, want 401", code)
		}
		if _, body, err := get("POST", base+"/-/reload", true); err == nil {
			r.scan.Scan("http /-/reload", body)
		}
		r.scan.Scan("http /events", r.readEvents(ctx, base))
		if b, err := json.Marshal(m.lf.Diagnostics()); err == nil {
			r.scan.Scan("diagnostics", b)
		}
		if b, err := json.Marshal(m.lf.Plugins().Status()); err == nil {
			r.scan.Scan("plugin status", b)
		}
	}
	r.scanExports()
}

// readEvents reads the /events stream for a moment.
func (r *run) readEvents(ctx context.Context, base string) []byte {
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, "GET", base+"/events", nil)
	if err != nil {
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+r.httpToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return b
}

// scanExports exports the configuration the run uses, with the token in
// the environment as an operator's would be, in every format.
func (r *run) scanExports() {
	r.mu.Lock()
	src := r.loaded
	r.mu.Unlock()
	env := map[string]string{"DISCORD_TOKEN": r.token}
	c, err := config.Load(config.WithPolicySource("policy.hcl", []byte(src)),
		config.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		r.scan.ScanString("errors", err.Error())
		r.fail("config.Load of the running policy: %v", err)
		return
	}
	for _, f := range []config.Format{config.FormatHCL, config.FormatJSON} {
		b, err := config.Export(c, f)
		if err != nil {
			r.fail("config export %s: %v", f, err)
			continue
		}
		r.scan.Scan("export "+string(f), b)
	}
	r.scan.ScanString("export token form", fmt.Sprintf("%v %+v %#v %s", c.Token, c.Token, c.Token, c.Token))
}
