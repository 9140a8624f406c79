package policy

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// BuiltinActions are the degradation actions lifeline implements itself.
// Anything else in a level's actions must be "plugin.action".
var BuiltinActions = []string{
	"reduce_logging_level",
	"disable_analytics",
	"increase_timeouts",
	"disable_non_critical_features",
	"reduce_concurrent_requests",
	"enable_aggressive_caching",
	"enable_read_only_mode",
	"shutdown_non_essential_services",
}

// BuiltinStrategies are the recovery strategies of the connection loop.
// Anything else in a rule's use must be "plugin.strategy".
var BuiltinStrategies = []string{"resume", "reconnect", "reidentify", "restart_client"}

// DefaultRecoveryPriority is a recovery rule's priority when it sets none.
const DefaultRecoveryPriority = 100

// fatalCloseCodes are the gateway close codes after which reconnecting
// cannot help (authentication, sharding, API version, intents).
const fatalCloseCodes = "[4004, 4010, 4011, 4012, 4013, 4014]"

// levelMultipliers scale the thresholds shorthand: MINIMAL at the
// thresholds, then twice, four and eight times them.
var levelMultipliers = [numLevels]float64{0, 1, 2, 4, 8}

// defaultLevelActions are the actions the shorthand gives each level.
var defaultLevelActions = [numLevels][]string{
	Minimal:  {"reduce_logging_level", "disable_analytics"},
	Moderate: {"increase_timeouts", "disable_non_critical_features"},
	Severe:   {"reduce_concurrent_requests", "enable_aggressive_caching"},
	Critical: {"enable_read_only_mode", "shutdown_non_essential_services"},
}

func defaultThresholds() Thresholds {
	return Thresholds{Latency: time.Second, ErrorRate: 0.1, ConsecutiveErrors: 5, RecoveryThreshold: 0.5}
}

// levels generates the level rules of the shorthand. For level L with
// multiplier m (1, 2, 4, 8):
//
//	latency.heartbeat > m*latency || errors.rate > m*error_rate || errors.consecutive >= m*consecutive_errors
//
// (a rate term that would exceed 1 becomes errors.rate >= 1).
func (t Thresholds) levels() []LevelRule {
	out := make([]LevelRule, 0, numLevels-1)
	for l := Minimal; l <= Critical; l++ {
		m := levelMultipliers[l]
		rate := fmt.Sprintf("errors.rate > %s", formatNumber(round6(t.ErrorRate*m)))
		if t.ErrorRate*m >= 1 {
			rate = "errors.rate >= 1"
		}
		expr := fmt.Sprintf("latency.heartbeat > %s || %s || errors.consecutive >= %d",
			formatNumber(round6(ms(t.Latency)*m)), rate, int(math.Ceil(float64(t.ConsecutiveErrors)*m)))
		out = append(out, LevelRule{Level: l, When: generated(expr, false),
			Actions: append([]string(nil), defaultLevelActions[l]...), Generated: true})
	}
	return out
}

// recover generates the shorthand's recover condition: every metric under
// recovery_threshold times its MINIMAL threshold.
func (t Thresholds) recover() Condition {
	r := t.RecoveryThreshold
	return generated(fmt.Sprintf("latency.heartbeat < %s && errors.rate < %s && errors.consecutive < %s",
		formatNumber(round6(ms(t.Latency)*r)), formatNumber(round6(t.ErrorRate*r)),
		formatNumber(round6(float64(t.ConsecutiveErrors)*r))), false)
}

func round6(f float64) float64 { return math.Round(f*1e6) / 1e6 }

// mergeGenerated adds the generated levels the file did not declare.
func mergeGenerated(declared, gen []LevelRule) []LevelRule {
	var have [numLevels]bool
	for _, l := range declared {
		have[l.Level] = true
	}
	out := append([]LevelRule(nil), declared...)
	for _, g := range gen {
		if !have[g.Level] {
			out = append(out, g)
		}
	}
	sortLevels(out)
	return out
}

func sortLevels(ls []LevelRule) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].Level < ls[j-1].Level; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

func defaultThreshold(checkType string) Threshold {
	switch checkType {
	case CheckLatency:
		return Threshold{Set: true, IsDuration: true, Duration: time.Second}
	case CheckGateway:
		return Threshold{Set: true, IsDuration: true, Duration: 90 * time.Second}
	case CheckErrorRate:
		return Threshold{Set: true, Number: 0.1}
	}
	return Threshold{}
}

// DefaultRecoveryRules returns the rules used when a policy declares no
// recovery block, in priority order:
//
//	resume (10):         not fatal and the session is resumable: not after
//	                     close 1000, 1001, 4007, 4009, nor op 9 with d=false
//	                     (op 9 with d=true resumes: error.resumable)
//	reconnect (20):      not fatal
//	reidentify (30):     not fatal
//	restart_client (40): not fatal, and a timeout, a zombie, or 3+ failures in a row
func DefaultRecoveryRules() []RecoveryRule {
	notFatal := "!error.fatal && error.close_code not in " + fatalCloseCodes
	return []RecoveryRule{
		{Name: "resume", Priority: 10, Use: "resume", MaxAttempts: 3, Generated: true,
			When: generated(notFatal+` && error.close_code not in [1000, 1001, 4007, 4009] && (error.kind != "invalid_session" || error.resumable)`, true)},
		{Name: "reconnect", Priority: 20, Use: "reconnect", MaxAttempts: 3, Generated: true, When: generated(notFatal, true)},
		{Name: "reidentify", Priority: 30, Use: "reidentify", MaxAttempts: 2, Generated: true, When: generated(notFatal, true)},
		{Name: "restart_client", Priority: 40, Use: "restart_client", MaxAttempts: 1, Generated: true,
			When: generated(notFatal+` && (error.kind in ["handshake_timeout", "zombie"] || errors.consecutive >= 3)`, true)},
	}
}

func defaultChecks() []Check {
	return []Check{
		{Name: "latency", Type: CheckLatency, Threshold: defaultThreshold(CheckLatency), Generated: true},
		{Name: "gateway", Type: CheckGateway, Threshold: defaultThreshold(CheckGateway), Critical: true, Generated: true},
		{Name: "error_rate", Type: CheckErrorRate, Threshold: defaultThreshold(CheckErrorRate), Generated: true},
	}
}

// Default returns the built-in policy: what an empty policy file decodes
// to. policies/default.hcl spells the same values out with the reasons.
func Default() *Policy {
	t := defaultThresholds()
	p := &Policy{
		Connection: Connection{
			TokenEnv:             "DISCORD_TOKEN",
			Intents:              []string{"Guilds", "GuildMessages"},
			AutoReconnect:        true,
			MaxReconnectAttempts: 10,
			ReconnectDelay:       5 * time.Second,
			BackoffMultiplier:    2,
			MaxReconnectDelay:    5 * time.Minute,
			ZombieAfter:          1.4,
		},
		Health: Health{Enabled: true, Interval: 30 * time.Second, Timeout: 10 * time.Second, Retries: 3, Checks: defaultChecks()},
		CircuitBreaker: CircuitBreaker{
			FailureThreshold:  5,
			RecoveryThreshold: 3,
			OpenTimeout:       60 * time.Second,
			MonitoringPeriod:  5 * time.Minute,
			HalfOpenMaxCalls:  3,
			ResetTimeout:      2 * time.Minute,
			BackoffMultiplier: 2,
			MaxOpenTimeout:    10 * time.Minute,
		},
		Degradation: Degradation{
			Enabled:       true,
			RecoveryDelay: 30 * time.Second,
			Thresholds:    &t,
			Levels:        t.levels(),
			Recover:       t.recover(),
		},
		Recovery: DefaultRecoveryRules(),
	}
	p.compile()
	return p
}

// generated returns a condition lifeline wrote, compiled through a cache
// (the same few texts are generated for every decode).
func generated(expr string, recovery bool) Condition {
	key := genKey{expr, recovery}
	if p, ok := genCache.Load(key); ok {
		return Condition{Expr: expr, Generated: true, prog: p.(*program)}
	}
	prog, errs := compileCondition(expr, recovery, 0)
	if len(errs) > 0 {
		// Generated text comes from this package; a failure is a bug here.
		panic(fmt.Sprintf("policy: generated condition %q does not compile: %s", expr, errs[0].detail))
	}
	if genCount.Add(1) <= maxGenCache {
		genCache.Store(key, prog)
	}
	return Condition{Expr: expr, Generated: true, prog: prog}
}

type genKey struct {
	expr     string
	recovery bool
}

var (
	genCache sync.Map // genKey -> *program
	genCount atomic.Int64
)

// maxGenCache bounds the cache: thresholds edited on every reload would
// otherwise add entries forever.
const maxGenCache = 256

// describe is a short label of a level for reasons.
func (l Level) describe() string { return strings.ToLower(l.String()) }
