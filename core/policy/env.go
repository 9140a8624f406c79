package policy

import (
	"reflect"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Env is the typed environment conditions are compiled against, and
// evaluated with when they run on expr's VM (the native evaluator reads
// the Snapshot itself, through the same conversions). It is a flattened,
// unit-converted copy of a metrics.Snapshot (plus, in recovery rules, the
// triggering error):
//
//   - every duration is a float64 number of milliseconds, so
//     `latency.heartbeat > 250` and `latency.heartbeat > duration("250ms")`
//     mean the same;
//   - every counter is an int;
//   - rates are float64 fractions in [0, 1]; the health score is 0-100.
//
// The `expr` tags are the names conditions use; Variables lists them with
// their types and units. The fields of the *Vars types are documented by
// their `doc` tags, which Variables and docs/policy.md show.
type Env struct {
	// Latency holds the `latency.*` variables.
	Latency LatencyVars `expr:"latency"`
	// Errors holds the `errors.*` variables.
	Errors ErrorVars `expr:"errors"`
	// Gateway holds the `gateway.*` variables.
	Gateway GatewayVars `expr:"gateway"`
	// REST holds the `rest.*` variables.
	REST RESTVars `expr:"rest"`
	// Breaker holds the `breaker.*` variables.
	Breaker BreakerVars `expr:"breaker"`
	// Health holds the `health.*` variables.
	Health HealthVars `expr:"health"`
	// Degradation holds the `degradation.*` variables.
	Degradation DegradationVars `expr:"degradation"`
	// Shard holds the `shard.*` variables.
	Shard ShardVars `expr:"shard"`
	// Shards holds the `shards.*` variables: the process's shards.
	Shards ShardsVars `expr:"shards"`
	// Fleet holds the `fleet.*` variables (env_fleet.go): every process
	// of the bot.
	Fleet  FleetVars `expr:"fleet"`
	Uptime float64   `expr:"uptime" unit:"ms" doc:"time since the metrics recorder started"`
	// Error is only visible to recovery rules; a degradation condition
	// that names it is a compile error.
	Error ErrorInfo `expr:"error"`
}

// LatencyVars are the `latency.*` variables.
type LatencyVars struct {
	Heartbeat    float64 `expr:"heartbeat" unit:"ms" doc:"last heartbeat to ACK round trip; 0 before the first ACK"`
	HeartbeatAvg float64 `expr:"heartbeat_avg" unit:"ms" doc:"mean heartbeat round trip over the metrics window"`
	RESTP50      float64 `expr:"rest_p50" unit:"ms" doc:"median REST request latency over the window; 0 without requests"`
	RESTP95      float64 `expr:"rest_p95" unit:"ms" doc:"95th percentile REST latency over the window"`
	RESTP99      float64 `expr:"rest_p99" unit:"ms" doc:"99th percentile REST latency over the window"`
}

// ErrorVars are the `errors.*` variables.
type ErrorVars struct {
	Rate        float64 `expr:"rate" unit:"fraction" doc:"failed / total operations over the window, 0 to 1"`
	InWindow    int     `expr:"in_window" unit:"count" doc:"failures within the window"`
	Consecutive int     `expr:"consecutive" unit:"count" doc:"failures since the last success"`
	Total       int     `expr:"total" unit:"count" doc:"failures since start"`
	Window      float64 `expr:"window" unit:"ms" doc:"length of the sliding window"`
}

// GatewayVars are the `gateway.*` variables.
type GatewayVars struct {
	State             string  `expr:"state" unit:"string" doc:"connection state, e.g. \"READY\""`
	Connected         bool    `expr:"connected" unit:"bool" doc:"a gateway session is READY or RESUMED"`
	HeartbeatInterval float64 `expr:"heartbeat_interval" unit:"ms" doc:"interval HELLO gave; 0 before HELLO"`
	LastAckAge        float64 `expr:"last_ack_age" unit:"ms" doc:"time since the last HEARTBEAT_ACK; 0 when not connected"`
	DownFor           float64 `expr:"down_for" unit:"ms" doc:"time since the gateway was last connected; 0 while connected and before the first READY"`
	Sequence          int     `expr:"sequence" unit:"count" doc:"last dispatch sequence number"`
	Reconnects        int     `expr:"reconnects" unit:"count" doc:"reconnects since start"`
	Resumes           int     `expr:"resumes" unit:"count" doc:"successful resumes since start"`
	Identifies        int     `expr:"identifies" unit:"count" doc:"IDENTIFYs sent since start"`
	LastCloseCode     int     `expr:"last_close_code" unit:"code" doc:"last WebSocket close code; 0 if none"`
	Dispatches        int     `expr:"dispatches" unit:"count" doc:"dispatch events received since start"`
}

// RESTVars are the `rest.*` variables.
type RESTVars struct {
	Requests     int `expr:"requests" unit:"count" doc:"REST requests in the window"`
	RateLimited  int `expr:"rate_limited" unit:"count" doc:"429 responses in the window"`
	ServerErrors int `expr:"server_errors" unit:"count" doc:"5xx responses in the window"`
	Failures     int `expr:"failures" unit:"count" doc:"transport errors in the window"`
}

// BreakerVars are the `breaker.*` variables.
type BreakerVars struct {
	State      string `expr:"state" unit:"string" doc:"\"CLOSED\", \"OPEN\" or \"HALF_OPEN\""`
	Failures   int    `expr:"failures" unit:"count" doc:"failures in the breaker's window"`
	Rejections int    `expr:"rejections" unit:"count" doc:"calls rejected since start"`
}

// HealthVars are the `health.*` variables.
type HealthVars struct {
	Score  float64 `expr:"score" unit:"0-100" doc:"health score"`
	Status string  `expr:"status" unit:"string" doc:"\"HEALTHY\", \"DEGRADED\", \"UNHEALTHY\" or \"CRITICAL\""`
	Trend  string  `expr:"trend" unit:"string" doc:"\"improving\", \"stable\" or \"degrading\""`
}

// DegradationVars are the `degradation.*` variables.
type DegradationVars struct {
	Level string  `expr:"level" unit:"string" doc:"current level: \"NONE\", \"MINIMAL\", \"MODERATE\", \"SEVERE\" or \"CRITICAL\""`
	Age   float64 `expr:"age" unit:"ms" doc:"time spent at the current level"`
}

// ShardVars are the `shard.*` variables.
type ShardVars struct {
	ID    int `expr:"id" unit:"count" doc:"shard id of the snapshot"`
	Count int `expr:"count" unit:"count" doc:"total shards"`
}

// ShardsVars are the `shards.*` variables: the shards this process runs,
// counted by condition (see core/shard's Classify), for policies that act
// on the whole process. Without a shard manager they are all 0.
type ShardsVars struct {
	Total          int     `expr:"total" unit:"count" doc:"shards this process runs"`
	Ready          int     `expr:"ready" unit:"count" doc:"shards READY now"`
	Starting       int     `expr:"starting" unit:"count" doc:"shards never READY yet"`
	Healthy        int     `expr:"healthy" unit:"count" doc:"shards in good health"`
	Degraded       int     `expr:"degraded" unit:"count" doc:"shards whose health is DEGRADED or breaker HALF_OPEN"`
	Unhealthy      int     `expr:"unhealthy" unit:"count" doc:"shards FAILED, reconnecting after READY, breaker OPEN, or health UNHEALTHY/CRITICAL"`
	Reconnecting   int     `expr:"reconnecting" unit:"count" doc:"shards that were READY and are recovering"`
	Failed         int     `expr:"failed" unit:"count" doc:"shards stopped for good"`
	BreakersOpen   int     `expr:"breakers_open" unit:"count" doc:"shards whose circuit breaker is OPEN"`
	ReadyRatio     float64 `expr:"ready_ratio" unit:"fraction" doc:"ready / total, 0 to 1"`
	UnhealthyRatio float64 `expr:"unhealthy_ratio" unit:"fraction" doc:"unhealthy / total, 0 to 1"`
	DegradedRatio  float64 `expr:"degraded_ratio" unit:"fraction" doc:"(degraded + unhealthy) / total, 0 to 1"`
	WorstAckAge    float64 `expr:"worst_ack_age" unit:"ms" doc:"longest time since a HEARTBEAT_ACK among connected shards"`
	WorstLatency   float64 `expr:"worst_latency" unit:"ms" doc:"slowest last heartbeat round trip of a shard"`
	MeanLatency    float64 `expr:"mean_latency" unit:"ms" doc:"mean last heartbeat round trip over the shards"`
	MaxErrorRate   float64 `expr:"max_error_rate" unit:"fraction" doc:"worst single shard's error rate over the window"`
	MinHealthScore float64 `expr:"min_health_score" unit:"0-100" doc:"lowest health score of a shard; 100 when none has a verdict"`
}

// ErrorInfo is the error that triggered recovery: the `error.*`
// variables of recovery rules.
type ErrorInfo struct {
	// Message is the redacted, human-readable error text.
	Message string `expr:"message" unit:"string" doc:"redacted error text"`
	// CloseCode is the WebSocket close code, 0 when the error is not a close.
	CloseCode int `expr:"close_code" unit:"code" doc:"WebSocket close code; 0 when not a close"`
	// Kind is a stable class; for the connection, how it ended
	// (core/gateway's End reasons): "close", "dial_failed",
	// "handshake_timeout", "connection_lost", "zombie",
	// "reconnect_requested", "invalid_session", "protocol_error".
	Kind string `expr:"kind" unit:"string" doc:"error class: \"close\", \"dial_failed\", \"handshake_timeout\", \"connection_lost\", \"zombie\", \"reconnect_requested\", \"invalid_session\", \"protocol_error\""`
	// Source is the component that reported it, e.g. "conn".
	Source string `expr:"source" unit:"string" doc:"component that reported it, e.g. \"conn\""`
	// Fatal is true when no automatic recovery should follow.
	Fatal bool `expr:"fatal" unit:"bool" doc:"the error is fatal (e.g. close 4004)"`
	// Resumable is op 9's d for an invalid session (Kind
	// "invalid_session"): Discord said the session may be resumed. False
	// for every other error.
	Resumable bool `expr:"resumable" unit:"bool" doc:"op 9 (invalid session) said the session may be resumed (its d); false for other errors"`
}

// ErrorFromEvent converts the data of an ERROR_OCCURRED event.
func ErrorFromEvent(e events.Error) ErrorInfo {
	return ErrorInfo{Message: e.Message, CloseCode: e.CloseCode, Kind: e.Kind, Source: e.Source, Fatal: e.Fatal, Resumable: e.Resumable}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Fill overwrites e with the values of s (the `error` part is left as is).
// It does not allocate.
func (e *Env) Fill(s *metrics.Snapshot) { e.fill(s, gAll) }

// group is a set of Env sections; evaluation fills only the sections its
// conditions read.
type group uint16

const (
	gLatency group = 1 << iota
	gErrors
	gGateway
	gREST
	gBreaker
	gHealth
	gDegradation
	gShard
	gShards
	gUptime
	gFleet
	gAll = gLatency | gErrors | gGateway | gREST | gBreaker | gHealth | gDegradation | gShard | gShards | gUptime | gFleet
)

var groupByName = map[string]group{
	"latency": gLatency, "errors": gErrors, "gateway": gGateway, "rest": gREST, "breaker": gBreaker,
	"health": gHealth, "degradation": gDegradation, "shard": gShard, "shards": gShards, "uptime": gUptime,
	"fleet": gFleet,
}

func (e *Env) fill(s *metrics.Snapshot, g group) {
	if g&gUptime != 0 {
		e.Uptime = ms(s.Uptime)
	}
	if g&gLatency != 0 {
		e.fillLatency(s)
	}
	if g&gErrors != 0 {
		e.fillErrors(s)
	}
	if g&gGateway != 0 {
		e.fillGateway(s)
	}
	if g&gREST != 0 {
		e.REST = RESTVars{
			Requests:     clampInt(s.REST.Requests),
			RateLimited:  clampInt(s.REST.RateLimited),
			ServerErrors: clampInt(s.REST.ServerErrors),
			Failures:     clampInt(s.REST.Failures),
		}
	}
	if g&gBreaker != 0 {
		e.Breaker = BreakerVars{
			State:      s.Breaker.State,
			Failures:   clampInt(s.Breaker.Failures),
			Rejections: clampInt(s.Breaker.Rejections),
		}
	}
	if g&gHealth != 0 {
		e.Health = HealthVars{Score: s.Health.Score, Status: s.Health.Status, Trend: s.Health.Trend}
	}
	if g&gDegradation != 0 {
		e.fillDegradation(s)
	}
	if g&gShard != 0 {
		e.Shard = ShardVars{ID: s.Shard.ID, Count: s.Shard.Count}
	}
	if g&gShards != 0 {
		e.fillShards(s)
	}
	if g&gFleet != 0 {
		e.fillFleet(s)
	}
}

func (e *Env) fillShards(s *metrics.Snapshot) {
	h := &s.Shards
	e.Shards = ShardsVars{
		Total: h.Total, Ready: h.Ready,
		Starting: h.Starting, Healthy: h.Healthy, Degraded: h.Degraded, Unhealthy: h.Unhealthy,
		Reconnecting: h.Reconnecting, Failed: h.Failed, BreakersOpen: h.BreakersOpen,
		ReadyRatio: h.ReadyRatio, UnhealthyRatio: h.UnhealthyRatio, DegradedRatio: h.DegradedRatio,
		WorstAckAge: ms(h.WorstAckAge), WorstLatency: ms(h.WorstLatency), MeanLatency: ms(h.MeanLatency),
		MaxErrorRate: h.MaxErrorRate, MinHealthScore: h.MinHealthScore,
	}
}

func (e *Env) fillLatency(s *metrics.Snapshot) {
	e.Latency = LatencyVars{
		Heartbeat:    ms(s.Latency.Heartbeat),
		HeartbeatAvg: ms(s.Latency.HeartbeatAvg),
		RESTP50:      ms(s.Latency.RESTP50),
		RESTP95:      ms(s.Latency.RESTP95),
		RESTP99:      ms(s.Latency.RESTP99),
	}
}

func (e *Env) fillErrors(s *metrics.Snapshot) {
	e.Errors = ErrorVars{
		Rate:        s.Errors.Rate,
		InWindow:    clampInt(s.Errors.InWindow),
		Consecutive: clampInt(s.Errors.Consecutive),
		Total:       clampInt(s.Errors.Total),
		Window:      ms(s.Errors.Window),
	}
}

func (e *Env) fillGateway(s *metrics.Snapshot) {
	e.Gateway = GatewayVars{
		State:             s.Gateway.State,
		Connected:         s.Gateway.Connected,
		HeartbeatInterval: ms(s.Gateway.HeartbeatInterval),
		LastAckAge:        ms(s.Gateway.LastAckAge),
		DownFor:           ms(s.Gateway.DownFor),
		Sequence:          int(s.Gateway.Sequence),
		Reconnects:        clampInt(s.Gateway.Reconnects),
		Resumes:           clampInt(s.Gateway.Resumes),
		Identifies:        clampInt(s.Gateway.Identifies),
		LastCloseCode:     s.Gateway.LastCloseCode,
		Dispatches:        clampInt(s.Gateway.Dispatches),
	}
}

func (e *Env) fillDegradation(s *metrics.Snapshot) {
	e.Degradation = DegradationVars{Level: degradationLevel(s), Age: degradationAge(s)}
}

func clampInt(v uint64) int {
	const maxInt = int(^uint(0) >> 1)
	if v > uint64(maxInt) {
		return maxInt
	}
	return int(v)
}

// Variable documents one name a condition can use.
type Variable struct {
	// Name is the dotted name, e.g. "latency.heartbeat".
	Name string
	// Type is the expr type: "float", "int", "string" or "bool".
	Type string
	// Unit is "ms", "count", "fraction", "code", "0-100", "string" or "bool".
	Unit string
	// Doc is a one-line description.
	Doc string
	// RecoveryOnly is true for the `error.*` variables.
	RecoveryOnly bool
}

// Variables lists every condition variable, in Env's field order.
func Variables() []Variable {
	var out []Variable
	var walk func(t reflect.Type, prefix string, recovery bool)
	walk = func(t reflect.Type, prefix string, recovery bool) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := prefix + f.Tag.Get("expr")
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, name+".", recovery || name == "error")
				continue
			}
			typ := map[reflect.Kind]string{reflect.Float64: "float", reflect.Int: "int", reflect.String: "string", reflect.Bool: "bool"}[f.Type.Kind()]
			out = append(out, Variable{Name: name, Type: typ, Unit: f.Tag.Get("unit"), Doc: f.Tag.Get("doc"), RecoveryOnly: recovery})
		}
	}
	walk(reflect.TypeOf(Env{}), "", false)
	return out
}
