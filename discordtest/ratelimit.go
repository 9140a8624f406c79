package discordtest

import (
	"sync"
	"time"
)

// restWindow is a fixed window counter: at most limit hits from start
// until start+length.
type restWindow struct {
	start time.Time
	count int
}

// restLimiter holds the REST rate-limit state: per bucket and major
// parameter, the global window, and the invalid-request counter that
// leads to a Cloudflare ban.
type restLimiter struct {
	mu          sync.Mutex
	buckets     map[string]*restWindow
	global      restWindow
	invalid     restWindow
	bannedUntil time.Time
}

func (r *restLimiter) init() {
	r.buckets = map[string]*restWindow{}
}

// bucketState is what the rate-limit headers report for one request.
type bucketState struct {
	limit      int
	remaining  int
	resetAt    time.Time
	resetAfter time.Duration
	limited    bool
}

// take counts one request against key's window and reports the state.
func (r *restLimiter) take(key string, limit int, length time.Duration, now time.Time) bucketState {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.buckets[key]
	if w == nil {
		w = &restWindow{}
		r.buckets[key] = w
	}
	return takeWindow(w, limit, length, now)
}

func takeWindow(w *restWindow, limit int, length time.Duration, now time.Time) bucketState {
	if w.start.IsZero() || !now.Before(w.start.Add(length)) {
		w.start, w.count = now, 0
	}
	reset := w.start.Add(length)
	st := bucketState{limit: limit, resetAt: reset, resetAfter: reset.Sub(now)}
	if w.count >= limit {
		st.limited = true
		return st
	}
	w.count++
	st.remaining = limit - w.count
	return st
}

// takeGlobal counts one request against the global limit.
func (r *restLimiter) takeGlobal(limit int, length time.Duration, now time.Time) bucketState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return takeWindow(&r.global, limit, length, now)
}

// invalidRequest counts a 401, 403 or non-shared 429; it reports true when
// this one crossed the limit and started a ban.
func (r *restLimiter) invalidRequest(limit int, window, ban time.Duration, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.invalid.start.IsZero() || !now.Before(r.invalid.start.Add(window)) {
		r.invalid.start, r.invalid.count = now, 0
	}
	r.invalid.count++
	if r.invalid.count >= limit && !now.Before(r.bannedUntil) {
		r.bannedUntil = now.Add(ban)
		r.invalid.start, r.invalid.count = time.Time{}, 0
		return true
	}
	return false
}

func (r *restLimiter) banned(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return now.Before(r.bannedUntil)
}
