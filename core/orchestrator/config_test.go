package orchestrator_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// TestLayeredConfiguration: New builds the policy from the built-in
// defaults, the preset, the policy file, the environment and Settings, in
// that order, says where each value came from, and a reload of the file
// keeps the other layers.
func TestLayeredConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.hcl")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("connection {\n  max_reconnect_attempts = 3\n  reconnect_delay = \"4s\"\n}\nhealth {\n  interval = \"20s\"\n}\n")
	env := map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "12"}
	o, err := orchestrator.New(orchestrator.Config{Token: "test-token", PolicyFile: path, Preset: "large",
		Env:      func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Settings: []config.Option{config.Set("health.interval", 45*time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Stop(t.Context())
	large, err := config.Load(config.WithPreset("large"), config.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	check := func(stage string, delay time.Duration, delaySrc string) {
		t.Helper()
		p := o.Policy()
		c := p.Connection
		if c.MaxReconnectAttempts != 12 {
			t.Errorf("%s: max_reconnect_attempts %d; want 12 from the environment over the file's 3", stage, c.MaxReconnectAttempts)
		}
		if c.ReconnectDelay != delay {
			t.Errorf("%s: reconnect_delay %v; want %v", stage, c.ReconnectDelay, delay)
		}
		if p.Health.Interval != 45*time.Second {
			t.Errorf("%s: health.interval %v; want 45s from Settings over the file's 20s", stage, p.Health.Interval)
		}
		if got, want := p.CircuitBreaker.OpenTimeout, large.Policy.CircuitBreaker.OpenTimeout; got != want {
			t.Errorf("%s: open_timeout %v; want the large preset's %v", stage, got, want)
		}
		cfg := o.Configuration()
		if cfg == nil {
			t.Fatalf("%s: Configuration() is nil for a layered policy", stage)
		}
		for key, want := range map[string]string{
			"connection.max_reconnect_attempts": "env DISCORD_MAX_RECONNECT_ATTEMPTS",
			"connection.reconnect_delay":        delaySrc,
			"health.interval":                   `option Set("health.interval")`,
		} {
			if src, _ := cfg.Source(key); !strings.HasPrefix(src.String(), want) {
				t.Errorf("%s: %s came from %q; want %q", stage, key, src, want)
			}
		}
		if src, _ := cfg.Source("circuit_breaker.open_timeout"); !strings.HasPrefix(src.String(), "preset large") {
			t.Errorf("%s: open_timeout came from %q; want the large preset", stage, src)
		}
	}
	check("New", 4*time.Second, path+":3:")

	// The file drops its reconnect_delay: the preset's shows through, the
	// environment and Settings still win.
	write("connection {\n  max_reconnect_attempts = 3\n}\nhealth {\n  interval = \"20s\"\n}\n")
	if err := o.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	check("after reload", large.Policy.Connection.ReconnectDelay, "preset large")

	// A SetPolicy of a plain policy has no layers to report.
	if err := o.SetPolicy(policy.Default()); err != nil {
		t.Fatal(err)
	}
	if o.Configuration() != nil {
		t.Error("Configuration() after SetPolicy(policy.Default()) is not nil")
	}
}

// TestLayeredConfigurationErrors: a malformed environment variable fails
// New naming it; Policy with Preset is refused; an unknown preset is
// named.
func TestLayeredConfigurationErrors(t *testing.T) {
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	path := filepath.Join(t.TempDir(), "bot.hcl")
	if err := os.WriteFile(path, []byte("health {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  orchestrator.Config
		want []string
	}{
		{"env without file", orchestrator.Config{Env: env(map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "ten", "DISCORD_INTENTS": "Guilds,GuildMesages"})},
			[]string{`env DISCORD_MAX_RECONNECT_ATTEMPTS="ten"`, "env DISCORD_INTENTS"}},
		{"env with file", orchestrator.Config{PolicyFile: path, Env: env(map[string]string{"DISCORD_AUTO_RECONNECT": "maybe"})},
			[]string{`env DISCORD_AUTO_RECONNECT="maybe"`}},
		{"unknown preset", orchestrator.Config{Preset: "huge"}, []string{"huge", "Unknown preset"}},
		{"policy and preset", orchestrator.Config{Policy: policy.Default(), Preset: "small"}, []string{"cannot be combined"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Token = "test-token"
			o, err := orchestrator.New(tc.cfg)
			if err == nil {
				o.Stop(t.Context())
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tc.name == "policy and preset" && !errors.Is(err, orchestrator.ErrPolicyAndLayers) {
				t.Errorf("error %v is not ErrPolicyAndLayers", err)
			}
		})
	}
}

// TestTokenFromEnvironment: without Config.Token, New reads the variable
// the policy names through Env, and fails with ErrNoToken when it is
// unset.
func TestTokenFromEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.hcl")
	if err := os.WriteFile(path, []byte("connection {\n  token = env(\"MY_BOT_TOKEN\")\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MY_BOT_TOKEN": "from-my-variable", "DISCORD_TOKEN": "not-this-one"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var seen string
	o, err := orchestrator.New(orchestrator.Config{PolicyFile: path, Env: lookup,
		Tune: func(c *conn.Config) { seen = c.Token }})
	if err != nil {
		t.Fatal(err)
	}
	o.Stop(t.Context())
	if seen != "from-my-variable" {
		t.Errorf("the connection got token %q; want MY_BOT_TOKEN's", seen)
	}
	delete(env, "MY_BOT_TOKEN")
	if _, err := orchestrator.New(orchestrator.Config{PolicyFile: path, Env: lookup}); !errors.Is(err, orchestrator.ErrNoToken) {
		t.Errorf("New without the named variable: %v; want ErrNoToken", err)
	}
}
