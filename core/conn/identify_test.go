package conn

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

func TestLocalIdentifyQueueSpacesBucketsAndCountsBudget(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	var lowMu sync.Mutex
	var low []int
	q := NewLocalIdentifyQueue(SessionStartLimit{Total: 10, Remaining: 4, ResetAfter: time.Hour, MaxConcurrency: 2},
		IdentifyQueueOptions{Clock: clk, Window: 5 * time.Second, Margin: time.Second, WarnBelow: 3,
			OnLow: func(r int, _ time.Time) { lowMu.Lock(); low = append(low, r); lowMu.Unlock() }})
	ctx := context.Background()
	start := clk.Now()
	done := make(chan int, 3)
	for _, shard := range []int{0, 1, 2} { // shards 0 and 2 share bucket 0
		go func(shard int) {
			if err := q.Wait(ctx, shard); err != nil {
				t.Error(err)
			}
			done <- shard
		}(shard)
	}
	// One shard per bucket goes at once; the second of bucket 0 waits one
	// window plus the margin.
	got := map[int]bool{<-done: true, <-done: true}
	if !(got[1] && (got[0] || got[2])) {
		t.Fatalf("immediate shards %v: want 1 and one of 0, 2", got)
	}
	if !clk.BlockUntil(1, 5*time.Second) {
		t.Fatal("third shard not waiting")
	}
	clk.Advance(6*time.Second - time.Millisecond)
	select {
	case s := <-done:
		t.Fatalf("shard %d went before window + margin", s)
	case <-time.After(20 * time.Millisecond):
	}
	clk.Advance(time.Millisecond)
	<-done
	if r, _ := q.Remaining(); r != 1 {
		t.Fatalf("remaining %d, want 1", r)
	}
	if err := q.CheckBudget(2); !errors.Is(err, ErrSessionStartLimit) {
		t.Fatalf("CheckBudget(2) = %v", err)
	}
	if err := q.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
	err := q.Wait(ctx, 1)
	var se *SessionStartLimitError
	if !errors.As(err, &se) || !errors.Is(err, ErrSessionStartLimit) {
		t.Fatalf("Wait with no budget = %v", err)
	}
	if !se.ResetAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("reset at %v", se.ResetAt)
	}
	lowMu.Lock()
	if len(low) == 0 {
		t.Error("OnLow never called")
	}
	lowMu.Unlock()
	// After the reset the budget is whole again.
	clk.Advance(time.Hour)
	if err := q.Wait(ctx, 0); err != nil {
		t.Fatalf("after reset: %v", err)
	}
	if r, _ := q.Remaining(); r != 9 {
		t.Fatalf("remaining after reset %d, want 9", r)
	}
}

func TestLocalIdentifyQueueCancelGivesStartBack(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	q := NewLocalIdentifyQueue(SessionStartLimit{Total: 5, Remaining: 5, MaxConcurrency: 1, ResetAfter: time.Hour},
		IdentifyQueueOptions{Clock: clk})
	if err := q.Wait(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- q.Wait(ctx, 0) }()
	clk.BlockUntil(1, 5*time.Second)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if r, _ := q.Remaining(); r != 4 {
		t.Fatalf("remaining %d, want 4 (the cancelled start given back)", r)
	}
}
