package degrade

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts is a shared timeout multiplier: the REST Transport scales its
// per-request timeout by it, and the connection can scale its gateway
// timeouts (handshake, Open/Close watchdog) with Scale. increase_timeouts
// raises it while active. The zero value is ready to use with multiplier
// 1; a nil *Timeouts scales nothing. Multiplier and Scale are lock-free.
type Timeouts struct {
	bits atomic.Uint64 // math.Float64bits of the multiplier; 0 means 1

	mu     sync.Mutex
	raised map[string]float64 // owner -> factor
}

// NewTimeouts returns Timeouts with multiplier 1.
func NewTimeouts() *Timeouts { return &Timeouts{} }

// Multiplier returns the current factor, at least 1.
func (t *Timeouts) Multiplier() float64 {
	if t == nil {
		return 1
	}
	if b := t.bits.Load(); b != 0 {
		return math.Float64frombits(b)
	}
	return 1
}

// Scale returns d times the multiplier (saturating at the largest
// Duration). A nil *Timeouts returns d.
func (t *Timeouts) Scale(d time.Duration) time.Duration {
	m := t.Multiplier()
	if m == 1 || d <= 0 {
		return d
	}
	v := float64(d) * m
	if v >= math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(v)
}

// Raise sets owner's factor (an action's name); the multiplier is the
// largest factor of any owner, and 1 when none. Factors below 1 count as 1.
// A repeated call by the same owner replaces its factor.
func (t *Timeouts) Raise(owner string, factor float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.raised == nil {
		t.raised = map[string]float64{}
	}
	if !(factor >= 1) || math.IsInf(factor, 0) {
		factor = 1
	}
	t.raised[owner] = factor
	t.publish()
}

// Restore removes owner's factor.
func (t *Timeouts) Restore(owner string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.raised, owner)
	t.publish()
}

func (t *Timeouts) publish() {
	m := 1.0
	for _, f := range t.raised {
		m = max(m, f)
	}
	if m == 1 {
		t.bits.Store(0)
		return
	}
	t.bits.Store(math.Float64bits(m))
}
