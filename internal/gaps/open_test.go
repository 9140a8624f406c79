package gaps

import (
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// hangBound is how long a test watches a call that should have returned
// long before. It asserts a hang, not a speed: a slow machine only makes
// the hang look the same. helloBound is ten times the handshake deadline
// lifeline's own test uses (300 ms).
const (
	hangBound  = 5 * time.Second
	helloBound = 3 * time.Second
)

// TestReconnectDuringOpenDeadlocks: Discord may send op 7 RECONNECT at any
// time, also between IDENTIFY and READY. discordgo v0.29.0's Open holds the
// Session's lock while it reads the packet after IDENTIFY; onEvent answers
// op 7 with CloseWithCode, which asks for the same lock. The goroutine
// waits for itself: Open never returns, nothing is closed, nothing is
// retried, and the Session's lock stays taken, so every later Open, Close
// or status update of that Session blocks as well (discordgo issue #513).
//
// The goroutine dump proves the self-deadlock (the goroutine that holds the
// lock in Open is the one parked in CloseWithCode's Lock); the bound only
// shows it from the outside.
//
// lifeline: discordgo never reads Discord's gateway there. core/gateway's
// Conn takes op 7 at any point of the handshake and ends the attempt
// (TestConnEnds in core/gateway), and every Open runs under a watchdog that
// abandons a hung Session and starts a fresh one
// (TestWatchdogAbandonsHungDiscordgoOpen in core/conn).
func TestReconnectDuringOpenDeadlocks(t *testing.T) {
	t.Parallel()
	g := newScripted(t, func(n int, c *scriptConn) {
		c.hello(41250)
		if c.readOp() == discordtest.OpIdentify {
			c.send(`{"op":7,"d":null}`) // before READY
		}
		c.hold()
	})
	s := g.session(t)

	selfDeadlocked := func(st string) bool {
		return waitsForWriteLock(st) && inFunc(st, "Open") && inFunc(st, "onEvent") && inFunc(st, "CloseWithCode")
	}
	before := countGoroutines(selfDeadlocked) // earlier runs of this test leave theirs behind
	opened := make(chan error, 1)
	start := time.Now()
	go func() { opened <- s.Open() }()

	eventually(t, "Open to park in CloseWithCode's Lock", func() bool { return countGoroutines(selfDeadlocked) > before })
	stacks := findGoroutines(selfDeadlocked)
	t.Logf("discordgo's Open, after op 7, waits for the lock it holds itself:\n%s", stacks[len(stacks)-1])

	select {
	case err := <-opened:
		t.Fatalf("Open returned (%v) after op 7 during the handshake; the deadlock is gone", err)
	case <-time.After(hangBound):
	}
	if s.TryRLock() {
		s.RUnlock()
		t.Fatal("the Session's lock is free: Open no longer holds it")
	}
	conns := g.connections()
	if len(conns) != 1 {
		t.Fatalf("%d gateway connections, want 1 (discordgo must neither close nor retry)", len(conns))
	}
	if conns[0].clientClose != 0 {
		t.Fatalf("discordgo closed with %d: it reached the close it wanted", conns[0].clientClose)
	}
	t.Logf("after %v: Open has not returned, the Session's lock is held, the connection was neither closed (op 7 asks for a close and a RESUME) nor replaced; ops the client sent: %v",
		time.Since(start).Round(time.Millisecond), conns[0].ops)
	// The test ends here; the deadlocked goroutine cannot be recovered and
	// stays parked until the test binary exits.
}

// TestHelloWithheldHangsReconnect: when HELLO never comes (Discord's load
// shedding), discordgo's Open waits in a read without a deadline, holding
// the Session's lock, until the server itself closes the connection. Here
// the hang is inside discordgo's own reconnect after a dropped connection,
// the situation of lifeline's test; a first Open hangs the same way.
//
// lifeline: TestHelloWithheldDoesNotHang (core/conn/integration2_test.go)
// gives up on the handshake after HandshakeTimeout (300 ms there), tries
// again and RESUMEs once HELLO comes back.
func TestHelloWithheldHangsReconnect(t *testing.T) {
	t.Parallel()
	const interval = time.Second // long: keeps discordgo's heartbeat out of the drop
	srv := newFake(t, discordtest.Options{Scale: 200, HeartbeatInterval: interval,
		HeartbeatTimeout: 10 * time.Second, SessionExpiry: 30 * time.Second})
	s := newSession(t, srv)
	ev := newEventLog(s)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "READY", 1, isReady)
	afterHeartbeat(t, srv, 1)

	if err := srv.WithholdHello(0); err != nil { // until ClearFaults
		t.Fatal(err)
	}
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "discordgo's reconnect to dial", func() bool { return len(connsAfter(srv, 1)) > 0 })
	hung := connsAfter(srv, 1)[0]
	time.Sleep(helloBound) // asserting a hang: nothing to wait for but time

	c, _ := srv.Ledger().Connection(hung.ID)
	if c.Closed || len(c.Frames) != 0 {
		t.Fatalf("connection %d: closed=%v, %d frames; discordgo gave up on the missing HELLO", c.ID, c.Closed, len(c.Frames))
	}
	if n := len(connsAfter(srv, hung.ID)); n != 0 {
		t.Fatalf("%d further connections: discordgo gave up on the missing HELLO", n)
	}
	if s.TryRLock() {
		s.RUnlock()
		t.Fatal("the Session's lock is free: the reconnect's Open does not hold it")
	}
	waited := time.Since(c.OpenedAt)
	t.Logf("reconnect's Open has waited %v (%.1f heartbeat intervals) for HELLO on connection %d, holding the Session's lock, with no deadline",
		waited.Round(time.Millisecond), intervals(waited, interval), c.ID)

	// Only the server can end it: let HELLO through again and cut the
	// hung connection. discordgo's reconnect loop then RESUMEs.
	srv.ClearFaults()
	if err := srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	ev.waitFor(t, "RESUMED", 1, isResumed)
	c, _ = srv.Ledger().Connection(hung.ID)
	t.Logf("Open returned only when the server dropped connection %d (%s), %v after it opened",
		c.ID, c.CloseKind, c.ClosedAt.Sub(c.OpenedAt).Round(time.Millisecond))
	last := srv.Ledger().Connections()
	afterHeartbeat(t, srv, last[len(last)-1].ID)
	_ = s.Close()
}
