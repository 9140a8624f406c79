package telemetry

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
)

// Defaults of Options.
const (
	// DefaultEventHistory is how many recent events /debug/lifeline and
	// the dashboard keep.
	DefaultEventHistory = 100
	// DefaultSampleHistory is how many samples the dashboard's plots keep.
	DefaultSampleHistory = 600
	// DefaultSampleInterval is the least time between two samples.
	DefaultSampleInterval = time.Second
	// DefaultStaleAfter is how old the last tick may be before /livez
	// fails.
	DefaultStaleAfter = 30 * time.Second
)

// Options configures a Telemetry. The zero value is valid apart from
// Source, which is required.
type Options struct {
	// Source is the system reported on. Required.
	Source Source
	// Shard labels every metric (label "shard"). Default: 0.
	Shard int
	// Clock stamps samples and paces the event stream's keep-alives.
	// Default: clock.Real.
	Clock clock.Clock
	// EventHistory bounds the recent events kept. Default:
	// DefaultEventHistory.
	EventHistory int
	// SampleHistory bounds the samples kept for the plots. Default:
	// DefaultSampleHistory.
	SampleHistory int
	// SampleInterval is the time between two samples: Sample calls that
	// come less than three quarters of it after the last sample are
	// ignored. Default: DefaultSampleInterval.
	SampleInterval time.Duration
	// StaleAfter is how long the system may go without a tick (Status's
	// Snapshot.Time behind Status.Time) before /livez fails. Default:
	// DefaultStaleAfter.
	StaleAfter time.Duration
}

// Telemetry is the operator's view of one shard: Prometheus collectors in
// a registry of its own, the recent events, samples for the dashboard's
// plots and the live stream that carries both. The system feeds it with
// ObserveEvent (every event of its bus), ObserveHeartbeatRTT,
// ObserveCloseSent and ObserveREST (from the wire and the REST transport),
// and Sample (once per tick); Handler serves it over HTTP.
//
// Every Observe method is safe for concurrent use, runs in constant time
// and never blocks on a reader. A nil *Telemetry accepts the Observe calls,
// Sample and Close, and does nothing.
type Telemetry struct {
	opts  Options
	src   Source
	clk   clock.Clock
	reg   *prometheus.Registry
	m     vecs
	feeds *feeds

	mu            sync.Mutex
	attempts      map[int]*attempt // per shard (events.Event.Shard)
	breakerStates map[string]string
	activeActions map[string]bool
	lastSample    time.Time
}

// vecs are the collectors fed by observations; statusCollector adds the
// gauges read from Source.Status at scrape time.
type vecs struct {
	stateChanges   *prometheus.CounterVec
	healthChanges  *prometheus.CounterVec
	breakerTrans   *prometheus.CounterVec
	reconnects     *prometheus.CounterVec
	resumes        *prometheus.CounterVec
	identifies     *prometheus.CounterVec
	recoveries     *prometheus.CounterVec
	closeCodes     *prometheus.CounterVec
	errors         *prometheus.CounterVec
	degradeChanges *prometheus.CounterVec
	actionActive   *prometheus.GaugeVec
	policyReloads  *prometheus.CounterVec
	policyLastOK   prometheus.Gauge
	pluginStarts   *prometheus.CounterVec
	pluginExits    *prometheus.CounterVec
	pluginFailures *prometheus.CounterVec
	pluginCalls    *prometheus.CounterVec
	pluginLogDrops *prometheus.CounterVec
	heartbeatRTT   prometheus.Histogram
	restLatency    prometheus.Histogram
	restRequests   *prometheus.CounterVec
	restLimited    *prometheus.CounterVec
}

// Histogram buckets, in seconds. A healthy heartbeat round trip is tens to
// hundreds of milliseconds; REST calls go up to the client's timeouts.
var (
	heartbeatBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	restBuckets      = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
)

// New returns a Telemetry for opts.Source. It panics when Source is nil,
// a programming error.
func New(opts Options) *Telemetry {
	if opts.Source == nil {
		panic("telemetry: New with a nil Source")
	}
	opts.Clock = clock.Or(opts.Clock)
	if opts.EventHistory <= 0 {
		opts.EventHistory = DefaultEventHistory
	}
	if opts.SampleHistory <= 0 {
		opts.SampleHistory = DefaultSampleHistory
	}
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = DefaultSampleInterval
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	t := &Telemetry{
		opts: opts, src: opts.Source, clk: opts.Clock,
		reg:           prometheus.NewRegistry(),
		feeds:         newFeeds(opts.EventHistory, opts.SampleHistory),
		attempts:      map[int]*attempt{},
		breakerStates: map[string]string{},
		activeActions: map[string]bool{},
	}
	r := prometheus.WrapRegistererWith(prometheus.Labels{"shard": strconv.Itoa(opts.Shard)}, t.reg)
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		r.MustRegister(v)
		return v
	}
	t.m = vecs{
		stateChanges:  counter("lifeline_connection_state_changes_total", "Transitions of the connection state machine, by the state entered.", "state"),
		healthChanges: counter("lifeline_health_status_changes_total", "Changes of the health monitor's status, by the status entered.", "status"),
		breakerTrans: counter("lifeline_breaker_transitions_total",
			"Circuit breaker transitions, by breaker (gateway, plugin/NAME) and states.", "breaker", "from", "to"),
		reconnects: counter("lifeline_gateway_reconnects_total",
			"Gateway connection attempts after the first, by the cause that ended the previous connection (close, zombie, connection_lost, dial_failed, ...; requested when a recovery was asked for).", "cause"),
		resumes: counter("lifeline_gateway_resumes_total", "RESUMEs sent, by the cause of the connection attempt.", "cause"),
		identifies: counter("lifeline_gateway_identifies_total",
			"IDENTIFYs sent (each spends a daily session start), by the cause of the connection attempt (start for the first).", "cause"),
		recoveries: counter("lifeline_recoveries_total",
			"Finished recovery attempts, by strategy and result (success, failure).", "strategy", "result"),
		closeCodes: counter("lifeline_gateway_close_codes_total",
			"WebSocket close codes, by code and by who closed (discord, lifeline).", "code", "by"),
		errors: counter("lifeline_errors_total", "ERROR_OCCURRED events, by source (conn, identify, degrade, plugin/NAME, ...) and kind.", "source", "kind"),
		degradeChanges: counter("lifeline_degradation_changes_total",
			"Degradation changes, by direction (activated, deactivated).", "direction"),
		policyReloads: counter("lifeline_policy_reloads_total",
			"Policy reloads, by result (success: a new generation in force; failure: the old one kept).", "result"),
		pluginStarts: counter("lifeline_plugin_starts_total", "Plugin processes started, by plugin.", "plugin"),
		pluginExits: counter("lifeline_plugin_exits_total",
			"Plugin processes that exited, by plugin and whether a restart was scheduled.", "plugin", "restart"),
		pluginFailures: counter("lifeline_plugin_failures_total",
			"Plugin errors (ERROR_OCCURRED from plugin/NAME: a call that failed or was skipped, a start that failed), by plugin and kind.", "plugin", "kind"),
		pluginLogDrops: counter("lifeline_plugin_log_lines_dropped_total",
			"Log lines of plugins the plugin host dropped over their rate limit (PLUGIN_LOGS_DROPPED), by plugin.", "plugin"),
		pluginCalls: counter("lifeline_plugin_calls_total",
			"Calls into plugins, by plugin, kind (check, action, strategy) and result (success, failure).", "plugin", "kind", "result"),
		restRequests: counter("lifeline_rest_requests_total",
			"Discord REST requests, by status class (2xx, 3xx, 4xx, 5xx; error when no response came).", "class"),
		restLimited: counter("lifeline_rest_rate_limited_total",
			"Discord REST 429 responses, by scope (user, global, shared, cloudflare, unknown).", "scope"),
	}
	// The label values known in advance start at 0, so that the first
	// failed reload, 5xx or Cloudflare ban is an increase() a rule can see
	// (a series born at 1 shows none; Prometheus' instrumentation advice).
	for _, r := range []string{"success", "failure"} {
		t.m.policyReloads.WithLabelValues(r)
	}
	for _, c := range []string{"2xx", "3xx", "4xx", "5xx", "error"} {
		t.m.restRequests.WithLabelValues(c)
	}
	for _, sc := range []string{"user", "global", "shared", "cloudflare", "unknown"} {
		t.m.restLimited.WithLabelValues(sc)
	}
	t.m.actionActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "lifeline_degradation_action_active",
		Help: "1 while a degradation action is applied, 0 after it was rolled back, by action."}, []string{"action"})
	t.m.policyLastOK = prometheus.NewGauge(prometheus.GaugeOpts{Name: "lifeline_policy_last_reload_success_timestamp_seconds",
		Help: "When a policy reload last put a new generation in force (Unix time); 0 before the first."})
	t.m.heartbeatRTT = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lifeline_gateway_heartbeat_rtt_seconds",
		Help: "Gateway heartbeat round trips: HEARTBEAT sent to HEARTBEAT_ACK received.", Buckets: heartbeatBuckets})
	t.m.restLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lifeline_rest_request_duration_seconds",
		Help: "Discord REST request latency, request sent to response headers (requests that got a response).", Buckets: restBuckets})
	r.MustRegister(t.m.actionActive, t.m.policyLastOK, t.m.heartbeatRTT, t.m.restLatency, &statusCollector{t: t})
	// The per-shard families carry their own shard label, so they are not
	// under the wrapper's constant one.
	t.reg.MustRegister(&shardCollector{t: t})
	return t
}

// Registry returns the Telemetry's own registry (no global registry is
// used): to gather its metrics elsewhere, or to register more collectors
// that should carry the shard label's absence.
func (t *Telemetry) Registry() *prometheus.Registry { return t.reg }

// ObserveEvent takes one event of the system's bus: it counts it, keeps it
// in the recent events and sends it to the live streams.
func (t *Telemetry) ObserveEvent(e events.Event) {
	if t == nil {
		return
	}
	switch d := e.Data.(type) {
	case events.StateChange:
		t.m.stateChanges.WithLabelValues(d.To).Inc()
		t.observeState(e.Shard, d)
	case events.HealthChange:
		t.m.healthChanges.WithLabelValues(d.To).Inc()
	case events.BreakerTransition:
		t.m.breakerTrans.WithLabelValues(d.Breaker, d.From, d.To).Inc()
		t.mu.Lock()
		t.breakerStates[d.Breaker] = d.To
		t.mu.Unlock()
	case events.Error:
		t.m.errors.WithLabelValues(d.Source, d.Kind).Inc()
		if d.CloseCode != 0 {
			t.m.closeCodes.WithLabelValues(strconv.Itoa(d.CloseCode), "discord").Inc()
		}
		if d.Source == "conn" {
			t.mu.Lock()
			t.attemptOf(e.Shard).pendingCause = d.Kind
			t.mu.Unlock()
		}
		if name, ok := strings.CutPrefix(d.Source, "plugin/"); ok {
			t.m.pluginFailures.WithLabelValues(name, d.Kind).Inc()
		}
	case events.Recovery:
		if d.Completed {
			t.m.recoveries.WithLabelValues(d.Strategy, result(d.Success)).Inc()
		}
	case events.Degradation:
		dir := "deactivated"
		if d.Activated {
			dir = "activated"
		}
		t.m.degradeChanges.WithLabelValues(dir).Inc()
		t.mu.Lock()
		for _, a := range d.Actions {
			t.activeActions[a] = d.Activated
			t.m.actionActive.WithLabelValues(a).Set(b2f(d.Activated))
		}
		t.mu.Unlock()
	case events.PolicyReload:
		t.m.policyReloads.WithLabelValues(result(!d.Failed)).Inc()
		if !d.Failed {
			t.m.policyLastOK.Set(float64(e.Time.UnixNano()) / 1e9)
		}
	case events.Plugin:
		if d.Exited {
			t.m.pluginExits.WithLabelValues(d.Name, strconv.FormatBool(d.Restart)).Inc()
		} else {
			t.m.pluginStarts.WithLabelValues(d.Name).Inc()
			// A plugin's exits and dropped log lines start at 0 with its
			// first start (see New).
			t.m.pluginExits.WithLabelValues(d.Name, "true")
			t.m.pluginExits.WithLabelValues(d.Name, "false")
			t.m.pluginLogDrops.WithLabelValues(d.Name)
		}
	case events.PluginLogs:
		t.m.pluginLogDrops.WithLabelValues(d.Name).Add(float64(d.Dropped))
	}
	t.feeds.addEvent(record(e))
}

// attempt is what observeState follows of one shard's connection.
type attempt struct {
	pendingCause string // why the last connection ended, for the next attempt
	cause        string // why the attempt in progress was made
	count        int    // connection attempts seen
}

// attemptOf returns shard's attempt state. t.mu must be held.
func (t *Telemetry) attemptOf(shard int) *attempt {
	a := t.attempts[shard]
	if a == nil {
		a = &attempt{}
		t.attempts[shard] = a
	}
	return a
}

// observeState counts connection attempts, IDENTIFYs and RESUMEs from the
// state machine, which enters CONNECTING for every attempt and IDENTIFYING
// or RESUMING when it sends IDENTIFY or RESUME. The cause of an attempt is
// the kind of the conn error that ended the previous connection of the
// same shard, "start" for a shard's first attempt, and "requested" when no
// error preceded it (a recovery asked for by a strategy, a plugin or an
// operator). Events of one bus arrive in the order they were published, so
// the error is always seen before the attempt it caused; each shard is
// followed on its own, so many shards interleaving on one bus are counted
// as they would be one by one.
func (t *Telemetry) observeState(shard int, d events.StateChange) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.attemptOf(shard)
	switch d.To {
	case "CONNECTING":
		cause := a.pendingCause
		switch {
		case a.count == 0:
			cause = "start"
		case cause == "":
			cause = "requested"
		}
		a.pendingCause, a.cause = "", cause
		if a.count > 0 {
			t.m.reconnects.WithLabelValues(cause).Inc()
		}
		a.count++
	case "IDENTIFYING":
		t.m.identifies.WithLabelValues(a.causeOrStart()).Inc()
	case "RESUMING":
		t.m.resumes.WithLabelValues(a.causeOrStart()).Inc()
	}
}

func (a *attempt) causeOrStart() string {
	if a.cause == "" {
		return "start"
	}
	return a.cause
}

// ObserveHeartbeatRTT records one heartbeat round trip.
func (t *Telemetry) ObserveHeartbeatRTT(rtt time.Duration) {
	if t == nil {
		return
	}
	if rtt > 0 {
		t.m.heartbeatRTT.Observe(rtt.Seconds())
	}
}

// ObserveCloseSent records a close code lifeline sent (4000 to keep the
// session resumable, 1000 to end it).
func (t *Telemetry) ObserveCloseSent(code int) {
	if t == nil {
		return
	}
	if code != 0 {
		t.m.closeCodes.WithLabelValues(strconv.Itoa(code), "lifeline").Inc()
	}
}

// ObserveREST records one REST request: its status class, its latency when
// a response came, and the scope of a 429.
func (t *Telemetry) ObserveREST(r conn.RESTResult) {
	if t == nil {
		return
	}
	if r.Err != nil || r.Status < 100 {
		t.m.restRequests.WithLabelValues("error").Inc()
		return
	}
	t.m.restRequests.WithLabelValues(statusClass(r.Status)).Inc()
	t.m.restLatency.Observe(r.Latency.Seconds())
	if r.Status == 429 {
		scope := "unknown"
		if rl := r.RateLimit; rl != nil {
			switch {
			case rl.Cloudflare:
				scope = "cloudflare"
			case rl.Scope == "user" || rl.Scope == "global" || rl.Scope == "shared":
				scope = rl.Scope
			case rl.Global:
				scope = "global"
			}
		}
		t.m.restLimited.WithLabelValues(scope).Inc()
	}
}

// ObservePluginCall records one call into a plugin: kind is "check",
// "action" or "strategy"; err is the call's error, nil on success.
func (t *Telemetry) ObservePluginCall(plugin, kind string, err error) {
	if t == nil {
		return
	}
	t.m.pluginCalls.WithLabelValues(plugin, kind, result(err == nil)).Inc()
}

// Sample takes a sample for the dashboard's plots from Source.Status and
// sends it to the live streams, unless the last one is less than three
// quarters of Options.SampleInterval old. The system calls it once per tick. It
// reports whether a sample was taken.
func (t *Telemetry) Sample() bool {
	if t == nil {
		return false
	}
	now := t.clk.Now()
	t.mu.Lock()
	// Three quarters, so that a ticker's jitter does not skip a tick.
	if !t.lastSample.IsZero() && !now.Before(t.lastSample) && now.Sub(t.lastSample) < t.opts.SampleInterval*3/4 {
		t.mu.Unlock()
		return false
	}
	t.lastSample = now
	t.mu.Unlock()
	t.feeds.addSample(t.sampleOf(t.src.Status()))
	return true
}

// Close ends every live stream; later events and samples are still kept
// and counted. It is safe to call more than once.
func (t *Telemetry) Close() {
	if t != nil {
		t.feeds.close()
	}
}

// ActiveActions returns the degradation actions applied now, sorted, as
// told by DEGRADATION_* events.
func (t *Telemetry) ActiveActions() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.activeActions))
	for a, on := range t.activeActions {
		if on {
			out = append(out, a)
		}
	}
	sortStrings(out)
	return out
}

// breakers returns the last state of every breaker seen in transitions.
func (t *Telemetry) breakers() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.breakerStates))
	for k, v := range t.breakerStates {
		out[k] = v
	}
	return out
}

func statusClass(code int) string {
	if code >= 100 && code < 600 {
		return strconv.Itoa(code/100) + "xx"
	}
	return "error"
}

func result(ok bool) string {
	if ok {
		return "success"
	}
	return "failure"
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
