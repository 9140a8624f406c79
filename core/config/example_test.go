package config_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/config"
)

func ExampleLoad() {
	env := map[string]string{
		"DISCORD_TOKEN":                  "never printed",
		"DISCORD_MAX_RECONNECT_ATTEMPTS": "20",
	}
	policyFile := []byte(`
health {
  interval = "20s"
}
`)
	cfg, err := config.Load(
		config.WithPreset("medium"),
		config.WithPolicySource("bot.hcl", policyFile),
		config.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }),
		config.Set("circuit_breaker.open_timeout", 45*time.Second),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, key := range []string{"connection.max_reconnect_attempts", "connection.reconnect_delay", "health.interval", "health.enabled", "circuit_breaker.open_timeout", "connection.token"} {
		src, _ := cfg.Source(key)
		fmt.Printf("%-34s %s\n", key, src)
	}
	fmt.Println("token:", cfg.Token)
	// Output:
	// connection.max_reconnect_attempts  env DISCORD_MAX_RECONNECT_ATTEMPTS
	// connection.reconnect_delay         preset medium (policies/medium.hcl:14:3)
	// health.interval                    bot.hcl:3:3
	// health.enabled                     default
	// circuit_breaker.open_timeout       option Set("circuit_breaker.open_timeout")
	// connection.token                   env DISCORD_TOKEN
	// token: [REDACTED]
}

func ExampleLoad_problems() {
	env := map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "ten", "DISCORD_INTENTS": "Guilds,GuildMesages"}
	_, err := config.Load(
		config.WithPolicySource("bot.hcl", []byte("health {\n  retries = 42\n}\n")),
		config.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }),
	)
	var cerr *config.Error
	if errors.As(err, &cerr) {
		for _, d := range cerr.Diagnostics {
			fmt.Println(d.Source, "-", d.Summary)
		}
	}
	// Output:
	// env DISCORD_INTENTS - Invalid value
	// env DISCORD_MAX_RECONNECT_ATTEMPTS - Invalid value
	// bot.hcl:2:13 - Value out of range
}

func ExampleRecommend() {
	r, err := config.Recommend(config.Production, 12000)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("preset:", r.Preset, "shards:", r.Shards)
	for _, reason := range r.Reasons {
		if reason.Setting != "" {
			fmt.Println(reason.Setting, "=", reason.Value)
		}
	}
	// Output:
	// preset: large shards: 12
	// connection.shards = 12
	// connection.max_reconnect_attempts = 0
}

func ExampleExport() {
	cfg, err := config.Load(config.WithPreset("small"), config.WithEnv(nil))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := config.Export(cfg, config.FormatJSON)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The file loads back to the same configuration.
	back, err := config.Load(config.WithPolicySource("exported.json", out), config.WithEnv(nil))
	fmt.Println(err == nil, back.Policy.CircuitBreaker.FailureThreshold == cfg.Policy.CircuitBreaker.FailureThreshold)
	// Output:
	// true true
}
