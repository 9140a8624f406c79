package discordtest

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/clock"
)

func TestFaultValidate(t *testing.T) {
	tests := []struct {
		name string
		f    Fault
		ok   bool
	}{
		{"stall acks", Fault{Kind: FaultStallACKs, Duration: time.Second, Shards: []int{0}}, true},
		{"unknown kind", Fault{Kind: "meteor"}, false},
		{"delay without delay", Fault{Kind: FaultDelayACKs}, false},
		{"close without code", Fault{Kind: FaultClose}, false},
		{"close with 1006", Fault{Kind: FaultClose, Code: 1006}, false},
		{"close with 4000", Fault{Kind: FaultClose, Code: 4000}, true},
		{"close with 1012", Fault{Kind: FaultClose, Code: 1012}, true},
		{"stray parameter", Fault{Kind: FaultDrop, Duration: time.Second}, false},
		{"shards on a server-wide fault", Fault{Kind: FaultOutage, Shards: []int{1}}, false},
		{"negative shard", Fault{Kind: FaultDrop, Shards: []int{-1}}, false},
		{"negative duration", Fault{Kind: FaultStallACKs, Duration: -time.Second}, false},
		{"rate above 1", Fault{Kind: FaultRESTErrors, Rate: 1.5}, false},
		{"status not 5xx", Fault{Kind: FaultRESTErrors, Rate: 1, Status: 404}, false},
		{"bad outage mode", Fault{Kind: FaultOutage, Mode: "sideways"}, false},
		{"blackhole", Fault{Kind: FaultOutage, Mode: OutageBlackhole, Duration: time.Second}, true},
		{"mass disconnect drop", Fault{Kind: FaultMassDisconnect}, true},
		{"mass disconnect bad code", Fault{Kind: FaultMassDisconnect, Code: 5}, false},
		{"dispatch count too big", Fault{Kind: FaultDispatch, Count: 10001}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidFault) {
				t.Fatalf("error %v does not wrap ErrInvalidFault", err)
			}
		})
	}
	srv := newTestServer(t, Options{})
	if err := srv.Inject(Fault{Kind: "meteor"}); !errors.Is(err, ErrInvalidFault) {
		t.Fatalf("Inject of a bad fault: %v", err)
	}
	_ = srv.Close()
	if err := srv.DropConnections(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Inject after Close: %v", err)
	}
}

// twoShards starts a fake-clock server and two identified raw clients,
// shards 0 and 1 of 2, with every READY and GUILD_CREATE read.
func twoShards(t *testing.T, opts Options) (*Server, *clock.Fake, [2]*rawClient) {
	t.Helper()
	fc := clock.NewFake(time.Time{})
	opts.Clock = fc
	opts.MaxConcurrency = 2
	opts.HeartbeatTimeout = -1
	if opts.SessionExpiry == 0 {
		opts.SessionExpiry = time.Hour
	}
	srv := newTestServer(t, opts)
	var cs [2]*rawClient
	for sh := 0; sh < 2; sh++ {
		c := dialRaw(t, srv, "/gateway", "")
		r, _ := c.identify(srv, [2]int{sh, 2})
		for range r.Guilds {
			c.expect(OpDispatch, "GUILD_CREATE")
		}
		cs[sh] = c
	}
	return srv, fc, cs
}

func beat(c *rawClient) {
	c.t.Helper()
	c.send(OpHeartbeat, nil)
}

// acksSent counts heartbeat ACKs the ledger shows on a connection.
func acksSent(srv *Server, conn int64) int {
	c, _ := srv.Ledger().Connection(conn)
	n := 0
	for _, f := range c.Frames {
		if f.Dir == Sent && f.Op == OpHeartbeatACK {
			n++
		}
	}
	return n
}

func heartbeatsReceived(srv *Server, conn int64) int {
	c, _ := srv.Ledger().Connection(conn)
	n := 0
	for _, f := range c.Frames {
		if f.Dir == Received && f.Op == OpHeartbeat {
			n++
		}
	}
	return n
}

func TestFaultStallACKs(t *testing.T) {
	srv, fc, cs := twoShards(t, Options{})
	if err := srv.StallACKs(10*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	beat(cs[0])
	beat(cs[1])
	cs[1].expect(OpHeartbeatACK, "") // shard 1 is unaffected
	waitFor(t, "shard 0's heartbeat", func() bool { return heartbeatsReceived(srv, 1) == 1 })
	// A zombie: the connection stays open and silent.
	cs[0].expectNoFrame(200 * time.Millisecond)
	if n := acksSent(srv, 1); n != 0 {
		t.Fatalf("%d ACKs sent on a stalled connection", n)
	}
	fc.Advance(10 * time.Second)
	beat(cs[0])
	cs[0].expect(OpHeartbeatACK, "")
}

func TestFaultDelayACKs(t *testing.T) {
	srv, fc, cs := twoShards(t, Options{})
	if err := srv.DelayACKs(3*time.Second, 0, 0); err != nil {
		t.Fatal(err)
	}
	beat(cs[0])
	if !fc.BlockUntil(1, ioTimeout) {
		t.Fatal("the delayed ACK was never scheduled")
	}
	if n := acksSent(srv, 1); n != 0 {
		t.Fatalf("ACK sent before the delay")
	}
	fc.Advance(3 * time.Second)
	cs[0].expect(OpHeartbeatACK, "")
}

func TestFaultDropAndMassDisconnect(t *testing.T) {
	srv, _, cs := twoShards(t, Options{})
	if err := srv.DropConnections(1); err != nil {
		t.Fatal(err)
	}
	expectDropped(t, cs[1])
	beat(cs[0])
	cs[0].expect(OpHeartbeatACK, "")
	waitFor(t, "the ledger to record the drop", func() bool { c, _ := srv.Ledger().Connection(2); return c.Closed })
	if c, _ := srv.Ledger().Connection(2); c.CloseKind != DroppedByServer || c.CloseCode != 0 {
		t.Fatalf("ledger: %s %d", c.CloseKind, c.CloseCode)
	}
	// The dropped session stays resumable.
	if s := srv.Sessions(); len(s) != 2 {
		t.Fatalf("sessions after a drop: %+v", s)
	}
	if err := srv.MassDisconnect(0); err != nil {
		t.Fatal(err)
	}
	expectDropped(t, cs[0])
	waitFor(t, "every connection to end", func() bool { return srv.ActiveConnections() == 0 })
}

func TestFaultMassDisconnectWithCode(t *testing.T) {
	srv, _, cs := twoShards(t, Options{})
	if err := srv.MassDisconnect(4000); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if code := c.expectClose(); code != 4000 {
			t.Fatalf("client %d: close %d, want 4000", i, code)
		}
	}
}

func expectDropped(t *testing.T, c *rawClient) {
	t.Helper()
	for i := 0; i < 100; i++ {
		_, err := c.next(ioTimeout)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
			t.Fatalf("got close frame %d, want a dropped connection", ce.Code)
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("connection still open")
		}
		return
	}
	t.Fatal("connection kept sending")
}

func TestFaultCloseWithCode(t *testing.T) {
	tests := []struct {
		code      int
		resumable bool
	}{
		{4000, true},
		{1012, true},
		{4008, true},
		{4007, false},
		{4009, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			srv, _, cs := twoShards(t, Options{})
			if err := srv.CloseConnections(tt.code, 0); err != nil {
				t.Fatal(err)
			}
			if code := cs[0].expectClose(); code != tt.code {
				t.Fatalf("close %d, want %d", code, tt.code)
			}
			waitFor(t, "shard 0's session to detach or end", func() bool {
				for _, s := range srv.Sessions() {
					if s.Shard[0] == 0 && s.Connected {
						return false
					}
				}
				return true
			})
			resumable := false
			for _, s := range srv.Sessions() {
				resumable = resumable || s.Shard[0] == 0
			}
			if resumable != tt.resumable {
				t.Fatalf("code %d: session resumable=%v, want %v", tt.code, resumable, tt.resumable)
			}
		})
	}
}

// A close that ends sessions crossing a client's RESUME on the wire: the
// fake decided to close before it read the RESUME, so the connection
// never carried the session, yet the client, whose RESUME got 4009 for an
// answer, rightly starts a new session. The fake ends the session the
// RESUME named, as if the close had answered it; a close that keeps
// sessions (4000) leaves it resumable.
func TestFaultCloseCrossingAResumeEndsItsSession(t *testing.T) {
	for _, tc := range []struct {
		code  int
		ended bool
	}{{4009, true}, {4007, true}, {4000, false}} {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			srv := newTestServer(t, Options{HeartbeatTimeout: -1, Guilds: -1})
			first := dialRaw(t, srv, "/gateway", "")
			r, _ := first.identify(srv, [2]int{0, 1})
			_ = first.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, ""))
			waitFor(t, "the session to detach", func() bool {
				ss := srv.Sessions()
				return len(ss) == 1 && !ss[0].Connected
			})

			c := dialRaw(t, srv, "/resume", "")
			c.hello()
			// The reader stops at the ledger with the heartbeat, which the
			// test holds: the RESUME waits in the socket while the fake
			// closes the connection.
			srv.ledger.mu.Lock()
			c.send(OpHeartbeat, nil)
			c.send(OpResume, map[string]any{"token": srv.Token(), "session_id": r.SessionID, "seq": 0})
			err := srv.CloseConnections(tc.code)
			srv.ledger.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			if code := c.expectClose(); code != tc.code {
				t.Fatalf("close %d, want %d", code, tc.code)
			}
			// The reader took the RESUME off the socket before the
			// client's echo of the close, which tears the connection down.
			waitFor(t, "the connection's teardown", func() bool {
				srv.mu.Lock()
				defer srv.mu.Unlock()
				return len(srv.conns) == 0
			})
			rec, _ := srv.Ledger().Session(r.SessionID)
			if rec.Ended != tc.ended {
				t.Fatalf("session ended=%v (%q), want %v", rec.Ended, rec.EndReason, tc.ended)
			}
		})
	}
}

func TestFaultReconnectAndHeartbeatRequest(t *testing.T) {
	srv, _, cs := twoShards(t, Options{})
	if err := srv.SendReconnect(0); err != nil {
		t.Fatal(err)
	}
	if e := cs[0].read(); e.Op != OpReconnect || string(e.D) != "null" {
		t.Fatalf("op %d d=%s, want op 7", e.Op, e.D)
	}
	if err := srv.RequestHeartbeat(1); err != nil {
		t.Fatal(err)
	}
	if e := cs[1].read(); e.Op != OpHeartbeat {
		t.Fatalf("op %d, want op 1 from the server", e.Op)
	}
}

func TestFaultInvalidSession(t *testing.T) {
	srv, fc, cs := twoShards(t, Options{})
	sessions := srv.Sessions()
	byShard := map[int]string{}
	for _, s := range sessions {
		byShard[s.Shard[0]] = s.ID
	}
	if err := srv.SendInvalidSession(true, 0); err != nil {
		t.Fatal(err)
	}
	if e := cs[0].read(); e.Op != OpInvalidSession || string(e.D) != "true" {
		t.Fatalf("op %d d=%s, want op 9 true", e.Op, e.D)
	}
	// d=true: the session may resume, here on the same connection.
	cs[0].send(OpResume, map[string]any{"token": srv.Token(), "session_id": byShard[0], "seq": 1})
	cs[0].expect(OpDispatch, "RESUMED")

	if err := srv.SendInvalidSession(false, 1); err != nil {
		t.Fatal(err)
	}
	if e := cs[1].read(); e.Op != OpInvalidSession || string(e.D) != "false" {
		t.Fatalf("op %d d=%s, want op 9 false", e.Op, e.D)
	}
	if rec, _ := srv.Ledger().Session(byShard[1]); !rec.Ended {
		t.Fatal("op 9 d=false left the session alive")
	}
	// d=false: identify anew (after the identify window).
	fc.Advance(DefaultIdentifyWindow)
	cs[1].send(OpIdentify, identifyPayload(srv.Token(), [2]int{1, 2}, IntentGuilds, false))
	cs[1].expect(OpDispatch, "READY")
}

func TestFaultInvalidateAllSessions(t *testing.T) {
	srv, _, cs := twoShards(t, Options{})
	if err := srv.InvalidateAllSessions(); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if e := c.read(); e.Op != OpInvalidSession || string(e.D) != "false" {
			t.Fatalf("client %d: op %d d=%s, want op 9 false", i, e.Op, e.D)
		}
	}
	if s := srv.Sessions(); len(s) != 0 {
		t.Fatalf("sessions left: %+v", s)
	}
}

func TestFaultOutageRefuse(t *testing.T) {
	srv, fc, cs := twoShards(t, Options{})
	if err := srv.Outage(OutageRefuse, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := tryDial(srv, "/gateway", ""); err == nil {
		t.Fatal("dial succeeded during an outage")
	}
	// Connections already open are not touched.
	beat(cs[0])
	cs[0].expect(OpHeartbeatACK, "")
	if r := srv.Ledger().Refused(); len(r) != 1 || r[0].Mode != OutageRefuse {
		t.Fatalf("refused %+v", r)
	}
	fc.Advance(30 * time.Second)
	c, err := tryDial(srv, "/gateway", "")
	if err != nil {
		t.Fatalf("dial after the outage: %v", err)
	}
	_ = c.ws.Close()
}

func TestFaultOutageBlackhole(t *testing.T) {
	srv, _, _ := twoShards(t, Options{})
	if err := srv.Outage(OutageBlackhole, 0); err != nil {
		t.Fatal(err)
	}
	d := srv.Dialer()
	d.HandshakeTimeout = 300 * time.Millisecond
	_, _, err := d.Dial(srv.GatewayURL()+"?v=10&encoding=json", nil)
	var ne interface{ Timeout() bool }
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial into a black hole: %v, want a timeout", err)
	}
	if r := srv.Ledger().Refused(); len(r) != 1 || r[0].Mode != OutageBlackhole {
		t.Fatalf("refused %+v", r)
	}
	srv.ClearFaults()
	c, err := tryDial(srv, "/gateway", "")
	if err != nil {
		t.Fatalf("dial after the outage: %v", err)
	}
	_ = c.ws.Close()
}

func TestFaultStallDispatches(t *testing.T) {
	srv, fc, cs := twoShards(t, Options{})
	sid := ""
	for _, s := range srv.Sessions() {
		if s.Shard[0] == 0 {
			sid = s.ID
		}
	}
	if err := srv.StallDispatches(time.Minute, 0); err != nil {
		t.Fatal(err)
	}
	if err := srv.Inject(Fault{Kind: FaultDispatch, Count: 2, Shards: []int{0}}); err != nil {
		t.Fatal(err)
	}
	// ACKs go on, dispatches do not: the next frame is the ACK.
	beat(cs[0])
	if e := cs[0].read(); e.Op != OpHeartbeatACK {
		t.Fatalf("op %d %s during the stall, want the ACK only", e.Op, e.typ())
	}
	if u := srv.Ledger().Undelivered(sid); len(u) != 2 {
		t.Fatalf("undelivered %v, want the 2 stalled messages", u)
	}
	fc.Advance(time.Minute)
	a, b := cs[0].expect(OpDispatch, "MESSAGE_CREATE"), cs[0].expect(OpDispatch, "MESSAGE_CREATE")
	if b.seq() != a.seq()+1 {
		t.Fatalf("released out of order: %d then %d", a.seq(), b.seq())
	}
	// The ledger records a write once it returns, which may be after the
	// client read it.
	waitFor(t, "the ledger to record the released dispatches", func() bool { return len(srv.Ledger().Undelivered(sid)) == 0 })
}

func TestFaultShedIdentify(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
	if err := srv.ShedIdentify(0); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, srv, "/gateway", "")
	c.hello()
	c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
	if e := c.read(); e.Op != OpInvalidSession || string(e.D) != "false" {
		t.Fatalf("op %d d=%s, want op 9 false", e.Op, e.D)
	}
	if r := srv.Ledger().Identifies(); len(r) != 1 || r[0].Outcome != IdentifyShed {
		t.Fatalf("identifies %+v", r)
	}
	srv.ClearFaults()
	c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
	c.expect(OpDispatch, "READY")
}

func TestFaultGuildOutage(t *testing.T) {
	srv, fc, cs := twoShards(t, Options{Guilds: 4})
	want := len(guildsForShard(srv.Guilds(), [2]int{0, 2}))
	if err := srv.GuildOutage(10*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < want; i++ {
		e := cs[0].expect(OpDispatch, "GUILD_DELETE")
		if !strings.Contains(string(e.D), `"unavailable":true`) {
			t.Fatalf("GUILD_DELETE %s", e.D)
		}
	}
	fc.Advance(10 * time.Second)
	for i := 0; i < want; i++ {
		cs[0].expect(OpDispatch, "GUILD_CREATE")
	}
}

func TestFaultDispatch(t *testing.T) {
	srv, _, cs := twoShards(t, Options{Guilds: 4})
	if err := srv.Inject(Fault{Kind: FaultDispatch, Count: 3, Shards: []int{1}}); err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := 0; i < 3; i++ {
		e := cs[1].expect(OpDispatch, "MESSAGE_CREATE")
		if last != 0 && e.seq() != last+1 {
			t.Fatalf("sequence %d after %d", e.seq(), last)
		}
		last = e.seq()
	}
}

func TestFaultLatencySpikeDelaysGatewayFrames(t *testing.T) {
	srv, fc, cs := twoShards(t, Options{})
	if err := srv.LatencySpike(2*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	beat(cs[0])
	if !fc.BlockUntil(1, ioTimeout) {
		t.Fatal("the ACK was not held back")
	}
	if n := acksSent(srv, 1); n != 0 {
		t.Fatal("ACK sent during the spike")
	}
	fc.Advance(2 * time.Second)
	cs[0].expect(OpHeartbeatACK, "")
}

func restGet(srv *Server) (*http.Response, string, error) {
	req, _ := http.NewRequest(http.MethodGet, srv.RESTURL()+"/users/@me", nil)
	req.Header.Set("Authorization", "Bot "+srv.Token())
	resp, err := srv.Client().Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String(), nil
}

func TestFaultRESTLatencyAndSpike(t *testing.T) {
	for _, kind := range []FaultKind{FaultRESTLatency, FaultLatencySpike} {
		t.Run(string(kind), func(t *testing.T) {
			fc := clock.NewFake(time.Time{})
			srv := newTestServer(t, Options{Clock: fc})
			if err := srv.Inject(Fault{Kind: kind, Delay: 5 * time.Second}); err != nil {
				t.Fatal(err)
			}
			done := make(chan int, 1)
			go func() {
				resp, _, err := restGet(srv)
				if err != nil {
					done <- -1
					return
				}
				done <- resp.StatusCode
			}()
			if !fc.BlockUntil(1, ioTimeout) {
				t.Fatal("the request was not held")
			}
			select {
			case st := <-done:
				t.Fatalf("answered (%d) before the delay", st)
			default:
			}
			fc.Advance(5 * time.Second)
			select {
			case st := <-done:
				if st != 200 {
					t.Fatalf("status %d", st)
				}
			case <-time.After(ioTimeout):
				t.Fatal("no answer after the delay")
			}
		})
	}
}

func TestFaultRESTErrors(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{}), RESTBucketLimit: 1000, GlobalLimit: 1000})
	if err := srv.RESTErrors(1, 503, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if resp, _, err := restGet(srv); err != nil || resp.StatusCode != 503 {
			t.Fatalf("rate 1: %v %v", resp, err)
		}
	}
	srv.ClearFaults()
	if err := srv.RESTErrors(0.5, 0, 0); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := 0; i < 40; i++ {
		resp, _, err := restGet(srv)
		if err != nil {
			t.Fatal(err)
		}
		switch resp.StatusCode {
		case 500:
			failed++
		case 200:
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if failed == 0 || failed == 40 {
		t.Fatalf("rate 0.5 failed %d of 40", failed)
	}
	for _, r := range srv.Ledger().REST() {
		if r.Status >= 500 && r.Cause != "fault:rest_errors" {
			t.Fatalf("5xx without its cause: %+v", r)
		}
	}
}

func TestFaultRESTRateLimitStorm(t *testing.T) {
	tests := []struct {
		global bool
		retry  time.Duration
		scope  string
		body   string
	}{
		{false, 2 * time.Second, "shared", `"retry_after":2`},
		{true, 0, "global", `"retry_after":30`},
	}
	for _, tt := range tests {
		t.Run(tt.scope, func(t *testing.T) {
			srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
			if err := srv.RESTRateLimitStorm(tt.global, tt.retry, 30*time.Second); err != nil {
				t.Fatal(err)
			}
			resp, body, err := restGet(srv)
			if err != nil || resp.StatusCode != 429 || resp.Header.Get("X-RateLimit-Scope") != tt.scope ||
				(resp.Header.Get("X-RateLimit-Global") == "true") != tt.global || resp.Header.Get("Retry-After") == "" ||
				!strings.Contains(body, tt.body) {
				t.Fatalf("storm: %v %v %s", resp, err, body)
			}
			if v := srv.Ledger().Violations(); len(v) != 0 {
				t.Fatalf("a storm the server caused counted as client violations: %+v", v)
			}
		})
	}
}

func TestFaultCloudflareBan(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc})
	if err := srv.CloudflareBan(time.Minute); err != nil {
		t.Fatal(err)
	}
	resp, body, err := restGet(srv)
	if err != nil || resp.StatusCode != 429 || body != "error code: 1015" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("ban: %v %v %q", resp, err, body)
	}
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-ratelimit") {
			t.Fatalf("ban response carries %s", k)
		}
	}
	fc.Advance(time.Minute)
	if resp, _, err := restGet(srv); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the ban: %v %v", resp, err)
	}
}
