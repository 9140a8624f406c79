package orchestrator_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// A policy's plugin check runs in a real plugin process started by Start:
// its result reaches the health monitor, a removed check block leaves the
// monitor on reload, and Stop ends the process.
func TestSystemRunsPolicyPlugins(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "worker-heartbeat")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(workerPlugin(t), bin); err != nil {
		t.Fatal(err)
	}
	beat := filepath.Join(dir, "worker.heartbeat")
	if err := os.WriteFile(beat, []byte("alive"), 0o600); err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(dir, "policy.hcl")
	withPlugin := `
health {
  interval = "1s"
  timeout  = "900ms"
  check "gateway" {
    type = "gateway"
  }
  check "worker" {
    plugin = "worker-heartbeat"
    config = {
      path    = "` + beat + `"
      max_age = "1h"
    }
  }
}
plugin "worker-heartbeat" {
  path = "./bin/worker-heartbeat"
}
`
	if err := os.WriteFile(policyFile, []byte(withPlugin), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newSystemWith(t, discordtest.Options{}, func(c *orchestrator.Config) {
		c.PolicyFile = policyFile
		c.PolicyDebounce = 20 * time.Millisecond
	})
	s.start()
	defer s.stop()
	started := s.waitEvent("PLUGIN_STARTED", func(e events.Event) bool { return e.Type == events.PluginStarted })
	pid := started.Data.(events.Plugin).PID
	s.eventually("the plugin's check passes in the monitor", func() bool {
		for _, c := range s.o.HealthMonitor().Diagnostics().Checks {
			if c.Name == "worker" && c.Last != nil && c.Last.Passed {
				return true
			}
		}
		return false
	})

	// Its calls are counted in the metrics.
	rr := httptest.NewRecorder()
	s.o.Handler(telemetry.HandlerOptions{}).ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	if !regexp.MustCompile(`lifeline_plugin_calls_total\{kind="check",plugin="worker-heartbeat",result="success",shard="0"\} [1-9]`).MatchString(rr.Body.String()) {
		t.Fatalf("no successful plugin check counted in /metrics:\n%s", grepLines(rr.Body.String(), "lifeline_plugin_calls_total"))
	}
	// Its state is on /metrics, and in /debug/lifeline's summary with its pid.
	if !regexp.MustCompile(`lifeline_plugin_state\{plugin="worker-heartbeat",shard="0",state="RUNNING"\} 1`).MatchString(rr.Body.String()) {
		t.Fatalf("the plugin is not RUNNING in /metrics:\n%s", grepLines(rr.Body.String(), "lifeline_plugin_state"))
	}
	rr = httptest.NewRecorder()
	s.o.Handler(telemetry.HandlerOptions{}).ServeHTTP(rr, httptest.NewRequest("GET", "/debug/lifeline", nil))
	var doc struct {
		Summary telemetry.Summary `json:"summary"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if ps := doc.Summary.Plugins; len(ps) != 1 || ps[0].Name != "worker-heartbeat" || ps[0].State != "RUNNING" || ps[0].PID != pid {
		t.Fatalf("/debug/lifeline plugins %+v, want worker-heartbeat RUNNING as pid %d", ps, pid)
	}

	// A reload without the plugin: its check leaves the monitor and its
	// process ends.
	without := "health {\n  interval = \"1s\"\n  timeout = \"900ms\"\n  check \"gateway\" {\n    type = \"gateway\"\n  }\n}\n"
	tmp := policyFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(without), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, policyFile); err != nil {
		t.Fatal(err)
	}
	s.waitEvent("PLUGIN_EXITED", func(e events.Event) bool { return e.Type == events.PluginExited })
	for _, c := range s.o.HealthMonitor().Diagnostics().Checks {
		if c.Name == "worker" {
			t.Fatal("the removed plugin check is still in the monitor")
		}
	}
	if processAlive(pid) {
		t.Fatalf("plugin process %d still running after the reload removed it", pid)
	}
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
