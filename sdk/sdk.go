package sdk

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Version is the version of this sdk, sent to the host when it asks a plugin
// what it serves.
const Version = "1.0.0"

// Kind is what a plugin does.
type Kind string

// The three plugin kinds.
const (
	// KindHealthCheck judges part of the bot's health (HealthCheck).
	KindHealthCheck Kind = "health_check"
	// KindRecoveryStrategy recovers from a connection failure
	// (RecoveryStrategy).
	KindRecoveryStrategy Kind = "recovery_strategy"
	// KindDegradationAction sheds load when a degradation level activates
	// (DegradationAction).
	KindDegradationAction Kind = "degradation_action"
)

// String returns the kind's name, e.g. "health_check".
func (k Kind) String() string { return string(k) }

// Info is how a plugin describes itself to the host.
type Info struct {
	// Name identifies the plugin within its kind in one binary. It starts
	// with a letter and has only letters, digits, '-' and '_'. A policy
	// names a health check by its check block's label (or uses the only
	// health check a binary serves), and an action or strategy as
	// "PLUGIN.NAME", where PLUGIN is the policy's plugin block label.
	Name string
	// Version is the plugin's own version, e.g. "1.2.0". Default: "0.0.0".
	Version string
	// Description is one line for `lifeline plugin check` and logs.
	Description string
	// Config lists the configuration keys the plugin reads. The host checks
	// the policy against it when it starts the plugin: a check block's
	// config (with the plugin block's) must have every required key, every
	// key must have its declared type, and a key that no plugin of the
	// binary declares is refused, so a typo in the policy is an error
	// rather than a silently ignored setting. Default: no keys.
	Config []ConfigField
}

// FieldType is the type of a configuration value, as it appears in the
// policy's HCL (and in JSON on the wire).
type FieldType int

// The configuration field types.
const (
	// Any accepts every value.
	Any FieldType = iota
	// String is a string.
	String
	// Number is a number (float64 in Go).
	Number
	// Bool is true or false.
	Bool
	// Duration is a string time.ParseDuration accepts, such as "1.5s".
	Duration
	// List is a list of values.
	List
	// Object is a map of string keys to values.
	Object
)

var fieldTypeNames = [...]string{"any", "string", "number", "bool", "duration", "list", "object"}

// String returns the type's name, e.g. "duration".
func (t FieldType) String() string {
	if t < 0 || int(t) >= len(fieldTypeNames) {
		return fmt.Sprintf("FieldType(%d)", int(t))
	}
	return fieldTypeNames[t]
}

// ConfigField describes one configuration key.
type ConfigField struct {
	// Name is the key.
	Name string
	// Type is the value's type. Default: Any.
	Type FieldType
	// Required makes the key mandatory. Default: false.
	Required bool
	// Description is one line for `lifeline plugin check` and the docs.
	Description string
	// Default is the value used when the key is absent; it is documentation
	// for the operator (the plugin applies its own defaults). Default: nil.
	Default any
}

// Threshold is the `threshold` of a policy's check block.
type Threshold struct {
	// Set is false when the check block gives no threshold.
	Set bool
	// IsDuration says the threshold was written as a duration; Duration
	// then holds it and Value holds it in seconds.
	IsDuration bool
	// Value is the threshold as a number (seconds for a duration).
	Value float64
	// Duration is the threshold as a duration when IsDuration.
	Duration time.Duration
}

// CheckRequest is one call of a health check.
type CheckRequest struct {
	// Snapshot is the bot's metrics at the tick the check runs for.
	Snapshot Snapshot
	// Config is the check block's config over the plugin block's config:
	// a key in both takes the check block's value. The map is the call's
	// own; the lists and objects in it are shared with other calls, so
	// they must not be changed.
	Config Config
	// Threshold is the check block's threshold.
	Threshold Threshold
	// Host calls back into lifeline.
	Host Host
}

// Result is a health check's verdict.
type Result struct {
	// Passed reports whether the check is satisfied.
	Passed bool
	// Value is what the check observed, in Unit.
	Value float64
	// Threshold is the limit Value was compared with, in Unit; 0 when none.
	Threshold float64
	// Unit names the unit of Value and Threshold, e.g. "s" or "ms".
	Unit string
	// Message is a short explanation, e.g. "db answered in 12ms".
	Message string
}

// HealthCheck is a plugin that judges part of the bot's health. Its results
// count in lifeline's health score like the built-in checks'.
type HealthCheck interface {
	// Info describes the check.
	Info() Info
	// Check judges and reports. An error counts as a failed check whose
	// message is the error's text. Check must return promptly once ctx is
	// done: the host stops waiting at its deadline.
	Check(ctx context.Context, req CheckRequest) (Result, error)
}

// ErrorInfo is the connection failure a recovery is for.
type ErrorInfo struct {
	// Message is the redacted, human-readable error text.
	Message string
	// CloseCode is the WebSocket close code; 0 when the error is not a close.
	CloseCode int
	// Kind is a stable class: "close", "dial", "timeout", "zombie",
	// "invalid_session", "rest", ...
	Kind string
	// Source is the component that reported it, e.g. "conn".
	Source string
	// Fatal is true when no automatic recovery should follow.
	Fatal bool
	// Resumable is op 9's d for an invalid session (Kind
	// "invalid_session"): Discord said the session may still be resumed.
	// False for every other error, and from hosts older than this field.
	Resumable bool
}

// RecoveryRequest is one call of a recovery strategy.
type RecoveryRequest struct {
	// Error is the failure to recover from.
	Error ErrorInfo
	// Snapshot is the bot's metrics when the failure was handled.
	Snapshot Snapshot
	// Config is the plugin block's config.
	Config Config
	// Attempt counts attempts of this strategy for this failure, from 1.
	Attempt int
	// Host calls back into lifeline: a strategy recovers by asking the
	// host to resume, reconnect or re-identify.
	Host Host
}

// RecoveryStrategy is a plugin that recovers the connection.
type RecoveryStrategy interface {
	// Info describes the strategy.
	Info() Info
	// Applies reports whether the strategy wants to handle this failure.
	// The policy's recovery rule has already matched; Applies is the
	// strategy's own, finer judgement.
	Applies(ctx context.Context, req RecoveryRequest) (bool, error)
	// Recover tries to recover. A nil error means the attempt was made (for
	// example the host accepted a resume request); an error is reported and
	// the host moves on to the next strategy.
	Recover(ctx context.Context, req RecoveryRequest) error
}

// ActionRequest is one call of a degradation action.
type ActionRequest struct {
	// Level is the degradation level being entered (Apply) or left
	// (Rollback): "MINIMAL", "MODERATE", "SEVERE" or "CRITICAL".
	Level string
	// Snapshot is the bot's metrics when the level changed.
	Snapshot Snapshot
	// Config is the plugin block's config.
	Config Config
	// Host calls back into lifeline, e.g. to turn a feature flag off.
	Host Host
}

// DegradationAction is a plugin that sheds load when a degradation level
// activates and restores it when the level is left.
type DegradationAction interface {
	// Info describes the action.
	Info() Info
	// Apply takes the action for the level being entered.
	Apply(ctx context.Context, req ActionRequest) error
	// Rollback undoes Apply when the level is left.
	Rollback(ctx context.Context, req ActionRequest) error
}

// Plugins is everything one binary serves; Serve takes it.
type Plugins struct {
	// HealthChecks are the health checks the binary serves.
	HealthChecks []HealthCheck
	// RecoveryStrategies are the recovery strategies the binary serves.
	RecoveryStrategies []RecoveryStrategy
	// DegradationActions are the degradation actions the binary serves.
	DegradationActions []DegradationAction
}

// Descriptor is one served plugin as the host sees it: its Info and kind.
type Descriptor struct {
	Info
	// Kind is the plugin's kind.
	Kind Kind
}

// ErrInvalidPlugins is returned (wrapped) by Plugins.Validate, and makes
// Serve exit, when a binary's plugins cannot be served: none at all, a nil
// plugin, an invalid or duplicate name, or an invalid config schema.
var ErrInvalidPlugins = errors.New("invalid plugins")

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// ValidName reports whether name is a valid plugin name: a letter, then
// letters, digits, '-' and '_'.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Descriptors lists every plugin in p with its kind, health checks first,
// then recovery strategies, then degradation actions, each in order.
// A nil plugin is skipped.
func (p Plugins) Descriptors() []Descriptor {
	var out []Descriptor
	add := func(info Info, k Kind) {
		if info.Version == "" {
			info.Version = "0.0.0"
		}
		out = append(out, Descriptor{Info: info, Kind: k})
	}
	for _, c := range p.HealthChecks {
		if c != nil {
			add(c.Info(), KindHealthCheck)
		}
	}
	for _, s := range p.RecoveryStrategies {
		if s != nil {
			add(s.Info(), KindRecoveryStrategy)
		}
	}
	for _, a := range p.DegradationActions {
		if a != nil {
			add(a.Info(), KindDegradationAction)
		}
	}
	return out
}

// Validate checks that p can be served: at least one plugin, none nil,
// valid names unique within each kind, and valid config schemas (field names
// unique and non-empty, known types). The error wraps ErrInvalidPlugins.
func (p Plugins) Validate() error {
	n := len(p.HealthChecks) + len(p.RecoveryStrategies) + len(p.DegradationActions)
	if n == 0 {
		return fmt.Errorf("sdk: %w: no plugins to serve", ErrInvalidPlugins)
	}
	for i, c := range p.HealthChecks {
		if c == nil {
			return fmt.Errorf("sdk: %w: HealthChecks[%d] is nil", ErrInvalidPlugins, i)
		}
	}
	for i, s := range p.RecoveryStrategies {
		if s == nil {
			return fmt.Errorf("sdk: %w: RecoveryStrategies[%d] is nil", ErrInvalidPlugins, i)
		}
	}
	for i, a := range p.DegradationActions {
		if a == nil {
			return fmt.Errorf("sdk: %w: DegradationActions[%d] is nil", ErrInvalidPlugins, i)
		}
	}
	seen := map[Kind]map[string]bool{}
	for _, d := range p.Descriptors() {
		if err := d.Validate(); err != nil {
			return err
		}
		if seen[d.Kind] == nil {
			seen[d.Kind] = map[string]bool{}
		}
		if seen[d.Kind][d.Name] {
			return fmt.Errorf("sdk: %w: two %s plugins are named %q", ErrInvalidPlugins, d.Kind, d.Name)
		}
		seen[d.Kind][d.Name] = true
	}
	return nil
}

// Validate checks one descriptor: a known kind, a valid name, and a valid
// config schema. The error wraps ErrInvalidPlugins.
func (d Descriptor) Validate() error {
	switch d.Kind {
	case KindHealthCheck, KindRecoveryStrategy, KindDegradationAction:
	default:
		return fmt.Errorf("sdk: %w: plugin %q has unknown kind %q", ErrInvalidPlugins, d.Name, d.Kind)
	}
	if !ValidName(d.Name) {
		return fmt.Errorf("sdk: %w: %s name %q: a name starts with a letter and has only letters, digits, - and _", ErrInvalidPlugins, d.Kind, d.Name)
	}
	fields := map[string]bool{}
	for _, f := range d.Config {
		if f.Name == "" {
			return fmt.Errorf("sdk: %w: %s %q has a config field with no name", ErrInvalidPlugins, d.Kind, d.Name)
		}
		if fields[f.Name] {
			return fmt.Errorf("sdk: %w: %s %q declares config field %q twice", ErrInvalidPlugins, d.Kind, d.Name, f.Name)
		}
		fields[f.Name] = true
		if f.Type < Any || f.Type > Object {
			return fmt.Errorf("sdk: %w: %s %q: config field %q has unknown type %d", ErrInvalidPlugins, d.Kind, d.Name, f.Name, int(f.Type))
		}
	}
	return nil
}
