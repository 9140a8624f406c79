package gaps

import (
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// TestStaleHeartbeatReopensClosedSession: discordgo v0.29.0's heartbeat
// goroutine stops when it finds the connection's listening channel closed,
// but it looks only between two heartbeats. If its ticker fired just before
// Close took the Session's lock, it is past that check: it waits for the
// lock while Close runs (Close holds it for a whole second, sleeping), then
// writes its heartbeat on the connection Close has just closed. It answers
// the failed write as it answers a dead connection: Close and reconnect()
// on the Session. After a bot's Close, the Session opens a new connection
// by itself. (After a quick Close and Open, a RESUME by hand, the stale
// Close can instead hit the new connection with code 1000, which ends the
// session, or make the bot's Open fail with ErrWSAlreadyOpen; which of
// them happens is a race between two lock acquisitions, so it is not
// staged here.)
//
// The natural window is small (between the tick and the lock), so the test
// holds it open with the Session's own exported lock, which any handler
// could take: a read lock taken before the bot's Close makes Close wait as
// a writer, the heartbeat goroutine's next tick then parks in RLock behind
// it (the goroutine dump confirms both), and releasing the read lock lets
// the sequence run as it would have. From there the outcome is certain:
// the bot calls Close once and never Open, and the fake records a new
// connection, a new IDENTIFY and a new session, and the bot's handlers get
// Disconnect twice.
//
// Not parallel: it recognises discordgo's goroutines by their stacks, and
// other tests' Sessions must not be running beside it.
//
// lifeline: no dedicated test yet; the path is closed by construction.
// discordgo never talks to Discord's gateway: core/gateway's relay keeps
// the Session on one in-memory connection while lifeline RESUMEs or
// re-IDENTIFYs upstream (TestResumableFaultsResumeWithoutLoss in
// core/conn/integration_test.go recovers that way), and writes on a
// connection lifeline has ended are swallowed (core/gateway/pipe.go), so
// a stale goroutine's write never fails into Close.
func TestStaleHeartbeatReopensClosedSession(t *testing.T) {
	const interval = time.Second // ample time to set the stage between two ticks
	srv := newFake(t, discordtest.Options{Scale: 200, HeartbeatInterval: interval,
		HeartbeatTimeout: 10 * time.Second, SessionExpiry: 30 * time.Second})
	s := newSession(t, srv)
	ev := newEventLog(s)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "READY", 1, isReady)

	heartbeatIdle := func(st string) bool { return inFunc(st, "heartbeat") && waitReason(st) == "select" }
	heartbeatParked := func(st string) bool { return inFunc(st, "heartbeat") && waitsForReadLock(st) }
	botClosing := func(st string) bool {
		return inFunc(st, "Close") && inFunc(st, "CloseWithCode") && waitsForWriteLock(st) &&
			!inFunc(st, "heartbeat") && !inFunc(st, "listen") && !inFunc(st, "onEvent")
	}
	parkedBefore, closingBefore := countGoroutines(heartbeatParked), countGoroutines(botClosing)

	// Right after a heartbeat, the goroutine sleeps for an interval.
	afterHeartbeat(t, srv, 1)
	eventually(t, "the heartbeat goroutine to wait for its next tick", func() bool { return countGoroutines(heartbeatIdle) > 0 })
	s.RLock()
	unlock := sync.OnceFunc(s.RUnlock)
	defer unlock() // if a wait below fails
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }() // the bot's one and only Close
	eventually(t, "the bot's Close to wait for the lock", func() bool { return countGoroutines(botClosing) > closingBefore })
	if countGoroutines(heartbeatIdle) == 0 {
		t.Fatalf("the heartbeat goroutine left its wait before Close was queued (the machine stalled for most of %v); stacks:\n%v",
			interval, findGoroutines(func(st string) bool { return inFunc(st, "heartbeat") }))
	}
	eventually(t, "the heartbeat goroutine's next tick to park in RLock", func() bool { return countGoroutines(heartbeatParked) > parkedBefore })
	unlock()

	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	first, _ := srv.Ledger().Connection(1)
	t.Logf("the bot's Close returned; connection 1 ended %s %d", first.CloseKind, first.CloseCode)

	// From here on nobody but discordgo's stale goroutine acts.
	eventually(t, "a connection the bot did not ask for", func() bool { return len(connsAfter(srv, 1)) > 0 })
	ev.waitFor(t, "READY on it", 2, isReady)
	ev.waitFor(t, "the second Disconnect", 2, isDisconnect)

	again := connsAfter(srv, 1)
	c := again[0]
	var ops []int
	for _, f := range c.Frames {
		if f.Dir == discordtest.Received && f.Op != discordtest.OpHeartbeat {
			ops = append(ops, f.Op)
		}
	}
	sessions := srv.Ledger().Sessions()
	identified := false
	for _, r := range srv.Ledger().Identifies() {
		identified = identified || (r.ConnID == c.ID && r.Outcome == discordtest.IdentifyAccepted)
	}
	t.Logf("%v after the bot's close frame, discordgo opened connection %d by itself (client ops %v), sessions %v; the bot's handlers got Disconnect %d times for one Close",
		c.OpenedAt.Sub(first.ClosedAt).Round(time.Millisecond), c.ID, ops, c.SessionIDs, ev.count(isDisconnect))
	if first.CloseKind != discordtest.ClosedByClient || first.CloseCode != 1000 {
		t.Fatalf("connection 1 ended %s %d, want the bot's 1000", first.CloseKind, first.CloseCode)
	}
	if len(sessions) != 2 || !identified || c.Closed {
		t.Fatalf("%d sessions, IDENTIFY accepted on connection %d: %v, closed=%v: want a second live session", len(sessions), c.ID, identified, c.Closed)
	}
	if n := len(again); n != 1 {
		t.Fatalf("%d connections after the Close, want 1", n)
	}

	// Put the resurrected Session down again, away from a tick.
	afterHeartbeat(t, srv, c.ID)
	_ = s.Close()
}
