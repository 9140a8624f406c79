package telemetry

import (
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// GatewayBreaker is the name of the breaker that guards gateway
// connection attempts, the one Status.Breaker describes.
const GatewayBreaker = "gateway"

// The gauges and counters read from Source.Status at scrape time.
var (
	descState = prometheus.NewDesc("lifeline_connection_state",
		"1 for the connection state machine's current state, 0 for the others.", []string{"state"}, nil)
	descConnected = prometheus.NewDesc("lifeline_gateway_connected",
		"1 while a gateway session is READY (or RESUMED), else 0.", nil, nil)
	descUptime = prometheus.NewDesc("lifeline_uptime_seconds",
		"Time since the system started.", nil, nil)
	descScore = prometheus.NewDesc("lifeline_health_score",
		"The health monitor's score, 0-100: the weighted share of passing checks.", nil, nil)
	descStatus = prometheus.NewDesc("lifeline_health_status",
		"1 for the health monitor's current status (HEALTHY, DEGRADED, UNHEALTHY, CRITICAL, UNKNOWN), 0 for the others.", []string{"status"}, nil)
	descCheck = prometheus.NewDesc("lifeline_health_check_passing",
		"1 when the health check's last run passed, 0 when it failed, by check.", []string{"check"}, nil)
	descBreakerState = prometheus.NewDesc("lifeline_breaker_state",
		"1 for a circuit breaker's current state (CLOSED, OPEN, HALF_OPEN), 0 for the others, by breaker.", []string{"breaker", "state"}, nil)
	descBreakerRejections = prometheus.NewDesc("lifeline_breaker_rejections_total",
		"Calls the circuit breaker refused while OPEN or HALF_OPEN, by breaker.", []string{"breaker"}, nil)
	descBreakerFailures = prometheus.NewDesc("lifeline_breaker_failures_total",
		"Failed calls the circuit breaker counted, by breaker.", []string{"breaker"}, nil)
	descLevel = prometheus.NewDesc("lifeline_degradation_level",
		"The degradation level in force: 0 NONE, 1 MINIMAL, 2 MODERATE, 3 SEVERE, 4 CRITICAL.", nil, nil)
	descErrorRatio = prometheus.NewDesc("lifeline_error_ratio",
		"Failed operations / operations (REST requests, connection attempts, heartbeats) over the metrics window, 0-1.", nil, nil)
	descAckAge = prometheus.NewDesc("lifeline_gateway_heartbeat_ack_age_seconds",
		"Time since the last HEARTBEAT_ACK; 0 while not connected.", nil, nil)
	descDispatches = prometheus.NewDesc("lifeline_gateway_dispatches_total",
		"Gateway dispatch events received.", nil, nil)
	descSessionStarts = prometheus.NewDesc("lifeline_gateway_session_starts_remaining",
		"Session starts (IDENTIFYs) left in Discord's daily budget.", nil, nil)
	descEventsPublished = prometheus.NewDesc("lifeline_events_published_total",
		"Events published on the event bus.", nil, nil)
	descEventsDropped = prometheus.NewDesc("lifeline_events_dropped_total",
		"Events a slow subscriber lost because its queue was full.", nil, nil)
	descPluginState = prometheus.NewDesc("lifeline_plugin_state",
		"1 for a plugin's current state (STARTING, RUNNING, RESTARTING, FAILED, STOPPED), 0 for the others, by plugin.", []string{"plugin", "state"}, nil)
	descPolicyGeneration = prometheus.NewDesc("lifeline_policy_generation",
		"Generation of the policy file in force (1 for the first load); 0 when the policy was given in code.", nil, nil)
)

// statusCollector emits the Status-derived families at scrape time.
type statusCollector struct{ t *Telemetry }

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descConnected, descUptime, descScore, descStatus, descCheck,
		descBreakerState, descBreakerRejections, descBreakerFailures, descLevel, descErrorRatio, descAckAge,
		descDispatches, descSessionStarts, descEventsPublished, descEventsDropped, descPolicyGeneration, descPluginState} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.t.src.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, st := range enumWith(ConnectionStates(), s.State) {
		gauge(descState, b2f(st == s.State), st)
	}
	gauge(descConnected, b2f(s.Snapshot.Gateway.Connected))
	gauge(descUptime, s.Uptime.Seconds())
	gauge(descScore, s.Health.Score)
	status := s.Health.Status.String()
	for _, st := range enumWith(HealthStatuses(), status) {
		gauge(descStatus, b2f(st == status), st)
	}
	for _, chk := range s.Health.Checks {
		if chk.Last != nil {
			gauge(descCheck, b2f(chk.Last.Passed), chk.Name)
		}
	}
	states := c.t.breakers()
	states[GatewayBreaker] = s.Breaker.State.String()
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, st := range enumWith(BreakerStates(), states[n]) {
			gauge(descBreakerState, b2f(st == states[n]), n, st)
		}
	}
	counter(descBreakerRejections, float64(s.Breaker.Rejections), GatewayBreaker)
	counter(descBreakerFailures, float64(s.Breaker.Failures), GatewayBreaker)
	gauge(descLevel, float64(LevelNumber(s.Degradation.Level)))
	gauge(descErrorRatio, s.Snapshot.Errors.Rate)
	gauge(descAckAge, s.Snapshot.Gateway.LastAckAge.Seconds())
	counter(descDispatches, float64(s.Snapshot.Gateway.Dispatches))
	if s.SessionStartsRemaining >= 0 {
		gauge(descSessionStarts, float64(s.SessionStartsRemaining))
	}
	counter(descEventsPublished, float64(s.Events.Published))
	counter(descEventsDropped, float64(s.Events.Dropped))
	gauge(descPolicyGeneration, float64(s.Policy.Generation))
	for _, p := range s.Plugins {
		cur := p.State.String()
		for _, st := range enumWith(pluginhost.States(), cur) {
			gauge(descPluginState, b2f(st == cur), p.Name, st)
		}
	}
}

// ConnectionStates returns the connection state machine's state names in
// order (DISCONNECTED, CONNECTING, ..., STOPPED).
func ConnectionStates() []string {
	var out []string
	for s := conn.State(0); !strings.HasPrefix(s.String(), "State("); s++ {
		out = append(out, s.String())
	}
	return out
}

// HealthStatuses returns the health monitor's status names in order
// (UNKNOWN, HEALTHY, DEGRADED, UNHEALTHY, CRITICAL).
func HealthStatuses() []string {
	var out []string
	for s := health.Status(0); !strings.HasPrefix(s.String(), "Status("); s++ {
		out = append(out, s.String())
	}
	return out
}

// BreakerStates returns the circuit breaker's state names.
func BreakerStates() []string {
	return []string{breaker.StateClosed.String(), breaker.StateOpen.String(), breaker.StateHalfOpen.String()}
}

// LevelNumber maps a degradation level name to 0 (NONE) ... 4 (CRITICAL);
// an empty or unknown name is 0.
func LevelNumber(name string) int {
	if name == "" {
		return 0
	}
	l, err := policy.ParseLevel(name)
	if err != nil {
		return 0
	}
	return int(l)
}

// enumWith returns known, plus cur when it is not among them (a state
// this build does not know still shows up).
func enumWith(known []string, cur string) []string {
	for _, k := range known {
		if k == cur {
			return known
		}
	}
	if cur == "" {
		return known
	}
	return append(known[:len(known):len(known)], cur)
}

func sortStrings(s []string) { sort.Strings(s) }
