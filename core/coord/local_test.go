package coord_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/coord"
)

// shards is a ShardHandler that records what runs.
type shards struct {
	mu      sync.Mutex
	running []int
	log     []string
}

func (s *shards) StartShard(_ context.Context, id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = append(s.running, id)
	s.log = append(s.log, fmt.Sprint("start ", id))
	return nil
}

func (s *shards) StopShard(_ context.Context, id int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = slices.DeleteFunc(s.running, func(x int) bool { return x == id })
	s.log = append(s.log, fmt.Sprint("stop ", id))
	return nil
}

func TestLocalRunsItsShardsAndLeaves(t *testing.T) {
	tests := []struct {
		name  string
		s     coord.LocalSettings
		want  []int
		plan  []string
		error bool
	}{
		{name: "zero value", want: []int{0}, plan: []string{"local"}},
		{name: "all shards", s: coord.LocalSettings{ShardCount: 3, Process: "p"}, want: []int{0, 1, 2}, plan: []string{"p", "p", "p"}},
		{name: "a range", s: coord.LocalSettings{ShardCount: 4, Shards: []int{3, 2, 2}}, want: []int{2, 3}, plan: []string{"", "", "local", "local"}},
		{name: "outside the count", s: coord.LocalSettings{ShardCount: 2, Shards: []int{2}}, error: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := coord.NewLocal(tt.s)
			if tt.error {
				if err == nil {
					t.Fatal("NewLocal accepted a shard outside the count")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := l.Ownership().Leave(ctx); !errors.Is(err, coord.ErrNotStarted) {
				t.Fatalf("Leave before Run = %v, want ErrNotStarted", err)
			}
			h := &shards{}
			done := make(chan error, 1)
			go func() { done <- l.Ownership().Run(ctx, h) }()
			deadline := time.Now().Add(10 * time.Second)
			for !slices.Equal(l.Ownership().Owned(), tt.want) {
				if time.Now().After(deadline) {
					t.Fatalf("Owned = %v, want %v", l.Ownership().Owned(), tt.want)
				}
				time.Sleep(time.Millisecond)
			}
			if !l.Ownership().Holds(tt.want[0]) || l.Ownership().Holds(99) {
				t.Fatal("Holds wrong")
			}
			plan, _ := l.Ownership().Assignments(ctx)
			if !slices.Equal(plan, tt.plan) {
				t.Fatalf("Assignments = %v, want %v", plan, tt.plan)
			}
			if err := l.Ownership().Leave(ctx); err != nil {
				t.Fatalf("Leave: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatalf("Run after Leave = %v", err)
			}
			if len(l.Ownership().Owned()) != 0 || len(h.running) != 0 {
				t.Fatalf("still running after Leave: %v %v", l.Ownership().Owned(), h.running)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLocalIdentifyResumeHealth(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	l, err := coord.NewLocal(coord.LocalSettings{
		ShardCount: 2, Clock: fake,
		Limit: conn.SessionStartLimit{Total: 10, Remaining: 1, ResetAfter: time.Hour, MaxConcurrency: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	q := l.Identify()
	if err := q.CheckBudget(2); !errors.Is(err, conn.ErrSessionStartLimit) {
		t.Fatalf("CheckBudget(2) with 1 left = %v", err)
	}
	if err := q.Wait(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.Wait(ctx, 1); !errors.Is(err, conn.ErrSessionStartLimit) {
		t.Fatalf("Wait with no start left = %v", err)
	}
	if rem, _ := q.Remaining(); rem != 0 {
		t.Fatalf("Remaining = %d", rem)
	}

	rs := l.Resume()
	if _, ok, err := rs.Load(ctx, 1); ok || err != nil {
		t.Fatalf("Load of nothing = %v, %v", ok, err)
	}
	want := coord.ResumeState{Shard: 1, SessionID: "abc", Sequence: 42, ResumeURL: "wss://resume.example", User: []byte(`{"id":"42","username":"bot"}`), Process: "local", SavedAt: fake.Now().UTC()}
	if err := rs.Save(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := rs.Load(ctx, 1)
	if err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if err := rs.Delete(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := rs.Load(ctx, 1); ok {
		t.Fatal("state still there after Delete")
	}
	if err := rs.Save(ctx, coord.ResumeState{Shard: -1}); err == nil {
		t.Fatal("negative shard saved")
	}

	l.Health().Publish(coord.ProcessHealth{Shards: 2, Ready: 1, Unhealthy: 1, WorstAckAge: 3 * time.Second, Degradation: "minor"})
	v, err := l.Health().View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing runs yet (no Run): both shards are unowned, so unhealthy.
	if v.Processes != 1 || v.Leader != "local" || v.Shards != 2 || v.Owned != 0 || v.UnhealthyRatio != 1 || v.Degraded != 1 || v.WorstAckAge != 3*time.Second {
		t.Fatalf("View = %+v", v)
	}
}

// A process that runs alone uses Local: its shards start when Run is
// called and stop on Leave.
func ExampleLocal() {
	l, err := coord.NewLocal(coord.LocalSettings{ShardCount: 2})
	if err != nil {
		panic(err)
	}
	h := &shards{}
	done := make(chan error, 1)
	go func() { done <- l.Ownership().Run(context.Background(), h) }()
	for len(l.Ownership().Owned()) < 2 {
		time.Sleep(time.Millisecond)
	}
	_ = l.Ownership().Leave(context.Background())
	fmt.Println(<-done, h.log)
	// Output: <nil> [start 0 start 1 stop 0 stop 1]
}

// Several Fleets on one MemoryStore behave like several processes on one
// NATS server: here two of them share one identify bucket and one budget.
func ExampleFleet() {
	store := coord.NewMemoryStore(nil)
	ctx := context.Background()
	var fleet []*coord.Fleet
	for _, id := range []string{"bot-1", "bot-2"} {
		f, err := coord.NewFleet(ctx, store, coord.Settings{
			Process: id, ShardCount: 2,
			Limit:  conn.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: time.Hour, MaxConcurrency: 2},
			Window: 100 * time.Millisecond,
		})
		if err != nil {
			panic(err)
		}
		fleet = append(fleet, f)
	}
	// Shard 0 (bucket 0) from bot-1 and shard 1 (bucket 1) from bot-2 go
	// at once; each took one start from the shared budget.
	_ = fleet[0].Identify().Wait(ctx, 0)
	_ = fleet[1].Identify().Wait(ctx, 1)
	rem, _ := fleet[0].Identify().Remaining()
	fmt.Println(rem)
	// Output: 998
}
