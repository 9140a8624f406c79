package telemetry

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Verdict is a /health status: pass, warn or fail (the values of
// draft-inadarei-api-health-check).
type Verdict string

// The verdicts, from best to worst.
const (
	Pass Verdict = "pass"
	Warn Verdict = "warn"
	Fail Verdict = "fail"
)

// rank orders verdicts so the worst can be picked.
func (v Verdict) rank() int {
	switch v {
	case Pass:
		return 0
	case Warn:
		return 1
	}
	return 2
}

// HTTPStatus is the HTTP status /health answers with: 200 for pass and
// warn (the bot is connected and serving, possibly degraded), 503 for
// fail (take it out of rotation, page someone).
func (v Verdict) HTTPStatus() int {
	if v == Fail {
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

func worst(a, b Verdict) Verdict {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// HealthReport is the body of /health, in the application/health+json
// format (draft-inadarei-api-health-check): an overall status and, per
// component and measurement, the details that led to it.
type HealthReport struct {
	Status      Verdict                  `json:"status"`
	ServiceID   string                   `json:"serviceId"`
	Description string                   `json:"description"`
	Output      string                   `json:"output,omitempty"`
	Checks      map[string][]HealthCheck `json:"checks"`
}

// HealthCheck is one measurement of a HealthReport.
type HealthCheck struct {
	ComponentType string    `json:"componentType"`
	ObservedValue any       `json:"observedValue"`
	ObservedUnit  string    `json:"observedUnit,omitempty"`
	Status        Verdict   `json:"status"`
	Output        string    `json:"output,omitempty"`
	Time          time.Time `json:"time"`
}

// Connection states the verdicts single out. Any other state (CONNECTING,
// IDENTIFYING, RESUMING, RECONNECTING, BACKING_OFF) is a recovery in
// progress.
const (
	stateReady        = "READY"
	stateFailed       = "FAILED"
	stateStopped      = "STOPPED"
	stateDisconnected = "DISCONNECTED"
)

// connectionVerdict maps the connection state: READY passes; FAILED (a
// fatal error, no further attempt), STOPPED and DISCONNECTED (not started)
// fail; every other state is a recovery in progress and warns.
func connectionVerdict(state string) Verdict {
	switch state {
	case stateReady:
		return Pass
	case stateFailed, stateStopped, stateDisconnected, "":
		return Fail
	}
	return Warn
}

// monitorVerdict maps the health monitor's status: HEALTHY passes, and so
// does UNKNOWN (no check has run yet, nothing to judge); DEGRADED warns;
// UNHEALTHY and CRITICAL fail.
func monitorVerdict(status string) Verdict {
	switch status {
	case "HEALTHY", "UNKNOWN", "":
		return Pass
	case "DEGRADED":
		return Warn
	}
	return Fail
}

// breakerVerdict: CLOSED passes; OPEN and HALF_OPEN warn (connection
// attempts are held back; the connection check says whether the bot is
// still connected).
func breakerVerdict(state string) Verdict {
	if state == "CLOSED" {
		return Pass
	}
	return Warn
}

// degradationVerdict: NONE passes, any other level warns (the bot serves
// with features switched off on purpose).
func degradationVerdict(level string) Verdict {
	if level == "" || level == "NONE" {
		return Pass
	}
	return Warn
}

// Assess turns a Status into a HealthReport. The overall status is the
// worst of its checks:
//
//	check                  pass        warn                       fail
//	gateway:connection     READY       CONNECTING, IDENTIFYING,   FAILED, STOPPED,
//	                                   RESUMING, RECONNECTING,    DISCONNECTED
//	                                   BACKING_OFF
//	health:score           HEALTHY,    DEGRADED                   UNHEALTHY, CRITICAL
//	                       UNKNOWN
//	health:<check>         passing     failing, not critical      failing, critical
//	circuitBreaker:state   CLOSED      OPEN, HALF_OPEN            -
//	degradation:level      NONE        MINIMAL ... CRITICAL       -
func Assess(s Status) HealthReport {
	r := HealthReport{
		Status:      Pass,
		ServiceID:   fmt.Sprintf("lifeline-shard-%d", s.Shard),
		Description: fmt.Sprintf("lifeline: Discord gateway connection, shard %d of %d", s.Shard, max(s.ShardCount, 1)),
		Checks:      map[string][]HealthCheck{},
	}
	var outputs []string
	add := func(key string, c HealthCheck) {
		if c.Time.IsZero() {
			c.Time = s.Time
		}
		r.Checks[key] = append(r.Checks[key], c)
		r.Status = worst(r.Status, c.Status)
		if c.Status != Pass && c.Output != "" {
			outputs = append(outputs, key+": "+c.Output)
		}
	}

	conn := HealthCheck{ComponentType: "component", ObservedValue: s.State, Status: connectionVerdict(s.State)}
	switch {
	case s.Error != "":
		conn.Output = s.Error
	case conn.Status == Warn:
		conn.Output = "recovering: the gateway connection is " + s.State
	case conn.Status == Fail:
		conn.Output = "the gateway connection is " + s.State
	}
	add("gateway:connection", conn)

	status := s.Health.Status.String()
	mon := HealthCheck{ComponentType: "system", ObservedValue: round2(s.Health.Score), ObservedUnit: "percent",
		Status: monitorVerdict(status), Time: s.Health.Time}
	if mon.Status != Pass {
		mon.Output = status
		if len(s.Health.Failing) > 0 {
			mon.Output += "; failing: " + strings.Join(s.Health.Failing, ", ")
		}
	}
	add("health:score", mon)

	checks := append(s.Health.Checks[:0:0], s.Health.Checks...)
	sort.Slice(checks, func(i, j int) bool { return checks[i].Name < checks[j].Name })
	for _, c := range checks {
		if c.Last == nil {
			continue
		}
		hc := HealthCheck{ComponentType: "component", ObservedValue: round2(c.Last.Value), ObservedUnit: c.Last.Unit,
			Status: Pass, Time: c.Last.Time}
		if !c.Last.Passed {
			hc.Status = Warn
			if c.Config.Critical {
				hc.Status = Fail
			}
			hc.Output = c.Last.Message
		}
		add("health:"+c.Name, hc)
	}

	brk := s.Breaker.State.String()
	bc := HealthCheck{ComponentType: "component", ObservedValue: brk, Status: breakerVerdict(brk)}
	if bc.Status != Pass {
		bc.Output = "connection attempts are held back by the circuit breaker"
	}
	add("circuitBreaker:state", bc)

	dc := HealthCheck{ComponentType: "system", ObservedValue: levelOrNone(s.Degradation.Level),
		Status: degradationVerdict(s.Degradation.Level)}
	if dc.Status != Pass {
		dc.Output = "degraded on purpose"
		if s.Degradation.Reason != "" {
			dc.Output += ": " + s.Degradation.Reason
		}
	}
	add("degradation:level", dc)

	r.Output = strings.Join(outputs, "; ")
	return r
}

func levelOrNone(l string) string {
	if l == "" {
		return "NONE"
	}
	return l
}

// round2 keeps two decimals, enough for a score or a value in a report.
func round2(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*100) / 100
}
