package metrics_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// stepClock moves forward by step every time it is read, so a benchmark
// pays for the window moving on as often as it can (step = one bucket).
type stepClock struct {
	clock.Real
	base time.Time
	step time.Duration
	n    atomic.Int64
}

func (c *stepClock) Now() time.Time { return c.base.Add(time.Duration(c.n.Add(1)) * c.step) }

func (c *stepClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// BenchmarkObserve measures each observation method on the wall clock.
func BenchmarkObserve(b *testing.B) {
	for _, o := range observations() {
		b.Run(o.name, func(b *testing.B) {
			r := metrics.NewRecorder(metrics.Options{})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				o.do(r, i)
				i++
			}
		})
	}
}

// BenchmarkObserveRESTScaling shows ObserveREST's cost does not depend on
// the window's size, nor on the window moving on at every call.
func BenchmarkObserveRESTScaling(b *testing.B) {
	for _, buckets := range []int{1, 12, 3600} {
		b.Run(fmt.Sprintf("buckets=%d/steady", buckets), func(b *testing.B) {
			r := metrics.NewRecorder(metrics.Options{Window: time.Hour, Buckets: buckets})
			b.ReportAllocs()
			for b.Loop() {
				r.ObserveREST(120*time.Millisecond, 200, false)
			}
		})
		b.Run(fmt.Sprintf("buckets=%d/advancing", buckets), func(b *testing.B) {
			r0 := metrics.NewRecorder(metrics.Options{Window: time.Hour, Buckets: buckets})
			clk := &stepClock{base: time.Now(), step: r0.Resolution()}
			r := metrics.NewRecorder(metrics.Options{Clock: clk, Window: time.Hour, Buckets: buckets})
			b.ReportAllocs()
			for b.Loop() {
				r.ObserveREST(120*time.Millisecond, 200, false)
			}
		})
	}
}

// BenchmarkObserveParallel runs observations from GOMAXPROCS goroutines
// against one Recorder.
func BenchmarkObserveParallel(b *testing.B) {
	cases := []struct {
		name string
		do   func(r *metrics.Recorder, i int)
	}{
		{"ObserveREST", func(r *metrics.Recorder, i int) { r.ObserveREST(time.Duration(i%500)*time.Millisecond, 200, false) }},
		{"OperationFailed", func(r *metrics.Recorder, i int) { r.OperationFailed() }},
		{"Dispatch", func(r *metrics.Recorder, i int) { r.Dispatch(int64(i)) }},
		{"mixed", func(r *metrics.Recorder, i int) {
			switch i % 4 {
			case 0:
				r.ObserveREST(80*time.Millisecond, 200, false)
			case 1:
				r.Dispatch(int64(i))
			case 2:
				r.HeartbeatSent()
			default:
				r.HeartbeatAcked()
			}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := metrics.NewRecorder(metrics.Options{})
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					c.do(r, i)
					i++
				}
			})
		})
	}
}

// BenchmarkBuild measures building a Snapshot from an empty window, a full
// one, and a full one with many buckets.
func BenchmarkBuild(b *testing.B) {
	fill := func(r *metrics.Recorder, clk *clock.Fake, buckets int) {
		for range buckets {
			for i := range 200 {
				r.ObserveREST(time.Duration(i+1)*7*time.Millisecond, []int{200, 429, 503}[i%3], false)
				r.OperationFailed()
			}
			r.HeartbeatSent()
			r.HeartbeatAcked()
			clk.Advance(r.Resolution())
		}
	}
	for _, c := range []struct {
		name    string
		buckets int
		full    bool
	}{
		{"empty", 12, false},
		{"full", 12, true},
		{"full-3600-buckets", 3600, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			clk := clock.NewFake(time.Time{})
			r := metrics.NewRecorder(metrics.Options{Clock: clk, Window: time.Hour, Buckets: c.buckets})
			if c.full {
				fill(r, clk, c.buckets-1)
			}
			b.ReportAllocs()
			var s metrics.Snapshot
			for b.Loop() {
				s = r.Build()
			}
			if c.full && s.REST.Requests == 0 {
				b.Fatal("window empty after filling it")
			}
		})
	}
}
