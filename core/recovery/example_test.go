package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

// printer prints the events it is given, one line each.
type printer struct{}

func (printer) Publish(e events.Event) {
	switch d := e.Data.(type) {
	case events.Recovery:
		fmt.Println(e.Type, d.Summary())
	case events.Error:
		fmt.Println(e.Type, d.Source, d.Kind)
	}
}

func ExampleEngine_AddRecoveryStrategy() {
	// A connection whose resume fails and whose reconnect works (in a
	// real bot: recovery.NewConnAdapter(connection)).
	c := recovery.ConnectionFunc(func(_ context.Context, mode conn.RecoverMode, _ string) error {
		if mode == conn.RecoverResume {
			return errors.New("session expired")
		}
		return nil
	})
	e := recovery.New(recovery.Settings{Connection: c, Events: printer{}, Clock: clock.NewFake(time.Time{})})

	// A strategy in Go: runs before the built-ins (priority 5 < 10) when
	// the gateway closed with 4000.
	err := e.AddRecoveryStrategy(recovery.Strategy{
		Name:        "flush_caches",
		Priority:    5,
		MaxAttempts: 1,
		When:        func(f recovery.Failure) bool { return f.Error.CloseCode == 4000 },
		Recoverer: recovery.RecovererFunc(func(ctx context.Context, a recovery.Attempt) error {
			return errors.New("cache service unreachable")
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	f := recovery.Failure{Error: policy.ErrorInfo{Source: "conn", Kind: "close", CloseCode: 4000, Message: "Unknown error"}}
	rep, err := e.Handle(context.Background(), f)
	fmt.Println("plan:", rep.Plan)
	fmt.Println("recovered by:", rep.Strategy, err)
	// Output:
	// RECOVERY_ATTEMPTED flush_caches attempt 1 (close 4000: Unknown error)
	// RECOVERY_COMPLETED flush_caches attempt 1 failed: cache service unreachable
	// RECOVERY_ATTEMPTED resume attempt 1 (close 4000: Unknown error)
	// RECOVERY_COMPLETED resume attempt 1 failed: session expired
	// RECOVERY_ATTEMPTED resume attempt 2 (close 4000: Unknown error)
	// RECOVERY_COMPLETED resume attempt 2 failed: session expired
	// RECOVERY_ATTEMPTED resume attempt 3 (close 4000: Unknown error)
	// RECOVERY_COMPLETED resume attempt 3 failed: session expired
	// RECOVERY_ATTEMPTED reconnect attempt 1 (close 4000: Unknown error)
	// RECOVERY_COMPLETED reconnect attempt 1 succeeded in 0s
	// plan: [flush_caches resume reconnect reidentify]
	// recovered by: reconnect <nil>
}

func ExampleEngine_SetPolicy() {
	src := []byte(`
recovery "failover" {
  priority = 1
  when     = "error.kind == 'dial' && errors.consecutive >= 3"
  use      = "pgping.failover"
}
recovery "reconnect" {
  priority = 2
}
plugin "pgping" {
  path = "./bin/pgping"
}
`)
	p, err := policy.LoadSource("policy.hcl", src, policy.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	e := recovery.New(recovery.Settings{Clock: clock.NewFake(time.Time{})})

	// The plugin has not provided its strategy yet: the policy is refused
	// with the rule's location, and the previous policy stays bound.
	err = e.SetPolicy(p)
	fmt.Println(errors.Is(err, recovery.ErrUnknownStrategy))
	fmt.Println(err)

	// Once it has, the policy binds.
	_ = e.Register("pgping.failover", recovery.RecovererFunc(func(context.Context, recovery.Attempt) error { return nil }))
	fmt.Println(e.SetPolicy(p))
	for _, s := range e.Strategies() {
		fmt.Println(s.Priority, s.Name, s.Use, s.Location)
	}
	// Output:
	// true
	// recovery: policy not bound: policy.hcl:5,3-31: recovery "failover": strategy "pgping.failover" is not provided by plugin "pgping" (is the plugin running and does it serve this strategy?) (registered: reconnect, reidentify, restart_client, resume): unknown recovery strategy
	// <nil>
	// 1 failover pgping.failover policy.hcl:2,1-20
	// 2 reconnect reconnect policy.hcl:7,1-21
}

func ExampleClassify() {
	for _, err := range []error{
		conn.NewCloseError(4004, "Authentication failed."),
		conn.NewCloseError(4000, ""),
		fmt.Errorf("session open: %w", conn.ErrWatchdogTimeout),
	} {
		info := recovery.Classify("conn", err)
		fmt.Println(info.Kind, info.CloseCode, info.Fatal)
	}
	// Output:
	// close 4004 true
	// close 4000 false
	// timeout 0 false
}

// Wiring an Engine to a core/conn Connection: the adapter turns the
// connection's fire-and-forget Recover into a blocking one by watching its
// RECOVERY_COMPLETED events, and every ERROR_OCCURRED becomes a Failure.
func ExampleNewConnAdapter() {
	bus := events.NewBus(events.Options{})
	defer bus.Close()
	c, err := conn.New(conn.Config{Token: "token from the environment", Events: bus})
	if err != nil {
		fmt.Println(err)
		return
	}
	adapter := recovery.NewConnAdapter(c)
	bus.Subscribe(events.RecoveryCompleted, adapter.Observe)
	engine := recovery.New(recovery.Settings{Connection: adapter, Events: bus})

	failures := make(chan recovery.Failure, 16)
	bus.Subscribe(events.ErrorOccurred, func(e events.Event) {
		if f, ok := recovery.FailureFromEvent(e); ok {
			select {
			case failures <- f:
			default: // a recovery is surely running already
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			select {
			case f := <-failures:
				_, _ = engine.Handle(ctx, f) // outcome in the events
			case <-ctx.Done():
				return
			}
		}
	}()
	// c.Start(ctx) ... c.Stop(ctx)
}
