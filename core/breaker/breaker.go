package breaker

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
)

// The state word packs a generation number and a State into one uint64 so a
// call reads both with a single atomic load. The generation changes on every
// transition (and on ForceClose and Reset), so the result of a call that
// began under an older generation is not applied to the new state.
const (
	stateBits = 2
	stateMask = 1<<stateBits - 1
)

func pack(gen uint64, s State) uint64 { return gen<<stateBits | uint64(s) }

// Success, rejection and ignored-error counters are striped over cache
// lines so that goroutines on different cores do not fight over one line on
// the hot path. A call picks its stripe from the address of its own stack
// (see stripe), which is stable for a goroutine and differs between
// goroutines; any stripe is correct, the choice only spreads the load.
// Metrics sums the stripes.
//
// A breaker has as many stripes as GOMAXPROCS when New runs, rounded up to
// a power of two and at most maxStripes: no more goroutines than that run
// at once, and a process with a breaker per shard (a thousand of them)
// keeps 128 bytes per core each rather than 2 KB.
const (
	maxStripeBits = 4
	maxStripes    = 1 << maxStripeBits
	stripeSize    = 128 // two cache lines, so adjacent-line prefetch does not share them either
)

// stripeBits is log2 of the number of stripes for n processors: the
// smallest power of two at least n, at most maxStripes.
func stripeBits(n int) uint {
	bits := uint(0)
	for bits < maxStripeBits && 1<<bits < n {
		bits++
	}
	return bits
}

type stripe struct {
	successes  atomic.Uint64
	rejections atomic.Uint64
	ignored    atomic.Uint64
	_          [stripeSize - 3*8]byte
}

// closedToken is the done function Allow hands out in CLOSED for one
// generation, made once per generation so that Allow allocates nothing.
type closedToken struct {
	gen  uint64
	done func(error)
}

// outcome is what a finished call counts as.
type outcome uint8

const (
	success outcome = iota
	failure
	ignored
)

// Breaker is a circuit breaker. Make one with New; it is safe for
// concurrent use.
type Breaker struct {
	// Read by every call; written only under mu, on transitions.
	word      atomic.Uint64
	closedTok atomic.Pointer[closedToken]
	deadline  atomic.Int64 // OPEN: offset from epoch when probes may start; MaxInt64 when forced
	clock     clock.Clock
	epoch     time.Time
	timerOnly bool // clock.Real: the open timer alone ends OPEN, rejections never read the clock
	isFailure func(error) bool
	errOpen   error
	errProbes error
	stripes   []stripe // len is a power of two; see stripeBits
	shift     uint     // 64 - log2(len(stripes)): stripe() keeps the hash's top bits
	_         [64]byte

	mu  sync.Mutex
	cfg config
	// Wiring, fixed by New.
	name string
	pub  events.Publisher
	rand func() float64
	// State machine, guarded by mu.
	state     State
	gen       uint64
	since     time.Time
	forced    bool
	level     int           // consecutive re-opens: the backoff exponent
	jitterR   float64       // the jitter draw of the current open period
	openedAt  time.Duration // offset of the current open period's start
	openFor   time.Duration // length of the current open period; 0 when forced
	timer     clock.Timer
	timerSeq  uint64
	win       window
	lastFail  time.Duration // offset of the last failure in CLOSED
	hasFail   bool
	inflight  int // probes running in HALF_OPEN
	probeOK   int // successful probes in this HALF_OPEN
	failures  uint64
	changes   uint64
	listeners []listener
	nextID    uint64
	pending   []Transition
	notifying bool
	lisPanics uint64
}

type listener struct {
	id uint64
	fn func(Transition)
}

// New returns a CLOSED Breaker configured by s (zero fields take their
// defaults).
func New(s Settings) *Breaker {
	bits := stripeBits(runtime.GOMAXPROCS(0))
	b := &Breaker{
		stripes:   make([]stripe, 1<<bits),
		shift:     64 - bits,
		clock:     clock.Or(s.Clock),
		isFailure: s.IsFailure,
		cfg:       resolve(s),
		name:      s.Name,
		pub:       events.OrDiscard(s.Events),
		rand:      s.Rand,
	}
	if b.isFailure == nil {
		b.isFailure = DefaultIsFailure
	}
	if b.rand == nil {
		b.rand = defaultRand
	}
	switch b.clock.(type) {
	case clock.Real, *clock.Real:
		b.timerOnly = true
	}
	b.errOpen = newRejection(s.Name, ErrOpen)
	b.errProbes = newRejection(s.Name, ErrTooManyProbes)
	b.epoch = b.clock.Now()
	b.since = b.epoch
	b.win = newWindow(b.cfg.monitoringPeriod)
	b.publishGenLocked()
	return b
}

// Name returns Settings.Name as given to New.
func (b *Breaker) Name() string { return b.name }

// Execute calls fn(ctx) if the breaker lets the call through, records the
// outcome and returns fn's error unchanged. When the breaker rejects the
// call, fn is not called and Execute returns an error wrapping ErrOpen or
// ErrTooManyProbes. Execute does not look at ctx itself; it hands it to fn.
//
// A nil error is a success; a non-nil error is a failure or ignored, as
// Settings.IsFailure decides. If fn panics, the call counts as a failure
// and the panic continues unchanged.
//
// In CLOSED, a successful call takes no lock and allocates nothing.
func (b *Breaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	w := b.word.Load()
	switch State(w & stateMask) {
	case StateClosed:
		return b.runClosed(ctx, fn, w>>stateBits)
	case StateOpen:
		if !b.openMayEnd() {
			b.stripe().rejections.Add(1)
			return b.errOpen
		}
	}
	probe, gen, err := b.admit()
	if err != nil {
		return err
	}
	if !probe {
		return b.runClosed(ctx, fn, gen)
	}
	return b.runProbe(ctx, fn, gen)
}

// Allow is the two-step form of Execute for callers that cannot wrap the
// call in a function. When the call may go ahead it returns a done function
// that the caller must call exactly once with the call's error (nil for
// success); otherwise it returns an error wrapping ErrOpen or
// ErrTooManyProbes and a nil done.
//
// In CLOSED, Allow and done take no lock and allocate nothing; the done
// returned there is shared, so calling it twice counts the call twice. A
// probe's done (in HALF_OPEN) ignores every call after the first.
func (b *Breaker) Allow() (done func(error), err error) {
	w := b.word.Load()
	switch State(w & stateMask) {
	case StateClosed:
		if t := b.closedTok.Load(); t.gen == w>>stateBits {
			return t.done, nil
		}
	case StateOpen:
		if !b.openMayEnd() {
			b.stripe().rejections.Add(1)
			return nil, b.errOpen
		}
	}
	probe, gen, err := b.admit()
	if err != nil {
		return nil, err
	}
	if !probe {
		if t := b.closedTok.Load(); t.gen == gen {
			return t.done, nil
		}
		return b.closedDoneFunc(gen), nil
	}
	var once atomic.Bool
	return func(err error) {
		if once.CompareAndSwap(false, true) {
			b.probeDone(gen, b.classify(err))
		}
	}, nil
}

// State returns the current state. An OPEN circuit whose open timeout has
// passed is moved to HALF_OPEN first.
func (b *Breaker) State() State {
	w := b.word.Load()
	s := State(w & stateMask)
	if s == StateOpen && b.clock.Since(b.epoch) >= time.Duration(b.deadline.Load()) {
		b.mu.Lock()
		b.expireLocked(b.clock.Now())
		s = b.state
		b.unlockAndNotify()
	}
	return s
}

// stripe returns the counter stripe for the calling goroutine: a hash of
// the address of a local variable, that is, of the goroutine's stack. The
// address is only hashed, never dereferenced.
func (b *Breaker) stripe() *stripe {
	var marker byte
	h := uint64(uintptr(unsafe.Pointer(&marker))) >> 10
	return &b.stripes[(h*0x9E3779B97F4A7C15)>>b.shift]
}

// openMayEnd reports whether a call that found the circuit OPEN should take
// the slow path because the open timeout may have passed. With clock.Real
// the open timer makes that transition on time, so a rejected call never
// pays for reading the clock. Any other clock (a Fake in tests) is
// compared against the deadline on each call, so moving the clock is seen
// by the very next call without waiting for the timer's goroutine.
func (b *Breaker) openMayEnd() bool {
	if b.timerOnly {
		return false
	}
	return b.clock.Since(b.epoch) >= time.Duration(b.deadline.Load())
}

func (b *Breaker) runClosed(ctx context.Context, fn func(context.Context) error, gen uint64) error {
	returned := false
	defer b.closedPanicked(gen, &returned)
	err := fn(ctx)
	returned = true
	if err == nil {
		b.stripe().successes.Add(1)
		return nil
	}
	b.closedError(gen, err)
	return err
}

func (b *Breaker) closedPanicked(gen uint64, returned *bool) {
	if !*returned {
		b.closedFailure(gen)
	}
}

func (b *Breaker) runProbe(ctx context.Context, fn func(context.Context) error, gen uint64) error {
	returned := false
	defer b.probePanicked(gen, &returned)
	err := fn(ctx)
	returned = true
	b.probeDone(gen, b.classify(err))
	return err
}

func (b *Breaker) probePanicked(gen uint64, returned *bool) {
	if !*returned {
		b.probeDone(gen, failure)
	}
}

func (b *Breaker) classify(err error) outcome {
	switch {
	case err == nil:
		return success
	case err == errPanicked || b.isFailure(err):
		return failure
	}
	return ignored
}

// closedDoneFunc makes the done function for calls admitted in CLOSED under
// generation gen.
func (b *Breaker) closedDoneFunc(gen uint64) func(error) {
	return func(err error) {
		if err == nil {
			b.stripe().successes.Add(1)
			return
		}
		b.closedError(gen, err)
	}
}

// closedError records a call admitted in CLOSED that returned err != nil.
func (b *Breaker) closedError(gen uint64, err error) {
	if !b.isFailure(err) {
		b.stripe().ignored.Add(1)
		return
	}
	b.closedFailure(gen)
}

// closedFailure records a failed call admitted in CLOSED under gen. A
// failure from an older generation is counted but does not touch the
// window of the current one.
func (b *Breaker) closedFailure(gen uint64) {
	b.mu.Lock()
	b.failures++
	if b.gen == gen && b.state == StateClosed {
		now := b.clock.Now()
		at := now.Sub(b.epoch)
		b.forgetLocked(at)
		b.win.add(at, 1)
		b.lastFail, b.hasFail = at, true
		if n := b.win.count(at); n >= uint64(b.cfg.failureThreshold) {
			b.openLocked(now, fmt.Sprintf("%s within %s reached the threshold of %d",
				plural(n, "failure"), b.cfg.monitoringPeriod, b.cfg.failureThreshold))
		}
	}
	b.unlockAndNotify()
}

// forgetLocked clears the window when ResetTimeout has passed since the
// last failure.
func (b *Breaker) forgetLocked(at time.Duration) {
	if b.cfg.resetTimeout > 0 && b.hasFail && at-b.lastFail >= b.cfg.resetTimeout {
		b.win.clear()
		b.hasFail = false
	}
}

// admit is the slow path of a call that did not find the circuit CLOSED
// (or raced with a transition). It reports whether the call is a probe and
// the generation it runs under.
func (b *Breaker) admit() (probe bool, gen uint64, err error) {
	b.mu.Lock()
	b.expireLocked(b.clock.Now())
	switch b.state {
	case StateClosed:
		gen = b.gen
	case StateOpen:
		b.stripe().rejections.Add(1)
		err = b.errOpen
	case StateHalfOpen:
		if b.inflight >= b.cfg.halfOpenMaxCalls {
			b.stripe().rejections.Add(1)
			err = b.errProbes
			break
		}
		b.inflight++
		probe, gen = true, b.gen
	}
	b.unlockAndNotify()
	return probe, gen, err
}

// probeDone records the outcome of a probe admitted under gen.
func (b *Breaker) probeDone(gen uint64, o outcome) {
	b.mu.Lock()
	current := b.gen == gen && b.state == StateHalfOpen
	if current {
		b.inflight--
	}
	switch o {
	case success:
		b.stripe().successes.Add(1)
		if current {
			b.probeOK++
			if b.probeOK >= b.cfg.recoveryThreshold {
				b.transitionLocked(StateClosed, b.clock.Now(), fmt.Sprintf(
					"%s reached the recovery threshold", plural(uint64(b.probeOK), "successful probe")))
			}
		}
	case failure:
		b.failures++
		if current {
			b.level++
			b.openLocked(b.clock.Now(), fmt.Sprintf("probe failed (consecutive re-open %d)", b.level))
		}
	case ignored:
		b.stripe().ignored.Add(1)
	}
	b.unlockAndNotify()
}

// expireLocked moves an OPEN, not forced circuit whose deadline has passed
// at now to HALF_OPEN.
func (b *Breaker) expireLocked(now time.Time) {
	if b.state == StateOpen && !b.forced && now.Sub(b.epoch) >= time.Duration(b.deadline.Load()) {
		b.halfOpenLocked()
	}
}

// halfOpenLocked moves OPEN to HALF_OPEN as of the open deadline.
func (b *Breaker) halfOpenLocked() {
	at := b.epoch.Add(b.openedAt + b.openFor)
	b.transitionLocked(StateHalfOpen, at, fmt.Sprintf("open timeout of %s elapsed", b.openFor))
}

// openLocked opens the circuit at now for the backoff of b.level, with a
// fresh jitter draw, and arms the timer that ends the open period.
func (b *Breaker) openLocked(now time.Time, reason string) {
	b.jitterR = draw(b.rand)
	b.openFor = b.cfg.openFor(b.level, b.jitterR)
	b.openedAt = now.Sub(b.epoch)
	b.deadline.Store(int64(satAdd(b.openedAt, b.openFor)))
	b.transitionLocked(StateOpen, now, reason)
	b.armTimerLocked(b.openFor)
}

// plural renders n and noun, with an "s" unless n is 1.
func plural(n uint64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func satAdd(a, d time.Duration) time.Duration {
	if d > 0 && a > math.MaxInt64-d {
		return math.MaxInt64
	}
	return a + d
}

// armTimerLocked (re)starts the open timer to fire after d.
func (b *Breaker) armTimerLocked(d time.Duration) {
	b.stopTimerLocked()
	b.timerSeq++
	seq := b.timerSeq
	b.timer = b.clock.AfterFunc(d, func() { b.timerFired(seq) })
}

func (b *Breaker) stopTimerLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	b.timerSeq++ // a callback already on its way is now stale
}

// timerFired ends the open period armed as seq, unless something changed
// since (a transition, an Update of the timeout, a ForceOpen).
func (b *Breaker) timerFired(seq uint64) {
	b.mu.Lock()
	if seq == b.timerSeq && b.state == StateOpen && !b.forced {
		b.timer = nil
		b.halfOpenLocked()
	}
	b.unlockAndNotify()
}

// transitionLocked changes the state, starts a new generation and queues
// the Transition for listeners and the Publisher.
func (b *Breaker) transitionLocked(to State, at time.Time, reason string) {
	from := b.state
	b.stopTimerLocked()
	b.state = to
	b.since = at
	b.changes++
	b.inflight, b.probeOK = 0, 0
	if to == StateClosed {
		b.resetClosedLocked()
	}
	b.publishGenLocked()
	t := Transition{Breaker: b.name, From: from, To: to, Reason: reason, At: at}
	if to == StateOpen && !b.forced {
		t.OpenTimeout = b.openFor
	}
	b.pub.Publish(events.New(t.At, events.BreakerTransition{
		Breaker:     t.Breaker,
		From:        t.From.String(),
		To:          t.To.String(),
		Reason:      t.Reason,
		OpenTimeout: t.OpenTimeout,
	}))
	if len(b.listeners) > 0 {
		b.pending = append(b.pending, t)
	}
}

// resetClosedLocked gives CLOSED a clean slate: no failures, no backoff,
// no force.
func (b *Breaker) resetClosedLocked() {
	b.level = 0
	b.forced = false
	b.win.clear()
	b.hasFail = false
}

// publishGenLocked starts a new generation of the current state and makes
// it visible to lock-free callers. In CLOSED the generation's done function
// is stored before the state word, so a caller that sees the new word also
// sees its token.
func (b *Breaker) publishGenLocked() {
	b.gen++
	if b.state == StateClosed {
		b.closedTok.Store(&closedToken{gen: b.gen, done: b.closedDoneFunc(b.gen)})
	}
	b.word.Store(pack(b.gen, b.state))
}

// unlockAndNotify releases mu and then delivers queued transitions to the
// OnStateChange listeners, outside the lock and in order. If another
// goroutine is already delivering (or a listener caused this transition),
// that delivery loop picks the new ones up.
func (b *Breaker) unlockAndNotify() {
	if len(b.pending) == 0 || b.notifying {
		b.mu.Unlock()
		return
	}
	b.notifying = true
	for {
		batch := b.pending
		b.pending = nil
		ls := b.listeners
		b.mu.Unlock()
		var panics uint64
		for _, t := range batch {
			for _, l := range ls {
				if !callListener(l.fn, t) {
					panics++
				}
			}
		}
		b.mu.Lock()
		b.lisPanics += panics
		if len(b.pending) == 0 {
			b.notifying = false
			b.mu.Unlock()
			return
		}
	}
}

// callListener calls fn and reports whether it returned without panicking.
// A listener's panic is recovered and counted, like the events bus does,
// so one bad listener cannot break the breaker.
func callListener(fn func(Transition), t Transition) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	fn(t)
	return true
}

// OnStateChange registers fn to be called with every transition, after the
// breaker's lock is released, in the order transitions happen. The call may
// come from a goroutine other than the one that caused the transition (one
// goroutine at a time delivers, so listeners never run concurrently with
// each other), and may come after that caller's call has returned. fn may
// call the breaker's methods; a panic in fn is recovered and counted in
// Metrics.ListenerPanics. Listeners survive Update. The returned function
// removes the listener; calling it again does nothing. It panics if fn is
// nil.
func (b *Breaker) OnStateChange(fn func(Transition)) (remove func()) {
	if fn == nil {
		panic("breaker: OnStateChange with a nil listener")
	}
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ls := make([]listener, len(b.listeners), len(b.listeners)+1)
	copy(ls, b.listeners)
	b.listeners = append(ls, listener{id: id, fn: fn})
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		ls := make([]listener, 0, len(b.listeners))
		for _, l := range b.listeners {
			if l.id != id {
				ls = append(ls, l)
			}
		}
		b.listeners = ls
	}
}

// ForceOpen opens the circuit and holds it open, whatever the timeouts,
// until ForceClose or Reset. Calls are rejected with ErrOpen meanwhile.
// Calling it on a circuit that is already OPEN turns that open period into
// a forced one (no event: the state does not change).
func (b *Breaker) ForceOpen() {
	b.mu.Lock()
	b.forced = true
	b.openFor = 0
	b.deadline.Store(math.MaxInt64)
	if b.state == StateOpen {
		b.stopTimerLocked()
	} else {
		now := b.clock.Now()
		b.openedAt = now.Sub(b.epoch)
		b.transitionLocked(StateOpen, now, "forced open")
	}
	b.unlockAndNotify()
}

// ForceClose closes the circuit now, ending a forced or automatic open
// period or a half-open round, and forgets the failures in the window and
// the backoff. The breaker then runs automatically again: new failures can
// trip it. Counters are kept.
func (b *Breaker) ForceClose() {
	b.mu.Lock()
	b.closeNowLocked("forced close")
	b.unlockAndNotify()
}

// Reset returns the breaker to the state New left it in: CLOSED, no
// failures in the window, no backoff, and every counter in Metrics back to
// zero. Settings (as last updated) and listeners are kept. A transition to
// CLOSED, if the circuit was not closed, is published before the counters
// are cleared.
func (b *Breaker) Reset() {
	b.mu.Lock()
	b.closeNowLocked("reset")
	for i := range b.stripes {
		s := &b.stripes[i]
		s.successes.Store(0)
		s.rejections.Store(0)
		s.ignored.Store(0)
	}
	b.failures = 0
	b.changes = 0
	b.lisPanics = 0
	b.unlockAndNotify()
}

func (b *Breaker) closeNowLocked(reason string) {
	if b.state != StateClosed {
		b.transitionLocked(StateClosed, b.clock.Now(), reason)
		return
	}
	// Already closed: clean slate, and a new generation so that calls in
	// flight cannot put old failures into the fresh window.
	b.resetClosedLocked()
	b.publishGenLocked()
}

// Update applies the tunable fields of s (thresholds, durations, Backoff)
// to the live breaker at once, keeping its state, counters, window,
// backoff level, listeners and wiring (Name, IsFailure, Clock, Events and
// Rand are not changed). What "at once" means in each state:
//
//   - CLOSED: the window keeps its failures (re-bucketed if
//     MonitoringPeriod changed). If the failures in the window already
//     reach the new FailureThreshold, the circuit opens now.
//   - OPEN: the current open period is recomputed from its start with the
//     new OpenTimeout and Backoff, at the same backoff level and jitter
//     draw; if the new end has already passed, the circuit goes HALF_OPEN
//     now. A forced open stays forced.
//   - HALF_OPEN: the new HalfOpenMaxCalls limits the next admissions
//     (probes already running finish); if the successful probes so far
//     reach the new RecoveryThreshold, the circuit closes now.
//
// Settings with no current use (OpenTimeout while CLOSED, FailureThreshold
// while OPEN, ...) apply from their next use. Update publishes no event of
// its own; a transition it causes is published like any other.
func (b *Breaker) Update(s Settings) {
	cfg := resolve(s)
	b.mu.Lock()
	now := b.clock.Now()
	at := now.Sub(b.epoch)
	b.expireLocked(now)
	old := b.cfg
	b.cfg = cfg
	if cfg.monitoringPeriod != old.monitoringPeriod {
		b.win.resize(cfg.monitoringPeriod, at)
	}
	switch b.state {
	case StateClosed:
		b.forgetLocked(at)
		if n := b.win.count(at); n >= uint64(cfg.failureThreshold) {
			b.openLocked(now, fmt.Sprintf(
				"settings updated: %s within %s reach the new threshold of %d",
				plural(n, "failure"), cfg.monitoringPeriod, cfg.failureThreshold))
		}
	case StateOpen:
		if b.forced {
			break
		}
		d := cfg.openFor(b.level, b.jitterR)
		if d == b.openFor {
			break
		}
		b.openFor = d
		end := satAdd(b.openedAt, d)
		b.deadline.Store(int64(end))
		if at >= end {
			b.halfOpenLocked()
		} else {
			b.armTimerLocked(end - at)
		}
	case StateHalfOpen:
		if b.probeOK >= cfg.recoveryThreshold {
			b.transitionLocked(StateClosed, now, fmt.Sprintf(
				"settings updated: %s reach the new recovery threshold of %d",
				plural(uint64(b.probeOK), "successful probe"), cfg.recoveryThreshold))
		}
	}
	b.unlockAndNotify()
}

// Metrics is a point-in-time view of a Breaker. Counters cover the
// breaker's life since New or the last Reset.
type Metrics struct {
	// State is the current state; Forced is true while ForceOpen holds it.
	State  State `json:"state"`
	Forced bool  `json:"forced,omitempty"`
	// Since is when the current state began; TimeInState is the time
	// from then to now on the breaker's clock.
	Since       time.Time     `json:"since"`
	TimeInState time.Duration `json:"time_in_state"`

	// Calls counts calls that ran and reported their outcome:
	// Successes + Failures + Ignored. Calls still running are not in it.
	Calls uint64 `json:"calls"`
	// Successes counts calls that returned nil.
	Successes uint64 `json:"successes"`
	// Failures counts calls whose error IsFailure accepted, and panics.
	Failures uint64 `json:"failures"`
	// Ignored counts calls whose error IsFailure rejected.
	Ignored uint64 `json:"ignored"`
	// Rejections counts calls refused with ErrOpen or ErrTooManyProbes.
	Rejections uint64 `json:"rejections"`
	// StateChanges counts transitions.
	StateChanges uint64 `json:"state_changes"`
	// ListenerPanics counts OnStateChange listeners that panicked (the
	// panic was recovered).
	ListenerPanics uint64 `json:"listener_panics,omitempty"`

	// FailuresInWindow is the number of failures in the sliding window
	// now (after ResetTimeout forgetting). The window only fills in
	// CLOSED; it is emptied whenever the circuit closes.
	FailuresInWindow uint64 `json:"failures_in_window"`
	// ProbesInFlight and ProbeSuccesses describe the current HALF_OPEN
	// round; both are 0 in other states.
	ProbesInFlight int `json:"probes_in_flight"`
	ProbeSuccesses int `json:"probe_successes"`
	// Reopens is the number of consecutive re-opens so far (the backoff
	// exponent); a full close sets it back to 0.
	Reopens int `json:"reopens"`
	// OpenTimeout is, while OPEN, the length of the current open period
	// (0 when forced); in CLOSED and HALF_OPEN it is the base (jitter-free)
	// open time the next opening would use.
	OpenTimeout time.Duration `json:"open_timeout"`
}

// Metrics returns the breaker's current figures. Like State, it first
// moves an expired OPEN circuit to HALF_OPEN.
func (b *Breaker) Metrics() Metrics {
	b.mu.Lock()
	now := b.clock.Now()
	at := now.Sub(b.epoch)
	b.expireLocked(now)
	b.forgetLocked(at)
	m := Metrics{
		State:            b.state,
		Forced:           b.forced,
		Since:            b.since,
		TimeInState:      now.Sub(b.since),
		Failures:         b.failures,
		StateChanges:     b.changes,
		ListenerPanics:   b.lisPanics,
		FailuresInWindow: b.win.count(at),
		Reopens:          b.level,
	}
	switch b.state {
	case StateOpen:
		m.OpenTimeout = b.openFor
	case StateHalfOpen:
		m.ProbesInFlight = b.inflight
		m.ProbeSuccesses = b.probeOK
		m.OpenTimeout = b.cfg.baseOpen(b.level + 1)
	default:
		m.OpenTimeout = b.cfg.baseOpen(b.level)
	}
	b.unlockAndNotify()
	if m.TimeInState < 0 {
		m.TimeInState = 0
	}
	for i := range b.stripes {
		s := &b.stripes[i]
		m.Successes += s.successes.Load()
		m.Rejections += s.rejections.Load()
		m.Ignored += s.ignored.Load()
	}
	m.Calls = m.Successes + m.Failures + m.Ignored
	return m
}
