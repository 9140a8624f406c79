package conn

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// BackoffSettings configures a Backoff. The zero value is valid.
type BackoffSettings struct {
	// Base is the ceiling of the first attempt's wait. Default: 1s.
	Base time.Duration
	// Max caps every attempt's ceiling. Default: 2m. A Max below Base is
	// raised to Base.
	Max time.Duration
	// Multiplier grows the ceiling per attempt. Default: 2. Values below 1
	// are raised to 1 (a constant ceiling).
	Multiplier float64
	// Floor is the shortest wait returned, so full jitter never gives a
	// zero wait that hammers the server. Default: 0 (pure full jitter).
	// A Floor above an attempt's ceiling makes that attempt wait exactly
	// the ceiling.
	Floor time.Duration
	// MinShare is the share of each attempt's ceiling that its wait is at
	// least: waits are drawn from [MinShare * ceiling(n), ceiling(n)).
	// Default: 0 (full jitter, waits from Floor). 0.5 is the AWS post's
	// "Equal Jitter": it halves the spread but bounds how many attempts an
	// outage of a given length can see, so a short outage cannot run a
	// circuit breaker's failure count up by luck. Values are clamped to
	// [0, 1].
	MinShare float64
	// Rand returns a uniformly distributed number in [0, 1). Default:
	// math/rand/v2's Float64. Tests inject a fixed sequence.
	Rand func() float64
}

// Backoff computes capped exponential backoff with jitter (the "Full
// Jitter" strategy of the AWS Architecture Blog post "Exponential Backoff
// And Jitter", or its "Equal Jitter" with MinShare 0.5):
//
//	ceiling(n) = min(Max, Base * Multiplier^n)        n = 0, 1, 2, ...
//	lo(n)      = max(Floor, MinShare * ceiling(n))
//	wait(n)    = lo(n) + r * (ceiling(n) - lo(n))     r uniform in [0, 1)
//
// where n counts the attempts since the last Reset, so wait(n) always lies
// in Envelope(n). Spreading waits over the whole [lo, ceiling) range is
// what keeps many shards (or many bots after a Discord outage) from
// reconnecting in lockstep. A Backoff is safe for concurrent use.
type Backoff struct {
	base, max, floor time.Duration
	mult, minShare   float64
	rand             func() float64

	mu      sync.Mutex
	attempt int
}

// NewBackoff returns a Backoff at attempt 0.
func NewBackoff(s BackoffSettings) *Backoff {
	b := &Backoff{base: s.Base, max: s.Max, floor: s.Floor, mult: s.Multiplier, minShare: s.MinShare, rand: s.Rand}
	if b.base <= 0 {
		b.base = time.Second
	}
	if b.max <= 0 {
		b.max = 2 * time.Minute
	}
	if b.max < b.base {
		b.max = b.base
	}
	if b.mult == 0 {
		b.mult = 2
	}
	if b.mult < 1 || math.IsNaN(b.mult) {
		b.mult = 1
	}
	if b.floor < 0 {
		b.floor = 0
	}
	if !(b.minShare > 0) { // also catches NaN
		b.minShare = 0
	}
	if b.minShare > 1 {
		b.minShare = 1
	}
	if b.rand == nil {
		b.rand = rand.Float64
	}
	return b
}

// Next returns the wait before the current attempt and counts the
// attempt.
func (b *Backoff) Next() time.Duration {
	b.mu.Lock()
	n := b.attempt
	if b.attempt < math.MaxInt32 {
		b.attempt++
	}
	b.mu.Unlock()
	lo, hi := b.Envelope(n)
	if hi == lo {
		return lo
	}
	r := b.rand()
	if !(r >= 0) || r >= 1 { // also catches NaN
		r = 0
	}
	d := lo + time.Duration(r*float64(hi-lo))
	if d >= hi { // float rounding near 1
		d = hi - 1
	}
	if d < lo {
		d = lo
	}
	return d
}

// Reset starts over at attempt 0; call it after a success.
func (b *Backoff) Reset() {
	b.mu.Lock()
	b.attempt = 0
	b.mu.Unlock()
}

// Attempt returns how many waits Next has handed out since the last
// Reset.
func (b *Backoff) Attempt() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.attempt
}

// Ceiling returns min(Max, Base * Multiplier^n) for attempt n (n < 0
// counts as 0).
func (b *Backoff) Ceiling(n int) time.Duration {
	if n < 0 {
		n = 0
	}
	c := float64(b.base) * math.Pow(b.mult, float64(n))
	if math.IsInf(c, 0) || math.IsNaN(c) || c >= float64(b.max) {
		return b.max
	}
	return time.Duration(c)
}

// Envelope returns the range [lo, hi] that the wait for attempt n lies in:
// lo = max(Floor, MinShare * Ceiling(n)) and hi = Ceiling(n), or both
// equal to Ceiling(n) when the Floor is above it. Next's result is below hi unless lo == hi. Tests,
// and the chaos tests of the connection loop, check that observed waits
// never leave the envelope.
func (b *Backoff) Envelope(n int) (lo, hi time.Duration) {
	hi = b.Ceiling(n)
	lo = max(b.floor, time.Duration(b.minShare*float64(hi)))
	if lo > hi {
		lo = hi
	}
	return lo, hi
}
