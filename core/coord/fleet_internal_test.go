package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// world is what Discord would see: which processes run each shard. A
// start of a shard another live process runs is a double run.
type world struct {
	mu      sync.Mutex
	running map[int]map[string]bool
	log     []string // "start 3 a", "stop 3 a", in order
	doubles []string
}

func newWorld() *world { return &world{running: map[int]map[string]bool{}} }

func (w *world) handler(process string) *worldHandler {
	return &worldHandler{w: w, process: process}
}

// kill drops every connection of process (kill -9: its sockets close).
func (w *world) kill(process string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ps := range w.running {
		delete(ps, process)
	}
}

func (w *world) runners(shard int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for p := range w.running[shard] {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (w *world) events() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.log)
}

// checkExactlyOnce fails t unless every shard of count runs in exactly
// one process and no double run was ever seen.
func (w *world) checkExactlyOnce(t *testing.T, count int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.doubles) > 0 {
		t.Fatalf("double runs: %v\nlog: %v", w.doubles, w.log)
	}
	for s := range count {
		if n := len(w.running[s]); n != 1 {
			t.Fatalf("shard %d runs in %d processes (%v)\nlog: %v", s, n, w.running[s], w.log)
		}
	}
}

type worldHandler struct {
	w       *world
	process string
	failOn  map[int]bool // StartShard fails for these
}

func (h *worldHandler) StartShard(_ context.Context, s int) error {
	w := h.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if h.failOn[s] {
		return fmt.Errorf("test: start of shard %d refused", s)
	}
	if w.running[s] == nil {
		w.running[s] = map[string]bool{}
	}
	for p := range w.running[s] {
		if p != h.process {
			w.doubles = append(w.doubles, fmt.Sprintf("shard %d: %s started while %s runs it", s, h.process, p))
		}
	}
	w.running[s][h.process] = true
	w.log = append(w.log, fmt.Sprintf("start %d %s", s, h.process))
	return nil
}

func (h *worldHandler) StopShard(_ context.Context, s int) error {
	w := h.w
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.running[s], h.process)
	w.log = append(w.log, fmt.Sprintf("stop %d %s", s, h.process))
	return nil
}

// recorder is an events.Publisher that keeps the events.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Publish(e events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.evs {
		if d, ok := e.Data.(events.Error); ok {
			out = append(out, d.Kind)
		}
	}
	return out
}

const (
	testTTL      = 3 * time.Second
	testInterval = 300 * time.Millisecond
)

func testSettings(id string, count int, fake *clock.Fake) Settings {
	return Settings{
		Process: id, ShardCount: count, Clock: fake,
		LeaseTTL: testTTL, Interval: testInterval, Settle: time.Second,
		Window: time.Second, Margin: 50 * time.Millisecond, PollInterval: 50 * time.Millisecond,
		Limit: connLimit(1000, 1000, 1),
	}
}

func newTestFleet(t *testing.T, store Store, s Settings) *Fleet {
	t.Helper()
	f, err := NewFleet(context.Background(), store, s)
	if err != nil {
		t.Fatalf("NewFleet(%s): %v", s.Process, err)
	}
	return f
}

// attach makes f's Ownership act as if Run had been called with h,
// without its loops: the test steps it.
func attach(f *Fleet, h ShardHandler) {
	m := f.member
	m.mu.Lock()
	m.started, m.h, m.done, m.joined = true, h, make(chan struct{}), f.clk.Now()
	m.mu.Unlock()
}

// step runs one heartbeat, leader and reconcile round of f.
func step(f *Fleet) {
	ctx := context.Background()
	_ = f.member.heartbeat(ctx)
	f.member.lead(ctx)
	f.member.reconcile(ctx)
}

// rounds steps every fleet in order, then advances the clock by one
// Interval, n times.
func rounds(fake *clock.Fake, n int, fs ...*Fleet) {
	for range n {
		for _, f := range fs {
			step(f)
		}
		fake.Advance(testInterval)
	}
}

func owned(fs ...*Fleet) map[string][]int {
	out := map[string][]int{}
	for _, f := range fs {
		out[f.Process()] = f.member.Owned()
	}
	return out
}

// spread starts n processes a, b, c... on one store over count shards and
// steps them until the first plan is written and taken.
func spread(t *testing.T, fake *clock.Fake, store Store, w *world, count int, ids ...string) []*Fleet {
	t.Helper()
	var fs []*Fleet
	for _, id := range ids {
		f := newTestFleet(t, store, testSettings(id, count, fake))
		attach(f, w.handler(id))
		fs = append(fs, f)
	}
	rounds(fake, 8, fs...) // Settle (1s) and a few reconciles
	w.checkExactlyOnce(t, count)
	for _, f := range fs {
		if n := len(f.member.Owned()); n < count/len(ids) || n > count/len(ids)+1 {
			t.Fatalf("unbalanced after start: %v", owned(fs...))
		}
	}
	return fs
}

func TestOwnershipSpreadsShardsEvenly(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	fs := spread(t, fake, store, w, 12, "a", "b", "c")
	want := map[string][]int{"a": {0, 1, 2, 3}, "b": {4, 5, 6, 7}, "c": {8, 9, 10, 11}}
	if got := owned(fs...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("owned = %v, want %v", got, want)
	}
	// Started together: nobody started a shard it then handed over.
	if n := w.events(); n != 12 {
		t.Fatalf("%d start/stop calls, want 12 starts only: %v", n, w.log)
	}
	plan, err := fs[1].Ownership().Assignments(context.Background())
	if err != nil || len(plan) != 12 || plan[0] != "a" || plan[11] != "c" {
		t.Fatalf("Assignments = %v, %v", plan, err)
	}
	for _, f := range fs {
		for _, s := range f.member.Owned() {
			if !f.Ownership().Holds(s) {
				t.Fatalf("%s runs shard %d but does not hold it", f.Process(), s)
			}
		}
	}
	if st := fs[0].Stats(); !st.Leader || !st.LeaseValid || st.Owned != 4 || st.Acquired != 4 {
		t.Fatalf("a's stats = %+v", st)
	}
	if st := fs[1].Stats(); st.Leader {
		t.Fatalf("b leads too: %+v", st)
	}
}

func TestOwnershipGracefulLeaveHandsOverAtOnce(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	fs := spread(t, fake, store, w, 12, "a", "b", "c")
	a, b, c := fs[0], fs[1], fs[2]

	// b leaves: it says so, stops its shards and frees their keys in one
	// reconcile; the leader re-plans; a and c take them at their next one.
	b.member.mu.Lock()
	b.member.leaving = true
	b.member.mu.Unlock()
	step(b)
	if got := b.member.Owned(); len(got) != 0 {
		t.Fatalf("b still runs %v after its leaving reconcile", got)
	}
	step(a)
	step(c)
	w.checkExactlyOnce(t, 12)
	got := owned(a, c)
	if len(got["a"]) != 6 || len(got["c"]) != 6 {
		t.Fatalf("after b left: %v, want 6 each", got)
	}
	// a and c kept their own shards: only b's moved.
	for _, s := range []int{0, 1, 2, 3} {
		if !slices.Contains(got["a"], s) {
			t.Fatalf("a lost shard %d it had: %v", s, got)
		}
	}
	for _, s := range []int{8, 9, 10, 11} {
		if !slices.Contains(got["c"], s) {
			t.Fatalf("c lost shard %d it had: %v", s, got)
		}
	}
}

func TestOwnershipDeadProcessLosesShardsAfterTTL(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	fs := spread(t, fake, store, w, 12, "a", "b", "c")
	a, b, c := fs[0], fs[1], fs[2]
	cShards := c.member.Owned()

	// kill -9 c: its connections die with it; it never heartbeats again.
	w.kill("c")
	died := fake.Now()
	lastBeat := died.Add(-testInterval) // c's last heartbeat was a round ago
	for fake.Now().Before(lastBeat.Add(testTTL - testInterval)) {
		rounds(fake, 1, a, b)
		for _, s := range cShards {
			if r := w.runners(s); len(r) != 0 {
				t.Fatalf("shard %d of dead c taken at %v, before its lease (TTL %v) ran out: %v",
					s, fake.Since(lastBeat), testTTL, r)
			}
		}
	}
	// Within TTL plus two Intervals (leader re-plans, owner takes), every
	// shard runs again.
	for fake.Now().Before(lastBeat.Add(testTTL + 2*testInterval)) {
		rounds(fake, 1, a, b)
	}
	w.checkExactlyOnce(t, 12)
	if got := owned(a, b); len(got["a"]) != 6 || len(got["b"]) != 6 {
		t.Fatalf("after c died: %v, want 6 each", got)
	}
	v, err := a.Health().View(context.Background())
	if err != nil || v.Processes != 2 || v.Owned != 12 {
		t.Fatalf("View = %+v, %v; want 2 processes owning 12", v, err)
	}
}

func TestOwnershipLeaderFailover(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	fs := spread(t, fake, store, w, 6, "a", "b", "c")
	a, b, c := fs[0], fs[1], fs[2]
	if !a.Stats().Leader {
		t.Fatalf("a should lead")
	}
	w.kill("a")
	for range int(2*testTTL/testInterval) + 2 {
		rounds(fake, 1, b, c)
	}
	if !b.Stats().Leader && !c.Stats().Leader {
		t.Fatalf("no new leader after the leader died")
	}
	if b.Stats().Leader && c.Stats().Leader {
		t.Fatalf("two leaders")
	}
	w.checkExactlyOnce(t, 6)
	if got := owned(b, c); len(got["b"]) != 3 || len(got["c"]) != 3 {
		t.Fatalf("after the leader died: %v", got)
	}
}

func TestOwnershipJoinTakesFairShareThroughHandover(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	fs := spread(t, fake, store, w, 12, "a", "b")
	before := owned(fs...)
	d := newTestFleet(t, store, testSettings("d", 12, fake))
	attach(d, w.handler("d"))
	fs = append(fs, d)
	for range 4 {
		rounds(fake, 1, fs...)
		w.mu.Lock()
		doubles := slices.Clone(w.doubles)
		w.mu.Unlock()
		if len(doubles) > 0 {
			t.Fatalf("double run during the join: %v", doubles)
		}
	}
	w.checkExactlyOnce(t, 12)
	got := owned(fs...)
	for _, id := range []string{"a", "b", "d"} {
		if len(got[id]) != 4 {
			t.Fatalf("after d joined: %v, want 4 each", got)
		}
	}
	// a and b only gave shards away, they took none.
	for _, id := range []string{"a", "b"} {
		for _, s := range got[id] {
			if !slices.Contains(before[id], s) {
				t.Fatalf("%s took shard %d during a join: before %v after %v", id, s, before, got)
			}
		}
	}
	// Each moved shard was stopped by its old owner before d started it.
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range got["d"] {
		stop, start := -1, -1
		for i, l := range w.log {
			if l == fmt.Sprintf("start %d d", s) {
				start = i
			}
			if l == fmt.Sprintf("stop %d a", s) || l == fmt.Sprintf("stop %d b", s) {
				stop = i
			}
		}
		if stop < 0 || start < stop {
			t.Fatalf("shard %d: stop at %d, start by d at %d: %v", s, stop, start, w.log)
		}
	}
}

// cutStore fails every call of one process while cut is set: a network
// partition between that process and the store.
type cutStore struct {
	Store
	mu  sync.Mutex
	cut bool
}

func (c *cutStore) set(cut bool) {
	c.mu.Lock()
	c.cut = cut
	c.mu.Unlock()
}

func (c *cutStore) isCut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut
}

func (c *cutStore) Bucket(ctx context.Context, name string, ttl time.Duration) (KV, error) {
	kv, err := c.Store.Bucket(ctx, name, ttl)
	if err != nil {
		return nil, err
	}
	return cutKV{KV: kv, s: c}, nil
}

type cutKV struct {
	KV
	s *cutStore
}

func (k cutKV) err() error {
	if k.s.isCut() {
		return fmt.Errorf("test: partitioned: %w", ErrUnavailable)
	}
	return nil
}

func (k cutKV) Get(ctx context.Context, key string) (Entry, error) {
	if err := k.err(); err != nil {
		return Entry{}, err
	}
	return k.KV.Get(ctx, key)
}

func (k cutKV) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	if err := k.err(); err != nil {
		return 0, err
	}
	return k.KV.Create(ctx, key, v)
}

func (k cutKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	if err := k.err(); err != nil {
		return 0, err
	}
	return k.KV.Update(ctx, key, v, rev)
}

func (k cutKV) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	if err := k.err(); err != nil {
		return 0, err
	}
	return k.KV.Put(ctx, key, v)
}

func (k cutKV) Delete(ctx context.Context, key string, rev uint64) error {
	if err := k.err(); err != nil {
		return err
	}
	return k.KV.Delete(ctx, key, rev)
}

func (k cutKV) List(ctx context.Context, prefix string) ([]Entry, error) {
	if err := k.err(); err != nil {
		return nil, err
	}
	return k.KV.List(ctx, prefix)
}

func TestOwnershipPartitionedProcess(t *testing.T) {
	for _, stopOnLoss := range []bool{false, true} {
		t.Run(fmt.Sprintf("StopOnLeaseLoss=%v", stopOnLoss), func(t *testing.T) {
			fake := clock.NewFake(time.Time{})
			store := NewMemoryStore(fake)
			w := newWorld()
			var fs []*Fleet
			cut := &cutStore{Store: store}
			for _, id := range []string{"a", "b", "c"} {
				s := testSettings(id, 12, fake)
				s.StopOnLeaseLoss = stopOnLoss
				var st Store = store
				if id == "c" {
					st = cut
				}
				f := newTestFleet(t, st, s)
				attach(f, w.handler(id))
				fs = append(fs, f)
			}
			rounds(fake, 8, fs...)
			w.checkExactlyOnce(t, 12)
			a, b, c := fs[0], fs[1], fs[2]
			cShards := c.member.Owned()

			cut.set(true)
			var heldLostAt, takenAt time.Time
			for range int(2*testTTL/testInterval) + 4 {
				rounds(fake, 1, a, b, c)
				if heldLostAt.IsZero() && !c.Ownership().Holds(cShards[0]) {
					heldLostAt = fake.Now()
				}
				if takenAt.IsZero() && (slices.Contains(a.member.Owned(), cShards[0]) || slices.Contains(b.member.Owned(), cShards[0])) {
					takenAt = fake.Now()
				}
			}
			if heldLostAt.IsZero() || takenAt.IsZero() || !heldLostAt.Before(takenAt) {
				t.Fatalf("c stopped holding at %v, the shard was taken at %v: c must let go first", heldLostAt, takenAt)
			}
			w.mu.Lock()
			doubles := len(w.doubles)
			w.mu.Unlock()
			if stopOnLoss && doubles != 0 {
				t.Fatalf("StopOnLeaseLoss: double runs %v", w.doubles)
			}
			if !stopOnLoss && len(c.member.Owned()) == 0 {
				t.Fatalf("without StopOnLeaseLoss c's running shards should go on while it is cut off")
			}

			// The partition heals: c rejoins, stops what it lost, and
			// gets a fair share again by handover.
			cut.set(false)
			rounds(fake, 6, a, b, c)
			for s := range 12 {
				if n := len(w.runners(s)); n != 1 {
					t.Fatalf("after healing, shard %d runs in %v", s, w.runners(s))
				}
			}
			if got := owned(a, b, c); len(got["a"]) != 4 || len(got["b"]) != 4 || len(got["c"]) != 4 {
				t.Fatalf("after healing: %v", got)
			}
			if st := c.Stats(); st.Lost == 0 || st.Outages != 1 {
				t.Fatalf("c's stats = %+v; want lost shards and one outage", st)
			}
		})
	}
}

func TestOwnershipStoreOutageChangesNothing(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	rec := &recorder{}
	var fs []*Fleet
	var downs, ups int
	var hookMu sync.Mutex
	for _, id := range []string{"a", "b"} {
		s := testSettings(id, 6, fake)
		s.Events = rec
		s.OnUnavailable = func(error) { hookMu.Lock(); downs++; hookMu.Unlock() }
		s.OnAvailable = func() { hookMu.Lock(); ups++; hookMu.Unlock() }
		f := newTestFleet(t, store, s)
		attach(f, w.handler(id))
		fs = append(fs, f)
	}
	rounds(fake, 8, fs...)
	w.checkExactlyOnce(t, 6)
	calls := w.events()

	store.SetAvailable(false)
	rounds(fake, int(2*testTTL/testInterval), fs...)
	if n := w.events(); n != calls {
		t.Fatalf("shards started or stopped while the store was down: %v", w.log[calls:])
	}
	for _, f := range fs {
		if f.Ownership().Holds(f.member.Owned()[0]) {
			t.Fatalf("%s still holds its shards %v after its lease ran out", f.Process(), 2*testTTL)
		}
		if st := f.Stats(); !st.Unavailable || st.Outages != 1 {
			t.Fatalf("%s stats during the outage: %+v", f.Process(), st)
		}
	}
	if _, err := fs[0].Health().View(context.Background()); err == nil {
		t.Fatalf("View succeeded with the store down")
	}

	store.SetAvailable(true)
	rounds(fake, 4, fs...)
	if n := w.events(); n != calls {
		t.Fatalf("the store came back and shards moved: %v", w.log[calls:])
	}
	w.checkExactlyOnce(t, 6)
	for _, f := range fs {
		for _, s := range f.member.Owned() {
			if !f.Ownership().Holds(s) {
				t.Fatalf("%s does not hold shard %d again", f.Process(), s)
			}
		}
	}
	hookMu.Lock()
	defer hookMu.Unlock()
	if downs != 2 || ups != 2 {
		t.Fatalf("OnUnavailable %d times, OnAvailable %d times; want 2 each (once per process)", downs, ups)
	}
	if k := rec.kinds(); !slices.Contains(k, "unavailable") {
		t.Fatalf("no unavailable event: %v", k)
	}
}

func TestOwnershipDuplicateProcessIDWaits(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	a := newTestFleet(t, store, testSettings("a", 2, fake))
	attach(a, w.handler("a"))
	rounds(fake, 6, a)
	if got := a.member.Owned(); len(got) != 2 {
		t.Fatalf("a owns %v", got)
	}
	// A second process with a's ID (a restarted pod whose predecessor
	// still heartbeats): it waits, it does not join.
	rec := &recorder{}
	st := testSettings("a", 2, fake)
	st.Events = rec
	twin := newTestFleet(t, store, st)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- twin.Ownership().Run(ctx, w.handler("twin")) }()
	// Rounds until the twin has seen a's heartbeat (bounded in real time:
	// a loaded machine may run the twin's goroutines late), then a few
	// more. Its heartbeat calls are bounded on the fake clock, which the
	// rounds move: one the twin had not finished when a round moved the
	// clock past its bound counts as "unavailable", the harness's doing.
	deadline := time.Now().Add(10 * time.Second)
	for extra := 0; extra < 5; {
		if slices.Contains(rec.kinds(), "duplicate_process") {
			extra++
		} else if time.Now().After(deadline) {
			t.Fatalf("the twin never saw a's heartbeat (stats %+v, events %v)", twin.Stats(), rec.kinds())
		}
		fake.BlockUntil(1, 50*time.Millisecond)
		rounds(fake, 1, a)
	}
	unexpected := slices.ContainsFunc(rec.kinds(), func(k string) bool { return k != "duplicate_process" && k != "unavailable" })
	if twin.Stats().LeaseValid || len(twin.member.Owned()) != 0 || unexpected {
		t.Fatalf("twin joined while a lives (stats %+v, owns %v, events %v)", twin.Stats(), twin.member.Owned(), rec.kinds())
	}
	// a dies: the twin joins after a's lease and takes its shards over.
	w.kill("a")
	deadline = time.Now().Add(20 * time.Second)
	for len(twin.member.Owned()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("twin owns %v after a died", twin.member.Owned())
		}
		fake.BlockUntil(1, 20*time.Millisecond)
		fake.Advance(testInterval)
	}
	w.checkExactlyOnce(t, 2)
	cancel()
	if err := <-errc; !errorsIsAny(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

func TestOwnershipFailedStartGivesShardBack(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	rec := &recorder{}
	s := testSettings("a", 3, fake)
	s.Events = rec
	a := newTestFleet(t, store, s)
	h := w.handler("a")
	h.failOn = map[int]bool{1: true}
	attach(a, h)
	rounds(fake, 6, a)
	if got := a.member.Owned(); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("owned = %v, want [0 2] (shard 1 refuses to start)", got)
	}
	if _, err := a.state.Get(context.Background(), "owner.1"); !errorsIsAny(err, ErrNotFound) {
		t.Fatalf("owner key of the shard that failed to start: err = %v, want ErrNotFound", err)
	}
	if k := rec.kinds(); !slices.Contains(k, "shard_start") {
		t.Fatalf("no shard_start event: %v", k)
	}
	h.w.mu.Lock()
	h.failOn = nil
	h.w.mu.Unlock()
	rounds(fake, 1, a)
	if got := a.member.Owned(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("owned = %v after the start works again", got)
	}
}

func TestHealthView(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	fs := spread(t, fake, store, w, 8, "a", "b")
	fs[0].Health().Publish(ProcessHealth{Shards: 4, Ready: 4, WorstAckAge: time.Second, HealthScore: 100})
	fs[1].Health().Publish(ProcessHealth{Shards: 4, Ready: 2, Unhealthy: 2, WorstAckAge: 9 * time.Second, Degradation: "moderate", HealthScore: 40})
	rounds(fake, 1, fs...)
	v, err := fs[1].Health().View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.Processes != 2 || v.Leader != "a" || v.Shards != 8 || v.Owned != 8 || v.Ready != 6 ||
		v.Unhealthy != 2 || v.UnhealthyRatio != 0.25 || v.WorstAckAge != 9*time.Second || v.Degraded != 1 {
		t.Fatalf("View = %+v", v)
	}
	if len(v.List) != 2 || v.List[0].ID != "a" || !v.List[0].Leader || len(v.List[1].Owned) != 4 {
		t.Fatalf("View.List = %+v", v.List)
	}
}

// lockstep counts the loop rounds of Run so a test advances the fake
// clock only after every loop has handled the previous tick.
type lockstep struct {
	mu     sync.Mutex
	rounds map[string]int
}

func (l *lockstep) hook(f *Fleet) {
	f.member.onLoop = func(loop string) {
		l.mu.Lock()
		l.rounds[f.Process()+"/"+loop]++
		l.mu.Unlock()
	}
}

func (l *lockstep) snapshot() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.rounds))
	for k, v := range l.rounds {
		out[k] = v
	}
	return out
}

// tick advances the clock one Interval and waits (bounded) until each of
// the loops named has run a round since. A loop whose ticker did not exist
// yet when the clock moved misses that tick: after a while the clock moves
// again.
func (l *lockstep) tick(t *testing.T, fake *clock.Fake, loops ...string) {
	t.Helper()
	before := l.snapshot()
	for try := range 20 {
		fake.Advance(testInterval)
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			now := l.snapshot()
			all := true
			for _, k := range loops {
				if now[k] <= before[k] {
					all = false
				}
			}
			if all {
				return
			}
			time.Sleep(time.Millisecond) // let the loops' goroutines run
		}
		if try == 19 {
			t.Fatalf("loops %v did not run a round (before %v, now %v)", loops, before, l.snapshot())
		}
	}
}

func TestRunAndLeave(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	a := newTestFleet(t, store, testSettings("a", 8, fake))
	b := newTestFleet(t, store, testSettings("b", 8, fake))
	ls := &lockstep{rounds: map[string]int{}}
	ls.hook(a)
	ls.hook(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- a.Ownership().Run(ctx, w.handler("a")) }()
	go func() { errs <- b.Ownership().Run(ctx, w.handler("b")) }()
	both := []string{"a/heartbeat", "a/reconcile", "b/heartbeat", "b/reconcile"}

	for i := 0; !(len(a.member.Owned()) == 4 && len(b.member.Owned()) == 4); i++ {
		if i > 30 {
			t.Fatalf("shards not spread after 30 ticks: %v", owned(a, b))
		}
		ls.tick(t, fake, both...)
	}
	w.checkExactlyOnce(t, 8)

	// Leave returns once a's shards are stopped and its keys deleted.
	if err := a.Ownership().Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := <-errs; err != nil {
		t.Fatalf("a's Run after Leave = %v, want nil", err)
	}
	if got := a.member.Owned(); len(got) != 0 {
		t.Fatalf("a still owns %v after Leave", got)
	}
	for i := 0; len(b.member.Owned()) != 8; i++ {
		if i > 10 {
			t.Fatalf("b did not take a's shards: %v", owned(a, b))
		}
		ls.tick(t, fake, "b/heartbeat", "b/reconcile")
	}
	w.checkExactlyOnce(t, 8)
	if err := a.Ownership().Leave(ctx); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
	cancel()
	if err := <-errs; !errorsIsAny(err, context.Canceled) {
		t.Fatalf("b's Run after cancel = %v", err)
	}
}

// An outage longer than the lease lets every heartbeat key expire. When
// the store returns, one process is back a few rounds before the other
// (its connection reconnected sooner): the early one, leader or not, must
// not take the late one's shards for a dead process's, and nothing moves
// once both are back. Without the grace after rejoining, "a" replans the
// fleet alone and takes "b"'s shards while "b" still runs them.
func TestOwnershipOutageForEveryoneLateRejoinMovesNothing(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	fs := spread(t, fake, store, w, 6, "a", "b")
	calls := w.events()

	store.SetAvailable(false)
	rounds(fake, int(2*testTTL/testInterval), fs...)
	store.SetAvailable(true)
	// Only a for most of a lease: b is still reconnecting.
	rounds(fake, int(testTTL/testInterval)-2, fs[0])
	if n := w.events(); n != calls {
		t.Fatalf("shards moved while b was rejoining: %v", w.log[calls:])
	}
	rounds(fake, 3*int(testTTL/testInterval), fs...)
	if n := w.events(); n != calls {
		t.Fatalf("shards moved after the outage: %v", w.log[calls:])
	}
	w.checkExactlyOnce(t, 6)
	for _, f := range fs {
		if len(f.member.Owned()) != 3 {
			t.Fatalf("owners after the outage: %v", owned(fs...))
		}
	}

	// A process that really died during the outage loses its shards once
	// the grace is over.
	store.SetAvailable(false)
	rounds(fake, int(2*testTTL/testInterval), fs...)
	store.SetAvailable(true)
	w.kill("b")
	rounds(fake, 3*int(testTTL/testInterval), fs[0])
	if got := fs[0].member.Owned(); len(got) != 6 {
		t.Fatalf("a owns %v after b died, want every shard", got)
	}
	w.checkExactlyOnce(t, 6)
}

// Every process of a fleet runs one shard count: a process given another
// one is refused before it joins.
func TestFleetRefusesAnotherShardCount(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	newTestFleet(t, store, testSettings("a", 4, fake))
	newTestFleet(t, store, testSettings("b", 4, fake))
	_, err := NewFleet(context.Background(), store, testSettings("c", 8, fake))
	if !errors.Is(err, ErrShardCount) || !strings.Contains(err.Error(), "runs 4 shards") || !strings.Contains(err.Error(), "given 8") {
		t.Fatalf("NewFleet with 8 shards on a 4-shard fleet = %v, want ErrShardCount naming both counts", err)
	}
}
