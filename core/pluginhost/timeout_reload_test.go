package pluginhost_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

// SetCallTimeout changes the bound of the calls that begin afterwards: a
// hung check ends (timed out) when the new bound passes on the host's
// clock, not the one the host was made with; 0 restores the default.
func TestSetCallTimeoutBoundsTheNextCalls(t *testing.T) {
	leakCheck(t)
	hs := newHarness(t, nil) // CallTimeout 2s
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	hs.rec.waitFor(t, 1, "PLUGIN_STARTED", started("p"))
	for _, tc := range []struct {
		set, want time.Duration
	}{
		{0, 2 * time.Second}, // not set: Options.CallTimeout
		{500 * time.Millisecond, 500 * time.Millisecond},
		{3 * time.Second, 3 * time.Second},
		{-1, pluginhost.DefaultCallTimeout},
	} {
		if tc.set != 0 {
			hs.h.SetCallTimeout(tc.set)
		}
		if got := hs.h.CallTimeout(); got != tc.want {
			t.Fatalf("after SetCallTimeout(%v): CallTimeout() = %v, want %v", tc.set, got, tc.want)
		}
	}

	hs.h.SetCallTimeout(500 * time.Millisecond)
	done := make(chan health.Result, 1)
	waiters := hs.clk.Waiters()
	go func() { done <- probe(hs, "p", map[string]any{"mode": "hang"}) }()
	if !hs.clk.BlockUntil(waiters+1, wait) {
		t.Fatal("the call never armed its deadline")
	}
	hs.clk.Advance(500 * time.Millisecond)
	select {
	case res := <-done:
		if res.Passed || !res.TimedOut || !strings.Contains(res.Message, "timed out after 500ms") {
			t.Fatalf("hung check = %+v", res)
		}
	case <-time.After(wait):
		t.Fatal("the hung call did not end 500ms after it began: the new bound is not in force")
	}
}
