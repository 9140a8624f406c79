package health

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// switchable is a Checker whose next results the test sets: "pass",
// "fail" or "pending"; it counts its calls.
type switchable struct {
	mu    sync.Mutex
	mode  string
	calls int
}

func (s *switchable) set(mode string) { s.mu.Lock(); s.mode = mode; s.mu.Unlock() }

func (s *switchable) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls }

func (s *switchable) Check(context.Context, metrics.Snapshot) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	switch s.mode {
	case "pass":
		return Result{Passed: true, Message: "ok"}
	case "pending":
		return Result{Pending: true, Message: "plugin STARTING"}
	}
	return Result{Message: "broken"}
}

// TestPendingResultIsNoVerdict: a check that cannot judge yet (its plugin
// starting, the gateway before its first READY) is not retried, counts as
// neither passed nor failed (the status stays UNKNOWN, no HEALTH_CHANGED,
// no history entry, reliability untouched), and runs again at the next
// tick rather than an interval later; once it judges, its verdict counts;
// a later pending result leaves that verdict standing.
func TestPendingResultIsNoVerdict(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	pub := &recorder{}
	m := NewMonitor(Options{Clock: clk, Events: pub, Interval: 30 * time.Second, Retries: 3})
	plugin := &switchable{mode: "pending"}
	mustAdd(t, m, "plugin", plugin, CheckConfig{Critical: true})
	mustAdd(t, m, "ok", pass(), CheckConfig{})

	run := func(advance time.Duration) Evaluation {
		t.Helper()
		clk.Advance(advance)
		ev, err := m.RunDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}

	// First run: "ok" judges, "plugin" is pending: no retries, no verdict.
	ev := run(0)
	if got := names(ev.Results); !slices.Equal(got, []string{"ok", "plugin"}) {
		t.Fatalf("first run ran %v", got)
	}
	if r := ev.Results[1]; !r.Pending || r.Attempts != 1 || plugin.count() != 1 {
		t.Fatalf("pending result %+v after %d calls, want 1 attempt and no retry", r, plugin.count())
	}
	if ev.Status != Healthy || ev.Score != 100 || len(ev.Failing) != 0 || ev.Reliability != 100 {
		t.Fatalf("with the plugin pending: %s score %v failing %v reliability %v, want HEALTHY 100 [] 100",
			ev.Status, ev.Score, ev.Failing, ev.Reliability)
	}

	// Due again at the next tick (no time passes with a fake clock): only
	// the pending check runs; a run of pending results alone makes no
	// evaluation.
	hist := len(m.History())
	ev = run(0)
	if got := names(ev.Results); len(got) != 0 || plugin.count() != 2 {
		t.Fatalf("second run: results %v after %d calls, want none recorded and a second call", got, plugin.count())
	}
	if len(m.History()) != hist {
		t.Fatalf("a pending-only run added to the history")
	}
	if c := m.Diagnostics().Checks[1]; c.Name != "plugin" || c.Pending == nil || c.Pending.Message != "plugin STARTING" || c.Last != nil {
		t.Fatalf("diagnostics: %+v; want the pending result apart, and no verdict (Last)", c)
	}

	// The plugin is up and its check fails: now it counts, critical.
	plugin.set("fail")
	ev = run(time.Second)
	if ev.Status != Critical || !slices.Equal(ev.Failing, []string{"plugin"}) {
		t.Fatalf("after a real failure: %s failing %v, want CRITICAL [plugin]", ev.Status, ev.Failing)
	}
	if r := ev.Results[0]; r.Attempts != 4 {
		t.Fatalf("a failing result is retried: %d attempts, want 4", r.Attempts)
	}

	// Pending again (a plugin restarting its first start, say): the
	// failure stands until a verdict replaces it, and the check comes
	// back at the next tick.
	plugin.set("pending")
	ev = run(30 * time.Second)
	if ev.Status != Critical {
		t.Fatalf("pending after a failure: %s, want the failure to stand (CRITICAL)", ev.Status)
	}
	if c := m.Diagnostics().Checks[1]; c.Last == nil || c.Last.Passed || c.Last.Message != "broken" || c.Pending == nil {
		t.Fatalf("diagnostics: %+v; want the failure as Last and the pending result apart", c)
	}
	plugin.set("pass")
	ev = run(time.Second)
	if got := names(ev.Results); !slices.Equal(got, []string{"plugin"}) || ev.Status != Healthy {
		t.Fatalf("next tick: ran %v, status %s; want [plugin] and HEALTHY", got, ev.Status)
	}
	if c := m.Diagnostics().Checks[1]; c.Last == nil || !c.Last.Passed || c.Pending != nil {
		t.Fatalf("diagnostics: %+v; want the pass as Last and nothing pending", c)
	}

	var changes []string
	for _, e := range pub.events() {
		changes = append(changes, e.Data.Summary())
	}
	if len(changes) != 3 { // UNKNOWN->HEALTHY, ->CRITICAL, ->HEALTHY
		t.Fatalf("events %q, want 3 status changes", changes)
	}
}

// TestSetDefaultsReachesEveryCheckThatFollowsThem: a reload's interval,
// timeout and retries reach the checks that leave them to the monitor,
// the next run falling due one new interval after the last started; a
// check with its own interval keeps it.
func TestSetDefaultsReachesEveryCheckThatFollowsThem(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	m := NewMonitor(Options{Clock: clk, Interval: 30 * time.Second, Timeout: 10 * time.Second, Retries: 3})
	failing := &switchable{mode: "fail"}
	mustAdd(t, m, "follows", failing, CheckConfig{})
	mustAdd(t, m, "own", pass(), CheckConfig{Interval: 20 * time.Second})
	if _, err := m.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if failing.count() != 4 {
		t.Fatalf("%d calls, want 4 (3 retries)", failing.count())
	}

	m.SetDefaults(Defaults{Interval: 5 * time.Second, Timeout: time.Second, Retries: -1})
	if d := m.Defaults(); d != (Defaults{Interval: 5 * time.Second, Timeout: time.Second, Retries: -1}) {
		t.Fatalf("Defaults() = %+v", d)
	}
	for _, c := range m.Diagnostics().Checks {
		want := map[string]CheckState{
			"follows": {Interval: 5 * time.Second, Timeout: time.Second, Retries: 0, NextDue: clk.Now().Add(5 * time.Second)},
			"own":     {Interval: 20 * time.Second, Timeout: time.Second, Retries: 0, NextDue: clk.Now().Add(20 * time.Second)},
		}[c.Name]
		if c.Interval != want.Interval || c.Timeout != want.Timeout || c.Retries != want.Retries || !c.NextDue.Equal(want.NextDue) {
			t.Errorf("%s: interval %v timeout %v retries %d next %v; want %v %v %d %v", c.Name,
				c.Interval, c.Timeout, c.Retries, c.NextDue, want.Interval, want.Timeout, want.Retries, want.NextDue)
		}
	}
	ev, err := m.RunDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Results) != 0 {
		t.Fatalf("ran %v before the new interval passed", names(ev.Results))
	}
	clk.Advance(5 * time.Second)
	ev, err = m.RunDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ev.Results); !slices.Equal(got, []string{"follows"}) || failing.count() != 5 {
		t.Fatalf("after the new interval: ran %v, %d calls; want [follows] once, no retries", got, failing.count())
	}

	// Zero values are the package defaults, as in Options.
	m.SetDefaults(Defaults{})
	if d := m.Defaults(); d != (Defaults{Interval: DefaultInterval, Timeout: DefaultTimeout, Retries: DefaultRetries}) {
		t.Fatalf("zero Defaults: %+v", d)
	}
}
