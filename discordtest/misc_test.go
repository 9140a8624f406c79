package discordtest

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
)

func TestOptionsDefaultsAndScale(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		hb   time.Duration
		win  time.Duration
	}{
		{"discord timings", Options{}, DefaultHeartbeatInterval, DefaultIdentifyWindow},
		{"scale 100", Options{Scale: 100}, 412500 * time.Microsecond, 50 * time.Millisecond},
		{"explicit wins over scale", Options{Scale: 100, HeartbeatInterval: time.Second}, time.Second, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.opts)
			if srv.HeartbeatInterval() != tt.hb || srv.IdentifyWindow() != tt.win {
				t.Fatalf("heartbeat %v identify window %v, want %v %v", srv.HeartbeatInterval(), srv.IdentifyWindow(), tt.hb, tt.win)
			}
			if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") || srv.RESTURL() != srv.URL()+"/api/v10" ||
				srv.GatewayURL() != "ws://"+srv.Addr().String()+"/gateway" || srv.ResumeURL() != "ws://"+srv.Addr().String()+"/resume" {
				t.Fatalf("URLs %s %s %s %s", srv.URL(), srv.RESTURL(), srv.GatewayURL(), srv.ResumeURL())
			}
		})
	}
}

func TestOptionsRejected(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want error
	}{
		{"all interfaces", Options{Addr: "0.0.0.0:0"}, ErrNotLoopback},
		{"a LAN address", Options{Addr: "192.168.1.10:0"}, ErrNotLoopback},
		{"negative scale", Options{Scale: -1}, ErrInvalidOptions},
		{"negative window", Options{IdentifyWindow: -time.Second}, ErrInvalidOptions},
		{"negative limit", Options{SendLimit: -1}, ErrInvalidOptions},
		{"non-privileged bit as privileged", Options{PrivilegedIntents: IntentGuilds}, ErrInvalidOptions},
		{"heartbeat under a millisecond", Options{HeartbeatInterval: time.Microsecond}, ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := NewServer(tt.opts)
			if err == nil {
				_ = srv.Close()
				t.Fatal("NewServer accepted the options")
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDispatchGenerationAtARate(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, DispatchInterval: time.Second, Guilds: 2, HeartbeatTimeout: -1, SessionExpiry: time.Hour})
	c, sid, last := connectAndDrain(t, srv)
	for i := 0; i < 3; i++ {
		fc.Advance(time.Second)
		e := c.expect(OpDispatch, "MESSAGE_CREATE")
		if e.seq() != last+1 {
			t.Fatalf("MESSAGE_CREATE s=%d, want %d", e.seq(), last+1)
		}
		last = e.seq()
	}
	// A disconnected (resumable) session keeps getting dispatches,
	// buffered for its RESUME.
	_ = c.ws.Close()
	waitFor(t, "the session to detach", func() bool { return !srv.Sessions()[0].Connected })
	fc.Advance(time.Second)
	waitFor(t, "a buffered dispatch", func() bool { return srv.Sessions()[0].Seq == last+1 })
	if u := srv.Ledger().Undelivered(sid); len(u) != 1 || u[0] != last+1 {
		t.Fatalf("undelivered %v", u)
	}
}

func TestTokenNeverRecordedOrLogged(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: &lockedWriter{w: &logs, mu: &mu}})
	const secret = "very-secret-token"
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{}), Token: secret, Logger: logger})
	c := dialRaw(t, srv, "/gateway", "")
	r, _ := c.identify(srv, [2]int{0, 1})
	c.send(OpHeartbeat, 1)
	c.expect(OpHeartbeatACK, "")
	c.send(OpResume, map[string]any{"token": "Bot " + secret, "session_id": r.SessionID, "seq": 1}) // 4005
	c.expectClose()
	getJSON(t, srv.Client(), srv.RESTURL()+"/users/@me", "Bot "+secret, nil)
	_ = srv.Close()
	for _, conn := range srv.Ledger().Connections() {
		for _, f := range conn.Frames {
			if strings.Contains(string(f.Payload), secret) {
				t.Fatalf("ledger frame op %d holds the token: %s", f.Op, f.Payload)
			}
			if f.Op == OpIdentify && !strings.Contains(string(f.Payload), "[redacted]") {
				t.Fatalf("IDENTIFY not redacted: %s", f.Payload)
			}
		}
	}
	for _, v := range srv.Ledger().Violations() {
		if strings.Contains(v.Detail, secret) {
			t.Fatalf("violation holds the token: %+v", v)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() == 0 {
		t.Fatal("nothing logged: the check would be vacuous")
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the token was logged")
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestIdentifyWindows(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, MaxConcurrency: 2, Guilds: -1, HeartbeatTimeout: -1})
	ident := func(shard int) {
		c := dialRaw(t, srv, "/gateway", "")
		c.hello()
		c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{shard, 4}, IntentGuilds, false))
		c.read()
	}
	ident(0)
	ident(1)
	ident(2) // bucket 0 again: rejected
	fc.Advance(5 * time.Second)
	ident(2)
	w := srv.Ledger().IdentifyWindows(5 * time.Second)
	if len(w) != 2 || w[0].Accepted[0] != 1 || w[0].Accepted[1] != 1 || w[0].Rejected[0] != 1 || w[1].Accepted[0] != 1 ||
		!w[1].Start.Equal(w[0].Start.Add(5*time.Second)) {
		t.Fatalf("windows %+v", w)
	}
}

func TestEmitMessageUnknownChannel(t *testing.T) {
	srv := newTestServer(t, Options{})
	if _, err := srv.EmitMessage("1", "x"); !errors.Is(err, ErrUnknownChannel) {
		t.Fatalf("EmitMessage in an unknown channel: %v", err)
	}
}

func TestRESTMessageReachesTheGuildsShard(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{}), Guilds: 4, MaxConcurrency: 2, HeartbeatTimeout: -1})
	var cs [2]*rawClient
	for sh := 0; sh < 2; sh++ {
		cs[sh] = dialRaw(t, srv, "/gateway", "")
		r, _ := cs[sh].identify(srv, [2]int{sh, 2})
		for range r.Guilds {
			cs[sh].expect(OpDispatch, "GUILD_CREATE")
		}
	}
	g := srv.Guilds()[0]
	owner := g.ShardID(2)
	resp, b := doJSON(t, srv.Client(), "POST", srv.RESTURL()+"/channels/"+g.ChannelID+"/messages", "Bot "+srv.Token(), map[string]string{"content": "hi"})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	e := cs[owner].expect(OpDispatch, "MESSAGE_CREATE")
	if !strings.Contains(string(e.D), `"content":"hi"`) {
		t.Fatalf("MESSAGE_CREATE %s", e.D)
	}
	cs[1-owner].send(OpHeartbeat, nil)
	if e := cs[1-owner].read(); e.Op != OpHeartbeatACK {
		t.Fatalf("the other shard got %s", e.typ())
	}
}
