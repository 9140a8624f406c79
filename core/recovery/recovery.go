package recovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// The names of the built-in strategies, the ones a policy's `use` may name
// without a plugin prefix (policy.BuiltinStrategies).
const (
	// Resume closes the connection with a resumable code and RESUMEs on a
	// new one: the session survives and missed dispatches are replayed.
	Resume = "resume"
	// Reconnect opens a new connection and lets the connection loop choose
	// between RESUME and IDENTIFY.
	Reconnect = "reconnect"
	// Reidentify drops the session and IDENTIFYs anew, spending one session
	// start of the daily budget.
	Reidentify = "reidentify"
	// RestartClient restarts the client: core/conn closes and re-opens the
	// discordgo Session (its handlers kept) and IDENTIFYs anew.
	RestartClient = "restart_client"
)

// Source is the events.Error Source of the ERROR_OCCURRED events the Engine
// publishes. The Engine never handles a Failure from this source, so that
// feeding every ERROR_OCCURRED event back into Handle cannot loop.
const Source = "recovery"

var (
	// ErrExhausted is returned (wrapped, joined with each attempt's error)
	// by Engine.Handle when strategies applied but none succeeded: each
	// failed, hit a cap, or was unavailable.
	ErrExhausted = errors.New("every recovery strategy failed")
	// ErrNoStrategy is returned by Engine.Handle when no strategy's
	// condition holds for the failure.
	ErrNoStrategy = errors.New("no recovery strategy applies")
	// ErrBusy is returned by Engine.Handle when a recovery for the same
	// shard is already running; the running one goes on.
	ErrBusy = errors.New("a recovery for this shard is already running")
	// ErrOwnFailure is returned by Engine.Handle for a Failure whose Source
	// is the Engine's own (Source): handling it could loop.
	ErrOwnFailure = errors.New("failure reported by the recovery engine itself")
	// ErrUnknownStrategy is returned (wrapped, with the rule's location)
	// by Engine.SetPolicy when a recovery rule's `use` names a strategy
	// that is neither built in nor registered.
	ErrUnknownStrategy = errors.New("unknown recovery strategy")
	// ErrDuplicate is returned by Engine.AddRecoveryStrategy and
	// Engine.SetPolicy when two strategies would share a name.
	ErrDuplicate = errors.New("duplicate recovery strategy name")
	// ErrInvalidStrategy is returned by Engine.AddRecoveryStrategy and
	// Engine.Register when a strategy has no name or no Recoverer.
	ErrInvalidStrategy = errors.New("invalid recovery strategy")
	// ErrUnavailable is returned (wrapped) by a built-in strategy's
	// Available check when it has no Connection to drive. The Engine skips
	// an unavailable strategy without counting an attempt.
	ErrUnavailable = errors.New("recovery strategy unavailable")
	// ErrStrategyCap is the reason a strategy was skipped when its failed
	// attempts within the window reached
	// Settings.MaxStrategyAttemptsPerWindow.
	ErrStrategyCap = errors.New("strategy attempt cap for the window reached")
	// ErrSessionKept is the reason a strategy that starts a new session
	// (reidentify, restart_client) was skipped: a resume strategy applied
	// to the failure, so the session can still resume, and a strategy that
	// keeps it (resume, reconnect) was skipped at its cap. The caps stop
	// failing loops; they must not make lifeline give up a session and the
	// events in flight with it. Engine.Handle then ends with ErrExhausted
	// and a ConnPlanner hands the failure back to the connection loop,
	// which RESUMEs with its own backoff.
	ErrSessionKept = errors.New("skipped to keep a resumable session")
	// ErrWindowCap is the reason the remaining strategies were skipped
	// when the shard's failed attempts within the window reached
	// Settings.MaxAttemptsPerWindow.
	ErrWindowCap = errors.New("recovery attempt cap for the window reached")
	// ErrAttemptTimeout is returned (wrapped) for an attempt that did not
	// finish within Settings.AttemptTimeout.
	ErrAttemptTimeout = errors.New("recovery attempt timed out")
	// ErrPanicked is returned (wrapped) for an attempt whose Recoverer
	// panicked; the panic is recovered so a bad strategy cannot bring the
	// bot down.
	ErrPanicked = errors.New("recovery strategy panicked")
)

// Failure is an error lifeline should recover from: its classification
// (the `error.*` variables of recovery conditions), the shard and the
// metrics Snapshot conditions read.
type Failure struct {
	// Error classifies the failure: message (redacted), close code, kind,
	// source, fatal. Classify and FailureFromEvent fill it.
	Error policy.ErrorInfo
	// Shard is the shard that failed; events.NoShard for a process-wide
	// failure. Caps are counted per shard.
	Shard int
	// Snapshot is what the policy's conditions read besides `error`.
	// Default: Settings.Snapshot(Shard), or an empty Snapshot.
	Snapshot *metrics.Snapshot
	// Conn is what the built-in strategies drive for this failure.
	// Default: Settings.Connection.
	Conn Connection
}

// String describes the failure in one line, e.g.
// "close 4000: gateway closed ...". It never contains the token (the
// message is redacted by whoever built the Failure).
func (f Failure) String() string {
	kind := f.Error.Kind
	if kind == "" {
		kind = "error"
	}
	if f.Error.CloseCode != 0 {
		return fmt.Sprintf("%s %d: %s", kind, f.Error.CloseCode, f.Error.Message)
	}
	return kind + ": " + f.Error.Message
}

// Attempt is one try of one strategy, handed to its Recoverer.
type Attempt struct {
	// Strategy is the strategy's name: the policy rule's label or the Go
	// strategy's Name.
	Strategy string
	// Use is the implementation the attempt runs: the rule's `use` (a
	// built-in name or "plugin.strategy"), or Strategy for a Go strategy.
	Use string
	// Number counts this strategy's attempts for this failure, from 1.
	Number int
	// Failure is what is being recovered from; its Conn and Snapshot are
	// filled in.
	Failure Failure
	// Started is when the attempt began (Settings.Clock).
	Started time.Time
}

// Cause is a one-line description of the attempt for logs and for the
// connection's state changes, e.g.
// "recovery resume attempt 1: close 4000: ...".
func (a Attempt) Cause() string {
	return fmt.Sprintf("recovery %s attempt %d: %s", a.Strategy, a.Number, a.Failure)
}

// Recoverer is a strategy's execute step. Recover returns nil when the
// recovery succeeded and an error saying why it did not otherwise. It must
// return when ctx ends (the Engine bounds every attempt with
// Settings.AttemptTimeout).
type Recoverer interface {
	Recover(ctx context.Context, a Attempt) error
}

// RecovererFunc adapts a function to Recoverer.
type RecovererFunc func(ctx context.Context, a Attempt) error

// Recover calls f(ctx, a).
func (f RecovererFunc) Recover(ctx context.Context, a Attempt) error { return f(ctx, a) }

// Availability is an optional interface of a Recoverer: Available says,
// before any attempt is counted or announced, whether the strategy can run
// for f at all (an error wrapping ErrUnavailable when not). The built-in
// strategies implement it.
type Availability interface {
	Available(f Failure) error
}

// Strategy is a recovery strategy defined in Go: the seed's
// addRecoveryStrategy({name, priority, condition, execute}). Strategies
// from the policy (`recovery "NAME"` blocks) have the same parts, with an
// expr condition compiled by core/policy.
type Strategy struct {
	// Name identifies the strategy in events, reports and caps. Required;
	// it must differ from every other Go strategy and from the policy's
	// recovery rule names.
	Name string
	// Priority orders strategies: lower runs first. Policy rules and Go
	// strategies share one order; on a tie, policy rules (in file order)
	// come before Go strategies (in registration order). Default: 0.
	Priority int
	// When says whether the strategy applies to a failure; it sees the
	// error and the Snapshot. A panic counts as false. Default: nil,
	// always applies.
	When func(f Failure) bool
	// MaxAttempts caps this strategy's attempts for one failure, like a
	// rule's max_attempts. Default: 3 (the policy's default).
	MaxAttempts int
	// Recoverer is the execute step. Required.
	Recoverer Recoverer
}

// DefaultMaxAttempts is a Go strategy's MaxAttempts when it sets none, the
// same as a policy rule's max_attempts default.
const DefaultMaxAttempts = 3
