package shard_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/shard"
)

// What the orchestrator relies on: the process Recorder pools REST and
// every shard's operations, the REST observer sees each request, a shard
// can be given a breaker made before Start, SetBreakerSettings retunes
// every breaker live, and a single shard waits at no reconnect gate.
func TestProcessRecorderBreakersAndGate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shards int
		gated  bool
	}{
		{"one shard has no gate", 1, false},
		{"three shards share the gate", 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, fakeOptions(tc.shards, tc.shards))
			cfg := config(srv)
			var restSeen atomic.Int64
			cfg.RESTObserver = conn.RESTObserverFunc(func(conn.RESTResult) { restSeen.Add(1) })
			early := breaker.New(breaker.Settings{Name: "gateway", FailureThreshold: 50})
			cfg.NewBreaker = func(id int) *breaker.Breaker {
				if id == 0 {
					return early
				}
				return nil
			}
			var admitted atomic.Int64
			cfg.Gate.OnAdmit = func(int, bool, time.Duration) { admitted.Add(1) }
			m, err := shard.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			start(t, m)
			defer stop(t, m)

			if m.Shard(0).Breaker() != early {
				t.Fatal("shard 0 does not use the breaker made for it")
			}
			if restSeen.Load() < 1 {
				t.Fatal("the REST observer did not see GET /gateway/bot")
			}
			v := waitAllReady(t, m, 0)
			p := v.Process
			// Every shard's READY is a successful operation, as is the
			// /gateway/bot request.
			if p.REST.Requests < 1 || p.Errors.Operations < uint64(tc.shards)+1 {
				t.Fatalf("process Recorder: %+v %+v", p.REST, p.Errors)
			}
			if got := v.Snapshot(); !got.Gateway.Connected || got.Shards.Total != tc.shards || got.Shards.Ready != tc.shards ||
				got.Gateway.Identifies != uint64(tc.shards) || got.Shard.Count != tc.shards {
				t.Fatalf("process snapshot %+v", got)
			}

			m.SetBreakerSettings(breaker.Settings{FailureThreshold: 2, MonitoringPeriod: time.Minute, OpenTimeout: time.Minute})
			for _, s := range m.Shards() {
				b := s.Breaker()
				for i := 0; i < 2; i++ {
					_ = b.Execute(context.Background(), func(context.Context) error { return context.DeadlineExceeded })
				}
				if b.State() != breaker.StateOpen {
					t.Fatalf("shard %d: breaker %s after 2 failures under a threshold of 2", s.ID(), b.State())
				}
				// Let the shard reconnect normally again.
				b.Reset()
			}

			for _, s := range m.Shards() {
				if err := s.Connection().Recover(conn.RecoverResume, "test"); err != nil {
					t.Fatal(err)
				}
			}
			waitAllReady(t, m, uint64(tc.shards))
			if gated := admitted.Load() > 0; gated != tc.gated {
				t.Fatalf("gate admitted %d attempts; want gated %v", admitted.Load(), tc.gated)
			}
		})
	}
}
