package conn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/gateway"
)

const badInputToken = "MTA5OTk5.bad-input.token-never-in-an-error"

// badGateway is a gateway that says odd things: each connection gets HELLO,
// then READY (IDENTIFY) or RESUMED (RESUME), then its script's frames;
// heartbeats are answered throughout. It records every RESUME's seq.
type badGateway struct {
	t       *testing.T
	srv     *httptest.Server
	scripts [][]string // per connection, frames sent after READY/RESUMED
	mu      sync.Mutex
	conns   int
	resumes []int64
	drop    chan struct{} // closed by cut, which cuts the current connection
}

func newBadGateway(t *testing.T, scripts ...[]string) *badGateway {
	g := &badGateway{t: t, scripts: scripts, drop: make(chan struct{})}
	up := websocket.Upgrader{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/gateway") && r.Header.Get("Upgrade") == "" {
			fmt.Fprintf(w, `{"url":%q}`, g.wsURL())
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		g.serve(ws)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// cut drops the current connection (later ones are not affected).
func (g *badGateway) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.drop)
	g.drop = make(chan struct{})
}

func (g *badGateway) wsURL() string { return "ws" + strings.TrimPrefix(g.srv.URL, "http") + "/gateway" }

// RoundTrip sends every REST request to the gateway's server.
func (g *badGateway) RoundTrip(r *http.Request) (*http.Response, error) {
	u, _ := url.Parse(g.srv.URL)
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = u.Scheme, u.Host, u.Host
	return http.DefaultTransport.RoundTrip(r)
}

func (g *badGateway) serve(ws *websocket.Conn) {
	g.mu.Lock()
	n := g.conns
	g.conns++
	drop := g.drop
	g.mu.Unlock()
	var wmu sync.Mutex
	send := func(mt int, s string) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = ws.WriteMessage(mt, []byte(s))
	}
	// Discord's interval: the zombie detector (1.4 intervals without an
	// ACK, ~58s) cannot fire within the test's bounds however slowly a
	// loaded machine gets through the 8 MiB frame. With 5s it fired under
	// full-suite load (7.5s without reading an ACK), and the reconnect's
	// RESUME, which this gateway answers without replaying, lost frames.
	send(websocket.TextMessage, `{"op":10,"d":{"heartbeat_interval":41250}}`)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-drop:
			ws.UnderlyingConn().Close()
		case <-done:
		}
	}()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var p struct {
			Op int             `json:"op"`
			D  json.RawMessage `json:"d"`
		}
		if json.Unmarshal(data, &p) != nil {
			g.t.Errorf("the client sent %q", data)
			return
		}
		switch p.Op {
		case 1:
			send(websocket.TextMessage, `{"op":11}`)
		case 2:
			send(websocket.TextMessage, `{"op":0,"t":"READY","s":1,"d":{"v":10,"session_id":"sess-1","resume_gateway_url":`+
				fmt.Sprintf("%q", g.wsURL())+`,"user":{"id":"1","username":"bot","bot":true},"guilds":[]}}`)
			g.play(n, send)
		case 6:
			var r struct {
				Seq int64 `json:"seq"`
			}
			_ = json.Unmarshal(p.D, &r)
			g.mu.Lock()
			g.resumes = append(g.resumes, r.Seq)
			g.mu.Unlock()
			g.play(n, send)
		}
	}
}

func (g *badGateway) play(n int, send func(int, string)) {
	if n >= len(g.scripts) {
		return
	}
	for _, f := range g.scripts[n] {
		if b, ok := strings.CutPrefix(f, "binary:"); ok {
			send(websocket.BinaryMessage, b)
			continue
		}
		send(websocket.TextMessage, f)
	}
}

// message is a MESSAGE_CREATE dispatch with sequence seq.
func message(seq int, content string) string {
	return fmt.Sprintf(`{"op":0,"t":"MESSAGE_CREATE","s":%d,"d":{"id":"%d","channel_id":"10","content":%q,"timestamp":"2026-11-27T12:00:00Z","author":{"id":"2","username":"user"}}}`,
		seq, 1000+seq, content)
}

// Odd frames from the gateway — not JSON, JSON without an op, an array, a
// binary frame nobody asked for, unknown opcodes, a dispatch out of
// sequence, an 8 MiB dispatch — each is reported with a clear reason and
// none stops the session: every well-formed dispatch reaches the bot's
// handler exactly once, and the RESUME after a dropped connection asks for
// what follows the last one delivered.
func TestOddGatewayFramesLoseNothing(t *testing.T) {
	huge := strings.Repeat("h", 8<<20)
	g := newBadGateway(t,
		[]string{
			message(2, "first"),
			`this is not json`,
			`{"no":"op"}`,
			`[1,2,3]`,
			`{"op":"ten"}`,
			"binary:\x00\x01garbage",
			`{"op":42,"d":{"future":"feature"}}`,
			`{"op":-1}`,
			message(3, "after the garbage"),
			message(4, huge),
			message(6, "six"),
			message(5, "five, after six"), // out of order: taken for a replayed duplicate
			message(7, "seven"),
		},
		[]string{`{"op":0,"t":"RESUMED","s":8,"d":null}`, message(9, "after the resume")},
	)
	var mu sync.Mutex
	var malformed []string
	var states []string // every state change, to explain a reconnect nobody asked for
	got := map[string]int{}
	bus := events.NewBus(events.Options{QueueSize: 1024})
	defer bus.Close()
	bus.Subscribe(events.StateChanged, func(e events.Event) {
		mu.Lock()
		states = append(states, e.Data.Summary())
		mu.Unlock()
	})
	c, err := conn.New(conn.Config{
		Token:            badInputToken,
		GatewayURL:       g.wsURL(),
		RESTTransport:    g,
		Events:           bus,
		HandshakeTimeout: 20 * time.Second, // a bound, not a wait: generous for a loaded machine
		ReconnectDelay:   20 * time.Millisecond,
		CallTimeout:      10 * time.Second,
		Observer: gateway.ObserverFunc(func(o gateway.Observation) {
			if o.Kind == gateway.ObsMalformed {
				mu.Lock()
				malformed = append(malformed, o.Err)
				mu.Unlock()
			}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Session().AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		mu.Lock()
		got[m.ID]++
		if m.ID == "1004" && len(m.Content) != len(huge) {
			t.Errorf("the 8 MiB message arrived with %d bytes", len(m.Content))
		}
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer func() {
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	// wait polls cond on the live connection until it holds, bounded by
	// a deadline rather than a count of polls (a loaded machine is slow
	// to get through 8 MiB under the race detector).
	wait := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond() && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if !cond() {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("never: %s (handled %v, malformed %q, states %q)", what, got, malformed, states)
		}
	}
	// connections fails the test when the gateway saw other connections
	// than the ones the test makes: a reconnect nobody asked for would
	// lose what this gateway does not replay and mislead the checks below.
	connections := func(want int) {
		t.Helper()
		g.mu.Lock()
		n := g.conns
		g.mu.Unlock()
		if n != want {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%d gateway connections, want %d: a reconnect nobody asked for (states %q)", n, want, states)
		}
	}
	handled := func(ids ...string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if got[id] == 0 {
					return false
				}
			}
			return true
		}
	}
	wait("every well-formed dispatch handled", handled("1002", "1003", "1004", "1006", "1007"))
	// The handler can run before the connection records the sequence it
	// delivered: wait for that too.
	wait("sequence 7 recorded", func() bool { return c.Stats().Sequence == 7 })
	connections(1)
	if st := c.Stats(); st.Sequence != 7 || st.DuplicatesDropped != 1 {
		t.Errorf("stats %+v: want sequence 7 and the out-of-order dispatch counted as a duplicate", st)
	}

	// Cut the connection: the RESUME asks from 7, nothing is replayed twice.
	g.cut()
	wait("the dispatch after the RESUME handled", handled("1009"))
	connections(2)
	mu.Lock()
	defer mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.resumes) != 1 || g.resumes[0] != 7 {
		t.Errorf("RESUMEs asked from %v, want [7]", g.resumes)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("message %s handled %d times", id, n)
		}
	}
	if got["1005"] != 0 {
		t.Error("the out-of-order dispatch was delivered after a later one")
	}
	want := []string{"invalid JSON at offset", `no "op" field`, "unexpected JSON array", "unexpected JSON string",
		"binary frame", "unexpected opcode 42", "unexpected opcode -1"}
	all := strings.Join(malformed, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("no observation says %q; got:\n%s", w, all)
		}
	}
	if strings.Contains(all, badInputToken) {
		t.Error("an observation carries the token")
	}
}
