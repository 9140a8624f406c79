package breaker

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
)

// Defaults used for zero fields of Settings.
const (
	DefaultFailureThreshold  = 5
	DefaultMonitoringPeriod  = time.Minute
	DefaultOpenTimeout       = time.Minute
	DefaultHalfOpenMaxCalls  = 1
	DefaultRecoveryThreshold = 1
	DefaultBackoffMultiplier = 2.0
	DefaultBackoffMaxFactor  = 10 // Backoff.Max defaults to this × OpenTimeout
	DefaultBackoffJitter     = 0.1
)

// Settings configures a Breaker. The zero value is valid: every zero field
// takes the default its comment states.
//
// Update replaces the tunable fields (the thresholds, durations and
// Backoff) on a live breaker. Name, IsFailure, Clock, Events and Rand are
// the breaker's identity and wiring: New sets them and Update ignores them,
// so a policy reload that only knows the numbers cannot unwire a breaker.
type Settings struct {
	// Name identifies the breaker in events, errors and metrics.
	// Default: "" (errors then say just "breaker: ...").
	Name string

	// FailureThreshold is how many failures within MonitoringPeriod open
	// the circuit. Default: 5 (used when <= 0).
	FailureThreshold int

	// MonitoringPeriod is the length of the sliding window failures are
	// counted in. A failure counts for at least 31/32 of the period and
	// never for the whole period or longer (the window is a ring of 32
	// time buckets). Default: 1 minute (used when <= 0).
	MonitoringPeriod time.Duration

	// OpenTimeout is how long the circuit stays OPEN after the first trip
	// before it lets probes through; Backoff grows it on consecutive
	// re-opens. Default: 1 minute (used when <= 0).
	OpenTimeout time.Duration

	// HalfOpenMaxCalls is how many probe calls may run at once in
	// HALF_OPEN; more are rejected with ErrTooManyProbes. Default: 1
	// (used when <= 0).
	HalfOpenMaxCalls int

	// RecoveryThreshold is how many successful probes close the circuit;
	// a single failed probe opens it again. Default: 1 (used when <= 0).
	RecoveryThreshold int

	// ResetTimeout is the quiet time in CLOSED, with no failure at all,
	// after which the failures still in the window are forgotten. It only
	// matters when shorter than MonitoringPeriod. Default: 0, meaning
	// failures are forgotten only as they slide out of the window.
	ResetTimeout time.Duration

	// Backoff grows the open time on consecutive re-opens. Its zero value
	// is valid; see Backoff for the defaults.
	Backoff Backoff

	// IsFailure decides whether a non-nil error returned by a call counts
	// as a failure. An error it rejects is "ignored": it neither opens
	// nor closes the circuit and is counted in Metrics.Ignored. (To make
	// an error count as a success, have the call return nil.) Successful
	// calls (nil error) never reach it; a call that panics always counts
	// as a failure. It must be safe for concurrent use. Default:
	// DefaultIsFailure.
	IsFailure func(error) bool

	// Clock is the time source. Default: clock.Real.
	Clock clock.Clock

	// Events receives a CIRCUIT_BREAKER_TRIGGERED event for every
	// transition. Publish is called with the breaker's lock held, so
	// events arrive in transition order and before the call that caused
	// the transition returns; it must therefore not block or call back
	// into the breaker (events.Bus does neither). Default: none
	// (events.Discard).
	Events events.Publisher

	// Rand returns a number in [0, 1) that picks the jitter of each open
	// period; tests set it to make jitter deterministic. It must be safe
	// for concurrent use. Default: math/rand/v2.Float64.
	Rand func() float64
}

// Backoff makes each consecutive re-open of the circuit (a failed probe in
// HALF_OPEN) keep it open longer. The n-th consecutive re-open (n = 0 for
// the trip from CLOSED) stays open for
//
//	base   = min(Max, OpenTimeout × Multiplier^n)
//	open   = min(Max, base × (1 + Jitter × (2r − 1)))   with r from Settings.Rand
//
// so open lies in [base × (1 − Jitter), base × (1 + Jitter)] and never
// exceeds Max. A full close (enough successful probes, ForceClose or Reset)
// sets n back to 0.
type Backoff struct {
	// Multiplier is the factor applied per consecutive re-open. Values
	// below 1 are treated as 1 (no growth). Default: 2 (used when 0).
	Multiplier float64

	// Max caps the open time. A value below OpenTimeout is raised to
	// OpenTimeout. Default: 10 × OpenTimeout (used when <= 0).
	Max time.Duration

	// Jitter is the fraction by which each open time is spread at random
	// around its base, in [0, 1]; values above 1 are treated as 1.
	// Default: 0.1 (used when 0); a negative value disables jitter.
	Jitter float64
}

// DefaultIsFailure is the classifier used when Settings.IsFailure is nil.
// Every non-nil error is a failure except context.Canceled (the caller gave
// up, which says nothing about the dependency). context.DeadlineExceeded
// does count: a call that runs out of time is exactly the slow dependency a
// breaker exists to notice. To exclude deadlines too, wrap it:
//
//	func(err error) bool {
//		return breaker.DefaultIsFailure(err) && !errors.Is(err, context.DeadlineExceeded)
//	}
func DefaultIsFailure(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled)
}

// config is Settings with every default applied: the tunables Update may
// replace.
type config struct {
	failureThreshold  int
	monitoringPeriod  time.Duration
	openTimeout       time.Duration
	halfOpenMaxCalls  int
	recoveryThreshold int
	resetTimeout      time.Duration
	multiplier        float64
	backoffMax        time.Duration
	jitter            float64
}

func resolve(s Settings) config {
	c := config{
		failureThreshold:  s.FailureThreshold,
		monitoringPeriod:  s.MonitoringPeriod,
		openTimeout:       s.OpenTimeout,
		halfOpenMaxCalls:  s.HalfOpenMaxCalls,
		recoveryThreshold: s.RecoveryThreshold,
		resetTimeout:      s.ResetTimeout,
		multiplier:        s.Backoff.Multiplier,
		backoffMax:        s.Backoff.Max,
		jitter:            s.Backoff.Jitter,
	}
	if c.failureThreshold <= 0 {
		c.failureThreshold = DefaultFailureThreshold
	}
	if c.monitoringPeriod <= 0 {
		c.monitoringPeriod = DefaultMonitoringPeriod
	}
	if c.openTimeout <= 0 {
		c.openTimeout = DefaultOpenTimeout
	}
	if c.halfOpenMaxCalls <= 0 {
		c.halfOpenMaxCalls = DefaultHalfOpenMaxCalls
	}
	if c.recoveryThreshold <= 0 {
		c.recoveryThreshold = DefaultRecoveryThreshold
	}
	if c.resetTimeout < 0 {
		c.resetTimeout = 0
	}
	switch {
	case c.multiplier == 0:
		c.multiplier = DefaultBackoffMultiplier
	case c.multiplier < 1 || math.IsNaN(c.multiplier):
		c.multiplier = 1
	}
	if c.backoffMax <= 0 {
		c.backoffMax = satMul(c.openTimeout, DefaultBackoffMaxFactor)
	}
	if c.backoffMax < c.openTimeout {
		c.backoffMax = c.openTimeout
	}
	switch {
	case c.jitter == 0:
		c.jitter = DefaultBackoffJitter
	case c.jitter < 0 || math.IsNaN(c.jitter):
		c.jitter = 0
	case c.jitter > 1:
		c.jitter = 1
	}
	return c
}

// satMul returns d × n, saturating at the largest Duration.
func satMul(d time.Duration, n int64) time.Duration {
	if d > math.MaxInt64/time.Duration(n) {
		return math.MaxInt64
	}
	return d * time.Duration(n)
}

// baseOpen is the open time of the level-th consecutive re-open before
// jitter: min(Max, OpenTimeout × Multiplier^level).
func (c config) baseOpen(level int) time.Duration {
	d := float64(c.openTimeout) * math.Pow(c.multiplier, float64(level))
	if d >= float64(c.backoffMax) || math.IsInf(d, 0) || math.IsNaN(d) {
		return c.backoffMax
	}
	return time.Duration(d)
}

// openFor is how long the level-th consecutive re-open lasts, given the
// jitter draw r in [0, 1). It is at least 1ns.
func (c config) openFor(level int, r float64) time.Duration {
	base := c.baseOpen(level)
	d := float64(base) * (1 + c.jitter*(2*r-1))
	if d >= float64(c.backoffMax) {
		return c.backoffMax
	}
	if d < 1 {
		return 1
	}
	return time.Duration(d)
}

// draw calls the Rand source and forces the result into [0, 1).
func draw(rnd func() float64) float64 {
	r := rnd()
	if !(r >= 0) { // also catches NaN
		return 0
	}
	if r >= 1 {
		return math.Nextafter(1, 0)
	}
	return r
}

// defaultRand is Settings.Rand's default.
func defaultRand() float64 { return rand.Float64() }
