package metrics_test

import (
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// A Recorder is fed by the gateway tap and the REST transport, and built
// into a Snapshot once per tick. A fake clock makes the output exact.
func ExampleRecorder() {
	clk := clock.NewFake(time.Time{})
	rec := metrics.NewRecorder(metrics.Options{Clock: clk, ShardID: 0, ShardCount: 2})

	// The gateway connects and heartbeats.
	rec.Hello(41250 * time.Millisecond)
	rec.IdentifySent()
	rec.SetGatewayState("READY", true)
	rec.OperationSucceeded() // the connection attempt reached READY
	rec.HeartbeatSent()
	clk.Advance(45 * time.Millisecond)
	rec.HeartbeatAcked()
	rec.Dispatch(1)
	rec.Dispatch(2)

	// REST traffic: 8 fast answers, one 503, one 429.
	for range 8 {
		rec.ObserveREST(120*time.Millisecond, 200, false)
	}
	rec.ObserveREST(900*time.Millisecond, 503, false)
	rec.ObserveREST(30*time.Millisecond, 429, false)

	clk.Advance(5 * time.Second)
	s := rec.Build()
	fmt.Println("shard:", s.Shard.ID, "of", s.Shard.Count)
	fmt.Println("gateway:", s.Gateway.State, "seq", s.Gateway.Sequence, "last ACK", s.Gateway.LastAckAge, "ago")
	fmt.Println("heartbeat:", s.Latency.Heartbeat)
	fmt.Printf("errors: %d of %d operations (rate %.2f), %d consecutive\n",
		s.Errors.InWindow, s.Errors.Operations, s.Errors.Rate, s.Errors.Consecutive)
	fmt.Printf("rest: %d requests, %d rate limited, %d server errors\n",
		s.REST.Requests, s.REST.RateLimited, s.REST.ServerErrors)
	fmt.Println("rest p50 within 6.25% of 120ms:", near(s.Latency.RESTP50, 120*time.Millisecond))
	fmt.Println("rest p99 within 6.25% of 900ms:", near(s.Latency.RESTP99, 900*time.Millisecond))

	// A minute later the window has emptied; the totals remain.
	clk.Advance(time.Minute)
	s = rec.Build()
	fmt.Printf("a minute later: %d requests in the window, %d failure(s) in total\n", s.REST.Requests, s.Errors.Total)
	// Output:
	// shard: 0 of 2
	// gateway: READY seq 2 last ACK 5s ago
	// heartbeat: 45ms
	// errors: 1 of 11 operations (rate 0.09), 1 consecutive
	// rest: 10 requests, 1 rate limited, 1 server errors
	// rest p50 within 6.25% of 120ms: true
	// rest p99 within 6.25% of 900ms: true
	// a minute later: 0 requests in the window, 1 failure(s) in total
}

func near(got, want time.Duration) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return float64(d) <= metrics.QuantileRelativeError*float64(want)
}
