package sdk

import "context"

// NewHealthCheck returns a HealthCheck described by info whose Check calls
// check. It saves a type for a check that is one function.
func NewHealthCheck(info Info, check func(ctx context.Context, req CheckRequest) (Result, error)) HealthCheck {
	return funcCheck{info: info, check: check}
}

type funcCheck struct {
	info  Info
	check func(context.Context, CheckRequest) (Result, error)
}

func (f funcCheck) Info() Info { return f.info }

func (f funcCheck) Check(ctx context.Context, req CheckRequest) (Result, error) {
	return f.check(ctx, req)
}

// NewRecoveryStrategy returns a RecoveryStrategy described by info.
// A nil applies means the strategy applies to every failure its policy rule
// matched.
func NewRecoveryStrategy(info Info, applies func(ctx context.Context, req RecoveryRequest) (bool, error),
	recover func(ctx context.Context, req RecoveryRequest) error) RecoveryStrategy {
	return funcStrategy{info: info, applies: applies, recover: recover}
}

type funcStrategy struct {
	info    Info
	applies func(context.Context, RecoveryRequest) (bool, error)
	recover func(context.Context, RecoveryRequest) error
}

func (f funcStrategy) Info() Info { return f.info }

func (f funcStrategy) Applies(ctx context.Context, req RecoveryRequest) (bool, error) {
	if f.applies == nil {
		return true, nil
	}
	return f.applies(ctx, req)
}

func (f funcStrategy) Recover(ctx context.Context, req RecoveryRequest) error {
	return f.recover(ctx, req)
}

// NewDegradationAction returns a DegradationAction described by info.
// A nil rollback means there is nothing to undo.
func NewDegradationAction(info Info, apply, rollback func(ctx context.Context, req ActionRequest) error) DegradationAction {
	return funcAction{info: info, apply: apply, rollback: rollback}
}

type funcAction struct {
	info            Info
	apply, rollback func(context.Context, ActionRequest) error
}

func (f funcAction) Info() Info { return f.info }

func (f funcAction) Apply(ctx context.Context, req ActionRequest) error {
	return f.apply(ctx, req)
}

func (f funcAction) Rollback(ctx context.Context, req ActionRequest) error {
	if f.rollback == nil {
		return nil
	}
	return f.rollback(ctx, req)
}
