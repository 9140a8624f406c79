package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func init() {
	register(command{
		Name:    "run",
		Summary: "run a bot connection with a policy, serving metrics, health and a live dashboard over HTTP",
		Usage: `[--policy FILE] [--preset NAME] [--fake [--fake-scale N] [--fake-scenario FILE|NAME]] [--fake-url URL [--fake-scale N]] [--http ADDR] [--log-level LEVEL] [--log-json] [--shard-count N|0] [--shard ID]

Connects to Discord with the token in DISCORD_TOKEN, or with --fake to an
embedded fake Discord on 127.0.0.1 (no token needed; it accepts DISCORD_TOKEN
when set), and keeps the connection up with the policy's settings. The settings
come in layers, each overriding the ones before: the built-in defaults, the
--preset (small, medium, large), the --policy file, then environment variables
(DISCORD_INTENTS, DISCORD_MAX_RECONNECT_ATTEMPTS, ...; docs/configuration.md).
Every problem is printed with its place (file:line:col, or the variable) before
anything starts. The policy file is watched: a valid edit takes effect live
with the same layers, a broken one is reported with file:line:col and the
running policy stays.

The shards: by default (--shard-count 0, auto) the policy's
connection.shards when it names a number, else the count Discord recommends
(GET /gateway/bot; 1 for most bots), and a close with 4011 (sharding
required) re-shards. --shard-count N runs N shards. Every shard of the count
runs in this process, in identify order, logging "5 of 8 shards READY" as they
come up; with --shard ID only that one runs (other processes run the rest:
give them all the same --shard-count).

A fleet: with a policy whose coordination "nats" block names a NATS server
(docs/fleet.md), the process is one of several running the bot; the fleet
gives it its share of the shards (so --shard cannot be given), moves shards
by RESUME when processes join or leave, and SIGINT or SIGTERM first hand this
process's shards over. --fake-url URL connects to a fake Discord already
running (lifeline fake-discord prints its rest= URL) instead of Discord, so
that several processes share one; --fake-scale gives its time scale.

The policy's plugins start beside the connection, not before it, each logged
as it comes up ("plugin 2 of 3 started: NAME"); their checks count only once
the plugin is up.

Once the HTTP server listens, the first line on stdout is machine-readable:

    http=http://127.0.0.1:8484

and serves /metrics, /health, /livez, /readyz, /debug/lifeline, /events,
POST /-/reload and the dashboard on /. An address other than loopback needs a
bearer token in LIFELINE_HTTP_TOKEN. Logs go to stderr; the token never appears
in them.

Signals: SIGHUP reloads the policy file; SIGINT and SIGTERM close the gateway
connection resumably (close code 4000), stop the HTTP server and exit 0.
Exits 1 when the connection cannot start or fails for good (a refused token,
disallowed intents).`,
		Run: runRun,
	})
}

// runOptions is what the run flags set.
type runOptions struct {
	policy       string
	preset       string
	fake         bool
	fakeScale    float64
	fakeScenario string
	httpAddr     string
	logLevel     string
	logJSON      bool
	shard        int
	shardSet     bool // --shard was given: run that one shard, not all of --shard-count
	shardCount   int
	fleet        fleetRunOptions // --fake-url (fleet.go)
	record       string
}

// runFlags defines the run flags on a new FlagSet.
func runFlags(env *cliEnv) (*flag.FlagSet, *runOptions) {
	fs := newFlagSet(env, "run")
	c := &runOptions{}
	fs.StringVar(&c.policy, "policy", "", "policy `file` (default: the built-in default policy, no reload)")
	fs.StringVar(&c.preset, "preset", "", "start from the preset `name` (small, medium, large) under the policy file")
	fs.BoolVar(&c.fake, "fake", false, "connect to an embedded fake Discord on 127.0.0.1 instead of Discord")
	fs.Float64Var(&c.fakeScale, "fake-scale", 1, "divide the fake Discord's timings by `N` (20: a ~2s heartbeat)")
	fs.StringVar(&c.fakeScenario, "fake-scenario", "", "play a scenario `file` or shipped scenario name against the fake Discord")
	fs.StringVar(&c.httpAddr, "http", telemetry.DefaultAddr, "serve the HTTP surface on `address` (port 0 picks one; off: none)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level` on stderr: trace, debug, info, warn, error or off")
	fs.BoolVar(&c.logJSON, "log-json", false, "log one JSON object per line")
	fs.StringVar(&c.record, "record", "", "flight recorder: one JSON line per tick to `file` (rotated, bounded; replay with lifeline policy test)")
	fs.IntVar(&c.shard, "shard", 0, "run only the shard `id` of the count (other processes run the rest)")
	c.fleet.define(fs)
	fs.IntVar(&c.shardCount, "shard-count", 0, "total `number` of shards; 0: the policy's connection.shards, else Discord's recommendation")
	return fs, c
}

// runSignals subscribes ch to SIGHUP and returns the function that stops
// it; tests replace it to send reloads without signals.
var runSignals = func(ch chan<- os.Signal) (stop func()) {
	signal.Notify(ch, syscall.SIGHUP)
	return func() { signal.Stop(ch) }
}

// runStopTimeout bounds the clean shutdown.
const runStopTimeout = 20 * time.Second

// runRun is `lifeline run`.
func runRun(ctx context.Context, env *cliEnv, args []string) int {
	fs, c := runFlags(env)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, "unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { c.shardSet = c.shardSet || f.Name == "shard" })
	level := hclog.LevelFromString(c.logLevel)
	switch {
	case level == hclog.NoLevel:
		return usageError(env, fs, "--log-level %q: want trace, debug, info, warn, error or off", c.logLevel)
	case c.fakeScale <= 0:
		return usageError(env, fs, "--fake-scale %g: want a number above 0", c.fakeScale)
	case c.fakeScenario != "" && !c.fake:
		return usageError(env, fs, "--fake-scenario needs --fake")
	case c.shardCount < 0:
		return usageError(env, fs, "--shard-count %d: want a number of shards, or 0 for Discord's recommendation", c.shardCount)
	case c.shard < 0 || (c.shardCount > 0 && c.shard >= c.shardCount):
		return usageError(env, fs, "--shard %d of --shard-count %d: want 0 <= shard < count", c.shard, c.shardCount)
	}
	// The configuration's layers (defaults, --preset, --policy, the
	// environment) are checked here first, so that every problem is
	// printed with its place before anything starts; the orchestrator
	// loads the same layers and re-applies them on each reload.
	lookup := func(k string) (string, bool) { v := env.Getenv(k); return v, v != "" }
	loaded, err := config.Load(runConfigOptions(c, lookup)...)
	if err != nil {
		return printConfigError(env, err)
	}
	token := loaded.Token.Reveal()
	httpToken := env.Getenv("LIFELINE_HTTP_TOKEN")
	if err := c.fleet.check(c); err != nil {
		return usageError(env, fs, "%v", err)
	}
	if token == "" && !c.fake && !c.fleet.usesFake() {
		return usageError(env, fs, "no token: set %s, or use --fake to run against the embedded fake Discord", loaded.Policy.Connection.TokenEnv)
	}
	// Everything this command writes passes through the redactor, a second
	// line of defence behind components that never log the token.
	stdout := newRedactor(env.Stdout, token, httpToken)
	stderr := newRedactor(env.Stderr, token, httpToken)
	log := hclog.New(&hclog.LoggerOptions{Name: "lifeline", Output: stderr, Level: level, JSONFormat: c.logJSON})

	var ln net.Listener
	if c.httpAddr != "off" {
		if _, _, err := net.SplitHostPort(c.httpAddr); err != nil {
			return usageError(env, fs, "--http %q: want HOST:PORT or off (%v)", c.httpAddr, err)
		}
		var err error
		if ln, err = telemetry.Listen(c.httpAddr, httpToken); err != nil {
			if errors.Is(err, telemetry.ErrTokenRequired) {
				return usageError(env, fs, "--http %s is not a loopback address: set LIFELINE_HTTP_TOKEN (clients then send it as a bearer token), or use 127.0.0.1", c.httpAddr)
			}
			fmt.Fprintf(stderr, "lifeline run: %v\n", err)
			return 1
		}
	}
	r := &runner{c: c, log: log, stdout: stdout, stderr: stderr, ln: ln, env: lookup}
	return r.run(ctx, token, httpToken)
}

// runner is one `lifeline run` in progress.
type runner struct {
	c              *runOptions
	log            hclog.Logger
	stdout, stderr io.Writer
	ln             net.Listener

	env          func(string) (string, bool)
	fake         *discordtest.Server
	scenarioDone chan struct{}
	bot          *lifeline.Lifeline
	server       *telemetry.Server
}

func (r *runner) run(ctx context.Context, token, httpToken string) int {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := orchestrator.Config{Token: token, PolicyFile: r.c.policy, Preset: r.c.preset, Env: r.env, Logger: r.log,
		ShardCount: r.c.shardCount, OnShardProgress: r.progress, OnPluginProgress: r.pluginProgress}
	if r.c.shardSet {
		cfg.ShardRange = &orchestrator.ShardRange{First: r.c.shard, Last: r.c.shard}
	}
	if err := r.c.fleet.apply(r.c, &cfg); err != nil { // --fake-url (fleet.go)
		r.log.Error("--fake-url", "error", err)
		r.closeListener()
		return 1
	}
	if r.c.fake {
		if err := r.startFake(runCtx, token, &cfg); err != nil {
			r.log.Error("the fake Discord did not start", "error", err)
			r.closeListener()
			return 1
		}
	}
	var rec *flight.Recorder
	if r.c.record != "" {
		var err error
		if rec, err = flight.Open(flight.Settings{Path: r.c.record}); err != nil {
			fmt.Fprintf(r.stderr, "lifeline run: --record: %v\n", err)
			r.closeListener()
			return 1
		}
		defer rec.Close()
		cfg.OnTick = func(s metrics.Snapshot, d policy.Decision, l policy.Level) { _ = rec.Tick(s, d, l) }
	}
	bot, err := lifeline.New(cfg)
	if err == nil && rec != nil {
		bot.AddEventListener(events.All, rec.Event)
	}
	if err != nil {
		// A broken policy file: print its diagnostics, one a line.
		fmt.Fprintf(r.stderr, "lifeline run: %v\n", err)
		r.shutdown()
		return 1
	}
	r.bot = bot
	logPolicy(r.log, bot.Policy())
	logSources(r.log, bot.Configuration())
	failed := make(chan string, 1)
	bot.AddEventListener(events.StateChanged, func(e events.Event) {
		if d, ok := e.Data.(events.StateChange); ok && d.To == "FAILED" {
			select {
			case failed <- d.Cause:
			default:
			}
		}
	})

	if r.ln != nil {
		gather := prometheus.NewRegistry()
		gather.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		h := bot.Handler(telemetry.HandlerOptions{BearerToken: httpToken, Gatherers: []prometheus.Gatherer{gather}})
		r.server = telemetry.Serve(r.ln, h)
		fmt.Fprintf(r.stdout, "http=%s\n", r.server.URL())
		r.log.Info("serving", "url", r.server.URL(), "dashboard", r.server.URL()+"/", "metrics", r.server.URL()+"/metrics",
			"bearer_token", httpToken != "")
	}

	hup := make(chan os.Signal, 1)
	stopSignals := runSignals(hup)
	defer stopSignals()

	target := "Discord"
	if r.fake != nil {
		target = "the fake Discord at " + r.fake.URL()
	}
	count := "auto"
	if r.c.shardCount > 0 {
		count = strconv.Itoa(r.c.shardCount)
	}
	r.log.Info("connecting", "to", target, "shard", r.c.shard, "shard_count", count, "policy", policyName(r.c.policy))
	began := time.Now()
	if err := bot.Start(runCtx); err != nil {
		if ctx.Err() != nil {
			r.log.Info("interrupted while connecting")
			return r.shutdown()
		}
		r.log.Error("could not connect", "error", err)
		r.shutdown()
		return 1
	}
	d := bot.Diagnostics()
	r.log.Info("ready", "session", d.Connection.SessionID, "took", time.Since(began).Round(time.Millisecond))

	code := 0
	for loop := true; loop; {
		select {
		case <-ctx.Done():
			r.log.Info("shutting down", "reason", "signal")
			loop = false
		case cause := <-failed:
			r.log.Error("the connection failed for good; stopping", "cause", cause)
			code = 1
			loop = false
		case <-hup:
			r.reload()
		}
	}
	if c := r.shutdown(); c != 0 {
		code = c
	}
	return code
}

// startFake starts the embedded fake Discord (and its scenario) and points
// cfg at it.
func (r *runner) startFake(ctx context.Context, token string, cfg *orchestrator.Config) error {
	fo := discordtest.Options{Scale: r.c.fakeScale, Token: token, Logger: r.log.Named("fake-discord")}
	if r.c.shardCount > 1 {
		fo.RecommendedShards = r.c.shardCount
	}
	srv, err := discordtest.NewServer(fo)
	if err != nil {
		return err
	}
	r.fake = srv
	cfg.Token = srv.Token()
	cfg.RESTTransport = srv.Transport()
	cfg.GatewayDialer = srv.Dialer()
	cfg.IdentifyWindow = srv.IdentifyWindow()
	r.log.Info("fake Discord", "url", srv.URL(), "heartbeat", srv.HeartbeatInterval(), "scale", srv.Scale())
	if r.c.fakeScenario == "" {
		return nil
	}
	sc, err := loadScenario(r.c.fakeScenario)
	if err != nil {
		return err
	}
	r.log.Info("scenario", "name", sc.Name, "steps", len(sc.Steps), "length", scaleDuration(sc.Length(), srv.Scale()))
	r.scenarioDone = make(chan struct{})
	go func() {
		defer close(r.scenarioDone)
		err := sc.Run(ctx, srv, func(st discordtest.Step) {
			r.log.Info("scenario step", "name", sc.Name, "step", describeStep(sc, st))
		})
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, discordtest.ErrClosed) {
			r.log.Error("scenario stopped", "name", sc.Name, "error", err)
		}
	}()
	return nil
}

// reload is SIGHUP: reload the policy file and say what happened.
func (r *runner) reload() {
	if r.c.policy == "" {
		r.log.Warn("SIGHUP: no policy file to reload (run with --policy FILE)")
		return
	}
	before := r.bot.Telemetry().Summary().Policy.Generation
	if err := r.bot.ReloadPolicy(); err != nil {
		r.log.Error("SIGHUP: policy reload failed; the running policy stays", "generation", before, "error", err)
		return
	}
	after := r.bot.Telemetry().Summary().Policy.Generation
	if after == before {
		r.log.Info("SIGHUP: policy unchanged", "file", r.c.policy, "generation", after)
		return
	}
	r.log.Info("SIGHUP: policy reloaded", "file", r.c.policy, "generation", after, "previous", before)
}

// shutdown stops the connection (close code 4000: the session stays
// resumable), the HTTP server, the scenario and the fake, in that order,
// and returns 1 when something did not stop cleanly.
func (r *runner) shutdown() int {
	code := 0
	ctx, cancel := context.WithTimeout(context.Background(), runStopTimeout)
	defer cancel()
	if r.bot != nil {
		if err := r.bot.Stop(ctx); err != nil {
			r.log.Error("stop", "error", err)
			code = 1
		}
		v := r.bot.ShardManager().View()
		g := v.Snapshot().Gateway // every shard's counters; the close code of the first
		r.log.Info("gateway connection closed", "close_code", g.LastCloseCode, "resumable", g.LastCloseCode == 4000,
			"resumes", g.Resumes, "identifies", g.Identifies, "shards", len(v.Shards))
	}
	if r.server != nil {
		if err := r.server.Shutdown(ctx); err != nil {
			r.log.Error("HTTP server shutdown", "error", err)
			code = 1
		}
	} else {
		r.closeListener()
	}
	if r.fake != nil {
		if err := r.fake.Close(); err != nil {
			r.log.Error("fake Discord close", "error", err)
			code = 1
		}
	}
	if r.scenarioDone != nil {
		<-r.scenarioDone
	}
	r.log.Info("stopped")
	return code
}

func (r *runner) closeListener() {
	if r.ln != nil {
		r.ln.Close()
	}
}

// logPolicy logs, at debug level, the policy in force as validated: every
// setting with its default filled in.
func logPolicy(log hclog.Logger, p *policy.Policy) {
	if !log.IsDebug() || p == nil {
		return
	}
	c := p.Connection
	log.Debug("policy: connection", "file", policyName(p.Filename), "intents", c.Intents, "auto_reconnect", c.AutoReconnect,
		"max_reconnect_attempts", c.MaxReconnectAttempts, "reconnect_delay", c.ReconnectDelay,
		"backoff_multiplier", c.BackoffMultiplier, "max_reconnect_delay", c.MaxReconnectDelay, "zombie_after", c.ZombieAfter)
	h := p.Health
	log.Debug("policy: health", "enabled", h.Enabled, "interval", h.Interval, "timeout", h.Timeout, "retries", h.Retries)
	for _, chk := range h.Checks {
		kind := chk.Type
		if chk.Plugin != "" {
			kind = "plugin " + chk.Plugin
		}
		log.Debug("policy: health check", "name", chk.Name, "kind", kind, "critical", chk.Critical)
	}
	b := p.CircuitBreaker
	log.Debug("policy: circuit breaker", "failure_threshold", b.FailureThreshold, "monitoring_period", b.MonitoringPeriod,
		"open_timeout", b.OpenTimeout, "half_open_max_calls", b.HalfOpenMaxCalls, "recovery_threshold", b.RecoveryThreshold,
		"reset_timeout", b.ResetTimeout, "backoff_multiplier", b.BackoffMultiplier, "max_open_timeout", b.MaxOpenTimeout)
	d := p.Degradation
	log.Debug("policy: degradation", "enabled", d.Enabled, "recovery_delay", d.RecoveryDelay, "recover", d.Recover.Expr)
	for _, l := range d.Levels {
		log.Debug("policy: degradation level", "level", l.Level, "when", l.When.Expr, "actions", l.Actions, "generated", l.Generated)
	}
	for _, r := range p.Recovery {
		log.Debug("policy: recovery rule", "name", r.Name, "priority", r.Priority, "use", r.Use, "when", r.When.Expr,
			"max_attempts", r.MaxAttempts, "generated", r.Generated)
	}
	for _, pl := range p.Plugins {
		log.Debug("policy: plugin", "name", pl.Name, "path", pl.Path, "sha256_pinned", pl.SHA256 != "")
	}
}

// runConfigOptions are the configuration layers `lifeline run` loads.
func runConfigOptions(c *runOptions, lookup func(string) (string, bool)) []config.Option {
	opts := []config.Option{config.WithEnv(lookup)}
	if c.preset != "" {
		opts = append(opts, config.WithPreset(c.preset))
	}
	if c.policy != "" {
		opts = append(opts, config.WithPolicyFile(c.policy))
	}
	return opts
}

// logSources logs, at debug level, where each setting that is not a
// built-in default came from (the preset's line, the policy file's, an
// environment variable).
func logSources(log hclog.Logger, cfg *config.Config) {
	if !log.IsDebug() || cfg == nil {
		return
	}
	srcs := cfg.Sources()
	keys := make([]string, 0, len(srcs))
	for k, src := range srcs {
		if src.Kind != config.SourceDefault {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		log.Debug("config: setting", "key", k, "from", srcs[k].String())
	}
}

func policyName(p string) string {
	if p == "" {
		return "built-in default"
	}
	return p
}

// redactor replaces secrets in everything written through it.
type redactor struct {
	mu      sync.Mutex
	w       io.Writer
	secrets [][]byte
}

func newRedactor(w io.Writer, secrets ...string) *redactor {
	r := &redactor{w: w}
	for _, s := range secrets {
		if s = strings.TrimSpace(s); s != "" {
			r.secrets = append(r.secrets, []byte(s))
		}
	}
	return r
}

// Write writes p with every secret replaced by [REDACTED]. It reports
// len(p) written on success, as the caller's bytes were all handled.
func (r *redactor) Write(p []byte) (int, error) {
	out := p
	for _, s := range r.secrets {
		if bytes.Contains(out, s) {
			out = bytes.ReplaceAll(out, s, []byte("[REDACTED]"))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// progress logs each shard READY while a sharded bot starts ("5 of 8
// shards READY"); a single shard says nothing more than "ready".
func (r *runner) progress(p orchestrator.ShardProgress) {
	if p.Total > 1 {
		r.log.Info(p.String(), "shard", p.Shard, "after", p.Elapsed.Round(time.Millisecond))
	}
}

// pluginProgress logs each plugin of the policy as it comes up beside the
// connection: "plugin 2 of 3 started: NAME", with its pid and the time
// since the launch, or why it did not start (the host retries it).
func (r *runner) pluginProgress(p orchestrator.PluginProgress) {
	took := p.Elapsed.Round(time.Millisecond)
	if p.Err != "" {
		r.log.Warn(fmt.Sprintf("plugin %s did not start (%d of %d plugins done)", p.Name, p.Done, p.Total),
			"error", p.Err, "after", took)
		return
	}
	r.log.Info(fmt.Sprintf("plugin %d of %d started: %s", p.Started, p.Total, p.Name), "pid", p.PID, "took", took)
}
