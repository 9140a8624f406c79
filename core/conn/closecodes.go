package conn

import (
	"errors"
	"fmt"
)

// CloseAction is what the connection loop should do after the gateway
// connection closed with a given code.
type CloseAction uint8

const (
	// ActionResume: reconnect (after backoff when the code says so) and
	// send RESUME; the session is still valid. If Discord disagrees it
	// answers op 9, which the loop handles as usual.
	ActionResume CloseAction = iota + 1
	// ActionNewSession: reconnect and IDENTIFY anew; the session is gone
	// (4007 invalid seq, 4009 session timed out). A fresh IDENTIFY needs a
	// new discordgo Session and costs one daily session start.
	ActionNewSession
	// ActionFatal: stop. Reconnecting cannot succeed until an operator
	// changes something (token, shard settings, intents); retrying only
	// burns session starts. The CloseCode's Err and Hint say what to fix.
	ActionFatal
)

// String returns "resume", "new-session" or "fatal".
func (a CloseAction) String() string {
	switch a {
	case ActionResume:
		return "resume"
	case ActionNewSession:
		return "new-session"
	case ActionFatal:
		return "fatal"
	}
	return fmt.Sprintf("CloseAction(%d)", uint8(a))
}

// The errors a fatal close code stands for. A *CloseError for a fatal code
// matches its own sentinel and ErrFatalClose with errors.Is.
var (
	// ErrFatalClose is returned (inside a *CloseError) when the gateway
	// closed with any code after which reconnecting cannot succeed.
	ErrFatalClose = errors.New("fatal gateway close code")
	// ErrAuthenticationFailed is returned when the gateway closed with
	// 4004: Discord rejected the bot token.
	ErrAuthenticationFailed = errors.New("authentication failed")
	// ErrInvalidShard is returned when the gateway closed with 4010: the
	// shard id or count sent in IDENTIFY is invalid.
	ErrInvalidShard = errors.New("invalid shard")
	// ErrShardingRequired is returned when the gateway closed with 4011:
	// the bot is in too many guilds for its shard count.
	ErrShardingRequired = errors.New("sharding required")
	// ErrInvalidAPIVersion is returned when the gateway closed with 4012:
	// the gateway URL asked for an API version Discord does not serve.
	ErrInvalidAPIVersion = errors.New("invalid API version")
	// ErrInvalidIntents is returned when the gateway closed with 4013: the
	// intents bitmask sent in IDENTIFY is not valid.
	ErrInvalidIntents = errors.New("invalid intents")
	// ErrDisallowedIntents is returned when the gateway closed with 4014:
	// IDENTIFY asked for a privileged intent the bot is not allowed.
	ErrDisallowedIntents = errors.New("disallowed intents")
)

// CloseCode describes one close code: its name, what to do about it and,
// for fatal codes, the sentinel error and what an operator should fix.
type CloseCode struct {
	// Code is the WebSocket close code.
	Code int
	// Name is a short name, e.g. "authentication failed".
	Name string
	// Action is what the connection loop should do.
	Action CloseAction
	// Err is the sentinel error for a fatal code; nil otherwise.
	Err error
	// Hint is one operator-facing sentence: what to fix for a fatal code,
	// or what the code means for the others. It never contains the token.
	Hint string
}

// Fatal reports whether reconnecting after this code cannot succeed.
func (c CloseCode) Fatal() bool { return c.Action == ActionFatal }

// String returns e.g. "4004 authentication failed (fatal)".
func (c CloseCode) String() string {
	return fmt.Sprintf("%d %s (%s)", c.Code, c.Name, c.Action)
}

// closeCodes lists every close code lifeline knows. Discord's gateway
// codes come from its "Opcodes and Status Codes" page; the 1xxx codes are
// RFC 6455 section 7.4 and the IANA registry.
var closeCodes = map[int]CloseCode{
	// RFC 6455 / IANA codes.
	1000: {Name: "normal closure", Action: ActionResume,
		Hint: "the server ended the connection normally; try RESUME (a client that sends 1000 itself invalidates its session)"},
	1001: {Name: "going away", Action: ActionResume,
		Hint: "the server is going away (restart or deploy); reconnect and RESUME"},
	1002: {Name: "protocol error", Action: ActionResume,
		Hint: "the peer saw a WebSocket protocol error; reconnect and RESUME"},
	1003: {Name: "unsupported data", Action: ActionResume,
		Hint: "the peer cannot accept the data type sent; reconnect and RESUME"},
	1005: {Name: "no status received", Action: ActionResume,
		Hint: "a close frame without a code arrived; reconnect and RESUME"},
	1006: {Name: "abnormal closure", Action: ActionResume,
		Hint: "the connection dropped without a close frame; reconnect and RESUME"},
	1007: {Name: "invalid frame payload data", Action: ActionResume,
		Hint: "the peer received data that was not valid UTF-8; reconnect and RESUME"},
	1008: {Name: "policy violation", Action: ActionResume,
		Hint: "the peer closed for a policy violation; reconnect and RESUME"},
	1009: {Name: "message too big", Action: ActionResume,
		Hint: "a message exceeded the peer's size limit; reconnect and RESUME"},
	1010: {Name: "mandatory extension", Action: ActionResume,
		Hint: "the server did not negotiate an extension the client requires; reconnect and RESUME"},
	1011: {Name: "internal error", Action: ActionResume,
		Hint: "the server hit an internal error; reconnect and RESUME"},
	1012: {Name: "service restart", Action: ActionResume,
		Hint: "the service is restarting; reconnect and RESUME"},
	1013: {Name: "try again later", Action: ActionResume,
		Hint: "the server is overloaded; back off, reconnect and RESUME"},
	1014: {Name: "bad gateway", Action: ActionResume,
		Hint: "a proxy in front of the gateway failed; reconnect and RESUME"},
	1015: {Name: "TLS handshake failure", Action: ActionResume,
		Hint: "the TLS handshake failed; check the system clock and CA certificates, then reconnect"},

	// Discord gateway codes.
	4000: {Name: "unknown error", Action: ActionResume,
		Hint: "Discord is not sure what went wrong; reconnect and RESUME"},
	4001: {Name: "unknown opcode", Action: ActionResume,
		Hint: "the client sent an invalid opcode; reconnect and RESUME"},
	4002: {Name: "decode error", Action: ActionResume,
		Hint: "the client sent a payload Discord could not decode; reconnect and RESUME"},
	4003: {Name: "not authenticated", Action: ActionResume,
		Hint: "the client sent a payload before IDENTIFY; reconnect and RESUME"},
	4004: {Name: "authentication failed", Action: ActionFatal, Err: ErrAuthenticationFailed,
		Hint: "Discord rejected the bot token: set the bot's current token (DISCORD_TOKEN or the configured token; " +
			"discordgo wants it prefixed with \"Bot \") and reset it in the Developer Portal if it may have leaked"},
	4005: {Name: "already authenticated", Action: ActionResume,
		Hint: "the client sent IDENTIFY or RESUME twice; reconnect and RESUME"},
	4007: {Name: "invalid seq", Action: ActionNewSession,
		Hint: "the sequence sent in RESUME was invalid; reconnect and IDENTIFY a new session"},
	4008: {Name: "rate limited", Action: ActionResume,
		Hint: "the client sent more than 120 gateway events a minute; back off, reconnect and RESUME"},
	4009: {Name: "session timed out", Action: ActionNewSession,
		Hint: "the session timed out; reconnect and IDENTIFY a new session"},
	4010: {Name: "invalid shard", Action: ActionFatal, Err: ErrInvalidShard,
		Hint: "the shard sent in IDENTIFY is invalid: the shard id must be below the shard count and the count at least 1; fix the shard settings"},
	4011: {Name: "sharding required", Action: ActionFatal, Err: ErrShardingRequired,
		Hint: "the bot is in too many guilds for one connection: raise the shard count (GET /gateway/bot gives the recommended number) and restart"},
	4012: {Name: "invalid API version", Action: ActionFatal, Err: ErrInvalidAPIVersion,
		Hint: "the gateway URL asks for an API version Discord no longer serves: upgrade lifeline/discordgo or fix the configured gateway URL"},
	4013: {Name: "invalid intents", Action: ActionFatal, Err: ErrInvalidIntents,
		Hint: "the intents bitmask is invalid: use only intent names lifeline lists (see ParseIntents)"},
	4014: {Name: "disallowed intents", Action: ActionFatal, Err: ErrDisallowedIntents,
		Hint: "the bot asked for a privileged intent (GuildMembers, GuildPresences or MessageContent) it is not allowed: " +
			"enable it for the application in the Discord Developer Portal (Bot > Privileged Gateway Intents) or remove it from the configured intents"},
}

// ClassifyClose describes a close code. Codes lifeline does not know are
// classified ActionResume with a generic name: Discord adds codes over
// time, and a reconnect with backoff is the safe default for an unknown
// one (the known fatal codes are the only ones that must never loop).
func ClassifyClose(code int) CloseCode {
	if c, ok := closeCodes[code]; ok {
		c.Code = code
		return c
	}
	name := "unknown close code"
	switch {
	case code >= 4000 && code <= 4999:
		name = "unknown Discord close code"
	case code >= 3000 && code <= 3999:
		name = "unknown registered close code"
	}
	return CloseCode{Code: code, Name: name, Action: ActionResume,
		Hint: "lifeline does not know this code; reconnect with backoff and RESUME"}
}

// CloseCodes returns every close code ClassifyClose knows by name, in
// ascending order.
func CloseCodes() []CloseCode {
	out := make([]CloseCode, 0, len(closeCodes))
	for code := 1000; code <= 4999; code++ {
		if _, ok := closeCodes[code]; ok {
			out = append(out, ClassifyClose(code))
		}
	}
	return out
}

// SessionKeptAfterClientClose reports whether the gateway session stays
// resumable after the client itself closes with code. Discord invalidates
// the session when the client closes with 1000 or 1001 (discordgo's
// Session.Close sends 1000); any other code, or a dropped connection,
// keeps it resumable for a short while.
func SessionKeptAfterClientClose(code int) bool {
	return code != 1000 && code != 1001
}

// CloseError is the error for a gateway connection that closed with a
// code. For a fatal code, errors.Is matches both its sentinel (such as
// ErrAuthenticationFailed) and ErrFatalClose.
type CloseError struct {
	// Code is the close code the server sent.
	Code int
	// Reason is the close reason the server sent, as received.
	Reason string
}

// NewCloseError returns the error for a connection closed with code and
// reason.
func NewCloseError(code int, reason string) *CloseError {
	return &CloseError{Code: code, Reason: reason}
}

// Info classifies e.Code.
func (e *CloseError) Info() CloseCode { return ClassifyClose(e.Code) }

// Fatal reports whether e.Code is a fatal close code.
func (e *CloseError) Fatal() bool { return e.Info().Fatal() }

// Error says which code arrived, what it means and, for a fatal code,
// what to fix.
func (e *CloseError) Error() string {
	c := e.Info()
	reason := ""
	if e.Reason != "" {
		reason = fmt.Sprintf(" %q", e.Reason)
	}
	if c.Fatal() {
		return fmt.Sprintf("conn: gateway closed the connection with %d %s%s; lifeline stopped reconnecting: %s",
			c.Code, c.Name, reason, c.Hint)
	}
	return fmt.Sprintf("conn: gateway closed the connection with %d %s%s (%s)", c.Code, c.Name, reason, c.Action)
}

// Unwrap returns the code's sentinel and ErrFatalClose for a fatal code,
// and nothing otherwise.
func (e *CloseError) Unwrap() []error {
	c := e.Info()
	if c.Err == nil {
		return nil
	}
	return []error{c.Err, ErrFatalClose}
}
