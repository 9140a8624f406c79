package metrics_test

import (
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// A process Recorder given as the Parent of two shard Recorders counts
// every operation of both, with its own REST requests, in the order they
// happened; everything else stays with the shard that saw it.
func TestParentPoolsOperations(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	proc := metrics.NewRecorder(metrics.Options{Clock: fake, Window: 10 * time.Second})
	a := metrics.NewRecorder(metrics.Options{Clock: fake, Window: 10 * time.Second, Parent: proc, ShardID: 0, ShardCount: 2})
	b := metrics.NewRecorder(metrics.Options{Clock: fake, Window: 10 * time.Second, Parent: proc, ShardID: 1, ShardCount: 2})

	steps := []struct {
		name            string
		do              func()
		ops, fails, seq uint64 // the process's figures after the step
	}{
		{"shard 0 heartbeat answered", func() { a.HeartbeatSent(); fake.Advance(40 * time.Millisecond); a.HeartbeatAcked() }, 1, 0, 0},
		{"shard 1 attempt failed", b.OperationFailed, 2, 1, 1},
		{"REST 503", func() { proc.ObserveREST(time.Millisecond, 503, false) }, 3, 2, 2},
		{"REST 429 is no operation", func() { proc.ObserveREST(time.Millisecond, 429, false) }, 3, 2, 2},
		{"shard 1 missed ACK", func() { b.HeartbeatSent(); b.HeartbeatSent() }, 4, 3, 3},
		{"shard 0 READY resets the run", a.OperationSucceeded, 5, 3, 0},
	}
	for _, st := range steps {
		st.do()
		e := proc.Build().Errors
		if e.Operations != st.ops || e.InWindow != st.fails || e.Consecutive != st.seq || e.Total != st.fails {
			t.Fatalf("after %q: process errors = %+v, want %d operations, %d failures, %d consecutive", st.name, e, st.ops, st.fails, st.seq)
		}
	}
	if sa, sb := a.Build(), b.Build(); sa.Errors.Operations != 2 || sb.Errors.InWindow != 2 || sb.Errors.Operations != 2 {
		t.Fatalf("shards' own figures: 0 %+v, 1 %+v", sa.Errors, sb.Errors)
	}
	if p := proc.Build(); p.Latency.Heartbeat != 0 || p.Gateway.Identifies != 0 {
		t.Fatalf("the parent took more than operations: %+v", p)
	}
	if sa := a.Build(); sa.Latency.Heartbeat != 40*time.Millisecond {
		t.Fatalf("shard 0 heartbeat = %v", sa.Latency.Heartbeat)
	}
	fake.Advance(11 * time.Second)
	if e := proc.Build().Errors; e.Operations != 0 || e.Total != 3 {
		t.Fatalf("after the window: %+v, want the window empty and 3 failures in total", e)
	}
}

func TestParentAllocatesNothing(t *testing.T) {
	proc := metrics.NewRecorder(metrics.Options{})
	r := metrics.NewRecorder(metrics.Options{Parent: proc})
	if n := testing.AllocsPerRun(100, func() { r.OperationFailed(); r.HeartbeatSent(); r.HeartbeatAcked() }); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}
