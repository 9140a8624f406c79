package conn_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
)

// restart_client closes the discordgo Session and IDENTIFYs anew; the
// bot's handlers, attached once, see the new READY and keep getting
// messages.
func TestRecoverRestartClientKeepsHandlers(t *testing.T) {
	srv := startFake(t, fakeOptions())
	h := newHarness(t, srv, nil)
	var readies atomic.Int32
	h.c.Session().AddHandler(func(*discordgo.Session, *discordgo.Ready) { readies.Add(1) })
	h.start()
	defer h.stop()
	before := h.emit("before", 2)
	h.waitMessages(before)

	if err := h.c.Recover(conn.RecoverRestart, "test"); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(recoveryDone("restart_client"), "restart_client completed")
	h.waitMessages(append(before, h.emit("after", 3)...))
	if n := h.identifies(); n != 2 {
		t.Fatalf("identifies = %d, want 2 (a restart starts a new session)", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for readies.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := readies.Load(); n < 2 {
		t.Fatalf("the handler saw %d READY, want the restart's too", n)
	}
	h.assertNoViolations()
}

// op 7 RECONNECT arriving after IDENTIFY and before READY makes plain
// discordgo deadlock inside Open (internal/gaps). lifeline's handshake
// handles it like any other op 7: reconnect, and Start returns at READY.
func TestReconnectDuringHandshakeDoesNotHang(t *testing.T) {
	var n atomic.Int32
	var handlers handlerCount
	up := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		handlers.add()
		defer handlers.done()
		defer ws.Close()
		i := n.Add(1)
		send := func(s string) { _ = ws.WriteMessage(websocket.TextMessage, []byte(s)) }
		send(`{"op":10,"d":{"heartbeat_interval":1000}}`)
		var p struct {
			Op int `json:"op"`
		}
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			_ = json.Unmarshal(data, &p)
			switch {
			case p.Op == 2 && i == 1:
				send(`{"op":7,"d":null}`) // before READY
			case p.Op == 2:
				send(`{"op":0,"t":"READY","s":1,"d":{"v":10,"session_id":"s2","resume_gateway_url":"` +
					"ws" + strings.TrimPrefix(tsURL(r), "http") + `","user":{"id":"1","username":"bot"},"guilds":[]}}`)
				send(`{"op":0,"t":"MESSAGE_CREATE","s":2,"d":{"id":"9","channel_id":"5","content":"after-op7","author":{"id":"2"}}}`)
			case p.Op == 1:
				send(`{"op":11}`)
			}
		}
	}))
	defer func() { ts.Close(); handlers.wait(t) }()

	bus := events.NewBus(events.Options{})
	defer bus.Close()
	c, err := conn.New(conn.Config{
		Token:               "t",
		GatewayURL:          "ws" + strings.TrimPrefix(ts.URL, "http"),
		Events:              bus,
		HandshakeTimeout:    5 * time.Second,
		ReconnectDelay:      10 * time.Millisecond,
		MaxReconnectDelay:   50 * time.Millisecond,
		InvalidSessionDelay: [2]time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
		IdentifyQueue: conn.NewLocalIdentifyQueue(conn.SessionStartLimit{Total: 10, Remaining: 10, ResetAfter: time.Hour, MaxConcurrency: 1},
			conn.IdentifyQueueOptions{Window: 10 * time.Millisecond}),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	c.Session().AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		select {
		case got <- m.Content:
		default:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start after op 7 during the handshake: %v", err)
	}
	select {
	case m := <-got:
		if m != "after-op7" {
			t.Fatalf("message = %q", m)
		}
	case <-ctx.Done():
		t.Fatal("the dispatch after the reconnect never reached the handler")
	}
	if n.Load() < 2 {
		t.Fatalf("connections = %d, want a second after op 7", n.Load())
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func tsURL(r *http.Request) string { return "http://" + r.Host }

// handlerCount tracks a scripted server's handlers (which a WaitGroup
// cannot: a late connection would call Add while the test Waits).
type handlerCount struct{ n atomic.Int32 }

func (h *handlerCount) add()  { h.n.Add(1) }
func (h *handlerCount) done() { h.n.Add(-1) }

// wait gives the handlers (bounded) time to see their connection end.
func (h *handlerCount) wait(t *testing.T) {
	for i := 0; i < 1000 && h.n.Load() > 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if n := h.n.Load(); n > 0 {
		t.Errorf("%d scripted handlers still running", n)
	}
}

// TimeoutScale (the increase_timeouts action) stretches the handshake
// deadline of the next attempt.
func TestTimeoutScaleStretchesTheHandshakeDeadline(t *testing.T) {
	var handlers handlerCount
	up := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		handlers.add()
		defer handlers.done()
		defer ws.Close()
		for { // never a HELLO
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer func() { ts.Close(); handlers.wait(t) }()
	bus := events.NewBus(events.Options{})
	defer bus.Close()
	errs := make(chan string, 16)
	bus.Subscribe(events.ErrorOccurred, func(e events.Event) {
		select {
		case errs <- e.Data.(events.Error).Message:
		default:
		}
	})
	c, err := conn.New(conn.Config{
		Token: "t", GatewayURL: "ws" + strings.TrimPrefix(ts.URL, "http"), Events: bus,
		HandshakeTimeout:  40 * time.Millisecond,
		TimeoutScale:      func(d time.Duration) time.Duration { return 3 * d },
		ReconnectDelay:    time.Hour, // one attempt is enough
		MaxReconnectDelay: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { _ = c.Start(ctx) }()
	select {
	case msg := <-errs:
		if !strings.Contains(msg, "within 120ms") {
			t.Fatalf("handshake error %q, want the stretched deadline of 120ms", msg)
		}
	case <-ctx.Done():
		t.Fatal("no handshake timeout")
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// RESUMED carries a sequence number: a second RESUME asks from after it,
// so the bot sees one Resumed per resume and each recovery completes once.
func TestResumeAfterResumeDoesNotReplayResumed(t *testing.T) {
	srv := startFake(t, fakeOptions())
	h := newHarness(t, srv, nil)
	var resumed atomic.Int32
	h.c.Session().AddHandler(func(*discordgo.Session, *discordgo.Resumed) { resumed.Add(1) })
	h.start()
	defer h.stop()
	for i := 0; i < 2; i++ {
		if err := srv.DropConnections(); err != nil {
			t.Fatal(err)
		}
		h.waitEvent(recoveryDone("resume"), "resume completed")
	}
	h.waitMessages(h.emit("after", 2))
	// discordgo runs each handler in its own goroutine: the Resumed
	// handler may run after the later messages' handlers. Wait (bounded)
	// for the second, then check no third came.
	for deadline := time.Now().Add(15 * time.Second); resumed.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := resumed.Load(); n != 2 {
		t.Fatalf("the bot saw %d Resumed events for 2 resumes", n)
	}
	h.mu.Lock()
	done := 0
	for _, e := range h.evs {
		if d, ok := e.Data.(events.Recovery); ok && d.Completed && d.Success {
			done++
		}
	}
	h.mu.Unlock()
	if done != 2 {
		t.Fatalf("%d successful RECOVERY_COMPLETED for 2 resumes", done)
	}
	h.assertNoViolations()
}
