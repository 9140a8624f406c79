package recovery_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/recovery"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func TestPlannerHookLetsTheEngineDecide(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200, Guilds: 2, SessionExpiry: 30 * time.Second, HeartbeatTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	bus := events.NewBus(events.Options{QueueSize: 4096})
	rec := &recorder{}
	bus.SubscribeAll(rec.Publish)
	engine := recovery.New(recovery.Settings{Events: bus, AttemptTimeout: 10 * time.Second})
	if err := engine.SetPolicy(mustPolicy(t, `
recovery "resume" {
  priority = 20
  when     = "!error.fatal && error.close_code not in [1000, 1001, 4007, 4009]"
}
`)); err != nil {
		t.Fatal(err)
	}
	_ = engine.AddRecoveryStrategy(recovery.Strategy{Name: "flush_caches", Priority: 10, MaxAttempts: 1,
		Recoverer: recovery.RecovererFunc(func(context.Context, recovery.Attempt) error { return errors.New("unreachable") })})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c := startPlannedConn(ctx, t, srv, bus, engine, nil)
	if err := srv.CloseConnections(4000); err != nil {
		t.Fatal(err)
	}
	stopAfterRecovery(ctx, t, c, bus, engine)
	lines := rec.lines()
	t.Logf("events: %s", strings.Join(lines, ", "))
	equal(t, "events", lines, []string{"ERROR close", "ATTEMPTED flush_caches#1", "COMPLETED flush_caches#1 fail", "ATTEMPTED resume#1", "COMPLETED resume#1 ok"})
	n := 0
	for _, s := range srv.Ledger().Sessions() {
		n += len(s.Resumes)
	}
	if n != 1 || len(srv.Ledger().Identifies()) != 1 {
		t.Fatalf("%d RESUMEs, %d IDENTIFYs; want 1 and 1", n, len(srv.Ledger().Identifies()))
	}
}

func TestPlannerHookFallsThroughOnRealFailure(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200, Guilds: 2, SessionExpiry: 30 * time.Second, HeartbeatTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	bus := events.NewBus(events.Options{QueueSize: 4096})
	rec := &recorder{}
	bus.SubscribeAll(rec.Publish)
	engine := recovery.New(recovery.Settings{Events: bus, AttemptTimeout: 10 * time.Second})
	if err := engine.SetPolicy(mustPolicy(t, `
recovery "resume" {
  priority = 10
  max_attempts = 2
}
recovery "reconnect" {
  priority = 20
}
`)); err != nil {
		t.Fatal(err)
	}
	_ = engine.AddRecoveryStrategy(recovery.Strategy{Name: "lift_outage", Priority: 15, MaxAttempts: 1,
		Recoverer: recovery.RecovererFunc(func(context.Context, recovery.Attempt) error {
			srv.ClearFaults()
			return errors.New("not a connection recovery")
		})})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c := startPlannedConn(ctx, t, srv, bus, engine, nil)
	if err := srv.Outage(discordtest.OutageRefuse, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	stopAfterRecovery(ctx, t, c, bus, engine)
	lines := rec.lines()
	t.Logf("events: %s", strings.Join(lines, ", "))
	// Each failed try is an error of its own (ERROR dial_failed), published
	// by conn's loop before it answers the try.
	equal(t, "events", lines, []string{"ERROR connection_lost",
		"ATTEMPTED resume#1", "ERROR dial_failed", "COMPLETED resume#1 fail",
		"ATTEMPTED resume#2", "ERROR dial_failed", "COMPLETED resume#2 fail",
		"ATTEMPTED lift_outage#1", "COMPLETED lift_outage#1 fail",
		"ATTEMPTED reconnect#1", "COMPLETED reconnect#1 ok"})
}

// When the policy's strategies run out during an outage, the failure goes
// back to the connection loop, which keeps trying with its backoff and
// recovers once Discord is back: running out of strategies never ends the
// connection.
func TestPlannerExhaustedHandsBackToTheLoop(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200, Guilds: 2, SessionExpiry: 30 * time.Second, HeartbeatTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	bus := events.NewBus(events.Options{QueueSize: 4096})
	defer bus.Close()
	engine := recovery.New(recovery.Settings{Events: bus, AttemptTimeout: 10 * time.Second})
	if err := engine.SetPolicy(mustPolicy(t, `
recovery "resume" {
  priority     = 10
  max_attempts = 1
}
`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := startPlannedConn(ctx, t, srv, bus, engine, func(c *conn.Config) { c.MaxReconnectDelay = 100 * time.Millisecond })
	defer func() { _ = c.Stop(ctx) }()
	if err := srv.Outage(discordtest.OutageRefuse, 800*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	// The engine's single resume fails while the outage lasts.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && engine.Stats().Unrecovered == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if engine.Stats().Unrecovered == 0 {
		t.Fatalf("the engine never ran out of strategies: %+v", engine.Stats())
	}
	for time.Now().Before(deadline) && c.State() != conn.Ready {
		if c.State().Terminal() {
			t.Fatalf("connection ended when the strategies ran out: %v", c.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c.State() != conn.Ready {
		t.Fatalf("state %s after the outage, want READY", c.State())
	}
}

// An attempt's deadline (AttemptTimeout) covers the attempt, not the wait
// for its turn: the connection loop waits out its backoff before it
// starts an attempt the engine asked for, and a backoff longer than
// AttemptTimeout must not turn every attempt into "timed out" before it
// has begun.
func TestPlannerAttemptTimeoutLeavesOutTheBackoff(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200, Guilds: 2, SessionExpiry: 60 * time.Second, HeartbeatTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	bus := events.NewBus(events.Options{QueueSize: 4096})
	rec := &recorder{}
	bus.SubscribeAll(rec.Publish)
	// The second attempt waits a backoff of about 2 s; the deadline of an
	// attempt is 1 s.
	engine := recovery.New(recovery.Settings{Events: bus, AttemptTimeout: time.Second})
	if err := engine.SetPolicy(mustPolicy(t, `
recovery "resume" {
  priority     = 10
  max_attempts = 2
}
`)); err != nil {
		t.Fatal(err)
	}
	cleared := make(chan struct{})
	var once sync.Once
	bus.Subscribe(events.RecoveryCompleted, func(e events.Event) {
		// The outage ends once the first attempt has failed.
		once.Do(func() { srv.ClearFaults(); close(cleared) })
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := startPlannedConn(ctx, t, srv, bus, engine, func(c *conn.Config) {
		c.ReconnectDelay, c.MaxReconnectDelay = 2*time.Second, 2*time.Second
		c.Rand = func() float64 { return 0.999 }
	})
	if err := srv.Outage(discordtest.OutageRefuse, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && engine.Stats().Recovered == 0 && engine.Stats().Unrecovered == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	bus.Close()
	<-cleared
	lines := rec.lines()
	t.Logf("events: %s", strings.Join(lines, ", "))
	equal(t, "events", lines, []string{"ERROR connection_lost",
		"ATTEMPTED resume#1", "ERROR dial_failed", "COMPLETED resume#1 fail",
		"ATTEMPTED resume#2", "COMPLETED resume#2 ok"})
	for _, e := range rec.events() {
		if d, ok := e.Data.(events.Recovery); ok && d.Completed && strings.Contains(d.Error, "timed out") {
			t.Errorf("an attempt timed out: %s", d.Error)
		}
	}
}

// Op 9 through the real connection and the default rules: with d=true
// the session may be resumed and the Engine's first strategy is resume
// (a RESUME, no new IDENTIFY); with d=false it is gone and resume does not
// apply: reconnect IDENTIFYs anew. The ERROR_OCCURRED event carries d.
func TestPlannerResumesAnInvalidSessionDiscordSaysIsResumable(t *testing.T) {
	cases := []struct {
		name       string
		resumable  bool
		strategy   string // the strategy that recovered
		resumes    int    // RESUMEs the fake accepted
		identifies int    // IDENTIFYs, the first one included
	}{
		{name: "op 9 d=true resumes", resumable: true, strategy: "resume", resumes: 1, identifies: 1},
		{name: "op 9 d=false starts a new session", resumable: false, strategy: "reconnect", resumes: 0, identifies: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := discordtest.NewServer(discordtest.Options{Scale: 200, Guilds: 2, SessionExpiry: 30 * time.Second, HeartbeatTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			bus := events.NewBus(events.Options{QueueSize: 4096})
			rec := &recorder{}
			bus.SubscribeAll(rec.Publish)
			engine := recovery.New(recovery.Settings{Events: bus, AttemptTimeout: 10 * time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			c := startPlannedConn(ctx, t, srv, bus, engine, func(c *conn.Config) {
				c.InvalidSessionDelay = [2]time.Duration{10 * time.Millisecond, 20 * time.Millisecond}
			})
			if err := srv.SendInvalidSession(tc.resumable); err != nil {
				t.Fatal(err)
			}
			stopAfterRecovery(ctx, t, c, bus, engine)

			var failure *events.Error
			var recovered string
			for _, ev := range rec.events() {
				switch d := ev.Data.(type) {
				case events.Error:
					if failure == nil {
						failure = &d
					}
				case events.Recovery:
					if d.Completed && d.Success && recovered == "" {
						recovered = d.Strategy
					}
				}
			}
			if failure == nil || failure.Kind != "invalid_session" || failure.Resumable != tc.resumable {
				t.Fatalf("failure event %+v, want invalid_session with resumable=%v", failure, tc.resumable)
			}
			if recovered != tc.strategy {
				t.Fatalf("recovered by %q, want %q (events %v)", recovered, tc.strategy, rec.lines())
			}
			resumes := 0
			for _, s := range srv.Ledger().Sessions() {
				resumes += len(s.Resumes)
			}
			if ids := len(srv.Ledger().Identifies()); resumes != tc.resumes || ids != tc.identifies {
				t.Fatalf("%d RESUMEs and %d IDENTIFYs, want %d and %d", resumes, ids, tc.resumes, tc.identifies)
			}
		})
	}
}

// startPlannedConn starts a connection to srv whose failures engine
// plans, with the short timings these tests share (handshake 2s,
// reconnect 20ms to 300ms, a generous identify budget at the fake's
// window); tune, when set, adjusts the Config before it is used.
func startPlannedConn(ctx context.Context, t *testing.T, srv *discordtest.Server, bus *events.Bus, engine *recovery.Engine, tune func(*conn.Config)) *conn.Connection {
	t.Helper()
	cfg := conn.Config{
		Token: srv.Token(), GatewayURL: srv.GatewayURL(), RESTTransport: srv.Transport(), GatewayDialer: srv.Dialer(),
		Events: bus, HandshakeTimeout: 2 * time.Second, ReconnectDelay: 20 * time.Millisecond, MaxReconnectDelay: 300 * time.Millisecond,
		CallTimeout: 5 * time.Second, Planner: engine.ConnPlanner(0),
		IdentifyQueue: conn.NewLocalIdentifyQueue(conn.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: time.Hour, MaxConcurrency: 1},
			conn.IdentifyQueueOptions{Window: srv.IdentifyWindow()}),
	}
	if tune != nil {
		tune(&cfg)
	}
	c, err := conn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// stopAfterRecovery waits (15s at most) for engine to recover a failure,
// then stops c and closes bus so that every event is delivered; the
// caller checks what happened.
func stopAfterRecovery(ctx context.Context, t *testing.T, c *conn.Connection, bus *events.Bus, engine *recovery.Engine) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && engine.Stats().Recovered == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	bus.Close()
}
