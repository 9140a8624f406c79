package degrade

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// driver runs one action through a real Engine: on() climbs to the
// action's level, off() steps back down to NONE.
type driver struct {
	t   *testing.T
	eng *Engine
	a   Action
}

func newDriver(t *testing.T, a Action) *driver {
	t.Helper()
	eng, err := New(Settings{Clock: clock.NewFake(time.Time{}), Actions: []Action{a}})
	if err != nil {
		t.Fatal(err)
	}
	return &driver{t: t, eng: eng, a: a}
}

func (d *driver) target(l Level, rec bool) Target {
	return Target{Level: l, Recover: rec, Plan: Plan{{Level: Severe, Actions: []string{d.a.Name()}}}}
}

func (d *driver) on() {
	d.t.Helper()
	res := d.eng.Apply(context.Background(), d.target(Severe, false))
	if res.Err != nil || res.Level != Severe {
		d.t.Fatalf("applying %s: %+v", d.a.Name(), res)
	}
}

func (d *driver) off() {
	d.t.Helper()
	res := d.eng.Apply(context.Background(), d.target(None, true))
	if res.Err != nil || res.Level != None {
		d.t.Fatalf("rolling back %s: %+v", d.a.Name(), res)
	}
}

func TestReduceLoggingLevel(t *testing.T) {
	var buf bytes.Buffer
	root := hclog.New(&hclog.LoggerOptions{Name: "bot", Level: hclog.Debug, Output: &buf})
	sub := root.Named("music") // shares root's level
	d := newDriver(t, ReduceLoggingLevel(root, hclog.Warn))

	sub.Info("before")
	d.on()
	if root.GetLevel() != hclog.Warn {
		t.Fatalf("level while active = %s, want WARN", root.GetLevel())
	}
	sub.Info("suppressed")
	sub.Debug("suppressed too")
	sub.Warn("still shown")
	d.off()
	if root.GetLevel() != hclog.Debug {
		t.Fatalf("level after rollback = %s, want DEBUG", root.GetLevel())
	}
	sub.Info("after")
	out := buf.String()
	for _, s := range []string{"before", "still shown", "after"} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "suppressed") {
		t.Errorf("log has lines written while quiet:\n%s", out)
	}
}

func TestReduceLoggingLevelNeverLowersOrOverrides(t *testing.T) {
	quiet := hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: &bytes.Buffer{}})
	a := ReduceLoggingLevel(quiet, hclog.Warn)
	ctx := context.Background()
	if err := a.Apply(ctx, Minimal); err != nil || quiet.GetLevel() != hclog.Error {
		t.Fatalf("a logger at ERROR must stay there: %v %s", err, quiet.GetLevel())
	}
	_ = a.Rollback(ctx)
	if quiet.GetLevel() != hclog.Error {
		t.Fatalf("rollback changed an untouched level to %s", quiet.GetLevel())
	}

	l := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &bytes.Buffer{}})
	a = ReduceLoggingLevel(l, hclog.NoLevel) // default WARN
	_ = a.Apply(ctx, Minimal)
	_ = a.Apply(ctx, Minimal) // idempotent: the saved level stays INFO
	if l.GetLevel() != hclog.Warn {
		t.Fatalf("level = %s", l.GetLevel())
	}
	l.SetLevel(hclog.Trace) // an operator turns tracing on meanwhile
	_ = a.Rollback(ctx)
	if l.GetLevel() != hclog.Trace {
		t.Fatalf("rollback overrode the operator's level: %s", l.GetLevel())
	}
	if err := ReduceLoggingLevel(nil, hclog.Warn).Apply(ctx, Minimal); !errors.Is(err, ErrNoComponent) {
		t.Fatalf("nil logger: %v", err)
	}
}

func TestDisableAnalytics(t *testing.T) {
	f := NewFeatures()
	f.Register("stats", ClassAnalytics)
	f.Register("music", ClassOptional)
	f.Register("moderation", ClassCritical)
	d := newDriver(t, DisableAnalytics(f))
	d.on()
	want := map[string]bool{"stats": false, "music": true, "moderation": true}
	for n, w := range want {
		if f.Enabled(n) != w {
			t.Errorf("while active: Enabled(%q) = %v, want %v", n, !w, w)
		}
	}
	if f.ClassEnabled(ClassAnalytics) {
		t.Error("lifeline's own stats (ClassAnalytics) still enabled")
	}
	d.off()
	for n := range want {
		if !f.Enabled(n) {
			t.Errorf("after rollback: Enabled(%q) = false", n)
		}
	}
	if !f.ClassEnabled(ClassAnalytics) {
		t.Error("ClassAnalytics still off after rollback")
	}
}

func TestDisableNonCriticalFeatures(t *testing.T) {
	f := NewFeatures()
	f.Register("music", ClassOptional)
	f.Register("games", ClassOptional)
	f.Register("stats", ClassAnalytics)
	f.Register("moderation", ClassCritical)
	d := newDriver(t, DisableNonCriticalFeatures(f))
	d.on()
	want := map[string]bool{"music": false, "games": false, "stats": false, "moderation": true, "never-registered": false}
	for n, w := range want {
		if f.Enabled(n) != w {
			t.Errorf("while active: Enabled(%q) = %v, want %v", n, !w, w)
		}
	}
	list := f.List()
	if len(list) != 4 || list[0].Name != "games" || list[0].Enabled || list[1].Name != "moderation" || !list[1].Enabled {
		t.Errorf("List() = %+v", list)
	}
	d.off()
	for n := range want {
		if !f.Enabled(n) {
			t.Errorf("after rollback: Enabled(%q) = false", n)
		}
	}
}

func TestFeatureSwitchesOverlap(t *testing.T) {
	f := &Features{} // the zero value works
	f.Register("stats", ClassAnalytics)
	f.Register("music", ClassOptional)
	ctx := context.Background()
	analytics, nonCritical := DisableAnalytics(f), DisableNonCriticalFeatures(f)
	_ = analytics.Apply(ctx, Minimal)
	_ = nonCritical.Apply(ctx, Moderate)
	_ = nonCritical.Apply(ctx, Moderate) // idempotent
	_ = nonCritical.Rollback(ctx)
	if f.Enabled("stats") || !f.Enabled("music") {
		t.Fatalf("after rolling back only disable_non_critical_features: stats %v, music %v", f.Enabled("stats"), f.Enabled("music"))
	}
	_ = analytics.Rollback(ctx)
	_ = analytics.Rollback(ctx) // idempotent
	if !f.Enabled("stats") {
		t.Fatal("stats still off")
	}
	f.Disable("x", ClassCritical)
	f.Register("ban", ClassCritical)
	if !f.Enabled("ban") {
		t.Fatal("critical features can never be switched off")
	}
}

func TestIncreaseTimeoutsScalesTheSharedValue(t *testing.T) {
	tm := NewTimeouts()
	d := newDriver(t, IncreaseTimeouts(tm, 3))
	if got := tm.Scale(10 * time.Second); got != 10*time.Second {
		t.Fatalf("before: %s", got)
	}
	d.on()
	if got := tm.Scale(10 * time.Second); got != 30*time.Second || tm.Multiplier() != 3 {
		t.Fatalf("while active: %s (x%v)", got, tm.Multiplier())
	}
	d.off()
	if got := tm.Scale(10 * time.Second); got != 10*time.Second || tm.Multiplier() != 1 {
		t.Fatalf("after rollback: %s", got)
	}
	var nilT *Timeouts
	if nilT.Scale(time.Second) != time.Second {
		t.Fatal("nil Timeouts must scale nothing")
	}
	tm.Raise("a", 2)
	tm.Raise("b", 5)
	tm.Raise("c", 0.5) // below 1 counts as 1
	if tm.Multiplier() != 5 {
		t.Fatalf("largest factor wins: %v", tm.Multiplier())
	}
	tm.Restore("b")
	if tm.Multiplier() != 2 {
		t.Fatalf("after restoring b: %v", tm.Multiplier())
	}
	if got := IncreaseTimeouts(tm, 0).(*timeoutsAction).factor; got != DefaultTimeoutFactor {
		t.Fatalf("default factor = %v", got)
	}
}

// countingService counts starts and stops and knows whether its loop runs.
type countingService struct {
	Service
	starts, stops atomic.Int32
	running       atomic.Bool
	failStop      atomic.Int32
}

func newCountingService() *countingService {
	c := &countingService{}
	c.Service = Background(func(ctx context.Context) {
		c.running.Store(true)
		<-ctx.Done()
		c.running.Store(false)
	})
	return c
}

func (c *countingService) Start(ctx context.Context) error {
	c.starts.Add(1)
	return c.Service.Start(ctx)
}

func (c *countingService) Stop(ctx context.Context) error {
	if c.failStop.Load() > 0 {
		c.failStop.Add(-1)
		return errBoom
	}
	c.stops.Add(1)
	return c.Service.Stop(ctx)
}

func TestShutdownNonEssentialServices(t *testing.T) {
	ctx := context.Background()
	s := NewServices()
	stats, reminders := newCountingService(), newCountingService()
	if err := s.Register(ctx, "stats", stats, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(ctx, "reminders", reminders, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both loops running", func() bool { return stats.running.Load() && reminders.running.Load() })

	d := newDriver(t, ShutdownNonEssentialServices(s))
	d.on()
	// Stop waits for the loop to return: no polling needed.
	if stats.running.Load() || s.Running("stats") {
		t.Fatal("non-essential service still running")
	}
	if !reminders.running.Load() || !s.Running("reminders") {
		t.Fatal("essential service was stopped")
	}
	// A non-essential service registered while shed waits for the rollback.
	late := newCountingService()
	if err := s.Register(ctx, "late", late, false); err != nil {
		t.Fatal(err)
	}
	if late.starts.Load() != 0 {
		t.Fatal("a service registered while shed was started")
	}
	d.off()
	waitFor(t, "stats and late running again", func() bool { return stats.running.Load() && late.running.Load() })
	if stats.starts.Load() != 2 || stats.stops.Load() != 1 || reminders.starts.Load() != 1 || reminders.stops.Load() != 0 {
		t.Fatalf("stats %d/%d, reminders %d/%d (starts/stops)", stats.starts.Load(), stats.stops.Load(), reminders.starts.Load(), reminders.stops.Load())
	}
	list := s.List()
	if len(list) != 3 || !list[0].Running || list[0].Essential || !list[1].Essential || !list[2].Running {
		t.Fatalf("List() = %+v", list)
	}
	if err := s.Register(ctx, "stats", stats, false); !errors.Is(err, ErrDuplicateService) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if stats.running.Load() || reminders.running.Load() || late.running.Load() {
		t.Fatal("Stop left a service running")
	}
}

// TestServiceStopFailureIsRetried: a service that fails to stop fails the
// action; the engine reports it, keeps the level below, and retries.
func TestServiceStopFailureIsRetried(t *testing.T) {
	ctx := context.Background()
	s := &Services{}
	svc := newCountingService()
	svc.failStop.Store(1)
	_ = s.Register(ctx, "stats", svc, false)
	_ = s.Start(ctx)
	clk := clock.NewFake(time.Time{})
	evs := &eventLog{}
	eng, err := New(Settings{Clock: clk, Events: evs, Actions: []Action{ShutdownNonEssentialServices(s)}})
	if err != nil {
		t.Fatal(err)
	}
	tg := Target{Level: Critical, Plan: Plan{{Level: Critical, Actions: []string{ActionShutdownNonEssentialServices}}}}
	res := eng.Apply(ctx, tg)
	if !errors.Is(res.Err, errBoom) || res.Level != None || !s.Running("stats") {
		t.Fatalf("result = %+v, running %v", res, s.Running("stats"))
	}
	if e := errorEvents(evs.take()); len(e) != 1 || !strings.Contains(e[0].Message, "stop service") {
		t.Fatalf("error events = %+v", e)
	}
	clk.Advance(DefaultRetryInterval)
	res = eng.Apply(ctx, tg)
	if res.Err != nil || res.Level != Critical || s.Running("stats") || svc.running.Load() {
		t.Fatalf("retry: %+v", res)
	}
}

func TestBackgroundServiceRestartsAndHonoursStopContext(t *testing.T) {
	release := make(chan struct{})
	var runs atomic.Int32
	var wg sync.WaitGroup
	svc := Background(func(ctx context.Context) {
		runs.Add(1)
		<-ctx.Done()
		<-release // a slow shutdown
	})
	ctx := context.Background()
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	_ = svc.Start(ctx)
	_ = svc.Start(ctx) // already running: no second loop
	waitFor(t, "the loop", func() bool { return runs.Load() == 1 })
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := svc.Stop(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a done context: %v", err)
	}
	close(release)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	wg.Wait()
	_ = svc.Start(ctx)
	waitFor(t, "the second loop", func() bool { return runs.Load() == 2 })
	_ = svc.Stop(ctx)
}
