package degrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// ioTimeout bounds every wait on another goroutine or the network in
// tests. It is a safety net against hangs, never a timing assertion.
const ioTimeout = 10 * time.Second

var errBoom = errors.New("boom")

// journal records what test actions did, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, fmt.Sprintf(format, args...))
}

// take returns the lines recorded since the last take.
func (j *journal) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.lines
	j.lines = nil
	return out
}

// testAction records its calls and can be told to fail.
type testAction struct {
	name string
	j    *journal

	mu           sync.Mutex
	failApply    int // fail this many applies from now
	failRollback int
	panicApply   bool
	applied      bool
}

func (a *testAction) Name() string { return a.name }

func (a *testAction) Apply(_ context.Context, l Level) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.panicApply {
		a.panicApply = false
		a.j.add("apply %s@%s panicked", a.name, l)
		panic("test panic")
	}
	if a.failApply > 0 {
		a.failApply--
		a.j.add("apply %s@%s failed", a.name, l)
		return errBoom
	}
	a.applied = true
	a.j.add("apply %s@%s", a.name, l)
	return nil
}

func (a *testAction) Rollback(context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failRollback > 0 {
		a.failRollback--
		a.j.add("rollback %s failed", a.name)
		return errBoom
	}
	a.applied = false
	a.j.add("rollback %s", a.name)
	return nil
}

func (a *testAction) set(f func(a *testAction)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

func (a *testAction) isApplied() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied
}

// eventLog is a synchronous Publisher.
type eventLog struct {
	mu  sync.Mutex
	evs []events.Event
}

func (l *eventLog) Publish(e events.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, e)
}

// take returns the events published since the last take.
func (l *eventLog) take() []events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.evs
	l.evs = nil
	return out
}

func degradations(evs []events.Event) []events.Degradation {
	var out []events.Degradation
	for _, e := range evs {
		if d, ok := e.Data.(events.Degradation); ok {
			out = append(out, d)
		}
	}
	return out
}

func errorEvents(evs []events.Event) []events.Error {
	var out []events.Error
	for _, e := range evs {
		if d, ok := e.Data.(events.Error); ok {
			out = append(out, d)
		}
	}
	return out
}

// ladder is the test plan: two actions at MINIMAL and MODERATE, one at
// SEVERE, two at CRITICAL.
var ladder = Plan{
	{Level: Minimal, Actions: []string{"a1", "a2"}},
	{Level: Moderate, Actions: []string{"b1", "b2"}},
	{Level: Severe, Actions: []string{"c1"}},
	{Level: Critical, Actions: []string{"d1", "d2"}},
}

// rig is an Engine with test actions for every name in ladder, on a fake
// clock.
type rig struct {
	t    *testing.T
	eng  *Engine
	clk  *clock.Fake
	j    *journal
	evs  *eventLog
	acts map[string]*testAction
}

func newRig(t *testing.T, extra ...string) *rig {
	t.Helper()
	r := &rig{t: t, clk: clock.NewFake(time.Time{}), j: &journal{}, evs: &eventLog{}, acts: map[string]*testAction{}}
	var actions []Action
	names := slices.Concat([]string{"a1", "a2", "b1", "b2", "c1", "d1", "d2"}, extra)
	for _, n := range names {
		a := &testAction{name: n, j: r.j}
		r.acts[n] = a
		actions = append(actions, a)
	}
	eng, err := New(Settings{Clock: r.clk, Events: r.evs, Actions: actions,
		RetryInterval: 5 * time.Second, MaxRetryInterval: 40 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r.eng = eng
	return r
}

// apply runs one tick with the ladder plan.
func (r *rig) apply(level Level, recover bool, delay time.Duration) Result {
	r.t.Helper()
	return r.eng.Apply(context.Background(), Target{Level: level, Plan: ladder, Recover: recover,
		Reason: "policy wants " + level.String(), RecoveryDelay: delay})
}

// wantJournal checks the journal since the last check.
func (r *rig) wantJournal(want ...string) {
	r.t.Helper()
	got := r.j.take()
	if !slices.Equal(got, want) {
		r.t.Fatalf("journal:\n got %q\nwant %q", got, want)
	}
}

func (r *rig) wantLevel(want Level) {
	r.t.Helper()
	if got := r.eng.Level(); got != want {
		r.t.Fatalf("level = %s, want %s", got, want)
	}
}

// waitFor polls cond until it holds, failing after ioTimeout. It is for
// waiting on other goroutines, never for timing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func snapshotWithErrorRate(rate float64) metrics.Snapshot {
	return metrics.Snapshot{Errors: metrics.Errors{Rate: rate, Operations: 100}}
}
