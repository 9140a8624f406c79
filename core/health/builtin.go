package health

import (
	"context"
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
)

// The names the built-in checks are usually registered under, matching the
// `type` of a check block in a policy file.
const (
	LatencyName   = "latency"
	GatewayName   = "gateway"
	ErrorRateName = "error_rate"
)

// Defaults of the built-in checks' configurations.
const (
	// DefaultLatencyThreshold is LatencyConfig.Threshold's default.
	DefaultLatencyThreshold = time.Second
	// DefaultAckAgeFactor multiplies the gateway's heartbeat interval to
	// give GatewayConfig.MaxAckAge's default.
	DefaultAckAgeFactor = 1.5
	// DefaultMaxAckAge is GatewayConfig.MaxAckAge's default while the
	// heartbeat interval is not known yet (before the first HELLO).
	DefaultMaxAckAge = 60 * time.Second
	// DefaultErrorRateThreshold is ErrorRateConfig.Threshold's default.
	DefaultErrorRateThreshold = 0.1
)

// LatencyConfig configures a LatencyCheck. The zero value is valid.
type LatencyConfig struct {
	// Threshold is the highest heartbeat round trip that passes.
	// Default: DefaultLatencyThreshold (1s).
	Threshold time.Duration
	// UseAverage judges the window's mean round trip
	// (Snapshot.Latency.HeartbeatAvg) instead of the last one
	// (Snapshot.Latency.Heartbeat). Default: false, the last one.
	UseAverage bool
}

// LatencyCheck passes while the gateway heartbeat round trip is at most its
// threshold. Before the first heartbeat ACK there is no round trip to judge
// and the check passes with a message saying so; a missing gateway is the
// gateway check's business. Value and Threshold are in seconds.
type LatencyCheck struct {
	cfg LatencyConfig
}

// NewLatencyCheck returns a LatencyCheck. It fails with ErrInvalidConfig if
// the threshold is negative.
func NewLatencyCheck(cfg LatencyConfig) (*LatencyCheck, error) {
	if cfg.Threshold < 0 {
		return nil, fmt.Errorf("health: latency check: %w: threshold %s is negative", ErrInvalidConfig, cfg.Threshold)
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultLatencyThreshold
	}
	return &LatencyCheck{cfg: cfg}, nil
}

// Config returns the configuration in use, defaults filled in.
func (c *LatencyCheck) Config() LatencyConfig { return c.cfg }

// Check compares the heartbeat round trip in s with the threshold.
func (c *LatencyCheck) Check(_ context.Context, s metrics.Snapshot) Result {
	what, rtt := "heartbeat latency", s.Latency.Heartbeat
	if c.cfg.UseAverage {
		what, rtt = "mean heartbeat latency", s.Latency.HeartbeatAvg
	}
	r := Result{Value: rtt.Seconds(), Threshold: c.cfg.Threshold.Seconds(), Unit: "s"}
	switch {
	case rtt <= 0:
		r.Passed = true
		r.Message = "no heartbeat round trip measured yet"
	case rtt > c.cfg.Threshold:
		r.Message = fmt.Sprintf("%s %s above %s", what, rtt, c.cfg.Threshold)
	default:
		r.Passed = true
		r.Message = fmt.Sprintf("%s %s within %s", what, rtt, c.cfg.Threshold)
	}
	return r
}

// GatewayConfig configures a GatewayCheck. The zero value is valid.
type GatewayConfig struct {
	// MaxAckAge is the oldest last heartbeat ACK that passes. Default:
	// DefaultAckAgeFactor (1.5) times the heartbeat interval from HELLO
	// (Snapshot.Gateway.HeartbeatInterval), or DefaultMaxAckAge (60s)
	// while that interval is unknown. One missed ACK makes the age pass
	// 1.5 intervals, so the default fails a zombie connection about half an
	// interval after its first missing ACK.
	MaxAckAge time.Duration
}

// GatewayCheck passes while the gateway session is connected and its last
// heartbeat ACK is no older than the maximum age. Until the first session
// comes up (Snapshot.Gateway.Connections is 0) it is pending, not failing:
// a first handshake is not an outage, and a failure would stand for a
// whole interval after READY. Value and Threshold are the ACK age and the
// maximum, in seconds.
type GatewayCheck struct {
	cfg GatewayConfig
}

// NewGatewayCheck returns a GatewayCheck. It fails with ErrInvalidConfig if
// MaxAckAge is negative.
func NewGatewayCheck(cfg GatewayConfig) (*GatewayCheck, error) {
	if cfg.MaxAckAge < 0 {
		return nil, fmt.Errorf("health: gateway check: %w: max ACK age %s is negative", ErrInvalidConfig, cfg.MaxAckAge)
	}
	return &GatewayCheck{cfg: cfg}, nil
}

// Config returns the configuration as given; a zero MaxAckAge means the
// default described on GatewayConfig.
func (c *GatewayCheck) Config() GatewayConfig { return c.cfg }

// MaxAckAge returns the limit that applies to s: the configured one, or the
// default derived from s's heartbeat interval.
func (c *GatewayCheck) MaxAckAge(s metrics.Snapshot) time.Duration {
	if c.cfg.MaxAckAge > 0 {
		return c.cfg.MaxAckAge
	}
	if hb := s.Gateway.HeartbeatInterval; hb > 0 {
		return time.Duration(float64(hb) * DefaultAckAgeFactor)
	}
	return DefaultMaxAckAge
}

// Check looks at the gateway's connection flag and last ACK age in s.
func (c *GatewayCheck) Check(_ context.Context, s metrics.Snapshot) Result {
	limit := c.MaxAckAge(s)
	age := s.Gateway.LastAckAge
	r := Result{Value: age.Seconds(), Threshold: limit.Seconds(), Unit: "s"}
	state := s.Gateway.State
	if state == "" {
		state = "unknown"
	}
	switch {
	case !s.Gateway.Connected && s.Gateway.Connections == 0:
		r.Pending = true
		r.Message = fmt.Sprintf("waiting for the first READY (state %s)", state)
	case !s.Gateway.Connected:
		r.Message = fmt.Sprintf("gateway not connected (state %s) for %s", state, s.Gateway.DownFor)
	case age > limit:
		r.Message = fmt.Sprintf("last heartbeat ACK %s ago, older than %s", age, limit)
	default:
		r.Passed = true
		r.Message = fmt.Sprintf("connected, last heartbeat ACK %s ago", age)
	}
	return r
}

// ErrorRateConfig configures an ErrorRateCheck. The zero value is valid.
type ErrorRateConfig struct {
	// Threshold is the highest error rate (failed / total operations over
	// the Recorder's window, in [0, 1]) that passes.
	// Default (0): DefaultErrorRateThreshold (0.1); a check that tolerates
	// no errors at all uses a tiny threshold such as 1e-9.
	Threshold float64
}

// ErrorRateCheck passes while Snapshot.Errors.Rate is at most its
// threshold. Value and Threshold are ratios in [0, 1].
type ErrorRateCheck struct {
	cfg ErrorRateConfig
}

// NewErrorRateCheck returns an ErrorRateCheck. It fails with
// ErrInvalidConfig if the threshold is negative or above 1.
func NewErrorRateCheck(cfg ErrorRateConfig) (*ErrorRateCheck, error) {
	if cfg.Threshold < 0 || cfg.Threshold > 1 {
		return nil, fmt.Errorf("health: error rate check: %w: threshold %g is outside [0, 1]", ErrInvalidConfig, cfg.Threshold)
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultErrorRateThreshold
	}
	return &ErrorRateCheck{cfg: cfg}, nil
}

// Config returns the configuration in use, defaults filled in.
func (c *ErrorRateCheck) Config() ErrorRateConfig { return c.cfg }

// Check compares the error rate in s with the threshold.
func (c *ErrorRateCheck) Check(_ context.Context, s metrics.Snapshot) Result {
	rate := s.Errors.Rate
	r := Result{Value: rate, Threshold: c.cfg.Threshold, Unit: "ratio"}
	if rate > c.cfg.Threshold {
		r.Message = fmt.Sprintf("error rate %.1f%% above %.1f%% (%d failures in %s)",
			rate*100, c.cfg.Threshold*100, s.Errors.InWindow, s.Errors.Window)
		return r
	}
	r.Passed = true
	r.Message = fmt.Sprintf("error rate %.1f%% within %.1f%%", rate*100, c.cfg.Threshold*100)
	return r
}
