package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/recovery"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// discordgo's Session.Close sleeps in its own goroutine paths; the
		// relay's pipe goroutines end with it (as in core/conn's tests).
		goleak.IgnoreTopFunction("time.Sleep"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// live is a core/conn Connection against the fake Discord, with a recovery
// Engine driving it through a ConnAdapter: what the orchestrator wires.
type live struct {
	t      *testing.T
	srv    *discordtest.Server
	bus    *events.Bus
	c      *conn.Connection
	engine *recovery.Engine

	mu   sync.Mutex
	msgs []string
	evs  []events.Event
	evCh chan events.Event
}

func newLive(t *testing.T, s recovery.Settings) *live {
	t.Helper()
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 200, Guilds: 2, SessionExpiry: 30 * time.Second,
		HeartbeatTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	l := &live{t: t, srv: srv, bus: events.NewBus(events.Options{QueueSize: 4096}), evCh: make(chan events.Event, 4096)}
	l.bus.SubscribeAll(func(e events.Event) {
		l.mu.Lock()
		l.evs = append(l.evs, e)
		l.mu.Unlock()
		l.evCh <- e
	})
	l.c, err = conn.New(conn.Config{
		Token:               srv.Token(),
		GatewayURL:          srv.GatewayURL(),
		RESTTransport:       srv.Transport(),
		GatewayDialer:       srv.Dialer(),
		Events:              l.bus,
		HandshakeTimeout:    2 * time.Second,
		ReconnectDelay:      20 * time.Millisecond,
		MaxReconnectDelay:   300 * time.Millisecond,
		InvalidSessionDelay: [2]time.Duration{20 * time.Millisecond, 60 * time.Millisecond},
		CallTimeout:         5 * time.Second,
		IdentifyQueue: conn.NewLocalIdentifyQueue(conn.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: time.Hour, MaxConcurrency: 1},
			conn.IdentifyQueueOptions{Window: srv.IdentifyWindow()}),
	})
	if err != nil {
		t.Fatal(err)
	}
	l.c.Session().AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		l.mu.Lock()
		l.msgs = append(l.msgs, m.Content)
		l.mu.Unlock()
	})
	adapter := recovery.NewConnAdapter(l.c)
	l.bus.Subscribe(events.RecoveryCompleted, adapter.Observe)
	s.Connection = adapter
	s.Events = l.bus
	l.engine = recovery.New(s)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := l.c.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := l.c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
		l.bus.Close()
	})
	return l
}

func (l *live) emit(prefix string, n int) []string {
	l.t.Helper()
	ch := l.srv.Guilds()[0].ChannelID
	var out []string
	for i := 0; i < n; i++ {
		content := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := l.srv.EmitMessage(ch, content); err != nil {
			l.t.Fatal(err)
		}
		out = append(out, content)
	}
	return out
}

// waitMessages waits (bounded) until the bot's handler has seen every
// message of want exactly once and nothing else.
func (l *live) waitMessages(want []string) {
	l.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		n := len(l.msgs)
		l.mu.Unlock()
		if n >= len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	count := map[string]int{}
	for _, m := range l.msgs {
		count[m]++
	}
	for _, w := range want {
		if count[w] != 1 {
			l.t.Fatalf("message %q delivered %d times (all: %v)", w, count[w], l.msgs)
		}
	}
	if len(l.msgs) != len(want) {
		l.t.Fatalf("handler saw %d messages, want %d: %v", len(l.msgs), len(want), l.msgs)
	}
}

// waitEvent waits (bounded) for the next event that matches.
func (l *live) waitEvent(what string, match func(events.Event) bool) events.Event {
	l.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e := <-l.evCh:
			if match(e) {
				return e
			}
		case <-deadline:
			l.t.Fatalf("no %s event", what)
		}
	}
}

// fault breaks the connection, waits for the ERROR_OCCURRED core/conn
// publishes and for conn's own loop to recover (it still does, see the
// package report), and returns the failure to hand to the Engine.
func (l *live) fault(name string, inject func() error) recovery.Failure {
	l.t.Helper()
	if err := inject(); err != nil {
		l.t.Fatal(err)
	}
	ev := l.waitEvent(name+" error", func(e events.Event) bool {
		d, ok := e.Data.(events.Error)
		return ok && d.Source == "conn"
	})
	f, ok := recovery.FailureFromEvent(ev)
	if !ok {
		l.t.Fatalf("no failure from %v", ev)
	}
	l.waitEvent(name+" automatic recovery", func(e events.Event) bool {
		d, ok := e.Data.(events.Recovery)
		return ok && d.Completed && d.Success && !strings.Contains(d.Trigger, "[#")
	})
	return f
}

// engineEvents renders the Engine's RECOVERY_* events for failure f (its
// Trigger is f.String(); core/conn's own carry other triggers).
func (l *live) engineEvents(f recovery.Failure) []string {
	// The bus delivers asynchronously: wait for the Engine's last event
	// (the successful completion) to reach the recorder.
	l.waitEvent("engine completion", func(e events.Event) bool {
		d, ok := e.Data.(events.Recovery)
		return ok && d.Completed && d.Success && d.Trigger == f.String()
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		if d, ok := e.Data.(events.Recovery); ok && d.Trigger == f.String() {
			switch {
			case !d.Completed:
				out = append(out, fmt.Sprintf("ATTEMPTED %s#%d", d.Strategy, d.Attempt))
			case d.Success:
				out = append(out, fmt.Sprintf("COMPLETED %s#%d ok", d.Strategy, d.Attempt))
			default:
				out = append(out, fmt.Sprintf("COMPLETED %s#%d fail", d.Strategy, d.Attempt))
			}
		}
	}
	return out
}

func (l *live) resumes() int {
	n := 0
	for _, s := range l.srv.Ledger().Sessions() {
		n += len(s.Resumes)
	}
	return n
}

// A real fault, a strategy list whose first strategy fails, the second
// (the built-in resume, through core/conn) succeeds: the ledger shows the
// RESUME it caused and nothing lost. Then a second fault with the
// per-window cap at 1: the strategy that failed is skipped, and resume,
// whose success spent none of its budget, recovers again.
func TestEngineRecoversAConnectionFromRealFaults(t *testing.T) {
	l := newLive(t, recovery.Settings{AttemptTimeout: 10 * time.Second, MaxStrategyAttemptsPerWindow: 1})
	if err := l.engine.SetPolicy(mustPolicy(t, `
recovery "resume" {
  priority = 20
  when     = "!error.fatal && error.close_code not in [1000, 1001, 4007, 4009]"
}
recovery "reconnect" {
  priority = 30
  when     = "!error.fatal"
}
`)); err != nil {
		t.Fatal(err)
	}
	var flakyRuns int
	if err := l.engine.AddRecoveryStrategy(recovery.Strategy{Name: "flush_caches", Priority: 10, MaxAttempts: 1,
		Recoverer: recovery.RecovererFunc(func(context.Context, recovery.Attempt) error {
			flakyRuns++
			return errors.New("cache service unreachable")
		})}); err != nil {
		t.Fatal(err)
	}

	before := l.emit("before", 10)
	l.waitMessages(before)

	// Fault 1: Discord closes with 4000.
	f := l.fault("close 4000", func() error { return l.srv.CloseConnections(4000) })
	if f.Error.Kind != "close" || f.Error.CloseCode != 4000 {
		t.Fatalf("failure %+v", f)
	}
	during := l.emit("during", 10)
	resumesBefore := l.resumes()
	rep, err := l.engine.Handle(context.Background(), f)
	if err != nil {
		t.Fatalf("Handle: %v (report %+v)", err, rep)
	}
	if rep.Strategy != "resume" || flakyRuns != 1 {
		t.Fatalf("recovered by %q after %d flush_caches runs, want resume after 1", rep.Strategy, flakyRuns)
	}
	equal(t, "engine events", l.engineEvents(f), []string{
		"ATTEMPTED flush_caches#1", "COMPLETED flush_caches#1 fail",
		"ATTEMPTED resume#1", "COMPLETED resume#1 ok",
	})
	if got := l.resumes(); got != resumesBefore+1 {
		t.Fatalf("ledger shows %d RESUMEs after the engine's resume, want %d", got, resumesBefore+1)
	}
	after := l.emit("after", 10)
	l.waitMessages(append(append(before, during...), after...))

	// Fault 2: the TCP connection drops. flush_caches has failed its one
	// attempt of the window and is skipped; resume succeeded, which
	// spends nothing, so it recovers again.
	f2 := l.fault("drop", func() error { return l.srv.DropConnections() })
	resumesBefore = l.resumes()
	rep, err = l.engine.Handle(context.Background(), f2)
	if err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if rep.Strategy != "resume" || flakyRuns != 1 || len(rep.Skipped) != 1 ||
		rep.Skipped[0].Strategy != "flush_caches" || !errors.Is(rep.Skipped[0].Reason, recovery.ErrStrategyCap) {
		t.Fatalf("report %+v, want resume after skipping flush_caches at its cap", rep)
	}
	equal(t, "engine events", l.engineEvents(f2), []string{"ATTEMPTED resume#1", "COMPLETED resume#1 ok"})
	if got := l.resumes(); got != resumesBefore+1 {
		t.Fatalf("ledger shows %d RESUMEs after the second resume, want %d", got, resumesBefore+1)
	}
	last := l.emit("last", 5)
	l.waitMessages(append(append(append(before, during...), after...), last...))

	if n := len(l.srv.Ledger().Identifies()); n != 1 {
		t.Fatalf("%d IDENTIFYs, want 1", n)
	}
	for _, s := range l.srv.Sessions() {
		if lost := l.srv.Ledger().Lost(s.ID); len(lost) > 0 {
			t.Fatalf("session %s lost dispatches %v", s.ID, lost)
		}
	}
	if v := l.srv.Ledger().Violations(); len(v) > 0 {
		t.Fatalf("ledger violations: %+v", v)
	}
}
