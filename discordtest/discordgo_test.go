package discordtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// newDiscordgo returns a discordgo v0.29.0 Session pointed at srv through
// its own http.Client and Dialer: no discordgo package variable changes.
// discordgo asks GET /gateway (on discord.com, rewritten to the fake) for
// the gateway URL, so the WebSocket goes to the fake too.
func newDiscordgo(t *testing.T, srv *Server) *discordgo.Session {
	t.Helper()
	sess, err := discordgo.New("Bot " + srv.Token())
	if err != nil {
		t.Fatal(err)
	}
	sess.Client = srv.Client()
	sess.Dialer = srv.Dialer()
	sess.LogLevel = -1 // discordgo's own logging is noise here
	return sess
}

func TestDiscordgoReadyHeartbeatAndResumeWithoutLoss(t *testing.T) {
	srv := newTestServer(t, Options{
		// Long enough that discordgo's heartbeat goroutine stays idle
		// through a reconnect even on a loaded machine (see below).
		HeartbeatInterval: 1500 * time.Millisecond,
		HeartbeatTimeout:  ioTimeout,
		SessionExpiry:     time.Minute,
		Guilds:            2,
	})
	defer func() {
		if t.Failed() {
			t.Log(dumpLedger(srv))
		}
	}()
	sess := newDiscordgo(t, srv)
	sess.ShouldReconnectOnError = true // discordgo's own reconnect does the RESUME here
	sess.SyncEvents = true             // handlers run in arrival order

	var mu sync.Mutex
	var seen []int64
	ready := make(chan struct{}, 1)
	resumed := make(chan struct{}, 1)
	sess.AddHandler(func(_ *discordgo.Session, e *discordgo.Event) {
		if e.Operation != 0 {
			return
		}
		mu.Lock()
		seen = append(seen, e.Sequence)
		mu.Unlock()
		ch := ready
		if e.Type == "RESUMED" {
			ch = resumed
		} else if e.Type != "READY" {
			return
		}
		select {
		case ch <- struct{}{}:
		default: // a second READY is reported by the ledger dump
		}
	})
	if err := sess.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	select {
	case <-ready:
	case <-time.After(ioTimeout):
		t.Fatal("no READY")
	}
	sessions := srv.Ledger().Sessions()
	if len(sessions) != 1 {
		t.Fatalf("ledger has %d sessions, want 1", len(sessions))
	}
	sid := sessions[0].ID
	// Heartbeats: wait for the client to acknowledge everything sent so
	// far, which it does only through heartbeats, and for an ACK back.
	waitFor(t, "heartbeat acknowledging every dispatch", func() bool {
		return len(srv.Ledger().Unacknowledged(sid)) == 0
	})
	waitFor(t, "a heartbeat ACK", func() bool {
		c, _ := srv.Ledger().Connection(sessions[0].Connections[0])
		for _, f := range c.Frames {
			if f.Dir == Sent && f.Op == OpHeartbeatACK {
				return true
			}
		}
		return false
	})

	// Drop the TCP connection, then post messages while the client is
	// away: they must come back through RESUME. The drop follows a fresh
	// heartbeat so that discordgo's heartbeat goroutine is idle: when it
	// ticks during discordgo's reconnect it closes the new connection with
	// 1000 (the stale-heartbeat race of discordgo v0.29.0 that lifeline's
	// core works around), which would end the session.
	afterHeartbeat(t, srv, sessions[0].Connections[0])
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	ch := srv.Guilds()[0].ChannelID
	for i := 0; i < 5; i++ {
		if _, err := srv.EmitMessage(ch, "while you were away"); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-resumed:
	case <-time.After(ioTimeout):
		t.Fatal("no RESUMED")
	}
	waitFor(t, "heartbeat acknowledging the replay", func() bool {
		return len(srv.Ledger().Unacknowledged(sid)) == 0
	})
	// (That wait ended at a heartbeat, so discordgo's heartbeat goroutine
	// is idle for the close below.)
	if err := sess.CloseWithCode(4000); err != nil { // resumable close: the session stays
		t.Fatal(err)
	}

	// The ledger records a write once it returns, which may be after the
	// client read it: wait until every dispatch shows as written.
	waitFor(t, "the ledger to record every write", func() bool { return len(srv.Ledger().Undelivered(sid)) == 0 })
	rec, _ := srv.Ledger().Session(sid)
	if len(rec.Connections) != 2 {
		t.Fatalf("session ran on %d connections, want 2 (identify, resume)", len(rec.Connections))
	}
	if len(rec.Resumes) != 1 {
		t.Fatalf("%d resumes, want 1", len(rec.Resumes))
	}
	r := rec.Resumes[0]
	if len(r.Replayed) < 5 {
		t.Fatalf("replayed %v, want at least the 5 messages sent while away", r.Replayed)
	}
	for i, q := range r.Replayed {
		if q != r.FromSeq+int64(i)+1 {
			t.Fatalf("replay %v is not in order from %d", r.Replayed, r.FromSeq)
		}
	}
	// The replayed frames went out on the resume connection, in order,
	// marked as replays, before RESUMED.
	conn, _ := srv.Ledger().Connection(r.ConnID)
	var order []int64
	for _, f := range conn.Frames {
		if f.Dir == Sent && f.Op == OpDispatch {
			order = append(order, f.Seq)
			if f.Type == "RESUMED" {
				break
			}
			if !f.Replay {
				t.Fatalf("seq %d before RESUMED not marked as replay", f.Seq)
			}
		}
	}
	if len(order) != len(r.Replayed)+1 {
		t.Fatalf("resume connection sent %v before RESUMED, want %v then RESUMED", order, r.Replayed)
	}
	if lost := srv.Ledger().Lost(sid); len(lost) != 0 {
		t.Fatalf("lost %v", lost)
	}
	if und := srv.Ledger().Undelivered(sid); len(und) != 0 {
		t.Fatalf("undelivered %v", und)
	}
	// The client saw every sequence exactly once, in order.
	mu.Lock()
	defer mu.Unlock()
	last := rec.Dispatches[len(rec.Dispatches)-1].Seq
	if int64(len(seen)) != last {
		t.Fatalf("client saw %d dispatches %v, want 1..%d", len(seen), seen, last)
	}
	for i, q := range seen {
		if q != int64(i)+1 {
			t.Fatalf("client saw %v, want 1..%d in order", seen, last)
		}
	}
	if v := srv.Ledger().Violations(); len(v) != 0 {
		t.Fatalf("violations: %+v", v)
	}
}

// afterHeartbeat returns once the client sends a heartbeat on conn after
// the call began.
func afterHeartbeat(t *testing.T, srv *Server, conn int64) {
	t.Helper()
	count := func() int {
		c, _ := srv.Ledger().Connection(conn)
		n := 0
		for _, f := range c.Frames {
			if f.Dir == Received && f.Op == OpHeartbeat {
				n++
			}
		}
		return n
	}
	before := count()
	waitFor(t, "a fresh heartbeat", func() bool { return count() > before })
}

// dumpLedger summarises the ledger for a failure message.
func dumpLedger(srv *Server) string {
	var b strings.Builder
	for _, c := range srv.Ledger().Connections() {
		fmt.Fprintf(&b, "conn %d %s shard %v sessions %v closed=%v %s %d\n", c.ID, c.Path, c.Shard, c.SessionIDs, c.Closed, c.CloseKind, c.CloseCode)
		for _, f := range c.Frames {
			fmt.Fprintf(&b, "  %s %s op %d s=%d %s replay=%v\n", f.At.Format("15:04:05.000"), f.Dir, f.Op, f.Seq, f.Type, f.Replay)
		}
	}
	for _, s := range srv.Ledger().Sessions() {
		fmt.Fprintf(&b, "session %s conns %v ended=%v %q resumes %+v\n", s.ID, s.Connections, s.Ended, s.EndReason, s.Resumes)
	}
	for _, r := range srv.Ledger().Identifies() {
		fmt.Fprintf(&b, "identify %+v\n", r)
	}
	for _, v := range srv.Ledger().Violations() {
		fmt.Fprintf(&b, "violation %+v\n", v)
	}
	return b.String()
}

// TestDiscordgoFollowsReconnect shows op 7 from the client's side: the
// real discordgo closes with 1012 (resumable) and RESUMEs on a new
// connection.
func TestDiscordgoFollowsReconnect(t *testing.T) {
	srv := newTestServer(t, Options{HeartbeatInterval: 1500 * time.Millisecond, HeartbeatTimeout: ioTimeout, SessionExpiry: time.Minute})
	defer func() {
		if t.Failed() {
			t.Log(dumpLedger(srv))
		}
	}()
	sess := newDiscordgo(t, srv)
	sess.ShouldReconnectOnError = true
	ready := make(chan struct{}, 1)
	resumed := make(chan struct{}, 1)
	sess.AddHandler(func(*discordgo.Session, *discordgo.Ready) {
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	sess.AddHandler(func(*discordgo.Session, *discordgo.Resumed) {
		select {
		case resumed <- struct{}{}:
		default:
		}
	})
	if err := sess.Open(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(ioTimeout):
		t.Fatal("no READY")
	}
	afterHeartbeat(t, srv, 1) // keep discordgo's heartbeat goroutine idle
	if err := srv.SendReconnect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resumed:
	case <-time.After(ioTimeout):
		t.Fatal("no RESUMED after op 7")
	}
	first, _ := srv.Ledger().Connection(1)
	if first.CloseKind != ClosedByClient || first.CloseCode != 1012 {
		t.Fatalf("first connection ended %s %d, want the client's 1012", first.CloseKind, first.CloseCode)
	}
	s := srv.Ledger().Sessions()
	if len(s) != 1 || len(s[0].Resumes) != 1 || s[0].Ended {
		t.Fatalf("sessions %+v", s)
	}
	afterHeartbeat(t, srv, s[0].Resumes[0].ConnID)
	_ = sess.CloseWithCode(4000)
}
