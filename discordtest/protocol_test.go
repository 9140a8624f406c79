package discordtest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/clock"
)

func TestIdentifyRulesCloseCodes(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		token   string // "" means the right one
		shard   [2]int
		intents any
		want    int // close code; 0 means READY
		outcome IdentifyOutcome
	}{
		{"accepted", Options{}, "", [2]int{0, 1}, IntentGuilds, 0, IdentifyAccepted},
		{"token with Bot prefix", Options{}, "Bot " + DefaultToken, [2]int{0, 1}, IntentGuilds, 0, IdentifyAccepted},
		{"bad token", Options{}, "nope", [2]int{0, 1}, IntentGuilds, CloseAuthenticationFailed, IdentifyBadToken},
		{"shard id out of range", Options{}, "", [2]int{2, 2}, IntentGuilds, CloseInvalidShard, IdentifyInvalidShard},
		{"zero shards", Options{}, "", [2]int{0, 0}, IntentGuilds, CloseInvalidShard, IdentifyInvalidShard},
		{"negative shard", Options{}, "", [2]int{-1, 2}, IntentGuilds, CloseInvalidShard, IdentifyInvalidShard},
		{"too many guilds", Options{Guilds: 5, MaxGuildsPerShard: 2}, "", [2]int{0, 1}, IntentGuilds, CloseShardingRequired, IdentifyShardingRequired},
		{"enough shards", Options{Guilds: 5, MaxGuildsPerShard: 4}, "", [2]int{0, 2}, IntentGuilds, 0, IdentifyAccepted},
		{"missing intents", Options{}, "", [2]int{0, 1}, nil, CloseInvalidIntents, IdentifyInvalidIntents},
		{"unknown intent bit", Options{}, "", [2]int{0, 1}, int64(1 << 30), CloseInvalidIntents, IdentifyInvalidIntents},
		{"privileged not enabled", Options{}, "", [2]int{0, 1}, IntentGuilds | IntentGuildMembers, CloseDisallowedIntents, IdentifyDisallowedIntents},
		{"message content not enabled", Options{PrivilegedIntents: IntentGuildMembers}, "", [2]int{0, 1}, IntentMessageContent, CloseDisallowedIntents, IdentifyDisallowedIntents},
		{"privileged enabled", Options{PrivilegedIntents: IntentsPrivileged}, "", [2]int{0, 1}, IntentsKnown, 0, IdentifyAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Clock = clock.NewFake(time.Time{})
			srv := newTestServer(t, tt.opts)
			c := dialRaw(t, srv, "/gateway", "")
			c.hello()
			tok := tt.token
			if tok == "" {
				tok = srv.Token()
			}
			d := map[string]any{"token": tok, "shard": tt.shard, "properties": map[string]string{}}
			if tt.intents != nil {
				d["intents"] = tt.intents
			}
			c.send(OpIdentify, d)
			if tt.want == 0 {
				c.expect(OpDispatch, "READY")
			} else if code := c.expectClose(); code != tt.want {
				t.Fatalf("close code %d, want %d", code, tt.want)
			}
			ids := srv.Ledger().Identifies()
			if len(ids) != 1 || ids[0].Outcome != tt.outcome {
				t.Fatalf("identify record %+v, want outcome %s", ids, tt.outcome)
			}
			if tt.want != 0 {
				conn, _ := srv.Ledger().Connection(1)
				waitFor(t, "the ledger to record the close", func() bool {
					conn, _ = srv.Ledger().Connection(1)
					return conn.Closed
				})
				if conn.CloseKind != ClosedByServer || conn.CloseCode != tt.want {
					t.Fatalf("ledger close %s %d", conn.CloseKind, conn.CloseCode)
				}
			}
		})
	}
}

func TestProtocolErrorsCloseCodes(t *testing.T) {
	big := `{"op":1,"d":null,"pad":"` + strings.Repeat("x", maxPayloadBytes) + `"}`
	tests := []struct {
		name  string
		query string
		steps func(c *rawClient, srv *Server)
		want  int
	}{
		{"unknown opcode", "", func(c *rawClient, _ *Server) { c.send(5, nil) }, CloseUnknownOpcode},
		{"server-only opcode", "", func(c *rawClient, _ *Server) { c.send(OpHeartbeatACK, nil) }, CloseUnknownOpcode},
		{"invalid JSON", "", func(c *rawClient, _ *Server) { c.sendRaw([]byte("{not json")) }, CloseDecodeError},
		{"payload over 4096 bytes", "", func(c *rawClient, _ *Server) { c.sendRaw([]byte(big)) }, CloseDecodeError},
		{"binary frame", "", func(c *rawClient, _ *Server) {
			_ = c.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		}, CloseDecodeError},
		{"presence before identify", "", func(c *rawClient, _ *Server) { c.send(OpPresenceUpdate, map[string]any{}) }, CloseNotAuthenticated},
		{"identify twice", "", func(c *rawClient, srv *Server) {
			c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
			c.expect(OpDispatch, "READY")
			c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
		}, CloseAlreadyAuthenticated},
		{"resume after identify", "", func(c *rawClient, srv *Server) {
			c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
			r := c.expect(OpDispatch, "READY")
			var rd readyData
			_ = json.Unmarshal(r.D, &rd)
			c.send(OpResume, map[string]any{"token": srv.Token(), "session_id": rd.SessionID, "seq": 1})
		}, CloseAlreadyAuthenticated},
		{"heartbeat with a string", "", func(c *rawClient, _ *Server) { c.send(OpHeartbeat, "seven") }, CloseDecodeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
			c := dialRaw(t, srv, "/gateway", tt.query)
			c.hello()
			tt.steps(c, srv)
			if code := c.expectClose(); code != tt.want {
				t.Fatalf("close code %d, want %d", code, tt.want)
			}
			v := srv.Ledger().Violations()
			if len(v) != 1 || v[0].Kind != ViolationProtocol {
				t.Fatalf("violations %+v, want one protocol violation", v)
			}
		})
	}
}

func TestConnectQueryChecks(t *testing.T) {
	tests := []struct {
		query string
		want  int
	}{
		{"v=8&encoding=json", CloseInvalidAPIVersion},
		{"v=11&encoding=json", CloseInvalidAPIVersion},
		{"v=abc", CloseInvalidAPIVersion},
		{"v=10&encoding=etf", CloseDecodeError},
		{"v=9&encoding=json", 0},
		{"encoding=json", 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
			c := dialRaw(t, srv, "/gateway", tt.query)
			if tt.want == 0 {
				c.hello()
				return
			}
			if code := c.expectClose(); code != tt.want {
				t.Fatalf("close code %d, want %d", code, tt.want)
			}
		})
	}
}

func TestWithheldHelloLeavesConnectionSilent(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
	if err := srv.WithholdHello(0); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, srv, "/gateway", "")
	c.expectNoFrame(200 * time.Millisecond)
	srv.ClearFaults()
	c2 := dialRaw(t, srv, "/gateway", "")
	c2.hello()
}

func TestSendLimitClosesWith4008(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, SendLimit: 5, SendLimitWindow: time.Minute})
	c := dialRaw(t, srv, "/gateway", "")
	c.hello()
	// Five frames, a window later five more: within the limit.
	for round := 0; round < 2; round++ {
		for i := 0; i < 5; i++ {
			c.send(OpHeartbeat, nil)
			c.expect(OpHeartbeatACK, "")
		}
		fc.Advance(time.Minute)
	}
	if v := srv.Ledger().Violations(); len(v) != 0 {
		t.Fatalf("violations within the limit: %+v", v)
	}
	for i := 0; i < 5; i++ {
		c.send(OpHeartbeat, nil)
	}
	c.send(OpHeartbeat, nil) // the sixth in one window
	if code := c.expectClose(); code != CloseRateLimited {
		t.Fatalf("close code %d, want 4008", code)
	}
	v := srv.Ledger().Violations()
	if len(v) != 1 || v[0].Kind != ViolationSendLimit {
		t.Fatalf("violations %+v", v)
	}
}

func TestIdentifyConcurrencyPerBucket(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, MaxConcurrency: 2, IdentifyWindow: 5 * time.Second, Guilds: -1})
	ident := func(shard int) evt {
		c := dialRaw(t, srv, "/gateway", "")
		c.hello()
		c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{shard, 4}, IntentGuilds, false))
		return c.read()
	}
	// Shards 0 and 1 are in different buckets: both start at once.
	for _, sh := range []int{0, 1} {
		if e := ident(sh); e.typ() != "READY" {
			t.Fatalf("shard %d: op %d, want READY", sh, e.Op)
		}
	}
	// Shard 2 shares bucket 0 with shard 0: op 9 d=false in the window.
	e := ident(2)
	if e.Op != OpInvalidSession || string(e.D) != "false" {
		t.Fatalf("shard 2 in the window: op %d d=%s, want op 9 false", e.Op, e.D)
	}
	v := srv.Ledger().Violations()
	if len(v) != 1 || v[0].Kind != ViolationIdentifyConcurrency || v[0].Shard != 2 {
		t.Fatalf("violations %+v", v)
	}
	fc.Advance(5 * time.Second)
	for _, sh := range []int{2, 3} {
		if e := ident(sh); e.typ() != "READY" {
			t.Fatalf("shard %d after the window: op %d, want READY", sh, e.Op)
		}
	}
	per := srv.Ledger().MaxIdentifiesPerWindow(5 * time.Second)
	if per[0] != 1 || per[1] != 1 {
		t.Fatalf("max identifies per window per bucket %v, want 1 each", per)
	}
	var outcomes []IdentifyOutcome
	for _, r := range srv.Ledger().Identifies() {
		outcomes = append(outcomes, r.Outcome)
	}
	want := []IdentifyOutcome{IdentifyAccepted, IdentifyAccepted, IdentifyRateLimited, IdentifyAccepted, IdentifyAccepted}
	if len(outcomes) != len(want) {
		t.Fatalf("outcomes %v", outcomes)
	}
	for i := range want {
		if outcomes[i] != want[i] {
			t.Fatalf("outcomes %v, want %v", outcomes, want)
		}
	}
}

func TestSessionStartBudget(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, SessionStartTotal: 2, MaxConcurrency: 16, SessionStartReset: time.Hour, Guilds: -1, HeartbeatTimeout: -1})
	budget := func() (remaining, resetAfter float64, status int) {
		var raw map[string]any
		resp := getJSON(t, srv.Client(), srv.RESTURL()+"/gateway/bot", "Bot "+srv.Token(), &raw)
		ssl, _ := raw["session_start_limit"].(map[string]any)
		r, _ := ssl["remaining"].(float64)
		a, _ := ssl["reset_after"].(float64)
		return r, a, resp.StatusCode
	}
	var live []*rawClient
	for sh := 0; sh < 2; sh++ {
		c := dialRaw(t, srv, "/gateway", "")
		c.hello()
		c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{sh, 3}, IntentGuilds, false))
		c.expect(OpDispatch, "READY")
		live = append(live, c)
		fc.Advance(time.Minute)
	}
	if rem, after, _ := budget(); rem != 0 || after != float64((58*time.Minute).Milliseconds()) {
		t.Fatalf("budget remaining %v reset_after %v, want 0 and 58 min", rem, after)
	}
	// The third IDENTIFY exceeds the budget: the token is reset, every
	// session ends and every connection closes with 4004.
	c := dialRaw(t, srv, "/gateway", "")
	c.hello()
	c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{2, 3}, IntentGuilds, false))
	for i, cl := range append(live, c) {
		if code := cl.expectClose(); code != CloseAuthenticationFailed {
			t.Fatalf("connection %d: close %d, want 4004", i, code)
		}
	}
	if _, _, st := budget(); st != 401 {
		t.Fatalf("REST after the token reset: %d, want 401", st)
	}
	v := srv.Ledger().Violations()
	if len(v) != 1 || v[0].Kind != ViolationSessionStartBudget {
		t.Fatalf("violations %+v", v)
	}
	for _, s := range srv.Ledger().Sessions() {
		if !s.Ended {
			t.Fatalf("session %s survived the token reset", s.ID)
		}
	}
	srv.ResetSessionStartLimit()
	if rem, _, st := budget(); st != 200 || rem != 2 {
		t.Fatalf("after ResetSessionStartLimit: %d remaining %v", st, rem)
	}
}

func TestSessionStartBudgetRefillsAfterReset(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, SessionStartTotal: 1, SessionStartReset: time.Hour, Guilds: -1, HeartbeatTimeout: -1})
	c := dialRaw(t, srv, "/gateway", "")
	c.identify(srv, [2]int{0, 1})
	fc.Advance(time.Hour)
	c2 := dialRaw(t, srv, "/gateway", "")
	c2.identify(srv, [2]int{0, 1})
	if v := srv.Ledger().Violations(); len(v) != 0 {
		t.Fatalf("violations %+v", v)
	}
}

// connectAndDrain identifies and reads every frame up to the last
// GUILD_CREATE; it returns the session ID and the last sequence seen.
func connectAndDrain(t *testing.T, srv *Server) (*rawClient, string, int64) {
	t.Helper()
	c := dialRaw(t, srv, "/gateway", "")
	r, e := c.identify(srv, [2]int{0, 1})
	last := e.seq()
	for i := 0; i < len(r.Guilds); i++ {
		last = c.expect(OpDispatch, "GUILD_CREATE").seq()
	}
	return c, r.SessionID, last
}

func emit(t *testing.T, srv *Server, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := srv.EmitMessage(srv.Guilds()[0].ChannelID, "m"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestResumeReplaysMissedDispatchesInOrder(t *testing.T) {
	tests := []struct {
		name     string
		readLive int // messages the client reads before it goes away
		missed   int // messages sent while it is away
		from     func(lastSeen int64) int64
	}{
		{"from the last seen", 3, 5, func(l int64) int64 { return l }},
		{"nothing missed", 3, 0, func(l int64) int64 { return l }},
		{"from an older seq", 3, 4, func(l int64) int64 { return l - 2 }},
		{"from zero", 0, 2, func(int64) int64 { return 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{}), SessionExpiry: time.Minute})
			c, sid, last := connectAndDrain(t, srv)
			emit(t, srv, tt.readLive)
			for i := 0; i < tt.readLive; i++ {
				last = c.expect(OpDispatch, "MESSAGE_CREATE").seq()
			}
			// A resumable close (not 1000/1001).
			_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, ""))
			waitFor(t, "the session to detach", func() bool { return !srv.Sessions()[0].Connected })
			emit(t, srv, tt.missed)
			top := srv.Sessions()[0].Seq
			from := tt.from(last)

			rc := dialRaw(t, srv, "/resume", "")
			rc.hello()
			rc.send(OpResume, map[string]any{"token": srv.Token(), "session_id": sid, "seq": from})
			for want := from + 1; want <= top; want++ {
				e := rc.read()
				if e.Op != OpDispatch || e.seq() != want {
					t.Fatalf("replay frame op %d s=%d %s, want s=%d", e.Op, e.seq(), e.typ(), want)
				}
			}
			e := rc.read()
			if e.typ() != "RESUMED" || e.seq() != top+1 {
				t.Fatalf("after the replay: %s s=%d, want RESUMED s=%d", e.typ(), e.seq(), top+1)
			}
			rec, _ := srv.Ledger().Session(sid)
			r := rec.Resumes[0]
			if r.FromSeq != from || int64(len(r.Replayed)) != top-from {
				t.Fatalf("resume record %+v", r)
			}
			rc.send(OpHeartbeat, top+1)
			rc.expect(OpHeartbeatACK, "")
			if u := srv.Ledger().Unacknowledged(sid); len(u) != 0 {
				t.Fatalf("unacknowledged %v", u)
			}
			if l := srv.Ledger().Lost(sid); len(l) != 0 {
				t.Fatalf("lost %v", l)
			}
		})
	}
}

func TestResumeFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, srv *Server, fc *clock.Fake, c *rawClient)
		seq      func(top int64) int64
		session  string // "" means the real one
		wantOp9  bool
		wantCode int
	}{
		{"seq beyond the session", func(*testing.T, *Server, *clock.Fake, *rawClient) {}, func(top int64) int64 { return top + 5 }, "", false, CloseInvalidSeq},
		{"negative seq", func(*testing.T, *Server, *clock.Fake, *rawClient) {}, func(int64) int64 { return -1 }, "", false, CloseInvalidSeq},
		{"expired session", func(_ *testing.T, _ *Server, fc *clock.Fake, _ *rawClient) {
			fc.Advance(time.Minute)
		}, func(top int64) int64 { return top }, "", false, CloseSessionTimedOut},
		{"unknown session", func(*testing.T, *Server, *clock.Fake, *rawClient) {}, func(top int64) int64 { return top }, "0123456789abcdef0123456789abcdef", true, 0},
		{"session invalidated", func(t *testing.T, srv *Server, _ *clock.Fake, _ *rawClient) {
			if err := srv.InvalidateAllSessions(); err != nil {
				t.Fatal(err)
			}
		}, func(top int64) int64 { return top }, "", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := clock.NewFake(time.Time{})
			srv := newTestServer(t, Options{Clock: fc, SessionExpiry: time.Minute})
			c, sid, top := connectAndDrain(t, srv)
			_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, ""))
			waitFor(t, "the session to detach", func() bool { return !srv.Sessions()[0].Connected })
			tt.setup(t, srv, fc, c)
			if tt.session != "" {
				sid = tt.session
			}
			rc := dialRaw(t, srv, "/resume", "")
			rc.hello()
			rc.send(OpResume, map[string]any{"token": srv.Token(), "session_id": sid, "seq": tt.seq(top)})
			if tt.wantOp9 {
				if e := rc.read(); e.Op != OpInvalidSession || string(e.D) != "false" {
					t.Fatalf("op %d d=%s, want op 9 false", e.Op, e.D)
				}
				return
			}
			if code := rc.expectClose(); code != tt.wantCode {
				t.Fatalf("close %d, want %d", code, tt.wantCode)
			}
		})
	}
}

func TestExpiredSessionIsLost(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, SessionExpiry: time.Minute})
	c, sid, last := connectAndDrain(t, srv)
	c.send(OpHeartbeat, last)
	c.expect(OpHeartbeatACK, "")
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, ""))
	waitFor(t, "the session to detach", func() bool { return !srv.Sessions()[0].Connected })
	emit(t, srv, 2)
	if l := srv.Ledger().Lost(sid); len(l) != 0 {
		t.Fatalf("a resumable session lost %v", l)
	}
	fc.Advance(time.Minute)
	waitFor(t, "the session to expire", func() bool { return len(srv.Sessions()) == 0 })
	rec, _ := srv.Ledger().Session(sid)
	if !rec.Ended || rec.EndReason != "expired" {
		t.Fatalf("session %+v", rec)
	}
	if l := srv.Ledger().Lost(sid); len(l) != 2 || l[0] != last+1 {
		t.Fatalf("lost %v, want the 2 messages after %d", l, last)
	}
}

func TestClientNormalCloseEndsSession(t *testing.T) {
	for _, code := range []int{websocket.CloseNormalClosure, websocket.CloseGoingAway} {
		srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
		c, sid, top := connectAndDrain(t, srv)
		_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""))
		waitFor(t, "the session to end", func() bool { return len(srv.Sessions()) == 0 })
		rc := dialRaw(t, srv, "/resume", "")
		rc.hello()
		rc.send(OpResume, map[string]any{"token": srv.Token(), "session_id": sid, "seq": top})
		if e := rc.read(); e.Op != OpInvalidSession || string(e.D) != "false" {
			t.Fatalf("close %d then RESUME: op %d d=%s, want op 9 false", code, e.Op, e.D)
		}
	}
}

func TestHeartbeatTimeoutCloses4009(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, HeartbeatInterval: time.Second, HeartbeatTimeout: 3 * time.Second})
	c, sid, _ := connectAndDrain(t, srv)
	fc.Advance(2 * time.Second)
	c.send(OpHeartbeat, 1) // resets the deadline
	c.expect(OpHeartbeatACK, "")
	fc.Advance(2 * time.Second)
	if v := srv.Ledger().Violations(); len(v) != 0 {
		t.Fatalf("violations before the deadline %+v", v)
	}
	fc.Advance(time.Second)
	if code := c.expectClose(); code != CloseSessionTimedOut {
		t.Fatalf("close %d, want 4009", code)
	}
	v := srv.Ledger().Violations()
	if len(v) != 1 || v[0].Kind != ViolationHeartbeatTimeout || v[0].SessionID != sid {
		t.Fatalf("violations %+v", v)
	}
	if rec, _ := srv.Ledger().Session(sid); !rec.Ended {
		t.Fatal("session survived a heartbeat timeout")
	}
}

func TestResumeFromBeyondReplayBuffer(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{}), ReplayBuffer: 3, SessionExpiry: time.Minute})
	c, sid, last := connectAndDrain(t, srv)
	c.send(OpHeartbeat, last)
	c.expect(OpHeartbeatACK, "")
	_ = c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, ""))
	waitFor(t, "the session to detach", func() bool { return !srv.Sessions()[0].Connected })
	emit(t, srv, 6)
	rc := dialRaw(t, srv, "/resume", "")
	rc.hello()
	rc.send(OpResume, map[string]any{"token": srv.Token(), "session_id": sid, "seq": last})
	if e := rc.read(); e.Op != OpInvalidSession || string(e.D) != "false" {
		t.Fatalf("op %d d=%s, want op 9 false", e.Op, e.D)
	}
	lost := srv.Ledger().Lost(sid)
	if len(lost) != 6 || lost[0] != last+1 || lost[5] != last+6 {
		t.Fatalf("lost %v, want %d..%d", lost, last+1, last+6)
	}
}

func TestResumeTakesOverALiveConnection(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
	c, sid, top := connectAndDrain(t, srv)
	rc := dialRaw(t, srv, "/resume", "")
	rc.hello()
	rc.send(OpResume, map[string]any{"token": srv.Token(), "session_id": sid, "seq": top})
	rc.expect(OpDispatch, "RESUMED")
	if _, err := c.next(ioTimeout); err == nil {
		t.Fatal("the old connection still delivers frames")
	}
	s := srv.Sessions()
	if len(s) != 1 || !s[0].Connected || s[0].ConnID != 2 {
		t.Fatalf("sessions %+v", s)
	}
}
