package policy

import (
	"reflect"
	"strings"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Where the native evaluator (native.go) reads each condition variable:
// straight from the metrics.Snapshot (or, for `error.*`, the ErrorInfo)
// with the conversion Env.fill applies, so evaluating a condition needs no
// Env at all. A test checks every variable's source reads the value fill
// writes, over random snapshots.

// conv is how a variable's value is made from its Snapshot field; each
// matches a conversion of Env.fill.
type conv uint8

const (
	convNone   conv = iota
	convFloat       // float64 field → float
	convMillis      // time.Duration field → float milliseconds (ms)
	convCount       // uint64 counter → int, clamped (clampInt)
	convInt         // int field → int
	convInt64       // int64 field → int (int(v))
	convString      // string field → string
	convBool        // bool field → bool
	convDegradationLevel
	convDegradationAge
)

// varSource is where one variable comes from.
type varSource struct {
	conv    conv
	k       kind    // the variable's type in conditions
	off     uintptr // offset of the field in metrics.Snapshot, or in ErrorInfo when onError
	onError bool    // an `error.*` variable: read from the ErrorInfo
}

// snapshotFields maps each snapshot variable to its metrics.Snapshot
// field; the conversion follows from the two types (as in Env.fill).
// degradation.* are computed (degradationLevel, degradationAge) and
// error.* read ErrorInfo's own fields.
var snapshotFields = map[string]string{
	"uptime": "Uptime",

	"latency.heartbeat":     "Latency.Heartbeat",
	"latency.heartbeat_avg": "Latency.HeartbeatAvg",
	"latency.rest_p50":      "Latency.RESTP50",
	"latency.rest_p95":      "Latency.RESTP95",
	"latency.rest_p99":      "Latency.RESTP99",

	"errors.rate":        "Errors.Rate",
	"errors.in_window":   "Errors.InWindow",
	"errors.consecutive": "Errors.Consecutive",
	"errors.total":       "Errors.Total",
	"errors.window":      "Errors.Window",

	"gateway.state":              "Gateway.State",
	"gateway.connected":          "Gateway.Connected",
	"gateway.heartbeat_interval": "Gateway.HeartbeatInterval",
	"gateway.last_ack_age":       "Gateway.LastAckAge",
	"gateway.down_for":           "Gateway.DownFor",
	"gateway.sequence":           "Gateway.Sequence",
	"gateway.reconnects":         "Gateway.Reconnects",
	"gateway.resumes":            "Gateway.Resumes",
	"gateway.identifies":         "Gateway.Identifies",
	"gateway.last_close_code":    "Gateway.LastCloseCode",
	"gateway.dispatches":         "Gateway.Dispatches",

	"rest.requests":      "REST.Requests",
	"rest.rate_limited":  "REST.RateLimited",
	"rest.server_errors": "REST.ServerErrors",
	"rest.failures":      "REST.Failures",

	"breaker.state":      "Breaker.State",
	"breaker.failures":   "Breaker.Failures",
	"breaker.rejections": "Breaker.Rejections",

	"health.score":  "Health.Score",
	"health.status": "Health.Status",
	"health.trend":  "Health.Trend",

	"shard.id":    "Shard.ID",
	"shard.count": "Shard.Count",

	"shards.total":            "Shards.Total",
	"shards.ready":            "Shards.Ready",
	"shards.starting":         "Shards.Starting",
	"shards.healthy":          "Shards.Healthy",
	"shards.degraded":         "Shards.Degraded",
	"shards.unhealthy":        "Shards.Unhealthy",
	"shards.reconnecting":     "Shards.Reconnecting",
	"shards.failed":           "Shards.Failed",
	"shards.breakers_open":    "Shards.BreakersOpen",
	"shards.ready_ratio":      "Shards.ReadyRatio",
	"shards.unhealthy_ratio":  "Shards.UnhealthyRatio",
	"shards.degraded_ratio":   "Shards.DegradedRatio",
	"shards.worst_ack_age":    "Shards.WorstAckAge",
	"shards.worst_latency":    "Shards.WorstLatency",
	"shards.mean_latency":     "Shards.MeanLatency",
	"shards.max_error_rate":   "Shards.MaxErrorRate",
	"shards.min_health_score": "Shards.MinHealthScore",

	"fleet.processes":          "Fleet.Processes",
	"fleet.shards":             "Fleet.Shards",
	"fleet.shards_owned":       "Fleet.Owned",
	"fleet.shards_ready":       "Fleet.Ready",
	"fleet.unhealthy":          "Fleet.Unhealthy",
	"fleet.unhealthy_ratio":    "Fleet.UnhealthyRatio",
	"fleet.worst_ack_age":      "Fleet.WorstAckAge",
	"fleet.degraded_processes": "Fleet.Degraded",
	"fleet.coordinated":        "Fleet.Coordinated",
	"fleet.available":          "Fleet.Available",
}

// sources is built once from snapshotFields and the types of Env,
// metrics.Snapshot and ErrorInfo. A variable whose field is missing or
// whose types match no conversion has no source: conditions naming it run
// on expr's VM (and TestVariableSources fails, asking for the entry).
var sources = buildSources()

func buildSources() map[string]varSource {
	out := map[string]varSource{
		"degradation.level": {conv: convDegradationLevel, k: kString},
		"degradation.age":   {conv: convDegradationAge, k: kFloat},
	}
	envTypes := map[string]reflect.Type{}
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := prefix + f.Tag.Get("expr")
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, name+".")
				continue
			}
			envTypes[name] = f.Type
		}
	}
	walk(reflect.TypeOf(Env{}), "")

	snapType := reflect.TypeOf(metrics.Snapshot{})
	for name, path := range snapshotFields {
		et, ok := envTypes[name]
		if !ok {
			continue
		}
		off, st, ok := fieldAt(snapType, path)
		if !ok {
			continue
		}
		if c, k := conversion(st, et); c != convNone {
			out[name] = varSource{conv: c, k: k, off: off}
		}
	}
	errType := reflect.TypeOf(ErrorInfo{})
	for i := 0; i < errType.NumField(); i++ {
		f := errType.Field(i)
		if c, k := conversion(f.Type, f.Type); c != convNone && c != convInt64 {
			out["error."+f.Tag.Get("expr")] = varSource{conv: c, k: k, off: f.Offset, onError: true}
		}
	}
	return out
}

// fieldAt returns the offset and type of the field at a dotted path.
func fieldAt(t reflect.Type, path string) (uintptr, reflect.Type, bool) {
	var off uintptr
	for _, name := range strings.Split(path, ".") {
		if t.Kind() != reflect.Struct {
			return 0, nil, false
		}
		f, ok := t.FieldByName(name)
		if !ok || len(f.Index) != 1 {
			return 0, nil, false
		}
		off += f.Offset
		t = f.Type
	}
	return off, t, true
}

// conversion returns the conversion from a Snapshot field of type from to
// an Env field of type to, as Env.fill does it.
func conversion(from, to reflect.Type) (conv, kind) {
	durationType := reflect.TypeOf(time.Duration(0))
	switch {
	case from == durationType && to.Kind() == reflect.Float64:
		return convMillis, kFloat
	case from.Kind() == reflect.Float64 && to.Kind() == reflect.Float64:
		return convFloat, kFloat
	case from.Kind() == reflect.Uint64 && to.Kind() == reflect.Int:
		return convCount, kInt
	case from.Kind() == reflect.Int && to.Kind() == reflect.Int:
		return convInt, kInt
	case from.Kind() == reflect.Int64 && from != durationType && to.Kind() == reflect.Int:
		return convInt64, kInt
	case from.Kind() == reflect.String && to.Kind() == reflect.String:
		return convString, kString
	case from.Kind() == reflect.Bool && to.Kind() == reflect.Bool:
		return convBool, kBool
	}
	return convNone, kNone
}

// degradationLevel is `degradation.level`: NONE when the snapshot has no
// level yet.
func degradationLevel(s *metrics.Snapshot) string {
	if s.Degradation.Level == "" {
		return "NONE"
	}
	return s.Degradation.Level
}

// degradationAge is `degradation.age` in milliseconds: 0 when the level
// has no start time or it lies after the snapshot's time.
func degradationAge(s *metrics.Snapshot) float64 {
	if !s.Degradation.Since.IsZero() && s.Time.After(s.Degradation.Since) {
		return ms(s.Time.Sub(s.Degradation.Since))
	}
	return 0
}
