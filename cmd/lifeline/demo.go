package main

import (
	"context"
	"flag"
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
		Usage: `[--duration 1m] [--json] [--verbose] [--http 127.0.0.1:8484|off] [--record FILE] [--shards N] [--fleet N]
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
incident hits them all.
With --fleet N (2 to 8) the story is a fleet's: N lifeline processes share
the shards (4 per process unless --shards says otherwise) through an
embedded NATS server, one is killed with kill -9 mid-story and its shards
move to the others by RESUME, it comes back and takes its share again by
handover, and all leave gracefully; it exits 0 when the fake Discord saw
one IDENTIFY per shard and no other, no broken limit, no shard run twice
and no lost dispatch.`,
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
	fleet := fs.Int("fleet", 0, "run the fleet story with `N` lifeline processes and an embedded NATS server (demo_fleet.go)")
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
	if *fleet != 0 {
		if *fleet < 2 || *fleet > maxDemoFleet {
			return usageError(env, fs, "--fleet %d: want 2 to %d processes", *fleet, maxDemoFleet)
		}
		n := 0 // 4 shards per process
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "shards" {
				n = *shards
			}
		})
		return runFleetDemo(ctx, env, *fleet, n)
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
