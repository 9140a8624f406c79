package natscoord_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/coord"
	"github.com/lifeline-bot/lifeline/core/coord/coordtest"
	"github.com/lifeline-bot/lifeline/core/coord/natscoord"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runServer starts an embedded NATS server with JetStream on 127.0.0.1
// (port 0: any free one unless port says otherwise), storing in dir.
func runServer(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1 // RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatalf("nats server not ready in 10s")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// dial connects one "process" to the server.
func dial(t testing.TB, url, name string) *nats.Conn {
	t.Helper()
	nc, err := natscoord.Dial(url, name, nats.ReconnectWait(50*time.Millisecond), nats.Timeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func store(t testing.TB, nc *nats.Conn, prefix string) *natscoord.Store {
	t.Helper()
	return storeOn(t, nc, prefix, true)
}

func storeOn(t testing.TB, nc *nats.Conn, prefix string, memory bool) *natscoord.Store {
	t.Helper()
	s, err := natscoord.New(nc, natscoord.Options{BucketPrefix: prefix, Memory: memory, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreConformance(t *testing.T) {
	srv := runServer(t, t.TempDir(), 0)
	nc := dial(t, srv.ClientURL(), "conformance")
	var n atomic.Int64
	coordtest.RunKV(t, coordtest.Harness{
		Open: func(t *testing.T) coord.Store {
			return store(t, nc, fmt.Sprintf("conf%d", n.Add(1)))
		},
		TTL:    500 * time.Millisecond,
		Pass:   time.Sleep, // the server's TTLs run on real time
		Settle: 5 * time.Second,
	})
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := natscoord.New(nil, natscoord.Options{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	srv := runServer(t, t.TempDir(), 0)
	nc := dial(t, srv.ClientURL(), "bad")
	if _, err := natscoord.New(nc, natscoord.Options{BucketPrefix: "a.b"}); err == nil {
		t.Fatal("a prefix with a dot was accepted")
	}
	s := store(t, nc, "lifeline")
	if got := s.BucketName(coord.BucketMembers); got != "lifeline_members" {
		t.Fatalf("BucketName = %q", got)
	}
}

// world records which processes run each shard.
type world struct {
	mu      sync.Mutex
	running map[int]map[string]bool
	doubles []string
}

func (w *world) handler(p string) coord.ShardHandler { return handler{w: w, p: p} }

func (w *world) kill(p string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ps := range w.running {
		delete(ps, p)
	}
}

func (w *world) check() (exactlyOnce bool, doubles []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	exactlyOnce = true
	for _, ps := range w.running {
		if len(ps) != 1 {
			exactlyOnce = false
		}
	}
	return exactlyOnce, slices.Clone(w.doubles)
}

type handler struct {
	w *world
	p string
}

func (h handler) StartShard(_ context.Context, s int) error {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if h.w.running[s] == nil {
		h.w.running[s] = map[string]bool{}
	}
	for o := range h.w.running[s] {
		h.w.doubles = append(h.w.doubles, fmt.Sprintf("shard %d: %s started while %s runs it", s, h.p, o))
	}
	h.w.running[s][h.p] = true
	return nil
}

func (h handler) StopShard(_ context.Context, s int) error {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	delete(h.w.running[s], h.p)
	return nil
}

func settings(id string, count int) coord.Settings {
	return coord.Settings{
		Process: id, ShardCount: count,
		LeaseTTL: 2 * time.Second, Interval: 100 * time.Millisecond, Settle: 300 * time.Millisecond,
		Window: 200 * time.Millisecond, Margin: 10 * time.Millisecond, PollInterval: 10 * time.Millisecond,
		CallTimeout: time.Second,
		Limit:       conn.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: time.Hour, MaxConcurrency: 1},
	}
}

// eventually polls cond every 20ms for at most d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

type proc struct {
	f      *coord.Fleet
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan error
}

func startProc(t *testing.T, url, prefix, id string, count int, w *world) *proc {
	t.Helper()
	nc := dial(t, url, id)
	f, err := coord.NewFleet(context.Background(), store(t, nc, prefix), settings(id, count))
	if err != nil {
		t.Fatalf("NewFleet(%s): %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{f: f, nc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- f.Ownership().Run(ctx, w.handler(id)) }()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

func counts(ps ...*proc) []int {
	var out []int
	for _, p := range ps {
		out = append(out, len(p.f.Ownership().Owned()))
	}
	return out
}

// Three processes on a real NATS server: an even spread, a graceful leave
// that hands over, a kill after which the last process takes everything
// once the dead one's lease expired. No shard ever runs twice.
func TestFleetOwnershipOnNATS(t *testing.T) {
	srv := runServer(t, t.TempDir(), 0)
	w := &world{running: map[int]map[string]bool{}}
	a := startProc(t, srv.ClientURL(), "own", "a", 6, w)
	b := startProc(t, srv.ClientURL(), "own", "b", 6, w)
	c := startProc(t, srv.ClientURL(), "own", "c", 6, w)
	spread := func() bool {
		once, _ := w.check()
		return once && slices.Equal(counts(a, b, c), []int{2, 2, 2})
	}
	if !eventually(15*time.Second, spread) {
		t.Fatalf("not spread 2/2/2 within 15s: %v", counts(a, b, c))
	}
	var v coord.FleetView
	if !eventually(5*time.Second, func() bool {
		var err error
		v, err = a.f.Health().View(context.Background())
		return err == nil && v.Processes == 3 && v.Owned == 6 && v.Leader != ""
	}) {
		t.Fatalf("View = %+v", v)
	}

	// b leaves gracefully.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := b.f.Ownership().Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := <-b.done; err != nil {
		t.Fatalf("b's Run after Leave: %v", err)
	}
	b.done <- nil // for the cleanup
	if !eventually(10*time.Second, func() bool {
		once, _ := w.check()
		return once && slices.Equal(counts(a, c), []int{3, 3})
	}) {
		t.Fatalf("b's shards not taken over within 10s: %v", counts(a, c))
	}

	// c dies: its connection to NATS and to Discord go with it.
	c.cancel()
	c.nc.Close()
	w.kill("c")
	killed := time.Now()
	if !eventually(15*time.Second, func() bool {
		once, _ := w.check()
		return once && slices.Equal(counts(a), []int{6})
	}) {
		t.Fatalf("c's shards not taken over within 15s: a runs %v", a.f.Ownership().Owned())
	}
	t.Logf("c's shards moved %v after the kill (LeaseTTL 2s)", time.Since(killed).Round(10*time.Millisecond))
	if _, doubles := w.check(); len(doubles) > 0 {
		t.Fatalf("double runs: %v", doubles)
	}
}

// Two processes identify 3 shards each through one bucket: the slots
// are Window apart (so 6 IDENTIFYs take at least 5 windows), and the
// shared budget counts all 6.
func TestFleetIdentifyOnNATS(t *testing.T) {
	srv := runServer(t, t.TempDir(), 0)
	var fs []*coord.Fleet
	for _, id := range []string{"a", "b"} {
		nc := dial(t, srv.ClientURL(), id)
		f, err := coord.NewFleet(context.Background(), store(t, nc, "ident"), settings(id, 6))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for shard := range 6 {
		f := fs[shard%2]
		wg.Go(func() { errs <- f.Identify().Wait(ctx, shard) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	if min := 5 * 200 * time.Millisecond; elapsed < min {
		t.Fatalf("6 IDENTIFYs in one bucket took %v, less than 5 windows (%v): slots overlapped", elapsed, min)
	}
	if rem, _ := fs[1].Identify().Remaining(); rem != 994 {
		t.Fatalf("Remaining = %d, want 994", rem)
	}
	if slots := fs[0].Stats().IdentifySlots + fs[1].Stats().IdentifySlots; slots != 6 {
		t.Fatalf("%d slots taken, want 6", slots)
	}
}

// With NATS down, Wait never returns nil; the outage is reported once;
// when a server is back on the same port and store, the same Wait goes
// through, whether the buckets survived (file storage) or not (memory).
func TestFleetIdentifyWaitsWhileNATSDown(t *testing.T) {
	for _, memory := range []bool{false, true} {
		t.Run(fmt.Sprintf("memory=%v", memory), func(t *testing.T) { identifyWaitsWhileNATSDown(t, memory) })
	}
}

func identifyWaitsWhileNATSDown(t *testing.T, memory bool) {
	dir := t.TempDir()
	srv := runServer(t, dir, 0)
	port := srv.Addr().(*net.TCPAddr).Port
	url := srv.ClientURL()
	nc := dial(t, url, "a")
	var downs, ups atomic.Int64
	s := settings("a", 1)
	s.OnUnavailable = func(error) { downs.Add(1) }
	s.OnAvailable = func() { ups.Add(1) }
	s.RetryInterval = 50 * time.Millisecond
	s.CallTimeout = 200 * time.Millisecond
	// File storage: the buckets survive the server's restart. Memory
	// storage: they are gone and the store creates them again.
	f, err := coord.NewFleet(context.Background(), storeOn(t, nc, "down", memory), s)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- f.Identify().Wait(ctx, 0) }()
	if !eventually(10*time.Second, func() bool { return f.Stats().Unavailable }) {
		t.Fatal("the outage was not noticed")
	}
	select {
	case err := <-errc:
		t.Fatalf("Wait returned %v with NATS down", err)
	case <-time.After(500 * time.Millisecond):
	}
	if downs.Load() != 1 {
		t.Fatalf("OnUnavailable called %d times, want 1", downs.Load())
	}

	// NATS comes back (same port, same JetStream directory).
	runServer(t, dir, port)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Wait after NATS came back: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not go through within 20s of NATS coming back")
	}
	if ups.Load() < 1 || f.Stats().Unavailable {
		t.Fatalf("OnAvailable %d, stats %+v", ups.Load(), f.Stats())
	}
	if rem, _ := f.Identify().Remaining(); rem != 999 {
		t.Fatalf("Remaining = %d, want 999", rem)
	}
}

func TestResumeStateAcrossProcesses(t *testing.T) {
	srv := runServer(t, t.TempDir(), 0)
	ctx := context.Background()
	var fs []*coord.Fleet
	for _, id := range []string{"old", "new"} {
		f, err := coord.NewFleet(ctx, store(t, dial(t, srv.ClientURL(), id), "resume"), settings(id, 4))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	want := coord.ResumeState{Shard: 3, SessionID: "s-123", Sequence: 9001, ResumeURL: "wss://gateway-us-east1-b.discord.gg",
		User:    []byte(`{"id":"42","username":"bot","bot":true}`),
		Process: "old", SavedAt: time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)}
	if err := fs[0].Resume().Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := fs[1].Resume().Load(ctx, 3)
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load in the other process = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if err := fs[1].Resume().Delete(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := fs[0].Resume().Load(ctx, 3); ok || err != nil {
		t.Fatalf("Load after Delete = %v, %v", ok, err)
	}
}

func TestFleetSettingsMismatch(t *testing.T) {
	srv := runServer(t, t.TempDir(), 0)
	ctx := context.Background()
	if _, err := coord.NewFleet(ctx, store(t, dial(t, srv.ClientURL(), "a"), "cfg"), settings("a", 2)); err != nil {
		t.Fatal(err)
	}
	s := settings("b", 2)
	s.LeaseTTL = 4 * time.Second
	_, err := coord.NewFleet(ctx, store(t, dial(t, srv.ClientURL(), "b"), "cfg"), s)
	if !errors.Is(err, coord.ErrBucketConfig) {
		t.Fatalf("NewFleet with another LeaseTTL: err = %v, want ErrBucketConfig", err)
	}
}

// BenchmarkEmbeddedServerStart measures what the fleet tests pay to start
// a NATS server with JetStream in-process.
func BenchmarkEmbeddedServerStart(b *testing.B) {
	for b.Loop() {
		s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: b.TempDir(), NoLog: true, NoSigs: true})
		if err != nil {
			b.Fatal(err)
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			b.Fatal("not ready")
		}
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Importing natscoord registers the "nats" backend: OpenBackend connects
// and gives a Store that fleets share, and its Closer closes the
// connection.
func TestBackendRegistered(t *testing.T) {
	srv := runServer(t, t.TempDir(), 0)
	if !slices.Contains(coord.Backends(), natscoord.Kind) {
		t.Fatalf("Backends() = %v, want nats registered", coord.Backends())
	}
	ctx := context.Background()
	var fleets []*coord.Fleet
	var closers []interface{ Close() error }
	for _, id := range []string{"p1", "p2"} {
		s, c, err := coord.OpenBackend(ctx, natscoord.Kind, coord.BackendConfig{URL: srv.ClientURL(), BucketPrefix: "backend", Name: id, Memory: true})
		if err != nil {
			t.Fatal(err)
		}
		closers = append(closers, c)
		f, err := coord.NewFleet(ctx, s, settings(id, 2))
		if err != nil {
			t.Fatal(err)
		}
		fleets = append(fleets, f)
	}
	want := coord.ResumeState{Shard: 1, SessionID: "s", Sequence: 3, Process: "p1"}
	if err := fleets[0].Resume().Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := fleets[1].Resume().Load(ctx, 1); err != nil || !ok || got.SessionID != "s" {
		t.Fatalf("Load through the other backend connection = %+v, %v, %v", got, ok, err)
	}
	for i, f := range fleets {
		f.Close()
		closers[i].Close()
	}
	if _, _, err := coord.OpenBackend(ctx, natscoord.Kind, coord.BackendConfig{URL: srv.ClientURL(), BucketPrefix: "bad.prefix"}); err == nil {
		t.Fatal("a bad bucket prefix was accepted")
	}
}

// A listing holds every key that has a value throughout it, however often
// the keys are written meanwhile: a fleet lists the heartbeat keys while
// every process writes its own each Interval, and a process missing from
// the leader's listing looks dead. Six keys, each rewritten every
// millisecond or so by its own writer, listed 150 times: without complete
// about one listing in ten missed keys (the watcher's initial values ended
// early).
func TestListWhileKeysAreWritten(t *testing.T) {
	srv := runServer(t, t.TempDir(), 0)
	nc := dial(t, srv.ClientURL(), "lister")
	kv, err := storeOn(t, nc, "lw", false).Bucket(context.Background(), coord.BucketMembers, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const keys = 6
	for i := range keys {
		if _, err := kv.Put(ctx, fmt.Sprintf("proc.p%d", i), []byte("0")); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range keys {
		wg.Go(func() {
			for i := 1; !stop.Load() && i <= 100000; i++ {
				_, _ = kv.Put(ctx, fmt.Sprintf("proc.p%d", w), []byte(strconv.Itoa(i)))
				time.Sleep(time.Millisecond)
			}
		})
	}
	defer func() { stop.Store(true); wg.Wait() }()
	for n := range 150 {
		es, err := kv.List(ctx, "proc.")
		if err != nil {
			t.Fatalf("listing %d: %v", n, err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Key)
		}
		if len(got) != keys {
			t.Fatalf("listing %d holds %v, want all %d keys", n, got, keys)
		}
	}
}
