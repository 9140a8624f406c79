package discordtest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// connectShard dials, identifies as shard [id, n], reads READY and sends
// one heartbeat, returning an error instead of failing (it runs off the
// test goroutine).
func connectShard(srv *Server, id, n int) (*rawClient, error) {
	c, err := tryDial(srv, "/gateway", "")
	if err != nil {
		return nil, fmt.Errorf("shard %d: dial: %w", id, err)
	}
	fail := func(format string, args ...any) (*rawClient, error) {
		_ = c.ws.Close()
		return nil, fmt.Errorf("shard %d: "+format, append([]any{id}, args...)...)
	}
	if e, err := c.next(ioTimeout); err != nil || e.Op != OpHello {
		return fail("HELLO: op %d %v", e.Op, err)
	}
	send := func(op int, d any) error {
		b, _ := json.Marshal(map[string]any{"op": op, "d": d})
		_ = c.ws.SetWriteDeadline(time.Now().Add(ioTimeout))
		return c.ws.WriteMessage(1, b)
	}
	if err := send(OpIdentify, identifyPayload(srv.Token(), [2]int{id, n}, IntentGuilds, false)); err != nil {
		return fail("IDENTIFY: %v", err)
	}
	e, err := c.next(ioTimeout)
	if err != nil || e.typ() != "READY" {
		return fail("READY: op %d %s %v", e.Op, e.typ(), err)
	}
	if err := send(OpHeartbeat, e.seq()); err != nil {
		return fail("HEARTBEAT: %v", err)
	}
	for i := 0; i < 100; i++ {
		e, err := c.next(ioTimeout)
		if err != nil {
			return fail("ACK: %v", err)
		}
		if e.Op == OpHeartbeatACK {
			return c, nil
		}
	}
	return fail("no ACK")
}

// connectMany connects n shards with at most par dials in flight.
func connectMany(srv *Server, n, par int) ([]*rawClient, []error) {
	clients := make([]*rawClient, n)
	errs := make([]error, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			clients[i], errs[i] = connectShard(srv, i, n)
		}(i)
	}
	wg.Wait()
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return clients, out
}

func manyOptions(n int) Options {
	return Options{
		MaxConcurrency:    n, // one shard per identify bucket: all start at once
		SessionStartTotal: 10 * n,
		Guilds:            -1,
		HeartbeatInterval: time.Minute,
		HeartbeatTimeout:  -1,
	}
}

func TestHundredConcurrentGatewayConnections(t *testing.T) {
	const n = 100
	srv := newTestServer(t, manyOptions(n))
	clients, errs := connectMany(srv, n, 25)
	if len(errs) > 0 {
		t.Fatalf("%d of %d connections failed; first: %v", len(errs), n, errs[0])
	}
	if got := srv.ActiveConnections(); got != n {
		t.Fatalf("%d connections open, want %d", got, n)
	}
	if v := srv.Ledger().Violations(); len(v) != 0 {
		t.Fatalf("violations: %+v", v[0])
	}
	per := srv.Ledger().ConnectionsPerShard()
	for i := 0; i < n; i++ {
		if per[i] != 1 {
			t.Fatalf("shard %d has %d connections", i, per[i])
		}
	}
	// Every session gets a dispatch, and a mass disconnect reaches all.
	got, err := srv.Dispatch(-1, "TYPING_START", map[string]any{"channel_id": "1", "user_id": "2"})
	if err != nil || got != n {
		t.Fatalf("Dispatch reached %d sessions (%v), want %d", got, err, n)
	}
	for i, c := range clients {
		e, err := c.next(ioTimeout)
		if err != nil || e.typ() != "TYPING_START" || e.seq() != 2 {
			t.Fatalf("client %d: %s s=%d %v", i, e.typ(), e.seq(), err)
		}
	}
	if err := srv.MassDisconnect(0); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if _, err := c.next(ioTimeout); err == nil {
			t.Fatalf("client %d still connected", i)
		}
	}
	waitFor(t, "every connection to end", func() bool { return srv.ActiveConnections() == 0 })
}

// BenchmarkThousandConcurrentGatewayConnections opens 1,000 gateway
// connections at once (50 dials in flight), each identifying as its own
// shard and heartbeating, and holds them together. It reports connections
// per second of setup.
func BenchmarkThousandConcurrentGatewayConnections(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		srv, err := NewServer(manyOptions(n))
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		clients, errs := connectMany(srv, n, 50)
		elapsed := time.Since(start)
		if len(errs) > 0 {
			_ = srv.Close()
			b.Fatalf("%d of %d connections failed; first: %v", len(errs), n, errs[0])
		}
		if got := srv.ActiveConnections(); got != n {
			b.Fatalf("%d connections open, want %d", got, n)
		}
		if v := srv.Ledger().Violations(); len(v) != 0 {
			b.Fatalf("violations: %+v", v[0])
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "conns/s")
		_ = srv.Close()
		for _, c := range clients {
			_ = c.ws.Close()
		}
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv, err := NewServer(Options{Scale: 100, DispatchInterval: 10 * time.Millisecond, MaxConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	clients, errs := connectMany(srv, 2, 2)
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	if resp, _, err := restGet(srv); err != nil || resp.StatusCode != 200 {
		t.Fatalf("REST: %v %v", resp, err)
	}
	if err := srv.Outage(OutageBlackhole, time.Hour); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		d := srv.Dialer()
		d.HandshakeTimeout = ioTimeout
		_, _, err := d.Dial(srv.GatewayURL(), nil)
		held <- err
	}()
	waitFor(t, "the black-holed dial", func() bool { return len(srv.Ledger().Refused()) == 1 })
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-held; err == nil {
		t.Fatal("the black-holed dial succeeded")
	}
	for _, c := range clients {
		ended := false
		for i := 0; i < 10000 && !ended; i++ {
			_, err := c.next(ioTimeout)
			ended = err != nil
		}
		if !ended {
			t.Fatal("a client is still connected after Close")
		}
	}
	_ = srv.Close() // idempotent
}
