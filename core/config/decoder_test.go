package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/config"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// TestDecoderLayersEveryReload runs a real policy.Watcher on a real file
// with config.Decoder: the preset and the environment are applied on the
// first load and again on each reload, the file's own values win over the
// preset, the environment wins over the file, and a broken file keeps the
// layered generation in force with diagnostics at file:line:col.
func TestDecoderLayersEveryReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.hcl")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("health {\n  interval = \"20s\"\n}\n")
	env := map[string]string{"DISCORD_MAX_RECONNECT_ATTEMPTS": "12", "DISCORD_TOKEN": "secret-token-value"}
	var last atomic.Pointer[config.Config]
	w, err := policy.NewWatcher(policy.WatcherOptions{Path: path, Clock: clock.NewFake(time.Time{}),
		Load: config.Decoder(func(c *config.Config) { last.Store(c) },
			config.WithPreset("medium"), config.WithEnv(mapEnv(env)))})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	medium, err := config.Load(config.WithPreset("medium"), config.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	check := func(stage string, interval time.Duration) {
		t.Helper()
		p := w.Policy()
		if got := p.Health.Interval; got != interval {
			t.Errorf("%s: health.interval %v; want %v (the file's)", stage, got, interval)
		}
		if got := p.Connection.MaxReconnectAttempts; got != 12 {
			t.Errorf("%s: max_reconnect_attempts %d; want 12 (env)", stage, got)
		}
		if got, want := p.Connection.ReconnectDelay, medium.Policy.Connection.ReconnectDelay; got != want {
			t.Errorf("%s: reconnect_delay %v; want the medium preset's %v", stage, got, want)
		}
		c := last.Load()
		if c == nil || c.Policy != p {
			t.Fatalf("%s: onLoad did not receive the Config of the policy in force", stage)
		}
		if src, _ := c.Source("connection.max_reconnect_attempts"); src.String() != "env DISCORD_MAX_RECONNECT_ATTEMPTS" {
			t.Errorf("%s: source of max_reconnect_attempts %q", stage, src)
		}
		if src, _ := c.Source("health.interval"); !strings.HasPrefix(src.String(), path+":2:") {
			t.Errorf("%s: source of health.interval %q; want %s:2:…", stage, src, path)
		}
	}
	check("first load", 20*time.Second)

	write("health {\n  interval = \"25s\"\n}\n")
	if g, err := w.Reload(); err != nil || g.Number != 2 {
		t.Fatalf("reload: %v", err)
	}
	check("reload", 25*time.Second)

	write("health {\n  interval = \"25s\"\n  retries = 42\n}\n")
	_, err = w.Reload()
	var de *policy.DiagnosticsError
	if !errors.As(err, &de) || w.Current().Number != 2 {
		t.Fatalf("broken edit: %v; want a DiagnosticsError and generation 2 kept", err)
	}
	if !strings.Contains(err.Error(), path+":3:") {
		t.Errorf("broken edit: %q does not point at %s:3", err, path)
	}
	check("after a broken edit", 25*time.Second)
}

// TestDecoderEnvErrorNamesVariable: a malformed environment variable
// fails the watcher's load with a diagnostic that names the variable and
// never echoes the token.
func TestDecoderEnvErrorNamesVariable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bot.hcl")
	if err := os.WriteFile(path, []byte("health {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	token := "MTk4NjIyNDgzNDcxOTI1MjQ4.Cl2FMQ.ZnCjm1XVW7vRze4b7Cq4se7kKWs"
	env := map[string]string{"DISCORD_TOKEN": token, "DISCORD_MAX_RECONNECT_ATTEMPTS": "ten", "DISCORD_AUTO_RECONNECT": token}
	_, err := policy.NewWatcher(policy.WatcherOptions{Path: path, Load: config.Decoder(nil, config.WithEnv(mapEnv(env)))})
	if err == nil {
		t.Fatal("NewWatcher accepted DISCORD_MAX_RECONNECT_ATTEMPTS=ten")
	}
	msg := err.Error()
	for _, want := range []string{`env DISCORD_MAX_RECONNECT_ATTEMPTS="ten"`, "env DISCORD_AUTO_RECONNECT"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, token) {
		t.Errorf("error repeats the token: %q", msg)
	}
}

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
