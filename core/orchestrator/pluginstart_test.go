package orchestrator_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// workerBuild is the example worker-heartbeat plugin, built once for the
// package's tests (TestMain removes its directory).
var workerBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// workerPlugin returns the built example plugin.
func workerPlugin(t *testing.T) string {
	t.Helper()
	workerBuild.once.Do(func() {
		if workerBuild.dir, workerBuild.err = os.MkdirTemp("", "lifeline-orchestrator-test-"); workerBuild.err != nil {
			return
		}
		workerBuild.bin = filepath.Join(workerBuild.dir, "worker-heartbeat")
		if out, err := exec.Command("go", "build", "-o", workerBuild.bin, "../../examples/plugins/custom-health-checks").CombinedOutput(); err != nil {
			workerBuild.err = fmt.Errorf("building the example plugin: %v\n%s", err, out)
		}
	})
	if workerBuild.err != nil {
		t.Fatal(workerBuild.err)
	}
	return workerBuild.bin
}

// gatedPlugin returns a script in dir that starts the example
// worker-heartbeat plugin only once the returned gate file exists (or
// after 30s): a plugin as slow to start as the test wants.
func gatedPlugin(t *testing.T, dir string) (script, gate string) {
	t.Helper()
	bin := workerPlugin(t)
	gate = filepath.Join(dir, "gate")
	script = filepath.Join(dir, "gated-worker")
	src := fmt.Sprintf("#!/bin/sh\ni=0\nwhile [ ! -e %q ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\nexec %q\n", gate, bin)
	if err := os.WriteFile(script, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, gate
}

// workerPolicy is a policy whose health block runs the gateway check and,
// when plugin is not empty, the worker check of that plugin binary on a
// fresh heartbeat file.
func workerPolicy(t *testing.T, dir, plugin, interval string) string {
	t.Helper()
	beat := filepath.Join(dir, "worker.heartbeat")
	if err := os.WriteFile(beat, []byte("alive"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := "health {\n  interval = \"" + interval + "\"\n  timeout  = \"900ms\"\n  check \"gateway\" {\n    type = \"gateway\"\n    critical = true\n  }\n"
	if plugin != "" {
		src += "  check \"worker\" {\n    plugin = \"worker\"\n    config = {\n      path    = \"" + beat + "\"\n      max_age = \"1h\"\n    }\n  }\n"
	}
	src += "}\n"
	if plugin != "" {
		src += "plugin \"worker\" {\n  path = \"" + plugin + "\"\n}\n"
	}
	return src
}

// checkState returns the process monitor's check called name, or nil.
func checkState(o *orchestrator.Orchestrator, name string) *health.CheckState {
	for _, c := range o.HealthMonitor().Diagnostics().Checks {
		if c.Name == name {
			return &c
		}
	}
	return nil
}

func pluginState(o *orchestrator.Orchestrator, name string) (pluginhost.State, bool) {
	for _, st := range o.Plugins().Status() {
		if st.Name == name {
			return st.State, true
		}
	}
	return 0, false
}

// noFailure fails the test when a HEALTH_CHANGED event named the check
// failing.
func (s *system) noFailure(name string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.evs {
		if h, ok := e.Data.(events.HealthChange); ok && slices.Contains(h.Failing, name) {
			s.t.Errorf("health %s -> %s failing %v: the %s check counted as failed while its plugin was starting", h.From, h.To, h.Failing, name)
		}
	}
}

// TestPluginsStartBesideTheConnection: Start does not wait for the
// policy's plugins. With a plugin that has not shaken hands yet, Start
// returns READY, the plugin is still STARTING, its check reports pending
// (not failing: the health stays HEALTHY), and once it is up its check
// runs for real and OnPluginProgress reports it ("1 of 1 started").
func TestPluginsStartBesideTheConnection(t *testing.T) {
	dir := t.TempDir()
	script, gate := gatedPlugin(t, dir)
	var mu sync.Mutex
	var progress []orchestrator.PluginProgress
	s := newSystemWith(t, discordtest.Options{}, func(c *orchestrator.Config) {
		c.PolicyFile = writePolicy(t, dir, workerPolicy(t, dir, script, "1s"))
		c.OnPluginProgress = func(p orchestrator.PluginProgress) {
			mu.Lock()
			progress = append(progress, p)
			mu.Unlock()
		}
	})
	s.start() // READY while the plugin waits at its gate
	defer s.stop()
	if st, ok := pluginState(s.o, "worker"); !ok || st != pluginhost.Starting {
		t.Fatalf("plugin at Start's return: %v (listed %v), want STARTING: Start waited for the plugin", st, ok)
	}
	s.eventually("the worker check reports pending", func() bool {
		c := checkState(s.o, "worker")
		return c != nil && c.Pending != nil && strings.Contains(c.Pending.Message, "STARTING")
	})
	if ev := s.o.HealthMonitor().Latest(); ev.Status != health.Healthy || ev.Score != 100 {
		t.Fatalf("with the plugin starting: %s %v failing %v, want HEALTHY 100", ev.Status, ev.Score, ev.Failing)
	}
	// No verdict yet, so /metrics and /health show the check neither
	// passing nor failing.
	if c := checkState(s.o, "worker"); c.Last != nil {
		t.Fatalf("a verdict while the plugin starts: %+v", *c.Last)
	}
	rr := httptest.NewRecorder()
	s.o.Handler(telemetry.HandlerOptions{}).ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(rr.Body.String(), `lifeline_health_check_passing{check="worker"`) {
		t.Fatalf("/metrics judges the starting plugin's check:\n%s", grepLines(rr.Body.String(), "check_passing"))
	}

	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.eventually("the worker check passes once the plugin is up", func() bool {
		c := checkState(s.o, "worker")
		return c != nil && c.Last != nil && c.Last.Passed && c.Pending == nil
	})
	s.eventually("OnPluginProgress reported the plugin", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(progress) == 1
	})
	mu.Lock()
	p := progress[0]
	mu.Unlock()
	if p.Name != "worker" || p.PID <= 0 || p.Err != "" || p.Started != 1 || p.Done != 1 || p.Total != 1 || p.Elapsed <= 0 {
		t.Fatalf("progress = %+v, want worker started, 1 of 1, with its pid and time", p)
	}
	s.noFailure("worker")
}

// TestReloadAddsAPluginCheckWithoutFailingIt: a reload that adds a plugin
// and its check does not wait for the plugin, and the new check is
// pending, not failing, while the plugin starts: the score stays 100.
func TestReloadAddsAPluginCheckWithoutFailingIt(t *testing.T) {
	dir := t.TempDir()
	script, gate := gatedPlugin(t, dir)
	s := newSystemWith(t, discordtest.Options{}, func(c *orchestrator.Config) {
		c.PolicyFile = writePolicy(t, dir, workerPolicy(t, dir, "", "1s"))
	})
	s.start()
	defer s.stop()
	s.eventually("HEALTHY before the reload", func() bool { return s.o.HealthMonitor().Status() == health.Healthy })

	writePolicy(t, dir, workerPolicy(t, dir, script, "1s"))
	reloaded := make(chan error, 1)
	go func() { reloaded <- s.o.ReloadPolicy() }()
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ReloadPolicy did not return while the plugin waits at its gate")
	}
	s.eventually("the new check reports pending", func() bool {
		c := checkState(s.o, "worker")
		return c != nil && c.Pending != nil && c.Last == nil
	})
	if ev := s.o.HealthMonitor().Latest(); ev.Status != health.Healthy || ev.Score != 100 {
		t.Fatalf("with the new plugin starting: %s %v failing %v, want HEALTHY 100", ev.Status, ev.Score, ev.Failing)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s.eventually("the new check passes once its plugin is up", func() bool {
		c := checkState(s.o, "worker")
		return c != nil && c.Last != nil && c.Last.Passed
	})
	s.noFailure("worker")
}

// TestReloadedHealthSettingsReachEveryCheck: a reload's health interval,
// timeout and retries reach every check live: the process monitor's
// built-in and plugin checks and each shard's built-in checks.
func TestReloadedHealthSettingsReachEveryCheck(t *testing.T) {
	dir := t.TempDir()
	script, gate := gatedPlugin(t, dir)
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSystemWith(t, discordtest.Options{RecommendedShards: 2}, func(c *orchestrator.Config) {
		c.PolicyFile = writePolicy(t, dir, workerPolicy(t, dir, script, "30s"))
		c.ShardCount = 2
	})
	s.start()
	defer s.stop()

	src := strings.Replace(workerPolicy(t, dir, script, "7s"), `timeout  = "900ms"`, "timeout  = \"3s\"\n  retries  = 1", 1)
	writePolicy(t, dir, src)
	if err := s.o.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	type settings struct {
		interval, timeout time.Duration
		retries           int
	}
	want := settings{7 * time.Second, 3 * time.Second, 1}
	monitors := map[string]*health.Monitor{"process": s.o.HealthMonitor()}
	for _, sh := range s.o.Shards() {
		monitors[fmt.Sprintf("shard %d", sh.ID())] = sh.Monitor()
	}
	if len(monitors) != 3 {
		t.Fatalf("%d monitors, want the process's and 2 shards'", len(monitors))
	}
	for who, mon := range monitors {
		var names []string
		for _, c := range mon.Diagnostics().Checks {
			names = append(names, c.Name)
			if got := (settings{c.Interval, c.Timeout, c.Retries}); got != want {
				t.Errorf("%s, check %s: %+v after the reload, want %+v", who, c.Name, got, want)
			}
		}
		if who == "process" && !slices.Contains(names, "worker") {
			t.Errorf("the process monitor has no plugin check: %v", names)
		}
	}
}
