// Package chaos is lifeline's chaos soak: it runs the whole system (the root
// package's lifeline.New, the default policy read from a watched file, a real
// plugin process) against the fake Discord of package discordtest, while a
// seeded schedule injects every fault the fake supports, kills the plugin,
// and edits the policy file (valid edits, invalid ones, the file removed for
// a while). Invariants are checked while it runs and at the end.
//
// # The run
//
// Run starts a fake Discord at Config.Scale (50 by default: a heartbeat
// every 825ms) and one lifeline system per shard, or one for all of them.
// Everything time-based in the default policy is divided by the same scale
// (ScaledDefaultPolicy), so its reconnect backoff, breaker timeouts, health
// schedule and recovery delay keep their proportions to Discord's timings;
// latency thresholds, which compare measured latencies, are not scaled.
// Traffic flows both ways for the whole chaos phase: users post a message
// every 40ms, the bot sends one every 250ms and asks for its user every
// second.
//
// The schedule (Schedule) is drawn from Config.Seed alone: the first steps
// go through every kind once (each discordtest.FaultKind plus plugin_crash,
// policy_edit, policy_invalid and policy_remove), later steps pick kinds at
// random with exponential gaps. Two rules keep the schedule survivable by
// design: faults that block every new connection (outage, withheld HELLO,
// shed IDENTIFYs) are separated by a quiet time, so the default policy's
// max_reconnect_attempts is never spent by the schedule alone; and plugin
// crashes are spaced so the plugin host's restart limit is not. Fatal close
// codes (4004, 4010-4014), which end a bot by design, are left to tests of
// their own. The same seed gives the same steps, parameters and jitter; the
// report prints the command that replays it.
//
// # Invariants
//
// While the chaos phase runs (every 500ms):
//   - no identify-concurrency, session-start-budget, send-limit,
//     heartbeat-timeout or protocol violation in the fake's ledger;
//   - no MESSAGE_CREATE reaches the bot's handler twice;
//   - no shard gives up (FAILED);
//   - a watchdog: when no tick happens for Config.StallTimeout, every
//     goroutine's stack is dumped and the run fails (a deadlock);
//   - each valid policy edit is put in force, each invalid one refused
//     with the running policy kept, and a missing file changes nothing.
//
// Dispatches lost on a resumable path after the recovery engine skipped a
// strategy at one of its caps (core/recovery's "recovery strategy skipped"
// log line, between the session's last connection and the next session)
// are counted apart (Loss.Capped) and fail the run like every other such
// loss, with a message naming the shard, the strategy capped, when, and
// why: the caps count failed attempts only and never make lifeline give
// up a session that can resume (recovery.ErrSessionKept). The report
// counts the engine's skips at a cap and those that kept a session.
//
// After the last fault, all faults are cleared and every shard must be
// READY at level NONE with its plugin running within the recovery bound:
//
//	max_open_timeout + max_reconnect_delay + 2 × handshake timeout
//	  + metrics window + levels × recovery_delay + health interval + grace
//
// Then a last burst of messages must reach the handler, the client must
// acknowledge every dispatch of its live sessions, and the ledger is checked:
//   - dispatch loss: walking each shard's sessions in order, a dispatch
//     above the highest sequence the client acknowledged, generated before
//     the next session began, is lost. It is excused when the fake ended the
//     session first by Discord's rules (op 9 d=false, a session-ending close
//     code, expiry while disconnected); otherwise, the client gave up a
//     session it could have resumed, closed it with 1000/1001 or stopped
//     heartbeating, and the run fails;
//   - every MESSAGE_CREATE the client acknowledged reached a handler;
//   - the backoff envelope: the k-th wait announced since READY is at most
//     max(min(max_reconnect_delay, reconnect_delay × multiplier^k),
//     the invalid-session delay), a breaker's wait at least reconnect_delay,
//     and no attempt starts before its announced wait is over (nor more than
//     3s after, on a loaded machine).
//
// After Stop: no goroutine started during the run is left (goleak), no
// more files are open than before, no plugin process runs, and the heap
// allocated outside the fake Discord and this harness (read from the heap
// profile by allocation site; the fake's ledger keeps every frame on purpose)
// stayed flat: the median of the last third of the samples within 50% plus
// Config.HeapSlackMB of the first third's, and the same for goroutines.
//
// # Secrets
//
// The token (Token(seed), shaped like a real one) and the HTTP bearer token
// are searched for in everything the run produces: every log line (lifeline's,
// the fake's and discordgo's), error and event (JSON and summary), every HTTP surface (/metrics, /health, /livez,
// /readyz, /debug/lifeline, /events, the dashboard, POST /-/reload), the
// diagnostics and plugin status, configuration exports in HCL and JSON, the
// flight recordings, and the plugin processes' environments (read from
// /proc). Requests without the bearer token must get 401.
//
// # Running it
//
// `make test` runs TestChaosShort (20s of chaos, a step every 600ms on
// average). `make soak DURATION=30m` runs TestSoak for that long (a step
// every 5s on average, -chaos.meangap) with a random seed and writes its
// report to SOAKREPORT. docs/reliability.md has the figures of the last long
// run. A failed run prints the command that replays its schedule.
package chaos
