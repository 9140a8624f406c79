package breaker

import (
	"fmt"
	"time"
)

// State is the position of a Breaker in its state machine.
type State uint8

// The three states. The zero State is StateClosed, so a new Breaker is
// closed.
const (
	// StateClosed lets every call through and counts failures in the
	// sliding window.
	StateClosed State = iota
	// StateOpen rejects every call with ErrOpen until the open timeout
	// expires (or, when forced, until ForceClose or Reset).
	StateOpen
	// StateHalfOpen lets a limited number of probe calls through; their
	// outcome closes the circuit or opens it again.
	StateHalfOpen
)

// String returns the upper-case name: "CLOSED", "OPEN" or "HALF_OPEN".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "CLOSED"
	case StateOpen:
		return "OPEN"
	case StateHalfOpen:
		return "HALF_OPEN"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler with String's names, so a
// State is a readable string in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Transition describes one change of state. Listeners registered with
// OnStateChange receive it, and the Publisher receives it as a
// CIRCUIT_BREAKER_TRIGGERED event whose data is an events.BreakerTransition.
type Transition struct {
	// Breaker is the breaker's Name.
	Breaker string
	// From and To are the old and new states.
	From, To State
	// Reason says in words why the state changed, for logs and events.
	Reason string
	// At is when the new state began, from the breaker's clock. For a
	// transition to HALF_OPEN it is the moment the open timeout expired,
	// even if the breaker noticed a little later.
	At time.Time
	// OpenTimeout is how long the circuit stays open when To is OPEN,
	// backoff and jitter included; 0 when the open was forced (it lasts
	// until ForceClose or Reset) and when To is not OPEN.
	OpenTimeout time.Duration
}
