// Package pluginhost is the host side of lifeline's out-of-process plugins:
// it starts the plugin binaries a policy names, keeps them running, bounds
// every call to them, and adapts their health checks, degradation actions
// and recovery strategies to the health monitor, the degradation engine and
// the recovery engine. Plugins are written with package sdk; the protocol is
// sdk/proto over hashicorp/go-plugin's gRPC transport with automatic mutual
// TLS, version-negotiated with VersionedPlugins.
//
// # Life of a plugin
//
// Reconcile takes the Specs of a policy (SpecsFromPolicy) and makes the
// running set match: new plugins start, removed ones stop, a plugin whose
// binary, checksum or arguments changed gets a new process, and one whose
// config or uses changed is reconfigured in place (Configure over the
// existing connection, no restart). Unchanged plugins are not touched.
//
// Starting a plugin:
//
//  1. When the spec pins a sha256, the binary is hashed and refused on a
//     mismatch (ErrChecksumMismatch, naming both sums); it is never run.
//  2. The process starts in its own process group with only the host's
//     variables named in DefaultEnv (PATH, HOME, locale; never the bot
//     token, nor any other secret the host's environment holds: a plugin
//     gets a value when the policy passes it in its config), and shakes
//     hands within Options.StartTimeout. A binary that prints something
//     else, exits first, or shares no protocol version with the host fails
//     here (ErrStartFailed, ErrProtocolVersion).
//  3. Describe lists what it serves; an invalid answer is ErrBadResponse.
//     Every check, action and strategy the policy uses must be served, and
//     the policy's config must fit the plugins' schemas, or the plugin is
//     refused (ErrRefused) with every problem listed.
//  4. Configure hands it the plugin block's config and the broker id of
//     the host services (snapshot, recovery requests, feature flags, log),
//     which the plugin dials once and keeps.
//
// PLUGIN_STARTED is published with the pid and the negotiated version.
// The process's standard error (hclog JSON lines at their own level, other
// lines at debug) and what it prints after go-plugin redirected its os.Stdout
// and os.Stderr go to Options.Logger under "plugin.NAME", escaped like what
// it logs through the host (a plugin cannot forge a line of the host's log).
//
// # Log budget
//
// Each plugin has a budget of lines in the host's log, shared by its
// successive processes and by every way its lines come (the host's log
// service, standard error, the redirected output): a token bucket on the
// injected clock, Options.LogRate lines per second (default 100) with
// bursts of Options.LogBurst (default 1000). Lines the logger discards for
// their level cost nothing. Lines over the budget are dropped and counted;
// a WARN line of the host, "dropped N log lines from plugin NAME", and a
// PLUGIN_LOGS_DROPPED event (which core/telemetry counts in
// lifeline_plugin_log_lines_dropped_total) report them when lines flow
// again, at most once per LogReportInterval (10s), or LogReportInterval
// after the first drop if the plugin goes quiet, and when it stops. Under
// the budget a line costs a lock and a clock read, and no allocation.
//
// # Failure
//
// Nothing a plugin does stops the host. Every call has a deadline
// (Options.CallTimeout on the injected clock, and the caller's context).
// Each plugin sits behind its own circuit breaker ("plugin/NAME"): transport
// errors, timeouts and protocol violations (a NaN result) count as failures,
// while a plugin's own verdict (a failing check, an action that reports an
// error) does not. When the breaker opens, the process is presumed wedged and
// is killed.
//
// When a process exits (a crash, os.Exit, a panic outside a call, a kill),
// PLUGIN_EXITED is published with its exit status and the last line it
// wrote ("exit status 2 (last output: panic: boom)"), and it is restarted
// after Restart.Initial, doubling (Restart.Multiplier) up to Restart.Max,
// at most Restart.Limit times in a row; a process that ran for
// Restart.ResetAfter starts the count again. A plugin out of restarts is
// FAILED ("...; giving up after 5 restarts; retrying in 10m0s (at ...)")
// and, like a pod in Kubernetes' CrashLoopBackOff, started again after
// Restart.RetryFailed (default 10 minutes, Status.Retry says when) with a
// fresh count: if it fails again, it goes through the backoff and the limit
// again, then waits again. A policy change that touches the plugin,
// Host.Restart and Stop cancel the pending retry. Failures a restart cannot
// cure (checksum, protocol version, refusal) leave the plugin FAILED until
// the policy changes or Restart is called. A panic inside a call is
// recovered by the sdk and reported as that call's error; the process keeps
// running.
//
// The call the process died in fails with the reason too ("plugin \"db\"
// check ping: the plugin exited during the call: exit status 3 (last output:
// ...)"): a broken connection waits briefly (real time, at most 250ms) for
// the exit to be reaped. Meanwhile the plugin's health checks fail with the
// reason as their message ("plugin \"db\" not running: restarting after:
// exit status 3"),
// and its actions and strategies return errors wrapping ErrNotRunning and
// publish ERROR_OCCURRED, so the engines skip them visibly and retry later.
//
// Stop cancels pending restarts, asks each process to exit, kills its process
// group after Options.KillTimeout, and returns once every process has been
// reaped and every goroutine of the host has ended.
//
// # Adapters
//
//   - Checker (Host.Checker) satisfies core/health's Checker: Check(ctx,
//     metrics.Snapshot) health.Result. A check block runs the plugin's health
//     check named like the block, or the plugin's only health check.
//   - Action (Host.Action) has the shape of core/degrade's Action: Name,
//     Apply(ctx, level) and Rollback(ctx).
//   - Strategy (Host.Strategy) satisfies core/recovery's Recoverer and
//     Availability: Available asks the plugin whether it applies, Recover runs
//     it.
//
// The adapters look their plugin up by name on every call, so they survive
// restarts and reloads.
//
// # Cost of a call
//
// A check, action or strategy call is one gRPC unary call over the
// plugin's mutual-TLS connection on a Unix socket: it wakes the plugin
// process, then the host. On a small machine shared by the bot and its
// plugins, those wake-ups are what a tick of plugin checks spends (the
// checks run in parallel, the cores do not multiply), so the host trims
// them: its connection uses a fixed 1 MiB flow-control window, which turns
// off gRPC's bandwidth-delay probe (a PING round trip after nearly every
// response). docs/benchmarks.md has the figures.
//
// # Host services
//
// HostServices is what the orchestrator offers plugins. A recovery requested
// by a plugin is passed on with mode "resume", "reconnect", "reidentify" or
// "restart_client" and a reason naming the plugin; the host refuses other
// modes before the orchestrator sees them.
package pluginhost
