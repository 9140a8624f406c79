package shard_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/shard"
)

// admission is one attempt the gate let through.
type admission struct {
	shard  int
	resume bool
	at     time.Duration // fake time since the test began
}

func (a admission) String() string { return fmt.Sprintf("{%d %v %v}", a.shard, a.resume, a.at) }

// gateRig is a Gate on a fake clock that records its admissions.
type gateRig struct {
	t     *testing.T
	clk   *clock.Fake
	t0    time.Time
	gate  *shard.Gate
	mu    sync.Mutex
	order []admission
	wg    sync.WaitGroup
}

func newGateRig(t *testing.T, s shard.GateSettings) *gateRig {
	r := &gateRig{t: t, clk: clock.NewFake(time.Time{})}
	r.t0 = r.clk.Now()
	s.Clock = r.clk
	s.OnAdmit = func(shard int, resume bool, _ time.Duration) {
		r.mu.Lock()
		r.order = append(r.order, admission{shard, resume, r.clk.Since(r.t0)})
		r.mu.Unlock()
	}
	r.gate = shard.NewGate(s)
	return r
}

// wait starts a Wait on its own goroutine and returns once it is either
// admitted or queued, so arrival order is the call order.
func (r *gateRig) wait(ctx context.Context, id int, resume bool) {
	r.t.Helper()
	before := r.gate.Stats()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = r.gate.Wait(ctx, id, resume)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.gate.Stats()
		if st.Waiting > before.Waiting || st.Resumes+st.Identifies > before.Resumes+before.Identifies {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("Wait(%d) neither queued nor returned", id)
		}
		time.Sleep(time.Millisecond)
	}
}

// step advances the fake clock by d once the head of the queue waits on
// a timer, and waits until the gate has let n attempts through in all.
func (r *gateRig) step(d time.Duration, n int) {
	r.t.Helper()
	if !r.clk.BlockUntil(1, 10*time.Second) {
		r.t.Fatal("the head of the queue never waited for a token")
	}
	r.clk.Advance(d)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.order)
		r.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d admissions after advancing %v, want %d", got, d, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *gateRig) admissions() []admission {
	r.wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]admission(nil), r.order...)
}

// Burst attempts go at once; the others follow one per Interval (the
// jitter is fixed by Rand), in arrival order.
func TestGateBurstThenPaced(t *testing.T) {
	r := newGateRig(t, shard.GateSettings{Interval: 100 * time.Millisecond, Burst: 2, Rand: func() float64 { return 0.5 }})
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		r.wait(ctx, i, true)
	}
	for n := 3; n <= 6; n++ {
		r.step(100*time.Millisecond, n)
	}
	got := fmt.Sprint(r.admissions())
	want := "[{0 true 0s} {1 true 0s} {2 true 100ms} {3 true 200ms} {4 true 300ms} {5 true 400ms}]"
	if got != want {
		t.Fatalf("admissions\n got %s\nwant %s", got, want)
	}
	st := r.gate.Stats()
	if st.Resumes != 6 || st.Delayed != 4 || st.MaxWaiting != 4 || st.Waiting != 0 || st.LongestWait != 400*time.Millisecond {
		t.Fatalf("stats %+v", st)
	}
}

// Waiting RESUMEs go before waiting IDENTIFYs, whatever the arrival
// order; each kind keeps its arrival order.
func TestGateResumesFirst(t *testing.T) {
	r := newGateRig(t, shard.GateSettings{Interval: 100 * time.Millisecond, Burst: 1, Rand: func() float64 { return 0.5 }})
	ctx := context.Background()
	r.wait(ctx, 0, false) // takes the only token
	r.wait(ctx, 1, false)
	r.wait(ctx, 2, false)
	r.wait(ctx, 3, true)
	r.wait(ctx, 4, true)
	for n := 2; n <= 5; n++ {
		r.step(100*time.Millisecond, n)
	}
	var order []int
	for _, a := range r.admissions() {
		order = append(order, a.shard)
	}
	if got := fmt.Sprint(order); got != "[0 3 4 1 2]" {
		t.Fatalf("admission order %s, want [0 3 4 1 2]", got)
	}
}

// Each spacing is Interval × (1 + Jitter × (2r − 1)).
func TestGateJitter(t *testing.T) {
	cases := []struct {
		r      float64
		jitter float64
		want   time.Duration
	}{
		{0, 0.5, 50 * time.Millisecond},
		{0.5, 0.5, 100 * time.Millisecond},
		{0.75, 0.5, 125 * time.Millisecond},
		{0, -1, 100 * time.Millisecond}, // no jitter
		{0, 1, 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("r=%v jitter=%v", tc.r, tc.jitter), func(t *testing.T) {
			r := newGateRig(t, shard.GateSettings{Interval: 100 * time.Millisecond, Burst: 1, Jitter: tc.jitter,
				Rand: func() float64 { return tc.r }})
			ctx := context.Background()
			r.wait(ctx, 0, true)
			if tc.want == 0 {
				r.wait(ctx, 1, true) // a zero spacing: the token is there at once
			} else {
				r.wait(ctx, 1, true)
				r.step(tc.want, 2)
			}
			got := r.admissions()
			if len(got) != 2 || got[1].at != tc.want {
				t.Fatalf("admissions %v, want the second at %v", got, tc.want)
			}
		})
	}
}

// An idle gate refills to Burst.
func TestGateRefillsWhileIdle(t *testing.T) {
	r := newGateRig(t, shard.GateSettings{Interval: 100 * time.Millisecond, Burst: 3, Rand: func() float64 { return 0.5 }})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		r.wait(ctx, i, true)
	}
	r.clk.Advance(time.Second)
	for i := 3; i < 6; i++ {
		r.wait(ctx, i, true)
	}
	for _, a := range r.admissions() {
		if want := time.Duration(0); a.shard >= 3 {
			want = time.Second
			if a.at != want {
				t.Fatalf("shard %d admitted at %v, want %v (a full bucket after idling)", a.shard, a.at, want)
			}
		} else if a.at != want {
			t.Fatalf("shard %d admitted at %v, want %v", a.shard, a.at, want)
		}
	}
	if st := r.gate.Stats(); st.Delayed != 0 {
		t.Fatalf("stats %+v: nothing should have waited", st)
	}
}

// A wait whose context ends leaves the queue; the next one takes its turn.
func TestGateCanceledWaitLeavesQueue(t *testing.T) {
	r := newGateRig(t, shard.GateSettings{Interval: 100 * time.Millisecond, Burst: 1, Rand: func() float64 { return 0.5 }})
	r.wait(context.Background(), 0, true)
	ctx, cancel := context.WithCancel(context.Background())
	r.wait(ctx, 1, true)
	r.wait(context.Background(), 2, true)
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for r.gate.Stats().Canceled == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the canceled wait never left")
		}
		time.Sleep(time.Millisecond)
	}
	r.step(100*time.Millisecond, 2)
	got := r.admissions()
	if len(got) != 2 || got[1].shard != 2 || got[1].at != 100*time.Millisecond {
		t.Fatalf("admissions %v, want shard 2 at 100ms", got)
	}
	if st := r.gate.Stats(); st.Canceled != 1 || st.Waiting != 0 {
		t.Fatalf("stats %+v", st)
	}
}
