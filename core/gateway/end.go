package gateway

import (
	"fmt"
	"time"
)

// EndReason says why a connection ended.
type EndReason int

const (
	// EndDialFailed: the TCP, TLS or WebSocket handshake failed.
	EndDialFailed EndReason = iota + 1
	// EndHandshakeTimeout: no HELLO, or no READY/RESUMED, in time.
	EndHandshakeTimeout
	// EndClosed: Discord closed the connection with CloseCode.
	EndClosed
	// EndReadError: the connection dropped without a close frame.
	EndReadError
	// EndZombie: heartbeats went unacknowledged for ZombieFactor intervals.
	EndZombie
	// EndReconnect: Discord sent op 7 RECONNECT.
	EndReconnect
	// EndInvalidSession: Discord sent op 9; Resumable holds its d flag.
	EndInvalidSession
	// EndProtocol: Discord sent something the protocol does not allow.
	EndProtocol
	// EndStopped: the caller closed the connection or its context ended.
	EndStopped
	// EndIdentifyBlocked: Handshake.BeforeIdentify refused (for instance,
	// the daily session-start budget is spent).
	EndIdentifyBlocked
)

var endNames = map[EndReason]string{
	EndDialFailed:       "dial_failed",
	EndHandshakeTimeout: "handshake_timeout",
	EndClosed:           "closed",
	EndReadError:        "connection_lost",
	EndZombie:           "zombie",
	EndReconnect:        "reconnect_requested",
	EndInvalidSession:   "invalid_session",
	EndProtocol:         "protocol_error",
	EndStopped:          "stopped",
	EndIdentifyBlocked:  "identify_blocked",
}

// String returns a stable snake_case name, used as a metric label.
func (r EndReason) String() string {
	if n, ok := endNames[r]; ok {
		return n
	}
	return fmt.Sprintf("EndReason(%d)", int(r))
}

// End describes how a connection ended.
type End struct {
	Reason    EndReason
	CloseCode int    // EndClosed: the code Discord sent
	CloseText string // EndClosed: the reason text Discord sent
	Resumable bool   // EndInvalidSession: op 9's d
	Ready     bool   // the connection reached READY or RESUMED
	// HandshakeSent: IDENTIFY or RESUME was sent on this connection (its
	// write at least began). A close code or op 9 that ends a session
	// says nothing about the one a connection never named: before the
	// handshake, the caller may keep the session it meant to resume.
	HandshakeSent bool
	Err           error // details; never holds the token

	sentCode int // the close code lifeline sent, 0 for none
}

// SentCode is the close code lifeline sent when it ended the connection,
// or 0 if it sent none.
func (e End) SentCode() int { return e.sentCode }

// Error describes the end in one line.
func (e End) Error() string {
	switch {
	case e.Err != nil:
		return e.Reason.String() + ": " + e.Err.Error()
	case e.Reason == EndInvalidSession:
		return fmt.Sprintf("invalid_session (resumable=%t)", e.Resumable)
	default:
		return e.Reason.String()
	}
}

// Unwrap exposes Err to errors.Is and errors.As.
func (e End) Unwrap() error { return e.Err }

// ObsKind is the kind of an Observation.
type ObsKind int

const (
	ObsConnected     ObsKind = iota + 1 // the WebSocket handshake succeeded
	ObsHello                            // HELLO with Interval
	ObsSent                             // lifeline sent op Op (IDENTIFY, RESUME)
	ObsReceived                         // a frame with Op, Seq, Type, Size
	ObsHeartbeatSent                    // heartbeat with Seq
	ObsAck                              // HEARTBEAT_ACK; RTT when it answers a heartbeat
	ObsReady                            // READY or RESUMED (Type), with SessionID, ResumeURL
	ObsCloseSent                        // lifeline closed with CloseCode
	ObsMalformed                        // a frame that could not be used; Err says why
)

// Observation is one thing seen on the wire. It never carries a token.
type Observation struct {
	Kind      ObsKind
	Time      time.Time
	Op        int
	Seq       int64
	Type      string
	Size      int
	Interval  time.Duration
	RTT       time.Duration
	CloseCode int
	SessionID string
	ResumeURL string
	Err       string
}

// Observer receives Observations synchronously, from the connection's
// goroutines: it must be quick and must not block.
type Observer interface {
	Observe(Observation)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Observation)

// Observe calls f(o).
func (f ObserverFunc) Observe(o Observation) { f(o) }

type nopObserver struct{}

func (nopObserver) Observe(Observation) {}
