package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-bot/lifeline/core/clock"
)

// script is one scripted gateway connection on the server side.
type script func(t *testing.T, ws *websocket.Conn)

// scriptServer serves each successive connection with the next script.
func scriptServer(t *testing.T, scripts ...script) string {
	t.Helper()
	var mu sync.Mutex
	n := 0
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		if i < len(scripts) {
			scripts[i](t, ws)
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/?v=9&encoding=json"
}

func sendJSON(ws *websocket.Conn, s string) { _ = ws.WriteMessage(websocket.TextMessage, []byte(s)) }

func readPayload(t *testing.T, ws *websocket.Conn) Payload {
	_, data, err := ws.ReadMessage()
	if err != nil {
		return Payload{Op: -1}
	}
	p, err := DecodePayload(data)
	if err != nil {
		t.Errorf("client sent malformed %q", data)
	}
	return p
}

// helloIdentifyReady plays the normal start of a session.
func helloIdentifyReady(t *testing.T, ws *websocket.Conn, interval int) {
	sendJSON(ws, `{"op":10,"d":{"heartbeat_interval":`+itoa(interval)+`}}`)
	if p := readPayload(t, ws); p.Op != OpIdentify {
		t.Errorf("first client op = %d, want IDENTIFY", p.Op)
	}
	sendJSON(ws, `{"op":0,"t":"READY","s":1,"d":{"session_id":"s1","resume_gateway_url":"ws://resume.example"}}`)
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

type recorder struct {
	mu  sync.Mutex
	obs []Observation
	ch  chan Observation
}

func newRecorder() *recorder { return &recorder{ch: make(chan Observation, 1024)} }

func (r *recorder) Observe(o Observation) {
	r.mu.Lock()
	r.obs = append(r.obs, o)
	r.mu.Unlock()
	select {
	case r.ch <- o:
	default:
	}
}

// waitFor blocks until an observation of kind k arrives (bounded by real time).
func (r *recorder) waitFor(t *testing.T, k ObsKind) Observation {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case o := <-r.ch:
			if o.Kind == k {
				return o
			}
		case <-deadline:
			t.Fatalf("no observation of kind %d", k)
		}
	}
}

func TestConnZombieDetectedAfterFactorIntervals(t *testing.T) {
	hold := make(chan struct{})
	url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) {
		helloIdentifyReady(t, ws, 1000)
		// Read heartbeats and never ACK: a zombie connection.
		for readPayload(t, ws).Op != -1 {
		}
		<-hold
	})
	defer close(hold)
	clk := clock.NewFake(time.Time{})
	rec := newRecorder()
	c := NewConn(Options{URL: url, Clock: clk, Observer: rec, Jitter: func() float64 { return 0.5 }})
	done := make(chan End, 1)
	start := clk.Now()
	go func() {
		done <- c.Run(context.Background(), Handshake{Identify: json.RawMessage(`{"token":"t"}`)}, func(context.Context, Payload, []byte) {})
	}()
	rec.waitFor(t, ObsReady)
	// 1.3 intervals after HELLO: heartbeat sent at 0.5, no ACK, still alive.
	// Waiting for the heartbeat keeps the fake clock from running ahead
	// of the loop.
	clk.Advance(500 * time.Millisecond)
	rec.waitFor(t, ObsHeartbeatSent)
	clk.Advance(800 * time.Millisecond)
	select {
	case e := <-done:
		t.Fatalf("ended early: %v", e)
	default:
	}
	clk.Advance(100 * time.Millisecond)
	e := <-done
	if e.Reason != EndZombie {
		t.Fatalf("end = %v, want zombie", e)
	}
	if e.SentCode() != ResumableCloseCode {
		t.Fatalf("sent close %d, want %d (resumable)", e.SentCode(), ResumableCloseCode)
	}
	if got := clk.Since(start); got != 1400*time.Millisecond {
		t.Fatalf("zombie declared after %v of fake time, want 1.4 intervals", got)
	}
}

func TestConnHeartbeatsAckAndRTT(t *testing.T) {
	beats := make(chan int64, 10)
	hold := make(chan struct{})
	url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) {
		helloIdentifyReady(t, ws, 1000)
		sendJSON(ws, `{"op":0,"t":"MESSAGE_CREATE","s":2,"d":{}}`)
		for {
			p := readPayload(t, ws)
			if p.Op == -1 {
				break
			}
			if p.Op == OpHeartbeat {
				var seq int64
				_ = json.Unmarshal(p.D, &seq)
				beats <- seq
				sendJSON(ws, `{"op":11}`)
			}
		}
		<-hold
	})
	defer close(hold)
	clk := clock.NewFake(time.Time{})
	rec := newRecorder()
	c := NewConn(Options{URL: url, Clock: clk, Observer: rec, Jitter: func() float64 { return 0 }})
	var dispatched []string
	var mu sync.Mutex
	done := make(chan End, 1)
	go func() {
		done <- c.Run(context.Background(), Handshake{Identify: json.RawMessage(`{}`)}, func(_ context.Context, p Payload, _ []byte) {
			mu.Lock()
			dispatched = append(dispatched, p.T)
			mu.Unlock()
		})
	}()
	rec.waitFor(t, ObsReady)
	for i := 0; i < 5; i++ {
		clk.Advance(1000 * time.Millisecond) // first beat at jitter 0 fires on the first Advance
		select {
		case <-beats:
		case <-time.After(10 * time.Second):
			t.Fatalf("heartbeat %d not sent", i)
		}
		rec.waitFor(t, ObsAck)
	}
	select {
	case e := <-done:
		t.Fatalf("ended: %v", e)
	default:
	}
	c.Close(ResumableCloseCode)
	if e := <-done; e.Reason != EndStopped || !e.Ready {
		t.Fatalf("end = %+v", e)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dispatched) != 2 || dispatched[0] != "READY" || dispatched[1] != "MESSAGE_CREATE" {
		t.Fatalf("dispatched %v", dispatched)
	}
}

func TestConnEnds(t *testing.T) {
	const queued = "op9 not resumable while the IDENTIFY waits its turn"
	cases := []struct {
		name   string
		script script
		check  func(t *testing.T, e End)
	}{
		{"op7", func(t *testing.T, ws *websocket.Conn) {
			helloIdentifyReady(t, ws, 1000)
			sendJSON(ws, `{"op":7,"d":null}`)
			readPayload(t, ws)
		}, func(t *testing.T, e End) {
			if e.Reason != EndReconnect || !e.Ready || e.SentCode() != ResumableCloseCode {
				t.Errorf("end %+v", e)
			}
		}},
		{"op7 before HELLO", func(t *testing.T, ws *websocket.Conn) {
			sendJSON(ws, `{"op":7,"d":null}`)
			readPayload(t, ws)
		}, func(t *testing.T, e End) {
			if e.Reason != EndReconnect || e.Ready {
				t.Errorf("end %+v", e)
			}
		}},
		{"op9 resumable", func(t *testing.T, ws *websocket.Conn) {
			helloIdentifyReady(t, ws, 1000)
			sendJSON(ws, `{"op":9,"d":true}`)
			readPayload(t, ws)
		}, func(t *testing.T, e End) {
			if e.Reason != EndInvalidSession || !e.Resumable {
				t.Errorf("end %+v", e)
			}
		}},
		{"op9 not resumable", func(t *testing.T, ws *websocket.Conn) {
			helloIdentifyReady(t, ws, 1000)
			sendJSON(ws, `{"op":9,"d":false}`)
			readPayload(t, ws)
		}, func(t *testing.T, e End) {
			if e.Reason != EndInvalidSession || e.Resumable || e.SentCode() != 1000 || !e.HandshakeSent {
				t.Errorf("end %+v", e)
			}
		}},
		{queued, func(t *testing.T, ws *websocket.Conn) {
			// The connection has named no session: op 9 cannot be about
			// one, and closing with 1000 would end nothing of its own.
			sendJSON(ws, `{"op":10,"d":{"heartbeat_interval":1000}}`)
			sendJSON(ws, `{"op":9,"d":false}`)
			readPayload(t, ws)
		}, func(t *testing.T, e End) {
			if e.Reason != EndInvalidSession || e.Resumable || e.HandshakeSent || e.SentCode() != ResumableCloseCode {
				t.Errorf("end %+v", e)
			}
		}},
		{"close 4004", func(t *testing.T, ws *websocket.Conn) {
			sendJSON(ws, `{"op":10,"d":{"heartbeat_interval":1000}}`)
			readPayload(t, ws)
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4004, "Authentication failed."))
			readPayload(t, ws)
		}, func(t *testing.T, e End) {
			if e.Reason != EndClosed || e.CloseCode != 4004 || e.Ready || !e.HandshakeSent {
				t.Errorf("end %+v", e)
			}
		}},
		{"close 4009 before HELLO", func(t *testing.T, ws *websocket.Conn) {
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4009, "Session timed out."))
			readPayload(t, ws)
		}, func(t *testing.T, e End) {
			if e.Reason != EndClosed || e.CloseCode != 4009 || e.Ready || e.HandshakeSent {
				t.Errorf("end %+v", e)
			}
		}},
		{"tcp drop", func(t *testing.T, ws *websocket.Conn) {
			helloIdentifyReady(t, ws, 1000)
			ws.UnderlyingConn().Close()
		}, func(t *testing.T, e End) {
			if e.Reason != EndReadError || !e.Ready {
				t.Errorf("end %+v", e)
			}
		}},
		{"hello without interval", func(t *testing.T, ws *websocket.Conn) {
			sendJSON(ws, `{"op":10,"d":{}}`)
			readPayload(t, ws)
		}, func(t *testing.T, e End) {
			if e.Reason != EndProtocol {
				t.Errorf("end %+v", e)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := scriptServer(t, tc.script)
			c := NewConn(Options{URL: url, Jitter: func() float64 { return 0.99 }})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			hs := Handshake{Identify: json.RawMessage(`{"token":"secret-token"}`)}
			if tc.name == queued {
				// The identify queue holds the IDENTIFY until the end.
				hs.BeforeIdentify = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
			}
			e := c.Run(ctx, hs, func(context.Context, Payload, []byte) {})
			if strings.Contains(e.Error(), "secret-token") {
				t.Fatalf("end leaks the token: %v", e)
			}
			tc.check(t, e)
		})
	}
}

func TestConnHelloWithheldTimesOut(t *testing.T) {
	hold := make(chan struct{})
	url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) { <-hold })
	defer close(hold)
	clk := clock.NewFake(time.Time{})
	rec := newRecorder()
	c := NewConn(Options{URL: url, Clock: clk, Observer: rec, HandshakeTimeout: 5 * time.Second})
	done := make(chan End, 1)
	go func() { done <- c.Run(context.Background(), Handshake{}, func(context.Context, Payload, []byte) {}) }()
	rec.waitFor(t, ObsConnected)
	if !clk.BlockUntil(1, 10*time.Second) {
		t.Fatal("no handshake timer")
	}
	clk.Advance(5 * time.Second)
	if e := <-done; e.Reason != EndHandshakeTimeout {
		t.Fatalf("end = %v", e)
	}
}

func TestConnResumeSendsSessionAndSeq(t *testing.T) {
	got := make(chan resumeData, 1)
	url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) {
		sendJSON(ws, `{"op":10,"d":{"heartbeat_interval":1000}}`)
		p := readPayload(t, ws)
		var d resumeData
		_ = json.Unmarshal(p.D, &d)
		if p.Op != OpResume {
			t.Errorf("op %d, want RESUME", p.Op)
		}
		got <- d
		sendJSON(ws, `{"op":0,"t":"MESSAGE_CREATE","s":8,"d":{}}`)
		sendJSON(ws, `{"op":0,"t":"RESUMED","s":9,"d":{}}`)
		readPayload(t, ws)
	})
	// The resume URL has no query; Run must add the gateway's.
	host := strings.TrimSuffix(url, "/?v=9&encoding=json")
	rec := newRecorder()
	c := NewConn(Options{URL: "ws://127.0.0.1:1/?v=9&encoding=json", Observer: rec, Jitter: func() float64 { return 0.99 }})
	done := make(chan End, 1)
	go func() {
		done <- c.Run(context.Background(), Handshake{Resume: &ResumeState{Token: "tok", SessionID: "s1", Seq: 7, URL: host}}, func(context.Context, Payload, []byte) {})
	}()
	d := <-got
	if d.SessionID != "s1" || d.Seq != 7 || d.Token != "tok" {
		t.Fatalf("resume sent %+v", d)
	}
	o := rec.waitFor(t, ObsReady)
	if o.Type != "RESUMED" || o.Seq != 9 {
		t.Fatalf("ready observation %+v", o)
	}
	c.Close(1000)
	<-done
	if s := (ResumeState{Token: "tok", SessionID: "s1"}).String(); strings.Contains(s, "tok") {
		t.Fatalf("ResumeState prints its token: %s", s)
	}
}

func TestResumeURL(t *testing.T) {
	for _, c := range []struct{ resume, gateway, want string }{
		{"wss://gateway-us-east1-b.discord.gg", "wss://gateway.discord.gg/?v=9&encoding=json", "wss://gateway-us-east1-b.discord.gg/?v=9&encoding=json"},
		{"ws://127.0.0.1:5/resume", "ws://127.0.0.1:5/?v=9&encoding=json", "ws://127.0.0.1:5/resume?v=9&encoding=json"},
		{"ws://h/?v=10", "ws://g/?v=9", "ws://h/?v=10"},
		{"::bad", "ws://g/?v=9", "ws://g/?v=9"},
	} {
		if got := resumeURL(c.resume, c.gateway); got != c.want {
			t.Errorf("resumeURL(%q, %q) = %q, want %q", c.resume, c.gateway, got, c.want)
		}
	}
}

func TestConnBeforeIdentifyGatesIdentifyAndCanRefuse(t *testing.T) {
	identified := make(chan struct{}, 1)
	hold := make(chan struct{})
	defer close(hold)
	url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) {
		sendJSON(ws, `{"op":10,"d":{"heartbeat_interval":1000}}`)
		for {
			p := readPayload(t, ws)
			if p.Op == -1 {
				return
			}
			if p.Op == OpIdentify {
				identified <- struct{}{}
				sendJSON(ws, `{"op":0,"t":"READY","s":1,"d":{"session_id":"s1"}}`)
			}
		}
	}, func(t *testing.T, ws *websocket.Conn) {
		sendJSON(ws, `{"op":10,"d":{"heartbeat_interval":1000}}`)
		readPayload(t, ws)
		<-hold
	})
	gate := make(chan struct{})
	rec := newRecorder()
	c := NewConn(Options{URL: url, Observer: rec, Jitter: func() float64 { return 0.99 }})
	done := make(chan End, 1)
	go func() {
		done <- c.Run(context.Background(), Handshake{Identify: json.RawMessage(`{}`), BeforeIdentify: func(ctx context.Context) error {
			select {
			case <-gate:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}, func(context.Context, Payload, []byte) {})
	}()
	rec.waitFor(t, ObsHello)
	select {
	case <-identified:
		t.Fatal("IDENTIFY sent before the gate opened")
	case <-time.After(50 * time.Millisecond):
	}
	close(gate)
	<-identified
	rec.waitFor(t, ObsReady)
	c.Close(1000)
	<-done

	refused := errors.New("budget spent")
	c2 := NewConn(Options{URL: url})
	e := c2.Run(context.Background(), Handshake{Identify: json.RawMessage(`{}`),
		BeforeIdentify: func(context.Context) error { return refused }}, func(context.Context, Payload, []byte) {})
	if e.Reason != EndIdentifyBlocked || !errors.Is(e, refused) {
		t.Fatalf("end = %v", e)
	}
}

// A process that stalls (GC, an overloaded machine) wakes with both the
// heartbeat and the zombie timers expired. Without a heartbeat outstanding
// for long enough there is no evidence against the connection, so it must
// heartbeat and carry on rather than drop a healthy session.
func TestConnStalledProcessIsNotAZombie(t *testing.T) {
	hold := make(chan struct{})
	url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) {
		helloIdentifyReady(t, ws, 1000)
		for {
			p := readPayload(t, ws)
			if p.Op == -1 {
				break
			}
			if p.Op == OpHeartbeat {
				sendJSON(ws, `{"op":11}`)
			}
		}
		<-hold
	})
	defer close(hold)
	clk := clock.NewFake(time.Time{})
	rec := newRecorder()
	c := NewConn(Options{URL: url, Clock: clk, Observer: rec, Jitter: func() float64 { return 0.5 }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan End, 1)
	go func() {
		done <- c.Run(ctx, Handshake{Identify: json.RawMessage(`{"token":"t"}`)}, func(context.Context, Payload, []byte) {})
	}()
	rec.waitFor(t, ObsReady)
	clk.Advance(500 * time.Millisecond)
	rec.waitFor(t, ObsAck)

	// The stall: three intervals pass before the loop runs again.
	clk.Jump(3 * time.Second)
	sent := false
	for acked := false; !acked; {
		select {
		case e := <-done:
			t.Fatalf("a stalled process declared its healthy connection dead: %v", e)
		case o := <-rec.ch:
			sent = sent || o.Kind == ObsHeartbeatSent
			acked = sent && o.Kind == ObsAck
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat answered after the stall")
		}
	}
	cancel()
	if e := <-done; e.Reason != EndStopped {
		t.Fatalf("end = %v, want stopped", e)
	}
}

// A message over MaxMessageSize ends the connection as a protocol error
// (it resumes like any other) instead of being buffered whatever its size.
func TestConnMessageOverTheLimitEndsTheConnection(t *testing.T) {
	hold := make(chan struct{})
	url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) {
		helloIdentifyReady(t, ws, 41250)
		big := `{"op":0,"t":"GUILD_CREATE","s":2,"d":{"name":"` + strings.Repeat("x", 4096) + `"}}`
		_ = ws.WriteMessage(websocket.TextMessage, []byte(big))
		<-hold
	})
	defer close(hold)
	rec := newRecorder()
	c := NewConn(Options{URL: url, Clock: clock.NewFake(time.Time{}), Observer: rec, MaxMessageSize: 1024, Jitter: func() float64 { return 0.5 }})
	var dispatched atomic.Int32
	// Bounded: without the limit the connection would stay up.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := c.Run(ctx, Handshake{Identify: json.RawMessage(`{"token":"t"}`)}, func(_ context.Context, p Payload, _ []byte) {
		if p.T == "GUILD_CREATE" {
			dispatched.Add(1)
		}
	})
	if e.Reason != EndProtocol || !errors.Is(e.Err, websocket.ErrReadLimit) || !strings.Contains(e.Err.Error(), "over 1024 bytes") {
		t.Fatalf("end = %v (%v), want a protocol error naming the 1024-byte limit", e.Reason, e.Err)
	}
	if !e.Ready {
		t.Fatal("End.Ready false after READY")
	}
	if n := dispatched.Load(); n != 0 {
		t.Fatalf("the message over the limit was handed on (%d)", n)
	}
}

func TestMaxMessageSizeDefaults(t *testing.T) {
	for _, tt := range []struct{ set, want int64 }{{0, DefaultMaxMessageSize}, {-1, -1}, {2048, 2048}} {
		o := Options{URL: "ws://127.0.0.1:1", MaxMessageSize: tt.set}
		o.defaults()
		if o.MaxMessageSize != tt.want {
			t.Errorf("MaxMessageSize %d: %d after defaults, want %d", tt.set, o.MaxMessageSize, tt.want)
		}
	}
}

// An IDENTIFY waiting for its READY is not given up as a zombie: Discord
// may have made the session already (its id comes in READY, so an ended
// connection could never resume it). The handshake deadline bounds the
// wait; once READY is in, the zombie check holds again.
func TestConnNoZombieWhileIdentifyAwaitsReady(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ready bool // READY comes just before the handshake deadline
		want  EndReason
	}{
		{"READY late", true, EndZombie},
		{"no READY", false, EndHandshakeTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sendReady := make(chan struct{})
			hold := make(chan struct{})
			url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) {
				sendJSON(ws, `{"op":10,"d":{"heartbeat_interval":1000}}`)
				if p := readPayload(t, ws); p.Op != OpIdentify {
					t.Errorf("first client op = %d, want IDENTIFY", p.Op)
				}
				go func() {
					select {
					case <-sendReady:
						sendJSON(ws, `{"op":0,"t":"READY","s":1,"d":{"session_id":"s1"}}`)
					case <-hold:
					}
				}()
				// Heartbeats are read and never ACKed.
				for readPayload(t, ws).Op != -1 {
				}
				<-hold
			})
			defer close(hold)
			clk := clock.NewFake(time.Time{})
			rec := newRecorder()
			c := NewConn(Options{URL: url, Clock: clk, Observer: rec, HandshakeTimeout: 5 * time.Second,
				Jitter: func() float64 { return 0.5 }})
			done := make(chan End, 1)
			start := clk.Now()
			go func() {
				done <- c.Run(context.Background(), Handshake{Identify: json.RawMessage(`{"token":"t"}`)}, func(context.Context, Payload, []byte) {})
			}()
			if o := rec.waitFor(t, ObsSent); o.Op != OpIdentify {
				t.Fatalf("sent op %d", o.Op)
			}
			// Heartbeat, handshake deadline and zombie check.
			if !clk.BlockUntil(3, 10*time.Second) {
				t.Fatal("timers not armed")
			}
			clk.Advance(500 * time.Millisecond)
			rec.waitFor(t, ObsHeartbeatSent)
			// 1.4 intervals without an ACK: a zombie, were it READY. The
			// check comes back instead (three timers again).
			clk.Advance(900 * time.Millisecond)
			for clk.Waiters() < 3 {
				select {
				case e := <-done:
					t.Fatalf("an IDENTIFY awaiting READY was given up at %v: %v", clk.Since(start), e)
				case <-time.After(time.Millisecond):
				}
			}
			// Up to just before the handshake deadline, step by step.
			for i := 0; i < 35; i++ {
				clk.Advance(100 * time.Millisecond)
				select {
				case e := <-done:
					t.Fatalf("ended at %v: %v", clk.Since(start), e)
				default:
				}
			}
			if tc.ready {
				close(sendReady)
				rec.waitFor(t, ObsReady)
			}
			for i := 0; i < 100; i++ {
				clk.Advance(100 * time.Millisecond)
				select {
				case e := <-done:
					if e.Reason != tc.want || e.Ready != tc.ready || !e.HandshakeSent {
						t.Fatalf("end %+v, want %v", e, tc.want)
					}
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
			t.Fatal("the connection never ended")
		})
	}
}
