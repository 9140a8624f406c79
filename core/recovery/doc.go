// Package recovery chooses and runs lifeline's recovery strategies: when
// the connection (or anything else lifeline watches) fails, an Engine tries
// the strategies that apply, in priority order, until one succeeds.
//
// # Strategies
//
// A strategy has a name, a priority (lower runs first), a condition and an
// execute step, the small Recoverer interface:
//
//	Recover(ctx context.Context, a Attempt) error   // nil: recovered
//
// Strategies come from two places and share one order:
//
//   - the policy's `recovery "NAME"` blocks (priority, when, use,
//     max_attempts), whose expr conditions core/policy compiles and
//     evaluates over `error.*` and the Snapshot (Policy.ChooseRecovery);
//     `use` names an implementation: a built-in, or "plugin.strategy"
//     registered with Engine.Register;
//   - Go strategies added with Engine.AddRecoveryStrategy (the seed's
//     addRecoveryStrategy), whose condition is a Go function of the
//     Failure.
//
// On equal priority, policy rules (in file order) run before Go strategies
// (in registration order). Without a policy the default rules apply (see
// policy.DefaultRecoveryRules): resume, reconnect, reidentify,
// restart_client.
//
// # Built-in strategies
//
// resume, reconnect, reidentify and restart_client are the connection
// loop's recovery modes (conn.RecoverResume, RecoverReconnect,
// RecoverReidentify, RecoverRestart); they are strategies like any other,
// so a policy reorders them by priority and disables one by leaving it
// out. They drive a Connection:
//
//	Recover(ctx context.Context, mode conn.RecoverMode, cause string) error
//
// which returns once the connection is READY again. core/conn's
// *Connection asks for a recovery and returns at once, reporting the
// outcome as RECOVERY_* events; ConnAdapter waits for that event and so
// makes it a Connection. Without a Connection the built-ins are skipped as
// unavailable.
//
// # Handling a failure
//
// Engine.Handle takes a Failure (its classification, see Classify and
// FailureFromEvent; the shard; a Snapshot; the Connection) and:
//
//  1. evaluates the conditions and orders the strategies that apply;
//  2. for each strategy, skips it if unavailable, then runs up to its
//     MaxAttempts attempts (RetryDelay apart), each bounded by
//     AttemptTimeout on the injected clock (for a connection attempt, from
//     when the connection loop begins it: the backoff it waits out first
//     is not the attempt's);
//  3. publishes RECOVERY_ATTEMPTED before and RECOVERY_COMPLETED (with
//     Success, Error and Duration) after every attempt;
//  4. returns at the first success; a failed attempt falls through to the
//     next attempt, then to the next strategy;
//  5. when nothing succeeded, publishes ERROR_OCCURRED (Source "recovery",
//     Kind "recovery_failed") and returns an error wrapping ErrExhausted
//     (or ErrNoStrategy when nothing applied).
//
// # Caps
//
// Three caps keep a strategy that keeps failing from hammering Discord:
//
//   - per strategy and failure: MaxAttempts (a rule's max_attempts);
//   - per strategy and shard, across failures: at most
//     MaxStrategyAttemptsPerWindow failed attempts within any Window
//     (sliding); when reached the strategy is skipped and the next one
//     runs;
//   - per shard: at most MaxAttemptsPerWindow failed attempts of all
//     strategies within any Window; when reached every remaining strategy
//     is skipped.
//
// An attempt counts against the window caps when it starts and is taken
// back out when it succeeds (Stats.Refunded): a bot whose connection drops
// often but resumes every time never meets them. A cap never costs a
// session that can resume: when a resume strategy applies to the failure
// (the policy says the session is resumable) and a strategy that keeps the
// session (resume, reconnect) was skipped at its cap, the strategies that
// start a new one (reidentify, restart_client) are skipped too
// (ErrSessionKept), and the failure goes back to the connection loop,
// which RESUMEs with its own backoff and max_reconnect_attempts. Every
// attempt publishes its two events and counts in Stats.Attempts whether or
// not it is refunded; skips publish no event and count in Stats.Skipped
// and the Report. One recovery
// runs per shard at a time; a Handle for a shard already recovering
// returns ErrBusy at once, so errors caused by the recovery itself do not
// start a second one.
package recovery
