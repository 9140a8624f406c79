// Package health runs lifeline's health checks and turns their results into
// one verdict: a status, a score, and how steady, reliable and trending that
// score is.
//
// # Checks
//
// A check is a Checker: one method, Check(ctx, metrics.Snapshot) Result. It
// gets a name when it is registered with Monitor.Add, together with a
// CheckConfig (interval, timeout, retries, critical flag, weight, enabled).
// Three checks are built in, each judging one part of the Snapshot:
//
//   - LatencyCheck: the heartbeat round trip is at most a threshold
//     (default 1s); passes before the first ACK, when there is nothing to
//     judge.
//   - GatewayCheck: the gateway session is connected and its last heartbeat
//     ACK is no older than a maximum age (default 1.5 heartbeat intervals,
//     or 60s before HELLO); pending until the first session comes up.
//   - ErrorRateCheck: the error rate over the metrics window is at most a
//     threshold (default 0.1).
//
// Plugins and bot authors add their own Checkers; CheckFunc adapts a
// function.
//
// # Running checks
//
// Start runs a loop that looks for due checks every Options.Tick (default
// 1s) on the injected clock; an orchestrator with its own tick calls RunDue
// instead, and RunOnce runs every enabled check at once. Each run takes one
// Snapshot from Options.Source and runs its checks concurrently; its evaluation is made
// when the slowest of them has a result, which the timeouts bound.
//
// Defaults (Options): Interval 30s, Timeout 10s, Retries 3, RetryDelay 0,
// Tick 1s, HistorySize 100, Window 10, DeadBand 1.0, CriticalWeight 2,
// UnhealthyBelow 50. A CheckConfig field left zero takes the Options value.
//
// Each attempt is bounded by the check's timeout, measured with a timer of
// the injected clock that is set before Check is called. When it fires, the
// attempt's context is canceled and the attempt counts as failed with
// TimedOut set; the monitor does not wait for Check to return. A failed
// attempt is retried at once (or after Options.RetryDelay, on the clock) up
// to Retries times; the run's result is the first passing attempt or the
// last failing one, with Attempts saying how many were made.
//
// Each call of Check runs on a goroutine of its own, so that the monitor
// can stop waiting for it; the goroutine that called RunOnce or RunDue (or
// one per batch of due checks, under Start) waits for every check of the
// run, its timeouts and its retry delays. A new goroutine is made for each
// attempt, unless the Checker is a WorkerChecker asking for a kept one: its
// calls are then made, one after the other, by a goroutine the monitor
// keeps for it between runs, which saves a check with a deep call path
// (plugin checks, calling through gRPC) from growing a fresh goroutine's
// stack on every call. A kept goroutine ends when its check is removed or
// replaced by a Checker that does not ask for one, and when Stop is called.
//
// A check that ignores its context keeps running after its timeout in an
// abandoned goroutine. That goroutine ends when Check returns; its result
// is discarded. A kept goroutine whose call is abandoned (timed out, or its
// run cut short) is no longer kept: the check's next attempt gets a new one,
// so it never waits behind a hung call. To keep a hung check from piling up
// goroutines, each registered check has at most two calls outstanding (the
// one being waited for and one abandoned): while two have not returned,
// further attempts are not started and count as failed at once ("earlier
// calls are still running"), and retries stop. CheckState.Calls shows the
// count. Removing a check does not end its abandoned call; nothing can,
// short of Check returning.
//
// A check that cannot judge yet returns a pending Result (Result.Pending:
// the gateway has not been READY yet, the plugin serving it is still
// starting). A pending result is not retried and counts as neither passed
// nor failed: the check's previous verdict stands (a check with none does
// not contribute), reliability does not count it, and the check runs again
// at the next tick instead of an interval later. A run whose results are
// all pending (or cut off) makes no evaluation.
//
// Checks can be added (Add), removed (Remove), reconfigured (Configure) and
// swapped (Replace) while the monitor runs, and the monitor-wide interval,
// timeout and retries changed (SetDefaults). A run in progress keeps the
// settings it started with; a removed check's late result is dropped.
//
// # Derived values
//
// After every run the monitor derives an Evaluation from the last verdict
// (the last result that was not pending) of every enabled check
// ("contributing" checks; a check that has no verdict yet does not
// contribute).
//
// Score, 0-100, the weighted share of passing checks:
//
//	w_i   = Weight_i × (CriticalWeight if check i is critical, else 1)
//	score = 100 × Σ_{i passing} w_i / Σ_i w_i          (100 with no checks)
//
// Status, the first rule that applies:
//
//	no contributing check              UNKNOWN
//	a critical check is failing        CRITICAL
//	no check is failing                HEALTHY
//	score < UnhealthyBelow (50)        UNHEALTHY
//	otherwise                          DEGRADED
//
// So with equal weights one failing check out of three is DEGRADED
// (score 66.7), two out of three UNHEALTHY (33.3), and a failing critical
// check is CRITICAL whatever the score.
//
// Stability, over the last Window (10) scores s_1..s_n including the new
// one, where σ is their population standard deviation:
//
//	stability = clamp(100 − 2σ, 0, 100)                (100 when n < 2)
//
// Scores lie in [0, 100], so σ ≤ 50: steady scores give 100 and scores
// alternating between 0 and 100 give 0.
//
// Reliability, over every result in the history (at most HistorySize
// runs' worth):
//
//	reliability = 100 × passing results / results      (100 with none)
//
// Trend, from the least-squares slope of the same Window scores against
// their index x = 0..n−1, in score points per evaluation:
//
//	slope = Σ (x − x̄)(s − s̄) / Σ (x − x̄)²
//	slope >  DeadBand  improving
//	slope < −DeadBand  degrading
//	otherwise          stable                           (stable when n < 3)
//
// The history keeps the last HistorySize evaluations, each with its run's
// results, so its memory is bounded by HistorySize × checks. Remove and
// Configure derive the status and score again at once (a removed or
// disabled check stops counting) without adding to the history; stability,
// reliability and trend then keep their last values.
//
// When the status changes, the monitor publishes HEALTH_CHANGED
// (events.HealthChange: from, to, score, failing checks) on Options.Events;
// nothing is published while the status stays the same. Latest,
// Diagnostics and History report the state; View gives it as the
// metrics.HealthView the metrics Recorder carries in each Snapshot.
package health
