package health

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// TestReliabilityFollowsTheHistory checks the reliability the monitor keeps
// as evaluations enter and leave the history against a count over History
// itself, run after run, while the history fills, wraps and holds pending
// results.
func TestReliabilityFollowsTheHistory(t *testing.T) {
	tests := []struct {
		name        string
		historySize int
		runs        int
	}{
		{"history never full", 50, 20},
		{"history wraps many times", 7, 60},
		{"history of one", 1, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := 0
			// Three checks whose results follow the run number: over the
			// runs every mix of passing, failing and pending comes up.
			check := func(k int) Checker {
				return CheckFunc(func(context.Context, metrics.Snapshot) Result {
					switch (run*(k+2) + k) % 5 {
					case 0:
						return Result{Pending: true, Message: "not yet"}
					case 1, 2:
						return Result{Passed: true}
					}
					return Result{Message: "down"}
				})
			}
			m := NewMonitor(Options{Clock: clock.NewFake(time.Time{}), Retries: -1, HistorySize: tt.historySize})
			for k := range 3 {
				mustAdd(t, m, fmt.Sprintf("c%d", k), check(k), CheckConfig{})
			}
			for run = range tt.runs {
				if _, err := m.RunOnce(context.Background()); err != nil {
					t.Fatal(err)
				}
				passed, runs := 0, 0
				for _, ev := range m.History() {
					for _, r := range ev.Results {
						if !r.Pending {
							runs++
						}
						if r.Passed && !r.Pending {
							passed++
						}
					}
				}
				if got, want := m.Latest().Reliability, reliabilityOf(passed, runs); got != want {
					t.Fatalf("run %d: reliability %v, want %v (%d of %d results passing in the history)", run, got, want, passed, runs)
				}
			}
		})
	}
}
