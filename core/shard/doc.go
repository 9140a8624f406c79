// Package shard runs many shards of one Discord bot in one process: a
// Manager owns one managed connection (core/conn) per shard of its range,
// each with its own circuit breaker, metrics Recorder, state and optional
// health monitor, and shares between them what Discord counts per bot: the
// REST transport and rate limiter, the identify queue with its daily
// session-start budget, and a reconnect gate.
//
// # Shard count and range
//
// Config.ShardCount is the bot's total shard count; Auto (0) takes the
// count GET /gateway/bot recommends. Config.Range picks the shards this
// process runs, [First, Last] inclusive ("shards 0 to 15 of 64"); nil runs
// them all. A guild's events go to shard (guild_id >> 22) % count;
// Manager.ShardForGuild finds it.
//
// # Start: identify order and budget
//
// Discord lets max_concurrency IDENTIFYs through per 5 s, one per bucket,
// where a shard's bucket is shard_id % max_concurrency, and a bot has a
// daily budget of session starts (IDENTIFYs; RESUMEs are free). Start:
//
//  1. asks /gateway/bot for the gateway URL, the recommended count and the
//     budget (unless Config.Gateway or SkipGatewayBot says otherwise);
//  2. refuses to start when the budget left is smaller than the number of
//     shards in the range: the error wraps conn.ErrSessionStartLimit and a
//     *conn.SessionStartLimitError, and its message names the starts
//     needed, the starts left and the reset time. Nothing has connected
//     at that point;
//  3. brings the shards up bucket by bucket: the first shard of every
//     bucket at once, and each next shard of a bucket when the shard before
//     it has its turn in the identify queue, so it dials and gets HELLO
//     during the window it has to wait anyway; at most one shard per
//     bucket is connected and waiting for its turn. Every IDENTIFY goes
//     through the one shared conn.IdentifyQueue, which enforces the window
//     and the budget (and which a fleet can replace with a cross-process
//     one);
//  4. returns when every shard is READY, calling Config.OnProgress for each
//     ("5 of 8 shards READY"), or stops everything it started and returns
//     the first shard's error.
//
// With N shards in B buckets the last IDENTIFY leaves
// (ceil(N/B) - 1) × (window + margin) after the first, the minimum the
// identify rules allow plus the queue's margin.
//
// The queues count a bucket's window from the moment Wait returns (the
// previous caller's real release), not from a planned time; what Discord
// measures is when each IDENTIFY arrives, and between Wait returning and
// the frame leaving there is still the event lock, the encoding and the
// write, which a loaded machine (a GC pause, CPU starvation, hundreds of
// connections handshaking at once) can stretch. So the shards also share
// a pacer: a shard takes its bucket before it
// queues and holds it until its IDENTIFY is written (seen by its wire
// observer) or its attempt ends, and the next shard of the bucket takes it
// only window + margin after that write. Re-identifies after start go
// through the same pacer and queue.
//
// A shard whose first attempt ends before it identifies (a dial error, a
// handshake timeout) does not hold up its bucket: the next shard goes, and
// the failed shard IDENTIFYs later through the queue like any re-identify.
//
// # Re-sharding (close code 4011)
//
// Discord closes an IDENTIFY with 4011 when a shard would hold too many
// guilds. With Auto and no Range, the manager then re-shards: it stops
// every shard, takes the count /gateway/bot recommends when that is more
// than the current one and twice the current count otherwise (which keeps
// a count Discord assigned a multiple of), checks the budget again and
// starts the new shards in order, at most MaxReshards times in a row. This
// happens inside Start, and also later when a running shard gets 4011 (the
// bot grew); each re-shard publishes an ERROR_OCCURRED event of kind
// "resharding". Every shard then has a new Session: handlers given to
// AddHandler are attached to the new Sessions, handlers added to a
// Session directly are not. With a fixed count or a Range (other
// processes run the other shards), 4011 is returned as the error it is.
//
// # Correlated failures: the reconnect gate
//
// When many shards drop at once (a Discord-wide incident, a network blip
// on the host), every connection loop wants to reconnect in the same
// instant. Each shard's connection waits at one shared Gate before every
// attempt after its first (conn.Config.ReconnectGate). The Gate is a token
// bucket: Burst attempts go at once, then one per Interval, each spacing
// drawn uniformly from Interval × [1 − Jitter, 1 + Jitter); waiting
// RESUMEs are served before waiting IDENTIFYs, each in arrival order. So a
// blip on a few shards costs nothing, a mass disconnect of N shards is
// spread over about (N − Burst) × Interval, and sessions that can still
// resume are resumed first, before re-identifies spend the budget. A
// manager running a single shard uses no gate (there is nothing to
// spread), unless Config.ReconnectGate gives one. The
// gate never turns a RESUME into an IDENTIFY: conn resumes every session
// it still holds, and only a close code or op 9 that ends the session
// makes it identify.
//
// # Health per shard and for the process
//
// Each shard's Recorder is fed synchronously by its connection's wire
// observations and events (not through a bus subscriber that could fall
// behind), and its Snapshot carries the shard's breaker and health
// verdict. Classify turns a shard's state and Snapshot into a Condition:
//
//	Unhealthy  FAILED; or READY before and not READY now; or breaker OPEN;
//	           or health UNHEALTHY or CRITICAL
//	Starting   never READY yet (and none of the above)
//	Degraded   health DEGRADED, or breaker HALF_OPEN
//	Healthy    otherwise
//
// Summarize aggregates the shards' views for the process (the one place
// they are summed up): shards ready, counts per condition, the ratios
//
//	ReadyRatio     = Ready / Total
//	UnhealthyRatio = Unhealthy / Total
//	DegradedRatio  = (Degraded + Unhealthy) / Total
//
// the worst ACK age and heartbeat latency with their shards, the mean
// latency, the pooled error rate (the shards' failures over their
// operations in the window) and the worst shard's, the lowest health
// score, and the shards' counters added up. View returns every shard's
// view with the aggregate; Tick first runs the shards' due health checks
// (the manager has no loop of its own: its owner ticks it).
//
// Every event a shard's connection, breaker and monitor publish carries the
// shard's ID.
//
// # The process Recorder and the process Snapshot
//
// The manager's own Recorder (Manager.Recorder) is the process's: the
// shared REST transport reports to it, and it is the metrics Parent of
// every shard's Recorder, so its errors pool REST and every shard's
// operations in the order they happened. View.Snapshot merges it with the
// shards into the Snapshot a process-wide policy evaluates: errors, REST,
// health and degradation from the process Recorder; heartbeat latencies
// averaged over the shards; gateway.connected only when every shard is;
// the worst ACK age and the worst breaker state; the gateway state, close
// code and sequence of the shard furthest from READY; the longest outage
// (gateway.down_for); sessions and counters added up; and Snapshot.Shards,
// the Aggregate's embedded metrics.Shards (the policy's `shards.*`). A
// process running one shard gets exactly that shard's figures with REST
// and the pooled errors: what a single connection reports.
//
// # Shards given at run time: Dynamic managers and fleets
//
// With Config.Dynamic the manager runs no range: Start resolves the shard
// count, the gateway and the identify queue and returns, and the shards are
// whatever AddShard starts and RemoveShard stops, any set of IDs below the
// count. That is how a process of a fleet (core/coord) runs the shards the
// fleet gives it: CoordHandler is the coord.ShardHandler that does it.
//
//   - AddShard(ctx, id, resume) launches the shard without waiting for
//     READY. With a saved session (conn.SavedSession) its first attempt
//     RESUMEs that session, opened by another process or an earlier run;
//     without one, or when Discord refuses the RESUME, it IDENTIFYs
//     through the identify queue (a fleet's is shared by every process).
//   - RemoveShard(ctx, id) closes the shard with 4000 and returns its
//     session once the connection has ended, for the next owner.
//   - CoordHandler.StartShard loads the session from the coordinator's
//     resume store and adds the shard with it; StopShard removes the shard
//     and saves its session before the coordinator frees the shard;
//     SaveAll stores every running shard's session (its owner calls it
//     regularly, so the shards of a killed process stay resumable).
//   - Config.Holds (a fleet's Ownership().Holds) is asked before every
//     reconnect: a process whose lease has expired does not reconnect a
//     shard another process may run by now.
//
// A 4011 on a Dynamic manager is returned as the error it is: the fleet
// shares one shard count, so no single process re-shards.
//
// # Stop
//
// Stop stops every shard in parallel, each closing with 4000 so its
// session stays resumable, and returns when every goroutine the manager
// and its shards started has ended.
package shard
