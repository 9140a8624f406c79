//go:build linux

package discordtest

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// stampedPair returns a tracked arrivalConn accepted by stampListener and
// the client's end of the connection, on loopback.
func stampedPair(t *testing.T) (*arrivalConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := stampListener(ln)
	t.Cleanup(func() { _ = sl.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	nc, err := sl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	ac, ok := nc.(*arrivalConn)
	if !ok {
		t.Fatalf("stampListener accepted a %T, want *arrivalConn", nc)
	}
	ac.track()
	_ = ac.SetReadDeadline(time.Now().Add(ioTimeout))
	return ac, client
}

// On loopback the kernel stamps a segment inside the client's write, so
// the stamp of bytes read after the write returned is no later than that
// return, however late the read. A read time would be later than it.
func TestArrivalConnKeepsTheKernelReceiveTime(t *testing.T) {
	ac, client := stampedPair(t)
	buf := make([]byte, 64)
	// The kernel starts stamping a moment after the first socket asks
	// for it: a bounded number of round trips until it does.
	stamped := false
	for i := 0; i < 2000 && !stamped; i++ {
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := ac.Read(buf); err != nil {
			t.Fatal(err)
		}
		_, stamped = ac.lastArrival()
		if !stamped {
			time.Sleep(time.Millisecond)
		}
	}
	if !stamped {
		t.Fatal("the kernel never attached a receive time (SO_TIMESTAMPNS)")
	}
	for i := range 20 {
		if _, err := client.Write([]byte("frame")); err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		n, err := ac.Read(buf)
		if err != nil || string(buf[:n]) != "frame" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		k, ok := ac.lastArrival()
		if !ok {
			t.Fatalf("round %d: no receive time once the kernel stamps", i)
		}
		// k is on the wall clock only: the comparison is of wall clocks.
		if k.After(sent) {
			t.Fatalf("round %d: receive time %v after the write returned at %v", i, k, sent)
		}
	}
	// The end of the stream reads as io.EOF.
	_ = client.Close()
	if n, err := ac.Read(buf); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("read after the client closed: %d, %v; want 0, EOF", n, err)
	}
}

// A tracked read honours the read deadline, as a plain TCP read does.
func TestArrivalConnReadDeadline(t *testing.T) {
	ac, _ := stampedPair(t)
	_ = ac.SetReadDeadline(time.Now().Add(-time.Second))
	_, err := ac.Read(make([]byte, 8))
	ne, ok := err.(net.Error)
	if !ok || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout net.Error", err)
	}
}

// The original problem, end to end: a client sends two IDENTIFYs of one
// bucket a whole window apart, but the fake reads the first only after
// the second (here its reader is still busy with the frame before, waiting
// for the ledger, which the test holds; on a busy machine it waits for a
// CPU). Timed when read or handled, the two looked closer than the window
// and the second was rate-limited as a violation; timed when they arrived,
// both are accepted.
func TestIdentifyTimedWhenItArrivedNotWhenRead(t *testing.T) {
	const window = 20 * time.Millisecond
	srv := newTestServer(t, Options{IdentifyWindow: window, MaxConcurrency: 1, HeartbeatTimeout: -1, Guilds: -1,
		SendLimit: 1 << 20})
	a := dialRaw(t, srv, "/gateway", "")
	b := dialRaw(t, srv, "/gateway", "")
	a.hello()
	b.hello()
	// Until the kernel stamps both connections' frames: heartbeats, a
	// bounded number of them.
	stamped := func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		n := 0
		for _, c := range srv.conns {
			if c.stamps == nil {
				t.Fatal("a gateway connection without receive times")
			}
			if _, ok := c.stamps.lastArrival(); ok {
				n++
			}
		}
		return n == 2
	}
	for i := 0; i < 2000 && !stamped(); i++ {
		for _, c := range []*rawClient{a, b} {
			c.send(OpHeartbeat, nil)
			c.expect(OpHeartbeatACK, "")
		}
		time.Sleep(time.Millisecond)
	}
	if !stamped() {
		t.Fatal("the kernel never attached receive times to the gateway connections")
	}

	ident := func(c *rawClient, shard int) time.Time {
		c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{shard, 2}, IntentGuilds, false))
		return time.Now()
	}
	srv.ledger.mu.Lock() // a reader now stops at its next frame's first ledger write
	a.send(OpHeartbeat, nil)
	// The IDENTIFY is read once the heartbeat before it is handled.
	sentA := ident(a, 0)
	// Spacing the sends (bounded by the window), not asserting a time.
	for time.Since(sentA) < window {
		time.Sleep(window - time.Since(sentA))
	}
	ident(b, 1) // shard 1 % max_concurrency 1: the same bucket as shard 0
	srv.ledger.mu.Unlock()

	for _, c := range []*rawClient{a, b} {
		e := c.read()
		for i := 0; i < 10 && e.Op == OpHeartbeatACK; i++ {
			e = c.read()
		}
		if e.typ() != "READY" {
			t.Fatalf("op %d %s, want READY: %s", e.Op, e.typ(), e.D)
		}
	}
	if v := srv.Ledger().Violations(); len(v) != 0 {
		t.Fatalf("violations %+v, want none: the IDENTIFYs were sent a window apart", v)
	}
	ids := srv.Ledger().Identifies()
	if len(ids) != 2 {
		t.Fatalf("identifies %+v", ids)
	}
	gap := ids[1].At.Sub(ids[0].At)
	if gap < 0 {
		gap = -gap
	}
	if gap < window {
		t.Fatalf("IDENTIFYs recorded %v apart, want at least the window %v", gap, window)
	}
	if per := srv.Ledger().MaxIdentifiesPerWindow(window); per[0] != 1 {
		t.Fatalf("max identifies per window %v, want 1", per)
	}
}

// The soak's false identify violation: the reader of one connection fell
// behind, and read its IDENTIFY in one go with the heartbeat the client
// sent a window later. The kernel gives a read the time of its last
// segment, so the IDENTIFY was timed by the heartbeat, next to another
// connection's IDENTIFY sent a whole window after the first. Its arrival
// is only known within bounds now (ArrivedAfter), and the identify check
// takes the bounds' most favourable arrangement: no violation.
func TestIdentifyReadWithALaterFrameIsNotTimedByIt(t *testing.T) {
	const window = 20 * time.Millisecond
	srv := newTestServer(t, Options{IdentifyWindow: window, MaxConcurrency: 1, HeartbeatTimeout: -1, Guilds: -1,
		SendLimit: 1 << 20})
	a := dialRaw(t, srv, "/gateway", "")
	b := dialRaw(t, srv, "/gateway", "")
	a.hello()
	b.hello()
	// The server's end of a client's connection, found by address.
	conn := func(c *rawClient) *gwConn {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for _, g := range srv.conns {
			if g.ws.RemoteAddr().String() == c.ws.LocalAddr().String() {
				return g
			}
		}
		return nil
	}
	ca, cb := conn(a), conn(b)
	if ca == nil || cb == nil || ca.stamps == nil || cb.stamps == nil {
		t.Fatal("gateway connections without receive times")
	}
	// Until the kernel stamps both connections' frames: heartbeats, a
	// bounded number of them.
	stamped := func() bool {
		_, okA := ca.stamps.lastArrival()
		_, okB := cb.stamps.lastArrival()
		return okA && okB
	}
	for i := 0; i < 2000 && !stamped(); i++ {
		for _, c := range []*rawClient{a, b} {
			c.send(OpHeartbeat, nil)
			c.expect(OpHeartbeatACK, "")
		}
		time.Sleep(time.Millisecond)
	}
	if !stamped() {
		t.Fatal("the kernel never attached receive times to the gateway connections")
	}

	// a's reader reads a heartbeat and stops at the ledger, which the
	// test holds: what a sends next waits in the socket.
	before, _ := ca.stamps.lastArrival()
	srv.ledger.mu.Lock()
	a.send(OpHeartbeat, nil)
	for i := 0; i < 10000; i++ {
		if k, _ := ca.stamps.lastArrival(); k.After(before) {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	if k, _ := ca.stamps.lastArrival(); !k.After(before) {
		srv.ledger.mu.Unlock()
		t.Fatal("a's reader never read the heartbeat")
	}
	a.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 2}, IntentGuilds, false))
	sentA := time.Now()
	// Spacing the sends (bounded by the window), not asserting a time.
	for time.Since(sentA) < window {
		time.Sleep(window - time.Since(sentA))
	}
	a.send(OpHeartbeat, nil) // read with a's IDENTIFY, in one read
	b.send(OpIdentify, identifyPayload(srv.Token(), [2]int{1, 2}, IntentGuilds, false))
	srv.ledger.mu.Unlock()

	for _, c := range []*rawClient{a, b} {
		e := c.read()
		for i := 0; i < 10 && e.Op == OpHeartbeatACK; i++ {
			e = c.read()
		}
		if e.typ() != "READY" {
			t.Fatalf("op %d %s, want READY: %s", e.Op, e.typ(), e.D)
		}
	}
	if v := srv.Ledger().Violations(); len(v) != 0 {
		t.Fatalf("violations %+v, want none: the IDENTIFYs were sent a window apart", v)
	}
	ids := srv.Ledger().Identifies()
	if len(ids) != 2 {
		t.Fatalf("identifies %+v", ids)
	}
	for _, id := range ids {
		if id.ConnID != ca.id {
			continue
		}
		// Its bounds hold its send (a wall-clock comparison, as the
		// kernel's times are).
		if id.ArrivedAfter.IsZero() || id.ArrivedAfter.After(sentA) || id.At.Before(id.ArrivedAfter) {
			t.Fatalf("a's IDENTIFY arrived between %v and %v, sent by %v", id.ArrivedAfter, id.At, sentA)
		}
	}
	if per := srv.Ledger().MaxIdentifiesPerWindow(window); per[0] != 1 {
		t.Fatalf("max identifies per window %v, want 1", per)
	}
}

// The stamping socket lives as long as the servers that need it: a
// process that closed its fake servers holds no descriptor of theirs (the
// chaos tests compare open files before and after a run).
func TestStampingSocketClosedWithTheLastServer(t *testing.T) {
	held := func() (int, int) {
		stamping.mu.Lock()
		defer stamping.mu.Unlock()
		return stamping.users, stamping.fd
	}
	users0, _ := held()
	a, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if users, fd := held(); users != users0+2 || fd < 0 {
		t.Fatalf("two servers open: %d holds, socket %d; want %d holds and a socket", users, fd, users0+2)
	}
	_ = a.Close()
	if users, fd := held(); users != users0+1 || fd < 0 {
		t.Fatalf("one server open: %d holds, socket %d", users, fd)
	}
	_ = b.Close()
	_ = b.Close() // a second Close gives nothing back twice
	if users, fd := held(); users != users0 || (users0 == 0 && fd != -1) {
		t.Fatalf("servers closed: %d holds (want %d), socket %d", users, users0, fd)
	}
}
