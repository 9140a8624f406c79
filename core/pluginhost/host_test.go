package pluginhost_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

func probe(hs *harness, plugin string, cfg map[string]any) health.Result {
	return hs.h.Checker(plugin, pluginhost.CheckUse{Name: "probe", Config: cfg}).Check(context.Background(), metrics.Snapshot{})
}

func TestStartCallStopLeavesNothingBehind(t *testing.T) {
	leakCheck(t)
	hs := newHarness(t, nil)
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	ev := hs.rec.waitFor(t, 1, "PLUGIN_STARTED", started("p"))
	d := ev.Data.(events.Plugin)
	if d.PID == 0 || d.Version != 1 || d.Path != testPlugin {
		t.Fatalf("PLUGIN_STARTED data = %+v", d)
	}
	st := hs.status("p")
	if st.State != pluginhost.Running || st.PID != d.PID || st.Protocol != 1 || len(st.Serves) != 4 || st.Breaker != "CLOSED" {
		t.Fatalf("Status = %+v", st)
	}
	res := probe(hs, "p", map[string]any{"mode": "ok"})
	if !res.Passed || res.Value != 42 || res.Unit != "ms" {
		t.Fatalf("check = %+v", res)
	}
	res = probe(hs, "p", map[string]any{"mode": "fail"})
	if res.Passed || res.Message != "probe failed" || res.Value != 7 {
		t.Fatalf("failing check = %+v", res)
	}
	res = probe(hs, "p", map[string]any{"mode": "error"})
	if res.Passed || res.Message != "database unreachable" {
		t.Fatalf("erroring check = %+v", res)
	}

	hs.h.Stop()
	if !processGone(d.PID) {
		t.Fatalf("plugin process %d still exists after Stop", d.PID)
	}
	e := hs.rec.waitFor(t, 1, "PLUGIN_EXITED", exited("p")).Data.(events.Plugin)
	if e.Restart || e.Reason != "host stopped" {
		t.Fatalf("PLUGIN_EXITED on stop = %+v", e)
	}
	if err := hs.h.Reconcile(context.Background(), nil); !errors.Is(err, pluginhost.ErrStopped) {
		t.Fatalf("Reconcile after Stop = %v", err)
	}
	if res := probe(hs, "p", nil); res.Passed || !strings.Contains(res.Message, "not running") {
		t.Fatalf("check after Stop = %+v", res)
	}
}

// crashCase is a way for a plugin process to die during a call.
type crashCase struct {
	name   string
	mode   string
	reason string // in PLUGIN_EXITED's reason
}

func TestCrashDuringCallIsReportedAndRestartedWithBackoff(t *testing.T) {
	for _, tc := range []crashCase{
		{"os.Exit", "exit", "exit status 3 (last output: dying on purpose)"},
		{"panic in a goroutine", "panic", "exit status 2 (last output: panic: boom in goroutine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakCheck(t)
			hs := newHarness(t, nil)
			if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
				t.Fatal(err)
			}
			pid := hs.rec.waitFor(t, 1, "PLUGIN_STARTED", started("p")).Data.(events.Plugin).PID

			res := probe(hs, "p", map[string]any{"mode": tc.mode})
			if res.Passed || !strings.Contains(res.Message, `plugin "p" check probe`) {
				t.Fatalf("crashing check = %+v", res)
			}
			e := hs.rec.waitFor(t, 1, "PLUGIN_EXITED", exited("p")).Data.(events.Plugin)
			if !e.Restart || !strings.Contains(e.Reason, tc.reason) {
				t.Fatalf("PLUGIN_EXITED = %+v, want a restart and a reason containing %q", e, tc.reason)
			}
			if !processGone(pid) {
				t.Fatalf("crashed process %d not reaped", pid)
			}
			// Meanwhile the plugin's checks fail, saying why.
			st := hs.status("p")
			if st.State != pluginhost.Restarting || st.Restarts != 1 {
				t.Fatalf("Status after crash = %+v", st)
			}
			res = probe(hs, "p", map[string]any{"mode": "ok"})
			if res.Passed || !strings.Contains(res.Message, "restarting after: "+tc.reason[:13]) {
				t.Fatalf("check while restarting = %+v", res)
			}
			// The restart waits for the backoff on the host's clock.
			hs.clk.Advance(999 * time.Millisecond)
			if n := hs.rec.count(started("p")); n != 1 {
				t.Fatalf("restarted before the backoff: %d starts", n)
			}
			hs.clk.Advance(time.Millisecond)
			d := hs.rec.waitFor(t, 2, "second PLUGIN_STARTED", started("p")).Data.(events.Plugin)
			if d.PID == pid {
				t.Fatal("restart kept the old pid")
			}
			if res := probe(hs, "p", map[string]any{"mode": "ok"}); !res.Passed {
				t.Fatalf("check after restart = %+v", res)
			}
		})
	}
}

func TestPanicInsideACallKeepsThePluginRunning(t *testing.T) {
	hs := newHarness(t, nil)
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	res := probe(hs, "p", map[string]any{"mode": "panic-call"})
	if res.Passed || !strings.Contains(res.Message, "panic: boom in call") {
		t.Fatalf("panicking check = %+v", res)
	}
	if res := probe(hs, "p", map[string]any{"mode": "ok"}); !res.Passed {
		t.Fatalf("check after the panic = %+v", res)
	}
	if n := hs.rec.count(exited("p")); n != 0 {
		t.Fatalf("%d PLUGIN_EXITED after a recovered panic", n)
	}
}

// timedCheck runs a check in the background and moves the fake clock past
// the call timeout once the call is waiting on it.
func timedCheck(t *testing.T, hs *harness, cfg map[string]any) health.Result {
	t.Helper()
	done := make(chan health.Result, 1)
	waiters := hs.clk.Waiters()
	go func() { done <- probe(hs, "p", cfg) }()
	if !hs.clk.BlockUntil(waiters+1, wait) {
		t.Fatal("the call never armed its deadline")
	}
	hs.clk.Advance(2 * time.Second)
	select {
	case res := <-done:
		return res
	case <-time.After(wait):
		t.Fatal("the call did not end at its deadline")
	}
	return health.Result{}
}

func TestHangPastTheDeadlineFailsTheCheckAndRestartsAWedgedPlugin(t *testing.T) {
	leakCheck(t)
	hs := newHarness(t, func(o *pluginhost.Options) { o.Breaker.FailureThreshold = 2 })
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	pid := hs.rec.waitFor(t, 1, "PLUGIN_STARTED", started("p")).Data.(events.Plugin).PID

	res := timedCheck(t, hs, map[string]any{"mode": "hang"})
	if res.Passed || !res.TimedOut || !strings.Contains(res.Message, "timed out after 2s") {
		t.Fatalf("hung check = %+v", res)
	}
	// One timeout is not enough to give up on the process.
	if res := probe(hs, "p", map[string]any{"mode": "ok"}); !res.Passed {
		t.Fatalf("check after one timeout = %+v", res)
	}
	timedCheck(t, hs, map[string]any{"mode": "hang"})
	// Two failures in the window open the plugin's breaker, which kills
	// the wedged process; it is restarted like a crashed one. A call now is
	// refused at once: it arms no deadline (the restart's timer may be
	// armed already, so the test does not wait for a timer here).
	if st := hs.status("p"); st.Breaker != "OPEN" {
		t.Fatalf("breaker after two timeouts = %s", st.Breaker)
	}
	if res := probe(hs, "p", map[string]any{"mode": "ok"}); res.Passed || !strings.Contains(res.Message, pluginhost.ErrNotRunning.Error()) {
		t.Fatalf("check with the breaker open = %+v", res)
	}
	e := hs.rec.waitFor(t, 1, "PLUGIN_EXITED", exited("p")).Data.(events.Plugin)
	if !e.Restart || !strings.Contains(e.Reason, "unresponsive: its breaker opened") || !strings.Contains(e.Reason, "signal: killed") {
		t.Fatalf("PLUGIN_EXITED = %+v", e)
	}
	if hs.rec.count(func(e events.Event) bool {
		d, ok := e.Data.(events.BreakerTransition)
		return ok && d.Breaker == "plugin/p" && d.To == "OPEN"
	}) != 1 {
		t.Fatalf("no breaker event:\n%s", hs.rec.dump())
	}
	if !processGone(pid) {
		t.Fatalf("wedged process %d still exists", pid)
	}
	hs.clk.Advance(time.Second)
	hs.rec.waitFor(t, 2, "PLUGIN_STARTED after the kill", started("p"))
	if res := probe(hs, "p", map[string]any{"mode": "ok"}); !res.Passed {
		t.Fatalf("check after restart = %+v", res)
	}
	if st := hs.status("p"); st.Breaker != "CLOSED" {
		t.Fatalf("a fresh process starts with breaker %s", st.Breaker)
	}
}

func TestGarbageResponseFailsTheCheck(t *testing.T) {
	hs := newHarness(t, nil)
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	res := probe(hs, "p", map[string]any{"mode": "nan"})
	if res.Passed || !strings.Contains(res.Message, pluginhost.ErrBadResponse.Error()) {
		t.Fatalf("NaN result = %+v", res)
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		name      string
		spec      pluginhost.Spec
		err       error
		reason    string // in the error and in PLUGIN_EXITED
		restarted bool
	}{
		{"exit at start", spec("p", "-exit-at-start"), pluginhost.ErrStartFailed, "exit status 7 (last output: cannot open config)", true},
		{"garbage handshake", spec("p", "-garbage"), pluginhost.ErrStartFailed, "did not shake hands", true},
		{"garbage description", spec("p", "-bad-describe"), pluginhost.ErrBadResponse, "unknown kind", true},
		{"wrong protocol version", spec("p", "-version=99"), pluginhost.ErrProtocolVersion, "Plugin version: 99, Client versions: [1]", false},
		{"missing binary", pluginhost.Spec{Name: "p", Path: "/nonexistent/plugin"}, pluginhost.ErrStartFailed, "no such file", true},
		{"unknown action", pluginhost.Spec{Name: "p", Path: testPlugin, Actions: []string{"nope"}}, pluginhost.ErrRefused,
			`no degradation action "nope" (serves: flag)`, false},
		{"unknown config key", pluginhost.Spec{Name: "p", Path: testPlugin, Config: map[string]any{"mdoe": "ok"},
			Checks: []pluginhost.CheckUse{{Name: "probe"}}}, pluginhost.ErrRefused, `"mdoe" is not a setting of this plugin`, false},
		{"ambiguous check", pluginhost.Spec{Name: "p", Path: testPlugin, Checks: []pluginhost.CheckUse{{Name: "database"}}},
			pluginhost.ErrRefused, "several health checks (other, probe)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			hs := newHarness(t, func(o *pluginhost.Options) { o.Restart.Limit = 1 })
			err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{tt.spec})
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Reconcile = %v, want %v containing %q", err, tt.err, tt.reason)
			}
			e := hs.rec.waitFor(t, 1, "PLUGIN_EXITED", exited("p")).Data.(events.Plugin)
			if e.Restart != tt.restarted || !strings.Contains(e.Reason, tt.reason) {
				t.Fatalf("PLUGIN_EXITED = %+v, want restart %v and reason containing %q", e, tt.restarted, tt.reason)
			}
			if hs.rec.count(func(e events.Event) bool { return e.Type == events.ErrorOccurred }) == 0 {
				t.Fatal("no ERROR_OCCURRED for the failed start")
			}
			st := hs.status("p")
			if !tt.restarted {
				if st.State != pluginhost.Failed || hs.clk.Waiters() != 0 || !st.Retry.IsZero() {
					t.Fatalf("Status = %+v with %d timers; want FAILED and no restart", st, hs.clk.Waiters())
				}
				// A failure a restart cannot cure is not retried either.
				hs.clk.Advance(time.Hour)
				hs.h.Stop()
				if n := hs.rec.count(exited("p")); n != 1 {
					t.Fatalf("%d PLUGIN_EXITED after an hour; the plugin was tried again", n)
				}
				return
			}
			if st.State != pluginhost.Restarting {
				t.Fatalf("Status = %+v, want RESTARTING", st)
			}
			// The one allowed restart fails the same way; then it gives up.
			hs.clk.Advance(time.Second)
			e = hs.rec.waitFor(t, 2, "second PLUGIN_EXITED", exited("p")).Data.(events.Plugin)
			if e.Restart || !strings.Contains(e.Reason, "giving up after 1 restarts; retrying in 10m0s") {
				t.Fatalf("last PLUGIN_EXITED = %+v", e)
			}
			if st := hs.status("p"); st.State != pluginhost.Failed || st.Retry.IsZero() {
				t.Fatalf("Status = %+v, want FAILED with a retry", st)
			}
			// After the default RetryFailed, it is tried again with a
			// fresh count: the attempt fails the same way and is
			// restarted with backoff.
			hs.clk.Advance(10 * time.Minute)
			e = hs.rec.waitFor(t, 3, "PLUGIN_EXITED of the retry", exited("p")).Data.(events.Plugin)
			if !e.Restart || !strings.Contains(e.Reason, tt.reason) {
				t.Fatalf("PLUGIN_EXITED of the retry = %+v, want a restart", e)
			}
			if n := hs.rec.count(started("p")); n != 0 {
				t.Fatalf("%d PLUGIN_STARTED for a plugin that never started", n)
			}
		})
	}
}

func TestChecksum(t *testing.T) {
	sum, err := pluginhost.FileSHA256(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	hs := newHarness(t, nil)
	bad := spec("bad")
	bad.SHA256 = strings.Repeat("ab", 32)
	good := spec("good")
	good.SHA256 = strings.ToUpper(sum)
	err = hs.h.Reconcile(context.Background(), []pluginhost.Spec{bad, good})
	if !errors.Is(err, pluginhost.ErrChecksumMismatch) {
		t.Fatalf("Reconcile = %v, want ErrChecksumMismatch", err)
	}
	for _, want := range []string{"has sha256 " + sum, "the policy expects " + bad.SHA256, testPlugin} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if st := hs.status("bad"); st.State != pluginhost.Failed || st.PID != 0 {
		t.Fatalf("bad: %+v", st)
	}
	if hs.rec.count(started("bad")) != 0 {
		t.Fatal("a plugin with the wrong checksum was started")
	}
	if st := hs.status("good"); st.State != pluginhost.Running {
		t.Fatalf("good: %+v", st)
	}
	// The host goes on serving the plugin that passed.
	if res := probe(hs, "good", map[string]any{"mode": "ok"}); !res.Passed {
		t.Fatalf("good check = %+v", res)
	}
}

func TestReconcileAddsRemovesAndReconfigures(t *testing.T) {
	leakCheck(t)
	hs := newHarness(t, nil)
	ctx := context.Background()
	a, b := spec("a"), spec("b")
	a.Config = map[string]any{"label": "one"}
	if err := hs.h.Reconcile(ctx, []pluginhost.Spec{a, b}); err != nil {
		t.Fatal(err)
	}
	pidA, pidB := hs.status("a").PID, hs.status("b").PID
	if res := probe(hs, "a", nil); res.Message != "label=one" {
		t.Fatalf("a before reload = %+v", res)
	}

	// Reload: a's config changes, b goes, c comes.
	a.Config = map[string]any{"label": "two"}
	c := spec("c")
	if err := hs.h.Reconcile(ctx, []pluginhost.Spec{a, c}); err != nil {
		t.Fatal(err)
	}
	if st := hs.status("a"); st.PID != pidA || st.State != pluginhost.Running {
		t.Fatalf("a was restarted by a config change: %+v (pid was %d)", st, pidA)
	}
	if res := probe(hs, "a", nil); res.Message != "label=two" {
		t.Fatalf("a after reload = %+v", res)
	}
	if !processGone(pidB) {
		t.Fatalf("removed plugin b (pid %d) still runs", pidB)
	}
	if e := hs.rec.waitFor(t, 1, "b's PLUGIN_EXITED", exited("b")).Data.(events.Plugin); e.Restart {
		t.Fatalf("removed plugin scheduled a restart: %+v", e)
	}
	if len(hs.h.Status()) != 2 || hs.status("c").State != pluginhost.Running {
		t.Fatalf("Status = %+v", hs.h.Status())
	}

	// Unchanged specs change nothing.
	pidC := hs.status("c").PID
	if err := hs.h.Reconcile(ctx, []pluginhost.Spec{a, c}); err != nil {
		t.Fatal(err)
	}
	if hs.status("a").PID != pidA || hs.status("c").PID != pidC || hs.rec.count(started("a")) != 1 {
		t.Fatal("an unchanged reload restarted a plugin")
	}

	// A new binary, checksum or arguments need a new process.
	c.SHA256, _ = pluginhost.FileSHA256(testPlugin)
	if err := hs.h.Reconcile(ctx, []pluginhost.Spec{a, c}); err != nil {
		t.Fatal(err)
	}
	if st := hs.status("c"); st.PID == pidC || st.State != pluginhost.Running || !processGone(pidC) {
		t.Fatalf("c after a checksum pin: %+v (old pid %d)", st, pidC)
	}

	// A reload that makes the policy use something the plugin does not
	// serve stops the plugin with the reason, and no restart.
	a.Actions = []string{"missing"}
	err := hs.h.Reconcile(ctx, []pluginhost.Spec{a, c})
	if !errors.Is(err, pluginhost.ErrRefused) {
		t.Fatalf("Reconcile with an unserved action = %v", err)
	}
	e := hs.rec.waitFor(t, 1, "a's PLUGIN_EXITED", exited("a")).Data.(events.Plugin)
	if e.Restart || !strings.Contains(e.Reason, `refused: plugin refused: no degradation action "missing"`) || !processGone(pidA) {
		t.Fatalf("refused on reload: %+v (gone %v)", e, processGone(pidA))
	}
	if st := hs.status("a"); st.State != pluginhost.Failed || hs.clk.Waiters() != 0 {
		t.Fatalf("a after refusal: %+v, %d timers", st, hs.clk.Waiters())
	}
	// The next reload fixes the policy: the failed plugin starts again.
	a.Actions = []string{"flag"}
	if err := hs.h.Reconcile(ctx, []pluginhost.Spec{a, c}); err != nil {
		t.Fatal(err)
	}
	if st := hs.status("a"); st.State != pluginhost.Running || st.PID == pidA {
		t.Fatalf("a after the fix: %+v", st)
	}

	if err := hs.h.Reconcile(ctx, []pluginhost.Spec{spec("x"), spec("x")}); err == nil {
		t.Fatal("duplicate names accepted")
	}
}

func TestRestartByHandClearsFailed(t *testing.T) {
	hs := newHarness(t, func(o *pluginhost.Options) { o.Restart.Limit = -1 })
	ctx := context.Background()
	if err := hs.h.Reconcile(ctx, []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	probe(hs, "p", map[string]any{"mode": "exit"})
	e := hs.rec.waitFor(t, 1, "PLUGIN_EXITED", exited("p")).Data.(events.Plugin)
	if e.Restart {
		t.Fatalf("restarted with Limit -1: %+v", e)
	}
	if st := hs.status("p"); st.State != pluginhost.Failed {
		t.Fatalf("Status = %+v", st)
	}
	if err := hs.h.Restart(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if res := probe(hs, "p", map[string]any{"mode": "ok"}); !res.Passed {
		t.Fatalf("after Restart: %+v", res)
	}
	if err := hs.h.Restart(ctx, "nope"); !errors.Is(err, pluginhost.ErrNotRunning) {
		t.Fatalf("Restart(nope) = %v", err)
	}
}

func TestSecretsStayOutOfThePluginEnvironment(t *testing.T) {
	hs := newHarness(t, func(o *pluginhost.Options) {
		o.Env = []string{"DISCORD_TOKEN=secret-token", "PATH=/usr/bin", "VISIBLE=yes"}
	})
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	if res := probe(hs, "p", map[string]any{"mode": "env", "var": "DISCORD_TOKEN"}); res.Message != "DISCORD_TOKEN=" {
		t.Fatalf("token reached the plugin: %+v", res)
	}
	if res := probe(hs, "p", map[string]any{"mode": "env", "var": "VISIBLE"}); res.Message != "VISIBLE=yes" {
		t.Fatalf("environment not passed: %+v", res)
	}
}

func TestPluginOutputGoesToTheHostLogUnderItsName(t *testing.T) {
	hs := newHarness(t, nil)
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("loud")}); err != nil {
		t.Fatal(err)
	}
	if res := probe(hs, "loud", map[string]any{"mode": "log"}); !res.Passed {
		t.Fatalf("check = %+v", res)
	}
	hs.logs.waitFor(t, "[WARN]  plugin.loud: written to stderr:", "@module=probe", "[WARN]  plugin.loud: sent through the host: n=2")
}

func TestStopKillsAFrozenPlugin(t *testing.T) {
	leakCheck(t)
	hs := newHarness(t, func(o *pluginhost.Options) { o.KillTimeout = 100 * time.Millisecond })
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("frozen"), spec("fine")}); err != nil {
		t.Fatal(err)
	}
	frozen, fine := hs.status("frozen").PID, hs.status("fine").PID
	// A stopped process answers nothing, not even go-plugin's shutdown
	// request: only the kill after KillTimeout ends it.
	if err := syscall.Kill(frozen, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hs.h.Stop()
	if !processGone(frozen) || !processGone(fine) {
		t.Fatalf("after Stop: frozen gone %v, fine gone %v", processGone(frozen), processGone(fine))
	}
	for _, name := range []string{"frozen", "fine"} {
		if e := hs.rec.waitFor(t, 1, name+"'s PLUGIN_EXITED", exited(name)).Data.(events.Plugin); e.Restart {
			t.Fatalf("%s: %+v", name, e)
		}
	}
}
