// Package coord is what the lifeline processes running one Discord bot
// share: the identify queue with the daily session-start budget, shard
// ownership, each shard's resume state, and the fleet's health. A
// Coordinator bundles the four small interfaces (IdentifyQueue,
// Ownership, ResumeStore, HealthBoard).
//
// Two implementations:
//
//   - Local, the default: one process runs its shards alone. The identify
//     queue is a conn.LocalIdentifyQueue, ownership is fixed, the resume
//     store and health board live in memory. No goroutine, no network, no
//     new dependency: one-process users pay nothing.
//   - Fleet: many processes (one per machine or pod) share a Store, a few
//     key-value buckets with compare-and-swap and TTLs. core/coord/natscoord
//     provides the Store on NATS JetStream KV; MemoryStore provides it in
//     memory, timed by an injected clock, for tests and one-machine
//     simulations (several Fleets on one MemoryStore behave like several
//     processes on one NATS server).
//
// The Fleet logic is written once against the KV interface; natscoord only
// maps KV calls to JetStream, and both stores pass the same conformance
// suite (core/coord/coordtest).
//
// # Buckets and keys
//
//	members (TTL LeaseTTL)    proc.<id>     a process's heartbeat: instance nonce,
//	                                        leaving flag, owned shards, health
//	                          leader        the leader's ID
//	slots (TTL Window+Margin) bucket.<n>    identify bucket n is taken this window
//	state (no TTL)            shards        the fleet's shard count (NewFleet refuses another)
//	                          plan          the leader's assignment, shard -> process
//	                          owner.<shard> the process running the shard
//	                          budget        the shared session-start budget
//	resume (no TTL)           shard.<id>    the shard's ResumeState
//
// TTLs are per bucket (a value lives TTL after its last write): they are
// measured by the store (the NATS server), so no clock is compared across
// machines, and a bucket TTL has the store's precision, where NATS per-key
// TTLs are whole seconds (Discord's 5 s window plus a 250 ms margin would
// round up to 6 s).
//
// # Identify queue
//
// Discord allows max_concurrency IDENTIFYs per 5 s, one per bucket
// (shard_id % max_concurrency), and a daily budget of session starts. The
// fleet queue's Wait, for shard s in bucket b:
//
//  1. reads the budget (seeding it from Settings.Limit when the store has
//     none; refilling it once its reset time has passed) and fails with a
//     *conn.SessionStartLimitError wrapping conn.ErrSessionStartLimit when
//     it is spent;
//  2. creates slots/bucket.<b> (create-if-absent): one caller in the whole
//     fleet wins, and the key expires Window + Margin later; the others
//     poll every PollInterval (within a process, shards of one bucket queue
//     locally first so only one polls);
//  3. takes one start from the budget by compare-and-swap on its revision;
//  4. writes the slot again, which restarts its TTL and proves it was not
//     lost meanwhile, and returns only while that write was sent less than
//     a Window ago (so the slot lives at least Margin longer; otherwise it
//     writes again, or takes the slot again if it expired);
//  5. right after deciding to return, writes the slot once more in the
//     background: that write reaches the store after the release, so the
//     window counts from when Wait returned (the IDENTIFY leaves right
//     after), not from a write before it whose answer may have come back
//     late. Should that write fail (the store unreachable just then), the
//     slot expires a Window + Margin after the write of step 4, which was
//     sent less than a Window before the release: the next IDENTIFY of the
//     bucket comes less than a whole Window + Margin after this one only
//     by as much as step 4's answer was late.
//
// So at most max_concurrency IDENTIFYs start per window fleet-wide, each
// bucket's IDENTIFYs a Window + Margin apart as they leave, and the budget
// is never overspent. When the store is unreachable, Wait waits
// (RetryInterval between tries): a process never IDENTIFYs without a slot.
// The outage is reported once, as an ERROR_OCCURRED event (source "coord",
// kind "unavailable"), a log line and Settings.OnUnavailable; Stats counts
// it for metrics. While Ownership runs, Wait also waits while the process
// does not hold the shard. Fleet.SyncBudget merges a fresh /gateway/bot
// answer (Discord's count wins: the smaller Remaining is kept).
//
// # Ownership
//
// Every process heartbeats proc.<id> each Interval (Update refreshes the
// TTL). Its lease is valid until the heartbeat's send time plus 90% of
// LeaseTTL: the store starts the TTL on receipt, later than the send, so a
// process always believes its lease gone before the others may act on it.
// The heartbeat has a loop of its own (the leader's work never delays it)
// and abandons a store call after LeaseTTL/4: a request lost with a broken
// connection is never answered, and the next heartbeat goes out on the
// new one in time to keep the lease.
//
// The leader is whoever holds the leader key (create-if-absent, refreshed
// by compare-and-swap each Interval; it expires LeaseTTL after a dead
// leader's last refresh). The leader lists the live processes that are not
// leaving and writes the plan: every process gets ShardCount/processes
// shards (one more for the first ShardCount%processes); a shard stays with
// its current process while that process is under its quota, so a join or
// a leave moves only the shards it must. Plan writes are compare-and-swap:
// two leaders at once cannot overwrite each other, and ownership never
// depends on the plan alone.
//
// Ownership is the owner.<shard> key. Each process reconciles every
// Interval:
//
//  1. a shard it runs whose owner key is no longer its own is stopped (it
//     was taken after this process's lease expired; a key missing from
//     the listing is read itself first, since a listing can miss a key);
//  2. a shard it runs that the plan gives to another process is handed
//     over: ShardHandler.StopShard (close 4000, save the resume state),
//     then the owner key is deleted at its revision;
//  3. a shard the plan gives it is taken when its owner key is free, or
//     held by a process whose heartbeat key has expired, as read from the
//     key itself (deleted at its revision, then created): create the
//     owner key, then StartShard.
//
// A shard is started only after its owner key is created, and the key is
// deleted only after the shard stopped, so no two live processes run a
// shard at once. A graceful Leave marks the process leaving, hands every
// shard over at once (step 2) and deletes its keys; the others take the
// shards at their next reconcile. A process that dies loses its shards
// LeaseTTL after its last heartbeat (plus one Interval).
//
// A process whose lease ran out (it could not reach the store for a
// LeaseTTL) and is valid again is in grace for one LeaseTTL: if the store
// was out for everyone, every heartbeat key expired although the processes
// are alive, and they rejoin one by one as their connections come back.
// During its grace a process neither replans as leader nor takes a shard
// from a holder whose heartbeat is missing, so a process that rejoins first
// cannot take the shards of one that rejoins a little later (and still runs
// them). A process that really died meanwhile loses its shards when the
// grace is over. The grace counts from the answer to the heartbeat that
// rejoined (one sent while the store was away is answered only once it is
// back), and a leader plans only under a valid lease, out of its grace,
// from a listing that holds its own heartbeat, and plans a process out
// only once its heartbeat key, read itself, is gone: a leader's call made
// before the outage and answered after it cannot plan from the few
// processes back first.
//
// When the store is unreachable nothing moves: running shards keep running
// (losing NATS does not stop the bot), no shard is taken or given, no
// IDENTIFY happens. Holds reports false once the lease has expired, which
// is what a reconnect gate consults so that a cut-off process does not
// reconnect a shard another process may now run. Settings.StopOnLeaseLoss
// stops the shards instead, trading availability during a store outage for
// no double run when only this process is cut off.
//
// # Resume state
//
// ResumeStore keeps each shard's session_id, sequence and resume URL (never
// the token). The process that stops a shard saves it; the next owner loads
// it and RESUMEs instead of IDENTIFYing, so a rolling restart costs no
// session start while the sessions are resumable.
//
// # Health
//
// HealthBoard.Publish sets what the next heartbeat carries; View lists the
// members bucket: processes, the leader, shards owned and READY, and
//
//	UnhealthyRatio = min(Unhealthy + Shards - Owned, Shards) / Shards
//
// (a shard nobody owns counts as unhealthy), the worst ACK age, and the
// processes degraded. A dead process's figures vanish with its lease.
//
// # Plugging into core/shard and the orchestrator
//
// core/coord imports core/conn (for its interfaces) and never core/shard nor
// core/orchestrator, so those can import it. The wiring:
//
//   - a policy's coordination "nats" block names the backend; OpenBackend
//     opens its Store (core/coord/natscoord registers "nats" when a program
//     imports it, as the lifeline command does: the root package and a bot
//     embedding lifeline link NATS only if they import natscoord);
//   - the orchestrator makes its shard manager Dynamic (core/shard), gives
//     it the fleet's identify queue (IdentifyQueue; the manager needs no
//     budget check at start) and Ownership().Holds as Config.Holds, which
//     every reconnect waits for;
//   - shard.CoordHandler is the ShardHandler: StartShard loads the
//     ResumeState and adds the shard with it (so it RESUMEs), StopShard
//     removes it with close code 4000 and saves its session before
//     returning, and the orchestrator saves every running shard's session
//     regularly (a killed process's shards then RESUME too);
//   - the orchestrator runs Ownership().Run beside the manager, calls Leave
//     first at Stop (every shard handed over at once), publishes
//     ProcessHealth every tick, reads HealthBoard.View in the background
//     into the Snapshot's fleet view (fleet.* in the policy), and merges
//     /gateway/bot's budget with SyncBudget.
package coord
