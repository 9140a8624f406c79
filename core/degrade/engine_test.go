package degrade

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/policy"
)

func TestLevelNames(t *testing.T) {
	tests := []struct {
		in   string
		want Level
	}{
		{"none", None}, {"MINIMAL", Minimal}, {"Moderate", Moderate}, {"severe", Severe}, {"CRITICAL", Critical},
	}
	for _, tc := range tests {
		got, err := ParseLevel(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if got.String() != strings.ToUpper(tc.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
	if _, err := ParseLevel("panic"); !errors.Is(err, ErrUnknownLevel) {
		t.Errorf("ParseLevel(panic) error = %v, want ErrUnknownLevel", err)
	}
	if got := Levels(); !slices.IsSorted(got) || len(got) != 5 || got[0] != None || got[4] != Critical {
		t.Errorf("Levels() = %v", got)
	}
}

func TestBuiltinNamesMatchPolicy(t *testing.T) {
	if got := BuiltinActionNames(); !slices.Equal(got, policy.BuiltinActions) {
		t.Fatalf("BuiltinActionNames() = %q, policy.BuiltinActions = %q", got, policy.BuiltinActions)
	}
	k := NewKit(KitSettings{})
	var names []string
	for _, a := range k.Actions() {
		names = append(names, a.Name())
	}
	if !slices.Equal(names, policy.BuiltinActions) {
		t.Fatalf("Kit actions = %q, want %q", names, policy.BuiltinActions)
	}
}

func TestClimbAppliesEveryLevelAtOnce(t *testing.T) {
	r := newRig(t)
	res := r.apply(Severe, false, time.Minute)
	r.wantJournal("apply a1@MINIMAL", "apply a2@MINIMAL", "apply b1@MODERATE", "apply b2@MODERATE", "apply c1@SEVERE")
	r.wantLevel(Severe)
	if res.From != None || res.Level != Severe || res.Target != Severe || res.Err != nil {
		t.Fatalf("result = %+v", res)
	}
	want := []events.Degradation{{Activated: true, From: "NONE", To: "SEVERE",
		Actions: []string{"a1", "a2", "b1", "b2", "c1"}, Reason: "policy wants SEVERE"}}
	if got := degradations(r.evs.take()); !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %+v, want %+v", got, want)
	}

	// Same target: nothing happens, nothing is published.
	r.apply(Severe, false, time.Minute)
	r.wantJournal()
	if evs := r.evs.take(); len(evs) != 0 {
		t.Fatalf("unexpected events %v", evs)
	}

	r.apply(Critical, false, time.Minute)
	r.wantJournal("apply d1@CRITICAL", "apply d2@CRITICAL")
	r.wantLevel(Critical)
	want = []events.Degradation{{Activated: true, From: "SEVERE", To: "CRITICAL",
		Actions: []string{"d1", "d2"}, Reason: "policy wants CRITICAL"}}
	if got := degradations(r.evs.take()); !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %+v, want %+v", got, want)
	}
	if got := r.eng.Active(); !slices.Equal(got, []string{"a1", "a2", "b1", "b2", "c1", "d1", "d2"}) {
		t.Fatalf("Active() = %q", got)
	}
}

// TestSteadyImprovementStepsDownOneLevelAtATime: with the recover
// condition holding from t=0 and the policy at NONE, the engine leaves one
// level per recovery delay, rolling back each level's actions in reverse.
func TestSteadyImprovementStepsDownOneLevelAtATime(t *testing.T) {
	r := newRig(t)
	r.apply(Critical, false, 30*time.Second)
	r.j.take()
	r.evs.take()
	start := r.clk.Now()

	type step struct {
		at       time.Duration
		level    Level
		rollback []string
	}
	want := []step{
		{30 * time.Second, Severe, []string{"rollback d2", "rollback d1"}},
		{60 * time.Second, Moderate, []string{"rollback c1"}},
		{90 * time.Second, Minimal, []string{"rollback b2", "rollback b1"}},
		{120 * time.Second, None, []string{"rollback a2", "rollback a1"}},
	}
	var got []step
	prev := Critical
	for i := 0; i <= 200; i++ { // one tick per second
		r.apply(None, true, 30*time.Second)
		if l := r.eng.Level(); l != prev {
			got = append(got, step{r.clk.Since(start), l, r.j.take()})
			prev = l
		} else if j := r.j.take(); len(j) != 0 {
			t.Fatalf("t=%s: actions ran without a level change: %q", r.clk.Since(start), j)
		}
		r.clk.Advance(time.Second)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("steps:\n got %+v\nwant %+v", got, want)
	}

	evs := degradations(r.evs.take())
	wantEvs := []events.Degradation{
		{From: "CRITICAL", To: "SEVERE", Actions: []string{"d2", "d1"}, Reason: "recover condition held for 30s (policy wants NONE)"},
		{From: "SEVERE", To: "MODERATE", Actions: []string{"c1"}, Reason: "recover condition held for 30s (policy wants NONE)"},
		{From: "MODERATE", To: "MINIMAL", Actions: []string{"b2", "b1"}, Reason: "recover condition held for 30s (policy wants NONE)"},
		{From: "MINIMAL", To: "NONE", Actions: []string{"a2", "a1"}, Reason: "recover condition held for 30s (policy wants NONE)"},
	}
	if !reflect.DeepEqual(evs, wantEvs) {
		t.Fatalf("events:\n got %+v\nwant %+v", evs, wantEvs)
	}
}

func TestHysteresisNeverStepsDownOnAFlappingCondition(t *testing.T) {
	const delay = 30 * time.Second
	tests := []struct {
		name string
		// tick returns the target at second s.
		tick func(s int) (Level, bool)
	}{
		{"recover flips every 10s", func(s int) (Level, bool) { return None, (s/10)%2 == 0 }},
		{"recover flips every 29s", func(s int) (Level, bool) { return None, (s/29)%2 == 0 }},
		{"recover false one tick in 20", func(s int) (Level, bool) { return None, s%20 != 19 }},
		{"policy level flaps back up every 25s", func(s int) (Level, bool) {
			if s%25 == 0 {
				return Critical, false
			}
			return None, true
		}},
		{"recover holds but the policy still wants the level", func(int) (Level, bool) { return Critical, true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.apply(Critical, false, delay)
			r.j.take()
			for s := range 600 {
				l, rec := tc.tick(s)
				r.apply(l, rec, delay)
				if got := r.eng.Level(); got != Critical {
					t.Fatalf("t=%ds: level %s, want CRITICAL", s, got)
				}
				r.clk.Advance(time.Second)
			}
			r.wantJournal()
		})
	}
}

func TestStepDownStopsAtThePolicyLevel(t *testing.T) {
	r := newRig(t)
	r.apply(Critical, false, 10*time.Second)
	r.j.take()
	for range 100 {
		r.apply(Moderate, true, 10*time.Second)
		r.clk.Advance(time.Second)
	}
	r.wantLevel(Moderate)
	r.wantJournal("rollback d2", "rollback d1", "rollback c1")
}

func TestUndeclaredLevels(t *testing.T) {
	r := newRig(t)
	plan := Plan{{Level: Minimal, Actions: []string{"a1"}}, {Level: Severe, Actions: []string{"c1"}}}
	apply := func(l Level, rec bool) {
		r.eng.Apply(context.Background(), Target{Level: l, Plan: plan, Recover: rec, RecoveryDelay: 10 * time.Second})
	}
	// A target the plan does not declare is still reached.
	apply(Critical, false)
	r.wantLevel(Critical)
	r.wantJournal("apply a1@MINIMAL", "apply c1@SEVERE")
	// Going down stops only at declared levels: CRITICAL, SEVERE, MINIMAL, NONE.
	var levels []Level
	for range 100 {
		apply(None, true)
		if l := r.eng.Level(); len(levels) == 0 || levels[len(levels)-1] != l {
			levels = append(levels, l)
		}
		r.clk.Advance(time.Second)
	}
	if want := []Level{Critical, Severe, Minimal, None}; !slices.Equal(levels, want) {
		t.Fatalf("levels = %v, want %v", levels, want)
	}
}

func TestZeroDelayStepsOneLevelPerApply(t *testing.T) {
	r := newRig(t)
	r.apply(Critical, false, 0)
	for _, want := range []Level{Severe, Moderate, Minimal, None, None} {
		r.apply(None, true, 0)
		r.wantLevel(want)
	}
}

func TestSharedActionStaysWhileALowerLevelNamesIt(t *testing.T) {
	r := newRig(t)
	plan := Plan{{Level: Minimal, Actions: []string{"a1"}}, {Level: Moderate, Actions: []string{"a1", "b1"}}}
	apply := func(l Level, rec bool) {
		r.eng.Apply(context.Background(), Target{Level: l, Plan: plan, Recover: rec})
	}
	apply(Moderate, false)
	r.wantJournal("apply a1@MINIMAL", "apply b1@MODERATE")
	r.wantLevel(Moderate)
	apply(None, true)
	r.wantJournal("rollback b1")
	r.wantLevel(Minimal)
	apply(None, true)
	r.wantJournal("rollback a1")
	r.wantLevel(None)
}

func TestReclimbWhileLeaving(t *testing.T) {
	r := newRig(t)
	r.apply(Moderate, false, 0)
	r.j.take()
	r.acts["b2"].set(func(a *testAction) { a.failRollback = 1 })
	r.apply(None, true, 0)
	r.wantJournal("rollback b2 failed", "rollback b1")
	r.wantLevel(Moderate) // b2 still in effect
	// The policy wants MODERATE again: b1 is re-applied, b2 never left.
	r.apply(Moderate, false, 0)
	r.wantJournal("apply b1@MODERATE")
	r.wantLevel(Moderate)
	if d := r.eng.Diagnostics(); len(d.Pending) != 0 {
		t.Fatalf("pending = %+v, want none", d.Pending)
	}
	r.clk.Advance(time.Hour)
	r.apply(Moderate, false, 0)
	r.wantJournal() // no stale rollback retry
}

func TestFailingApplyIsRetriedAndReported(t *testing.T) {
	r := newRig(t)
	r.acts["b1"].set(func(a *testAction) { a.failApply = 2 })
	res := r.apply(Moderate, false, time.Minute)
	r.wantJournal("apply a1@MINIMAL", "apply a2@MINIMAL", "apply b1@MODERATE failed", "apply b2@MODERATE")
	// MODERATE is not reached while b1 is not applied.
	r.wantLevel(Minimal)
	if res.Level != Minimal || res.Target != Moderate || len(res.Failures) != 1 {
		t.Fatalf("result = %+v", res)
	}
	f := res.Failures[0]
	if f.Action != "b1" || f.Op != OpApply || f.Level != Moderate || f.Attempt != 1 || !errors.Is(res.Err, errBoom) {
		t.Fatalf("failure = %+v, err = %v", f, res.Err)
	}
	var ae *ActionError
	if !errors.As(res.Err, &ae) || ae.Action != "b1" {
		t.Fatalf("errors.As(*ActionError) on %v", res.Err)
	}
	evs := r.evs.take()
	errs := errorEvents(evs)
	if len(errs) != 1 || errs[0].Source != "degrade" || errs[0].Kind != "action_apply" || !strings.Contains(errs[0].Message, `"b1"`) {
		t.Fatalf("error events = %+v", errs)
	}
	if d := degradations(evs); len(d) != 1 || d[0].To != "MINIMAL" || !slices.Equal(d[0].Actions, []string{"a1", "a2", "b2"}) {
		t.Fatalf("degradation events = %+v", d)
	}
	diag := r.eng.Diagnostics()
	if len(diag.Pending) != 1 || diag.Pending[0].Name != "b1" || diag.Pending[0].Op != OpApply ||
		diag.Pending[0].Attempts != 1 || diag.Pending[0].LastError != "boom" || !diag.Pending[0].NextAttempt.Equal(r.clk.Now().Add(5*time.Second)) {
		t.Fatalf("pending = %+v", diag.Pending)
	}

	// Not due yet: the next ticks do not call it.
	for range 4 {
		r.clk.Advance(time.Second)
		r.apply(Moderate, false, time.Minute)
	}
	r.wantJournal()
	// Due after RetryInterval: fails again, next wait doubles.
	r.clk.Advance(time.Second)
	res = r.apply(Moderate, false, time.Minute)
	r.wantJournal("apply b1@MODERATE failed")
	if len(res.Failures) != 1 || res.Failures[0].Attempt != 2 {
		t.Fatalf("result = %+v", res)
	}
	r.clk.Advance(9 * time.Second)
	r.apply(Moderate, false, time.Minute)
	r.wantJournal()
	r.clk.Advance(time.Second)
	res = r.apply(Moderate, false, time.Minute)
	r.wantJournal("apply b1@MODERATE")
	r.wantLevel(Moderate)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	evs = r.evs.take()
	if n := len(errorEvents(evs)); n != 1 {
		t.Fatalf("%d error events for the second failure, want 1", n)
	}
	if d := degradations(evs); len(d) != 1 || d[0].From != "MINIMAL" || d[0].To != "MODERATE" || !slices.Equal(d[0].Actions, []string{"b1"}) {
		t.Fatalf("degradation events = %+v", d)
	}
	if d := r.eng.Diagnostics(); len(d.Pending) != 0 {
		t.Fatalf("pending = %+v", d.Pending)
	}
}

func TestFailingRollbackIsRetriedAndHoldsTheLevel(t *testing.T) {
	r := newRig(t)
	r.apply(Moderate, false, 10*time.Second)
	r.j.take()
	r.evs.take()
	r.acts["b2"].set(func(a *testAction) { a.failRollback = 1 })
	r.clk.Advance(time.Second)
	r.apply(None, true, 10*time.Second) // recover starts holding
	r.clk.Advance(10 * time.Second)
	res := r.apply(None, true, 10*time.Second)
	r.wantJournal("rollback b2 failed", "rollback b1")
	// MODERATE is not left while b2 is still in effect.
	r.wantLevel(Moderate)
	if len(res.Failures) != 1 || res.Failures[0].Op != OpRollback || res.Target != Minimal {
		t.Fatalf("result = %+v", res)
	}
	evs := r.evs.take()
	if e := errorEvents(evs); len(e) != 1 || e[0].Kind != "action_rollback" {
		t.Fatalf("error events = %+v", e)
	}
	if d := degradations(evs); len(d) != 1 || d[0].Activated || d[0].From != "MODERATE" || d[0].To != "MODERATE" || !slices.Equal(d[0].Actions, []string{"b1"}) {
		t.Fatalf("degradation events = %+v", d)
	}
	// However long recover holds, no further step while MODERATE is being left.
	for range 4 {
		r.clk.Advance(time.Second)
		r.apply(None, true, 10*time.Second)
	}
	r.wantJournal()
	r.wantLevel(Moderate)
	r.clk.Advance(time.Second) // retry due 5s after the failure
	r.apply(None, true, 10*time.Second)
	r.wantJournal("rollback b2")
	r.wantLevel(Minimal)
	// The next step waits a full delay from the previous step.
	for range 4 {
		r.clk.Advance(time.Second)
		r.apply(None, true, 10*time.Second)
	}
	r.wantLevel(Minimal)
	r.clk.Advance(time.Second)
	r.apply(None, true, 10*time.Second)
	r.wantLevel(None)
	r.wantJournal("rollback a2", "rollback a1")
}

func TestUnknownActionIsRetriedUntilRegistered(t *testing.T) {
	r := newRig(t)
	plan := Plan{{Level: Minimal, Actions: []string{"a1", "plug.late"}}}
	res := r.eng.Apply(context.Background(), Target{Level: Minimal, Plan: plan})
	if !errors.Is(res.Err, ErrUnknownAction) || r.eng.Level() != None {
		t.Fatalf("result = %+v", res)
	}
	late := &testAction{name: "plug.late", j: r.j}
	if err := r.eng.Register(late); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(5 * time.Second)
	res = r.eng.Apply(context.Background(), Target{Level: Minimal, Plan: plan})
	if res.Err != nil || r.eng.Level() != Minimal || !late.isApplied() {
		t.Fatalf("result = %+v", res)
	}
}

func TestActionPanicIsRecoveredAndReported(t *testing.T) {
	r := newRig(t)
	r.acts["a1"].set(func(a *testAction) { a.panicApply = true })
	res := r.apply(Minimal, false, 0)
	if !errors.Is(res.Err, ErrActionPanic) || r.eng.Level() != None {
		t.Fatalf("result = %+v", res)
	}
	r.clk.Advance(5 * time.Second)
	r.apply(Minimal, false, 0)
	r.wantLevel(Minimal)
}

func TestRetryBackoff(t *testing.T) {
	e, err := New(Settings{RetryInterval: time.Second, MaxRetryInterval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		if got := e.backoff(n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestManualActivationHoldsAgainstThePolicy(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.apply(None, false, 0) // the engine learns the ladder from the policy's Target
	res, err := r.eng.Activate(ctx, Severe, nil, "operator: Discord incident")
	if err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	r.wantJournal("apply a1@MINIMAL", "apply a2@MINIMAL", "apply b1@MODERATE", "apply b2@MODERATE", "apply c1@SEVERE")
	r.wantLevel(Severe)
	want := []events.Degradation{{Activated: true, From: "NONE", To: "SEVERE",
		Actions: []string{"a1", "a2", "b1", "b2", "c1"}, Reason: "operator: Discord incident", Manual: true}}
	if got := degradations(r.evs.take()); !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %+v, want %+v", got, want)
	}

	// The policy sees everything fine for ten minutes, then a disaster:
	// the hold ignores both.
	for range 600 {
		if res := r.apply(None, true, 0); !res.Held || res.Level != Severe {
			t.Fatalf("result = %+v", res)
		}
		r.clk.Advance(time.Second)
	}
	r.apply(Critical, false, 0)
	r.wantLevel(Severe)
	r.wantJournal()
	if d := r.eng.Diagnostics(); !d.Manual || d.ManualReason != "operator: Discord incident" || d.PolicyLevel != Critical {
		t.Fatalf("diagnostics = %+v", d)
	}

	// Released: everything rolled back at once, most recent first.
	res, err = r.eng.Deactivate(ctx, "operator: incident over")
	if err != nil {
		t.Fatal(err)
	}
	r.wantJournal("rollback c1", "rollback b2", "rollback b1", "rollback a2", "rollback a1")
	r.wantLevel(None)
	want = []events.Degradation{{From: "SEVERE", To: "NONE", Actions: []string{"c1", "b2", "b1", "a2", "a1"},
		Reason: "operator: incident over", Manual: true}}
	if got := degradations(r.evs.take()); !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %+v, want %+v", got, want)
	}
	// The policy drives again.
	if res := r.apply(Moderate, false, 0); res.Held || res.Level != Moderate {
		t.Fatalf("after release: %+v", res)
	}
}

func TestManualActivationWithActions(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.apply(Critical, false, time.Minute)
	r.j.take()
	r.evs.take()
	// Down to MODERATE with only c1: higher levels and MODERATE's own
	// actions are rolled back (most recent first); c1 stays applied.
	res, err := r.eng.Activate(ctx, Moderate, []string{"c1"}, "keep caching only")
	if err != nil {
		t.Fatal(err)
	}
	r.wantJournal("rollback d2", "rollback d1", "rollback b2", "rollback b1")
	if res.Level != Moderate || !slices.Equal(r.eng.Active(), []string{"a1", "a2", "c1"}) {
		t.Fatalf("result = %+v, active = %q", res, r.eng.Active())
	}
	got := degradations(r.evs.take())
	want := []events.Degradation{
		{From: "CRITICAL", To: "MODERATE", Actions: []string{"d2", "d1", "b2", "b1"}, Reason: "keep caching only", Manual: true},
		{Activated: true, From: "MODERATE", To: "MODERATE", Reason: "keep caching only", Manual: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got %+v\nwant %+v", got, want)
	}
	// An empty list enters a level with no action of its own.
	if _, err := r.eng.Activate(ctx, Critical, []string{}, "just the level"); err != nil {
		t.Fatal(err)
	}
	r.wantLevel(Critical)
	r.wantJournal()
}

func TestManualHoldAtNone(t *testing.T) {
	r := newRig(t)
	r.apply(Moderate, false, 0)
	r.j.take()
	if _, err := r.eng.Activate(context.Background(), None, nil, "degradation misfires"); err != nil {
		t.Fatal(err)
	}
	r.wantLevel(None)
	r.wantJournal("rollback b2", "rollback b1", "rollback a2", "rollback a1")
	r.apply(Critical, false, 0)
	r.wantLevel(None)
	r.wantJournal()
}

func TestActivateRejectsBadInput(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.apply(Minimal, false, 0)
	r.j.take()
	r.evs.take()
	tests := []struct {
		level   Level
		actions []string
		want    error
	}{
		{Level(7), nil, ErrUnknownLevel},
		{None, []string{"a1"}, ErrNoneWithActions},
		{Severe, []string{"c1", "nope"}, ErrUnknownAction},
	}
	for _, tc := range tests {
		if _, err := r.eng.Activate(ctx, tc.level, tc.actions, "x"); !errors.Is(err, tc.want) {
			t.Errorf("Activate(%d, %q) error = %v, want %v", tc.level, tc.actions, err, tc.want)
		}
	}
	r.wantJournal()
	r.wantLevel(Minimal)
	if d := r.eng.Diagnostics(); d.Manual {
		t.Fatal("a rejected activation must not hold")
	}
	if evs := r.evs.take(); len(evs) != 0 {
		t.Fatalf("events = %v", evs)
	}
}

func TestRegisterRejectsDuplicatesAndInvalid(t *testing.T) {
	a := NewAction("x", nil, nil)
	if _, err := New(Settings{Actions: []Action{a, NewAction("x", nil, nil)}}); !errors.Is(err, ErrDuplicateAction) {
		t.Fatalf("New with duplicates: %v", err)
	}
	e, err := New(Settings{Actions: []Action{a}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Register(NewAction("y", nil, nil), NewAction("x", nil, nil)); !errors.Is(err, ErrDuplicateAction) {
		t.Fatalf("Register duplicate: %v", err)
	}
	if err := e.Register(NewAction("", nil, nil)); !errors.Is(err, ErrInvalidAction) {
		t.Fatalf("Register unnamed: %v", err)
	}
	if err := e.Register(nil); !errors.Is(err, ErrInvalidAction) {
		t.Fatalf("Register nil: %v", err)
	}
	if got := e.Diagnostics().Registered; !slices.Equal(got, []string{"x"}) {
		t.Fatalf("registered = %q (a failed Register must add nothing)", got)
	}
}

func TestHistoryIsBoundedWithDurations(t *testing.T) {
	r := newRig(t)
	clkStart := r.clk.Now()
	eng, err := New(Settings{Clock: r.clk, HistorySize: 3, Actions: []Action{r.acts["a1"], r.acts["b1"]}})
	if err != nil {
		t.Fatal(err)
	}
	plan := Plan{{Level: Minimal, Actions: []string{"a1"}}, {Level: Moderate, Actions: []string{"b1"}}}
	apply := func(l Level, rec bool) {
		eng.Apply(context.Background(), Target{Level: l, Plan: plan, Recover: rec, Reason: "r" + l.String()})
	}
	apply(Minimal, false) // t=0   MINIMAL
	r.clk.Advance(10 * time.Second)
	apply(Moderate, false) // t=10  MODERATE
	r.clk.Advance(20 * time.Second)
	apply(None, true) // t=30  MINIMAL
	r.clk.Advance(30 * time.Second)
	apply(None, true) // t=60  NONE
	r.clk.Advance(40 * time.Second)
	apply(Moderate, false) // t=100 MODERATE (ongoing)
	r.clk.Advance(5 * time.Second)

	h := eng.History()
	if len(h) != 3 {
		t.Fatalf("history has %d records, want 3: %+v", len(h), h)
	}
	type rec struct {
		level      Level
		start, dur time.Duration
		ongoing    bool
		actions    []string
	}
	want := []rec{
		{Moderate, 10 * time.Second, 20 * time.Second, false, []string{"a1", "b1"}},
		{Minimal, 30 * time.Second, 30 * time.Second, false, []string{"a1"}},
		{Moderate, 100 * time.Second, 5 * time.Second, true, []string{"a1", "b1"}},
	}
	for i, w := range want {
		g := h[i]
		if g.Level != w.level || g.Start.Sub(clkStart) != w.start || g.Duration != w.dur || g.End.IsZero() != w.ongoing || !slices.Equal(g.Actions, w.actions) {
			t.Errorf("record %d = %+v, want %+v", i, g, w)
		}
	}
	if h[1].Reason != "recover condition held for 0s (policy wants NONE)" || h[2].Reason != "rMODERATE" {
		t.Errorf("reasons = %q, %q", h[1].Reason, h[2].Reason)
	}
}

func TestViewAndDiagnostics(t *testing.T) {
	r := newRig(t)
	v := r.eng.View()
	if v.Level != "NONE" || !v.Since.Equal(r.clk.Now()) {
		t.Fatalf("View() = %+v", v)
	}
	r.clk.Advance(time.Minute)
	r.acts["c1"].set(func(a *testAction) { a.failApply = 1 })
	r.apply(Severe, false, 0)
	v = r.eng.View()
	if v.Level != "MODERATE" || !v.Since.Equal(r.clk.Now()) {
		t.Fatalf("View() = %+v", v)
	}
	d := r.eng.Diagnostics()
	var names []string
	for _, a := range d.Active {
		names = append(names, a.Name+"@"+a.Level.String())
	}
	if !slices.Equal(names, []string{"a1@MINIMAL", "a2@MINIMAL", "b1@MODERATE", "b2@MODERATE"}) {
		t.Fatalf("active = %q", names)
	}
	if d.Level != Moderate || d.Target != Severe || d.PolicyLevel != Severe || len(d.Pending) != 1 || d.Pending[0].Name != "c1" {
		t.Fatalf("diagnostics = %+v", d)
	}
	r.apply(None, true, time.Hour)
	if d := r.eng.Diagnostics(); !d.RecoverSince.Equal(r.clk.Now()) {
		t.Fatalf("RecoverSince = %v", d.RecoverSince)
	}
}

func TestContextDoneStopsEarly(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := r.eng.Apply(ctx, Target{Level: Minimal, Plan: ladder})
	if !errors.Is(res.Err, context.Canceled) || len(res.Failures) != 0 {
		t.Fatalf("result = %+v", res)
	}
	r.wantJournal()
	// Nothing was counted as a failure: the next call applies at once.
	r.apply(Minimal, false, 0)
	r.wantLevel(Minimal)
}

const testPolicy = `
degradation {
  recovery_delay = "20s"
  level "minimal" {
    when    = "errors.rate > 0.1"
    actions = ["reduce_logging_level"]
  }
  level "severe" {
    when    = "errors.rate > 0.5"
    actions = ["enable_aggressive_caching", "enable_read_only_mode"]
  }
  recover { when = "errors.rate < 0.05" }
}
`

func TestTickEvaluatesThePolicy(t *testing.T) {
	r := newRig(t, ActionReduceLoggingLevel, ActionEnableAggressiveCaching, ActionEnableReadOnlyMode)
	p, err := policy.LoadSource("test.hcl", []byte(testPolicy), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := New(Settings{Clock: r.clk, Policy: func() *policy.Policy { return p },
		Actions: []Action{r.acts[ActionReduceLoggingLevel], r.acts[ActionEnableAggressiveCaching], r.acts[ActionEnableReadOnlyMode]}})
	if err != nil {
		t.Fatal(err)
	}
	bad := snapshotWithErrorRate(0.6)
	ev := eng.EvaluateDegradation(&bad)
	all := []string{ActionReduceLoggingLevel, ActionEnableAggressiveCaching, ActionEnableReadOnlyMode}
	if !ev.ShouldDegrade || ev.Level != Severe || !slices.Equal(ev.Actions, all) ||
		ev.Recover || !strings.Contains(ev.Reason, "errors.rate > 0.5") {
		t.Fatalf("EvaluateDegradation = %+v", ev)
	}
	if eng.Level() != None {
		t.Fatal("EvaluateDegradation must not act")
	}
	eng.Tick(context.Background(), &bad)
	if eng.Level() != Severe {
		t.Fatalf("level = %s", eng.Level())
	}
	good := snapshotWithErrorRate(0)
	if ev := eng.EvaluateDegradation(&good); ev.ShouldDegrade || ev.Level != None || !ev.Recover {
		t.Fatalf("EvaluateDegradation = %+v", ev)
	}
	// recovery_delay comes from the policy: 20s per level, SEVERE -> MINIMAL -> NONE.
	var levels []string
	for s := range 60 {
		res := eng.Tick(context.Background(), &good)
		if res.Level != res.From {
			levels = append(levels, res.Level.String()+"@"+(time.Duration(s)*time.Second).String())
		}
		r.clk.Advance(time.Second)
	}
	if want := []string{"MINIMAL@20s", "NONE@40s"}; !slices.Equal(levels, want) {
		t.Fatalf("steps = %q, want %q", levels, want)
	}
	// ApplyDecision with the same policy and TargetOf agree.
	tg := TargetOf(p, p.Evaluate(&bad))
	if tg.Level != Severe || tg.RecoveryDelay != 20*time.Second || len(tg.Plan) != 2 || !slices.Equal(tg.Plan.ActionsUpTo(Severe), all) {
		t.Fatalf("TargetOf = %+v", tg)
	}
	if res := eng.ApplyDecision(context.Background(), p, p.Evaluate(&bad)); res.Level != Severe {
		t.Fatalf("ApplyDecision: %+v", res)
	}
	// Activate without actions uses the policy's ladder.
	if _, err := eng.Deactivate(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Activate(context.Background(), Minimal, nil, "y"); err != nil || !slices.Equal(eng.Active(), all[:1]) {
		t.Fatalf("Activate: %v, active %q", err, eng.Active())
	}
}

// TestConcurrentReaders runs the read-only methods while actions run, for
// the race detector.
func TestConcurrentReaders(t *testing.T) {
	r := newRig(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = r.eng.View()
				_ = r.eng.Diagnostics()
				_ = r.eng.History()
				_ = r.eng.Active()
			}
		}()
	}
	for i := range 200 {
		if i%2 == 0 {
			r.apply(Critical, false, 0)
		} else {
			r.apply(None, true, 0)
		}
		r.clk.Advance(time.Second)
	}
	close(stop)
	wg.Wait()
}

func TestFailuresAndLevelChangesAreLogged(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})
	fails := NewAction("flaky", func(context.Context, Level) error { return errBoom }, nil)
	eng, err := New(Settings{Clock: clock.NewFake(time.Time{}), Logger: log, Actions: []Action{fails, NewAction("ok", nil, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	eng.Apply(context.Background(), Target{Level: Minimal, Plan: Plan{{Level: Minimal, Actions: []string{"ok"}}, {Level: Moderate, Actions: []string{"flaky"}}}, Reason: "why"})
	eng.Apply(context.Background(), Target{Level: Moderate, Plan: Plan{{Level: Minimal, Actions: []string{"ok"}}, {Level: Moderate, Actions: []string{"flaky"}}}, Reason: "why"})
	out := buf.String()
	for _, want := range []string{
		`[WARN]  degradation activated: from=NONE to=MINIMAL actions=["ok"] reason=why`,
		"[WARN]  degradation action failed; will retry: action=flaky op=apply level=MODERATE attempt=1 error=boom",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
