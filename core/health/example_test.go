package health_test

import (
	"context"
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// printer is a Publisher that prints each event as it is published.
type printer struct{}

func (printer) Publish(e events.Event) { fmt.Println("  event:", e) }

// A monitor with the three built-in checks, driven by RunOnce against a
// Snapshot the example changes between runs. A fake clock makes the output
// deterministic.
func ExampleMonitor() {
	clk := clock.NewFake(time.Time{})
	snap := metrics.Snapshot{
		Latency: metrics.Latency{Heartbeat: 80 * time.Millisecond},
		// The first session is up (Connections 1): before it, the gateway
		// check would be pending rather than failing.
		Gateway: metrics.Gateway{State: "READY", Connected: true, Connections: 1, HeartbeatInterval: 41250 * time.Millisecond, LastAckAge: 5 * time.Second},
	}
	m := health.NewMonitor(health.Options{
		Clock:  clk,
		Events: printer{},
		Source: func() metrics.Snapshot { return snap },
		Window: 3,
	})

	latency, _ := health.NewLatencyCheck(health.LatencyConfig{Threshold: 500 * time.Millisecond})
	gateway, _ := health.NewGatewayCheck(health.GatewayConfig{})
	errRate, _ := health.NewErrorRateCheck(health.ErrorRateConfig{Threshold: 0.05})
	_ = m.Add(health.LatencyName, latency, health.CheckConfig{})
	_ = m.Add(health.GatewayName, gateway, health.CheckConfig{Critical: true})
	_ = m.Add(health.ErrorRateName, errRate, health.CheckConfig{})

	run := func(what string) {
		clk.Advance(30 * time.Second)
		fmt.Println(what)
		ev, err := m.RunOnce(context.Background())
		if err != nil {
			fmt.Println("  error:", err)
			return
		}
		fmt.Printf("  %s score=%.1f stability=%.1f reliability=%.1f trend=%s failing=%v\n",
			ev.Status, ev.Score, ev.Stability, ev.Reliability, ev.Trend, ev.Failing)
	}

	run("all good")
	snap.Latency.Heartbeat = 900 * time.Millisecond
	run("slow heartbeats")
	snap.Errors.Rate = 0.2
	run("and errors")
	snap.Gateway.Connected, snap.Gateway.State = false, "RECONNECTING"
	run("gateway lost")
	snap.Gateway.Connected, snap.Gateway.State = true, "READY"
	snap.Latency.Heartbeat, snap.Errors.Rate = 90*time.Millisecond, 0
	run("recovered")

	for _, c := range m.Diagnostics().Checks {
		fmt.Printf("%s: %s\n", c.Name, c.Last.Message)
	}
	fmt.Printf("view: %+v\n", m.View())

	// Output:
	// all good
	//   event: HEALTH_CHANGED shard 0: UNKNOWN -> HEALTHY (score 100)
	//   HEALTHY score=100.0 stability=100.0 reliability=100.0 trend=stable failing=[]
	// slow heartbeats
	//   event: HEALTH_CHANGED shard 0: HEALTHY -> DEGRADED (score 75)
	//   DEGRADED score=75.0 stability=75.0 reliability=83.3 trend=stable failing=[latency]
	// and errors
	//   DEGRADED score=50.0 stability=59.2 reliability=66.7 trend=degrading failing=[error_rate latency]
	// gateway lost
	//   event: HEALTH_CHANGED shard 0: DEGRADED -> CRITICAL (score 0)
	//   CRITICAL score=0.0 stability=37.6 reliability=50.0 trend=degrading failing=[error_rate gateway latency]
	// recovered
	//   event: HEALTH_CHANGED shard 0: CRITICAL -> HEALTHY (score 100)
	//   HEALTHY score=100.0 stability=18.4 reliability=60.0 trend=improving failing=[]
	// error_rate: error rate 0.0% within 5.0%
	// gateway: connected, last heartbeat ACK 5s ago
	// latency: heartbeat latency 90ms within 500ms
	// view: {Score:100 Status:HEALTHY Trend:improving}
}

// A custom check is any function of the Snapshot (or of anything else it
// can reach within its context's deadline).
func ExampleCheckFunc() {
	reconnects := health.CheckFunc(func(_ context.Context, s metrics.Snapshot) health.Result {
		const limit = 5
		return health.Result{
			Passed:    s.Gateway.Reconnects <= limit,
			Value:     float64(s.Gateway.Reconnects),
			Threshold: limit,
			Unit:      "reconnects",
			Message:   fmt.Sprintf("%d reconnects since start", s.Gateway.Reconnects),
		}
	})
	m := health.NewMonitor(health.Options{
		Clock:  clock.NewFake(time.Time{}),
		Source: func() metrics.Snapshot { return metrics.Snapshot{Gateway: metrics.Gateway{Reconnects: 7}} },
	})
	_ = m.Add("reconnects", reconnects, health.CheckConfig{Retries: -1})
	ev, _ := m.RunOnce(context.Background())
	r := ev.Results[0]
	fmt.Println(r.Name, r.Passed, r.Message, ev.Status)
	// Output: reconnects false 7 reconnects since start UNHEALTHY
}

// remoteCheck asks a service over the network whether it is up; each call
// goes through a deep client stack, so it asks the monitor to keep a
// goroutine for its calls between runs.
type remoteCheck struct {
	ask func(ctx context.Context) error // the remote call
}

func (c remoteCheck) KeepWorker() bool { return true }

func (c remoteCheck) Check(ctx context.Context, _ metrics.Snapshot) health.Result {
	if err := c.ask(ctx); err != nil {
		return health.Result{Message: err.Error()}
	}
	return health.Result{Passed: true, Message: "service answered"}
}

// A check that calls out of the process can implement WorkerChecker: its
// calls are then made by one goroutine the monitor keeps for it, rather
// than by a new goroutine per attempt. Stop (or Remove) ends that
// goroutine.
func ExampleWorkerChecker() {
	m := health.NewMonitor(health.Options{Clock: clock.NewFake(time.Time{}), Retries: -1})
	defer m.Stop()
	service := remoteCheck{ask: func(ctx context.Context) error { return ctx.Err() }}
	_ = m.Add("service", service, health.CheckConfig{})
	for range 2 {
		ev, _ := m.RunOnce(context.Background())
		fmt.Println(ev.Results[0].Message, ev.Status)
	}
	// Output:
	// service answered HEALTHY
	// service answered HEALTHY
}
