package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// Kind is the type of a setting's value.
type Kind uint8

// The kinds of settings.
const (
	// KindBool is true or false.
	KindBool Kind = iota + 1
	// KindInt is a whole number.
	KindInt
	// KindNumber is a decimal number.
	KindNumber
	// KindDuration is a Go duration such as "30s" or "1m30s".
	KindDuration
	// KindIntents is a list of gateway intent names.
	KindIntents
	// KindShards is "auto" or a whole number of shards.
	KindShards
	// KindToken is the bot token: read from the environment or a Go
	// option, never from a policy file, never printed.
	KindToken
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindBool:
		return "bool"
	case KindInt:
		return "int"
	case KindNumber:
		return "number"
	case KindDuration:
		return "duration"
	case KindIntents:
		return "intents"
	case KindShards:
		return "shards"
	case KindToken:
		return "token"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Setting describes one scalar setting: its key (the policy block path
// and attribute), the environment variable that sets it, and what a value
// must look like. Settings returns the table; environment variables,
// options, Config.Sources and the table in docs/configuration.md all come
// from it.
type Setting struct {
	// Key is the block path and attribute, e.g.
	// "connection.max_reconnect_attempts" or
	// "degradation.thresholds.latency".
	Key string
	// Env is the environment variable, e.g. "DISCORD_MAX_RECONNECT_ATTEMPTS".
	Env string
	// Kind is the value's type.
	Kind Kind
	// Min and Max are the bounds core/policy enforces, written as in a
	// policy ("0", "1h"); empty when a side has no bound. They are shown
	// in messages and docs; core/policy does the checking (a test keeps
	// the two in step).
	Min, Max string
	// Note adds meaning to some values, e.g. "0 = no limit".
	Note string
	// Doc says what the setting does, in one line.
	Doc string

	get func(p *policy.Policy) (cty.Value, bool)
}

// Want says what a value must look like, e.g. "a whole number from 0 to
// 1000000 (0 = no limit)".
func (s Setting) Want() string {
	var w, example string
	switch s.Kind {
	case KindBool:
		w = "true or false"
	case KindInt:
		w = "a whole number"
	case KindNumber:
		w = "a number"
	case KindDuration:
		w, example = "a duration", `e.g. "500ms", "30s" or "5m"`
	case KindIntents:
		w, example = "comma-separated gateway intent names", `e.g. "Guilds,GuildMessages"`
	case KindShards:
		w = `"auto" or a whole number of shards`
	case KindToken:
		w = "the bot token"
	}
	switch {
	case s.Min != "" && s.Max != "":
		w += " from " + s.Min + " to " + s.Max
	case s.Min != "":
		w += " ≥ " + s.Min
	case s.Max != "":
		w += " ≤ " + s.Max
	}
	if s.Note != "" {
		w += " (" + s.Note + ")"
	}
	if example != "" {
		w += ", " + example
	}
	return w
}

// Default returns the built-in default as written in a policy, e.g. "10"
// or `"5m"`; "" when the setting has none (the token).
func (s Setting) Default() string {
	if s.get == nil {
		return ""
	}
	v, ok := s.get(policy.Default())
	if !ok {
		return ""
	}
	return exprText(v)
}

// path splits Key into the block path and the attribute.
func (s Setting) path() ([]string, string) {
	parts := strings.Split(s.Key, ".")
	return parts[:len(parts)-1], parts[len(parts)-1]
}

// settings is THE table. Order: as in a policy file.
var settings = []Setting{
	{Key: "connection.token", Env: "DISCORD_TOKEN", Kind: KindToken,
		Doc: "The bot token. Only from the environment (or WithToken); a policy names the variable with token = env(\"NAME\"), and that variable is read instead."},
	{Key: "connection.intents", Env: "DISCORD_INTENTS", Kind: KindIntents,
		Doc: "Gateway intents. Case, '_' and '-' are ignored; the groups All and AllWithoutPrivileged are accepted.",
		get: func(p *policy.Policy) (cty.Value, bool) { return strList(p.Connection.Intents), true }},
	{Key: "connection.auto_reconnect", Env: "DISCORD_AUTO_RECONNECT", Kind: KindBool,
		Doc: "Reconnect after a non-fatal failure.",
		get: func(p *policy.Policy) (cty.Value, bool) { return cty.BoolVal(p.Connection.AutoReconnect), true }},
	{Key: "connection.max_reconnect_attempts", Env: "DISCORD_MAX_RECONNECT_ATTEMPTS", Kind: KindInt, Min: "0", Max: "1000000", Note: "0 = no limit",
		Doc: "Consecutive reconnect attempts before giving up.",
		get: func(p *policy.Policy) (cty.Value, bool) { return intVal(p.Connection.MaxReconnectAttempts), true }},
	{Key: "connection.reconnect_delay", Env: "DISCORD_RECONNECT_DELAY", Kind: KindDuration, Min: "0s", Max: "1h",
		Doc: "First delay before reconnecting.",
		get: func(p *policy.Policy) (cty.Value, bool) { return durVal(p.Connection.ReconnectDelay), true }},
	{Key: "connection.backoff_multiplier", Env: "DISCORD_BACKOFF_MULTIPLIER", Kind: KindNumber, Min: "1", Max: "10",
		Doc: "Growth of the reconnect delay after each failed attempt.",
		get: func(p *policy.Policy) (cty.Value, bool) { return numVal(p.Connection.BackoffMultiplier), true }},
	{Key: "connection.max_reconnect_delay", Env: "DISCORD_MAX_RECONNECT_DELAY", Kind: KindDuration, Min: "0s", Max: "24h", Note: "not less than the reconnect delay",
		Doc: "Cap of the reconnect delay.",
		get: func(p *policy.Policy) (cty.Value, bool) { return durVal(p.Connection.MaxReconnectDelay), true }},
	{Key: "connection.zombie_after", Env: "DISCORD_ZOMBIE_AFTER", Kind: KindNumber, Min: "1", Max: "10",
		Doc: "Heartbeat intervals without an ACK after which the connection counts as a zombie.",
		get: func(p *policy.Policy) (cty.Value, bool) { return numVal(p.Connection.ZombieAfter), true }},
	{Key: "connection.shards", Env: "DISCORD_SHARDS", Kind: KindShards, Min: "1", Max: "65535",
		Doc: "Shard count; auto asks Discord (GET /gateway/bot).",
		get: func(p *policy.Policy) (cty.Value, bool) { return shardsVal(p.Connection.Shards), true }},

	{Key: "health.enabled", Env: "LIFELINE_HEALTH_ENABLED", Kind: KindBool,
		Doc: "Run the health monitor.",
		get: func(p *policy.Policy) (cty.Value, bool) { return cty.BoolVal(p.Health.Enabled), true }},
	{Key: "health.interval", Env: "LIFELINE_HEALTH_INTERVAL", Kind: KindDuration, Min: "1s", Max: "1h",
		Doc: "Time between health check rounds.",
		get: func(p *policy.Policy) (cty.Value, bool) { return durVal(p.Health.Interval), true }},
	{Key: "health.timeout", Env: "LIFELINE_HEALTH_TIMEOUT", Kind: KindDuration, Min: "10ms", Max: "1h", Note: "shorter than the interval",
		Doc: "Limit of one check attempt.",
		get: func(p *policy.Policy) (cty.Value, bool) { return durVal(p.Health.Timeout), true }},
	{Key: "health.retries", Env: "LIFELINE_HEALTH_RETRIES", Kind: KindInt, Min: "0", Max: "10",
		Doc: "Retries of a failed check within a round.",
		get: func(p *policy.Policy) (cty.Value, bool) { return intVal(p.Health.Retries), true }},

	{Key: "circuit_breaker.failure_threshold", Env: "LIFELINE_BREAKER_FAILURE_THRESHOLD", Kind: KindInt, Min: "1", Max: "100000",
		Doc: "Failures within the monitoring period that open the circuit.",
		get: func(p *policy.Policy) (cty.Value, bool) { return intVal(p.CircuitBreaker.FailureThreshold), true }},
	{Key: "circuit_breaker.recovery_threshold", Env: "LIFELINE_BREAKER_RECOVERY_THRESHOLD", Kind: KindInt, Min: "1", Max: "1000",
		Doc: "Successful probes that close it again.",
		get: func(p *policy.Policy) (cty.Value, bool) { return intVal(p.CircuitBreaker.RecoveryThreshold), true }},
	{Key: "circuit_breaker.open_timeout", Env: "LIFELINE_BREAKER_OPEN_TIMEOUT", Kind: KindDuration, Min: "100ms", Max: "24h",
		Doc: "Time the circuit stays open before probing.",
		get: func(p *policy.Policy) (cty.Value, bool) { return durVal(p.CircuitBreaker.OpenTimeout), true }},
	{Key: "circuit_breaker.monitoring_period", Env: "LIFELINE_BREAKER_MONITORING_PERIOD", Kind: KindDuration, Min: "1s", Max: "24h",
		Doc: "Sliding window in which failures are counted.",
		get: func(p *policy.Policy) (cty.Value, bool) { return durVal(p.CircuitBreaker.MonitoringPeriod), true }},
	{Key: "circuit_breaker.half_open_max_calls", Env: "LIFELINE_BREAKER_HALF_OPEN_MAX_CALLS", Kind: KindInt, Min: "1", Max: "1000",
		Doc: "Probes allowed at once while half-open.",
		get: func(p *policy.Policy) (cty.Value, bool) { return intVal(p.CircuitBreaker.HalfOpenMaxCalls), true }},
	{Key: "circuit_breaker.reset_timeout", Env: "LIFELINE_BREAKER_RESET_TIMEOUT", Kind: KindDuration, Min: "1s", Max: "24h",
		Doc: "Quiet time after which old failures are forgotten.",
		get: func(p *policy.Policy) (cty.Value, bool) { return durVal(p.CircuitBreaker.ResetTimeout), true }},
	{Key: "circuit_breaker.backoff_multiplier", Env: "LIFELINE_BREAKER_BACKOFF_MULTIPLIER", Kind: KindNumber, Min: "1", Max: "10",
		Doc: "Growth of the open time on each consecutive re-open.",
		get: func(p *policy.Policy) (cty.Value, bool) { return numVal(p.CircuitBreaker.BackoffMultiplier), true }},
	{Key: "circuit_breaker.max_open_timeout", Env: "LIFELINE_BREAKER_MAX_OPEN_TIMEOUT", Kind: KindDuration, Min: "100ms", Max: "168h", Note: "not less than the open timeout",
		Doc: "Cap of the backed-off open time.",
		get: func(p *policy.Policy) (cty.Value, bool) { return durVal(p.CircuitBreaker.MaxOpenTimeout), true }},

	{Key: "degradation.enabled", Env: "LIFELINE_DEGRADATION_ENABLED", Kind: KindBool,
		Doc: "Degrade features when the policy's level conditions hold.",
		get: func(p *policy.Policy) (cty.Value, bool) { return cty.BoolVal(p.Degradation.Enabled), true }},
	{Key: "degradation.recovery_delay", Env: "LIFELINE_DEGRADATION_RECOVERY_DELAY", Kind: KindDuration, Min: "0s", Max: "1h",
		Doc: "Time the recover condition must hold before a level steps down.",
		get: func(p *policy.Policy) (cty.Value, bool) { return durVal(p.Degradation.RecoveryDelay), true }},
	{Key: "degradation.recovery_threshold", Env: "LIFELINE_DEGRADATION_RECOVERY_THRESHOLD", Kind: KindNumber, Min: "0.01", Max: "1",
		Doc: "Thresholds shorthand: fraction of each threshold every metric must be under to recover.",
		get: func(p *policy.Policy) (cty.Value, bool) {
			if t := p.Degradation.Thresholds; t != nil {
				return numVal(t.RecoveryThreshold), true
			}
			return cty.NilVal, false
		}},
	{Key: "degradation.thresholds.latency", Env: "LIFELINE_DEGRADATION_LATENCY", Kind: KindDuration, Min: "1ms", Max: "1h",
		Doc: "Thresholds shorthand: heartbeat latency that means MINIMAL (2x, 4x, 8x for the next levels).",
		get: func(p *policy.Policy) (cty.Value, bool) {
			if t := p.Degradation.Thresholds; t != nil {
				return durVal(t.Latency), true
			}
			return cty.NilVal, false
		}},
	{Key: "degradation.thresholds.error_rate", Env: "LIFELINE_DEGRADATION_ERROR_RATE", Kind: KindNumber, Min: "0.001", Max: "1",
		Doc: "Thresholds shorthand: error rate that means MINIMAL.",
		get: func(p *policy.Policy) (cty.Value, bool) {
			if t := p.Degradation.Thresholds; t != nil {
				return numVal(t.ErrorRate), true
			}
			return cty.NilVal, false
		}},
	{Key: "degradation.thresholds.consecutive_errors", Env: "LIFELINE_DEGRADATION_CONSECUTIVE_ERRORS", Kind: KindInt, Min: "1", Max: "1000000",
		Doc: "Thresholds shorthand: failures in a row that mean MINIMAL.",
		get: func(p *policy.Policy) (cty.Value, bool) {
			if t := p.Degradation.Thresholds; t != nil {
				return intVal(t.ConsecutiveErrors), true
			}
			return cty.NilVal, false
		}},
}

// Settings returns the table of scalar settings, in policy order. The
// slice is a copy.
func Settings() []Setting {
	return append([]Setting(nil), settings...)
}

// LookupSetting finds a setting by key ("health.interval") or by
// environment variable ("LIFELINE_HEALTH_INTERVAL").
func LookupSetting(name string) (Setting, bool) {
	for _, s := range settings {
		if s.Key == name || s.Env == name {
			return s, true
		}
	}
	return Setting{}, false
}

func settingKeys() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.Key
	}
	return out
}

// ---- values ----

func strList(xs []string) cty.Value {
	if len(xs) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	vals := make([]cty.Value, len(xs))
	for i, x := range xs {
		vals[i] = cty.StringVal(x)
	}
	return cty.ListVal(vals)
}

func intVal(i int) cty.Value           { return cty.NumberIntVal(int64(i)) }
func numVal(f float64) cty.Value       { return cty.NumberFloatVal(f) }
func durVal(d time.Duration) cty.Value { return cty.StringVal(FormatDuration(d)) }

func shardsVal(n int) cty.Value {
	if n == 0 {
		return cty.StringVal("auto")
	}
	return intVal(n)
}

// exprText renders a value as an HCL expression.
func exprText(v cty.Value) string {
	return strings.TrimSpace(string(hclwrite.TokensForValue(v).Bytes()))
}

// FormatDuration writes d the shortest way Go's time.ParseDuration reads
// back: "5m" rather than "5m0s", "1h30m", "1.5s", "250ms", "0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseText reads a value of the setting from text (an environment
// variable, or a string given to Set). It returns the value as an HCL
// expression's value, or an error saying what was expected.
func (s Setting) parseText(raw string) (cty.Value, error) {
	text := strings.TrimSpace(raw)
	want := func() error { return fmt.Errorf("want %s", s.Want()) }
	switch s.Kind {
	case KindBool:
		switch strings.ToLower(text) {
		case "1", "t", "true", "yes", "y", "on":
			return cty.True, nil
		case "0", "f", "false", "no", "n", "off":
			return cty.False, nil
		}
		return cty.NilVal, want()
	case KindInt:
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return cty.NilVal, want()
		}
		return cty.NumberIntVal(i), nil
	case KindNumber:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return cty.NilVal, want()
		}
		return cty.NumberFloatVal(f), nil
	case KindDuration:
		d, err := time.ParseDuration(text)
		if err != nil {
			return cty.NilVal, want()
		}
		return durVal(d), nil
	case KindIntents:
		var names []string
		for _, n := range strings.Split(text, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return cty.NilVal, want()
		}
		mask, err := conn.ParseIntents(names)
		if err != nil {
			return cty.NilVal, intentError(err)
		}
		return strList(conn.IntentNames(mask)), nil
	case KindShards:
		if strings.EqualFold(text, "auto") {
			return cty.StringVal("auto"), nil
		}
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return cty.NilVal, want()
		}
		return cty.NumberIntVal(i), nil
	}
	return cty.NilVal, fmt.Errorf("%s cannot be set from text", s.Key)
}

// intentError drops core/conn's package prefix from its message.
func intentError(err error) error {
	return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "conn: "))
}

// goValue converts a Go value given to Set. Strings are read like
// environment variables.
func (s Setting) goValue(v any) (cty.Value, error) {
	if str, ok := v.(string); ok {
		return s.parseText(str)
	}
	bad := func() error {
		return fmt.Errorf("want %s; got %T", s.Want(), v)
	}
	rv := reflect.ValueOf(v)
	switch s.Kind {
	case KindBool:
		if b, ok := v.(bool); ok {
			return cty.BoolVal(b), nil
		}
	case KindInt, KindShards:
		if i, ok := asInt(rv); ok {
			if s.Kind == KindShards && i == 0 {
				return cty.StringVal("auto"), nil
			}
			return cty.NumberIntVal(i), nil
		}
	case KindNumber:
		if i, ok := asInt(rv); ok {
			return cty.NumberIntVal(i), nil
		}
		if rv.IsValid() && (rv.Kind() == reflect.Float64 || rv.Kind() == reflect.Float32) {
			f := rv.Float()
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return cty.NilVal, bad()
			}
			return cty.NumberFloatVal(f), nil
		}
	case KindDuration:
		if d, ok := v.(time.Duration); ok {
			return durVal(d), nil
		}
	case KindIntents:
		switch x := v.(type) {
		case []string:
			mask, err := conn.ParseIntents(x)
			if err != nil {
				return cty.NilVal, intentError(err)
			}
			return strList(conn.IntentNames(mask)), nil
		case discordgo.Intent:
			if u := conn.UnknownIntentBits(x); u != 0 {
				return cty.NilVal, fmt.Errorf("intent bits %s are not gateway intents", conn.FormatIntents(u))
			}
			return strList(conn.IntentNames(x)), nil
		}
	}
	return cty.NilVal, bad()
}

// asInt accepts Go's integer kinds (not time.Duration, which is a
// duration, not a count).
func asInt(rv reflect.Value) (int64, bool) {
	if !rv.IsValid() || rv.Type() == reflect.TypeOf(time.Duration(0)) {
		return 0, false
	}
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() > math.MaxInt64 {
			return 0, false
		}
		return int64(rv.Uint()), true
	}
	return 0, false
}
