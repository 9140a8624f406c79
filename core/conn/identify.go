package conn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// IdentifyQueue decides when a shard may send IDENTIFY. RESUMEs never go
// through it. It is an interface so a fleet of processes can share one
// (see core/coord); LocalIdentifyQueue serves one process.
type IdentifyQueue interface {
	// Wait blocks until shard may IDENTIFY and consumes one session start
	// from the daily budget. It returns ctx's error if ctx ends first, or
	// an error wrapping ErrSessionStartLimit when the budget is spent.
	// The caller sends its IDENTIFY as soon as Wait returns nil, so an
	// implementation counts the bucket's window from that return (never
	// from an earlier, planned time: a timer or a store call that comes
	// back late would otherwise let the next IDENTIFY of the bucket follow
	// too soon).
	Wait(ctx context.Context, shard int) error
}

// ErrSessionStartLimit is returned (wrapped in *SessionStartLimitError)
// when the daily session-start budget from /gateway/bot is spent: one more
// IDENTIFY would get the bot's token reset by Discord.
var ErrSessionStartLimit = errors.New("daily session-start limit reached")

// SessionStartLimitError says when the budget comes back.
type SessionStartLimitError struct {
	Total   int
	ResetAt time.Time
}

func (e *SessionStartLimitError) Error() string {
	return fmt.Sprintf("conn: %v (%d per day); it resets at %s",
		ErrSessionStartLimit, e.Total, e.ResetAt.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrSessionStartLimit) true.
func (e *SessionStartLimitError) Unwrap() error { return ErrSessionStartLimit }

// SessionStartLimit is /gateway/bot's session_start_limit.
type SessionStartLimit struct {
	Total          int           // starts per day; 0 means 1000
	Remaining      int           // starts left now
	ResetAfter     time.Duration // until Remaining goes back to Total
	MaxConcurrency int           // identify buckets; 0 means 1
}

// IdentifyQueueOptions tunes a LocalIdentifyQueue. The zero value is valid.
type IdentifyQueueOptions struct {
	// Clock times the windows. Default: clock.Real.
	Clock clock.Clock
	// Window is how long a bucket waits between two IDENTIFYs. Default:
	// 5s, Discord's. Tests scale it down.
	Window time.Duration
	// Margin is added to Window between two IDENTIFYs of a bucket, so
	// that jitter between the moment Wait returns and the moment Discord
	// receives the IDENTIFY (a goroutine hand-off, the write, the network)
	// never makes two arrivals closer than Window. A late timer needs no
	// margin: the window counts from when Wait really returned. Default:
	// DefaultIdentifyMargin(Window).
	Margin time.Duration
	// Day is how long a budget lasts once reset: after the reset Discord
	// reported (SessionStartLimit.ResetAfter), the budget is whole again
	// every Day. Default: 24h.
	Day time.Duration
	// OnLow is called (outside the queue's lock) each time a start leaves
	// fewer than WarnBelow starts. Default: nothing.
	OnLow func(remaining int, resetAt time.Time)
	// WarnBelow is the threshold for OnLow. Default: 10% of Total
	// (rounded up), at least 2.
	WarnBelow int
}

// MinIdentifyMargin is the smallest margin DefaultIdentifyMargin gives.
// Between Wait returning and the IDENTIFY's bytes leaving lie a goroutine
// hand-off, the frame's encoding and a write, which a busy host stretches
// to tens of milliseconds (a fake Discord timing arrivals by the kernel saw
// an IDENTIFY leave 20 ms after its turn, with the race detector on two
// shared cores): an absolute delay that a scaled-down window (62.5 ms in a
// test at an 80th of Discord's time) does not shrink, while a twentieth of
// it would be 3 ms. A timer that fires late is not what the margin is for:
// the queues count the window from when Wait really returned, so however
// late a turn comes, it does not eat into the margin.
const MinIdentifyMargin = 50 * time.Millisecond

// DefaultIdentifyMargin returns the margin an identify queue adds to
// window when none is configured: window/20 (250ms for Discord's 5s), at
// least MinIdentifyMargin.
func DefaultIdentifyMargin(window time.Duration) time.Duration {
	return max(window/20, MinIdentifyMargin)
}

// LocalIdentifyQueue enforces Discord's identify rules inside one process:
// shard s belongs to bucket s % MaxConcurrency; each bucket lets its
// callers go one at a time, first come first served, each at least Window
// plus Margin after the previous one was really let go; and no IDENTIFY is
// allowed once the daily budget is spent.
//
// A bucket's next turn counts from the moment its previous Wait returned
// (the clock's now then), not from the turn that caller was given: a timer
// that fires late (a GC pause, CPU starvation) moves the bucket's next
// IDENTIFY back by as much, so two IDENTIFYs of a bucket never leave closer
// than Window plus Margin, whatever the delay. Only the caller at the head
// of a bucket waits on a timer; the ones behind it wait for their turn to
// come, and a caller that gives up (its ctx ends) gives its turn back as
// well as its session start.
type LocalIdentifyQueue struct {
	opts    IdentifyQueueOptions
	mu      sync.Mutex
	limit   SessionStartLimit
	reset   time.Time
	buckets map[int]*identifyBucket
}

// identifyBucket is one identify bucket's queue.
type identifyBucket struct {
	// last is when the bucket's last caller was let go (zero: never).
	last time.Time
	// waiting holds the callers in arrival order; waiting[0] has the turn
	// (its head channel is closed) and is the only one on a timer.
	waiting []*identifyWaiter
}

// identifyWaiter is one Wait in a bucket's queue.
type identifyWaiter struct {
	head chan struct{} // closed when the caller reaches the head
}

// NewLocalIdentifyQueue starts from the budget Discord reported.
func NewLocalIdentifyQueue(limit SessionStartLimit, opts IdentifyQueueOptions) *LocalIdentifyQueue {
	opts.Clock = clock.Or(opts.Clock)
	if opts.Window <= 0 {
		opts.Window = 5 * time.Second
	}
	if opts.Margin <= 0 {
		opts.Margin = DefaultIdentifyMargin(opts.Window)
	}
	if opts.Day <= 0 {
		opts.Day = 24 * time.Hour
	}
	if limit.Total <= 0 {
		limit.Total = 1000
	}
	if limit.MaxConcurrency <= 0 {
		limit.MaxConcurrency = 1
	}
	if limit.Remaining < 0 {
		limit.Remaining = 0
	}
	if opts.WarnBelow <= 0 {
		// A tenth of the budget, and never less than 2: a small budget
		// still warns while one start is left.
		opts.WarnBelow = max((limit.Total+9)/10, 2)
	}
	return &LocalIdentifyQueue{
		opts:    opts,
		limit:   limit,
		reset:   opts.Clock.Now().Add(limit.ResetAfter),
		buckets: map[int]*identifyBucket{},
	}
}

// Wait implements IdentifyQueue. It takes the session start when the
// caller joins its bucket's queue (so Remaining and CheckBudget count the
// callers waiting) and gives it back if ctx ends before the caller's turn.
// A caller whose bucket is idle (nobody waiting, the last IDENTIFY at
// least Window plus Margin ago) returns at once.
func (q *LocalIdentifyQueue) Wait(ctx context.Context, shard int) error {
	if err := ctx.Err(); err != nil {
		return err // spend nothing for a caller that already gave up
	}
	clk := q.opts.Clock
	q.mu.Lock()
	q.rollLocked(clk.Now())
	if q.limit.Remaining <= 0 {
		err := &SessionStartLimitError{Total: q.limit.Total, ResetAt: q.reset}
		q.mu.Unlock()
		return err
	}
	id := shard % q.limit.MaxConcurrency
	if id < 0 {
		id = -id
	}
	b := q.buckets[id]
	if b == nil {
		b = &identifyBucket{}
		q.buckets[id] = b
	}
	w := &identifyWaiter{head: make(chan struct{})}
	b.waiting = append(b.waiting, w)
	if len(b.waiting) == 1 {
		close(w.head)
	}
	q.limit.Remaining--
	remaining, resetAt := q.limit.Remaining, q.reset
	q.mu.Unlock()

	if remaining < q.opts.WarnBelow && q.opts.OnLow != nil {
		q.opts.OnLow(remaining, resetAt)
	}
	select {
	case <-w.head:
	case <-ctx.Done():
		q.giveUp(b, w, resetAt)
		return ctx.Err()
	}
	gap := q.opts.Window + q.opts.Margin
	for {
		if ctx.Err() != nil {
			q.giveUp(b, w, resetAt)
			return ctx.Err()
		}
		q.mu.Lock()
		// Read the clock under the lock: the time recorded as this
		// caller's release is the time its Wait returns, however late
		// its timer fired.
		now := clk.Now()
		var wait time.Duration
		if !b.last.IsZero() {
			wait = b.last.Add(gap).Sub(now)
		}
		if wait <= 0 {
			b.last = now
			b.removeLocked(w)
			q.mu.Unlock()
			return nil
		}
		q.mu.Unlock()
		t := clk.NewTimer(wait)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			q.giveUp(b, w, resetAt)
			return ctx.Err()
		}
	}
}

// giveUp takes a caller whose ctx ended out of its bucket's queue (the
// next caller gets the turn if it had it) and gives its session start back
// to the budget it came from. If that budget has been replaced by a new
// day's in the meantime, the new one never counted it and stays as it is.
func (q *LocalIdentifyQueue) giveUp(b *identifyBucket, w *identifyWaiter, resetAt time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	b.removeLocked(w)
	q.rollLocked(q.opts.Clock.Now())
	if q.reset.Equal(resetAt) && q.limit.Remaining < q.limit.Total {
		q.limit.Remaining++
	}
}

// removeLocked takes w out of the queue and, when w had the turn, hands
// it to the next caller. q.mu must be held.
func (b *identifyBucket) removeLocked(w *identifyWaiter) {
	for i, x := range b.waiting {
		if x != w {
			continue
		}
		b.waiting = slices.Delete(b.waiting, i, i+1)
		if i == 0 && len(b.waiting) > 0 {
			close(b.waiting[0].head)
		}
		return
	}
}

// rollLocked starts a new day's budget when the reset time has passed:
// Remaining goes back to Total and the reset time moves on by whole Days
// from the old one (not from now), so the budget's schedule does not depend
// on when it happens to be read. Every method that reads or spends the
// budget calls it first. q.mu must be held.
func (q *LocalIdentifyQueue) rollLocked(now time.Time) {
	if now.Before(q.reset) {
		return
	}
	q.limit.Remaining = q.limit.Total
	days := now.Sub(q.reset)/q.opts.Day + 1
	q.reset = q.reset.Add(days * q.opts.Day)
}

// Remaining returns the starts left and when the budget resets. Once the
// reset time has passed it reports the new day's budget, whether or not an
// IDENTIFY has been queued since.
func (q *LocalIdentifyQueue) Remaining() (int, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rollLocked(q.opts.Clock.Now())
	return q.limit.Remaining, q.reset
}

// CheckBudget returns an error wrapping ErrSessionStartLimit when fewer
// than n starts remain, so a process refuses to start n shards it could not
// all IDENTIFY.
func (q *LocalIdentifyQueue) CheckBudget(n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rollLocked(q.opts.Clock.Now())
	if q.limit.Remaining < n {
		return fmt.Errorf("conn: %d shards need %d session starts, %d left: %w",
			n, n, q.limit.Remaining, &SessionStartLimitError{Total: q.limit.Total, ResetAt: q.reset})
	}
	return nil
}
