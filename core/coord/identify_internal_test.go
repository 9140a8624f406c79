package coord

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
)

func connLimit(total, remaining, mc int) conn.SessionStartLimit {
	return conn.SessionStartLimit{Total: total, Remaining: remaining, MaxConcurrency: mc, ResetAfter: time.Hour}
}

// slotWrites records every take of an identify slot (the write that
// creates the key) with its fake time, and the last write of each key
// before it (a take is refreshed right before its IDENTIFY leaves).
type slotWrites struct {
	mu sync.Mutex
	at map[string][]time.Time
	// gaps holds, per key, the time from the previous write of the key
	// (the previous take or its refresh) to each take after the first.
	gaps map[string][]time.Duration
	last map[string]time.Time
	n    int
}

func watchSlots(t *testing.T, store *MemoryStore) *slotWrites {
	t.Helper()
	sw := &slotWrites{at: map[string][]time.Time{}, gaps: map[string][]time.Duration{}, last: map[string]time.Time{}}
	store.mu.Lock()
	b := store.buckets[BucketSlots]
	store.mu.Unlock()
	if b == nil {
		t.Fatal("no slots bucket")
	}
	b.mu.Lock()
	b.onWrite = func(key string, at time.Time, created bool) {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		if created {
			if prev, ok := sw.last[key]; ok {
				sw.gaps[key] = append(sw.gaps[key], at.Sub(prev))
			}
			sw.at[key] = append(sw.at[key], at)
			sw.n++
		}
		sw.last[key] = at
	}
	b.mu.Unlock()
	return sw
}

func (sw *slotWrites) count() int {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.n
}

// driveUntil advances the fake clock in small steps until done is closed,
// bounded in steps and real time.
func driveUntil(t *testing.T, fake *clock.Fake, step time.Duration, done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not done after 30s of real time (fake time %v)", fake.Now())
		}
		fake.BlockUntil(1, 20*time.Millisecond)
		fake.Advance(step)
	}
}

func TestFleetIdentifyOneSlotPerBucketPerWindowFleetWide(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	var fs []*Fleet
	for _, id := range []string{"a", "b", "c"} {
		s := testSettings(id, 12, fake)
		s.Limit = connLimit(1000, 1000, 2)
		fs = append(fs, newTestFleet(t, store, s))
	}
	sw := watchSlots(t, store)
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for shard := range 12 {
		f := fs[shard%3] // every process identifies shards of both buckets
		wg.Go(func() { errs <- f.Identify().Wait(context.Background(), shard) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	driveUntil(t, fake, 50*time.Millisecond, done)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	// A slot that expired while its session start was being taken (the
	// driver moves the fake clock meanwhile) is taken again, without a
	// second start: at least 12 takes, exactly 12 starts.
	if sw.n < 12 {
		t.Fatalf("%d slots taken, want at least 12", sw.n)
	}
	gap := time.Second + 50*time.Millisecond
	for key, at := range sw.at {
		if len(at) < 6 {
			t.Fatalf("%s taken %d times, want at least 6", key, len(at))
		}
		for _, d := range sw.gaps[key] {
			if d < gap {
				t.Fatalf("%s taken %v after its last take, want at least %v", key, d, gap)
			}
		}
	}
	if rem, _ := fs[0].Identify().Remaining(); rem != 1000-12 {
		t.Fatalf("Remaining = %d, want %d", rem, 1000-12)
	}
	var slots uint64
	for _, f := range fs {
		slots += f.Stats().IdentifySlots
	}
	if slots != uint64(sw.n) {
		t.Fatalf("stats count %d slots, the store saw %d takes", slots, sw.n)
	}
}

func TestFleetIdentifySharedBudget(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	sa := testSettings("a", 4, fake)
	sa.Limit = connLimit(5, 3, 1)
	a := newTestFleet(t, store, sa)
	b := newTestFleet(t, store, testSettings("b", 4, fake)) // its Limit (1000) is not used: a seeded first
	wait := func(f *Fleet, shard int) error {
		t.Helper()
		errc := make(chan error, 1)
		done := make(chan struct{})
		go func() { errc <- f.Identify().Wait(context.Background(), shard); close(done) }()
		driveUntil(t, fake, 50*time.Millisecond, done)
		return <-errc
	}
	for i, f := range []*Fleet{a, b, a} {
		if err := wait(f, i); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	err := wait(b, 3)
	var sle *conn.SessionStartLimitError
	if !errors.Is(err, conn.ErrSessionStartLimit) || !errors.As(err, &sle) || sle.Total != 5 {
		t.Fatalf("fourth start: err = %v, want a SessionStartLimitError of 5", err)
	}
	if err := b.Identify().CheckBudget(1); !errors.Is(err, conn.ErrSessionStartLimit) {
		t.Fatalf("CheckBudget(1) with none left: %v", err)
	}
	// The budget resets after ResetAfter (1h): the fleet has 5 again.
	fake.Advance(time.Hour)
	if err := wait(b, 3); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
	if rem, reset := a.Identify().Remaining(); rem != 4 || !reset.After(fake.Now().Add(23*time.Hour)) {
		t.Fatalf("Remaining = %d, %v; want 4 and a reset a day away", rem, reset)
	}
	if err := a.Identify().CheckBudget(4); err != nil {
		t.Fatalf("CheckBudget(4) with 4 left: %v", err)
	}
}

func TestFleetIdentifyWaitsWhileStoreUnreachable(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	rec := &recorder{}
	s := testSettings("a", 1, fake)
	s.Events = rec
	var downs int
	var mu sync.Mutex
	s.OnUnavailable = func(error) { mu.Lock(); downs++; mu.Unlock() }
	a := newTestFleet(t, store, s)
	sw := watchSlots(t, store)
	store.SetAvailable(false)
	errc := make(chan error, 1)
	go func() { errc <- a.Identify().Wait(context.Background(), 0) }()
	for range 50 {
		fake.BlockUntil(1, 20*time.Millisecond)
		fake.Advance(testInterval)
	}
	select {
	case err := <-errc:
		t.Fatalf("Wait returned %v with the store down", err)
	default:
	}
	if sw.count() != 0 {
		t.Fatalf("a slot was written with the store down")
	}
	if st := a.Stats(); !st.Unavailable || st.IdentifyWaiting != 1 || st.Outages != 1 {
		t.Fatalf("stats during the outage: %+v", st)
	}
	store.SetAvailable(true)
	done := make(chan struct{})
	go func() {
		if err := <-errc; err != nil {
			t.Errorf("Wait after the store came back: %v", err)
		}
		close(done)
	}()
	driveUntil(t, fake, testInterval, done)
	if sw.count() != 1 {
		t.Fatalf("%d slots taken, want 1", sw.count())
	}
	mu.Lock()
	defer mu.Unlock()
	if downs != 1 {
		t.Fatalf("OnUnavailable called %d times, want 1", downs)
	}
	if k := rec.kinds(); len(k) != 1 || k[0] != "unavailable" {
		t.Fatalf("events = %v", k)
	}
}

func TestFleetIdentifyCancelWhileBucketTaken(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	a := newTestFleet(t, store, testSettings("a", 2, fake))
	b := newTestFleet(t, store, testSettings("b", 2, fake))
	if err := a.Identify().Wait(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Identify().Wait(ctx, 1) }()
	fake.BlockUntil(1, time.Second) // b polls the taken bucket
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after cancel = %v", err)
	}
	if rem, _ := b.Identify().Remaining(); rem != 999 {
		t.Fatalf("Remaining = %d, want 999: a cancelled wait must not spend a start", rem)
	}
	if err := b.Identify().Wait(context.Background(), -1); err == nil {
		t.Fatalf("negative shard accepted")
	}
}

func TestFleetIdentifyWaitsForOwnership(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	store := NewMemoryStore(fake)
	w := newWorld()
	a := newTestFleet(t, store, testSettings("a", 2, fake))
	attach(a, w.handler("a")) // Ownership "runs" but holds nothing yet
	errc := make(chan error, 1)
	go func() { errc <- a.Identify().Wait(context.Background(), 1) }()
	for range 5 {
		fake.BlockUntil(1, 20*time.Millisecond)
		fake.Advance(50 * time.Millisecond)
	}
	select {
	case err := <-errc:
		t.Fatalf("Wait returned %v for a shard the process does not hold", err)
	default:
	}
	done := make(chan struct{})
	go func() {
		if err := <-errc; err != nil {
			t.Errorf("Wait: %v", err)
		}
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			if !a.Ownership().Holds(1) {
				t.Fatalf("Wait returned for shard 1 before the process held it")
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Wait never returned after the shard was taken")
		}
		step(a)
		fake.BlockUntil(1, 20*time.Millisecond)
		fake.Advance(50 * time.Millisecond)
	}
}

func TestSyncBudget(t *testing.T) {
	tests := []struct {
		name       string
		stored     conn.SessionStartLimit // seeded first (nil Remaining: no seed)
		fresh      conn.SessionStartLimit
		wantRem    int
		wantResetH float64 // hours from now
	}{
		{"nothing stored", conn.SessionStartLimit{}, conn.SessionStartLimit{Total: 1000, Remaining: 950, ResetAfter: 5 * time.Hour}, 950, 5},
		{"the smaller count wins", conn.SessionStartLimit{Total: 1000, Remaining: 900, ResetAfter: 10 * time.Hour},
			conn.SessionStartLimit{Total: 1000, Remaining: 950, ResetAfter: 10 * time.Hour}, 900, 10},
		{"Discord counted more", conn.SessionStartLimit{Total: 1000, Remaining: 900, ResetAfter: 10 * time.Hour},
			conn.SessionStartLimit{Total: 1000, Remaining: 800, ResetAfter: 10 * time.Hour}, 800, 10},
		{"Discord reset the budget", conn.SessionStartLimit{Total: 1000, Remaining: 3, ResetAfter: time.Hour},
			conn.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: 24 * time.Hour}, 1000, 24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := clock.NewFake(time.Time{})
			store := NewMemoryStore(fake)
			a := newTestFleet(t, store, testSettings("a", 1, fake))
			ctx := context.Background()
			if tt.stored.Total != 0 {
				if err := a.SyncBudget(ctx, tt.stored); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.SyncBudget(ctx, tt.fresh); err != nil {
				t.Fatal(err)
			}
			rem, reset := a.Identify().Remaining()
			if rem != tt.wantRem || reset.Sub(fake.Now()) != time.Duration(tt.wantResetH*float64(time.Hour)) {
				t.Fatalf("Remaining = %d, reset in %v; want %d in %vh", rem, reset.Sub(fake.Now()), tt.wantRem, tt.wantResetH)
			}
		})
	}
}

// slowBudget delays the first write of the shared budget by delay of fake
// time (a compare-and-swap that took long under contention) and records
// when that write was done: the session start is taken then, and the
// IDENTIFY follows at once.
type slowBudget struct {
	Store
	clk   *clock.Fake
	delay time.Duration

	mu      sync.Mutex
	delayed bool
	doneAt  time.Time
}

func (s *slowBudget) Bucket(ctx context.Context, name string, ttl time.Duration) (KV, error) {
	kv, err := s.Store.Bucket(ctx, name, ttl)
	if err != nil || name != BucketState {
		return kv, err
	}
	return slowBudgetKV{KV: kv, s: s}, nil
}

type slowBudgetKV struct {
	KV
	s *slowBudget
}

// write runs one write of key, delaying the budget's first.
func (k slowBudgetKV) write(key string, do func() (uint64, error)) (uint64, error) {
	if key != budgetKey {
		return do()
	}
	k.s.mu.Lock()
	first := !k.s.delayed
	k.s.delayed = true
	k.s.mu.Unlock()
	if !first {
		return do()
	}
	t := k.s.clk.NewTimer(k.s.delay)
	<-t.C()
	rev, err := do()
	k.s.mu.Lock()
	k.s.doneAt = k.s.clk.Now()
	k.s.mu.Unlock()
	return rev, err
}

func (k slowBudgetKV) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	return k.write(key, func() (uint64, error) { return k.KV.Create(ctx, key, v) })
}

func (k slowBudgetKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	return k.write(key, func() (uint64, error) { return k.KV.Update(ctx, key, v, rev) })
}

// The window counts from the IDENTIFY, not from the slot's creation: when
// taking one shard's session start is slow and the next one's is not,
// the next take of the bucket still comes a whole window (and the margin)
// after the slow one's start was taken. Without the slot's refresh after
// the budget, it came 200ms early.
func TestFleetIdentifyWindowCountsFromTheIdentify(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	mem := NewMemoryStore(fake)
	store := &slowBudget{Store: mem, clk: fake, delay: 200 * time.Millisecond}
	s := testSettings("a", 2, fake)
	f := newTestFleet(t, store, s)
	sw := watchSlots(t, mem)
	var wg sync.WaitGroup
	for shard := range 2 {
		wg.Go(func() {
			if err := f.Identify().Wait(context.Background(), shard); err != nil {
				t.Errorf("Wait(%d): %v", shard, err)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	driveUntil(t, fake, 10*time.Millisecond, done)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	store.mu.Lock()
	defer store.mu.Unlock()
	takes := sw.at["bucket.0"]
	if len(takes) < 2 || store.doneAt.IsZero() {
		t.Fatalf("takes %v, slow start taken at %v", takes, store.doneAt)
	}
	for _, at := range takes {
		if at.After(store.doneAt) {
			if gap, want := at.Sub(store.doneAt), s.Window+s.Margin; gap < want {
				t.Fatalf("the bucket was taken again %v after the slow IDENTIFY's start, want at least %v", gap, want)
			}
			return
		}
	}
	t.Fatalf("no take after the slow start (takes %v, start %v)", takes, store.doneAt)
}

// lateSlotReply delays the answer to the first Update of an identify slot
// by delay of fake time, after the store applied it: the slot's TTL
// restarted, and the caller hears of it (and lets its IDENTIFY go) only
// delay later, as on a loaded machine or a slow network. Every applied
// Update of a slot is reported on updates.
type lateSlotReply struct {
	Store
	clk     *clock.Fake
	delay   time.Duration
	updates chan time.Time

	mu      sync.Mutex
	delayed bool
}

func (s *lateSlotReply) Bucket(ctx context.Context, name string, ttl time.Duration) (KV, error) {
	kv, err := s.Store.Bucket(ctx, name, ttl)
	if err != nil || name != BucketSlots {
		return kv, err
	}
	return lateSlotReplyKV{KV: kv, s: s}, nil
}

type lateSlotReplyKV struct {
	KV
	s *lateSlotReply
}

func (k lateSlotReplyKV) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	s := k.s
	nrev, err := k.KV.Update(ctx, key, v, rev)
	if err != nil {
		return nrev, err
	}
	s.updates <- s.clk.Now()
	s.mu.Lock()
	first := !s.delayed
	s.delayed = true
	s.mu.Unlock()
	if first && s.delay > 0 {
		t := s.clk.NewTimer(s.delay)
		<-t.C()
	}
	return nrev, nil
}

// identified is one Wait that returned, with the fake time it returned at.
type identified struct {
	at  time.Time
	err error
}

func identifyAsync(f *Fleet, fake *clock.Fake, shard int) <-chan identified {
	ch := make(chan identified, 1)
	go func() {
		err := f.Identify().Wait(context.Background(), shard)
		ch <- identified{at: fake.Now(), err: err}
	}()
	return ch
}

// recvTime waits (bounded in real time) for a time on ch.
func recvTime(ch <-chan time.Time, within time.Duration) (time.Time, bool) {
	select {
	case at := <-ch:
		return at, true
	case <-time.After(within):
		return time.Time{}, false
	}
}

// The window counts from the moment Wait returned, not from the store's
// last write before it: when the answer to that write comes back late,
// the next process's IDENTIFY of the bucket moves back by as much. Without
// the slot's write after the release, it came as much too early.
func TestFleetIdentifyWindowCountsFromTheRelease(t *testing.T) {
	for _, late := range []time.Duration{0, 183 * time.Millisecond, 700 * time.Millisecond} {
		t.Run(late.String(), func(t *testing.T) {
			fake := clock.NewFake(time.Time{})
			t0 := fake.Now()
			mem := NewMemoryStore(fake)
			store := &lateSlotReply{Store: mem, clk: fake, delay: late, updates: make(chan time.Time, 16)}
			s := testSettings("a", 2, fake)
			gap := s.Window + s.Margin
			a := newTestFleet(t, store, s)
			b := newTestFleet(t, store, testSettings("b", 2, fake))
			sw := watchSlots(t, mem)
			first := identifyAsync(a, fake, 0)
			if _, ok := recvTime(store.updates, 10*time.Second); !ok {
				t.Fatal("a's slot was never written after its session start")
			}
			if late > 0 {
				if !fake.BlockUntil(1, 10*time.Second) {
					t.Fatal("the late answer is not pending")
				}
				fake.Jump(late) // the answer comes, late
			}
			var rel identified
			select {
			case rel = <-first:
			case <-time.After(10 * time.Second):
				t.Fatal("a's Wait did not return")
			}
			if rel.err != nil || !rel.at.Equal(t0.Add(late)) {
				t.Fatalf("a's Wait = %v at %v, want nil at %v", rel.err, rel.at.Sub(t0), late)
			}
			// Let a write after its release land before time moves on (a
			// queue that does not write is checked by what follows).
			_, refreshed := recvTime(store.updates, 10*time.Second)
			next := identifyAsync(b, fake, 1)
			done := make(chan struct{})
			var got identified
			go func() { got = <-next; close(done) }()
			driveUntil(t, fake, 10*time.Millisecond, done)
			if got.err != nil {
				t.Fatalf("b's Wait: %v", got.err)
			}
			sw.mu.Lock()
			takes := sw.at["bucket.0"]
			sw.mu.Unlock()
			if len(takes) != 2 {
				t.Fatalf("bucket.0 taken at %v, want twice", takes)
			}
			if d := takes[1].Sub(rel.at); d < gap {
				t.Fatalf("b took the bucket %v after a's IDENTIFY left (%v late), want at least %v (slot written after the release: %v)",
					d, late, gap, refreshed)
			}
		})
	}
}

// An answer that comes back later than a whole window: the slot may be
// another process's by then, so the late caller does not go; it takes
// the bucket again (without a second session start) and goes a window
// after the other process.
func TestFleetIdentifyAnswerLaterThanTheWindow(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	t0 := fake.Now()
	mem := NewMemoryStore(fake)
	s := testSettings("a", 2, fake)
	gap := s.Window + s.Margin
	late := s.Window + 500*time.Millisecond
	// Room for every Update of the test: only the first two are read.
	store := &lateSlotReply{Store: mem, clk: fake, delay: late, updates: make(chan time.Time, 64)}
	a := newTestFleet(t, store, s)
	b := newTestFleet(t, store, testSettings("b", 2, fake))
	sw := watchSlots(t, mem)
	first := identifyAsync(a, fake, 0)
	if _, ok := recvTime(store.updates, 10*time.Second); !ok || !fake.BlockUntil(1, 10*time.Second) {
		t.Fatal("a's late answer is not pending")
	}
	// a's slot expires while its answer is on the way; b takes the bucket.
	fake.Advance(gap + 50*time.Millisecond)
	rb := <-identifyAsync(b, fake, 1)
	if rb.err != nil || !rb.at.Equal(t0.Add(gap+50*time.Millisecond)) {
		t.Fatalf("b's Wait = %v at %v, want nil at once", rb.err, rb.at.Sub(t0))
	}
	recvTime(store.updates, 10*time.Second) // b's write after its release, if any
	var ra identified
	done := make(chan struct{})
	go func() { ra = <-first; close(done) }()
	driveUntil(t, fake, 10*time.Millisecond, done) // a's answer comes, then a goes again
	if ra.err != nil {
		t.Fatalf("a's Wait: %v", ra.err)
	}
	if d := ra.at.Sub(rb.at); d < gap {
		sw.mu.Lock()
		defer sw.mu.Unlock()
		t.Fatalf("a's IDENTIFY left %v after b's (its answer %v late), want at least %v; bucket taken at %v",
			d, late, gap, sw.at["bucket.0"])
	}
	if rem, _ := a.Identify().Remaining(); rem != 998 {
		t.Fatalf("Remaining = %d, want 998 (one start each)", rem)
	}
}
