package degrade

import (
	"context"
	"errors"
	"fmt"
)

// Action is one thing lifeline does to shed load or risk while degraded:
// a built-in (see the Action* names) or an action served by a plugin.
//
// Apply and Rollback must both be idempotent: the engine calls Apply again
// after a failure, and may call Rollback on an action whose Apply only half
// worked. Apply receives the level whose entry applies the action (an
// action may scale its effect by it). Both receive the context of the call
// that drove the engine (a tick, Activate or Deactivate) and should return
// promptly; an action that talks to another process bounds the call itself.
// A returned error is reported and the call is retried later (see the
// package doc); it is never dropped.
type Action interface {
	// Name is the name policies use, e.g. "disable_analytics" or
	// "plugin.action".
	Name() string
	// Apply puts the action into effect.
	Apply(ctx context.Context, level Level) error
	// Rollback undoes Apply.
	Rollback(ctx context.Context) error
}

// The built-in action names, as policies write them (policy.BuiltinActions).
const (
	ActionReduceLoggingLevel           = "reduce_logging_level"
	ActionDisableAnalytics             = "disable_analytics"
	ActionIncreaseTimeouts             = "increase_timeouts"
	ActionDisableNonCriticalFeatures   = "disable_non_critical_features"
	ActionReduceConcurrentRequests     = "reduce_concurrent_requests"
	ActionEnableAggressiveCaching      = "enable_aggressive_caching"
	ActionEnableReadOnlyMode           = "enable_read_only_mode"
	ActionShutdownNonEssentialServices = "shutdown_non_essential_services"
)

// BuiltinActionNames lists the built-in actions in the order the default
// policy introduces them, least severe first.
func BuiltinActionNames() []string {
	return []string{
		ActionReduceLoggingLevel, ActionDisableAnalytics,
		ActionIncreaseTimeouts, ActionDisableNonCriticalFeatures,
		ActionReduceConcurrentRequests, ActionEnableAggressiveCaching,
		ActionEnableReadOnlyMode, ActionShutdownNonEssentialServices,
	}
}

// Errors of the engine.
var (
	// ErrUnknownAction is returned (wrapped in an *ActionError) when a
	// level names an action no one registered, and by Activate when its
	// action list does. A plugin action that registers later is picked up
	// by the next retry.
	ErrUnknownAction = errors.New("unknown degradation action")
	// ErrDuplicateAction is returned by Register and New when two actions
	// have the same name.
	ErrDuplicateAction = errors.New("duplicate degradation action")
	// ErrInvalidAction is returned by Register and New for a nil action or
	// one with an empty name.
	ErrInvalidAction = errors.New("invalid degradation action")
	// ErrActionPanic is returned (wrapped in an *ActionError) when an
	// action's Apply or Rollback panicked; the panic is recovered.
	ErrActionPanic = errors.New("degradation action panicked")
	// ErrNoneWithActions is returned by Activate when asked to apply
	// actions at level None.
	ErrNoneWithActions = errors.New("level NONE takes no actions")
)

// Op says which half of an action an ActionError is about.
type Op string

// The two operations on an action.
const (
	OpApply    Op = "apply"
	OpRollback Op = "rollback"
)

// ActionError reports a failed Apply or Rollback. It is what the engine
// logs, publishes (as ERROR_OCCURRED) and joins into Result.Err.
type ActionError struct {
	// Action is the action's name.
	Action string
	// Op is OpApply or OpRollback.
	Op Op
	// Level is the level the action was applied for (or was leaving).
	Level Level
	// Attempt counts the consecutive failed attempts of Op, from 1.
	Attempt int
	// Err is what the action returned.
	Err error
}

// Error says which action failed, doing what, and why.
func (e *ActionError) Error() string {
	return fmt.Sprintf("degrade: %s %q at %s (attempt %d): %v", e.Op, e.Action, e.Level, e.Attempt, e.Err)
}

// Unwrap returns the action's error.
func (e *ActionError) Unwrap() error { return e.Err }

// funcAction is the Action NewAction returns.
type funcAction struct {
	name     string
	apply    func(ctx context.Context, level Level) error
	rollback func(ctx context.Context) error
}

// NewAction returns an Action from two functions, for a bot's own actions
// and for tests. A nil function does nothing and succeeds. Both functions
// must be idempotent, like any Action's methods.
func NewAction(name string, apply func(ctx context.Context, level Level) error, rollback func(ctx context.Context) error) Action {
	return &funcAction{name: name, apply: apply, rollback: rollback}
}

func (a *funcAction) Name() string { return a.name }

func (a *funcAction) Apply(ctx context.Context, level Level) error {
	if a.apply == nil {
		return nil
	}
	return a.apply(ctx, level)
}

func (a *funcAction) Rollback(ctx context.Context) error {
	if a.rollback == nil {
		return nil
	}
	return a.rollback(ctx)
}

// safeCall runs an action's method, turning a panic into an error.
func safeCall(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrActionPanic, r)
		}
	}()
	return f()
}
