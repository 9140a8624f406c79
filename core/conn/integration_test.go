package conn_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// fakeOptions scales Discord's timings so a heartbeat is 200 ms, with
// sessions that stay resumable for 30 s so a test's outage does not expire
// them (tests of expiry inject it).
func fakeOptions() discordtest.Options {
	return discordtest.Options{Scale: 200, Guilds: 2, SessionExpiry: 30 * time.Second,
		// Generous: a loaded CI machine may delay a heartbeat; the tests
		// that need the fake's own timeout set it.
		HeartbeatTimeout: 2 * time.Second}
}

func startFake(t *testing.T, o discordtest.Options) *discordtest.Server {
	t.Helper()
	srv, err := discordtest.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// harness is one managed connection against the fake, with the bot's view
// (messages its handler got) and the events it published.
type harness struct {
	t    *testing.T
	srv  *discordtest.Server
	c    *conn.Connection
	bus  *events.Bus
	mu   sync.Mutex
	msgs []string
	evs  []events.Event
	evCh chan events.Event
}

func newHarness(t *testing.T, srv *discordtest.Server, mutate func(*conn.Config)) *harness {
	t.Helper()
	h := &harness{t: t, srv: srv, bus: events.NewBus(events.Options{QueueSize: 4096}), evCh: make(chan events.Event, 4096)}
	h.bus.SubscribeAll(func(e events.Event) {
		h.mu.Lock()
		h.evs = append(h.evs, e)
		h.mu.Unlock()
		h.evCh <- e
	})
	cfg := conn.Config{
		Token:               srv.Token(),
		GatewayURL:          srv.GatewayURL(),
		RESTTransport:       srv.Transport(),
		GatewayDialer:       srv.Dialer(),
		Events:              h.bus,
		HandshakeTimeout:    2 * time.Second,
		ReconnectDelay:      20 * time.Millisecond,
		MaxReconnectDelay:   300 * time.Millisecond,
		InvalidSessionDelay: [2]time.Duration{20 * time.Millisecond, 60 * time.Millisecond},
		CallTimeout:         5 * time.Second,
		IdentifyQueue: conn.NewLocalIdentifyQueue(conn.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: time.Hour, MaxConcurrency: 1},
			conn.IdentifyQueueOptions{Window: srv.IdentifyWindow(), Margin: srv.IdentifyWindow() / 2}),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := conn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	c.Session().AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		h.mu.Lock()
		h.msgs = append(h.msgs, m.Content)
		h.mu.Unlock()
	})
	return h
}

func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.c.Start(ctx); err != nil {
		h.t.Fatalf("Start: %v", err)
	}
}

func (h *harness) stop() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.c.Stop(ctx); err != nil {
		h.t.Errorf("Stop: %v", err)
	}
	h.bus.Close()
}

// emit sends n messages through the fake, named prefix-0..n-1.
func (h *harness) emit(prefix string, n int) []string {
	h.t.Helper()
	ch := h.srv.Guilds()[0].ChannelID
	var want []string
	for i := 0; i < n; i++ {
		content := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := h.srv.EmitMessage(ch, content); err != nil {
			h.t.Fatal(err)
		}
		want = append(want, content)
	}
	return want
}

// waitMessages waits until the handler has seen want, in order, each once.
func (h *harness) waitMessages(want []string) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		n := len(h.msgs)
		h.mu.Unlock()
		if n >= len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// Handlers run in their own goroutines in discordgo, so arrival order at
	// the handler is not delivery order: compare as multisets, and check
	// exactly-once.
	count := map[string]int{}
	for _, m := range h.msgs {
		count[m]++
	}
	for _, w := range want {
		if count[w] != 1 {
			h.t.Fatalf("message %q delivered %d times (all: %v)", w, count[w], h.msgs)
		}
	}
	if len(h.msgs) != len(want) {
		h.t.Fatalf("handler saw %d messages, want %d: %v", len(h.msgs), len(want), h.msgs)
	}
}

// waitState waits for a STATE_CHANGED event to state.
func (h *harness) waitEvent(match func(events.Event) bool, what string) events.Event {
	h.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case e := <-h.evCh:
			if match(e) {
				return e
			}
		case <-deadline:
			h.t.Fatalf("no %s event", what)
		}
	}
}

func recoveryDone(strategy string) func(events.Event) bool {
	return func(e events.Event) bool {
		d, ok := e.Data.(events.Recovery)
		return ok && d.Completed && d.Success && d.Strategy == strategy
	}
}

func (h *harness) assertNoViolations() {
	h.t.Helper()
	if v := h.srv.Ledger().Violations(); len(v) > 0 {
		h.t.Fatalf("ledger violations: %+v", v)
	}
}

func (h *harness) identifies() int { return len(h.srv.Ledger().Identifies()) }

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// discordgo's Session.Close sleeps a second in its own goroutine
		// paths; the relay's pipe goroutines end with it.
		goleak.IgnoreTopFunction("time.Sleep"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func TestStartReceivesReadyAndDispatches(t *testing.T) {
	srv := startFake(t, fakeOptions())
	h := newHarness(t, srv, nil)
	h.start()
	if got := h.c.State(); got != conn.Ready {
		t.Fatalf("state %v after Start", got)
	}
	want := h.emit("m", 20)
	h.waitMessages(want)
	h.stop()
	if got := h.c.State(); got != conn.Stopped {
		t.Fatalf("state %v after Stop", got)
	}
	// Stop closed with a resumable code, never 1000/1001.
	conns := srv.Ledger().Connections()
	if last := conns[len(conns)-1]; last.CloseCode != 4000 {
		t.Fatalf("Stop closed with %d (%s), want 4000 so the session stays resumable", last.CloseCode, last.CloseKind)
	}
	h.assertNoViolations()
}

// Each of these breaks a live connection in a way that keeps the session;
// lifeline must RESUME with nothing lost and no new IDENTIFY.
func TestResumableFaultsResumeWithoutLoss(t *testing.T) {
	cases := []struct {
		name  string
		fault func(srv *discordtest.Server) error
	}{
		{"dropped TCP", func(srv *discordtest.Server) error { return srv.DropConnections() }},
		{"op 7 reconnect", func(srv *discordtest.Server) error { return srv.SendReconnect() }},
		{"close 4000", func(srv *discordtest.Server) error { return srv.CloseConnections(4000) }},
		{"op 9 resumable", func(srv *discordtest.Server) error { return srv.SendInvalidSession(true) }},
		{"zombie (ACKs stall)", func(srv *discordtest.Server) error { return srv.StallACKs(0) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startFake(t, fakeOptions())
			h := newHarness(t, srv, nil)
			h.start()
			defer h.stop()
			before := h.emit("before", 10)
			h.waitMessages(before)
			if err := tc.fault(srv); err != nil {
				t.Fatal(err)
			}
			// Messages emitted while the connection is broken must arrive
			// through the replay.
			during := h.emit("during", 10)
			h.waitEvent(recoveryDone("resume"), "resume completed")
			srv.ClearFaults()
			after := h.emit("after", 10)
			h.waitMessages(append(append(before, during...), after...))
			if n := h.identifies(); n != 1 {
				t.Fatalf("%d IDENTIFYs, want 1 (recovery must RESUME)", n)
			}
			h.assertNoViolations()
		})
	}
}
