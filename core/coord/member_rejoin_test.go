package coord

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// These tests replay, on the fake clock, what the NATS client does to a
// fleet when the server goes away and comes back: a request made while it
// reconnects is buffered and sent, and answered, only once it is back; a
// request that was on the wire when the connection broke is never
// answered. gateStore holds one chosen call of one process in either way,
// so a test decides exactly when that call returns relative to the other
// processes' rounds, without any real-time wait.

// gateStore wraps one process's view of the shared store. arm makes the
// next call matching bucket, op and key wait: until released (a buffered
// request), or, when lost, until its context ends (a request lost with
// the connection; the fleet abandons it).
type gateStore struct {
	Store
	mu      sync.Mutex
	armed   *gate
	pending []*gate         // armed gates not yet released, for the cleanup
	hidden  map[string]bool // "bucket/key" left out of every listing
}

// hide leaves bucket's key out of this process's listings (a Get still
// finds it): a listing that misses a key, as NATS's did while the keys
// were being written.
func (s *gateStore) hide(bucket, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hidden == nil {
		s.hidden = map[string]bool{}
	}
	s.hidden[bucket+"/"+key] = true
}

func (s *gateStore) isHidden(bucket, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hidden[bucket+"/"+key]
}

type gate struct {
	bucket, op, key string
	lost            bool
	entered         chan struct{}
	release         chan struct{}
	once            sync.Once
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// arm holds the next call of op ("get", "create", "update", "delete",
// "list") on key (the prefix, for a list) in bucket. It returns a channel
// closed once that call is held and the function that releases it.
func (s *gateStore) arm(t *testing.T, bucket, op, key string, lost bool) (<-chan struct{}, func()) {
	g := &gate{bucket: bucket, op: op, key: key, lost: lost, entered: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	s.armed = g
	s.pending = append(s.pending, g)
	s.mu.Unlock()
	t.Cleanup(g.open)
	return g.entered, g.open
}

// hold blocks the call if it is the armed one.
func (s *gateStore) hold(ctx context.Context, bucket, op, key string) error {
	s.mu.Lock()
	g := s.armed
	if g == nil || g.bucket != bucket || g.op != op || g.key != key {
		s.mu.Unlock()
		return nil
	}
	s.armed = nil
	s.mu.Unlock()
	close(g.entered)
	if g.lost {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.release: // the test's cleanup
			return errors.New("test: lost request released at cleanup")
		}
	}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *gateStore) Bucket(ctx context.Context, name string, ttl time.Duration) (KV, error) {
	kv, err := s.Store.Bucket(ctx, name, ttl)
	if err != nil {
		return nil, err
	}
	return gateKV{KV: kv, s: s, bucket: name}, nil
}

type gateKV struct {
	KV
	s      *gateStore
	bucket string
}

func (k gateKV) Get(ctx context.Context, key string) (Entry, error) {
	if err := k.s.hold(ctx, k.bucket, "get", key); err != nil {
		return Entry{}, err
	}
	return k.KV.Get(ctx, key)
}

func (k gateKV) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	if err := k.s.hold(ctx, k.bucket, "create", key); err != nil {
		return 0, err
	}
	return k.KV.Create(ctx, key, v)
}

func (k gateKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	if err := k.s.hold(ctx, k.bucket, "update", key); err != nil {
		return 0, err
	}
	return k.KV.Update(ctx, key, v, rev)
}

func (k gateKV) Delete(ctx context.Context, key string, rev uint64) error {
	if err := k.s.hold(ctx, k.bucket, "delete", key); err != nil {
		return err
	}
	return k.KV.Delete(ctx, key, rev)
}

func (k gateKV) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := k.s.hold(ctx, k.bucket, "list", prefix); err != nil {
		return nil, err
	}
	es, err := k.KV.List(ctx, prefix)
	return slices.DeleteFunc(es, func(e Entry) bool { return k.s.isHidden(k.bucket, e.Key) }), err
}

// gatedFleet is three processes a, b, c over 12 shards, each with its own
// gateStore on one MemoryStore, stepped until the shards are spread (a
// leads). No call times out on real time (CallTimeout is an hour): only
// the fake clock and the gates decide.
func gatedFleet(t *testing.T) (*clock.Fake, *MemoryStore, *world, []*Fleet, []*gateStore) {
	t.Helper()
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	var fs []*Fleet
	var gs []*gateStore
	for _, id := range []string{"a", "b", "c"} {
		g := &gateStore{Store: store}
		s := testSettings(id, 12, fake)
		s.CallTimeout = time.Hour
		f := newTestFleet(t, g, s)
		attach(f, w.handler(id))
		fs = append(fs, f)
		gs = append(gs, g)
	}
	rounds(fake, 8, fs...)
	w.checkExactlyOnce(t, 12)
	if got := owned(fs...); len(got["a"]) != 4 || len(got["b"]) != 4 || len(got["c"]) != 4 || !fs[0].Stats().Leader {
		t.Fatalf("after the spread: %v (a leader: %v)", got, fs[0].Stats().Leader)
	}
	return fake, store, w, fs, gs
}

// wait waits (bounded, real time) for ch: a held call to be entered, or a
// goroutine to finish.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10s", what)
	}
}

// nothingMovedSince steps every process for three leases and fails t
// if any shard started or stopped since calls (the world's log length
// before the event under test), ran twice, or changed owner, or a process
// is left without a valid lease.
func nothingMovedSince(t *testing.T, fake *clock.Fake, w *world, calls int, fs ...*Fleet) {
	t.Helper()
	rounds(fake, 3*int(testTTL/testInterval), fs...)
	w.mu.Lock()
	moves := slices.Clone(w.log[calls:])
	w.mu.Unlock()
	if len(moves) > 0 {
		t.Fatalf("shards stopped and started (each a RESUME on Discord): %v", moves)
	}
	w.checkExactlyOnce(t, 12)
	for _, f := range fs {
		if n := len(f.member.Owned()); n != 4 {
			t.Fatalf("owners now: %v, want 4 each as before", owned(fs...))
		}
		if !f.Stats().LeaseValid {
			t.Fatalf("%s has no valid lease", f.Process())
		}
	}
}

// A call of the leader's round that was made before the store went away
// returns only after it is back (the NATS client buffered it), when the
// process's lease has run out and it has not rejoined. Before the fix the
// round went on and planned from the members listed at that moment (only
// the processes back first): every shard went to them, the others handed
// theirs over, and the next plan moved shards back, a RESUME each way.
// Now the round plans nothing until the process has rejoined and its
// grace is over, and nothing moves.
func TestOwnershipLeaderRoundOutlivingTheLeasePlansNothing(t *testing.T) {
	cases := []struct {
		name string
		// held is whose call is held (0 a, the leader; 1 b) and which;
		// first is the process back before the held call returns.
		held, first     int
		bucket, op, key string
	}{
		// b tries to take the leader key every round; its Create waits
		// out the outage and then wins: the key expired, and a, back
		// first, only found its refresh refused.
		{name: "leader key of a non-leader", held: 1, first: 0, bucket: BucketMembers, op: "create", key: leaderKey},
		// a, the leader, lists the members for its plan; the listing
		// waits out the outage and is read once c alone is back.
		{name: "members listing of the leader's plan", held: 0, first: 2, bucket: BucketMembers, op: "list", key: procPrefix},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake, store, w, fs, gs := gatedFleet(t)
			a, b, c := fs[0], fs[1], fs[2]
			calls := w.events()
			held := fs[tc.held]
			entered, release := gs[tc.held].arm(t, tc.bucket, tc.op, tc.key, false)
			done := make(chan struct{})
			go func() { held.member.lead(context.Background()); close(done) }()
			wait(t, entered, "the held call")

			// The store goes away for two leases: every heartbeat key
			// and the leader key expire.
			store.SetAvailable(false)
			rounds(fake, int(2*testTTL/testInterval), others(fs, held)...)
			store.SetAvailable(true)
			// One process is back first, then the held call returns.
			step(fs[tc.first])
			release()
			wait(t, done, "the held leader round")

			nothingMovedSince(t, fake, w, calls, a, b, c)
		})
	}
}

func others(fs []*Fleet, not *Fleet) []*Fleet {
	var out []*Fleet
	for _, f := range fs {
		if f != not {
			out = append(out, f)
		}
	}
	return out
}

// The heartbeat that rejoins after an outage may have been sent while the
// store was still away and answered a while later (here just under the
// heartbeat's timeout). Its grace (no plan, no shard taken from a holder
// whose heartbeat is missing) lasts LeaseTTL from when it succeeded.
// Before the fix it counted from the send, so it ended early by the time
// the answer took, and processes still rejoining then lost their shards
// to this one while they were running them.
func TestOwnershipRejoinGraceCountsFromTheAnswer(t *testing.T) {
	fake, store, w, fs, gs := gatedFleet(t)
	a, b, c := fs[0], fs[1], fs[2]
	calls := w.events()

	store.SetAvailable(false)
	rounds(fake, int(2*testTTL/testInterval), fs...) // every lease runs out
	// a's next heartbeat is sent while the store is away and answered
	// once it is back.
	entered, release := gs[0].arm(t, BucketMembers, "update", procPrefix+"a", false)
	done := make(chan struct{})
	go func() { _ = a.member.heartbeat(context.Background()); close(done) }()
	wait(t, entered, "a's heartbeat")
	fake.Advance(a.member.heartbeatTimeout() - testInterval/3)
	store.SetAvailable(true)
	release()
	wait(t, done, "a's heartbeat")
	if !a.Stats().LeaseValid {
		t.Fatal("a's lease is not valid after its heartbeat was answered")
	}

	// b and c are still reconnecting for most of a lease: a alone must
	// not take their shards.
	rounds(fake, int(testTTL/testInterval)-1, a)
	w.mu.Lock()
	doubles, moves := slices.Clone(w.doubles), slices.Clone(w.log[calls:])
	w.mu.Unlock()
	if len(doubles) > 0 || len(moves) > 0 {
		t.Fatalf("a took shards while b and c were rejoining: moves %v, double runs %v", moves, doubles)
	}
	nothingMovedSince(t, fake, w, calls, a, b, c)
}

// A heartbeat call that is never answered (its request was on the wire
// when the connection broke) is abandoned after heartbeatTimeout on the
// fleet's clock, and the next heartbeat keeps the lease. Before the fix it
// waited the whole CallTimeout (5s by default, longer than a 2s lease),
// and the lease ran out although the store was back.
func TestOwnershipHeartbeatAbandonsAnUnansweredCall(t *testing.T) {
	fake, _, w, fs, gs := gatedFleet(t)
	a := fs[0]
	calls := w.events()
	entered, _ := gs[0].arm(t, BucketMembers, "update", procPrefix+"a", true)
	errc := make(chan error, 1)
	go func() { errc <- a.member.heartbeat(context.Background()) }()
	wait(t, entered, "a's heartbeat")
	fake.Advance(a.member.heartbeatTimeout())
	select {
	case err := <-errc:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("abandoned heartbeat = %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat still waits for an answer after heartbeatTimeout on the fleet's clock")
	}
	if st := a.Stats(); !st.Unavailable || st.Outages != 1 {
		t.Fatalf("stats after the unanswered heartbeat: %+v; want the store counted unreachable", st)
	}
	rounds(fake, 1, fs...)
	if st := a.Stats(); !st.LeaseValid || st.Unavailable {
		t.Fatalf("stats after the next heartbeat: %+v; want the lease kept", st)
	}
	nothingMovedSince(t, fake, w, calls, fs...)
}

// In Run the heartbeat has a loop of its own: a leader's call that gets no
// answer holds up the leader's rounds only, and the heartbeats go on
// keeping the lease. Before the fix the leader's round ran in the
// heartbeat loop, so one unanswered leader-key refresh stopped the
// heartbeats for the whole CallTimeout and the lease ran out.
func TestRunHeartbeatNotHeldByTheLeader(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	g := &gateStore{Store: NewMemoryStore(fake)}
	w := newWorld()
	s := testSettings("a", 4, fake)
	s.CallTimeout = time.Hour
	a := newTestFleet(t, g, s)
	ls := &lockstep{rounds: map[string]int{}}
	ls.hook(a)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Ownership().Run(ctx, w.handler("a")) }()
	defer func() {
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	}()
	for i := 0; len(a.member.Owned()) != 4; i++ {
		if i > 30 {
			t.Fatalf("a runs %v after 30 ticks", a.member.Owned())
		}
		ls.tick(t, fake, "a/heartbeat", "a/reconcile")
	}
	// The next refresh of the leader key is lost.
	entered, _ := g.arm(t, BucketMembers, "update", leaderKey, true)
	ls.tick(t, fake, "a/heartbeat")
	wait(t, entered, "the leader-key refresh")
	for range int(2 * testTTL / testInterval) {
		ls.tick(t, fake, "a/heartbeat", "a/reconcile")
	}
	if st := a.Stats(); !st.LeaseValid || len(a.member.Owned()) != 4 {
		t.Fatalf("after two leases with the leader's call unanswered: %+v, owns %v; want the lease kept", st, a.member.Owned())
	}
}

// A listing may miss a key that exists (NATS's did, while the keys listed
// were being written). Before the fix a process acted on the absence: it
// stopped a running shard whose owner key the listing missed (and started
// it again at the next reconcile: a RESUME for nothing), and a leader
// planned out a live process whose heartbeat the listing missed (its
// shards handed over, then back). Now each absence that would stop, take
// or plan out a shard is checked by reading the key itself.
func TestOwnershipListingThatMissesAKeyMovesNothing(t *testing.T) {
	cases := []struct {
		name string
		hide func(fs []*Fleet, gs []*gateStore)
	}{
		{name: "owner key of a running shard, in its holder's listing", hide: func(fs []*Fleet, gs []*gateStore) {
			gs[1].hide(BucketState, ownerPrefix+strconv.Itoa(fs[1].member.Owned()[0]))
		}},
		{name: "heartbeat of a live process, in every listing", hide: func(_ []*Fleet, gs []*gateStore) {
			for _, g := range gs {
				g.hide(BucketMembers, procPrefix+"b")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake, _, w, fs, gs := gatedFleet(t)
			calls := w.events()
			tc.hide(fs, gs)
			nothingMovedSince(t, fake, w, calls, fs...)
		})
	}
}
