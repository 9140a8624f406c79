package conn

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// miniGateway is a tiny stand-in for Discord on 127.0.0.1: GET
// /api/v9/gateway names its own WebSocket URL, and every WebSocket
// connection runs script.
func miniGateway(t *testing.T, script func(c *websocket.Conn) error) (*httptest.Server, chan error) {
	t.Helper()
	errs := make(chan error, 4)
	var srv *httptest.Server
	up := websocket.Upgrader{}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v9/gateway" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"url": "ws" + strings.TrimPrefix(srv.URL, "http")})
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		errs <- script(c)
	}))
	t.Cleanup(srv.Close)
	return srv, errs
}

// newTappedSession builds a discordgo Session the way the connection loop
// will: its own Dialer from the tap, its own Client through a Transport
// aimed at the local server, discordgo's reconnect off, no compression.
func newTappedSession(t *testing.T, srv *httptest.Server, tap *Tap, rest RESTObserver) *discordgo.Session {
	t.Helper()
	s, err := discordgo.New("Bot " + "SECRET.TOKEN.FOR.TEST")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTransport(TransportSettings{BaseURL: srv.URL, Observer: rest})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	s.Client = tr.Client(5 * time.Second)
	s.Dialer = tap.Dialer()
	s.ShouldReconnectOnError = false
	s.Identify.Compress = false
	s.Identify.Intents = discordgo.IntentGuilds | discordgo.IntentGuildMessages
	s.LogLevel = -1 // discordgo logs errors with the log package by default
	return s
}

func expectText(c *websocket.Conn, contains string) error {
	_, m, err := c.ReadMessage()
	if err != nil {
		return err
	}
	if !strings.Contains(string(m), contains) {
		return errors.New("server expected a message containing " + contains)
	}
	return nil
}

// TestTapWithDiscordgoSession runs a real discordgo v0.29.0 Session
// through the tap and the transport against the mini gateway: REST
// discovery, HELLO, IDENTIFY, READY, heartbeat and ACK, a dispatch, and a
// fatal close, which discordgo answers by sending 1000 (the tap shows it).
func TestTapWithDiscordgoSession(t *testing.T) {
	srv, serverErr := miniGateway(t, func(c *websocket.Conn) error {
		send := func(s string) error { return c.WriteMessage(websocket.TextMessage, []byte(s)) }
		if err := send(`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":45000}}`); err != nil {
			return err
		}
		if err := expectText(c, `"op":2`); err != nil {
			return err
		}
		if err := send(readyJSON); err != nil {
			return err
		}
		if err := expectText(c, `{"op":1,"d":1}`); err != nil { // discordgo heartbeats at once
			return err
		}
		if err := send(`{"t":null,"s":null,"op":11,"d":null}`); err != nil {
			return err
		}
		if err := send(`{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"id":"3","channel_id":"4","content":"hi"}}`); err != nil {
			return err
		}
		if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4004, "Authentication failed.")); err != nil {
			return err
		}
		_, _, err := c.ReadMessage() // discordgo's own close frame
		return ignoreClose(err)
	})
	rec := &recorder{}
	rest := &restRecorder{}
	tap := NewTap(TapSettings{Observer: rec})
	s := newTappedSession(t, srv, tap, rest)
	disconnected := make(chan struct{}, 2)
	messages := make(chan string, 1)
	s.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) { disconnected <- struct{}{} })
	s.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) { messages <- m.Content })

	if err := s.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	select {
	case m := <-messages:
		if m != "hi" {
			t.Errorf("handler got %q", m)
		}
	case <-time.After(testWait):
		t.Fatal("MESSAGE_CREATE never reached the handler")
	}
	select {
	case <-disconnected: // after discordgo's Close, which sleeps 1s
	case <-time.After(testWait):
		t.Fatal("discordgo never disconnected after the 4004 close")
	}
	if err := <-serverErr; err != nil {
		t.Fatalf("server: %v", err)
	}

	var sent, received []string
	for _, l := range lines(rec.all(), KindDial, KindUpgrade) {
		switch {
		case strings.HasPrefix(l, "sent "):
			sent = append(sent, l)
		case strings.HasPrefix(l, "received heartbeat-ack"):
			received = append(received, "received heartbeat-ack") // latency is wall-clock here
		default:
			received = append(received, l)
		}
	}
	wantSent := []string{
		"sent identify shard=none intents=Guilds|GuildMessages compress=false",
		"sent heartbeat seq=1",
		`sent close code=1000 reason=""`, // discordgo answers 4004 with Close(): 1000
		"sent conn-end",
	}
	wantReceived := []string{
		"received hello interval=45s",
		"received dispatch s=1 t=READY",
		"received ready session=0123456789abcdef resume_url=wss://resume.gateway.test",
		"received heartbeat-ack",
		"received dispatch s=2 t=MESSAGE_CREATE",
		`received close code=4004 reason="Authentication failed."`,
	}
	if strings.Join(sent, "\n") != strings.Join(wantSent, "\n") {
		t.Errorf("sent:\n  %s\nwant\n  %s", strings.Join(sent, "\n  "), strings.Join(wantSent, "\n  "))
	}
	if strings.Join(received, "\n") != strings.Join(wantReceived, "\n") {
		t.Errorf("received:\n  %s\nwant\n  %s", strings.Join(received, "\n  "), strings.Join(wantReceived, "\n  "))
	}
	for _, o := range rec.all() {
		if strings.Contains(o.String(), "SECRET") || strings.Contains(o.SessionID+o.ResumeGatewayURL+o.Type, "SECRET") {
			t.Errorf("token in %v", o)
		}
	}
	r := rest.all()
	if len(r) != 1 || r[0].Route != "/api/v9/gateway" || r[0].Status != 200 || !r[0].Rewritten {
		t.Errorf("REST results %+v", r)
	}
	if NewCloseError(4004, "").Fatal() != true {
		t.Error("4004 not fatal")
	}
}

// TestWatchdogAbandonsHungDiscordgoOpen: the gateway upgrades but never
// sends HELLO; discordgo's Open would wait forever. The watchdog gives up
// at the (fake) deadline, and the abandoned Open is seen returning once
// the server drops the connection.
func TestWatchdogAbandonsHungDiscordgoOpen(t *testing.T) {
	release := make(chan struct{})
	srv, serverErr := miniGateway(t, func(c *websocket.Conn) error {
		<-release // withhold HELLO
		return nil
	})
	fake := clock.NewFake(time.Time{})
	late := make(chan error, 1)
	w := NewWatchdog(WatchdogSettings{Clock: fake, Timeout: 10 * time.Second,
		OnLateReturn: func(name string, err error) { late <- err }})
	tap := NewTap(TapSettings{Observer: &recorder{}})
	s := newTappedSession(t, srv, tap, nil)

	result := make(chan error, 1)
	go func() { result <- w.Run(context.Background(), "session open", 0, s.Open) }()
	if !fake.BlockUntil(1, testWait) {
		t.Fatal("watchdog never armed")
	}
	fake.Advance(10 * time.Second)
	if err := <-result; !errors.Is(err, ErrWatchdogTimeout) {
		t.Fatalf("Run = %v, want ErrWatchdogTimeout", err)
	}
	if w.Lingering() != 1 {
		t.Errorf("Lingering = %d", w.Lingering())
	}
	close(release) // the server handler returns and closes the connection
	select {
	case err := <-late:
		if err == nil {
			t.Error("the abandoned Open returned nil after the connection dropped")
		}
	case <-time.After(testWait):
		t.Fatal("the abandoned Open never returned")
	}
	if w.Lingering() != 0 {
		t.Errorf("Lingering = %d after the late return", w.Lingering())
	}
	if err := <-serverErr; err != nil {
		t.Fatal(err)
	}
}

func ignoreClose(err error) error {
	var ce *websocket.CloseError
	if err == nil || errors.As(err, &ce) {
		return nil
	}
	return err
}
