package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Policy is one decoded, validated and compiled policy file. Every field
// holds its effective value: attributes the file leaves out hold their
// documented default, and each block's Ranges says which attributes the
// file set and where (so a configuration layer can tell defaults from
// operator choices and point diagnostics at the file).
//
// A Policy is immutable once Decode returns it and safe for concurrent use;
// its Evaluate and ChooseRecovery methods never touch the rest of the core.
type Policy struct {
	// Filename is the name the source was decoded under.
	Filename string

	// Connection is the `connection` block.
	Connection Connection
	// Health is the `health` block.
	Health Health
	// CircuitBreaker is the `circuit_breaker` block.
	CircuitBreaker CircuitBreaker
	// Degradation is the `degradation` block.
	Degradation Degradation
	// Recovery holds the recovery rules sorted by Priority (ascending; ties
	// keep declaration order). When the file declares none, the built-in
	// rules of DefaultRecoveryRules are used and marked Generated.
	Recovery []RecoveryRule
	// Plugins holds the declared plugins in declaration order.
	Plugins []Plugin
	// Coordination is the `coordination "nats"` block: the fleet this
	// process belongs to. Default: nil, the process runs its shards alone
	// (in-process coordination).
	Coordination *Coordination

	// levels is the compiled degradation ladder, indexed by Level.
	levels [numLevels]compiledLevel
	pool   *evalPool
	// degradeGroups and recoveryGroups are the Env sections the
	// degradation and recovery conditions read.
	degradeGroups, recoveryGroups group
	// nativeDegrade and nativeRecovery are true when every degradation
	// (recovery) condition runs natively: Evaluate (ChooseRecovery) then
	// needs no Evaluator.
	nativeDegrade, nativeRecovery bool
	// recoverFlat is Degradation.Recover's flat form, if it has one;
	// allFlat is true when degradation is enabled and every level and the
	// recover condition have one.
	recoverFlat flatCond
	allFlat     bool
	// ladder is true when each declared level's condition implies the
	// condition of the level below it (see decide).
	ladder bool
}

// Ranges records where a block and its attributes are in the source.
// Attributes the file does not set are absent from Attrs.
type Ranges struct {
	// Block is the block's definition range (its type and labels); empty
	// for a block the file does not contain.
	Block hcl.Range
	// Attrs maps an attribute name to the range of its whole definition
	// (name = value).
	Attrs map[string]hcl.Range
}

// Has reports whether the file set the attribute name.
func (r Ranges) Has(name string) bool {
	_, ok := r.Attrs[name]
	return ok
}

// Of returns the range of attribute name, or the block's range when the
// file does not set it.
func (r Ranges) Of(name string) hcl.Range {
	if a, ok := r.Attrs[name]; ok {
		return a
	}
	return r.Block
}

// Names returns the attributes the file set, sorted.
func (r Ranges) Names() []string {
	out := make([]string, 0, len(r.Attrs))
	for n := range r.Attrs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (r *Ranges) set(name string, rng hcl.Range) {
	if r.Attrs == nil {
		r.Attrs = make(map[string]hcl.Range)
	}
	r.Attrs[name] = rng
}

// Connection is the `connection` block: how lifeline connects to the
// gateway and reconnects after a failure.
type Connection struct {
	// TokenEnv names the environment variable the bot token is read from
	// (`token = env("NAME")`). The policy never holds the token itself.
	// Default: "DISCORD_TOKEN".
	TokenEnv string
	// Intents are the gateway intents, canonical names in the order given.
	// Default: ["Guilds", "GuildMessages"].
	Intents []string
	// AutoReconnect makes lifeline reconnect after a non-fatal failure.
	// Default: true.
	AutoReconnect bool
	// MaxReconnectAttempts bounds consecutive reconnect attempts; 0 means
	// no bound. Default: 10.
	MaxReconnectAttempts int
	// ReconnectDelay is the first delay before reconnecting. Default: 5s.
	ReconnectDelay time.Duration
	// BackoffMultiplier multiplies the delay after each failed attempt.
	// Default: 2.
	BackoffMultiplier float64
	// MaxReconnectDelay caps the delay. Default: 5m.
	MaxReconnectDelay time.Duration
	// ZombieAfter is how many heartbeat intervals without an ACK mark the
	// connection as a zombie. Default: 1.4.
	ZombieAfter float64
	// Shards is the shard count; 0 means "auto" (Discord's recommendation
	// from /gateway/bot). Default: 0.
	Shards int

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// IntentMask returns the gateway intents bit field (the value of
// discordgo.Intent) for c.Intents. Unknown names, which Decode rejects,
// contribute nothing.
func (c Connection) IntentMask() int {
	mask := 0
	for _, n := range c.Intents {
		if in, ok := LookupIntent(n); ok {
			mask |= in.Bit
		}
	}
	return mask
}

// Health is the `health` block: the health monitor's schedule and checks.
type Health struct {
	// Enabled turns the monitor on. Default: true.
	Enabled bool
	// Interval is the time between check rounds. Default: 30s.
	Interval time.Duration
	// Timeout bounds one check attempt. Default: 10s.
	Timeout time.Duration
	// Retries is how many times a failed check is retried within a round.
	// Default: 3.
	Retries int
	// Checks are the `check "NAME"` blocks in declaration order. When the
	// file declares none, the built-in latency, gateway and error_rate
	// checks are used and marked Generated.
	Checks []Check

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// Built-in health check types.
const (
	CheckLatency   = "latency"
	CheckGateway   = "gateway"
	CheckErrorRate = "error_rate"
)

// Check is one `check "NAME"` block.
type Check struct {
	// Name is the block label.
	Name string
	// Type is the built-in check type (latency, gateway or error_rate);
	// empty for a plugin check.
	Type string
	// Plugin names the declared plugin serving this check; empty for a
	// built-in check.
	Plugin string
	// Threshold is the limit the check compares against. For latency and
	// gateway it is a duration (heartbeat round trip, time since the last
	// ACK); for error_rate a number in [0, 1]. Defaults: latency 1s,
	// gateway 1m, error_rate 0.1; plugin checks have none unless given.
	Threshold Threshold
	// Critical makes a failure of this check mean CRITICAL health.
	// Default: false.
	Critical bool
	// Config is passed to the check as is (plugin checks), JSON-shaped:
	// string, float64, bool, []any, map[string]any or nil.
	Config map[string]any
	// Generated is true for a check lifeline added by default.
	Generated bool

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// Threshold is a check's limit: a duration or a plain number.
type Threshold struct {
	// Set is false when the check has no threshold.
	Set bool
	// IsDuration says which of Duration and Number holds the value.
	IsDuration bool
	// Duration is the value when IsDuration.
	Duration time.Duration
	// Number is the value otherwise.
	Number float64
}

// String formats the threshold as it would be written in a policy.
func (t Threshold) String() string {
	switch {
	case !t.Set:
		return ""
	case t.IsDuration:
		return t.Duration.String()
	default:
		return formatNumber(t.Number)
	}
}

// CircuitBreaker is the `circuit_breaker` block: the settings of the
// breaker guarding gateway connects and REST calls (core/breaker).
type CircuitBreaker struct {
	// FailureThreshold is the failures within MonitoringPeriod that open
	// the circuit. Default: 5.
	FailureThreshold int
	// RecoveryThreshold is the successful probes that close it again.
	// Default: 3.
	RecoveryThreshold int
	// OpenTimeout is how long the circuit stays open before probes.
	// Default: 60s.
	OpenTimeout time.Duration
	// MonitoringPeriod is the sliding failure window. Default: 5m.
	MonitoringPeriod time.Duration
	// HalfOpenMaxCalls is how many probes run at once in HALF_OPEN.
	// Default: 3.
	HalfOpenMaxCalls int
	// ResetTimeout is the quiet time in CLOSED after which old failures
	// are forgotten. Default: 2m.
	ResetTimeout time.Duration
	// BackoffMultiplier multiplies OpenTimeout on each consecutive
	// re-open. Default: 2.
	BackoffMultiplier float64
	// MaxOpenTimeout caps the backed-off open time. Default: 10m.
	MaxOpenTimeout time.Duration

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// Degradation is the `degradation` block: when to degrade, how far, and
// when to come back.
type Degradation struct {
	// Enabled turns degradation on. Default: true.
	Enabled bool
	// RecoveryDelay is how long the recover condition must hold before the
	// level steps down (hysteresis). Default: 30s.
	RecoveryDelay time.Duration
	// Thresholds is the seed-style shorthand, when the file uses it (or
	// when it declares neither thresholds nor levels: then the defaults).
	Thresholds *Thresholds
	// Levels are the declared or generated levels, least severe first.
	Levels []LevelRule
	// Recover is the condition under which the level may step down.
	Recover Condition

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// Thresholds is the seed's `thresholds { ... }` shorthand. It generates the
// conditions of every level the file does not declare, and the recover
// condition when there is no `recover` block; docs/policy.md gives the
// formulas.
type Thresholds struct {
	// Latency is the heartbeat round trip that means MINIMAL. Default: 1s.
	Latency time.Duration
	// ErrorRate is the error rate that means MINIMAL. Default: 0.1.
	ErrorRate float64
	// ConsecutiveErrors is the failure streak that means MINIMAL.
	// Default: 5.
	ConsecutiveErrors int
	// RecoveryThreshold is the fraction of each threshold every metric
	// must be under for the recover condition. Default: 0.5.
	RecoveryThreshold float64

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// LevelRule is one `level "NAME"` block.
type LevelRule struct {
	// Level is the block's label as a Level.
	Level Level
	// When is the condition under which this level (at least) applies.
	When Condition
	// Actions are applied when the level is entered, in order; names are
	// built-in actions or "plugin.action".
	Actions []string
	// Generated is true for a level made from the thresholds shorthand.
	Generated bool

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// Condition is a compiled expr condition.
type Condition struct {
	// Expr is the condition's text; empty means "never" for a level and
	// "always" for a recovery rule.
	Expr string
	// Range is the range of the expression in the policy file (the string
	// literal, quotes included); empty for generated conditions.
	Range hcl.Range
	// Generated is true when lifeline wrote the condition (defaults or the
	// thresholds shorthand).
	Generated bool

	prog *program
}

// IsSet reports whether the condition has an expression.
func (c Condition) IsSet() bool { return c.Expr != "" }

// RecoveryRule is one `recovery "NAME"` block.
type RecoveryRule struct {
	// Name is the block label.
	Name string
	// Priority orders rules: lower runs first. Default: 100.
	Priority int
	// When is the condition over `error` and the snapshot; unset means
	// the rule always applies.
	When Condition
	// Use names the strategy: a built-in (resume, reconnect, reidentify,
	// restart_client) or "plugin.strategy". Default: the block's name.
	Use string
	// MaxAttempts caps attempts of this strategy for one failure.
	// Default: 3.
	MaxAttempts int
	// Generated is true for a built-in rule lifeline added by default.
	Generated bool

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// Plugin is one `plugin "NAME"` block.
type Plugin struct {
	// Name is the block label, used by checks, actions and strategies.
	Name string
	// Path is the plugin binary, relative to the policy file's directory
	// when not absolute.
	Path string
	// SHA256 is the expected hex checksum of the binary; empty means not
	// pinned.
	SHA256 string
	// Args are passed to the plugin process.
	Args []string
	// Config is handed to the plugin, JSON-shaped like Check.Config.
	Config map[string]any

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// Level is a degradation level. Levels are ordered: None < Minimal <
// Moderate < Severe < Critical.
type Level uint8

// The degradation levels.
const (
	None Level = iota
	Minimal
	Moderate
	Severe
	Critical

	numLevels = int(Critical) + 1
)

var levelNames = [numLevels]string{"NONE", "MINIMAL", "MODERATE", "SEVERE", "CRITICAL"}

// String returns the upper-case name, e.g. "MODERATE".
func (l Level) String() string {
	if int(l) < numLevels {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", uint8(l))
}

// ParseLevel accepts a level name in any case ("moderate", "MODERATE").
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if strings.EqualFold(n, s) {
			return Level(i), nil
		}
	}
	return None, fmt.Errorf("policy: unknown degradation level %q (want minimal, moderate, severe or critical): %w", s, ErrUnknownLevel)
}

// MarshalText implements encoding.TextMarshaler.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
