package health

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Checker is one health check. The monitor gives each check a name when it
// is registered (Monitor.Add), so a Checker only has to judge.
//
// Check should return promptly once ctx is done. A check that does not is
// still cut off: the monitor stops waiting at the check's timeout and counts
// the run as failed (see the package comment for what happens to the
// abandoned call). Check may be called from several goroutines over time;
// calls for the same registration overlap only when an attempt starts while
// a call abandoned after its timeout has not returned yet. A Checker that
// also implements WorkerChecker can ask for its calls to be made by one
// goroutine kept between runs.
type Checker interface {
	// Check judges s (and anything else the check watches) and reports.
	// The monitor fills in Result.Name, Time, Duration, Attempts and
	// TimedOut; the check sets Passed, Value, Threshold, Unit and Message.
	Check(ctx context.Context, s metrics.Snapshot) Result
}

// CheckFunc adapts an ordinary function to Checker.
type CheckFunc func(ctx context.Context, s metrics.Snapshot) Result

// Check calls f(ctx, s).
func (f CheckFunc) Check(ctx context.Context, s metrics.Snapshot) Result { return f(ctx, s) }

// Result is the outcome of one run of one check, after retries.
type Result struct {
	// Name is the name the check was registered under (set by the monitor).
	Name string `json:"name"`
	// Passed reports whether the check is satisfied.
	Passed bool `json:"passed"`
	// Value is what the check observed, in Unit (e.g. seconds of latency).
	Value float64 `json:"value"`
	// Threshold is the limit Value was compared with, in Unit; 0 when the
	// check has none.
	Threshold float64 `json:"threshold"`
	// Unit names the unit of Value and Threshold, e.g. "s" or "ratio".
	Unit string `json:"unit,omitempty"`
	// Message is a short human-readable explanation, e.g.
	// "heartbeat latency 1.2s above 1s".
	Message string `json:"message,omitempty"`
	// Time is when the run's first attempt started (set by the monitor).
	Time time.Time `json:"time"`
	// Duration is the whole run, first attempt to final verdict, retries
	// and retry delays included (set by the monitor).
	Duration time.Duration `json:"duration"`
	// Attempts is how many attempts the run took, 1 + retries used (set by
	// the monitor).
	Attempts int `json:"attempts"`
	// TimedOut reports that the final attempt was cut off by its timeout
	// (set by the monitor).
	TimedOut bool `json:"timed_out,omitempty"`
	// Pending reports that the check could not judge yet: what it watches
	// is not there to judge (the gateway has not been READY yet, the
	// plugin serving the check is still starting). A pending result
	// counts as neither passed nor failed: the monitor does not retry it,
	// leaves the check's previous verdict (none before its first) in the
	// status and score, and runs the check again at its next tick rather
	// than an interval later. The check sets it, with a Message saying
	// what it waits for; Passed is ignored then.
	Pending bool `json:"pending,omitempty"`
}

// CheckConfig is how the monitor runs one check. The zero value is valid:
// every zero field takes the monitor's default from Options.
type CheckConfig struct {
	// Interval is the time between runs. Default: Options.Interval.
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout bounds each attempt. Default: Options.Timeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Retries is how many more attempts a failed attempt gets before the
	// run counts as failed. Default (0): Options.Retries; negative: none.
	Retries int `json:"retries,omitempty"`
	// Critical makes a failure of this check put the monitor in Critical
	// and weighs the check Options.CriticalWeight times in the score.
	// Default: false.
	Critical bool `json:"critical,omitempty"`
	// Weight is the check's weight in the score. Default: 1.
	Weight float64 `json:"weight,omitempty"`
	// Disabled stops the check from running and leaves it out of the
	// status and score while keeping its registration. Default: false
	// (enabled).
	Disabled bool `json:"disabled,omitempty"`
}

func (c CheckConfig) validate() error {
	switch {
	case c.Interval < 0:
		return fmt.Errorf("%w: interval %s is negative", ErrInvalidConfig, c.Interval)
	case c.Timeout < 0:
		return fmt.Errorf("%w: timeout %s is negative", ErrInvalidConfig, c.Timeout)
	case c.Weight < 0:
		return fmt.Errorf("%w: weight %g is negative", ErrInvalidConfig, c.Weight)
	}
	return nil
}

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrDuplicateCheck is returned by Monitor.Add when a check with the
	// same name is already registered.
	ErrDuplicateCheck = errors.New("check already registered")
	// ErrUnknownCheck is returned by Monitor.Remove, Configure and Replace
	// when no check has the name.
	ErrUnknownCheck = errors.New("no check with that name")
	// ErrInvalidConfig is returned when a name is empty, a Checker is nil,
	// or a setting is out of range (a negative duration, weight or
	// threshold).
	ErrInvalidConfig = errors.New("invalid health check configuration")
	// ErrRunning is returned by Monitor.Start when the monitor's loop is
	// already running.
	ErrRunning = errors.New("monitor already running")
)
