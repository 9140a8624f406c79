package clock

import (
	"sort"
	"sync"
	"time"
)

// Fake is a Clock that only moves when told to. Timers, tickers and
// AfterFunc callbacks fire, in deadline order, during Advance or Set.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
	seq     uint64
	changed chan struct{} // closed and replaced whenever waiters change
}

// NewFake returns a Fake clock set to start. A zero start uses a fixed,
// arbitrary date so golden output is stable.
func NewFake(start time.Time) *Fake {
	if start.IsZero() {
		start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return &Fake{now: start, changed: make(chan struct{})}
}

type fakeWaiter struct {
	clock  *Fake
	at     time.Time
	seq    uint64
	period time.Duration // > 0 for tickers
	ch     chan time.Time
	fn     func()
	active bool
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Since returns the fake time elapsed since t.
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// NewTimer returns a timer that fires when the fake time reaches now+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	w := &fakeWaiter{clock: f, ch: make(chan time.Time, 1)}
	f.schedule(w, d)
	return w
}

// AfterFunc calls fn in its own goroutine when the fake time reaches now+d.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	w := &fakeWaiter{clock: f, fn: fn}
	f.schedule(w, d)
	return w
}

// NewTicker returns a ticker firing every d of fake time. Like
// time.Ticker, it drops ticks a slow reader misses.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	w := &fakeWaiter{clock: f, ch: make(chan time.Time, 1), period: d}
	f.schedule(w, d)
	return fakeTicker{w}
}

func (f *Fake) schedule(w *fakeWaiter, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scheduleLocked(w, d)
}

func (f *Fake) scheduleLocked(w *fakeWaiter, d time.Duration) {
	f.removeLocked(w)
	f.seq++
	w.seq = f.seq
	w.at = f.now.Add(d)
	w.active = true
	f.waiters = append(f.waiters, w)
	f.notifyLocked()
}

func (f *Fake) removeLocked(w *fakeWaiter) bool {
	for i, x := range f.waiters {
		if x == w {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			w.active = false
			f.notifyLocked()
			return true
		}
	}
	return false
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Advance moves the fake time forward by d, firing every timer due on the
// way in deadline order, each seeing Now() equal to its own deadline.
func (f *Fake) Advance(d time.Duration) {
	f.Set(f.Now().Add(d))
}

// Jump moves the fake time forward by d at once and only then fires the
// timers that came due, all seeing the new Now(): what a process sees when
// it wakes from a stall (a long GC pause, a suspended VM). Advance instead
// fires each timer at its own deadline.
func (f *Fake) Jump(d time.Duration) {
	f.mu.Lock()
	if d > 0 {
		f.now = f.now.Add(d)
	}
	t := f.now
	f.mu.Unlock()
	f.Set(t)
}

// Set moves the fake time to t (never backwards), firing due timers.
func (f *Fake) Set(t time.Time) {
	for {
		f.mu.Lock()
		if len(f.waiters) == 0 {
			if t.After(f.now) {
				f.now = t
			}
			f.mu.Unlock()
			return
		}
		sort.Slice(f.waiters, func(i, j int) bool {
			a, b := f.waiters[i], f.waiters[j]
			if a.at.Equal(b.at) {
				return a.seq < b.seq
			}
			return a.at.Before(b.at)
		})
		w := f.waiters[0]
		if w.at.After(t) {
			if t.After(f.now) {
				f.now = t
			}
			f.mu.Unlock()
			return
		}
		if w.at.After(f.now) {
			f.now = w.at
		}
		now := f.now
		if w.period > 0 {
			f.seq++
			w.seq = f.seq
			w.at = w.at.Add(w.period)
		} else {
			f.waiters = f.waiters[1:]
			w.active = false
		}
		f.notifyLocked()
		f.mu.Unlock()
		if w.fn != nil {
			go w.fn()
		} else {
			select {
			case w.ch <- now:
			default: // like time.Ticker: drop a tick the reader missed
			}
		}
	}
}

// Waiters returns how many timers, tickers and AfterFunc callbacks are
// pending.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// BlockUntil waits until at least n timers are pending, so a test can
// advance time only after the code under test has started waiting. It
// gives up after timeout (real time) and reports whether n was reached.
func (f *Fake) BlockUntil(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		if len(f.waiters) >= n {
			f.mu.Unlock()
			return true
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

func (w *fakeWaiter) C() <-chan time.Time { return w.ch }

func (w *fakeWaiter) Stop() bool {
	w.clock.mu.Lock()
	defer w.clock.mu.Unlock()
	return w.clock.removeLocked(w)
}

func (w *fakeWaiter) Reset(d time.Duration) bool {
	w.clock.mu.Lock()
	defer w.clock.mu.Unlock()
	was := w.active
	if w.period > 0 && d > 0 {
		w.period = d
	}
	w.clock.scheduleLocked(w, d)
	return was
}

// Ticker.Stop has no result; fakeWaiter satisfies both interfaces through
// this adapter.
type fakeTicker struct{ *fakeWaiter }

func (t fakeTicker) Stop()                 { t.fakeWaiter.Stop() }
func (t fakeTicker) Reset(d time.Duration) { t.fakeWaiter.Reset(d) }
