package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/internal/demo"
)

func init() {
	register(command{
		Name:    "demo",
		Summary: "play the recovery story against the embedded fake Discord (no token needed)",
		Usage: `[--duration 1m] [--json] [--verbose] [--http 127.0.0.1:8484|off] [--record FILE] [--shards N]
Connects to a fake Discord on 127.0.0.1, then injects a zombie connection,
a latency spike, a REST rate-limit storm, a REST error burst and an outage,
then crashes a health-check plugin mid-call (the plugin is this binary,
started by lifeline as a plugin process; its degradation action holds the
bot's welcome DMs during the outage), printing every state change,
health change, breaker transition, degradation level, plugin exit and start
and recovery, and serving the live dashboard on --http. Exits 0 when every
incident recovered, the level is back to NONE, the plugin was restarted
while the bot stayed connected and no message was lost, 1 otherwise.
With --shards N the bot runs N shards in one process: they start in identify
order ("2 of 4 shards READY"), the zombie is one shard's, and every other
incident hits them all.`,
		Run: runDemo,
	})
}

// serveDemoPlugin serves the demo's plugin when the binary was started with
// demo.PluginArg, and reports whether it did. The demo starts its own
// executable that way as its plugin process, so `go run ./cmd/lifeline demo`
// needs no prebuilt plugin. The argument is not a command: help does not
// list it.
func serveDemoPlugin(args []string) bool {
	if len(args) == 0 || args[0] != demo.PluginArg {
		return false
	}
	demo.ServePlugin()
	return true
}

// maxDemoShards bounds --shards: the story runs against one embedded fake
// Discord on this machine.
const maxDemoShards = 64

func runDemo(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "demo")
	duration := fs.Duration("duration", demo.DefaultDuration, fmt.Sprintf("length of the story (at least %s)", demo.MinDuration))
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	verbose := fs.Bool("verbose", false, "also print lifeline's own logs (to stderr)")
	record := fs.String("record", "", "flight recorder: one JSON line per tick to `file` (replay with lifeline policy test)")
	httpAddr := fs.String("http", "127.0.0.1:8484", "serve the dashboard, /metrics and /health here during the story (loopback only; off: none)")
	shards := fs.Int("shards", 1, "run the story with `N` shards in one process")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, "unexpected argument %q", fs.Arg(0))
	}
	if *duration < demo.MinDuration {
		return usageError(env, fs, "--duration %s is shorter than %s", *duration, demo.MinDuration)
	}
	if *shards < 1 || *shards > maxDemoShards {
		return usageError(env, fs, "--shards %d: want 1 to %d", *shards, maxDemoShards)
	}
	opts := demo.Options{Out: env.Stdout, JSON: *asJSON, Duration: *duration, Record: *record, Shards: *shards}
	if *verbose {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "lifeline", Output: env.Stderr, Level: hclog.Debug})
	}
	if *httpAddr != "off" && *httpAddr != "" {
		ln, err := telemetry.Listen(*httpAddr, "")
		if err != nil {
			// A busy port must not spoil the story: say so and go on.
			fmt.Fprintf(env.Stderr, "lifeline demo: no dashboard: %v\n", err)
		} else {
			opts.HTTP = ln
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *duration+time.Minute)
	defer cancel()
	res, err := demo.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(env.Stderr, "lifeline demo: %v\n", err)
		return 1
	}
	if !res.OK() {
		return 1
	}
	return 0
}
