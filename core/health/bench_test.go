package health

import (
	"context"
	"fmt"
	"testing"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// deepCheck passes after a call path that needs about depth × 512 bytes of
// stack, as a call through gRPC does; keep says whether it asks for a kept
// goroutine.
type deepCheck struct {
	depth int
	keep  bool
}

func (d deepCheck) KeepWorker() bool { return d.keep }

func (d deepCheck) Check(context.Context, metrics.Snapshot) Result {
	return Result{Passed: descend(d.depth) >= 0}
}

//go:noinline
func descend(n int) int {
	var pad [64]int64 // 512 bytes of frame
	pad[n%len(pad)] = int64(n)
	if n == 0 {
		return int(pad[0])
	}
	return descend(n-1) + int(pad[n%len(pad)]&1)
}

// BenchmarkRunOnce is one run of ten checks: shallow ones, and ones whose
// call grows the stack to about 32 KB, on a new goroutine per call or on
// kept goroutines (WorkerChecker).
func BenchmarkRunOnce(b *testing.B) {
	cases := []struct {
		name  string
		check Checker
	}{
		{"shallow", pass()},
		{"deep-new-goroutine", deepCheck{depth: 64}},
		{"deep-kept-goroutine", deepCheck{depth: 64, keep: true}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			m := NewMonitor(Options{Clock: clock.Real{}, Retries: -1})
			defer m.Stop()
			for i := range 10 {
				if err := m.Add(fmt.Sprintf("c%d", i), c.check, CheckConfig{}); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if ev, err := m.RunOnce(ctx); err != nil || ev.Score != 100 {
					b.Fatalf("run: %v, score %v", err, ev.Score)
				}
			}
		})
	}
}
