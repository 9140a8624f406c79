// Package metrics turns observations about one Discord connection into
// Snapshots: immutable values, one per tick, that the health checks and the
// policy read.
//
// # Recorder
//
// A Recorder is fed by the components that see the connection: the gateway
// tap (heartbeats, HELLO, dispatches, close codes, RESUME and IDENTIFY
// sent, state changes), the REST RoundTripper (latency and status of every
// request), the connection loop (connection attempts, reconnects), and the
// components that own their own state, which push a view of it: SetBreaker,
// SetHealth and SetDegradation. These are setters, not callbacks, so Build
// never calls into another component (no lock ordering between the Recorder
// and, say, the health monitor, which itself reads Snapshots). The
// breaker's figures change on every guarded call, so its owner sets them
// right before each Build.
//
// Build returns a Snapshot: a plain value with no slices, maps or pointers,
// so nothing the Recorder does afterwards changes it.
//
// Every observation method runs in constant time and makes no allocation
// (but one: the first REST latency a Recorder sees allocates its latency
// histograms, once for its life; see below): plain counters (dispatches, sequence, close code, reconnects, resumes,
// identifies, the HELLO interval) are atomics; everything that touches the
// window takes one mutex for a few dozen instructions. Build takes the same
// mutex for a fixed amount of work (about 200 histogram bins), whatever the
// traffic. A nil *Recorder accepts every call and does nothing.
//
// # The sliding window
//
// The windowed figures (Errors.Rate, Errors.InWindow, Errors.Operations,
// all of REST, the REST latency quantiles, Latency.HeartbeatAvg) cover the
// last Options.Window (default 60 s). The window is a ring of
// Options.Buckets time buckets (default 12, so 5 s each), allocated once,
// so memory does not grow with traffic: 72 bytes per bucket (its counters)
// plus about 0.5 KB, about 1.4 KB with the defaults. The REST latency
// histograms add 800 bytes per bucket and 800 for their totals (11 KB with
// the defaults); the first ObserveREST that records a latency allocates
// them, so a Recorder that never sees a REST request, such as a shard's
// whose manager counts REST in the process Recorder, never holds them.
// Bucket b holds the observations made
// between start+b·res and start+(b+1)·res, where start is when the Recorder
// was created and res is Window/Buckets. The ring moves forward lazily,
// when an observation or a Build reads the clock; there is no goroutine. At
// time t the window holds the current bucket and the Buckets-1 before it,
// so an observation counts for more than Window-res and at most Window
// after it was made, then drops out with the rest of its bucket. Running
// totals over the live buckets are kept as buckets enter and leave, so
// reading the window costs the same whatever its length. If the clock goes
// backwards, observations go to the newest bucket.
//
// # What counts as an operation and as a failure
//
// Errors.Rate is failures / operations over the window, in [0, 1], and 0
// when there were no operations. Errors.Consecutive counts failures since
// the last successful operation (any success resets it); Errors.Total
// counts failures since the Recorder was created. The operations are:
//
//   - REST requests (ObserveREST): a transport error (no response; also any
//     status below 100) is a failure, counted in REST.Failures; a 5xx
//     response is a failure, counted in REST.ServerErrors; a 429 is counted
//     in REST.RateLimited and is not an operation at all, since it reflects
//     the bot's own request rate rather than Discord's health and must not
//     reset Consecutive; any other status, 4xx included, is a success.
//     Every request counts in REST.Requests.
//   - Heartbeats: an ACK answering the outstanding heartbeat is a success;
//     a heartbeat sent while the previous one is still unacknowledged
//     counts the previous one as a failure (a missed ACK). HELLO and a
//     disconnect forget an outstanding heartbeat without counting it.
//   - Anything else the caller reports with OperationSucceeded and
//     OperationFailed, such as connection attempts.
//
// # Many shards: a process Recorder
//
// A process running many shards gives each shard its own Recorder and
// makes one process Recorder their Options.Parent: every operation a shard
// counts is counted in the parent too, as it happens, so the parent's
// Errors (rate, in_window, consecutive, total) are the whole process's,
// REST requests (which the parent observes itself) included. Nothing else
// is shared. Snapshot.Shards, the summary of the shards, is filled by the
// shard manager (core/shard) in the process Snapshot it builds.
//
// # Latency
//
// Latency.Heartbeat is the last heartbeat round trip (HeartbeatSent to
// HeartbeatAcked) and Latency.HeartbeatAvg the mean of those in the window.
// Gateway.LastAckAge is the time since the last ACK, or since the session
// came up (SetGatewayState with connected true) if no ACK came after that,
// and 0 while not connected. Gateway.DownFor is the other side: the time
// since the session went down (SetGatewayState with connected false after
// true), 0 while connected and before the first session came up, so that a
// first handshake never reads as an outage; Gateway.Connections counts the
// sessions that came up, 0 until the first.
//
// Latency.RESTP50, RESTP95 and RESTP99 are nearest-rank quantiles of the
// latencies of REST requests in the window that got a response (transport
// errors excluded; 429 and 5xx included). They come from a fixed-size
// log-linear histogram kept per bucket, with a running sum over the live
// buckets: one bin per microsecond below 16 µs, then 8 bins per power of
// two up to 2^27 µs (MaxLatency, about 134 s; longer requests count as
// that). The exact ranks are kept, and a quantile is reported as the
// midpoint of the bin the ranked latency falls in, so the reported value is
// within QuantileRelativeError (1/16, 6.25 %) of the exact nearest-rank
// quantile for latencies of 16 µs and more, and within 0.5 µs below that. A
// quantile is 0 when no request finished in the window.
package metrics
