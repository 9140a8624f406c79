// Package orchestrator assembles lifeline's core into one running system:
// the event bus, the metrics Recorder, the circuit breaker guarding
// connection attempts, the health monitor, the policy and the managed
// gateway connection, and the tick that ties them together.
//
// The data flow, once per tick (Config.TickInterval, default 1s):
//
//	wire observations ─┐
//	REST results ──────┼─► Recorder ─► Snapshot ─► health checks ─► HealthView
//	state/error events ┘                  │
//	                                      └─► policy.Evaluate ─► Decision
//
// Observations reach the Recorder as they happen (O(1), no allocation);
// the tick only builds the Snapshot, feeds the breaker's, the monitor's and
// the degradation view back into it, and asks the policy for a Decision.
//
// The root package lifeline is the bot author's front door; it wraps an
// Orchestrator. Nothing under core/ imports this package (a test in the
// repository root enforces the direction).
package orchestrator
