package pluginhost_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

func logsDropped(name string) func(events.Event) bool {
	return func(e events.Event) bool {
		d, ok := e.Data.(events.PluginLogs)
		return ok && e.Type == events.PluginLogsDropped && d.Name == name
	}
}

// droppedTotal adds up the lines the PLUGIN_LOGS_DROPPED events of plugin
// name report.
func (r *recorder) droppedTotal(name string) int {
	n := 0
	for _, e := range r.all() {
		if logsDropped(name)(e) {
			n += e.Data.(events.PluginLogs).Dropped
		}
	}
	return n
}

// waitCount waits until the log holds sub at least n times.
func (l *lockedBuffer) waitCount(t *testing.T, sub string, n int) {
	t.Helper()
	l.waitLog(t, func(text string) bool { return strings.Count(text, sub) >= n }, func(text string) string {
		return fmt.Sprintf("log holds %q %d times, not %d, within %v", sub, strings.Count(text, sub), n, wait)
	})
}

// A real plugin process logging 300 lines down each path (through the
// host's log service, hclog lines on its standard error, prints to its
// redirected os.Stdout) gets its budget of 100 through and no more; the
// drops are reported by a WARN line and PLUGIN_LOGS_DROPPED.
func TestAPluginsLogLinesAreLimitedOnEveryPath(t *testing.T) {
	tests := []struct {
		path       string
		minDropped int // the 200 over the budget, but go-plugin may lose stdout lines in flight at the exit
	}{
		{"host", 200},
		{"stderr", 200},
		{"stdout", 1},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			leakCheck(t)
			logs := &lockedBuffer{}
			hs := newHarness(t, func(o *pluginhost.Options) {
				o.Logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
				o.LogBurst = 100
				o.LogRate = 0.001 // the fake clock's 10 s below refill a hundredth of a line
			})
			if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
				t.Fatal(err)
			}
			if res := probe(hs, "p", map[string]any{"mode": "spam-" + tt.path}); !res.Passed {
				t.Fatalf("spam check = %+v", res)
			}
			logs.waitCount(t, "spam line", 100)
			// The report timer is armed once a line is dropped: the only
			// timer now (no call is in flight).
			if !hs.clk.BlockUntil(1, wait) {
				t.Fatalf("no line dropped: no report timer; log:\n%s", logs)
			}
			hs.clk.Advance(pluginhost.LogReportInterval)
			e := hs.rec.waitFor(t, 1, "PLUGIN_LOGS_DROPPED", logsDropped("p")).Data.(events.PluginLogs)
			if e.Dropped < 1 {
				t.Fatalf("PLUGIN_LOGS_DROPPED = %+v", e)
			}
			logs.waitFor(t, fmt.Sprintf("[WARN]  plugin.p: dropped %d log lines from plugin p", e.Dropped))
			hs.h.Stop()
			if n := strings.Count(logs.String(), "spam line"); n != 100 {
				t.Fatalf("%d spam lines in the host's log, want the budget's 100", n)
			}
			if n := hs.rec.droppedTotal("p"); n < tt.minDropped || n > 300 {
				t.Fatalf("%d lines reported dropped, want %d to 300", n, tt.minDropped)
			}
		})
	}
}
