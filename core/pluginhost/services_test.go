package pluginhost_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

func TestHostServicesFromAPlugin(t *testing.T) {
	hs := newHarness(t, nil)
	hs.svc.snap = metrics.Snapshot{Gateway: metrics.Gateway{Sequence: 1234}}
	s := spec("p")
	s.Strategies, s.Actions = []string{"kick"}, []string{"flag"}
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{s}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The plugin reads the host's snapshot through the callback connection,
	// distinct from the one in its request.
	res := hs.h.Checker("p", pluginhost.CheckUse{Name: "probe", Config: map[string]any{"mode": "snapshot"}}).
		Check(ctx, metrics.Snapshot{Gateway: metrics.Gateway{Sequence: 77}})
	if !res.Passed || res.Value != 1234 || res.Message != "77" {
		t.Fatalf("snapshot check = %+v", res)
	}

	st := hs.h.Strategy("p", "kick")
	if st.Name() != "p.kick" {
		t.Fatal(st.Name())
	}
	f := recovery.Failure{Error: policy.ErrorInfo{Message: "close 4000", CloseCode: 4000, Kind: "close"}}
	if err := st.Available(f); err != nil {
		t.Fatalf("Available = %v", err)
	}
	if err := st.Recover(ctx, recovery.Attempt{Number: 2, Failure: f}); err != nil {
		t.Fatal(err)
	}
	fatal := recovery.Failure{Error: policy.ErrorInfo{Message: "4004", Fatal: true}}
	if err := st.Available(fatal); !errors.Is(err, recovery.ErrUnavailable) || !strings.Contains(err.Error(), "does not apply") {
		t.Fatalf("Available(fatal) = %v", err)
	}

	act := hs.h.Action("p", "flag")
	if act.Name() != "p.flag" {
		t.Fatal(act.Name())
	}
	if err := act.Apply(ctx, policy.Severe); err != nil {
		t.Fatal(err)
	}
	_, feats := hs.svc.get()
	if !reflect.DeepEqual(feats, map[string]bool{"feature-SEVERE": false}) {
		t.Fatalf("features after Apply = %v", feats)
	}
	if err := act.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	recs, feats := hs.svc.get()
	if !feats["feature-SEVERE"] {
		t.Fatalf("features after Rollback = %v", feats)
	}
	if !reflect.DeepEqual(recs, []string{"resume: plugin p: close 4000 (attempt 2)"}) {
		t.Fatalf("recoveries = %q", recs)
	}

	// The host's refusal reaches the strategy, and through it the engine.
	hs.h.Reconcile(ctx, []pluginhost.Spec{withConfig(s, map[string]any{"recovery_mode": "reidentify"})})
	err := st.Recover(ctx, recovery.Attempt{Number: 1, Failure: f})
	if err == nil || !strings.Contains(err.Error(), "identify budget exhausted") {
		t.Fatalf("refused recovery = %v", err)
	}
}

func withConfig(s pluginhost.Spec, cfg map[string]any) pluginhost.Spec {
	s.Config = cfg
	return s
}

func TestCallsToAMissingPluginAreSkippedWithAnEvent(t *testing.T) {
	hs := newHarness(t, nil)
	ctx := context.Background()
	if err := hs.h.Action("gone", "flag").Apply(ctx, policy.Minimal); !errors.Is(err, pluginhost.ErrNotRunning) {
		t.Fatalf("Apply on a missing plugin = %v", err)
	}
	if err := hs.h.Strategy("gone", "kick").Recover(ctx, recovery.Attempt{}); !errors.Is(err, pluginhost.ErrNotRunning) {
		t.Fatalf("Recover on a missing plugin = %v", err)
	}
	if err := hs.h.Strategy("gone", "kick").Available(recovery.Failure{}); !errors.Is(err, recovery.ErrUnavailable) {
		t.Fatalf("Available on a missing plugin = %v", err)
	}
	if res := hs.h.Checker("gone", pluginhost.CheckUse{Name: "x"}).Check(ctx, metrics.Snapshot{}); res.Passed || !strings.Contains(res.Message, "not loaded") {
		t.Fatalf("check of a missing plugin = %+v", res)
	}
	n := hs.rec.count(func(e events.Event) bool {
		d, ok := e.Data.(events.Error)
		return ok && d.Source == "plugin/gone" && d.Kind == "plugin"
	})
	if n != 3 {
		t.Fatalf("%d ERROR_OCCURRED for skipped calls, want 3:\n%s", n, hs.rec.dump())
	}
}

func TestWithoutServicesPluginsGetAnError(t *testing.T) {
	hs := newHarness(t, func(o *pluginhost.Options) { o.Services = nil })
	s := spec("p")
	s.Strategies = []string{"kick"}
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{s}); err != nil {
		t.Fatal(err)
	}
	err := hs.h.Strategy("p", "kick").Run(context.Background(), policy.ErrorInfo{}, nil, 1)
	if err == nil || !strings.Contains(err.Error(), pluginhost.ErrNoServices.Error()) {
		t.Fatalf("Run without services = %v", err)
	}
}
