// Package telemetry is lifeline's operator surface: Prometheus metrics,
// health endpoints, a diagnostics document, a policy reload endpoint and a
// live dashboard, for one shard of a running system.
//
// The package does not know the orchestrator: the system is a Source
// (Status, Diagnostics, ReloadPolicy), which core/orchestrator implements,
// and the system feeds a Telemetry with what it sees: every event of its
// bus (ObserveEvent), heartbeat round trips and the close codes it sends
// (from the gateway wire), every REST result, and one Sample per tick.
//
// # Metrics
//
// Each Telemetry has a prometheus.Registry of its own (never the global
// one); every family it registers is named lifeline_* and labelled with the
// shard. Three kinds of families:
//
//   - Counters fed by events, counted as the events arrive: state changes,
//     breaker transitions, reconnects, resumes and identifies by cause,
//     recoveries by strategy and result, close codes, errors by source and
//     kind, degradation changes and active actions, policy reloads, plugin
//     starts, exits and failures.
//   - Histograms and counters fed by observations: heartbeat round trips,
//     REST latency, REST status classes and 429s by scope, plugin calls.
//   - Gauges and counters read from Source.Status at each scrape: the
//     connection state, health score, status and checks, breaker state and
//     counters, degradation level, error ratio, ACK age, dispatches,
//     session starts left, event bus counters, policy generation.
//
// The cause of a connection attempt is the kind of the conn error that
// ended the previous connection (close, zombie, connection_lost,
// dial_failed, handshake_timeout, reconnect_requested, invalid_session,
// protocol_error, identify_blocked), "start" for the first attempt and
// "requested" when no error preceded it. Attempts, IDENTIFYs and RESUMEs are
// counted from the state machine (it enters CONNECTING for every attempt,
// IDENTIFYING and RESUMING as it sends them), whose events a bus delivers
// in the order they were published, so an error is always seen before the
// attempt it caused.
//
// The reference table with every family is in docs/operations.md.
//
// # HTTP
//
// Handler serves /metrics, /health (application/health+json), /livez,
// /readyz, /debug/lifeline, /events (server-sent events), POST /-/reload and
// the dashboard on /. The health verdict is the worst of its checks (see
// Assess): pass and warn answer 200, fail answers 503. Listen refuses an
// address other than loopback unless a bearer token is set; with a token,
// every route but the dashboard page needs it, compared in constant time.
// POST /-/reload also refuses cross-origin browser requests (403), so a web
// page cannot make the operator's browser trigger a reload on loopback.
//
// The dashboard is one HTML page embedded in the binary, with its script
// and SVG plots inline: no build step, no CDN, and a Content-Security-Policy
// that lets it talk to its own origin only. It loads /debug/lifeline, then
// follows /events, and writes what it shows into the DOM (data-state,
// data-samples and each plot's data-points and data-last) so a headless
// browser can check it.
//
// # Bounds
//
// Memory is bounded: Options.EventHistory events and Options.SampleHistory
// samples are kept; each live stream buffers 256 messages and loses the
// ones that do not fit rather than slow the system down. Labels are bounded
// sets (states, statuses, causes, close codes, status classes) or names the
// policy declares (checks, actions, plugins, breakers).
package telemetry
