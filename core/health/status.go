package health

import "fmt"

// Status is the monitor's overall verdict. The zero value is Unknown.
type Status uint8

// The statuses, from best to worst after Unknown. See the package comment
// for the rules that pick one.
const (
	// Unknown: no enabled check has a result yet.
	Unknown Status = iota
	// Healthy: every enabled check passed its last run.
	Healthy
	// Degraded: some non-critical check failed, and the score is still at
	// or above Options.UnhealthyBelow.
	Degraded
	// Unhealthy: non-critical checks failed and the score fell below
	// Options.UnhealthyBelow.
	Unhealthy
	// Critical: a check marked critical failed its last run.
	Critical
)

var statusNames = [...]string{
	Unknown:   "UNKNOWN",
	Healthy:   "HEALTHY",
	Degraded:  "DEGRADED",
	Unhealthy: "UNHEALTHY",
	Critical:  "CRITICAL",
}

// String returns the upper-case name, e.g. "DEGRADED".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts the names
// String returns.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("health: unknown status %q", b)
}

// Trend is the direction recent scores move in. The zero value is Stable.
type Trend uint8

// The trends. See the package comment for the slope rule.
const (
	// Stable: the slope of recent scores is inside the dead band, or there
	// are fewer than three scores.
	Stable Trend = iota
	// Improving: recent scores rise faster than the dead band.
	Improving
	// Degrading: recent scores fall faster than the dead band.
	Degrading
)

var trendNames = [...]string{
	Stable:    "stable",
	Improving: "improving",
	Degrading: "degrading",
}

// String returns the lower-case name used in metrics.HealthView, e.g.
// "improving".
func (t Trend) String() string {
	if int(t) < len(trendNames) {
		return trendNames[t]
	}
	return fmt.Sprintf("Trend(%d)", uint8(t))
}

// MarshalText implements encoding.TextMarshaler.
func (t Trend) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts the names
// String returns.
func (t *Trend) UnmarshalText(b []byte) error {
	for i, n := range trendNames {
		if n == string(b) {
			*t = Trend(i)
			return nil
		}
	}
	return fmt.Errorf("health: unknown trend %q", b)
}
