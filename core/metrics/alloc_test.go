package metrics_test

import (
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// observations lists every observation method with a call that exercises
// its work, for the allocation test and the benchmarks.
func observations() []struct {
	name string
	do   func(r *metrics.Recorder, i int)
} {
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return []struct {
		name string
		do   func(r *metrics.Recorder, i int)
	}{
		{"ObserveREST/200", func(r *metrics.Recorder, i int) { r.ObserveREST(time.Duration(i%5000)*time.Millisecond, 200, false) }},
		{"ObserveREST/429", func(r *metrics.Recorder, i int) { r.ObserveREST(80*time.Millisecond, 429, false) }},
		{"ObserveREST/503", func(r *metrics.Recorder, i int) { r.ObserveREST(80*time.Millisecond, 503, false) }},
		{"ObserveREST/transport", func(r *metrics.Recorder, i int) { r.ObserveREST(80*time.Millisecond, 0, true) }},
		{"OperationSucceeded", func(r *metrics.Recorder, i int) { r.OperationSucceeded() }},
		{"OperationFailed", func(r *metrics.Recorder, i int) { r.OperationFailed() }},
		{"HeartbeatSent", func(r *metrics.Recorder, i int) { r.HeartbeatSent() }},
		{"HeartbeatAcked", func(r *metrics.Recorder, i int) { r.HeartbeatSent(); r.HeartbeatAcked() }},
		{"Hello", func(r *metrics.Recorder, i int) { r.Hello(41250 * time.Millisecond) }},
		{"Dispatch", func(r *metrics.Recorder, i int) { r.Dispatch(int64(i)) }},
		{"CloseCode", func(r *metrics.Recorder, i int) { r.CloseCode(4000 + i%15) }},
		{"ReconnectStarted", func(r *metrics.Recorder, i int) { r.ReconnectStarted() }},
		{"ResumeSent", func(r *metrics.Recorder, i int) { r.ResumeSent() }},
		{"IdentifySent", func(r *metrics.Recorder, i int) { r.IdentifySent() }},
		{"SetGatewayState", func(r *metrics.Recorder, i int) { r.SetGatewayState("READY", i%2 == 0) }},
		{"SetBreaker", func(r *metrics.Recorder, i int) {
			r.SetBreaker(metrics.BreakerView{State: "CLOSED", Failures: uint64(i), Rejections: 1})
		}},
		{"SetHealth", func(r *metrics.Recorder, i int) {
			r.SetHealth(metrics.HealthView{Score: 97.5, Status: "HEALTHY", Trend: "stable"})
		}},
		{"SetDegradation", func(r *metrics.Recorder, i int) {
			r.SetDegradation(metrics.DegradationView{Level: "NONE", Since: since})
		}},
	}
}

// TestZeroAllocations asserts that no observation method and no Build
// allocates, with the wall clock and with a fake clock that moves a bucket
// forward on every call (so the window's advance is exercised too).
func TestZeroAllocations(t *testing.T) {
	clocks := []struct {
		name string
		mk   func() (clock.Clock, func())
	}{
		{"real", func() (clock.Clock, func()) { return clock.Real{}, func() {} }},
		{"fake moving", func() (clock.Clock, func()) {
			f := clock.NewFake(time.Time{})
			return f, func() { f.Advance(5 * time.Second) }
		}},
	}
	for _, c := range clocks {
		for _, o := range observations() {
			t.Run(c.name+"/"+o.name, func(t *testing.T) {
				clk, tick := c.mk()
				r := metrics.NewRecorder(metrics.Options{Clock: clk})
				i := 0
				allocs := testing.AllocsPerRun(1000, func() {
					o.do(r, i)
					i++
				})
				if allocs != 0 {
					t.Errorf("%s: %v allocations per call, want 0", o.name, allocs)
				}
				tick()
				allocs = testing.AllocsPerRun(200, func() {
					tick()
					o.do(r, i)
					i++
				})
				if allocs != 0 {
					t.Errorf("%s while the window moves: %v allocations per call, want 0", o.name, allocs)
				}
			})
		}
		t.Run(c.name+"/Build", func(t *testing.T) {
			clk, tick := c.mk()
			r := metrics.NewRecorder(metrics.Options{Clock: clk})
			for i := range 1000 {
				r.ObserveREST(time.Duration(i)*time.Millisecond, 200, false)
			}
			var s metrics.Snapshot
			allocs := testing.AllocsPerRun(200, func() {
				tick()
				s = r.Build()
			})
			if allocs != 0 {
				t.Errorf("Build: %v allocations per call, want 0", allocs)
			}
			_ = s
		})
	}
}
