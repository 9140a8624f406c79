package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// wait is the real-time bound on anything a test waits for; it only
// matters when the code under test is broken.
const wait = 10 * time.Second

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func pass() Checker {
	return CheckFunc(func(context.Context, metrics.Snapshot) Result { return Result{Passed: true} })
}

func fail() Checker {
	return CheckFunc(func(context.Context, metrics.Snapshot) Result { return Result{Message: "nope"} })
}

// counted wraps c and counts its calls.
func counted(n *atomic.Int32, c Checker) Checker {
	return CheckFunc(func(ctx context.Context, s metrics.Snapshot) Result {
		n.Add(1)
		return c.Check(ctx, s)
	})
}

func mustAdd(t *testing.T, m *Monitor, name string, c Checker, cfg CheckConfig) {
	t.Helper()
	if err := m.Add(name, c, cfg); err != nil {
		t.Fatal(err)
	}
}

func names(rs []Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// waitCalls waits (bounded) until the check called name has no call of
// Check outstanding: abandoned calls end on their own, after the test has
// let them return.
func waitCalls(t *testing.T, m *Monitor, name string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, c := range m.Diagnostics().Checks {
			if c.Name == name && c.Calls == 0 {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("check %q still has calls outstanding", name)
}

func TestHangingCheckIsCutOffByItsTimeout(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	release := make(chan struct{})
	called := make(chan struct{}, 8)
	var calls atomic.Int32
	hang := CheckFunc(func(context.Context, metrics.Snapshot) Result {
		calls.Add(1)
		called <- struct{}{}
		<-release // ignores ctx on purpose
		return Result{Passed: true}
	})
	m := NewMonitor(Options{Clock: clk, Timeout: 10 * time.Second, Retries: 3})
	mustAdd(t, m, "hang", hang, CheckConfig{})

	got := make(chan Evaluation, 1)
	go func() {
		ev, err := m.RunOnce(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- ev
	}()
	// The attempt's timer is set before Check is called, so once the call
	// is seen, advancing the fake clock by the timeout fires it.
	recv(t, called, "first call")
	clk.Advance(10 * time.Second)
	recv(t, called, "the retry's call")
	clk.Advance(10 * time.Second)
	ev := recv(t, got, "the evaluation")

	if len(ev.Results) != 1 {
		t.Fatalf("results = %+v", ev.Results)
	}
	r := ev.Results[0]
	if r.Passed || !r.TimedOut {
		t.Fatalf("hung check: passed=%v timedOut=%v, want a timed-out failure", r.Passed, r.TimedOut)
	}
	// Attempt 1 and its retry both hang; the third attempt is not started
	// because two calls are outstanding, so retrying stops.
	if r.Attempts != 2 || calls.Load() != 2 {
		t.Fatalf("attempts=%d calls=%d, want 2 and 2", r.Attempts, calls.Load())
	}
	if !strings.Contains(r.Message, "timed out after 10s") || !strings.Contains(r.Message, "retry not started") {
		t.Fatalf("message = %q", r.Message)
	}
	if r.Duration != 20*time.Second {
		t.Fatalf("duration = %s, want 20s of fake time", r.Duration)
	}
	if ev.Status != Unhealthy || ev.Score != 0 {
		t.Fatalf("status=%s score=%v, want UNHEALTHY 0", ev.Status, ev.Score)
	}
	if d := m.Diagnostics(); d.Checks[0].Calls != 2 || d.Checks[0].Running {
		t.Fatalf("diagnostics = %+v, want 2 outstanding calls and no run", d.Checks[0])
	}

	// While both calls hang, a new run does not start a third one.
	ev, err := m.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := ev.Results[0]; r.Passed || r.Attempts != 0 || !strings.Contains(r.Message, "still running") || calls.Load() != 2 {
		t.Fatalf("run while stuck: %+v, calls=%d", r, calls.Load())
	}

	// Once the calls return, the check runs normally again.
	close(release)
	waitCalls(t, m, "hang")
	ev, err = m.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := ev.Results[0]; !r.Passed || r.Attempts != 1 || calls.Load() != 3 {
		t.Fatalf("after release: %+v, calls=%d", r, calls.Load())
	}
	if ev.Status != Healthy {
		t.Fatalf("status = %s", ev.Status)
	}
}

func TestTimeoutCancelsTheChecksContext(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	called := make(chan struct{}, 1)
	sawCancel := make(chan error, 1)
	slow := CheckFunc(func(ctx context.Context, _ metrics.Snapshot) Result {
		called <- struct{}{}
		<-ctx.Done()
		sawCancel <- ctx.Err()
		return Result{Passed: true}
	})
	m := NewMonitor(Options{Clock: clk, Timeout: 3 * time.Second, Retries: -1})
	mustAdd(t, m, "slow", slow, CheckConfig{})
	got := make(chan Evaluation, 1)
	go func() {
		ev, _ := m.RunOnce(context.Background())
		got <- ev
	}()
	recv(t, called, "the call")
	clk.Advance(3 * time.Second)
	ev := recv(t, got, "the evaluation")
	if err := recv(t, sawCancel, "the check seeing its context end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("check saw %v", err)
	}
	if r := ev.Results[0]; r.Passed || !r.TimedOut || r.Attempts != 1 {
		t.Fatalf("result = %+v, want a timed-out failure after one attempt", r)
	}
	waitCalls(t, m, "slow")
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		optRetries   int
		cfgRetries   int
		failFirst    int // attempts that fail before one passes; -1: all fail
		wantCalls    int32
		wantPassed   bool
		wantAttempts int
	}{
		{"default 3 retries, always failing", 0, 0, -1, 4, false, 4},
		{"default, passes on the third attempt", 0, 0, 2, 3, true, 3},
		{"passes at once", 0, 0, 0, 1, true, 1},
		{"monitor says no retries", -1, 0, -1, 1, false, 1},
		{"monitor retries 5", 5, 0, -1, 6, false, 6},
		{"check overrides with 1", 5, 1, -1, 2, false, 2},
		{"check says none", 0, -1, 3, 1, false, 1},
		{"last retry passes", 2, 0, 2, 3, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			flaky := CheckFunc(func(context.Context, metrics.Snapshot) Result {
				n := calls.Add(1)
				if tt.failFirst < 0 || int(n) <= tt.failFirst {
					return Result{Message: fmt.Sprintf("attempt %d fails", n)}
				}
				return Result{Passed: true}
			})
			m := NewMonitor(Options{Clock: clock.NewFake(time.Time{}), Retries: tt.optRetries})
			mustAdd(t, m, "flaky", flaky, CheckConfig{Retries: tt.cfgRetries})
			ev, err := m.RunOnce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			r := ev.Results[0]
			if calls.Load() != tt.wantCalls || r.Passed != tt.wantPassed || r.Attempts != tt.wantAttempts {
				t.Fatalf("calls=%d passed=%v attempts=%d, want %d %v %d", calls.Load(), r.Passed, r.Attempts, tt.wantCalls, tt.wantPassed, tt.wantAttempts)
			}
		})
	}
}

func TestRetryDelayWaitsOnTheClock(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	calledAt := make(chan time.Time, 4)
	failing := CheckFunc(func(context.Context, metrics.Snapshot) Result {
		calledAt <- clk.Now()
		return Result{Message: "down"}
	})
	m := NewMonitor(Options{Clock: clk, Retries: 2, RetryDelay: 5 * time.Second, Timeout: time.Hour})
	mustAdd(t, m, "down", failing, CheckConfig{})
	got := make(chan Evaluation, 1)
	go func() {
		ev, _ := m.RunOnce(context.Background())
		got <- ev
	}()
	// Move time a second at a time until all three calls happened. How far
	// time runs ahead of the monitor does not matter: the assertion is on
	// the fake times of the calls.
	var times []time.Time
	deadline := time.Now().Add(wait)
	for len(times) < 3 && time.Now().Before(deadline) {
		select {
		case at := <-calledAt:
			times = append(times, at)
			continue
		case <-time.After(2 * time.Millisecond):
		}
		clk.Advance(time.Second)
	}
	if len(times) != 3 {
		t.Fatalf("saw %d calls, want 3", len(times))
	}
	ev := recv(t, got, "the evaluation")
	for i := 1; i < 3; i++ {
		if gap := times[i].Sub(times[i-1]); gap < 5*time.Second {
			t.Fatalf("retry %d came %s after the previous call, want at least the 5s delay", i, gap)
		}
	}
	if r := ev.Results[0]; r.Attempts != 3 || r.Duration < 10*time.Second {
		t.Fatalf("result = %+v, want 3 attempts over at least 10s", r)
	}
}

func TestChecksRunConcurrently(t *testing.T) {
	const n = 4
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	barrier := CheckFunc(func(ctx context.Context, _ metrics.Snapshot) Result {
		arrived.Done()
		select {
		case <-all:
			return Result{Passed: true}
		case <-ctx.Done():
			return Result{Message: "the others never came"}
		}
	})
	m := NewMonitor(Options{Clock: clock.NewFake(time.Time{})})
	for i := range n {
		mustAdd(t, m, fmt.Sprintf("c%d", i), barrier, CheckConfig{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ev, err := m.RunOnce(ctx)
	if err != nil {
		t.Fatalf("checks did not all run at once: %v", err)
	}
	if len(ev.Results) != n || ev.Status != Healthy {
		t.Fatalf("evaluation = %+v", ev)
	}
	if want := []string{"c0", "c1", "c2", "c3"}; !slices.Equal(names(ev.Results), want) {
		t.Fatalf("results order = %v, want %v", names(ev.Results), want)
	}
}

func TestPanickingCheckFails(t *testing.T) {
	m := NewMonitor(Options{Clock: clock.NewFake(time.Time{}), Retries: 1})
	mustAdd(t, m, "boom", CheckFunc(func(context.Context, metrics.Snapshot) Result { panic("kaboom") }), CheckConfig{})
	ev, err := m.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := ev.Results[0]
	if r.Passed || r.Attempts != 2 || !strings.Contains(r.Message, "check panicked: kaboom") {
		t.Fatalf("result = %+v", r)
	}
	waitCalls(t, m, "boom")
}

func TestMonitorFillsResultFields(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	snapTime := clk.Now().Add(-time.Minute)
	var seen metrics.Snapshot
	c := CheckFunc(func(_ context.Context, s metrics.Snapshot) Result {
		seen = s
		return Result{Name: "ignored", Passed: true, Value: 3, Threshold: 5, Unit: "things", Message: "fine", TimedOut: true}
	})
	m := NewMonitor(Options{Clock: clk, Source: func() metrics.Snapshot {
		return metrics.Snapshot{Time: snapTime, Shard: metrics.ShardInfo{ID: 2, Count: 4}}
	}})
	mustAdd(t, m, "mine", c, CheckConfig{})
	ev, err := m.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Name: "mine", Passed: true, Value: 3, Threshold: 5, Unit: "things", Message: "fine", Time: clk.Now(), Attempts: 1}
	if got := ev.Results[0]; got != want {
		t.Fatalf("result = %+v\nwant     %+v", got, want)
	}
	if !seen.Time.Equal(snapTime) || seen.Shard.ID != 2 {
		t.Fatalf("check saw snapshot %+v, not the source's", seen)
	}
}

func TestDefaultsAndEffectiveSettings(t *testing.T) {
	m := NewMonitor(Options{})
	mustAdd(t, m, "a", pass(), CheckConfig{})
	mustAdd(t, m, "b", pass(), CheckConfig{Interval: time.Minute, Timeout: time.Second, Retries: -1})
	d := m.Diagnostics()
	a, b := d.Checks[0], d.Checks[1]
	if a.Interval != 30*time.Second || a.Timeout != 10*time.Second || a.Retries != 3 {
		t.Fatalf("defaults = %+v", a)
	}
	if b.Interval != time.Minute || b.Timeout != time.Second || b.Retries != 0 || b.Config.Retries != -1 {
		t.Fatalf("overrides = %+v", b)
	}
	if d.Status != Unknown || d.Score != 100 || d.Trend != Stable || d.Stability != 100 || d.Reliability != 100 {
		t.Fatalf("initial state = %+v", d)
	}
	if v := m.View(); v != (metrics.HealthView{Score: 100, Status: "UNKNOWN", Trend: "stable"}) {
		t.Fatalf("initial view = %+v", v)
	}
	if m2 := NewMonitor(Options{Retries: -4}); m2.retries != 0 {
		t.Fatalf("negative Options.Retries gives %d retries", m2.retries)
	}
	if m3 := NewMonitor(Options{HistorySize: 5, Window: 50}); m3.window != 5 {
		t.Fatalf("window not capped at history size: %d", m3.window)
	}
}

func TestRegistrationErrors(t *testing.T) {
	m := NewMonitor(Options{Clock: clock.NewFake(time.Time{})})
	mustAdd(t, m, "a", pass(), CheckConfig{})
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"duplicate", m.Add("a", pass(), CheckConfig{}), ErrDuplicateCheck},
		{"empty name", m.Add("", pass(), CheckConfig{}), ErrInvalidConfig},
		{"nil checker", m.Add("b", nil, CheckConfig{}), ErrInvalidConfig},
		{"negative interval", m.Add("b", pass(), CheckConfig{Interval: -time.Second}), ErrInvalidConfig},
		{"negative timeout", m.Add("b", pass(), CheckConfig{Timeout: -time.Second}), ErrInvalidConfig},
		{"negative weight", m.Add("b", pass(), CheckConfig{Weight: -1}), ErrInvalidConfig},
		{"remove unknown", m.Remove("zz"), ErrUnknownCheck},
		{"configure unknown", m.Configure("zz", CheckConfig{}), ErrUnknownCheck},
		{"configure invalid", m.Configure("a", CheckConfig{Weight: -2}), ErrInvalidConfig},
		{"replace unknown", m.Replace("zz", pass()), ErrUnknownCheck},
		{"replace with nil", m.Replace("a", nil), ErrInvalidConfig},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
		if tt.err != nil && !strings.HasPrefix(tt.err.Error(), "health: ") {
			t.Errorf("%s: error %q does not say where it came from", tt.name, tt.err)
		}
	}
	if d := m.Diagnostics(); len(d.Checks) != 1 {
		t.Fatalf("failed calls changed the registry: %+v", d.Checks)
	}
}

func TestEventsOnlyOnStatusChange(t *testing.T) {
	for _, shard := range []int{3, events.NoShard} {
		t.Run(fmt.Sprintf("shard %d", shard), func(t *testing.T) {
			pub := &recorder{}
			clk := clock.NewFake(time.Time{})
			m := NewMonitor(Options{Clock: clk, Events: pub, Shard: shard, Retries: -1})
			plain, crit := &scripted{pass: true}, &scripted{pass: true}
			mustAdd(t, m, "plain", plain, CheckConfig{})
			mustAdd(t, m, "other", pass(), CheckConfig{})
			mustAdd(t, m, "crit", crit, CheckConfig{Critical: true})

			steps := []struct{ plain, crit bool }{
				{true, true},   // UNKNOWN -> HEALTHY
				{true, true},   // no change
				{false, true},  // -> DEGRADED
				{false, true},  // no change
				{false, false}, // -> CRITICAL
				{true, false},  // still CRITICAL
				{true, true},   // -> HEALTHY
				{true, true},   // no change
			}
			for _, s := range steps {
				plain.set(s.plain)
				crit.set(s.crit)
				clk.Advance(time.Second)
				if _, err := m.RunOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			type change struct {
				from, to string
				failing  string
			}
			var got []change
			for _, e := range pub.events() {
				if e.Type != events.HealthChanged || e.Shard != shard {
					t.Fatalf("event %v: wrong type or shard", e)
				}
				d := e.Data.(events.HealthChange)
				got = append(got, change{d.From, d.To, strings.Join(d.Failing, ",")})
			}
			want := []change{
				{"UNKNOWN", "HEALTHY", ""},
				{"HEALTHY", "DEGRADED", "plain"},
				{"DEGRADED", "CRITICAL", "crit,plain"},
				{"CRITICAL", "HEALTHY", ""},
			}
			if !slices.Equal(got, want) {
				t.Fatalf("events = %v\nwant      %v", got, want)
			}
			if d := pub.events()[1].Data.(events.HealthChange); d.Score != 75 {
				t.Fatalf("DEGRADED event score = %v, want 75", d.Score)
			}
		})
	}
}

func TestHistoryIsBounded(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	s := &scripted{}
	m := NewMonitor(Options{Clock: clk, HistorySize: 5, Retries: -1})
	mustAdd(t, m, "s", s, CheckConfig{})
	var last []time.Time
	for i := range 12 {
		s.set(i >= 7) // 7 failing runs, then 5 passing ones
		clk.Advance(time.Second)
		ev, err := m.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		last = append(last, ev.Time)
	}
	h := m.History()
	if len(h) != 5 {
		t.Fatalf("history holds %d evaluations, want 5", len(h))
	}
	for i, ev := range h {
		if !ev.Time.Equal(last[7+i]) {
			t.Fatalf("history[%d] is from %v, want %v (oldest first, newest kept)", i, ev.Time, last[7+i])
		}
	}
	// Only the kept runs count: the 7 failures fell out of the history.
	if got := m.Latest().Reliability; got != 100 {
		t.Fatalf("reliability = %v, want 100", got)
	}
	// Callers get copies: changing them leaves the history alone.
	h[0].Results[0].Passed = false
	if !m.History()[0].Results[0].Passed {
		t.Fatal("History returned the monitor's own slice")
	}
}

func TestRunDueRunsOnlyDueChecks(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	t0 := clk.Now()
	m := NewMonitor(Options{Clock: clk})
	mustAdd(t, m, "fast", pass(), CheckConfig{Interval: 10 * time.Second})
	mustAdd(t, m, "slow", pass(), CheckConfig{Interval: 30 * time.Second})
	mustAdd(t, m, "off", pass(), CheckConfig{Disabled: true})

	steps := []struct {
		advance time.Duration
		want    []string
	}{
		{0, []string{"fast", "slow"}},
		{5 * time.Second, nil},
		{5 * time.Second, []string{"fast"}},
		{10 * time.Second, []string{"fast"}},
		{10 * time.Second, []string{"fast", "slow"}},
		{25 * time.Second, []string{"fast"}}, // fast was due at 40s; cadence resumes from 55s
		{10 * time.Second, []string{"fast", "slow"}},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		ev, err := m.RunDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := names(ev.Results); !slices.Equal(got, s.want) {
			t.Fatalf("step %d at +%s: ran %v, want %v", i, clk.Since(t0), got, s.want)
		}
	}
	if len(m.History()) != 6 {
		t.Fatalf("history = %d evaluations, want one per run that ran something (6)", len(m.History()))
	}
}

func TestStartRunsOnScheduleAndFollowsChanges(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	t0 := clk.Now()
	evs := make(chan Evaluation, 32)
	m := NewMonitor(Options{Clock: clk, Interval: 10 * time.Second, Retries: -1, OnEvaluation: func(e Evaluation) { evs <- e }})
	var aCalls, bCalls, cCalls atomic.Int32
	mustAdd(t, m, "a", counted(&aCalls, pass()), CheckConfig{})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	if err := m.Start(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start: err = %v, want ErrRunning", err)
	}

	expect := func(at time.Duration, want ...string) {
		t.Helper()
		ev := recv(t, evs, fmt.Sprintf("a run at +%s", at))
		if got := names(ev.Results); !slices.Equal(got, want) || !ev.Time.Equal(t0.Add(at)) {
			t.Fatalf("run at +%s ran %v; want %v at +%s", ev.Time.Sub(t0), got, want, at)
		}
	}
	expect(0, "a") // due when added: runs at Start

	clk.Advance(10 * time.Second)
	expect(10*time.Second, "a")

	// Added while running: due at once, then every 5s.
	mustAdd(t, m, "b", counted(&bCalls, fail()), CheckConfig{Interval: 5 * time.Second})
	expect(10*time.Second, "b")
	if st := m.Status(); st != Degraded {
		t.Fatalf("status with b failing = %s", st)
	}
	clk.Advance(5 * time.Second)
	expect(15*time.Second, "b")
	clk.Advance(5 * time.Second)
	expect(20*time.Second, "a", "b")

	// Reconfigured while running: a now every minute from its last start.
	if err := m.Configure("a", CheckConfig{Interval: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// Removed while running: b never runs again, and the status no longer
	// counts it.
	if err := m.Remove("b"); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(); st != Healthy {
		t.Fatalf("status after removing the failing check = %s", st)
	}
	mustAdd(t, m, "c", counted(&cCalls, pass()), CheckConfig{Interval: 40 * time.Second, Disabled: true})
	clk.Advance(60 * time.Second)
	expect(80*time.Second, "a")

	// Enabled while running: c is overdue (it never ran) and runs at once.
	if err := m.Configure("c", CheckConfig{Interval: 40 * time.Second}); err != nil {
		t.Fatal(err)
	}
	expect(80*time.Second, "c")

	// Replaced while running: runs at once with the new Checker.
	if err := m.Replace("c", counted(&cCalls, fail())); err != nil {
		t.Fatal(err)
	}
	ev := recv(t, evs, "the replaced check's run")
	if names(ev.Results)[0] != "c" || ev.Results[0].Passed {
		t.Fatalf("replaced check ran as %+v", ev.Results)
	}

	m.Stop()
	if a, b, c := aCalls.Load(), bCalls.Load(), cCalls.Load(); a != 4 || b != 3 || c != 2 {
		t.Fatalf("calls a=%d b=%d c=%d, want 4 3 2", a, b, c)
	}
	if clk.Waiters() != 0 {
		t.Fatalf("%d timers left after Stop", clk.Waiters())
	}
	// Start works again after Stop.
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start after Stop: %v", err)
	}
}

func TestStartAfterContextEnds(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	evs := make(chan Evaluation, 4)
	m := NewMonitor(Options{Clock: clk, OnEvaluation: func(e Evaluation) { evs <- e }})
	mustAdd(t, m, "a", pass(), CheckConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	recv(t, evs, "the first run")
	cancel()
	// The loop ends with its context; Start may then be called again.
	deadline := time.Now().Add(wait)
	var err error
	for time.Now().Before(deadline) {
		if err = m.Start(context.Background()); !errors.Is(err, ErrRunning) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Start after the context ended: %v", err)
	}
	m.Stop()
}

func TestStopCutsShortAHungRun(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	release := make(chan struct{})
	defer close(release)
	called := make(chan struct{}, 1)
	hang := CheckFunc(func(context.Context, metrics.Snapshot) Result {
		called <- struct{}{}
		<-release
		return Result{Passed: true}
	})
	evaluated := atomic.Bool{}
	m := NewMonitor(Options{Clock: clk, OnEvaluation: func(Evaluation) { evaluated.Store(true) }})
	mustAdd(t, m, "hang", hang, CheckConfig{})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	recv(t, called, "the call")
	m.Stop() // must return although the check never does
	if evaluated.Load() || len(m.History()) != 0 || m.Status() != Unknown {
		t.Fatal("a run cut short by Stop was recorded")
	}
	if d := m.Diagnostics(); d.Checks[0].Running {
		t.Fatal("check still marked running after Stop")
	}
}

func TestRunOnceCutShortByContext(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	release := make(chan struct{})
	called := make(chan struct{}, 1)
	hang := CheckFunc(func(context.Context, metrics.Snapshot) Result {
		called <- struct{}{}
		<-release
		return Result{Passed: true}
	})
	m := NewMonitor(Options{Clock: clk})
	okCalled := make(chan struct{}, 1)
	mustAdd(t, m, "hang", hang, CheckConfig{})
	mustAdd(t, m, "ok", CheckFunc(func(context.Context, metrics.Snapshot) Result {
		okCalled <- struct{}{}
		return Result{Passed: true}
	}), CheckConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	type out struct {
		ev  Evaluation
		err error
	}
	got := make(chan out, 1)
	go func() {
		ev, err := m.RunOnce(ctx)
		got <- out{ev, err}
	}()
	recv(t, called, "the call")
	recv(t, okCalled, "the other call")
	// Both attempts' timers exist from before their calls; wait until the
	// quick check's attempt has ended (its timer stopped) before canceling.
	deadline := time.Now().Add(wait)
	for clk.Waiters() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	o := recv(t, got, "RunOnce")
	if !errors.Is(o.err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", o.err)
	}
	// The check that finished is recorded; the one cut off is not.
	if got := names(o.ev.Results); !slices.Equal(got, []string{"ok"}) {
		t.Fatalf("recorded %v, want [ok]", got)
	}
	close(release)
	waitCalls(t, m, "hang")
}

func TestRemovedCheckLateResultIsDropped(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	proceed := make(chan struct{})
	called := make(chan struct{}, 1)
	slow := CheckFunc(func(context.Context, metrics.Snapshot) Result {
		called <- struct{}{}
		<-proceed
		return Result{Message: "late failure"}
	})
	m := NewMonitor(Options{Clock: clk, Retries: -1})
	mustAdd(t, m, "slow", slow, CheckConfig{})
	mustAdd(t, m, "ok", pass(), CheckConfig{})
	got := make(chan Evaluation, 1)
	go func() {
		ev, _ := m.RunOnce(context.Background())
		got <- ev
	}()
	recv(t, called, "the call")
	if err := m.Remove("slow"); err != nil {
		t.Fatal(err)
	}
	close(proceed)
	ev := recv(t, got, "the evaluation")
	if n := names(ev.Results); !slices.Equal(n, []string{"ok"}) || ev.Status != Healthy {
		t.Fatalf("evaluation = %+v, want only ok and HEALTHY", ev)
	}
}

func TestConfigureRederivesStatus(t *testing.T) {
	pub := &recorder{}
	m := NewMonitor(Options{Clock: clock.NewFake(time.Time{}), Events: pub, Retries: -1})
	mustAdd(t, m, "a", pass(), CheckConfig{})
	mustAdd(t, m, "b", fail(), CheckConfig{})
	mustAdd(t, m, "c", pass(), CheckConfig{})
	if _, err := m.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		cfg    CheckConfig
		status Status
		score  float64
	}{
		{CheckConfig{Critical: true}, Critical, 50},
		{CheckConfig{Weight: 4}, Unhealthy, 100 * 2.0 / 6},
		{CheckConfig{Disabled: true}, Healthy, 100},
		{CheckConfig{}, Degraded, 100 * 2.0 / 3},
	}
	for _, s := range steps {
		if err := m.Configure("b", s.cfg); err != nil {
			t.Fatal(err)
		}
		if ev := m.Latest(); ev.Status != s.status || ev.Score != s.score {
			t.Fatalf("after Configure(%+v): %s %v, want %s %v", s.cfg, ev.Status, ev.Score, s.status, s.score)
		}
	}
	if len(m.History()) != 1 {
		t.Fatalf("Configure added to the history: %d entries", len(m.History()))
	}
	if n := len(pub.events()); n != 5 { // UNKNOWN->DEGRADED, then one per step
		t.Fatalf("%d events, want 5", n)
	}
}

func TestConcurrentChangesWhileRunning(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	m := NewMonitor(Options{Clock: clk, Interval: time.Second, Events: events.NewBus(events.Options{})})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				name := fmt.Sprintf("w%d-%d", w, i%5)
				c := pass()
				if i%3 == 0 {
					c = fail()
				}
				_ = m.Add(name, c, CheckConfig{Interval: time.Duration(1+i%3) * time.Second})
				_ = m.Configure(name, CheckConfig{Critical: i%7 == 0, Weight: float64(1 + i%2)})
				_ = m.Replace(name, pass())
				_ = m.Diagnostics()
				_ = m.View()
				if i%2 == 1 {
					_ = m.Remove(name)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			_, _ = m.RunOnce(ctx)
			_, _ = m.RunDue(ctx)
			clk.Advance(time.Second)
			_ = m.History()
		}
	}()
	wg.Wait()
	m.Stop()
	for _, c := range m.Diagnostics().Checks {
		if err := m.Remove(c.Name); err != nil {
			t.Fatal(err)
		}
	}
	if d := m.Diagnostics(); len(d.Checks) != 0 || d.Status != Unknown {
		t.Fatalf("after removing everything: %d checks, status %s", len(d.Checks), d.Status)
	}
	if len(m.History()) > DefaultHistorySize {
		t.Fatalf("history grew to %d", len(m.History()))
	}
}
