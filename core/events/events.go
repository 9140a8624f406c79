package events

import (
	"fmt"
	"time"
)

// Type names what happened.
type Type uint8

// The event types. The zero Type is not a valid event type; subscribing to
// it means "every type" (see All).
const (
	// All is used with Subscribe to receive every type.
	All Type = iota
	StateChanged
	HealthChanged
	CircuitBreakerTriggered
	DegradationActivated
	DegradationDeactivated
	ErrorOccurred
	RecoveryAttempted
	RecoveryCompleted
	PolicyReloaded
	PolicyReloadFailed
	PluginStarted
	PluginExited
	PluginLogsDropped

	numTypes // keep last
)

var typeNames = [numTypes]string{
	All:                     "ALL",
	StateChanged:            "STATE_CHANGED",
	HealthChanged:           "HEALTH_CHANGED",
	CircuitBreakerTriggered: "CIRCUIT_BREAKER_TRIGGERED",
	DegradationActivated:    "DEGRADATION_ACTIVATED",
	DegradationDeactivated:  "DEGRADATION_DEACTIVATED",
	ErrorOccurred:           "ERROR_OCCURRED",
	RecoveryAttempted:       "RECOVERY_ATTEMPTED",
	RecoveryCompleted:       "RECOVERY_COMPLETED",
	PolicyReloaded:          "POLICY_RELOADED",
	PolicyReloadFailed:      "POLICY_RELOAD_FAILED",
	PluginStarted:           "PLUGIN_STARTED",
	PluginExited:            "PLUGIN_EXITED",
	PluginLogsDropped:       "PLUGIN_LOGS_DROPPED",
}

// String returns the upper-case wire name, e.g. "STATE_CHANGED".
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Types returns every event type, in declaration order, without All.
func Types() []Type {
	out := make([]Type, 0, numTypes-1)
	for t := StateChanged; t < numTypes; t++ {
		out = append(out, t)
	}
	return out
}

// ParseType returns the Type whose String is s.
func ParseType(s string) (Type, error) {
	for t := All; t < numTypes; t++ {
		if typeNames[t] == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("events: unknown event type %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// NoShard is the Shard of an event that concerns the whole process.
const NoShard = -1

// Event is one thing that happened. Events are values: a listener may keep
// them; nobody mutates them after Publish.
type Event struct {
	Type  Type      `json:"type"`
	Time  time.Time `json:"time"`
	Shard int       `json:"shard"` // NoShard when process-wide
	Data  Data      `json:"data,omitempty"`
}

// New returns a process-wide event (Shard = NoShard) of data's type.
func New(at time.Time, data Data) Event {
	return Event{Type: data.EventType(), Time: at, Shard: NoShard, Data: data}
}

// ForShard returns an event of data's type that concerns one shard.
func ForShard(at time.Time, shard int, data Data) Event {
	return Event{Type: data.EventType(), Time: at, Shard: shard, Data: data}
}

// String gives a one-line, human-readable summary.
func (e Event) String() string {
	shard := "process"
	if e.Shard != NoShard {
		shard = fmt.Sprintf("shard %d", e.Shard)
	}
	if e.Data == nil {
		return fmt.Sprintf("%s %s", e.Type, shard)
	}
	return fmt.Sprintf("%s %s: %s", e.Type, shard, e.Data.Summary())
}

// Data is the typed payload of an Event. Each payload type belongs to one
// event Type, except Degradation and Recovery which serve two.
type Data interface {
	// EventType is the Type an event carrying this data has.
	EventType() Type
	// Summary is a short human-readable description.
	Summary() string
}

// StateChange is the data of STATE_CHANGED: a connection moved between
// states of the connection state machine.
type StateChange struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Cause string `json:"cause"`
}

func (StateChange) EventType() Type { return StateChanged }
func (d StateChange) Summary() string {
	return fmt.Sprintf("%s -> %s (%s)", d.From, d.To, d.Cause)
}

// HealthChange is the data of HEALTH_CHANGED: the health status moved.
type HealthChange struct {
	From  string  `json:"from"`
	To    string  `json:"to"`
	Score float64 `json:"score"`
	// Failing names the checks failing at the time of the change.
	Failing []string `json:"failing,omitempty"`
}

func (HealthChange) EventType() Type { return HealthChanged }
func (d HealthChange) Summary() string {
	return fmt.Sprintf("%s -> %s (score %.0f)", d.From, d.To, d.Score)
}

// BreakerTransition is the data of CIRCUIT_BREAKER_TRIGGERED.
type BreakerTransition struct {
	Breaker string `json:"breaker"`
	From    string `json:"from"`
	To      string `json:"to"`
	Reason  string `json:"reason"`
	// OpenTimeout is how long the circuit stays open, when To is OPEN.
	OpenTimeout time.Duration `json:"open_timeout,omitempty"`
}

func (BreakerTransition) EventType() Type { return CircuitBreakerTriggered }
func (d BreakerTransition) Summary() string {
	return fmt.Sprintf("breaker %q %s -> %s (%s)", d.Breaker, d.From, d.To, d.Reason)
}

// Degradation is the data of DEGRADATION_ACTIVATED and
// DEGRADATION_DEACTIVATED.
type Degradation struct {
	Activated bool     `json:"activated"`
	From      string   `json:"from"`
	To        string   `json:"to"`
	Actions   []string `json:"actions,omitempty"`
	Reason    string   `json:"reason"`
	Manual    bool     `json:"manual,omitempty"`
}

func (d Degradation) EventType() Type {
	if d.Activated {
		return DegradationActivated
	}
	return DegradationDeactivated
}
func (d Degradation) Summary() string {
	return fmt.Sprintf("%s -> %s %v (%s)", d.From, d.To, d.Actions, d.Reason)
}

// Error is the data of ERROR_OCCURRED. Message must never contain a secret;
// producers redact before publishing.
type Error struct {
	Source    string `json:"source"`  // which component, e.g. "conn", "plugin/pgping"
	Kind      string `json:"kind"`    // a stable class, e.g. "close", "dial", "timeout"
	Message   string `json:"message"` // human-readable, redacted
	CloseCode int    `json:"close_code,omitempty"`
	Fatal     bool   `json:"fatal,omitempty"` // no automatic recovery will follow
	// Resumable is op 9's d for Kind "invalid_session": Discord said the
	// session may be resumed. False for every other error.
	Resumable bool `json:"resumable,omitempty"`
}

func (Error) EventType() Type { return ErrorOccurred }
func (d Error) Summary() string {
	if d.CloseCode != 0 {
		return fmt.Sprintf("%s %s (close %d): %s", d.Source, d.Kind, d.CloseCode, d.Message)
	}
	return fmt.Sprintf("%s %s: %s", d.Source, d.Kind, d.Message)
}

// Recovery is the data of RECOVERY_ATTEMPTED (Completed false) and
// RECOVERY_COMPLETED (Completed true, with the outcome).
type Recovery struct {
	Completed bool          `json:"completed"`
	Strategy  string        `json:"strategy"`
	Attempt   int           `json:"attempt"`
	Trigger   string        `json:"trigger,omitempty"` // what caused it
	Success   bool          `json:"success,omitempty"`
	Error     string        `json:"error,omitempty"`
	Duration  time.Duration `json:"duration,omitempty"`
}

func (d Recovery) EventType() Type {
	if d.Completed {
		return RecoveryCompleted
	}
	return RecoveryAttempted
}
func (d Recovery) Summary() string {
	if !d.Completed {
		return fmt.Sprintf("%s attempt %d (%s)", d.Strategy, d.Attempt, d.Trigger)
	}
	if d.Success {
		return fmt.Sprintf("%s attempt %d succeeded in %s", d.Strategy, d.Attempt, d.Duration)
	}
	return fmt.Sprintf("%s attempt %d failed: %s", d.Strategy, d.Attempt, d.Error)
}

// PolicyReload is the data of POLICY_RELOADED and POLICY_RELOAD_FAILED.
type PolicyReload struct {
	Failed         bool     `json:"failed"`
	Path           string   `json:"path"`
	FromGeneration uint64   `json:"from_generation"`
	ToGeneration   uint64   `json:"to_generation"` // unchanged when Failed
	Hash           string   `json:"hash,omitempty"`
	Diagnostics    []string `json:"diagnostics,omitempty"`
}

func (d PolicyReload) EventType() Type {
	if d.Failed {
		return PolicyReloadFailed
	}
	return PolicyReloaded
}
func (d PolicyReload) Summary() string {
	if d.Failed {
		return fmt.Sprintf("%s: kept generation %d: %v", d.Path, d.FromGeneration, d.Diagnostics)
	}
	return fmt.Sprintf("%s: generation %d -> %d", d.Path, d.FromGeneration, d.ToGeneration)
}

// Plugin is the data of PLUGIN_STARTED and PLUGIN_EXITED.
type Plugin struct {
	Exited  bool   `json:"exited"`
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Version int    `json:"protocol_version,omitempty"`
	Reason  string `json:"reason,omitempty"`  // why it exited
	Restart bool   `json:"restart,omitempty"` // a restart is scheduled
}

func (d Plugin) EventType() Type {
	if d.Exited {
		return PluginExited
	}
	return PluginStarted
}
func (d Plugin) Summary() string {
	if d.Exited {
		return fmt.Sprintf("plugin %q exited: %s", d.Name, d.Reason)
	}
	return fmt.Sprintf("plugin %q started (pid %d)", d.Name, d.PID)
}

// PluginLogs is the data of PLUGIN_LOGS_DROPPED: the plugin host dropped
// log lines of a plugin that logged over its rate limit. It is published
// at most once per report interval for a plugin (and when the plugin
// stops); Dropped counts the lines dropped since the previous one.
type PluginLogs struct {
	Name    string `json:"name"`
	Dropped int    `json:"dropped"`
}

func (PluginLogs) EventType() Type { return PluginLogsDropped }
func (d PluginLogs) Summary() string {
	return fmt.Sprintf("dropped %d log lines from plugin %q", d.Dropped, d.Name)
}
