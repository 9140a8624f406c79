package conn

import (
	"context"
	"errors"
	"fmt"
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

// TestLocalIdentifyQueueRollsOverWithoutAWait: once the reset time has
// passed, every reader of the budget (Remaining, CheckBudget, Wait) sees
// the new day's budget, whether or not an IDENTIFY came in between, and the
// reset schedule moves by whole days whoever reads it first and when.
func TestLocalIdentifyQueueRollsOverWithoutAWait(t *testing.T) {
	start := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := []struct {
		name      string
		remaining int           // starts left when the queue is made (Total 10)
		advance   time.Duration // from start, ResetAfter being 1h
		read      string        // "remaining", "check" or "wait"
		want      int           // starts left after the read
		wantReset time.Time
	}{
		{"before the reset nothing changes", 2, 59*time.Minute + 30*time.Second, "remaining", 2, start.Add(time.Hour)},
		{"Remaining at the reset", 2, time.Hour, "remaining", 10, start.Add(time.Hour + day)},
		{"Remaining long after the reset", 0, 3 * time.Hour, "remaining", 10, start.Add(time.Hour + day)},
		{"Remaining days later", 0, time.Hour + 2*day + time.Minute, "remaining", 10, start.Add(time.Hour + 3*day)},
		{"CheckBudget after the reset", 0, 2 * time.Hour, "check", 10, start.Add(time.Hour + day)},
		{"Wait after the reset spends from the new budget", 0, 2 * time.Hour, "wait", 9, start.Add(time.Hour + day)},
		// A full budget at the reset still rolls: the first start of the
		// new day counts against it (it used to be forgotten).
		{"a full budget rolls too", 10, 2 * time.Hour, "wait", 9, start.Add(time.Hour + day)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(start)
			q := NewLocalIdentifyQueue(SessionStartLimit{Total: 10, Remaining: tc.remaining, ResetAfter: time.Hour, MaxConcurrency: 1},
				IdentifyQueueOptions{Clock: clk})
			clk.Advance(tc.advance)
			switch tc.read {
			case "remaining":
			case "check":
				if err := q.CheckBudget(tc.want); err != nil {
					t.Fatalf("CheckBudget(%d) after the reset: %v", tc.want, err)
				}
			case "wait":
				if err := q.Wait(context.Background(), 0); err != nil {
					t.Fatalf("Wait after the reset: %v", err)
				}
			}
			got, reset := q.Remaining()
			if got != tc.want || !reset.Equal(tc.wantReset) {
				t.Fatalf("Remaining() = %d, reset %v; want %d, reset %v", got, reset, tc.want, tc.wantReset)
			}
			// Reading again a little later changes nothing.
			clk.Advance(29 * time.Second)
			if again, r2 := q.Remaining(); again != got || !r2.Equal(reset) {
				t.Fatalf("a second read gave %d, %v after %d, %v", again, r2, got, reset)
			}
		})
	}
}

// TestLocalIdentifyQueueSpentBudgetComesBackOnTime: a spent budget refuses
// until the reset and is whole at the reset, for CheckBudget as for Wait,
// and the error names the reset time.
func TestLocalIdentifyQueueSpentBudgetComesBackOnTime(t *testing.T) {
	start := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	q := NewLocalIdentifyQueue(SessionStartLimit{Total: 3, Remaining: 0, ResetAfter: 10 * time.Minute, MaxConcurrency: 1},
		IdentifyQueueOptions{Clock: clk})
	var se *SessionStartLimitError
	if err := q.CheckBudget(1); !errors.As(err, &se) || !se.ResetAt.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("CheckBudget(1) with nothing left = %v", err)
	}
	clk.Advance(10*time.Minute - time.Nanosecond)
	if err := q.Wait(context.Background(), 0); !errors.Is(err, ErrSessionStartLimit) {
		t.Fatalf("Wait a nanosecond before the reset = %v", err)
	}
	clk.Advance(time.Nanosecond)
	if err := q.CheckBudget(3); err != nil {
		t.Fatalf("CheckBudget(3) at the reset: %v", err)
	}
	if r, _ := q.Remaining(); r != 3 {
		t.Fatalf("remaining at the reset %d, want 3", r)
	}
}

// TestLocalIdentifyQueueCancelAcrossTheResetKeepsTheNewBudget: a start
// taken from yesterday's budget and given back (its Wait cancelled) after
// the budget rolled over is not added to today's, which would exceed Total.
func TestLocalIdentifyQueueCancelAcrossTheResetKeepsTheNewBudget(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	q := NewLocalIdentifyQueue(SessionStartLimit{Total: 5, Remaining: 5, MaxConcurrency: 1, ResetAfter: time.Second},
		IdentifyQueueOptions{Clock: clk, Window: 5 * time.Second})
	if err := q.Wait(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- q.Wait(ctx, 0) }() // waits for the bucket's next slot
	if !clk.BlockUntil(1, 5*time.Second) {
		t.Fatal("second Wait is not waiting")
	}
	clk.Advance(2 * time.Second) // past the reset, before the slot
	if r, _ := q.Remaining(); r != 5 {
		t.Fatalf("remaining after the reset %d, want 5", r)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if r, _ := q.Remaining(); r != 5 {
		t.Fatalf("remaining after the cancelled start was given back %d, want 5 (Total)", r)
	}
}

func TestDefaultIdentifyMargin(t *testing.T) {
	for _, tc := range []struct {
		window, want time.Duration
	}{
		{5 * time.Second, 250 * time.Millisecond}, // Discord's window: a twentieth
		{2 * time.Second, 100 * time.Millisecond},
		{time.Second, MinIdentifyMargin},            // a twentieth: exactly the floor
		{500 * time.Millisecond, MinIdentifyMargin}, // a twentieth would be 25ms
		{62500 * time.Microsecond, MinIdentifyMargin},
		{time.Millisecond, MinIdentifyMargin},
		{0, MinIdentifyMargin},
	} {
		if got := DefaultIdentifyMargin(tc.window); got != tc.want {
			t.Errorf("DefaultIdentifyMargin(%v) = %v, want %v", tc.window, got, tc.want)
		}
	}
}

// At a scaled-down window the queue keeps the margin floor between two
// IDENTIFYs of a bucket, not a twentieth of the window: the delay between
// letting an IDENTIFY go and its bytes leaving does not scale.
func TestLocalIdentifyQueueKeepsTheMarginFloorAtSmallWindows(t *testing.T) {
	const window = 62500 * time.Microsecond // Discord's 5s at Scale 80
	clk := clock.NewFake(time.Time{})
	q := NewLocalIdentifyQueue(SessionStartLimit{Total: 10, Remaining: 10, ResetAfter: time.Hour, MaxConcurrency: 1},
		IdentifyQueueOptions{Clock: clk, Window: window})
	ctx := context.Background()
	if err := q.Wait(ctx, 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Wait(ctx, 1) }()
	if !clk.BlockUntil(1, 5*time.Second) {
		t.Fatal("the second shard of the bucket is not waiting")
	}
	clk.Advance(window + MinIdentifyMargin - time.Nanosecond)
	if n := clk.Waiters(); n != 1 {
		t.Fatalf("%d timers pending just before window + floor, want the second shard's", n)
	}
	clk.Advance(time.Nanosecond)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second): // a safety net against a hang, not a timing assertion
		t.Fatal("the second shard did not go at window + floor")
	}
}

func ExampleDefaultIdentifyMargin() {
	fmt.Println(DefaultIdentifyMargin(5 * time.Second))          // Discord's window
	fmt.Println(DefaultIdentifyMargin(62500 * time.Microsecond)) // a fake Discord at Scale 80
	// Output:
	// 250ms
	// 50ms
}

// released is one Wait that returned: the shard and the fake time it
// returned at.
type released struct {
	shard int
	at    time.Time
	err   error
}

// queueWaitAsync runs q.Wait for shard on its own goroutine and sends what
// it returned, with the fake time, on out.
func queueWaitAsync(ctx context.Context, q *LocalIdentifyQueue, clk *clock.Fake, shard int, out chan<- released) {
	go func() {
		err := q.Wait(ctx, shard)
		out <- released{shard: shard, at: clk.Now(), err: err}
	}()
}

// recvReleased returns the next Wait that returned, failing t when none
// does within a generous real-time bound (a safety net against a hang,
// not a timing assertion).
func recvReleased(t *testing.T, out <-chan released, what string) released {
	t.Helper()
	select {
	case r := <-out:
		if r.err != nil {
			t.Fatalf("%s: Wait(%d) = %v", what, r.shard, r.err)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no Wait returned", what)
		return released{}
	}
}

// A bucket's next turn counts from the moment the previous caller was
// really let go (the clock's now when its Wait returned), not from the
// turn it was given: when its timer fires late (a loaded machine), the
// next IDENTIFY of the bucket moves back by as much, so the two never
// leave closer than the window plus the margin. The fake clock jumps past
// the turn, as a process sees it after a stall.
func TestLocalIdentifyQueueCountsTheWindowFromTheRelease(t *testing.T) {
	const (
		window = 5 * time.Second
		margin = time.Second
		gap    = window + margin
	)
	tests := []struct {
		name string
		late time.Duration // how late the second caller's timer fires
	}{
		{"on time", 0},
		{"a little late", 183 * time.Millisecond}, // what was seen under load
		{"later than the margin", 1500 * time.Millisecond},
		// Later than the third caller's old turn: the old queue let both
		// go at the same instant.
		{"past the next turn", gap + time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(time.Time{})
			t0 := clk.Now()
			queued := make(chan int, 4)
			q := NewLocalIdentifyQueue(SessionStartLimit{Total: 10, Remaining: 10, ResetAfter: time.Hour, MaxConcurrency: 1},
				IdentifyQueueOptions{Clock: clk, Window: window, Margin: margin, WarnBelow: 100,
					OnLow: func(r int, _ time.Time) { queued <- r }}) // called once each Wait has its place
			ctx := context.Background()
			out := make(chan released, 3)
			queueWaitAsync(ctx, q, clk, 0, out)
			<-queued
			if r := recvReleased(t, out, "the first caller"); !r.at.Equal(t0) {
				t.Fatalf("the first caller went at %v, want at once", r.at.Sub(t0))
			}
			queueWaitAsync(ctx, q, clk, 1, out)
			<-queued
			queueWaitAsync(ctx, q, clk, 2, out)
			<-queued
			if !clk.BlockUntil(1, 5*time.Second) {
				t.Fatal("no caller waits for its turn")
			}
			// Up to just before the second caller's turn: nobody goes.
			clk.Advance(gap - 100*time.Millisecond)
			select {
			case r := <-out:
				t.Fatalf("shard %d went %v after the first, before its turn", r.shard, r.at.Sub(t0))
			default:
			}
			// Its timer fires late.
			clk.Jump(100*time.Millisecond + tc.late)
			second := recvReleased(t, out, "the second caller")
			if want := t0.Add(gap + tc.late); !second.at.Equal(want) {
				t.Fatalf("the second caller went at %v, want %v", second.at.Sub(t0), want.Sub(t0))
			}
			// The third goes a whole gap after the second really went,
			// not a gap after the second's turn.
			if !clk.BlockUntil(1, 5*time.Second) {
				t.Fatal("the third caller does not wait for its turn")
			}
			due := second.at.Add(gap)
			clk.Set(due.Add(-time.Nanosecond))
			if n := clk.Waiters(); n != 1 {
				t.Fatalf("%d timers pending %v after the second caller went, want the third caller's (it must wait %v)",
					n, clk.Now().Sub(second.at), gap)
			}
			select {
			case r := <-out:
				t.Fatalf("shard %d went %v after the second, want at least %v", r.shard, r.at.Sub(second.at), gap)
			default:
			}
			clk.Advance(time.Nanosecond)
			third := recvReleased(t, out, "the third caller")
			if !third.at.Equal(due) {
				t.Fatalf("the third caller went %v after the second, want %v", third.at.Sub(second.at), gap)
			}
			if r, _ := q.Remaining(); r != 7 {
				t.Fatalf("remaining %d, want 7", r)
			}
		})
	}
}

// A caller that cancels gives its turn back as well as its start: the next
// caller of the bucket goes a gap after the last IDENTIFY that really went,
// not after the turn nobody used.
func TestLocalIdentifyQueueCancelGivesTheTurnBack(t *testing.T) {
	const gap = 6 * time.Second
	for _, cancelled := range []string{"the caller whose turn is next", "a caller further back"} {
		t.Run(cancelled, func(t *testing.T) {
			clk := clock.NewFake(time.Time{})
			t0 := clk.Now()
			queued := make(chan int, 4)
			q := NewLocalIdentifyQueue(SessionStartLimit{Total: 10, Remaining: 10, ResetAfter: time.Hour, MaxConcurrency: 1},
				IdentifyQueueOptions{Clock: clk, Window: 5 * time.Second, Margin: time.Second, WarnBelow: 100,
					OnLow: func(r int, _ time.Time) { queued <- r }})
			if err := q.Wait(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			<-queued
			out := make(chan released, 3)
			ctxs := map[int]context.CancelFunc{}
			for _, shard := range []int{1, 2, 3} {
				ctx, cancel := context.WithCancel(context.Background())
				ctxs[shard] = cancel
				queueWaitAsync(ctx, q, clk, shard, out)
				<-queued
			}
			if !clk.BlockUntil(1, 5*time.Second) {
				t.Fatal("no caller waits for its turn")
			}
			clk.Advance(time.Second)
			victim, first, second := 1, 2, 3
			if cancelled != "the caller whose turn is next" {
				victim, first, second = 2, 1, 3
			}
			ctxs[victim]()
			if r := <-out; r.shard != victim || !errors.Is(r.err, context.Canceled) {
				t.Fatalf("the cancelled caller's Wait returned %+v", r)
			}
			if r, _ := q.Remaining(); r != 7 {
				t.Fatalf("remaining %d after the cancel, want 7 (its start given back)", r)
			}
			if !clk.BlockUntil(1, 5*time.Second) {
				t.Fatal("no caller waits for its turn after the cancel")
			}
			clk.Set(t0.Add(gap))
			if r := recvReleased(t, out, "the next caller"); r.shard != first || !r.at.Equal(t0.Add(gap)) {
				t.Fatalf("shard %d went at %v, want shard %d at %v", r.shard, r.at.Sub(t0), first, gap)
			}
			if !clk.BlockUntil(1, 5*time.Second) {
				t.Fatal("the last caller does not wait for its turn")
			}
			clk.Set(t0.Add(2 * gap))
			if r := recvReleased(t, out, "the last caller"); r.shard != second || !r.at.Equal(t0.Add(2*gap)) {
				t.Fatalf("shard %d went at %v, want shard %d at %v", r.shard, r.at.Sub(t0), second, 2*gap)
			}
			for _, c := range ctxs {
				c()
			}
		})
	}
}

// A caller whose ctx has already ended spends no session start and takes
// no turn: the next caller of the bucket goes at once.
func TestLocalIdentifyQueueCancelledBeforeWaitSpendsNothing(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	q := NewLocalIdentifyQueue(SessionStartLimit{Total: 5, Remaining: 5, MaxConcurrency: 1, ResetAfter: time.Hour},
		IdentifyQueueOptions{Clock: clk})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Wait(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled ctx = %v", err)
	}
	if r, _ := q.Remaining(); r != 5 {
		t.Fatalf("remaining %d, want 5", r)
	}
	if err := q.Wait(context.Background(), 0); err != nil { // at once: nothing went before
		t.Fatal(err)
	}
	if n := clk.Waiters(); n != 0 {
		t.Fatalf("%d timers pending after an immediate Wait", n)
	}
}
