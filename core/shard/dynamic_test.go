package shard_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/coord"
	"github.com/lifeline-bot/lifeline/core/shard"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// dynamicConfig is config for a Dynamic manager of count shards.
func dynamicConfig(srv *discordtest.Server, count int) shard.Config {
	cfg := config(srv)
	cfg.Dynamic = true
	cfg.ShardCount = count
	return cfg
}

// watchInto adds v's message handler to m (several managers share one
// view, as the processes of a fleet share one bot).
func watchInto(v *botView, m *shard.Manager, count int) {
	m.AddHandler(func(s *discordgo.Session, msg *discordgo.MessageCreate) {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.got[msg.Content]++
		v.seen++
		if want := discordtest.ShardForGuild(msg.GuildID, count); want != s.ShardID {
			v.bad = append(v.bad, msg.Content+": wrong shard")
		}
	})
}

// waitShards waits until m runs exactly the shards ids, all READY.
func waitShards(t *testing.T, m *shard.Manager, ids ...int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got []int
		ready := 0
		for _, s := range m.Shards() {
			got = append(got, s.ID())
			if s.State() == conn.Ready {
				ready++
			}
		}
		if equalInts(got, ids) && ready == len(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("manager runs %v (%d READY), want %v all READY", got, ready, ids)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// assertOneLiveConnectionPerShard checks in the ledger that no shard ever
// had two gateway connections open at once.
func assertOneLiveConnectionPerShard(t *testing.T, srv *discordtest.Server) {
	t.Helper()
	byShard := map[int][]discordtest.ConnRecord{}
	for _, c := range srv.Ledger().Connections() {
		if c.Shard[1] == 0 {
			continue // never identified or resumed
		}
		byShard[c.Shard[0]] = append(byShard[c.Shard[0]], c)
	}
	for id, cs := range byShard {
		sort.Slice(cs, func(i, j int) bool { return cs[i].OpenedAt.Before(cs[j].OpenedAt) })
		for i := 1; i < len(cs); i++ {
			prev := cs[i-1]
			if !prev.Closed || prev.ClosedAt.After(cs[i].OpenedAt) {
				t.Fatalf("shard %d: connection %d opened at %s while connection %d was still open (closed %v at %s)",
					id, cs[i].ID, cs[i].OpenedAt.Format(time.StampMicro), prev.ID, prev.Closed, prev.ClosedAt.Format(time.StampMicro))
			}
		}
	}
}

// resumedConnections counts, per shard, the connections whose first
// client frame after HELLO was a RESUME.
func resumedConnections(srv *discordtest.Server) map[int]int {
	out := map[int]int{}
	for _, c := range srv.Ledger().Connections() {
		for _, f := range c.Frames {
			if f.Dir != discordtest.Received || f.Op == 1 {
				continue
			}
			if f.Op == 6 {
				out[c.Shard[0]]++
			}
			break
		}
	}
	return out
}

// A Dynamic manager starts no shard; AddShard and RemoveShard run any set
// of shards; a shard removed from one manager and added to another with its
// saved session RESUMEs there (no IDENTIFY), and the messages sent while it
// moved reach the bot exactly once.
func TestDynamicManagerMovesShardsByResume(t *testing.T) {
	const shards = 4
	srv := startFake(t, fakeOptions(shards, 1))
	ctx := context.Background()
	a, err := shard.New(dynamicConfig(srv, shards))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddShard(ctx, 0, nil); !errors.Is(err, shard.ErrNotRunning) {
		t.Fatalf("AddShard before Start = %v, want ErrNotRunning", err)
	}
	b, err := shard.New(dynamicConfig(srv, shards))
	if err != nil {
		t.Fatal(err)
	}
	v := &botView{got: map[string]int{}}
	watchInto(v, a, shards)
	watchInto(v, b, shards)
	start(t, a)
	start(t, b)
	defer stop(t, b)
	if n := len(a.Shards()); n != 0 || a.Count() != shards || a.Range() != (shard.Range{First: 0, Last: shards - 1}) {
		t.Fatalf("after Start: %d shards, count %d, range %v; want none of %d", n, a.Count(), a.Range(), shards)
	}
	for id := range shards {
		if err := a.AddShard(ctx, id, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitShards(t, a, 0, 1, 2, 3)
	first := emit(t, srv, "first")
	v.wait(t, first)

	moved := map[int]conn.SavedSession{}
	for _, id := range []int{1, 3} {
		saved, ok, err := a.RemoveShard(ctx, id)
		if err != nil || !ok || !saved.Valid() {
			t.Fatalf("RemoveShard(%d) = %+v, %v, %v", id, saved, ok, err)
		}
		moved[id] = saved
	}
	waitShards(t, a, 0, 2)
	if a.Shard(1) != nil || a.Shard(2) == nil {
		t.Fatal("Shard() disagrees with Shards()")
	}
	// Sent while shards 1 and 3 have no connection: replayed on RESUME.
	between := emit(t, srv, "between")
	for id, saved := range moved {
		if err := b.AddShard(ctx, id, &saved); err != nil {
			t.Fatal(err)
		}
	}
	waitShards(t, b, 1, 3)
	v.wait(t, append(first, between...))

	if n := len(srv.Ledger().Identifies()); n != shards {
		t.Fatalf("%d IDENTIFYs, want %d (the moves must RESUME)", n, shards)
	}
	if r := resumedConnections(srv); r[1] != 1 || r[3] != 1 {
		t.Fatalf("resumed connections per shard %v, want one each for shards 1 and 3", r)
	}
	for id, saved := range moved {
		if lost := srv.Ledger().Lost(saved.SessionID); len(lost) > 0 {
			t.Fatalf("shard %d lost %v", id, lost)
		}
	}

	errs := []struct {
		name string
		err  error
		want error
	}{
		{"add a running shard", a.AddShard(ctx, 0, nil), shard.ErrShardRunning},
		{"add past the count", a.AddShard(ctx, shards, nil), shard.ErrNoSuchShard},
		{"remove a shard not here", func() error { _, _, err := a.RemoveShard(ctx, 1); return err }(), shard.ErrNoSuchShard},
	}
	for _, e := range errs {
		if !errors.Is(e.err, e.want) {
			t.Errorf("%s: %v, want %v", e.name, e.err, e.want)
		}
	}
	stop(t, a)
	if err := a.AddShard(ctx, 1, nil); !errors.Is(err, shard.ErrStopped) {
		t.Fatalf("AddShard after Stop = %v, want ErrStopped", err)
	}
	assertOneLiveConnectionPerShard(t, srv)
	assertNoViolations(t, srv)
}

// A manager of a fixed range refuses AddShard and RemoveShard, and Dynamic
// cannot be combined with a range.
func TestAddShardNeedsDynamic(t *testing.T) {
	srv := startFake(t, fakeOptions(2, 1))
	cfg := config(srv)
	cfg.ShardCount = 2
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.AddShard(context.Background(), 1, nil); !errors.Is(err, shard.ErrNotDynamic) {
		t.Fatalf("AddShard = %v, want ErrNotDynamic", err)
	}
	if _, _, err := m.RemoveShard(context.Background(), 1); !errors.Is(err, shard.ErrNotDynamic) {
		t.Fatalf("RemoveShard = %v, want ErrNotDynamic", err)
	}
	cfg.Dynamic = true
	cfg.Range = &shard.Range{First: 0, Last: 0}
	if _, err := shard.New(cfg); !errors.Is(err, shard.ErrInvalidRange) {
		t.Fatalf("New with Dynamic and Range = %v, want ErrInvalidRange", err)
	}
}

// With Config.Holds, a dropped shard does not reconnect while the process
// does not hold it, and RESUMEs once it does again.
func TestHoldsGatesReconnects(t *testing.T) {
	const shards = 2
	srv := startFake(t, fakeOptions(shards, 1))
	cfg := dynamicConfig(srv, shards)
	var holds atomic.Bool
	holds.Store(true)
	asked := make(chan int, 64)
	cfg.Holds = func(id int) bool {
		if holds.Load() {
			return true
		}
		select {
		case asked <- id:
		default:
		}
		return false
	}
	cfg.HoldPoll = 5 * time.Millisecond
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, m)
	defer stop(t, m)
	for id := range shards {
		if err := m.AddShard(context.Background(), id, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitShards(t, m, 0, 1)
	connsOf := func(id int) int { return srv.Ledger().ConnectionsPerShard()[id] }
	before := connsOf(0)

	holds.Store(false)
	if err := srv.DropConnections(0); err != nil {
		t.Fatal(err)
	}
	for range 3 { // asked three times: it is waiting, not passing
		select {
		case id := <-asked:
			if id != 0 {
				t.Fatalf("Holds asked for shard %d, only shard 0 reconnects", id)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the reconnect never asked Holds")
		}
	}
	if n := connsOf(0); n != before {
		t.Fatalf("shard 0 reconnected (%d connections, was %d) while not held", n, before)
	}
	holds.Store(true)
	waitAllReady(t, m, 1)
	if n := len(srv.Ledger().Identifies()); n != shards {
		t.Fatalf("%d IDENTIFYs, want %d: the reconnect must RESUME", n, shards)
	}
	assertNoViolations(t, srv)
}

// fleetProcess is one "process" of an in-memory fleet: a Dynamic manager
// run by a coord.Fleet through a CoordHandler.
type fleetProcess struct {
	fleet *coord.Fleet
	mgr   *shard.Manager
	h     *shard.CoordHandler
	done  chan error
}

func startFleetProcess(t *testing.T, srv *discordtest.Server, store coord.Store, id string, count int, v *botView) *fleetProcess {
	t.Helper()
	ctx := context.Background()
	f, err := coord.NewFleet(ctx, store, coord.Settings{Process: id, ShardCount: count,
		Window: srv.IdentifyWindow(), Margin: srv.IdentifyWindow() / 2,
		LeaseTTL: time.Second, Interval: 50 * time.Millisecond, Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cfg := dynamicConfig(srv, count)
	cfg.IdentifyQueue = f.Identify()
	cfg.Holds = f.Ownership().Holds
	m, err := shard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	watchInto(v, m, count)
	start(t, m)
	p := &fleetProcess{fleet: f, mgr: m, done: make(chan error, 1),
		h: &shard.CoordHandler{Manager: m, Resume: f.Resume(), Process: id, Holds: f.Ownership().Holds}}
	go func() { p.done <- f.Ownership().Run(ctx, p.h) }()
	return p
}

// leave hands the process's shards over and stops it.
func (p *fleetProcess) leave(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.fleet.Ownership().Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	stop(t, p.mgr)
	p.fleet.Close()
}

// Two processes of a fleet (coord.Fleet over one MemoryStore) running
// Dynamic managers through CoordHandler: the first takes every shard; the
// second joins and takes half by handover; the first leaves and the second
// takes the rest. Every move is a RESUME (four IDENTIFYs in all, one per
// shard), no shard has two live connections, no message is lost or
// delivered twice, and SaveAll stores what a next owner needs.
func TestCoordHandlerHandsShardsOverByResume(t *testing.T) {
	const shards = 4
	srv := startFake(t, fakeOptions(shards, 1))
	store := coord.NewMemoryStore(nil)
	v := &botView{got: map[string]int{}}

	a := startFleetProcess(t, srv, store, "a", shards, v)
	waitShards(t, a.mgr, 0, 1, 2, 3)
	first := emit(t, srv, "first")
	v.wait(t, first)

	b := startFleetProcess(t, srv, store, "b", shards, v)
	waitOwned := func(p *fleetProcess, n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ready := 0
			for _, s := range p.mgr.Shards() {
				if s.State() == conn.Ready {
					ready++
				}
			}
			if len(p.mgr.Shards()) == n && ready == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("process runs %d shards (%d READY), want %d", len(p.mgr.Shards()), ready, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOwned(b, shards/2)
	waitOwned(a, shards/2)
	second := emit(t, srv, "second")
	v.wait(t, append(first, second...))

	a.leave(t)
	waitOwned(b, shards)
	third := emit(t, srv, "third")
	v.wait(t, append(append(first, second...), third...))

	if n := len(srv.Ledger().Identifies()); n != shards {
		t.Fatalf("%d IDENTIFYs, want %d: every handover must RESUME", n, shards)
	}
	resumed := resumedConnections(srv)
	total := 0
	for _, n := range resumed {
		total += n
	}
	if total != shards { // two moved to b, then two more
		t.Fatalf("resumed connections %v (%d), want %d", resumed, total, shards)
	}

	ctx := context.Background()
	n, err := b.h.SaveAll(ctx)
	if err != nil || n != shards {
		t.Fatalf("SaveAll = %d, %v; want %d saved", n, err, shards)
	}
	if n, err := b.h.SaveAll(ctx); err != nil || n != 0 {
		t.Fatalf("SaveAll again = %d, %v; want 0 (nothing changed)", n, err)
	}
	for _, s := range b.mgr.Shards() {
		st, ok, err := b.fleet.Resume().Load(ctx, s.ID())
		cur, _ := s.Connection().SavedSession()
		if err != nil || !ok || st.SessionID != cur.SessionID || st.Sequence != cur.Sequence || st.Process != "b" || len(st.User) == 0 {
			t.Fatalf("stored state of shard %d = %+v, %v, %v; want %+v saved by b", s.ID(), st, ok, err, cur)
		}
	}
	b.leave(t)
	assertOneLiveConnectionPerShard(t, srv)
	assertNoViolations(t, srv)
}

// View, Tick and SetBreakerSettings read the shard list after unlocking
// while AddShard and RemoveShard change it (the fleet's ownership loop
// does, beside the orchestrator's tick): the list is copy-on-write, so the
// race detector finds nothing and no reader sees a nil shard. Before,
// slices.Insert and slices.Delete wrote the array a reader held (a data
// race that killed a fleet process under -race).
//
// The shards are removed right after they are added, while still
// launching: each removed shard's connection must end (before, a Stop
// that ran before Start had begun found nothing to stop, and the
// connection ran on out of the list: goleak found its loop at the end).
func TestShardListReadersRaceAddAndRemove(t *testing.T) {
	const shards = 4
	srv := startFake(t, fakeOptions(shards, 1))
	ctx := context.Background()
	m, err := shard.New(dynamicConfig(srv, shards))
	if err != nil {
		t.Fatal(err)
	}
	start(t, m)
	defer stop(t, m)
	if err := m.AddShard(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	readers := make(chan error, 1)
	go func() {
		defer close(readers)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			v := m.View()
			for _, sv := range v.Shards {
				if sv.State == "" {
					readers <- fmt.Errorf("view %d: a shard without a state: %+v", i, sv)
					return
				}
			}
			m.SetBreakerSettings(breaker.Settings{})
			if i%10 == 0 {
				m.Tick(ctx)
			}
		}
	}()
	// Bounded: three rounds of adding and removing shards 1-3 (each a
	// real connection to the fake).
	for range 3 {
		for id := 1; id < shards; id++ {
			if err := m.AddShard(ctx, id, nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []int{2, 1, 3} {
			if _, _, err := m.RemoveShard(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	if err := <-readers; err != nil {
		t.Fatal(err)
	}
	waitShards(t, m, 0)
	for _, c := range srv.Ledger().Connections() {
		if c.Shard[0] != 0 && !c.Closed {
			t.Errorf("shard %d: connection %d still open after RemoveShard", c.Shard[0], c.ID)
		}
	}
	assertOneLiveConnectionPerShard(t, srv)
}
