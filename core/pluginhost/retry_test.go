package pluginhost_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

// crashAndWait makes the running plugin p exit (os.Exit(3) inside a
// check) and returns the n-th PLUGIN_EXITED, which is published once the
// next restart or retry is armed.
func crashAndWait(t *testing.T, hs *harness, n int) events.Plugin {
	t.Helper()
	if res := probe(hs, "p", map[string]any{"mode": "exit"}); res.Passed {
		t.Fatalf("crashing check passed: %+v", res)
	}
	return hs.rec.waitFor(t, n, "PLUGIN_EXITED", exited("p")).Data.(events.Plugin)
}

// failOutOfRestarts starts p under a policy allowing one restart, and
// crashes it twice: it is then FAILED, out of restarts.
func failOutOfRestarts(t *testing.T, hs *harness) events.Plugin {
	t.Helper()
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	hs.rec.waitFor(t, 1, "PLUGIN_STARTED", started("p"))
	if e := crashAndWait(t, hs, 1); !e.Restart {
		t.Fatalf("first crash not restarted: %+v", e)
	}
	hs.clk.Advance(time.Second)
	hs.rec.waitFor(t, 2, "PLUGIN_STARTED after the restart", started("p"))
	return crashAndWait(t, hs, 2)
}

func oneRestart(retry time.Duration) func(*pluginhost.Options) {
	return func(o *pluginhost.Options) {
		o.Restart.Limit = 1
		o.Restart.RetryFailed = retry
	}
}

// A plugin out of restarts is FAILED, says when it is retried, and after
// RetryFailed starts again with a fresh count: crashing again, it goes
// through the backoff and the limit again, then waits again.
func TestAPluginOutOfRestartsIsRetriedAfterAQuietPeriod(t *testing.T) {
	leakCheck(t)
	hs := newHarness(t, oneRestart(10*time.Minute))
	e := failOutOfRestarts(t, hs)
	retryAt := hs.clk.Now().Add(10 * time.Minute)
	at := retryAt.UTC().Format(time.RFC3339)
	want := "giving up after 1 restarts; retrying in 10m0s (at " + at + ")"
	if e.Restart || !strings.Contains(e.Reason, "exit status 3") || !strings.Contains(e.Reason, want) {
		t.Fatalf("PLUGIN_EXITED when out of restarts = %+v, want a reason with %q", e, want)
	}
	if st := hs.status("p"); st.State != pluginhost.Failed || !st.Retry.Equal(retryAt) || st.Restarts != 2 || st.PID != 0 {
		t.Fatalf("Status when out of restarts = %+v, want FAILED with Retry %v", st, retryAt)
	}
	if res := probe(hs, "p", map[string]any{"mode": "ok"}); res.Passed ||
		!strings.Contains(res.Message, "FAILED, retrying at "+at+" (last exit: exit status 3") {
		t.Fatalf("check while FAILED = %+v", res)
	}

	// Quiet until the retry is due.
	hs.clk.Advance(10*time.Minute - time.Millisecond)
	if n := hs.rec.count(started("p")); n != 2 {
		t.Fatalf("retried before RetryFailed: %d starts", n)
	}
	hs.clk.Advance(time.Millisecond)
	hs.rec.waitFor(t, 3, "PLUGIN_STARTED of the retry", started("p"))
	if st := hs.status("p"); st.State != pluginhost.Running || st.Restarts != 0 || !st.Retry.IsZero() {
		t.Fatalf("Status after the retry = %+v, want RUNNING with a fresh count", st)
	}
	if res := probe(hs, "p", map[string]any{"mode": "ok"}); !res.Passed {
		t.Fatalf("check after the retry = %+v", res)
	}

	// A crash after the retry is restarted with backoff again ...
	if e := crashAndWait(t, hs, 3); !e.Restart || strings.Contains(e.Reason, "giving up") {
		t.Fatalf("crash after the retry = %+v, want a restart", e)
	}
	if st := hs.status("p"); st.State != pluginhost.Restarting || st.Restarts != 1 {
		t.Fatalf("Status after the retry's crash = %+v", st)
	}
	hs.clk.Advance(time.Second)
	hs.rec.waitFor(t, 4, "PLUGIN_STARTED after the backoff", started("p"))
	// ... up to the limit, and then waits again.
	e = crashAndWait(t, hs, 4)
	at = hs.clk.Now().Add(10 * time.Minute).UTC().Format(time.RFC3339)
	if e.Restart || !strings.Contains(e.Reason, "giving up after 1 restarts; retrying in 10m0s (at "+at+")") {
		t.Fatalf("second time out of restarts = %+v", e)
	}
	hs.clk.Advance(10 * time.Minute)
	hs.rec.waitFor(t, 5, "PLUGIN_STARTED of the second retry", started("p"))
}

// Stop, Restart and a reload that touches the plugin cancel a pending
// retry (no timer is left, and the retry never starts a process); a reload
// that leaves the plugin alone keeps it.
func TestAPendingRetryIsCancelledByStopRestartAndReloads(t *testing.T) {
	changed := spec("p")
	changed.Config = map[string]any{"label": "fixed"}
	tests := []struct {
		name   string
		act    func(t *testing.T, hs *harness)
		starts int  // PLUGIN_STARTED after act (2 before it)
		timers int  // the clock's pending timers after act
		retry  bool // whether the retry still starts the plugin
	}{
		{"Stop", func(t *testing.T, hs *harness) { hs.h.Stop() }, 2, 0, false},
		{"Restart", func(t *testing.T, hs *harness) {
			if err := hs.h.Restart(context.Background(), "p"); err != nil {
				t.Fatal(err)
			}
		}, 3, 0, false},
		{"a reload changing its config", func(t *testing.T, hs *harness) {
			if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{changed}); err != nil {
				t.Fatal(err)
			}
		}, 3, 0, false},
		{"a reload removing it", func(t *testing.T, hs *harness) {
			if err := hs.h.Reconcile(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
		}, 2, 0, false},
		{"a reload leaving it alone", func(t *testing.T, hs *harness) {
			if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
				t.Fatal(err)
			}
		}, 2, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			hs := newHarness(t, oneRestart(10*time.Minute))
			failOutOfRestarts(t, hs)
			if n := hs.clk.Waiters(); n != 1 {
				t.Fatalf("%d timers pending while FAILED, want the retry's", n)
			}
			tt.act(t, hs)
			if n := hs.rec.count(started("p")); n != tt.starts {
				t.Fatalf("%d PLUGIN_STARTED after %s, want %d", n, tt.name, tt.starts)
			}
			if n := hs.clk.Waiters(); n != tt.timers {
				t.Fatalf("%d timers pending after %s, want %d", n, tt.name, tt.timers)
			}
			hs.clk.Advance(11 * time.Minute)
			if tt.retry {
				hs.rec.waitFor(t, tt.starts+1, "PLUGIN_STARTED of the retry", started("p"))
				return
			}
			// A retry that fired would have started a process by the time
			// Stop returns (it waits for starts in flight).
			hs.h.Stop()
			if n := hs.rec.count(started("p")); n != tt.starts {
				t.Fatalf("a cancelled retry started the plugin: %d PLUGIN_STARTED, want %d", n, tt.starts)
			}
		})
	}
}

// Without a retry (RetryFailed negative, or Limit negative: never restart)
// a plugin out of restarts stays FAILED, with no timer armed.
func TestNoRetryWhenDisabled(t *testing.T) {
	tests := []struct {
		name    string
		restart pluginhost.RestartPolicy
		crashes int
		reason  string
	}{
		{"RetryFailed negative", pluginhost.RestartPolicy{Limit: 1, RetryFailed: -1}, 2, "giving up after 1 restarts"},
		{"Limit negative", pluginhost.RestartPolicy{Limit: -1, RetryFailed: time.Minute}, 1, "exit status 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			hs := newHarness(t, func(o *pluginhost.Options) { o.Restart = tt.restart })
			if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
				t.Fatal(err)
			}
			hs.rec.waitFor(t, 1, "PLUGIN_STARTED", started("p"))
			var e events.Plugin
			for i := 1; i <= tt.crashes; i++ {
				e = crashAndWait(t, hs, i)
				if i < tt.crashes {
					hs.clk.Advance(time.Second)
					hs.rec.waitFor(t, i+1, "PLUGIN_STARTED", started("p"))
				}
			}
			if e.Restart || !strings.Contains(e.Reason, tt.reason) || strings.Contains(e.Reason, "retrying") {
				t.Fatalf("last PLUGIN_EXITED = %+v, want no restart nor retry", e)
			}
			if st := hs.status("p"); st.State != pluginhost.Failed || !st.Retry.IsZero() || hs.clk.Waiters() != 0 {
				t.Fatalf("Status = %+v with %d timers; want FAILED, no retry", st, hs.clk.Waiters())
			}
			hs.clk.Advance(24 * time.Hour)
			hs.h.Stop()
			if n := hs.rec.count(started("p")); n != tt.crashes {
				t.Fatalf("%d PLUGIN_STARTED, want %d", n, tt.crashes)
			}
		})
	}
}
