package recovery_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

// A policy whose every rule is a plugin strategy, so each test controls
// the implementations.
const pluginPolicy = `
recovery "a" {
  priority = 20
  use      = "p.a"
  max_attempts = 1
}
recovery "b" {
  priority = 10
  use      = "p.b"
  max_attempts = 1
}
recovery "c" {
  priority = 20
  use      = "p.c"
  max_attempts = 1
}
plugin "p" { path = "./p" }
`

func TestPriorityOrder(t *testing.T) {
	cases := []struct {
		name  string
		goS   []recovery.Strategy // Recoverer filled in by the test
		want  []string
		watch string // the policy
	}{
		{
			name: "policy rules by priority, ties in file order",
			want: []string{"b#1", "a#1", "c#1"},
		},
		{
			name: "Go strategies interleave by priority; ties after policy rules, in registration order",
			goS: []recovery.Strategy{
				{Name: "g15", Priority: 15, MaxAttempts: 1},
				{Name: "g20", Priority: 20, MaxAttempts: 1},
				{Name: "g5", Priority: 5, MaxAttempts: 1},
				{Name: "g20b", Priority: 20, MaxAttempts: 1},
			},
			want: []string{"g5#1", "b#1", "g15#1", "a#1", "c#1", "g20#1", "g20b#1"},
		},
		{
			name: "MaxAttempts repeats a strategy before the next",
			goS:  []recovery.Strategy{{Name: "g", Priority: 15, MaxAttempts: 3}},
			want: []string{"b#1", "g#1", "g#2", "g#3", "a#1", "c#1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			e := recovery.New(recovery.Settings{Events: rec, Clock: newFake()})
			tr := &tracker{}
			for _, n := range []string{"a", "b", "c"} {
				if err := e.Register("p."+n, tr.strategy(n, errBoom)); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.SetPolicy(mustPolicy(t, pluginPolicy)); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.goS {
				s.Recoverer = tr.strategy(s.Name, errBoom)
				if err := e.AddRecoveryStrategy(s); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := e.Handle(context.Background(), closeFailure(4000))
			if !errors.Is(err, recovery.ErrExhausted) || !errors.Is(err, errBoom) {
				t.Fatalf("Handle error %v, want ErrExhausted wrapping boom", err)
			}
			equal(t, "attempt order", tr.got(), tc.want)
			var fromReport []string
			for _, a := range rep.Attempts {
				fromReport = append(fromReport, a.Strategy+"#"+itoa(a.Number))
			}
			equal(t, "report attempts", fromReport, tc.want)
			// Every attempt shows as ATTEMPTED then COMPLETED (failed), and
			// giving up as ERROR_OCCURRED.
			var wantEv []string
			for _, w := range tc.want {
				wantEv = append(wantEv, "ATTEMPTED "+w, "COMPLETED "+w+" fail")
			}
			wantEv = append(wantEv, "ERROR recovery_failed")
			equal(t, "events", rec.lines(), wantEv)
			if rep.Recovered {
				t.Fatal("report says recovered")
			}
		})
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

func TestFallThroughStopsAtFirstSuccess(t *testing.T) {
	rec := &recorder{}
	e := recovery.New(recovery.Settings{Events: rec, Clock: newFake()})
	tr := &tracker{}
	if err := e.SetPolicy(mustPolicy(t, `
recovery "first" {
  priority = 1
  use = "p.first"
  max_attempts = 2
}
recovery "second" {
  priority = 2
  use = "p.second"
}
recovery "third" {
  priority = 3
  use = "p.third"
}
plugin "p" { path = "./p" }
`)); err == nil {
		t.Fatal("SetPolicy accepted unregistered plugin strategies")
	}
	_ = e.Register("p.first", tr.strategy("first", errBoom))
	_ = e.Register("p.second", tr.strategy("second", nil))
	_ = e.Register("p.third", tr.strategy("third", nil))
	if err := e.SetPolicy(mustPolicy(t, `
recovery "first" {
  priority = 1
  use = "p.first"
  max_attempts = 2
}
recovery "second" {
  priority = 2
  use = "p.second"
}
recovery "third" {
  priority = 3
  use = "p.third"
}
plugin "p" { path = "./p" }
`)); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Handle(context.Background(), closeFailure(4000))
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if !rep.Recovered || rep.Strategy != "second" {
		t.Fatalf("report %+v, want recovered by second", rep)
	}
	equal(t, "attempts", tr.got(), []string{"first#1", "first#2", "second#1"})
	equal(t, "plan", rep.Plan, []string{"first", "second", "third"})
	equal(t, "events", rec.lines(), []string{
		"ATTEMPTED first#1", "COMPLETED first#1 fail",
		"ATTEMPTED first#2", "COMPLETED first#2 fail",
		"ATTEMPTED second#1", "COMPLETED second#1 ok",
	})
	// The failed attempts carry their error in the event.
	for _, ev := range rec.events() {
		if d, ok := ev.Data.(events.Recovery); ok && d.Completed && !d.Success && !strings.Contains(d.Error, "boom") {
			t.Fatalf("failed attempt event without its error: %+v", d)
		}
	}
	st := e.Stats()
	if st.Failures != 1 || st.Recovered != 1 || st.Attempts != 3 || st.Unrecovered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConditionsOverErrorAndSnapshot(t *testing.T) {
	src := `
recovery "on_4000" {
  priority = 1
  when = "error.close_code == 4000"
  use  = "p.x"
}
recovery "when_streak" {
  priority = 2
  when = "errors.consecutive >= 3 && error.kind == 'close'"
  use  = "p.y"
}
recovery "always" {
  priority = 3
  use = "p.z"
}
plugin "p" { path = "./p" }
`
	cases := []struct {
		name        string
		code        int
		consecutive uint64
		goWhen      bool
		want        []string
	}{
		{"close 4000, short streak", 4000, 1, false, []string{"on_4000", "always"}},
		{"close 4001, long streak", 4001, 3, false, []string{"when_streak", "always"}},
		{"close 4000, long streak, Go condition true", 4000, 5, true, []string{"on_4000", "when_streak", "always", "go"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := recovery.New(recovery.Settings{Clock: newFake()})
			tr := &tracker{}
			for _, n := range []string{"x", "y", "z"} {
				_ = e.Register("p."+n, tr.strategy(n, errBoom))
			}
			if err := e.SetPolicy(mustPolicy(t, src)); err != nil {
				t.Fatal(err)
			}
			var sawSnapshot *metrics.Snapshot
			if err := e.AddRecoveryStrategy(recovery.Strategy{Name: "go", Priority: 50, Recoverer: tr.strategy("go", errBoom),
				When: func(f recovery.Failure) bool {
					sawSnapshot = f.Snapshot
					return tc.goWhen && f.Error.CloseCode == 4000 && f.Snapshot.Errors.Consecutive >= 5
				}}); err != nil {
				t.Fatal(err)
			}
			f := closeFailure(tc.code)
			f.Snapshot = &metrics.Snapshot{Errors: metrics.Errors{Consecutive: tc.consecutive}}
			rep, _ := e.Handle(context.Background(), f)
			equal(t, "plan", rep.Plan, tc.want)
			if sawSnapshot != f.Snapshot {
				t.Fatal("the Go condition did not see the failure's Snapshot")
			}
		})
	}
}

func TestSnapshotFromSettings(t *testing.T) {
	var asked []int
	e := recovery.New(recovery.Settings{Clock: newFake(), Snapshot: func(shard int) *metrics.Snapshot {
		asked = append(asked, shard)
		return &metrics.Snapshot{Errors: metrics.Errors{Consecutive: 9}}
	}})
	tr := &tracker{}
	_ = e.Register("p.x", tr.strategy("x", nil))
	if err := e.SetPolicy(mustPolicy(t, `
recovery "x" {
  when = "errors.consecutive == 9"
  use  = "p.x"
}
plugin "p" { path = "./p" }
`)); err != nil {
		t.Fatal(err)
	}
	f := closeFailure(4000)
	f.Shard = 3
	if _, err := e.Handle(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != 3 {
		t.Fatalf("Snapshot asked for shards %v, want [3]", asked)
	}
}

func TestNoStrategyApplies(t *testing.T) {
	rec := &recorder{}
	e := recovery.New(recovery.Settings{Events: rec, Clock: newFake(), Connection: &fakeConn{}})
	// The default rules never apply to a fatal close code.
	f := closeFailure(4004)
	f.Error.Fatal = true
	rep, err := e.Handle(context.Background(), f)
	if !errors.Is(err, recovery.ErrNoStrategy) {
		t.Fatalf("err %v, want ErrNoStrategy", err)
	}
	if len(rep.Plan) != 0 || len(rep.Attempts) != 0 {
		t.Fatalf("report %+v", rep)
	}
	equal(t, "events", rec.lines(), []string{"ERROR recovery_failed"})
	d := rec.events()[0].Data.(events.Error)
	if d.Source != recovery.Source || d.CloseCode != 4004 || !strings.Contains(d.Message, "4004") {
		t.Fatalf("error event %+v", d)
	}
}

func TestOwnFailureIsNotHandled(t *testing.T) {
	rec := &recorder{}
	e := recovery.New(recovery.Settings{Events: rec, Clock: newFake(), Connection: &fakeConn{}})
	_, err := e.Handle(context.Background(), recovery.Failure{Error: policy.ErrorInfo{Source: recovery.Source, Kind: "recovery_failed"}})
	if !errors.Is(err, recovery.ErrOwnFailure) {
		t.Fatalf("err %v", err)
	}
	if len(rec.events()) != 0 {
		t.Fatalf("events published: %v", rec.lines())
	}
}

func TestStrategyCapPerWindow(t *testing.T) {
	clk := newFake()
	rec := &recorder{}
	e := recovery.New(recovery.Settings{Events: rec, Clock: clk, Window: time.Minute, MaxStrategyAttemptsPerWindow: 2})
	tr := &tracker{}
	_ = e.Register("p.flaky", tr.strategy("flaky", errBoom))
	_ = e.Register("p.good", tr.strategy("good", nil))
	if err := e.SetPolicy(mustPolicy(t, `
recovery "flaky" {
  priority = 1
  use = "p.flaky"
  max_attempts = 1
}
recovery "good" {
  priority = 2
  use = "p.good"
  max_attempts = 1
}
plugin "p" { path = "./p" }
`)); err != nil {
		t.Fatal(err)
	}
	handle := func() (recovery.Report, error) { return e.Handle(context.Background(), closeFailure(4000)) }

	// t=0 and t=40s: both strategies run (flaky fails, good recovers).
	for i := 0; i < 2; i++ {
		if _, err := handle(); err != nil {
			t.Fatalf("failure %d: %v", i, err)
		}
		clk.Advance(40 * time.Second)
	}
	equal(t, "attempts", tr.got(), []string{"flaky#1", "good#1", "flaky#1", "good#1"})
	// t=80s: the first failed attempt has left the 1-minute window, the
	// second has not: flaky has 1 failure in the window and runs again.
	if _, err := handle(); err != nil {
		t.Fatal(err)
	}
	// t=80s again: flaky is at its cap of 2 failures and is skipped; good,
	// whose three attempts all succeeded, has spent nothing and recovers.
	rep, err := handle()
	if err != nil {
		t.Fatalf("err %v, want good to recover", err)
	}
	if len(rep.Attempts) != 1 || rep.Strategy != "good" || len(rep.Skipped) != 1 ||
		rep.Skipped[0].Strategy != "flaky" || !errors.Is(rep.Skipped[0].Reason, recovery.ErrStrategyCap) {
		t.Fatalf("report %+v, want flaky skipped at its cap and good recovering", rep)
	}
	// Skips are not attempts: no event for them.
	if lines := rec.lines(); len(lines) != 2*7 {
		t.Fatalf("events %q", lines)
	}
	// t=121s: the t=40s failure has left the window: flaky runs again.
	clk.Advance(41 * time.Second)
	if _, err := handle(); err != nil {
		t.Fatalf("after the window moved: %v", err)
	}
	equal(t, "attempts", tr.got()[7:], []string{"flaky#1", "good#1"})
	if st := e.Stats(); st.Skipped != 1 || st.Attempts != 9 || st.Refunded != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStrategyCapFallsThroughToNext(t *testing.T) {
	clk := newFake()
	e := recovery.New(recovery.Settings{Clock: clk, MaxStrategyAttemptsPerWindow: 2})
	tr := &tracker{}
	_ = e.Register("p.flaky", tr.strategy("flaky", errBoom))
	_ = e.Register("p.good", tr.strategy("good", nil))
	if err := e.SetPolicy(mustPolicy(t, `
recovery "flaky" {
  priority = 1
  use = "p.flaky"
  max_attempts = 5
}
recovery "good" {
  priority = 2
  use = "p.good"
}
plugin "p" { path = "./p" }
`)); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Handle(context.Background(), closeFailure(4000))
	if err != nil {
		t.Fatal(err)
	}
	// flaky may try 5 times for this failure but only 2 within the window.
	equal(t, "attempts", tr.got(), []string{"flaky#1", "flaky#2", "good#1"})
	if len(rep.Skipped) != 1 || rep.Skipped[0].Strategy != "flaky" || !errors.Is(rep.Skipped[0].Reason, recovery.ErrStrategyCap) {
		t.Fatalf("skipped %+v", rep.Skipped)
	}
}

func TestWindowCapStopsEverything(t *testing.T) {
	clk := newFake()
	rec := &recorder{}
	e := recovery.New(recovery.Settings{Events: rec, Clock: clk, Window: time.Minute, MaxAttemptsPerWindow: 3})
	tr := &tracker{}
	_ = e.Register("p.flaky", tr.strategy("flaky", errBoom))
	_ = e.Register("p.good", tr.strategy("good", nil))
	if err := e.SetPolicy(mustPolicy(t, `
recovery "flaky" {
  priority = 1
  use = "p.flaky"
  max_attempts = 5
}
recovery "good" {
  priority = 2
  use = "p.good"
}
plugin "p" { path = "./p" }
`)); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Handle(context.Background(), closeFailure(4000))
	if !errors.Is(err, recovery.ErrWindowCap) || !errors.Is(err, recovery.ErrExhausted) {
		t.Fatalf("err %v", err)
	}
	equal(t, "attempts", tr.got(), []string{"flaky#1", "flaky#2", "flaky#3"})
	if len(rep.Skipped) != 1 || !errors.Is(rep.Skipped[0].Reason, recovery.ErrWindowCap) {
		t.Fatalf("skipped %+v", rep.Skipped)
	}
	// Another shard has its own window.
	f := closeFailure(4000)
	f.Shard = 1
	if _, err := e.Handle(context.Background(), f); !errors.Is(err, recovery.ErrWindowCap) {
		t.Fatalf("shard 1: %v", err)
	}
	if n := len(tr.got()); n != 6 {
		t.Fatalf("shard 1 made %d attempts in total, want 3 of its own", n-3)
	}
	// Once the window has moved on, shard 0 tries again.
	clk.Advance(time.Minute)
	if _, err := e.Handle(context.Background(), closeFailure(4000)); !errors.Is(err, recovery.ErrWindowCap) {
		t.Fatalf("after the window: %v", err)
	}
	if n := len(tr.got()); n != 9 {
		t.Fatalf("%d attempts after the window moved, want 9", n)
	}
}

// timerClock is a fake clock that reports each NewTimer (the Engine's
// retry delay and abandon grace) after creating it, so a test advances
// time exactly when the Engine waits.
type timerClock struct {
	*clock.Fake
	newTimer chan time.Duration
}

func (c *timerClock) NewTimer(d time.Duration) clock.Timer {
	t := c.Fake.NewTimer(d)
	c.newTimer <- d
	return t
}

func TestRetryDelayUsesTheClock(t *testing.T) {
	clk := &timerClock{Fake: newFake(), newTimer: make(chan time.Duration, 1)}
	e := recovery.New(recovery.Settings{Clock: clk, RetryDelay: 2 * time.Second})
	var mu sync.Mutex
	var starts []time.Time
	if err := e.AddRecoveryStrategy(recovery.Strategy{Name: "g", MaxAttempts: 2, Recoverer: recovery.RecovererFunc(
		func(_ context.Context, a recovery.Attempt) error {
			mu.Lock()
			starts = append(starts, a.Started)
			mu.Unlock()
			if a.Number == 1 {
				return errBoom
			}
			return nil
		})}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// Default policy, no connection: the built-ins are unavailable
		// (skipped without delay); g runs.
		_, err := e.Handle(context.Background(), closeFailure(4000))
		done <- err
	}()
	if d := <-clk.newTimer; d != 2*time.Second {
		t.Fatalf("waited %v, want the 2s retry delay", d)
	}
	select {
	case err := <-done:
		t.Fatalf("Handle returned before the retry delay passed: %v", err)
	default:
	}
	clk.Advance(2 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(starts) != 2 || starts[1].Sub(starts[0]) != 2*time.Second {
		t.Fatalf("attempt starts %v, want 2s apart", starts)
	}
}

func TestAttemptTimeoutFallsThrough(t *testing.T) {
	clk := newFake()
	rec := &recorder{}
	e := recovery.New(recovery.Settings{Events: rec, Clock: clk, AttemptTimeout: 10 * time.Second})
	started := make(chan struct{})
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "slow", Priority: 1, MaxAttempts: 1, Recoverer: recovery.RecovererFunc(
		func(ctx context.Context, _ recovery.Attempt) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		})})
	tr := &tracker{}
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "next", Priority: 2, MaxAttempts: 1, Recoverer: tr.strategy("next", nil)})
	// Leave only the Go strategies: a policy with one rule that never
	// applies.
	if err := e.SetPolicy(mustPolicy(t, `
recovery "resume" {
  when = "error.close_code == 1"
}
`)); err != nil {
		t.Fatal(err)
	}
	done := make(chan recovery.Report, 1)
	go func() {
		rep, _ := e.Handle(context.Background(), closeFailure(4000))
		done <- rep
	}()
	<-started
	if !clk.BlockUntil(1, 5*time.Second) {
		t.Fatal("no timeout timer")
	}
	clk.Advance(10 * time.Second)
	rep := <-done
	if !rep.Recovered || rep.Strategy != "next" {
		t.Fatalf("report %+v", rep)
	}
	if err := rep.Attempts[0].Err; !errors.Is(err, recovery.ErrAttemptTimeout) || !errors.Is(err, context.Canceled) {
		t.Fatalf("slow attempt error %v, want the timeout wrapping the strategy's own error", err)
	}
	if rep.Attempts[0].Duration != 10*time.Second {
		t.Fatalf("slow attempt took %v on the fake clock, want 10s", rep.Attempts[0].Duration)
	}
	if st := e.Stats(); st.Abandoned != 0 {
		t.Fatalf("a Recoverer that honoured its context was counted abandoned: %+v", st)
	}
}

func TestAttemptIgnoringContextIsAbandoned(t *testing.T) {
	clk := newFake()
	e := recovery.New(recovery.Settings{Clock: clk, AttemptTimeout: 10 * time.Second})
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "stuck", MaxAttempts: 1, Recoverer: recovery.RecovererFunc(
		func(context.Context, recovery.Attempt) error {
			close(started)
			<-release
			return nil
		})})
	_ = e.SetPolicy(mustPolicy(t, `
recovery "resume" {
  when = "error.close_code == 1"
}
`))
	done := make(chan error, 1)
	go func() {
		_, err := e.Handle(context.Background(), closeFailure(4000))
		done <- err
	}()
	<-started
	if !clk.BlockUntil(1, 5*time.Second) {
		t.Fatal("no timeout timer")
	}
	clk.Advance(10 * time.Second)
	// Then the grace period.
	if !clk.BlockUntil(1, 5*time.Second) {
		t.Fatal("no grace timer")
	}
	clk.Advance(time.Second)
	err := <-done
	if !errors.Is(err, recovery.ErrAttemptTimeout) || !strings.Contains(err.Error(), "abandoned") {
		t.Fatalf("err %v", err)
	}
	if st := e.Stats(); st.Abandoned != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPanicsAreContained(t *testing.T) {
	e := recovery.New(recovery.Settings{Clock: newFake()})
	tr := &tracker{}
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "bad_when", Priority: 1, When: func(recovery.Failure) bool { panic("when") },
		Recoverer: tr.strategy("bad_when", nil)})
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "bad_run", Priority: 2, MaxAttempts: 1,
		Recoverer: recovery.RecovererFunc(func(context.Context, recovery.Attempt) error { panic("run") })})
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "ok", Priority: 3, Recoverer: tr.strategy("ok", nil)})
	_ = e.SetPolicy(mustPolicy(t, `
recovery "resume" {
  when = "error.close_code == 1"
}
`))
	rep, err := e.Handle(context.Background(), closeFailure(4000))
	if err != nil || rep.Strategy != "ok" {
		t.Fatalf("rep %+v err %v", rep, err)
	}
	if rep.ConditionErr == nil || !strings.Contains(rep.ConditionErr.Error(), "bad_when") {
		t.Fatalf("condition error %v", rep.ConditionErr)
	}
	if !errors.Is(rep.Attempts[0].Err, recovery.ErrPanicked) {
		t.Fatalf("bad_run error %v", rep.Attempts[0].Err)
	}
	equal(t, "attempts", tr.got(), []string{"ok#1"})
}

func TestBusyPerShard(t *testing.T) {
	e := recovery.New(recovery.Settings{Clock: newFake()})
	entered := make(chan int, 2)
	release := make(chan struct{})
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "wait", Recoverer: recovery.RecovererFunc(
		func(_ context.Context, a recovery.Attempt) error {
			entered <- a.Failure.Shard
			<-release
			return nil
		})})
	_ = e.SetPolicy(mustPolicy(t, `
recovery "resume" {
  when = "error.close_code == 1"
}
`))
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, shard := range []int{0, 1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := closeFailure(4000)
			f.Shard = shard
			_, err := e.Handle(context.Background(), f)
			errs <- err
		}()
	}
	// Both shards recover at the same time.
	<-entered
	<-entered
	// A second failure of shard 0 while it recovers is refused.
	_, err := e.Handle(context.Background(), closeFailure(4001))
	if !errors.Is(err, recovery.ErrBusy) {
		t.Fatalf("err %v, want ErrBusy", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := e.Stats(); st.Busy != 1 || st.Recovered != 2 {
		t.Fatalf("stats %+v", st)
	}
	// Once done, shard 0 can be handled again.
	go func() { <-entered }()
	if _, err := e.Handle(context.Background(), closeFailure(4000)); err != nil {
		t.Fatal(err)
	}
}

func TestContextEndsHandle(t *testing.T) {
	e := recovery.New(recovery.Settings{Clock: newFake()})
	ctx, cancel := context.WithCancel(context.Background())
	tr := &tracker{}
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "cancel", Priority: 1, MaxAttempts: 1, Recoverer: recovery.RecovererFunc(
		func(ctx context.Context, _ recovery.Attempt) error {
			cancel()
			return errBoom
		})})
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "never", Priority: 2, Recoverer: tr.strategy("never", nil)})
	rep, err := e.Handle(ctx, closeFailure(4000))
	if !errors.Is(err, context.Canceled) || errors.Is(err, recovery.ErrExhausted) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if len(tr.got()) != 0 || len(rep.Attempts) != 1 {
		t.Fatalf("ran after the context ended: %v", tr.got())
	}
	if st := e.Stats(); st.Unrecovered != 0 {
		t.Fatalf("a cancelled recovery counted as unrecovered: %+v", st)
	}
	// The attempt the caller cut short is not the strategy failing: it
	// spends none of the window caps.
	if st := e.Stats(); st.Attempts != 1 || st.Refunded != 1 {
		t.Fatalf("stats %+v, want the cancelled attempt refunded", st)
	}
}

func TestBuiltinsDriveTheConnection(t *testing.T) {
	cases := []struct {
		name    string
		policy  string // "" for the default rules
		failure recovery.Failure
		errs    map[conn.RecoverMode]error
		want    []string // modes asked of the connection
		ok      bool
	}{
		{
			name:    "default rules: resume first",
			failure: closeFailure(4000),
			want:    []string{"resume"},
			ok:      true,
		},
		{
			name:    "default rules: resume fails 3 times, then reconnect",
			failure: closeFailure(4000),
			errs:    map[conn.RecoverMode]error{conn.RecoverResume: errBoom},
			want:    []string{"resume", "resume", "resume", "reconnect"},
			ok:      true,
		},
		{
			name:    "default rules: no resume after 4009",
			failure: closeFailure(4009),
			want:    []string{"reconnect"},
			ok:      true,
		},
		{
			name:    "default rules: all fail (restart_client does not apply to a plain close)",
			failure: closeFailure(4000),
			errs:    map[conn.RecoverMode]error{conn.RecoverResume: errBoom, conn.RecoverReconnect: errBoom, conn.RecoverReidentify: errBoom},
			want:    []string{"resume", "resume", "resume", "reconnect", "reconnect", "reconnect", "reidentify", "reidentify"},
		},
		{
			name:    "default rules: a zombie ends in restart_client",
			failure: recovery.Failure{Error: policy.ErrorInfo{Kind: "zombie", Source: "conn", Message: "no ACK"}},
			errs:    map[conn.RecoverMode]error{conn.RecoverResume: errBoom, conn.RecoverReconnect: errBoom, conn.RecoverReidentify: errBoom},
			want:    []string{"resume", "resume", "resume", "reconnect", "reconnect", "reconnect", "reidentify", "reidentify", "restart_client"},
			ok:      true,
		},
		{
			name: "policy reorders: reidentify before resume",
			policy: `
recovery "reidentify" {
  priority = 1
  max_attempts = 1
}
recovery "resume" {
  priority = 2
}
`,
			failure: closeFailure(4000),
			errs:    map[conn.RecoverMode]error{conn.RecoverReidentify: errBoom},
			want:    []string{"reidentify", "resume"},
			ok:      true,
		},
		{
			name: "policy disables resume by leaving it out",
			policy: `
recovery "reconnect" {}
`,
			failure: closeFailure(4000),
			want:    []string{"reconnect"},
			ok:      true,
		},
		{
			name: "a rule may name a built-in under its own label",
			policy: `
recovery "fast_path" {
  use = "resume"
  max_attempts = 2
}
`,
			failure: closeFailure(4000),
			errs:    map[conn.RecoverMode]error{conn.RecoverResume: errBoom},
			want:    []string{"resume", "resume"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := &fakeConn{errs: tc.errs}
			rec := &recorder{}
			e := recovery.New(recovery.Settings{Clock: newFake(), Connection: fc, Events: rec})
			if tc.policy != "" {
				if err := e.SetPolicy(mustPolicy(t, tc.policy)); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := e.Handle(context.Background(), tc.failure)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			equal(t, "modes", fc.modes(), tc.want)
			for _, c := range fc.causes {
				if !strings.HasPrefix(c, "recovery ") || !strings.Contains(c, tc.failure.String()) {
					t.Fatalf("cause %q does not say why", c)
				}
			}
			if len(rep.Attempts) != len(tc.want) {
				t.Fatalf("report has %d attempts, the connection saw %d", len(rep.Attempts), len(tc.want))
			}
		})
	}
}

func TestRestartClient(t *testing.T) {
	pol := `
recovery "restart_client" {
  priority = 1
  max_attempts = 1
}
recovery "reconnect" {
  priority = 2
}
`
	cases := []struct {
		name  string
		errs  map[conn.RecoverMode]error
		want  []string
		strat string
	}{
		{"restarts", nil, []string{"restart_client"}, "restart_client"},
		{"a failing restart falls through", map[conn.RecoverMode]error{conn.RecoverRestart: errBoom}, []string{"restart_client", "reconnect"}, "reconnect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fc := &fakeConn{errs: tc.errs}
			e := recovery.New(recovery.Settings{Clock: newFake(), Connection: fc})
			if err := e.SetPolicy(mustPolicy(t, pol)); err != nil {
				t.Fatal(err)
			}
			rep, err := e.Handle(context.Background(), closeFailure(4000))
			if err != nil || rep.Strategy != tc.strat {
				t.Fatalf("rep %+v err %v", rep, err)
			}
			equal(t, "modes", fc.modes(), tc.want)
		})
	}
}

func TestFailureConnOverridesSettings(t *testing.T) {
	def, own := &fakeConn{}, &fakeConn{}
	e := recovery.New(recovery.Settings{Clock: newFake(), Connection: def})
	f := closeFailure(4000)
	f.Conn = own
	if _, err := e.Handle(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if len(def.modes()) != 0 || len(own.modes()) != 1 {
		t.Fatalf("default conn %v, failure's conn %v", def.modes(), own.modes())
	}
}

func TestNoConnectionMakesBuiltinsUnavailable(t *testing.T) {
	rec := &recorder{}
	e := recovery.New(recovery.Settings{Clock: newFake(), Events: rec})
	rep, err := e.Handle(context.Background(), closeFailure(4000))
	if !errors.Is(err, recovery.ErrExhausted) || !errors.Is(err, recovery.ErrUnavailable) {
		t.Fatalf("err %v", err)
	}
	if len(rep.Attempts) != 0 || len(rep.Skipped) != 3 {
		t.Fatalf("report %+v", rep)
	}
	equal(t, "events", rec.lines(), []string{"ERROR recovery_failed"})
}
