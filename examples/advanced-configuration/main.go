// Command advanced-configuration builds lifeline's configuration in layers —
// a preset, a policy file that sets every block, environment variables —
// prints where each value came from, and runs a bot with it. Without
// DISCORD_TOKEN it runs against the in-process fake Discord. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func main() {
	preset := flag.String("preset", "medium", "preset to start from: small, medium or large")
	policyFile := flag.String("policy", "policy.hcl", "policy file laid over the preset")
	duration := flag.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, *preset, *policyFile, os.LookupEnv, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// shown are the settings whose origin the example prints.
var shown = []string{"connection.intents", "connection.max_reconnect_attempts", "health.interval",
	"circuit_breaker.failure_threshold", "degradation.recovery_delay"}

func run(ctx context.Context, preset, policyFile string, env func(string) (string, bool), out io.Writer) error {
	var fake *discordtest.Server
	if v, ok := env("DISCORD_TOKEN"); !ok || v == "" {
		var err error
		fake, err = discordtest.NewServer(discordtest.Options{Scale: 10, Guilds: 1})
		if err != nil {
			return err
		}
		defer fake.Close()
		real := env
		env = func(name string) (string, bool) { // the fake's token stands in
			if name == "DISCORD_TOKEN" {
				return fake.Token(), true
			}
			return real(name)
		}
		fmt.Fprintln(out, "no DISCORD_TOKEN: running against the built-in fake Discord")
	}

	cfg, err := config.Load(config.WithPreset(preset), config.WithPolicyFile(policyFile), config.WithEnv(env))
	if err != nil {
		return err // every problem at once, with file:line:col or the variable's name
	}
	for _, key := range shown {
		if src, ok := cfg.Source(key); ok {
			fmt.Fprintf(out, "%-36s from %s\n", key, src)
		}
	}
	for _, w := range cfg.Warnings.Lines() {
		fmt.Fprintln(out, "warning:", w)
	}

	opts := []lifeline.Option{lifeline.WithPolicy(cfg.Policy)}
	if fake != nil {
		opts = append(opts, lifeline.WithNetwork(fake.Transport(), fake.Dialer()))
	}
	bot, err := lifeline.New(lifeline.Config{Token: cfg.Token.Reveal()}, opts...)
	if err != nil {
		return err
	}
	bot.AddEventListener(lifeline.StateChanged, func(e lifeline.Event) { fmt.Fprintln(out, "state:", e.Data.Summary()) })
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := bot.Start(startCtx); err != nil {
		return err
	}
	fmt.Fprintf(out, "connected with intents %v; breaker opens after %d failures\n",
		cfg.Policy.Connection.Intents, bot.Policy().CircuitBreaker.FailureThreshold)
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return bot.Stop(stopCtx)
}
