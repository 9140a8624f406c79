package conn

import "fmt"

// State is a managed connection's state. Every change publishes
// STATE_CHANGED with the cause.
type State int32

const (
	// Disconnected: not started yet.
	Disconnected State = iota
	// Connecting: dialling the gateway and waiting for HELLO.
	Connecting
	// Identifying: waiting for an identify slot, or sent IDENTIFY and
	// waiting for READY.
	Identifying
	// Resuming: sent RESUME and waiting for RESUMED.
	Resuming
	// Ready: the session is live; dispatches flow.
	Ready
	// Reconnecting: the connection ended; choosing how to recover.
	Reconnecting
	// BackingOff: waiting before the next attempt (backoff or open breaker).
	BackingOff
	// Failed: stopped for good by an error a reconnect cannot fix (a fatal
	// close code, or the attempt limit).
	Failed
	// Stopped: stopped by Stop.
	Stopped
)

var stateNames = [...]string{
	Disconnected: "DISCONNECTED",
	Connecting:   "CONNECTING",
	Identifying:  "IDENTIFYING",
	Resuming:     "RESUMING",
	Ready:        "READY",
	Reconnecting: "RECONNECTING",
	BackingOff:   "BACKING_OFF",
	Failed:       "FAILED",
	Stopped:      "STOPPED",
}

// String returns the upper-case state name, e.g. "READY".
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Terminal reports whether the connection will make no further attempts.
func (s State) Terminal() bool { return s == Failed || s == Stopped }
