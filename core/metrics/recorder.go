package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// Defaults and limits of Options.
const (
	// DefaultWindow is the sliding window length when Options.Window is 0.
	DefaultWindow = 60 * time.Second
	// DefaultBuckets is the number of time buckets when Options.Buckets is
	// 0: a 5 s resolution over the default window.
	DefaultBuckets = 12
	// MaxBuckets caps Options.Buckets, which bounds a Recorder's memory
	// (72 bytes per bucket, 872 once it has seen a REST latency).
	MaxBuckets = 3600
	// MinResolution is the shortest time bucket; Buckets is lowered so
	// that Window/Buckets is at least this long.
	MinResolution = time.Millisecond
)

// Options configures a Recorder. The zero value is valid.
type Options struct {
	// Clock is the time source for bucketing, round trips, ages and
	// Snapshot.Time. Default: clock.Real.
	Clock clock.Clock
	// Window is the length of the sliding window that the windowed
	// figures (error rate, REST counts and quantiles, mean heartbeat
	// round trip) cover. Default: DefaultWindow (60 s). It is rounded
	// down to a whole number of buckets; Snapshot.Errors.Window reports
	// the length in use.
	Window time.Duration
	// Buckets is how many time buckets the window is divided into; the
	// resolution is Window/Buckets, and observations leave the window one
	// whole bucket at a time. Default: DefaultBuckets (12). At most
	// MaxBuckets, and lowered so the resolution is at least MinResolution.
	Buckets int
	// ShardID is the shard the Recorder describes. Default: 0.
	ShardID int
	// ShardCount is the bot's number of shards. Default: 1.
	ShardCount int
	// Parent, when set, also counts every operation this Recorder counts
	// (REST requests, heartbeats, OperationSucceeded and OperationFailed),
	// in the same order, in its own Errors figures: a process Recorder
	// given as the Parent of each shard's Recorder pools the failures of
	// the whole process with its own REST requests, so its
	// Errors.Consecutive is the failures since the last success anywhere.
	// Only the error figures are shared; everything else stays in this
	// Recorder. A Recorder must not be its own ancestor. Default: nil.
	Parent *Recorder
}

// Recorder collects observations about one connection and builds
// Snapshots from them. Every method is safe for concurrent use, and every
// observation method runs in constant time without allocating (the first
// REST latency allocates the latency histograms, once). A nil
// *Recorder ignores observations and builds zero Snapshots, so a component
// can take an optional Recorder without checking for nil.
type Recorder struct {
	clock  clock.Clock
	start  time.Time
	res    time.Duration
	window time.Duration
	shard  ShardInfo
	parent *Recorder

	// Plain counters that no window or lock needs.
	dispatches atomic.Uint64
	sequence   atomic.Int64
	reconnects atomic.Uint64
	resumes    atomic.Uint64
	identifies atomic.Uint64
	closeCode  atomic.Int64
	interval   atomic.Int64 // HELLO heartbeat interval, ns

	mu             sync.Mutex
	w              window
	consecutive    uint64
	totalFailures  uint64
	hbOutstanding  bool      // a heartbeat was sent and not acknowledged yet
	hbSentAt       time.Time // when that heartbeat was sent
	lastRTT        time.Duration
	lastAck        time.Time
	connected      bool
	connectedSince time.Time
	connections    uint64    // times connected turned true
	downSince      time.Time // when connected last turned false
	state          string
	breaker        BreakerView
	health         HealthView
	degradation    DegradationView
}

// NewRecorder returns a Recorder configured by o, with defaults for the
// zero fields. It allocates its window's counters up front; the REST
// latency histograms are allocated by the first ObserveREST that records a
// latency, and no observation allocates after that.
func NewRecorder(o Options) *Recorder {
	clk := clock.Or(o.Clock)
	win := o.Window
	if win <= 0 {
		win = DefaultWindow
	}
	n := o.Buckets
	if n <= 0 {
		n = DefaultBuckets
	}
	if n > MaxBuckets {
		n = MaxBuckets
	}
	if maxN := int(win / MinResolution); n > maxN {
		n = max(maxN, 1)
	}
	res := win / time.Duration(n)
	count := o.ShardCount
	if count <= 0 {
		count = 1
	}
	return &Recorder{
		clock:  clk,
		start:  clk.Now(),
		res:    res,
		window: res * time.Duration(n),
		shard:  ShardInfo{ID: o.ShardID, Count: count},
		parent: o.Parent,
		w:      newWindow(n),
	}
}

// Window returns the length of the sliding window in use.
func (r *Recorder) Window() time.Duration {
	if r == nil {
		return 0
	}
	return r.window
}

// Resolution returns the length of one time bucket: observations leave
// the window in steps of this size.
func (r *Recorder) Resolution() time.Duration {
	if r == nil {
		return 0
	}
	return r.res
}

// bucket returns the bucket number of t. Times before the Recorder started
// map to bucket 0.
func (r *Recorder) bucket(t time.Time) int64 {
	d := t.Sub(r.start)
	if d < 0 {
		return 0
	}
	return int64(d / r.res)
}

// operationLocked counts one operation in slot s, and in the parent's
// figures. r.mu must be held; the parent's lock is taken after it (a
// parent never calls into its children, so the order is always child
// then parent).
func (r *Recorder) operationLocked(s *slot, failed bool) {
	r.w.add(s, cOperations, 1)
	if failed {
		r.w.add(s, cFailures, 1)
		r.consecutive++
		r.totalFailures++
	} else {
		r.consecutive = 0
	}
	if r.parent != nil {
		r.parent.operation(failed)
	}
}

// ObserveREST records one finished REST request: how long it took, the HTTP
// status of its response, and whether it failed in transport (no response:
// dial, TLS, timeout, reset). A status below 100 is treated as a transport
// error too. Callers should not report requests that they cancelled
// themselves: those say nothing about Discord.
//
// Every call counts in REST.Requests. A transport error counts in
// REST.Failures and is a failed operation; a 5xx counts in
// REST.ServerErrors and is a failed operation; a 429 counts in
// REST.RateLimited and is not an operation at all (neither success nor
// failure: it reflects the bot's request rate, not the connection's
// health); any other status is a successful operation. The latency of every
// request that got a response (429 and 5xx included) enters the quantiles.
func (r *Recorder) ObserveREST(latency time.Duration, status int, transportErr bool) {
	if r == nil {
		return
	}
	now := r.clock.Now()
	r.mu.Lock()
	s := r.w.at(r.bucket(now))
	r.w.add(s, cRequests, 1)
	switch {
	case transportErr || status < 100:
		r.w.add(s, cTransport, 1)
		r.operationLocked(s, true)
	case status == 429:
		r.w.add(s, cRateLimited, 1)
		r.w.addLatency(s, latencyBin(latency))
	case status >= 500:
		r.w.add(s, cServerErrors, 1)
		r.w.addLatency(s, latencyBin(latency))
		r.operationLocked(s, true)
	default:
		r.w.addLatency(s, latencyBin(latency))
		r.operationLocked(s, false)
	}
	r.mu.Unlock()
}

// OperationSucceeded records one successful operation other than a REST
// request or a heartbeat, such as a connection attempt that reached READY.
// It resets Errors.Consecutive.
func (r *Recorder) OperationSucceeded() {
	r.operation(false)
}

// OperationFailed records one failed operation other than a REST request
// or a heartbeat, such as a connection attempt that did not reach READY.
func (r *Recorder) OperationFailed() {
	r.operation(true)
}

func (r *Recorder) operation(failed bool) {
	if r == nil {
		return
	}
	now := r.clock.Now()
	r.mu.Lock()
	r.operationLocked(r.w.at(r.bucket(now)), failed)
	r.mu.Unlock()
}

// HeartbeatSent records that a HEARTBEAT (op 1) went out. If the previous
// heartbeat of this connection was never acknowledged, that missed ACK is
// counted as a failed operation.
func (r *Recorder) HeartbeatSent() {
	if r == nil {
		return
	}
	now := r.clock.Now()
	r.mu.Lock()
	if r.hbOutstanding {
		r.operationLocked(r.w.at(r.bucket(now)), true)
	}
	r.hbOutstanding = true
	r.hbSentAt = now
	r.mu.Unlock()
}

// HeartbeatAcked records that a HEARTBEAT_ACK (op 11) arrived. It answers
// the outstanding heartbeat: the round trip becomes Latency.Heartbeat and
// enters Latency.HeartbeatAvg, and the heartbeat counts as a successful
// operation. An ACK with no heartbeat outstanding only refreshes
// Gateway.LastAckAge.
func (r *Recorder) HeartbeatAcked() {
	if r == nil {
		return
	}
	now := r.clock.Now()
	r.mu.Lock()
	r.lastAck = now
	if r.hbOutstanding {
		r.hbOutstanding = false
		rtt := max(now.Sub(r.hbSentAt), 0)
		r.lastRTT = rtt
		s := r.w.at(r.bucket(now))
		r.w.add(s, cHeartbeats, 1)
		r.w.add(s, cHeartbeatNanos, uint64(rtt))
		r.operationLocked(s, false)
	}
	r.mu.Unlock()
}

// Hello records a HELLO (op 10) and the heartbeat interval it gave. A
// HELLO starts a new connection's heartbeats, so a heartbeat still
// outstanding from an earlier connection is forgotten, not counted as
// missed.
func (r *Recorder) Hello(interval time.Duration) {
	if r == nil {
		return
	}
	r.interval.Store(int64(interval))
	r.mu.Lock()
	r.hbOutstanding = false
	r.mu.Unlock()
}

// Dispatch records a dispatch event (op 0) and its sequence number. It
// touches no lock and does not read the clock.
func (r *Recorder) Dispatch(seq int64) {
	if r == nil {
		return
	}
	r.dispatches.Add(1)
	r.sequence.Store(seq)
}

// CloseCode records a WebSocket close code the connection saw (sent or
// received).
func (r *Recorder) CloseCode(code int) {
	if r == nil {
		return
	}
	r.closeCode.Store(int64(code))
}

// ReconnectStarted counts one reconnect: a new connection attempt after a
// session was lost or closed.
func (r *Recorder) ReconnectStarted() {
	if r == nil {
		return
	}
	r.reconnects.Add(1)
}

// ResumeSent counts one RESUME (op 6) sent.
func (r *Recorder) ResumeSent() {
	if r == nil {
		return
	}
	r.resumes.Add(1)
}

// IdentifySent counts one IDENTIFY (op 2) sent.
func (r *Recorder) IdentifySent() {
	if r == nil {
		return
	}
	r.identifies.Add(1)
}

// SetGatewayState records the connection state machine's state name and
// whether a session is up (READY or RESUMED). When connected turns true,
// Gateway.LastAckAge starts counting from that moment until the next ACK
// and Gateway.Connections counts one more session; when it turns false,
// Gateway.DownFor starts counting and an outstanding heartbeat is
// forgotten (the closed connection is reported through CloseCode and
// OperationFailed instead).
func (r *Recorder) SetGatewayState(state string, connected bool) {
	if r == nil {
		return
	}
	now := r.clock.Now()
	r.mu.Lock()
	r.state = state
	if connected && !r.connected {
		r.connectedSince = now
		r.connections++
	}
	if !connected && r.connected {
		r.hbOutstanding = false
		r.downSince = now
	}
	r.connected = connected
	r.mu.Unlock()
}

// SetBreaker records the circuit breaker's current figures. The breaker
// changes on every call it guards, so the owner of the Recorder sets this
// just before Build rather than on every change.
func (r *Recorder) SetBreaker(v BreakerView) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.breaker = v
	r.mu.Unlock()
}

// SetHealth records the health monitor's latest verdict.
func (r *Recorder) SetHealth(v HealthView) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.health = v
	r.mu.Unlock()
}

// SetDegradation records the degradation engine's current level.
func (r *Recorder) SetDegradation(v DegradationView) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.degradation = v
	r.mu.Unlock()
}

// restQuantiles are the quantiles Build reports, ascending.
var restQuantiles = [...]float64{0.50, 0.95, 0.99}

// Build returns a Snapshot of everything recorded, as of the clock's
// current time. The Snapshot is a value that shares nothing with the
// Recorder: later observations do not change it. Build costs the same
// whatever the window's length or the number of observations in it, and it
// does not allocate.
func (r *Recorder) Build() Snapshot {
	if r == nil {
		return Snapshot{}
	}
	now := r.clock.Now()
	s := Snapshot{
		Time:   now,
		Uptime: max(now.Sub(r.start), 0),
		Shard:  r.shard,
		Gateway: Gateway{
			HeartbeatInterval: time.Duration(r.interval.Load()),
			Sequence:          r.sequence.Load(),
			Reconnects:        r.reconnects.Load(),
			Resumes:           r.resumes.Load(),
			Identifies:        r.identifies.Load(),
			LastCloseCode:     int(r.closeCode.Load()),
			Dispatches:        r.dispatches.Load(),
		},
	}
	var q [len(restQuantiles)]time.Duration

	r.mu.Lock()
	r.w.at(r.bucket(now))
	t := r.w.total
	quantiles(r.w.totalLat(), t[cLatencySamples], restQuantiles[:], q[:])
	s.Errors = Errors{
		InWindow:    t[cFailures],
		Operations:  t[cOperations],
		Consecutive: r.consecutive,
		Total:       r.totalFailures,
		Window:      r.window,
	}
	s.Latency.Heartbeat = r.lastRTT
	s.Gateway.State = r.state
	s.Gateway.Connected = r.connected
	if r.connected {
		since := r.connectedSince
		if r.lastAck.After(since) {
			since = r.lastAck
		}
		s.Gateway.LastAckAge = max(now.Sub(since), 0)
	} else if r.connections > 0 {
		s.Gateway.DownFor = max(now.Sub(r.downSince), 0)
	}
	s.Gateway.Connections = r.connections
	s.Breaker = r.breaker
	s.Health = r.health
	s.Degradation = r.degradation
	r.mu.Unlock()

	if t[cOperations] > 0 {
		s.Errors.Rate = float64(t[cFailures]) / float64(t[cOperations])
	}
	if t[cHeartbeats] > 0 {
		s.Latency.HeartbeatAvg = time.Duration(t[cHeartbeatNanos] / t[cHeartbeats])
	}
	s.Latency.RESTP50, s.Latency.RESTP95, s.Latency.RESTP99 = q[0], q[1], q[2]
	s.REST = REST{
		Requests:     t[cRequests],
		RateLimited:  t[cRateLimited],
		ServerErrors: t[cServerErrors],
		Failures:     t[cTransport],
	}
	return s
}
