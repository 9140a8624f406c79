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
// # Shards
//
// The connections are a core/shard Manager's: one shard by default (the
// count /gateway/bot recommends, 1 for most bots), or Config.ShardCount
// shards, or Config.ShardRange of them. The Manager owns each shard's
// connection, breaker, Recorder and (with several shards) health monitor
// with the policy's built-in checks; its process Recorder takes REST and
// pools every shard's errors. The process health monitor has the plugins'
// checks, and the built-in ones only while the process runs one shard
// (with several, run on the merged Snapshot, the gateway check would fail
// for any one shard down). Each tick the orchestrator sets the process
// health verdict and degradation level on the process Recorder, has the
// Manager run the shards' due checks and build its View, and evaluates the
// policy on View.Snapshot: the process Snapshot, with the shards.*
// aggregate (a process of one shard gets exactly that shard's figures).
// The degradation engine acts for the process; the recovery engine plans
// each shard's recoveries (ConnPlanner per shard), its rules reading that
// shard's own figures when there are several. Events carry their shard;
// the process's (degradation, policy, plugins) carry events.NoShard.
//
// The root package lifeline is the bot author's front door; it wraps an
// Orchestrator. Nothing under core/ imports this package (a test in the
// repository root enforces the direction).
//
// # Fleets
//
// A policy with a coordination "nats" block makes the process one of a
// fleet of lifeline processes running one bot (fleet.go; core/coord, and
// docs/fleet.md for operators). The shard manager is then Dynamic: Start
// resolves the shard count and budget, joins the fleet (through the backend
// core/coord/natscoord registers when the program imports it) and returns
// once the share of shards the fleet's leader gives this process is READY.
// Every IDENTIFY goes through the fleet's identify queue, every reconnect
// waits until the process holds the shard, each shard's session is saved
// when it is READY and every save_interval, and shards move between
// processes by RESUME (shard.CoordHandler). Each tick publishes the
// process's health and sets Snapshot.Fleet from the last fleet view (read in
// the background, so the tick never waits on the network); without a
// coordination block Snapshot.Fleet describes the process as a fleet of
// one. Stop hands every shard over before anything else stops.
// Diagnostics.Fleet and the lifeline_fleet_* metrics say who owns which
// shard.
package orchestrator
