package orchestrator_test

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// probePolicy runs the httpprobe plugin's check on url (the plugin's own
// bound an hour: only lifeline cuts a hung request) with the health
// interval and timeout given.
func probePolicy(bin, url, interval, timeout string) string {
	return `
health {
  interval = "` + interval + `"
  timeout  = "` + timeout + `"
  retries  = 2
  check "gateway" {
    type = "gateway"
  }
  check "probe" {
    plugin = "httpprobe"
    config = {
      url     = "` + url + `"
      timeout = "1h"
    }
  }
}
plugin "httpprobe" {
  path = "` + bin + `"
}
`
}

// TestReloadedHealthTimeoutReachesPluginCalls: a reload's health timeout
// bounds the plugin host's calls from then on, not only the monitor's
// wait. Started with a 10s timeout (calls bounded by 5s), reloaded to 1s
// (calls bounded by 900ms), a plugin whose check then hangs has its calls
// cut by the host, which counts them against the plugin's breaker: it
// opens and the wedged process is killed and restarted. Before, the host
// kept the bound it was made with: the monitor canceled each call at 1s,
// a canceled call counts for nothing, and the hung plugin ran on.
func TestReloadedHealthTimeoutReachesPluginCalls(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "httpprobe")
	if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/httpprobe").CombinedOutput(); err != nil {
		t.Fatalf("building plugins/httpprobe: %v\n%s", err, out)
	}
	var hang atomic.Bool
	release := make(chan struct{})
	var once sync.Once
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang.Load() {
			select { // until the call is cut, or the test ends
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer web.Close()
	defer once.Do(func() { close(release) })

	s := newSystemWith(t, discordtest.Options{}, func(c *orchestrator.Config) {
		c.PolicyFile = writePolicy(t, dir, probePolicy(bin, web.URL, "11s", "10s"))
	})
	s.start()
	defer s.stop()
	if got := s.o.Plugins().CallTimeout(); got != 5*time.Second {
		t.Fatalf("plugin calls bounded by %v under a 10s health timeout, want 5s", got)
	}
	s.eventually("the probe check passes", func() bool {
		c := checkState(s.o, "probe")
		return c != nil && c.Last != nil && c.Last.Passed
	})

	writePolicy(t, dir, probePolicy(bin, web.URL, "2s", "1s"))
	if err := s.o.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	if got := s.o.Plugins().CallTimeout(); got != 900*time.Millisecond {
		t.Fatalf("plugin calls bounded by %v after the reload to a 1s health timeout, want 900ms", got)
	}
	hang.Store(true)
	e := s.waitEvent("PLUGIN_EXITED of the wedged plugin", func(e events.Event) bool {
		d, ok := e.Data.(events.Plugin)
		return ok && e.Type == events.PluginExited && d.Name == "httpprobe"
	})
	if d := e.Data.(events.Plugin); !d.Restart || !strings.Contains(d.Reason, "unresponsive: its breaker opened") {
		t.Fatalf("PLUGIN_EXITED = %+v, want a restart of an unresponsive plugin", d)
	}
	once.Do(func() { close(release) })
}

// TestPluginRestartReachesTheHost: Config.PluginRestart is the plugin
// host's restart policy (the chaos soak scales it to its clock); the zero
// value is the host's defaults.
func TestPluginRestartReachesTheHost(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  pluginhost.RestartPolicy
		want pluginhost.RestartPolicy
	}{
		{"zero: the defaults", pluginhost.RestartPolicy{}, pluginhost.RestartPolicy{Initial: pluginhost.DefaultRestartInitial,
			Max: pluginhost.DefaultRestartMax, Multiplier: 2, Limit: pluginhost.DefaultRestartLimit,
			ResetAfter: pluginhost.DefaultResetAfter, RetryFailed: pluginhost.DefaultRetryFailed}},
		{"scaled", pluginhost.RestartPolicy{Initial: 20 * time.Millisecond, Max: 1200 * time.Millisecond, Multiplier: 2, Limit: 5,
			ResetAfter: 1200 * time.Millisecond, RetryFailed: 12 * time.Second}, pluginhost.RestartPolicy{Initial: 20 * time.Millisecond,
			Max: 1200 * time.Millisecond, Multiplier: 2, Limit: 5, ResetAfter: 1200 * time.Millisecond, RetryFailed: 12 * time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSystemWith(t, discordtest.Options{}, func(c *orchestrator.Config) { c.PluginRestart = tt.set })
			s.start()
			defer s.stop()
			if got := s.o.Plugins().RestartPolicy(); got != tt.want {
				t.Fatalf("host restart policy %+v, want %+v", got, tt.want)
			}
		})
	}
}
