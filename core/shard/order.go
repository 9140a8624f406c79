package shard

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/lifeline-bot/lifeline/core/conn"
)

// startSlot orders one shard's first IDENTIFY behind the shard before it
// in the same identify bucket (shard_id % max_concurrency), so that each
// bucket identifies its shards in ascending order, one per window.
type startSlot struct {
	pred *startSlot // the previous shard of the bucket; nil for the first

	// entered is closed when the shard asks to IDENTIFY (it is connected
	// and has had HELLO): the next shard of the bucket may start dialling.
	entered   chan struct{}
	enterOnce sync.Once
	// passed is closed when the shard's turn in the identify queue came
	// (or it gave up): the next shard of the bucket may queue.
	passed   chan struct{}
	passOnce sync.Once
	// used is set by the first Wait: later IDENTIFYs (re-identifies) are
	// not ordered.
	used atomic.Bool
}

func newStartSlot(pred *startSlot) *startSlot {
	return &startSlot{pred: pred, entered: make(chan struct{}), passed: make(chan struct{})}
}

func (s *startSlot) enter() { s.enterOnce.Do(func() { close(s.entered) }) }
func (s *startSlot) pass()  { s.passOnce.Do(func() { close(s.passed) }) }

// release lets the rest of the bucket go without this shard: its attempt
// ended before it identified.
func (s *startSlot) release() {
	s.enter()
	s.pass()
}

// orderedQueue wraps the shared identify queue: a shard's first IDENTIFY
// waits until the previous shard of its bucket has had its turn, then
// queues. Every IDENTIFY still goes through the shared queue, which alone
// enforces the window and the budget.
type orderedQueue struct {
	inner conn.IdentifyQueue
	slot  *startSlot
}

func (q orderedQueue) Wait(ctx context.Context, shard int) error {
	s := q.slot
	if s == nil || !s.used.CompareAndSwap(false, true) {
		return q.inner.Wait(ctx, shard)
	}
	s.enter()
	defer s.pass()
	if s.pred != nil {
		select {
		case <-s.pred.passed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return q.inner.Wait(ctx, shard)
}
