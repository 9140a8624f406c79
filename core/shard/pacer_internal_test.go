package shard

import (
	"context"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// acquireAsync runs acquire on its own goroutine; the channel gets the
// fake time it returned at.
func acquireAsync(p *pacer, clk *clock.Fake, shard int) <-chan time.Time {
	ch := make(chan time.Time, 1)
	go func() {
		if err := p.acquire(context.Background(), shard); err == nil {
			ch <- clk.Now()
		}
		close(ch)
	}()
	return ch
}

func mustNotReturn(t *testing.T, ch <-chan time.Time, what string) {
	t.Helper()
	select {
	case at := <-ch:
		t.Fatalf("%s returned at %v", what, at)
	default:
	}
}

func mustReturn(t *testing.T, ch <-chan time.Time, want time.Time, what string) {
	t.Helper()
	select {
	case at := <-ch:
		if !at.Equal(want) {
			t.Fatalf("%s returned at %v, want %v", what, at, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never returned", what)
	}
}

// The next IDENTIFY of a bucket leaves a gap after the previous one was
// written, however late that was; other buckets do not wait.
func TestPacerSpacesFromTheWrite(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	t0 := clk.Now()
	p := newPacer(clk, 100*time.Millisecond, 20*time.Millisecond, 2) // gap 120ms
	ctx := context.Background()
	if err := p.acquire(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Shard 1 is in the other bucket: at once.
	if err := p.acquire(ctx, 1); err != nil {
		t.Fatal(err)
	}
	p.armed = make(chan time.Duration)
	next := acquireAsync(p, clk, 2) // bucket 0, held by shard 0
	if w := <-p.armed; w != p.hold {
		t.Fatalf("shard 2 waits %v for the holder, want the hold time %v", w, p.hold)
	}
	clk.Advance(40 * time.Millisecond) // shard 0 writes its IDENTIFY late
	mustNotReturn(t, next, "shard 2's acquire while shard 0 holds the bucket")
	p.sent(0, clk.Now())
	if w := <-p.armed; w != 120*time.Millisecond {
		t.Fatalf("shard 2 waits %v after the write, want the gap", w)
	}
	clk.Advance(119 * time.Millisecond)
	mustNotReturn(t, next, "shard 2's acquire before the gap")
	clk.Advance(time.Millisecond)
	mustReturn(t, next, t0.Add(160*time.Millisecond), "shard 2's acquire")
}

// An attempt that ended without an IDENTIFY frees the bucket at once; a
// holder that never reports frees it after the hold time.
func TestPacerAbandonAndHold(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	t0 := clk.Now()
	p := newPacer(clk, 100*time.Millisecond, 20*time.Millisecond, 1)
	ctx := context.Background()
	if err := p.acquire(ctx, 0); err != nil {
		t.Fatal(err)
	}
	next := acquireAsync(p, clk, 1)
	if !clk.BlockUntil(1, 10*time.Second) {
		t.Fatal("shard 1 did not wait")
	}
	p.abandon(0)
	mustReturn(t, next, t0, "shard 1's acquire after shard 0 abandoned")

	// Shard 1 now holds the bucket and never reports.
	p.armed = make(chan time.Duration, 1)
	late := acquireAsync(p, clk, 2)
	<-p.armed
	clk.Advance(p.hold - time.Millisecond)
	mustNotReturn(t, late, "shard 2's acquire before the hold time")
	clk.Advance(time.Millisecond)
	mustReturn(t, late, t0.Add(p.hold), "shard 2's acquire after the hold time")
}

func TestPacerAcquireHonoursContext(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	p := newPacer(clk, time.Second, 0, 1)
	if err := p.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.acquire(ctx, 1) }()
	if !clk.BlockUntil(1, 10*time.Second) {
		t.Fatal("shard 1 did not wait")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("acquire = %v, want context.Canceled", err)
	}
	if p.gap != time.Second+50*time.Millisecond {
		t.Fatalf("gap %v, want the window plus conn's default margin (a twentieth)", p.gap)
	}
}

// A shard whose wait for its bucket ends late (its timer fired late, as
// after a stall) writes late, and the next shard of the bucket counts its
// gap from that write, not from when the late shard's turn was due.
func TestPacerLateTurnPushesTheNextBack(t *testing.T) {
	clk := clock.NewFake(time.Time{})
	t0 := clk.Now()
	p := newPacer(clk, 100*time.Millisecond, 20*time.Millisecond, 1) // gap 120ms
	if err := p.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	p.sent(0, t0)
	p.armed = make(chan time.Duration, 1)
	second := acquireAsync(p, clk, 1)
	if w := <-p.armed; w != p.gap {
		t.Fatalf("shard 1 waits %v, want the gap %v", w, p.gap)
	}
	clk.Advance(p.gap - 20*time.Millisecond)
	mustNotReturn(t, second, "shard 1's acquire before the gap")
	clk.Jump(20*time.Millisecond + 183*time.Millisecond) // its timer fires 183ms late
	late := t0.Add(p.gap + 183*time.Millisecond)
	mustReturn(t, second, late, "shard 1's late acquire")
	p.sent(1, clk.Now()) // it writes at once
	third := acquireAsync(p, clk, 2)
	if w := <-p.armed; w != p.gap {
		t.Fatalf("shard 2 waits %v after shard 1's late write, want the whole gap %v", w, p.gap)
	}
	clk.Advance(p.gap - time.Nanosecond)
	mustNotReturn(t, third, "shard 2's acquire before the gap after the late write")
	clk.Advance(time.Nanosecond)
	mustReturn(t, third, late.Add(p.gap), "shard 2's acquire")
}
