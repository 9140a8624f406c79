package shard

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
)

// startSlot orders one shard's first IDENTIFY behind the shard before it
// in the same identify bucket (shard_id % max_concurrency), so that each
// bucket identifies its shards in ascending order, one per window.
type startSlot struct {
	pred *startSlot // the previous shard of the bucket; nil for the first

	// passed is closed when the shard's turn in the identify queue came
	// (or it gave up): the next shard of the bucket dials then, a whole
	// window before its own turn, and queues once connected.
	passed   chan struct{}
	passOnce sync.Once
	// used is set by the first Wait: later IDENTIFYs (re-identifies) are
	// not ordered.
	used atomic.Bool
}

func newStartSlot(pred *startSlot) *startSlot {
	return &startSlot{pred: pred, passed: make(chan struct{})}
}

// pass lets the next shard of the bucket go: this one had its turn, or
// its attempt ended before it identified.
func (s *startSlot) pass() { s.passOnce.Do(func() { close(s.passed) }) }

// pacer keeps the IDENTIFYs of one identify bucket at least gap apart as
// they leave the process, whatever happens between the identify queue's
// slot and the write: a shard takes its bucket before it queues and holds
// it until its IDENTIFY is written (the wire observer calls sent) or its
// attempt ends (abandon), and the next shard of the bucket takes it only
// gap after that write. The identify queue counts a bucket's window from
// the moment its Wait returned, but the IDENTIFY leaves later: the
// connection still takes its event lock, encodes and writes the frame,
// which a loaded machine (GC, CPU starvation, hundreds of connections
// handshaking at once) stretches past the queue's margin. The pacer
// measures what Discord measures, the writes, and closes that hole.
type pacer struct {
	clk clock.Clock
	gap time.Duration // identify window + margin
	mc  int           // max_concurrency: the number of buckets
	// hold bounds how long a bucket stays taken without news from its
	// holder (a safety net: sent and abandon always come).
	hold time.Duration

	mu      sync.Mutex
	buckets map[int]*paceBucket

	// armed, when set (tests), receives each wait acquire starts.
	armed chan time.Duration
}

type paceBucket struct {
	holder   int // the shard holding the bucket, -1 when free
	since    time.Time
	lastSent time.Time
	wake     chan struct{} // closed and replaced when the bucket changes
}

func newPacer(clk clock.Clock, window, margin time.Duration, mc int) *pacer {
	if window <= 0 {
		window = 5 * time.Second
	}
	if margin <= 0 {
		margin = conn.DefaultIdentifyMargin(window) // conn.LocalIdentifyQueue's default
	}
	gap := window + margin
	return &pacer{clk: clk, gap: gap, mc: max(mc, 1), hold: max(2*gap, 10*time.Second), buckets: map[int]*paceBucket{}}
}

// bucket returns shard's bucket state. Called with mu held.
func (p *pacer) bucket(shard int) *paceBucket {
	id := shard % p.mc
	b := p.buckets[id]
	if b == nil {
		b = &paceBucket{holder: -1, wake: make(chan struct{})}
		p.buckets[id] = b
	}
	return b
}

func (b *paceBucket) changed() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// acquire waits until shard may take its bucket and takes it.
func (p *pacer) acquire(ctx context.Context, shard int) error {
	for {
		p.mu.Lock()
		b := p.bucket(shard)
		now := p.clk.Now()
		if b.holder >= 0 && now.Sub(b.since) >= p.hold {
			b.holder = -1 // the holder never said: do not stall the bucket
		}
		var wait time.Duration
		switch {
		case b.holder == shard:
			p.mu.Unlock()
			return nil
		case b.holder >= 0:
			wait = p.hold - now.Sub(b.since)
		case !b.lastSent.IsZero() && now.Sub(b.lastSent) < p.gap:
			wait = p.gap - now.Sub(b.lastSent)
		default:
			b.holder, b.since = shard, now
			p.mu.Unlock()
			return nil
		}
		wake := b.wake
		p.mu.Unlock()
		t := p.clk.NewTimer(wait)
		if p.armed != nil {
			p.armed <- wait
		}
		select {
		case <-t.C():
		case <-wake:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// sent records that shard wrote an IDENTIFY at the given time, freeing its
// bucket.
func (p *pacer) sent(shard int, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bucket(shard)
	if at.After(b.lastSent) {
		b.lastSent = at
	}
	if b.holder == shard {
		b.holder = -1
	}
	b.changed()
}

// abandon frees shard's bucket when its attempt ended without an IDENTIFY.
func (p *pacer) abandon(shard int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bucket(shard)
	if b.holder == shard {
		b.holder = -1
		b.changed()
	}
}

// orderedQueue is the IdentifyQueue a shard's connection sees. Its first
// IDENTIFY waits until the previous shard of its bucket has had its turn;
// every IDENTIFY takes its bucket in the pacer, then waits in the shared
// identify queue, which alone enforces the window and the budget (and
// which a fleet can replace with a cross-process one).
type orderedQueue struct {
	inner conn.IdentifyQueue
	pacer *pacer
	slot  *startSlot
}

func (q *orderedQueue) Wait(ctx context.Context, shard int) error {
	s := q.slot
	if s != nil && s.used.CompareAndSwap(false, true) {
		defer s.pass()
		if s.pred != nil {
			select {
			case <-s.pred.passed:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := q.pacer.acquire(ctx, shard); err != nil {
		return err
	}
	if err := q.inner.Wait(ctx, shard); err != nil {
		q.pacer.abandon(shard)
		return err
	}
	return nil
}
