package degrade

import "github.com/lifeline-bot/lifeline/core/policy"

// Level is a degradation level: None < Minimal < Moderate < Severe <
// Critical. It is the policy's level type (an alias), so a
// policy.Decision's Level needs no conversion; String gives the upper-case
// name ("MODERATE") that events, the Snapshot and diagnostics carry, and
// MarshalText/UnmarshalText round-trip it.
type Level = policy.Level

// The degradation levels, least severe first.
const (
	None     = policy.None
	Minimal  = policy.Minimal
	Moderate = policy.Moderate
	Severe   = policy.Severe
	Critical = policy.Critical
)

// ErrUnknownLevel is returned (wrapped) by ParseLevel when the name is not a
// level, and by Activate for a level outside None..Critical.
var ErrUnknownLevel = policy.ErrUnknownLevel

// ParseLevel accepts a level name in any case: "moderate", "MODERATE".
func ParseLevel(s string) (Level, error) {
	return policy.ParseLevel(s)
}

// Levels returns every level, least severe first.
func Levels() []Level {
	return []Level{None, Minimal, Moderate, Severe, Critical}
}

func validLevel(l Level) bool { return l <= Critical }
