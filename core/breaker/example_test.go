package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
)

// A breaker guarding calls to a REST API: two failures open it, rejected
// calls fail fast with ErrOpen, and after the open timeout one successful
// probe closes it again. The fake clock stands in for time passing.
func ExampleBreaker_Execute() {
	clk := clock.NewFake(time.Time{})
	b := breaker.New(breaker.Settings{
		Name:             "discord-rest",
		FailureThreshold: 2,
		OpenTimeout:      10 * time.Second,
		Backoff:          breaker.Backoff{Jitter: -1},
		Clock:            clk,
	})
	ctx := context.Background()
	down := func(context.Context) error { return errors.New("503 Service Unavailable") }
	up := func(context.Context) error { return nil }

	for range 3 {
		err := b.Execute(ctx, down)
		fmt.Printf("%v (open: %v), now %v\n", err, errors.Is(err, breaker.ErrOpen), b.State())
	}
	clk.Advance(10 * time.Second)
	fmt.Println("after the open timeout:", b.State())
	fmt.Println("probe:", b.Execute(ctx, up), "now", b.State())

	m := b.Metrics()
	fmt.Printf("calls %d, failures %d, rejections %d, state changes %d\n",
		m.Calls, m.Failures, m.Rejections, m.StateChanges)
	// Output:
	// 503 Service Unavailable (open: false), now CLOSED
	// 503 Service Unavailable (open: false), now OPEN
	// breaker "discord-rest": circuit open (open: true), now OPEN
	// after the open timeout: HALF_OPEN
	// probe: <nil> now CLOSED
	// calls 3, failures 2, rejections 1, state changes 3
}

// Allow suits code that cannot wrap its work in a function, such as an
// http.RoundTripper that has to report the outcome after reading a status.
func ExampleBreaker_Allow() {
	b := breaker.New(breaker.Settings{Name: "gateway-connect", FailureThreshold: 1})

	done, err := b.Allow()
	if err != nil {
		fmt.Println("not now:", err)
		return
	}
	// ... dial, get a close code back ...
	done(errors.New("close 4000: unknown error"))

	_, err = b.Allow()
	fmt.Println(err)
	// Output:
	// breaker "gateway-connect": circuit open
}

// Update applies reloaded thresholds to a live breaker. Here the policy
// tightens the threshold below the failures already counted, so the
// circuit opens at once; the counters are untouched.
func ExampleBreaker_Update() {
	b := breaker.New(breaker.Settings{Name: "db", FailureThreshold: 5, Clock: clock.NewFake(time.Time{})})
	fail := func(context.Context) error { return errors.New("timeout") }
	for range 3 {
		_ = b.Execute(context.Background(), fail)
	}
	fmt.Println(b.State(), b.Metrics().FailuresInWindow)

	b.Update(breaker.Settings{FailureThreshold: 3})
	fmt.Println(b.State(), b.Metrics().Failures)
	// Output:
	// CLOSED 3
	// OPEN 3
}

// printer is an events.Publisher that prints each event.
type printer struct{}

func (printer) Publish(e events.Event) { fmt.Println(e) }

// Every transition is published as a CIRCUIT_BREAKER_TRIGGERED event.
func ExampleSettings_events() {
	clk := clock.NewFake(time.Time{})
	b := breaker.New(breaker.Settings{
		Name:             "voice",
		FailureThreshold: 1,
		OpenTimeout:      time.Minute,
		Backoff:          breaker.Backoff{Jitter: -1},
		Clock:            clk,
		Events:           printer{},
	})
	_ = b.Execute(context.Background(), func(context.Context) error { return errors.New("refused") })
	clk.Advance(time.Minute)
	_ = b.State()
	b.ForceOpen()
	b.Reset()
	// Output:
	// CIRCUIT_BREAKER_TRIGGERED process: breaker "voice" CLOSED -> OPEN (1 failure within 1m0s reached the threshold of 1)
	// CIRCUIT_BREAKER_TRIGGERED process: breaker "voice" OPEN -> HALF_OPEN (open timeout of 1m0s elapsed)
	// CIRCUIT_BREAKER_TRIGGERED process: breaker "voice" HALF_OPEN -> OPEN (forced open)
	// CIRCUIT_BREAKER_TRIGGERED process: breaker "voice" OPEN -> CLOSED (reset)
}
