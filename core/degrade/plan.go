package degrade

import (
	"slices"
	"time"

	"github.com/lifeline-bot/lifeline/core/policy"
)

// Step is one rung of the degradation ladder: a level and the actions
// entering it applies, in order.
type Step struct {
	Level   Level    `json:"level"`
	Actions []string `json:"actions"`
}

// Plan is the degradation ladder, least severe step first: the levels a
// policy declares and the actions of each. A level missing from the Plan
// has no actions of its own; the engine still reaches it when a Target asks
// for it, but never stops at it on the way down.
type Plan []Step

// PlanOf returns the ladder of p's degradation block (declared or generated
// levels). It returns nil for a nil policy.
func PlanOf(p *policy.Policy) Plan {
	if p == nil {
		return nil
	}
	out := make(Plan, 0, len(p.Degradation.Levels))
	for _, l := range p.Degradation.Levels {
		out = append(out, Step{Level: l.Level, Actions: slices.Clone(l.Actions)})
	}
	return out
}

// ActionsUpTo returns the actions of every step up to and including level,
// in the order they are applied, each name once.
func (p Plan) ActionsUpTo(level Level) []string {
	var out []string
	for _, s := range p {
		if s.Level > level {
			continue
		}
		for _, a := range s.Actions {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// Target is what the policy wants at one tick: the input of Engine.Apply.
type Target struct {
	// Level is the level the policy's conditions call for.
	Level Level
	// Plan gives the actions of each level. The engine reads it when it
	// climbs; what it rolls back is always what it actually applied, so a
	// policy reload that changes the Plan never strands an action.
	Plan Plan
	// Recover reports whether the policy's recover condition holds.
	Recover bool
	// Reason says why Level was chosen; it appears in events and history.
	Reason string
	// RecoveryDelay is how long Recover must hold, with Level below the
	// current level, before the engine steps down one level (and again
	// before each further step). Zero steps down at the first Apply where
	// Recover holds; a negative value counts as zero.
	RecoveryDelay time.Duration
}

// TargetOf turns a policy's Decision into a Target, with p's ladder and
// recovery_delay. A nil p gives an empty Plan and no delay.
func TargetOf(p *policy.Policy, d policy.Decision) Target {
	t := Target{Level: d.Level, Plan: PlanOf(p), Recover: d.Recover, Reason: d.Reason}
	if p != nil {
		t.RecoveryDelay = p.Degradation.RecoveryDelay
	}
	return t
}

// Evaluation is what the policy says about one Snapshot, without acting on
// it: the result of EvaluateDegradation (the seed's evaluateDegradation).
type Evaluation struct {
	// ShouldDegrade is true when some level's condition holds.
	ShouldDegrade bool `json:"should_degrade"`
	// Level is the most severe level whose condition holds (None if none).
	Level Level `json:"level"`
	// Actions are the actions of every level up to Level, in the order
	// they are applied.
	Actions []string `json:"actions"`
	// Reason names the condition that chose Level, with its location.
	Reason string `json:"reason"`
	// Recover reports whether the recover condition holds.
	Recover bool `json:"recover"`
	// Err is the first error met while evaluating a condition (that
	// condition counted as false); nil normally.
	Err error `json:"-"`
}
