// Package clock is the time source every time-based part of lifeline reads.
//
// The breaker, the health monitor, backoff, hysteresis and the metrics
// windows never call time.Now or time.NewTimer directly: they take a Clock.
// Production code uses Real; tests use a Fake and move time with Advance, so
// time-based logic is tested without sleeping and without flaky timing.
package clock
