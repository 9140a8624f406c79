package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/internal/demo"
)

func init() {
	register(command{
		Name:    "demo",
		Summary: "play the recovery story against the embedded fake Discord (no token needed)",
		Usage: `[--duration 1m] [--json] [--verbose]
Connects to a fake Discord on 127.0.0.1, then injects a zombie connection,
an outage and a REST rate-limit storm, printing every state change, health
change, breaker transition and recovery. Exits 0 when every incident
recovered with no message lost, 1 otherwise.`,
		Run: runDemo,
	})
}

func runDemo(ctx context.Context, env *cliEnv, args []string) int {
	fs := newFlagSet(env, "demo")
	duration := fs.Duration("duration", demo.DefaultDuration, fmt.Sprintf("length of the story (at least %s)", demo.MinDuration))
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	verbose := fs.Bool("verbose", false, "also print lifeline's own logs (to stderr)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(env, fs, "unexpected argument %q", fs.Arg(0))
	}
	if *duration < demo.MinDuration {
		return usageError(env, fs, "--duration %s is shorter than %s", *duration, demo.MinDuration)
	}
	opts := demo.Options{Out: env.Stdout, JSON: *asJSON, Duration: *duration}
	if *verbose {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Name: "lifeline", Output: env.Stderr, Level: hclog.Debug})
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
