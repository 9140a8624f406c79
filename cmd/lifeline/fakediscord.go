package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func init() {
	register(command{
		Name:    "fake-discord",
		Summary: "run the fake Discord (gateway and REST on one loopback port) for any bot to connect to",
		Usage: `[--listen 127.0.0.1:PORT] [--scenario FILE|NAME [--exit-after-scenario]] [flags]

Serves discordtest's fake Discord until SIGINT or SIGTERM. The first line on
stdout is machine-readable:

    rest=http://127.0.0.1:PORT/api/v10 gateway=ws://127.0.0.1:PORT/gateway

Point a bot's REST base URL and gateway URL there and give it the token
(--token, default "` + discordtest.DefaultToken + `"). Durations left at 0 take
Discord's value divided by --scale. --scenario plays a scenario file, or one of
the shipped scenarios by name (--list-scenarios); a malformed file exits 2 with
file:line:col and the reason. Only loopback addresses are served unless
--allow-remote is given.`,
		Run: runFakeDiscord,
	})
}

// fakeDiscordConfig is what the fake-discord flags set besides the
// discordtest.Options they fill directly.
type fakeDiscordConfig struct {
	opts              discordtest.Options
	guilds            int
	privileged        string
	scenario          string
	exitAfterScenario bool
	listScenarios     bool
	logLevel          string
}

// fakeDiscordFlags defines the fake-discord flags on a new FlagSet.
func fakeDiscordFlags(env *cliEnv) (*flag.FlagSet, *fakeDiscordConfig) {
	fs := newFlagSet(env, "fake-discord")
	c := &fakeDiscordConfig{}
	o := &c.opts
	fs.StringVar(&o.Addr, "listen", discordtest.DefaultAddr, "`address` to serve on (port 0 picks a free port)")
	fs.BoolVar(&o.AllowNonLoopback, "allow-remote", false, "allow a --listen address other than loopback (the fake then answers anyone who can reach it)")
	fs.StringVar(&o.Token, "token", discordtest.DefaultToken, "bot `token` the fake accepts; never printed")
	fs.StringVar(&c.scenario, "scenario", "", "scenario `file` to play, or the name of a shipped scenario")
	fs.BoolVar(&c.exitAfterScenario, "exit-after-scenario", false, "stop once the scenario's last effect has ended (needs --scenario)")
	fs.BoolVar(&c.listScenarios, "list-scenarios", false, "list the shipped scenarios and exit")
	fs.Float64Var(&o.Scale, "scale", 1, "divide Discord's timings (and scenario times) by `N`: 100 turns the 41.25s heartbeat into 412ms")
	fs.DurationVar(&o.HeartbeatInterval, "heartbeat", 0, "heartbeat_interval sent in HELLO (0: 41.25s / scale)")
	fs.DurationVar(&o.HeartbeatTimeout, "heartbeat-timeout", 0, "close with 4009 after this long without a heartbeat (0: 2 x heartbeat; negative: never)")
	fs.DurationVar(&o.IdentifyWindow, "identify-window", 0, "identify rate-limit window per bucket (0: 5s / scale)")
	fs.DurationVar(&o.SessionExpiry, "session-expiry", 0, "how long a disconnected session stays resumable (0: 2m / scale)")
	fs.DurationVar(&o.SessionStartReset, "session-start-reset", 0, "period of the session-start budget (0: 24h / scale)")
	fs.IntVar(&o.SessionStartTotal, "session-start-total", discordtest.DefaultSessionStartTotal, "IDENTIFYs allowed per session-start period")
	fs.IntVar(&o.MaxConcurrency, "max-concurrency", discordtest.DefaultMaxConcurrency, "session_start_limit.max_concurrency (identify buckets)")
	fs.IntVar(&c.guilds, "guilds", discordtest.DefaultGuilds, "guilds the bot is in (0: none)")
	fs.IntVar(&o.RecommendedShards, "shards", 0, "shard count /gateway/bot recommends (0: one per 1000 guilds, at least 1)")
	fs.IntVar(&o.MaxGuildsPerShard, "max-guilds-per-shard", discordtest.DefaultMaxGuildsPerShard, "an IDENTIFY whose shard would hold more guilds closes with 4011")
	fs.StringVar(&c.privileged, "privileged-intents", "", "comma-separated privileged `intents` the bot may ask for (GuildMembers, GuildPresences, MessageContent, or all); others close with 4014")
	fs.DurationVar(&o.DispatchInterval, "dispatch-interval", 0, "send every live session a MESSAGE_CREATE at this interval (0: off)")
	fs.IntVar(&o.SendLimit, "send-limit", discordtest.DefaultSendLimit, "frames a client may send per send-limit window before 4008")
	fs.DurationVar(&o.SendLimitWindow, "send-limit-window", 0, "the send limit's sliding window (0: 60s / scale)")
	fs.IntVar(&o.ReplayBuffer, "replay-buffer", discordtest.DefaultReplayBuffer, "dispatches a session keeps for RESUME")
	fs.IntVar(&o.RESTBucketLimit, "rest-bucket-limit", discordtest.DefaultRESTBucketLimit, "REST requests per route bucket per bucket window")
	fs.DurationVar(&o.RESTBucketWindow, "rest-bucket-window", 0, "REST bucket window (0: 5s / scale)")
	fs.IntVar(&o.GlobalLimit, "global-limit", discordtest.DefaultGlobalLimit, "REST requests per global window across all routes")
	fs.DurationVar(&o.GlobalWindow, "global-window", 0, "REST global window (0: 1s / scale)")
	fs.IntVar(&o.InvalidRequestLimit, "invalid-request-limit", discordtest.DefaultInvalidRequestLimit, "invalid REST requests per invalid-request window before a Cloudflare-style ban")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of the pseudo-random choices (which requests a REST error rate hits)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log `level` on stderr: trace, debug, info, warn, error or off")
	return fs, c
}

// runFakeDiscord is `lifeline fake-discord`.
func runFakeDiscord(ctx context.Context, env *cliEnv, args []string) int {
	fs, c := fakeDiscordFlags(env)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, "unexpected argument %q", fs.Arg(0))
	}
	if c.listScenarios {
		return listScenarios(env)
	}
	if c.exitAfterScenario && c.scenario == "" {
		return usageError(env, fs, "--exit-after-scenario needs --scenario")
	}
	if err := c.finish(env); err != nil {
		return usageError(env, fs, "%v", err)
	}

	var sc *discordtest.Scenario
	if c.scenario != "" {
		var err error
		if sc, err = loadScenario(c.scenario); err != nil {
			return scenarioFailure(env, err)
		}
	}

	srv, err := discordtest.NewServer(c.opts)
	switch {
	case errors.Is(err, discordtest.ErrNotLoopback):
		fmt.Fprintf(env.Stderr, "lifeline fake-discord: --listen %s is not a loopback address; the fake serves this machine only unless --allow-remote is given\n", c.opts.Addr)
		return 2
	case errors.Is(err, discordtest.ErrInvalidOptions):
		return usageError(env, fs, "%v", err)
	case err != nil:
		fmt.Fprintf(env.Stderr, "lifeline fake-discord: %v\n", err)
		return 1
	}
	start := c.opts.Clock.Now()

	fmt.Fprintf(env.Stdout, "rest=%s gateway=%s\n", srv.RESTURL(), srv.GatewayURL())
	tokenNote := "as given with --token"
	if c.opts.Token == discordtest.DefaultToken {
		tokenNote = fmt.Sprintf("%q (the default; choose one with --token)", discordtest.DefaultToken)
	}
	fmt.Fprintf(env.Stderr, "fake Discord on %s: REST %s, gateway %s, resume %s\n", srv.Addr(), srv.RESTURL(), srv.GatewayURL(), srv.ResumeURL())
	fmt.Fprintf(env.Stderr, "heartbeat %v, %d guild(s), bot token: %s; stop with Ctrl-C\n", srv.HeartbeatInterval(), len(srv.Guilds()), tokenNote)

	code := 0
	scenarioDone := make(chan error, 1)
	runCtx, cancel := context.WithCancel(ctx)
	if sc != nil {
		fmt.Fprintf(env.Stderr, "scenario %s (%s): %d step(s) over %v of Discord time, %v at scale %g\n",
			sc.Name, sc.File, len(sc.Steps), sc.Length(), scaleDuration(sc.Length(), srv.Scale()), srv.Scale())
		go func() {
			scenarioDone <- sc.Run(runCtx, srv, func(st discordtest.Step) {
				fmt.Fprintf(env.Stderr, "scenario %s: %s\n", sc.Name, describeStep(sc, st))
			})
		}()
	}
	// Wait for a signal, or for the scenario (and then, with
	// --exit-after-scenario, for its last effect) to end.
	var endTimer clock.Timer
	var ended <-chan time.Time
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err := <-scenarioDone:
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, discordtest.ErrClosed) {
				fmt.Fprintf(env.Stderr, "lifeline fake-discord: scenario %s: %v\n", sc.Name, err)
				code = 1
				break wait
			}
			fmt.Fprintf(env.Stderr, "scenario %s: every step injected\n", sc.Name)
			if c.exitAfterScenario {
				left := scaleDuration(sc.Length(), srv.Scale()) - c.opts.Clock.Since(start)
				endTimer = c.opts.Clock.NewTimer(max(left, 0))
				ended = endTimer.C()
			}
		case <-ended:
			fmt.Fprintf(env.Stderr, "scenario %s: ended\n", sc.Name)
			break wait
		}
	}
	cancel()
	if endTimer != nil {
		endTimer.Stop()
	}
	if err := srv.Close(); err != nil {
		fmt.Fprintf(env.Stderr, "lifeline fake-discord: close: %v\n", err)
		code = 1
	}
	fmt.Fprintln(env.Stderr, ledgerSummary(srv.Ledger()))
	return code
}

// finish turns the flags into Options: the clock, the logger, the guild
// count and the privileged intents.
func (c *fakeDiscordConfig) finish(env *cliEnv) error {
	c.opts.Clock = clock.Real{}
	if _, _, err := net.SplitHostPort(c.opts.Addr); err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT (%v)", c.opts.Addr, err)
	}
	if c.opts.Token == "" || strings.ContainsAny(c.opts.Token, " \t\r\n") {
		return errors.New("--token must be non-empty and without white space")
	}
	if c.opts.Scale <= 0 {
		return fmt.Errorf("--scale %g: want a number above 0", c.opts.Scale)
	}
	switch {
	case c.guilds < 0:
		return fmt.Errorf("--guilds %d: want 0 or more", c.guilds)
	case c.guilds == 0:
		c.opts.Guilds = -1 // discordtest: negative means none
	default:
		c.opts.Guilds = c.guilds
	}
	if c.opts.RecommendedShards < 0 {
		return fmt.Errorf("--shards %d: want 0 or more", c.opts.RecommendedShards)
	}
	bits, err := privilegedIntents(c.privileged)
	if err != nil {
		return err
	}
	c.opts.PrivilegedIntents = bits
	level := hclog.LevelFromString(c.logLevel)
	if level == hclog.NoLevel {
		return fmt.Errorf("--log-level %q: want trace, debug, info, warn, error or off", c.logLevel)
	}
	c.opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "fake-discord", Output: env.Stderr, Level: level})
	return nil
}

// privilegedIntents parses --privileged-intents: intent names (any case,
// as in policy files) or "all".
func privilegedIntents(list string) (int64, error) {
	var bits int64
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			continue
		case strings.EqualFold(name, "all"):
			bits |= discordtest.IntentsPrivileged
			continue
		}
		in, ok := policy.LookupIntent(name)
		if !ok {
			return 0, fmt.Errorf("--privileged-intents: unknown intent %q", name)
		}
		if !in.Privileged {
			return 0, fmt.Errorf("--privileged-intents: %s is not privileged (every bot may ask for it)", in.Name)
		}
		bits |= int64(in.Bit)
	}
	return bits, nil
}

// loadScenario reads the scenario file name, or the shipped scenario of that
// name when no such file exists.
func loadScenario(name string) (*discordtest.Scenario, error) {
	sc, err := discordtest.LoadScenario(name)
	if errors.Is(err, fs.ErrNotExist) {
		for _, b := range discordtest.Scenarios() {
			if b == name {
				return discordtest.BuiltinScenario(name)
			}
		}
		return nil, fmt.Errorf("--scenario %s: no such file, and no shipped scenario of that name (%s)", name, strings.Join(discordtest.Scenarios(), ", "))
	}
	return sc, err
}

// scenarioFailure reports a scenario that cannot be used, one diagnostic a
// line (file:line:col: error: reason), and returns 2.
func scenarioFailure(env *cliEnv, err error) int {
	var se *discordtest.ScenarioError
	if errors.As(err, &se) {
		for _, line := range policy.DiagnosticLines(se.Diagnostics) {
			fmt.Fprintln(env.Stderr, line)
		}
		fmt.Fprintf(env.Stderr, "lifeline fake-discord: invalid scenario (%d problem(s))\n", len(se.Diagnostics.Errs()))
		return 2
	}
	fmt.Fprintf(env.Stderr, "lifeline fake-discord: %v\n", err)
	return 2
}

// listScenarios prints the shipped scenarios with their descriptions.
func listScenarios(env *cliEnv) int {
	for _, name := range discordtest.Scenarios() {
		sc, err := discordtest.BuiltinScenario(name)
		if err != nil {
			fmt.Fprintf(env.Stderr, "lifeline fake-discord: shipped scenario %s: %v\n", name, err)
			return 1
		}
		fmt.Fprintf(env.Stdout, "%-22s %d step(s), %v: %s\n", name, len(sc.Steps), sc.Length(), sc.Description)
	}
	return 0
}

// scaleDuration divides a Discord-time duration by scale, as the fake does.
func scaleDuration(d time.Duration, scale float64) time.Duration {
	if scale <= 0 {
		return d
	}
	return time.Duration(float64(d) / scale)
}

// describeStep renders a scenario step as "at 10s stall_acks shards=[0]
// duration=3m0s (zombie.hcl:13)", naming only the fields its fault uses.
func describeStep(sc *discordtest.Scenario, st discordtest.Step) string {
	f := st.Fault
	parts := []string{"at " + st.At.String(), string(f.Kind)}
	if f.Shards != nil {
		parts = append(parts, fmt.Sprintf("shards=%v", f.Shards))
	}
	add := func(ok bool, format string, v any) {
		if ok {
			parts = append(parts, fmt.Sprintf(format, v))
		}
	}
	add(f.Duration != 0, "duration=%v", f.Duration)
	add(f.Delay != 0, "delay=%v", f.Delay)
	add(f.Code != 0, "code=%d", f.Code)
	add(f.Kind == discordtest.FaultInvalidSession, "resumable=%t", f.Resumable)
	add(f.Rate != 0, "rate=%g", f.Rate)
	add(f.Status != 0, "status=%d", f.Status)
	add(f.Global, "global=%t", f.Global)
	add(f.RetryAfter != 0, "retry_after=%v", f.RetryAfter)
	add(f.Mode != "", "mode=%s", f.Mode)
	add(f.Count != 0, "count=%d", f.Count)
	return fmt.Sprintf("%s (%s:%d)", strings.Join(parts, " "), sc.File, st.Line)
}

// ledgerSummary is the one line printed when the fake stops.
func ledgerSummary(l *discordtest.Ledger) string {
	violations := map[string]int{}
	for _, v := range l.Violations() {
		violations[string(v.Kind)]++
	}
	kinds := make([]string, 0, len(violations))
	for k, n := range violations {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	vs := "none"
	if len(kinds) > 0 {
		vs = strings.Join(kinds, " ")
	}
	return fmt.Sprintf("stopped: %d gateway connection(s), %d session(s), %d IDENTIFY(s), %d REST request(s); limit violations: %s",
		len(l.Connections()), len(l.Sessions()), len(l.Identifies()), len(l.REST()), vs)
}
