package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
)

func TestLatencyCheck(t *testing.T) {
	snap := func(last, avg time.Duration) metrics.Snapshot {
		return metrics.Snapshot{Latency: metrics.Latency{Heartbeat: last, HeartbeatAvg: avg}}
	}
	tests := []struct {
		name      string
		cfg       LatencyConfig
		snap      metrics.Snapshot
		passed    bool
		value     float64
		threshold float64
		message   string
	}{
		{"default threshold, fast", LatencyConfig{}, snap(200*time.Millisecond, 0), true, 0.2, 1, "within 1s"},
		{"default threshold, slow", LatencyConfig{}, snap(1500*time.Millisecond, 0), false, 1.5, 1, "heartbeat latency 1.5s above 1s"},
		{"at the threshold passes", LatencyConfig{Threshold: 300 * time.Millisecond}, snap(300*time.Millisecond, 0), true, 0.3, 0.3, "within"},
		{"just above fails", LatencyConfig{Threshold: 300 * time.Millisecond}, snap(301*time.Millisecond, 0), false, 0.301, 0.3, "above"},
		{"no ACK yet", LatencyConfig{}, snap(0, 0), true, 0, 1, "no heartbeat round trip measured yet"},
		{"average judged", LatencyConfig{UseAverage: true}, snap(100*time.Millisecond, 2*time.Second), false, 2, 1, "mean heartbeat latency 2s above 1s"},
		{"average ignores a slow last one", LatencyConfig{UseAverage: true}, snap(3*time.Second, 400*time.Millisecond), true, 0.4, 1, "within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewLatencyCheck(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Check(context.Background(), tt.snap)
			if r.Passed != tt.passed || r.Value != tt.value || r.Threshold != tt.threshold || r.Unit != "s" {
				t.Errorf("result = %+v, want passed=%v value=%v threshold=%v unit=s", r, tt.passed, tt.value, tt.threshold)
			}
			if !strings.Contains(r.Message, tt.message) {
				t.Errorf("message = %q, want it to contain %q", r.Message, tt.message)
			}
		})
	}
	if _, err := NewLatencyCheck(LatencyConfig{Threshold: -time.Second}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("negative threshold: err = %v, want ErrInvalidConfig", err)
	}
	c, _ := NewLatencyCheck(LatencyConfig{})
	if c.Config().Threshold != DefaultLatencyThreshold {
		t.Fatalf("default threshold = %s", c.Config().Threshold)
	}
}

func TestGatewayCheck(t *testing.T) {
	const hb, hb0 = 40 * time.Second, 0
	// gw is a gateway that has been READY before (Connections 1).
	gw := func(connected bool, state string, hb, age time.Duration) metrics.Snapshot {
		return metrics.Snapshot{Gateway: metrics.Gateway{Connected: connected, State: state, HeartbeatInterval: hb, LastAckAge: age, Connections: 1}}
	}
	// first is a gateway still in its first handshake.
	first := func(state string) metrics.Snapshot {
		return metrics.Snapshot{Gateway: metrics.Gateway{State: state}}
	}
	down := gw(false, "RESUMING", hb0, 0)
	down.Gateway.DownFor = 7 * time.Second
	tests := []struct {
		name      string
		cfg       GatewayConfig
		snap      metrics.Snapshot
		passed    bool
		pending   bool
		value     float64
		threshold float64
		message   string
	}{
		{"connected, fresh ACK", GatewayConfig{}, gw(true, "READY", hb, 10*time.Second), true, false, 10, 60, "connected"},
		{"ACK age at the default limit", GatewayConfig{}, gw(true, "READY", hb, 60*time.Second), true, false, 60, 60, "connected"},
		{"ACK older than 1.5 intervals", GatewayConfig{}, gw(true, "READY", hb, 61*time.Second), false, false, 61, 60, "older than 1m0s"},
		{"interval unknown uses 60s", GatewayConfig{}, gw(true, "CONNECTING", 0, 59*time.Second), true, false, 59, 60, "connected"},
		{"explicit max age", GatewayConfig{MaxAckAge: 5 * time.Second}, gw(true, "READY", hb, 6*time.Second), false, false, 6, 5, "older than 5s"},
		{"not connected", GatewayConfig{}, gw(false, "RECONNECTING", hb, 0), false, false, 0, 60, "gateway not connected (state RECONNECTING)"},
		{"not connected, no state", GatewayConfig{}, gw(false, "", 0, 0), false, false, 0, 60, "state unknown"},
		{"down for a while", GatewayConfig{}, down, false, false, 0, 60, "(state RESUMING) for 7s"},
		// The first handshake is not judged: pending, whatever the state.
		{"first handshake", GatewayConfig{}, first("IDENTIFYING"), false, true, 0, 60, "waiting for the first READY (state IDENTIFYING)"},
		{"nothing yet", GatewayConfig{}, first(""), false, true, 0, 60, "waiting for the first READY (state unknown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewGatewayCheck(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Check(context.Background(), tt.snap)
			if r.Passed != tt.passed || r.Pending != tt.pending || r.Value != tt.value || r.Threshold != tt.threshold {
				t.Errorf("result = %+v, want passed=%v pending=%v value=%v threshold=%v", r, tt.passed, tt.pending, tt.value, tt.threshold)
			}
			if !strings.Contains(r.Message, tt.message) {
				t.Errorf("message = %q, want it to contain %q", r.Message, tt.message)
			}
		})
	}
	if _, err := NewGatewayCheck(GatewayConfig{MaxAckAge: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("negative max age: err = %v, want ErrInvalidConfig", err)
	}
}

func TestErrorRateCheck(t *testing.T) {
	snap := func(rate float64) metrics.Snapshot {
		return metrics.Snapshot{Errors: metrics.Errors{Rate: rate, InWindow: 7, Window: time.Minute}}
	}
	tests := []struct {
		name      string
		cfg       ErrorRateConfig
		rate      float64
		passed    bool
		threshold float64
		message   string
	}{
		{"no errors", ErrorRateConfig{}, 0, true, 0.1, "error rate 0.0% within 10.0%"},
		{"at the default threshold", ErrorRateConfig{}, 0.1, true, 0.1, "within"},
		{"above the default threshold", ErrorRateConfig{}, 0.25, false, 0.1, "error rate 25.0% above 10.0% (7 failures in 1m0s)"},
		{"strict threshold", ErrorRateConfig{Threshold: 0.01}, 0.02, false, 0.01, "above 1.0%"},
		{"tolerant threshold", ErrorRateConfig{Threshold: 0.5}, 0.4, true, 0.5, "within 50.0%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewErrorRateCheck(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			r := c.Check(context.Background(), snap(tt.rate))
			if r.Passed != tt.passed || r.Value != tt.rate || r.Threshold != tt.threshold || r.Unit != "ratio" {
				t.Errorf("result = %+v, want passed=%v value=%v threshold=%v", r, tt.passed, tt.rate, tt.threshold)
			}
			if !strings.Contains(r.Message, tt.message) {
				t.Errorf("message = %q, want it to contain %q", r.Message, tt.message)
			}
		})
	}
	for _, bad := range []float64{-0.1, 1.5} {
		if _, err := NewErrorRateCheck(ErrorRateConfig{Threshold: bad}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("threshold %v: err = %v, want ErrInvalidConfig", bad, err)
		}
	}
}
