package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
)

// budgetKey is the state bucket's key of the shared session-start budget.
const budgetKey = "budget"

// budget is the JSON of the shared session-start budget.
type budget struct {
	Total          int       `json:"total"`
	Remaining      int       `json:"remaining"`
	ResetAt        time.Time `json:"reset_at"`
	MaxConcurrency int       `json:"max_concurrency"`
}

// slotValue is the JSON of a taken identify bucket (for diagnostics).
type slotValue struct {
	Process string `json:"process"`
	Shard   int    `json:"shard"`
}

// fleetQueue is the fleet-wide identify queue. A slot is the key
// "bucket.<n>" in the slots bucket, whose TTL is Window + Margin: Create
// succeeds for one caller in the whole fleet and the key disappears a
// window after its last write, measured by the store (no clock is compared
// across machines); the holder writes it last right after its Wait
// returned (takeSlot). Shards of one bucket in one process queue locally
// first, so only one of them polls the store at a time.
type fleetQueue struct {
	f *Fleet

	mu     sync.Mutex
	local  map[int]chan struct{} // bucket -> 1-token semaphore
	last   budget                // last budget read
	hasBud bool

	waiting atomic.Int64
	taken   atomic.Uint64
	busy    atomic.Uint64
}

func newFleetQueue(f *Fleet) *fleetQueue {
	return &fleetQueue{f: f, local: map[int]chan struct{}{}}
}

func (q *fleetQueue) stats(st *Stats) {
	st.IdentifyWaiting = q.waiting.Load()
	st.IdentifySlots = q.taken.Load()
	st.IdentifyBusy = q.busy.Load()
}

func (q *fleetQueue) sem(bucket int) chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	s, ok := q.local[bucket]
	if !ok {
		s = make(chan struct{}, 1)
		q.local[bucket] = s
	}
	return s
}

// Wait implements conn.IdentifyQueue: it returns nil once shard's bucket
// slot is taken in the store and one start is consumed from the shared
// budget. While the store is unreachable it waits (never identifying
// without a slot); while Ownership runs and this process does not hold
// shard, it waits too.
func (q *fleetQueue) Wait(ctx context.Context, shard int) error {
	if shard < 0 {
		return fmt.Errorf("coord: identify: negative shard %d", shard)
	}
	q.waiting.Add(1)
	defer q.waiting.Add(-1)
	for {
		if err := q.waitHeld(ctx, shard); err != nil {
			return err
		}
		b, err := q.readBudget(ctx)
		if err != nil {
			if !isUnavailable(err) {
				return err
			}
			if err := q.f.sleep(ctx, q.f.s.RetryInterval); err != nil {
				return err
			}
			continue
		}
		if b.Remaining <= 0 {
			return &conn.SessionStartLimitError{Total: b.Total, ResetAt: b.ResetAt}
		}
		bucket := shard % b.MaxConcurrency
		sem := q.sem(bucket)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		err = q.takeSlot(ctx, bucket, shard)
		<-sem
		if err == nil || !errors.Is(err, errRetry) {
			return err
		}
	}
}

// errRetry: start over (the budget or the ownership may have changed).
var errRetry = errors.New("retry")

// takeSlot polls until bucket's slot is taken, consumes a start, and
// returns once the slot is surely this caller's for a while yet.
//
// The bucket's window must count from the moment Wait returns (the
// IDENTIFY leaves right after), never from an earlier write: the store
// starts a slot's TTL when it receives a write, and whatever lies between
// that write and Wait's return (the budget's compare-and-swap, which takes
// tens of milliseconds when many shards start at once; the store's answer
// coming back late on a loaded machine) would let another process's next
// IDENTIFY of the bucket arrive that much less than a window after this
// one. So:
//
//   - after the budget, the slot is written again, which restarts its TTL
//     and proves it was not lost meanwhile;
//   - Wait returns only while the slot's last write was sent less than a
//     Window ago, so the slot lives at least Margin longer; otherwise the
//     slot is written again first (or taken again if it was lost);
//   - right after Wait's decision to return, the slot is written once
//     more, in the background: that write reaches the store after the
//     release, so the slot lives a whole Window + Margin past it however
//     late the answers came. If it fails (the store unreachable just
//     then), the slot lives Window + Margin from the write before, which
//     was sent less than a Window before the release: the next IDENTIFY
//     of the bucket comes at least Margin after this one, and a whole
//     Window + Margin after it unless that write's answer was slow.
func (q *fleetQueue) takeSlot(ctx context.Context, bucket, shard int) error {
	f := q.f
	key := "bucket." + strconv.Itoa(bucket)
	val, _ := json.Marshal(slotValue{Process: f.s.Process, Shard: shard})
	consumed := false
	for {
		if !consumed && !q.held(shard) {
			return errRetry
		}
		var rev uint64
		sent := f.clk.Now()
		err := f.call(ctx, func(ctx context.Context) error {
			var err error
			rev, err = f.slots.Create(ctx, key, val)
			return err
		})
		switch {
		case err == nil:
			q.taken.Add(1)
			restart := false
			if !consumed {
				if err := q.consume(ctx); err != nil {
					return err
				}
				consumed, restart = true, true
			}
			held, err := q.hold(ctx, key, val, &rev, sent, restart)
			if err != nil {
				return err
			}
			if !held {
				// The slot expired while the budget was taken or an
				// answer was slow (it may be another process's by now):
				// take it again, without consuming a second start.
				continue
			}
			q.refresh(ctx, key, val, rev)
			return nil
		case errors.Is(err, ErrExists):
			q.busy.Add(1)
			if err := f.sleep(ctx, f.s.PollInterval); err != nil {
				return err
			}
		case isUnavailable(err):
			if err := f.sleep(ctx, f.s.RetryInterval); err != nil {
				return err
			}
		default:
			return fmt.Errorf("coord: identify shard %d: take bucket %d: %w", shard, bucket, err)
		}
	}
}

// hold makes sure the slot key, taken by a write of revision *rev sent at
// sent, is still this caller's with at least Margin of its TTL left: it
// writes the slot again (compare-and-swap on *rev, which restarts the TTL)
// when restart is set or when the last write was sent a Window ago or more,
// until one such write answers in less than a Window. It reports false when
// the slot was lost (expired, perhaps taken by another process) or could
// not be written: the caller takes it again.
func (q *fleetQueue) hold(ctx context.Context, key string, val []byte, rev *uint64, sent time.Time, restart bool) (bool, error) {
	f := q.f
	for restart || f.clk.Since(sent) >= f.s.Window {
		at := f.clk.Now()
		var nrev uint64
		err := f.call(ctx, func(ctx context.Context) error {
			var err error
			nrev, err = f.slots.Update(ctx, key, val, *rev)
			return err
		})
		switch {
		case err == nil:
			*rev, sent, restart = nrev, at, false
		case isAnswer(err):
			return false, nil
		default:
			// Unreachable: the slot still lives until its last TTL ends;
			// taking it again is the safe way.
			if err := f.sleep(ctx, f.s.RetryInterval); err != nil {
				return false, err
			}
			return false, nil
		}
	}
	return true, nil
}

// refresh writes the slot key (revision rev) once more on its own
// goroutine, once Wait has decided to return, so that the slot's TTL
// starts after the release (see takeSlot). It runs one store call,
// bounded by CallTimeout and not by the caller's ctx, which may end as
// soon as Wait returns. A refresh that finds the slot gone or rewritten
// changes nothing: the slot then expired a whole Window + Margin after the
// write before.
func (q *fleetQueue) refresh(ctx context.Context, key string, val []byte, rev uint64) {
	ctx = context.WithoutCancel(ctx)
	go func() {
		err := q.f.call(ctx, func(ctx context.Context) error {
			_, err := q.f.slots.Update(ctx, key, val, rev)
			return err
		})
		if err != nil {
			q.f.log.Debug("identify slot not refreshed after the release", "slot", key, "error", err)
		}
	}()
}

// consume takes one start from the shared budget (compare-and-swap). The
// slot is already taken: if the budget is spent now, the slot goes unused,
// which only delays the bucket.
func (q *fleetQueue) consume(ctx context.Context) error {
	f := q.f
	for {
		var e Entry
		err := f.call(ctx, func(ctx context.Context) error {
			var err error
			e, err = f.state.Get(ctx, budgetKey)
			return err
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			if isUnavailable(err) {
				if err := f.sleep(ctx, f.s.RetryInterval); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("coord: identify: read budget: %w", err)
		}
		var b budget
		if err == nil {
			if err := json.Unmarshal(e.Value, &b); err != nil {
				return fmt.Errorf("coord: identify: budget in the store is not JSON: %w", err)
			}
		} else {
			b = q.initial()
		}
		b = q.rollover(b)
		if b.Remaining <= 0 {
			return &conn.SessionStartLimitError{Total: b.Total, ResetAt: b.ResetAt}
		}
		b.Remaining--
		nb, _ := json.Marshal(b)
		err = f.call(ctx, func(ctx context.Context) error {
			var err error
			if e.Revision == 0 {
				_, err = f.state.Create(ctx, budgetKey, nb)
			} else {
				_, err = f.state.Update(ctx, budgetKey, nb, e.Revision)
			}
			return err
		})
		switch {
		case err == nil:
			q.remember(b)
			q.warnLow(b)
			return nil
		case isAnswer(err):
			continue // someone else consumed in between: read again
		case isUnavailable(err):
			// The write may or may not have landed; reading again tells.
			// Counting a start twice is the safe side of the error.
			if err := f.sleep(ctx, f.s.RetryInterval); err != nil {
				return err
			}
		default:
			return fmt.Errorf("coord: identify: update budget: %w", err)
		}
	}
}

func (q *fleetQueue) warnLow(b budget) {
	below := max((b.Total+9)/10, 2)
	if b.Remaining < below {
		q.f.log.Warn("session-start budget low", "remaining", b.Remaining, "total", b.Total, "reset_at", b.ResetAt)
	}
}

// initial is the budget this process seeds the store with.
func (q *fleetQueue) initial() budget {
	l := q.f.s.Limit
	rem := l.Remaining
	if rem <= 0 && l.ResetAfter == 0 {
		rem = l.Total
	}
	return budget{Total: l.Total, Remaining: rem, ResetAt: q.f.clk.Now().Add(l.ResetAfter), MaxConcurrency: l.MaxConcurrency}
}

// rollover refills the budget once its reset time has passed.
func (q *fleetQueue) rollover(b budget) budget {
	if b.MaxConcurrency <= 0 {
		b.MaxConcurrency = 1
	}
	now := q.f.clk.Now()
	if !now.Before(b.ResetAt) && b.Remaining < b.Total {
		b.Remaining = b.Total
		b.ResetAt = now.Add(q.f.s.Day)
	}
	return b
}

func (q *fleetQueue) remember(b budget) {
	q.mu.Lock()
	q.last, q.hasBud = b, true
	q.mu.Unlock()
}

// readBudget returns the shared budget (seeded from Settings.Limit when
// the store has none), with the reset applied.
func (q *fleetQueue) readBudget(ctx context.Context) (budget, error) {
	var e Entry
	err := q.f.call(ctx, func(ctx context.Context) error {
		var err error
		e, err = q.f.state.Get(ctx, budgetKey)
		return err
	})
	var b budget
	switch {
	case err == nil:
		if err := json.Unmarshal(e.Value, &b); err != nil {
			return budget{}, fmt.Errorf("coord: identify: budget in the store is not JSON: %w", err)
		}
	case errors.Is(err, ErrNotFound):
		b = q.initial()
	default:
		return budget{}, err
	}
	b = q.rollover(b)
	q.remember(b)
	return b, nil
}

// waitHeld waits while Ownership runs and does not hold shard.
func (q *fleetQueue) waitHeld(ctx context.Context, shard int) error {
	for !q.held(shard) {
		if err := q.f.sleep(ctx, q.f.s.PollInterval); err != nil {
			return err
		}
	}
	return nil
}

func (q *fleetQueue) held(shard int) bool {
	m := q.f.member
	return !m.isRunning() || m.Holds(shard)
}

// Remaining implements IdentifyQueue: it reads the store (bounded by
// CallTimeout) and falls back to the last value read.
func (q *fleetQueue) Remaining() (int, time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), q.f.s.CallTimeout)
	defer cancel()
	b, err := q.readBudget(ctx)
	if err != nil {
		q.mu.Lock()
		defer q.mu.Unlock()
		if !q.hasBud {
			b = q.rollover(q.initial())
			return b.Remaining, b.ResetAt
		}
		return q.last.Remaining, q.last.ResetAt
	}
	return b.Remaining, b.ResetAt
}

// CheckBudget implements IdentifyQueue.
func (q *fleetQueue) CheckBudget(n int) error {
	rem, reset := q.Remaining()
	if rem < n {
		q.mu.Lock()
		total := q.last.Total
		q.mu.Unlock()
		if total == 0 {
			total = q.f.s.Limit.Total
		}
		return fmt.Errorf("coord: %d shards need %d session starts, %d left fleet-wide: %w",
			n, n, rem, &conn.SessionStartLimitError{Total: total, ResetAt: reset})
	}
	return nil
}

// SyncBudget merges what /gateway/bot just reported into the shared
// budget: Discord's count is the truth, so the fleet keeps the smaller
// Remaining; when Discord's reset is later than the stored one by more
// than a minute, Discord has reset the budget and its numbers replace the
// stored ones. MaxConcurrency always comes from limit.
func (f *Fleet) SyncBudget(ctx context.Context, limit conn.SessionStartLimit) error {
	if limit.Total <= 0 {
		limit.Total = 1000
	}
	if limit.MaxConcurrency <= 0 {
		limit.MaxConcurrency = 1
	}
	fresh := budget{Total: limit.Total, Remaining: max(limit.Remaining, 0),
		ResetAt: f.clk.Now().Add(limit.ResetAfter), MaxConcurrency: limit.MaxConcurrency}
	for {
		var e Entry
		err := f.call(ctx, func(ctx context.Context) error {
			var err error
			e, err = f.state.Get(ctx, budgetKey)
			return err
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("coord: sync budget: %w", err)
		}
		next := fresh
		if err == nil {
			var cur budget
			if err := json.Unmarshal(e.Value, &cur); err != nil {
				return fmt.Errorf("coord: sync budget: stored budget is not JSON: %w", err)
			}
			if !fresh.ResetAt.After(cur.ResetAt.Add(time.Minute)) {
				next.Remaining = min(cur.Remaining, fresh.Remaining)
				next.ResetAt = cur.ResetAt
			}
		}
		nb, _ := json.Marshal(next)
		err = f.call(ctx, func(ctx context.Context) error {
			var err error
			if e.Revision == 0 {
				_, err = f.state.Create(ctx, budgetKey, nb)
			} else {
				_, err = f.state.Update(ctx, budgetKey, nb, e.Revision)
			}
			return err
		})
		if err == nil {
			f.queue.remember(next)
			return nil
		}
		if !isAnswer(err) {
			return fmt.Errorf("coord: sync budget: %w", err)
		}
	}
}
