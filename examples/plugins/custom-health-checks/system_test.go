package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// within bounds every wait on the running system: generous, since CI
// machines are shared; it is never slept.
const within = 30 * time.Second

// TestExampleRunsAgainstTheFakeDiscordAndReloads runs policy.hcl as a bot
// would, against the fake Discord: lifeline starts the real plugin, the
// stalled worker fails its check and the policy degrades the bot to
// MINIMAL. Then live reloads of the policy file reconfigure the plugin (a
// new heartbeat path, same process), add a second plugin block (a new
// process, the first one untouched) and remove both (processes ended,
// checks gone), while the connection stays READY.
func TestExampleRunsAgainstTheFakeDiscordAndReloads(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	stale := filepath.Join(t.TempDir(), "stale.heartbeat")
	fresh := filepath.Join(t.TempDir(), "fresh.heartbeat")
	for _, f := range []string{stale, fresh} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-5 * time.Minute)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	// The example's policy, its checks run every second rather than every
	// 10s so that the test is quick.
	example := strings.NewReplacer(`interval = "10s"`, `interval = "1s"`, `timeout  = "2s"`, `timeout  = "900ms"`).Replace(string(src))
	if !strings.Contains(example, `interval = "1s"`) || !strings.Contains(example, `timeout  = "900ms"`) {
		t.Fatalf("policy.hcl changed shape: update this test\n%s", src)
	}
	// policy.hcl sits beside bin/worker-heartbeat, as its path expects.
	policyPath := filepath.Join(dir, "system-policy.hcl")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(policyPath, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(example)

	var mu sync.Mutex
	var seen []events.Event
	bot, err := lifeline.New(lifeline.Config{
		Token:        srv.Token(),
		PolicyFile:   policyPath,
		TickInterval: 50 * time.Millisecond,
		Env: func(name string) (string, bool) {
			if name == "WORKER_HEARTBEAT" {
				return stale, true
			}
			return "", false
		},
	}, lifeline.WithNetwork(srv.Transport(), srv.Dialer()))
	if err != nil {
		t.Fatal(err)
	}
	bot.AddEventListener(lifeline.All, func(e events.Event) {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := bot.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		if err := bot.Stop(stopCtx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()

	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				var lines []string
				for _, e := range seen {
					lines = append(lines, e.Type.String()+" "+e.Data.Summary())
				}
				t.Fatalf("%s: not within %s; events:\n%s", what, within, strings.Join(lines, "\n"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	worker := func(name string) *health.Result {
		for _, c := range bot.HealthMonitor().Diagnostics().Checks {
			if c.Name == name {
				return c.Last
			}
		}
		return nil
	}
	pids := func() map[string]int {
		out := map[string]int{}
		for _, st := range bot.Plugins().Status() {
			out[st.Name] = st.PID
		}
		return out
	}
	reload := func(src string) {
		t.Helper()
		write(src)
		if err := bot.ReloadPolicy(); err != nil {
			t.Fatal(err)
		}
	}

	// The stalled worker: its check fails in the running bot, the score
	// drops, and the policy's minimal level switches analytics off.
	eventually("the stale worker degrades the bot to MINIMAL", func() bool {
		r := worker("worker")
		return r != nil && !r.Passed && strings.HasPrefix(r.Message, "last heartbeat 5m") &&
			bot.Degradation().Level() == lifeline.LevelMinimal
	})
	eventually("DEGRADATION_ACTIVATED to MINIMAL for the policy's health.score condition", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range seen {
			if d, ok := e.Data.(events.Degradation); ok && d.Activated && d.To == "MINIMAL" && strings.Contains(d.Reason, "health.score < 80") {
				return true
			}
		}
		return false
	})
	if st := bot.Diagnostics().State; st != "READY" {
		t.Fatalf("connection %s, want READY", st)
	}
	first := pids()["worker-heartbeat"]
	if first == 0 {
		t.Fatalf("plugin not running: %+v", bot.Plugins().Status())
	}

	// Reconfigure: the check block's config names the fresh heartbeat. The
	// same process answers with the new config.
	reconfigured := strings.Replace(example, `env("WORKER_HEARTBEAT", "/tmp/worker.heartbeat")`, `"`+fresh+`"`, 1)
	if reconfigured == example {
		t.Fatalf("policy.hcl no longer reads WORKER_HEARTBEAT: update this test\n%s", src)
	}
	reload(reconfigured)
	eventually("the reconfigured check passes", func() bool {
		r := worker("worker")
		return r != nil && r.Passed
	})
	if got := pids()["worker-heartbeat"]; got != first {
		t.Fatalf("a config change restarted the plugin: pid %d, was %d", got, first)
	}

	// Add: a second plugin block (the same binary under another name) with
	// its own check. It starts; the first plugin is left alone.
	added := strings.Replace(reconfigured, "\nplugin \"worker-heartbeat\" {", `
plugin "second-worker" {
  path = "./bin/worker-heartbeat"
}

plugin "worker-heartbeat" {`, 1)
	added = strings.Replace(added, "  check \"worker\" {", `  check "second" {
    plugin = "second-worker"
    config = { path = "`+fresh+`" }
  }
  check "worker" {`, 1)
	reload(added)
	eventually("the added plugin's check passes", func() bool {
		r := worker("second")
		return r != nil && r.Passed && pids()["second-worker"] != 0
	})
	second := pids()["second-worker"]
	if got := pids()["worker-heartbeat"]; got != first || second == first {
		t.Fatalf("after adding a plugin: pids %v, the first was %d", pids(), first)
	}

	// Remove: a policy without plugins ends both processes and drops their
	// checks; the connection never noticed.
	reload("health {\n  check \"gateway\" {\n    type = \"gateway\"\n  }\n}\n")
	eventually("both plugins exited", func() bool {
		return len(bot.Plugins().Status()) == 0 && !processAlive(first) && !processAlive(second)
	})
	if worker("worker") != nil || worker("second") != nil {
		t.Fatalf("removed plugin checks are still in the monitor: %+v", bot.HealthMonitor().Diagnostics().Checks)
	}
	if st := bot.Diagnostics().State; st != "READY" {
		t.Fatalf("connection %s after the reloads, want READY", st)
	}
	// Events reach listeners asynchronously: wait for both exits.
	count := func(typ events.Type) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, e := range seen {
			if e.Type == typ {
				n++
			}
		}
		return n
	}
	eventually("PLUGIN_EXITED for both", func() bool { return count(events.PluginExited) >= 2 })
	if s, e := count(events.PluginStarted), count(events.PluginExited); s != 2 || e != 2 {
		t.Fatalf("plugin events: %d started, %d exited; want 2 and 2 (no restart)", s, e)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range seen {
		if d, ok := e.Data.(events.StateChange); ok && d.From == "READY" {
			t.Errorf("the connection left READY: %s", d.Summary())
		}
	}
}

// processAlive reports whether pid still exists (it has not been reaped).
func processAlive(pid int) bool {
	return pid > 0 && !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
