package pluginhost_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
)

// TestManyCallsInFlightDoNotHoldUpAnother checks that calls in progress in
// a plugin, more of them than the goroutines the sdk keeps for calls, do
// not make another call wait.
func TestManyCallsInFlightDoNotHoldUpAnother(t *testing.T) {
	hs := newHarness(t, func(o *pluginhost.Options) { o.Breaker.FailureThreshold = 100 })
	if err := hs.h.Reconcile(context.Background(), []pluginhost.Spec{spec("p")}); err != nil {
		t.Fatal(err)
	}
	const n = 16 // the sdk keeps 12 goroutines for streams
	waiters := hs.clk.Waiters()
	results := make(chan health.Result, n)
	for i := range n {
		go func() { results <- probe(hs, "p", map[string]any{"mode": "wait", "label": fmt.Sprint(i)}) }()
	}
	// Every waiting call has reached the plugin once it has set its flag.
	deadline := time.Now().Add(wait)
	for {
		if _, f := hs.svc.get(); len(f) == n {
			break
		}
		if time.Now().After(deadline) {
			_, f := hs.svc.get()
			t.Fatalf("%d of %d calls reached the plugin", len(f), n)
		}
		time.Sleep(time.Millisecond)
	}
	if res := probe(hs, "p", map[string]any{"mode": "ok"}); !res.Passed {
		t.Fatalf("check while %d calls wait = %+v", n, res)
	}
	// The waiting calls end at the host's deadline.
	if !hs.clk.BlockUntil(waiters+n, wait) {
		t.Fatal("the waiting calls' deadlines are not armed")
	}
	hs.clk.Advance(2 * time.Second)
	for range n {
		select {
		case r := <-results:
			if r.Passed || !r.TimedOut {
				t.Fatalf("waiting call = %+v, want timed out", r)
			}
		case <-time.After(wait):
			t.Fatal("a waiting call did not end at its deadline")
		}
	}
}
