package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
)

// The `shards.*` variables read the Snapshot's shard summary, durations in
// milliseconds, and a condition on the share of unhealthy shards decides
// the level for the whole process.
func TestShardsVariables(t *testing.T) {
	p, err := LoadSource("shards.hcl", []byte(`
degradation {
  level "moderate" {
    when    = "shards.unhealthy_ratio > 0.2"
    actions = ["disable_analytics"]
  }
  level "severe" {
    when    = "shards.ready < shards.total / 2 || shards.worst_ack_age > 60000"
    actions = ["enable_aggressive_caching"]
  }
  recover { when = "shards.unhealthy == 0 && shards.min_health_score >= 80" }
}
`), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	fleet := func(unhealthy, ready int, ackAge time.Duration) func(*metrics.Snapshot) {
		return func(s *metrics.Snapshot) {
			s.Shards = metrics.Shards{Total: 10, Ready: ready, Healthy: 10 - unhealthy, Unhealthy: unhealthy,
				UnhealthyRatio: float64(unhealthy) / 10, DegradedRatio: float64(unhealthy) / 10,
				WorstAckAge: ackAge, MinHealthScore: 90}
		}
	}
	tests := []struct {
		name    string
		mod     func(*metrics.Snapshot)
		level   Level
		recover bool
		reason  string
	}{
		{"all healthy", fleet(0, 10, time.Second), None, true, "no level"},
		{"two of ten is not more than 20%", fleet(2, 8, time.Second), None, false, "no level"},
		{"three of ten", fleet(3, 7, time.Second), Moderate, false, `level "moderate"`},
		{"six of ten down", fleet(6, 4, time.Second), Severe, false, `level "severe"`},
		{"one zombie shard", fleet(0, 10, 61*time.Second), Severe, true, `level "severe"`},
		{"no shard manager", nil, None, false, "no level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(snap(tt.mod))
			if d.Err != nil {
				t.Fatal(d.Err)
			}
			if d.Level != tt.level || d.Recover != tt.recover || !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("got level %s recover %v reason %q; want %s %v %q", d.Level, d.Recover, d.Reason, tt.level, tt.recover, tt.reason)
			}
		})
	}
	var e Env
	e.Fill(snap(fleet(1, 9, 1500*time.Millisecond)))
	if e.Shards.WorstAckAge != 1500 || e.Shards.Total != 10 || e.Shards.UnhealthyRatio != 0.1 {
		t.Errorf("shards vars = %+v", e.Shards)
	}
}
