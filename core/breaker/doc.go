// Package breaker is lifeline's circuit breaker: it stops calling a
// dependency that keeps failing (the Discord gateway, its REST API, a
// plugin) and lets a few probe calls find out when it is back.
//
// # State machine
//
//	          FailureThreshold failures              OpenTimeout (with backoff)
//	          within MonitoringPeriod                has passed
//	CLOSED ─────────────────────────────▶ OPEN ─────────────────────────▶ HALF_OPEN
//	   ▲                                   ▲                                 │  │
//	   │                                   └──── a probe fails ──────────────┘  │
//	   └──────────── RecoveryThreshold probes succeed ──────────────────────────┘
//
// In each state:
//
//   - CLOSED: every call goes through. Failures are counted in a sliding
//     window; when FailureThreshold of them fall within MonitoringPeriod
//     the circuit opens. After ResetTimeout without any failure, the
//     failures still in the window are forgotten.
//   - OPEN: every call is rejected at once with an error wrapping ErrOpen.
//     When the open period ends the circuit goes HALF_OPEN. With clock.Real
//     a timer makes that move when the period ends, so the event is
//     published on time even if no call arrives; with any other clock the
//     next call, State or Metrics also compares the clock with the deadline,
//     so a test that moves a Fake clock sees the change on its very next
//     call.
//   - HALF_OPEN: at most HalfOpenMaxCalls probe calls run at once; others
//     are rejected with ErrTooManyProbes. RecoveryThreshold successful
//     probes close the circuit; one failed probe opens it again with a
//     longer open period.
//
// ForceOpen holds the circuit OPEN, with no timeout, until ForceClose or
// Reset. ForceClose closes it and forgets failures and backoff; the breaker
// then runs automatically again. Reset does the same and also zeroes the
// counters. Each transition starts a new generation, and the outcome of a
// call that began in an older generation is counted in Metrics but does not
// move the new state (a slow call that fails after the circuit tripped and
// closed again does not count against the fresh window).
//
// # The failure window
//
// Failures are counted in a ring of 32 time buckets, each
// MonitoringPeriod/32 long, so memory is fixed whatever the threshold or
// traffic. The window slides by whole buckets: a failure of age a counts
// when a <= 31/32 × MonitoringPeriod and never when a >= MonitoringPeriod.
// It is a true sliding window, not a counter cleared at fixed intervals: at
// any moment it holds the failures of the last period, however they are
// spread. Only failures in CLOSED enter the window, and it is emptied
// whenever the circuit closes.
//
// # Outcomes
//
// A call returning nil is a success. A non-nil error is a failure if
// Settings.IsFailure says so and is otherwise ignored: counted in
// Metrics.Ignored but neither opening nor closing the circuit (an ignored
// probe just frees its slot). By default (DefaultIsFailure) every error is
// a failure except context.Canceled, which says the caller gave up, not
// that the dependency failed; context.DeadlineExceeded is a failure,
// because a dependency too slow to answer in time is what a breaker is for.
// A call that panics is a failure and the panic continues.
//
// # Backoff
//
// The n-th consecutive re-open (n = 0 for the trip from CLOSED, 1 after the
// first failed probe round, and so on) stays open for
//
//	base = min(Max, OpenTimeout × Multiplier^n)
//	open = min(Max, base × (1 + Jitter × (2r − 1)))
//
// where r in [0, 1) comes from Settings.Rand, drawn once per open period.
// So open lies within ±Jitter of base and never exceeds Max. Any full close
// (enough good probes, ForceClose, Reset) resets n to 0.
//
// # Live reconfiguration
//
// Update applies new thresholds, durations and backoff to a running breaker
// at once, without losing its state, counters, window, backoff level or
// listeners; the breaker's name, classifier, clock, publisher and random
// source stay as New set them. In CLOSED, the window is kept (re-bucketed
// if MonitoringPeriod changed) and the circuit opens at once if its
// failures already reach the new FailureThreshold: the new policy says
// that many failures means open, so waiting for one more would disobey it.
// In OPEN, the current open period is recomputed from its start with the
// new OpenTimeout and Backoff (same backoff level, same jitter draw) and
// ends at once if that end has passed; a forced open stays forced. In
// HALF_OPEN, a new HalfOpenMaxCalls applies to the next admission (running
// probes finish) and the circuit closes at once if the probes that already
// succeeded reach the new RecoveryThreshold. Settings with no use in the
// current state apply from their next use.
//
// # Events and listeners
//
// Every transition is published to Settings.Events as a
// CIRCUIT_BREAKER_TRIGGERED event carrying an events.BreakerTransition
// (breaker name, old and new state, reason, open timeout), in order and
// before the call that caused it returns. OnStateChange listeners receive a
// Transition outside the breaker's lock and may call back into it.
//
// # Cost
//
// In CLOSED, a successful Execute (and an Allow with its done(nil)) takes
// no lock and allocates nothing: one atomic load of the state word, the
// call, and one atomic add on a counter stripe chosen by the calling
// goroutine's stack address, so goroutines on different cores rarely share
// a cache line. A rejection in OPEN is the same load and add (with
// clock.Real it does not even read the clock) and allocates nothing, since
// each breaker makes its rejection errors once. Failures, probes and
// transitions take a mutex; they are rare by design. The counter stripes
// are 128 bytes each, one per core (GOMAXPROCS when New runs, rounded up
// to a power of two, at most 16), so a process with a breaker per shard
// pays for the cores it has, not for the most a machine could have.
package breaker
