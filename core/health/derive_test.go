package health

import (
	"encoding/json"
	"math"
	"slices"
	"testing"
)

func TestStatusRules(t *testing.T) {
	ok := func(name string) verdict { return verdict{name: name, passed: true, weight: 1} }
	bad := func(name string) verdict { return verdict{name: name, weight: 1} }
	crit := func(v verdict) verdict { v.critical = true; return v }
	heavy := func(v verdict, w float64) verdict { v.weight = w; return v }

	tests := []struct {
		name        string
		in          []verdict
		wantStatus  Status
		wantScore   float64
		wantFailing []string
	}{
		{"no checks", nil, Unknown, 100, nil},
		{"all pass", []verdict{ok("a"), ok("b"), ok("c")}, Healthy, 100, nil},
		{"one of three fails", []verdict{ok("a"), bad("b"), ok("c")}, Degraded, 200.0 / 3, []string{"b"}},
		{"two of three fail", []verdict{bad("c"), ok("a"), bad("b")}, Unhealthy, 100.0 / 3, []string{"b", "c"}},
		{"half fails is not below 50", []verdict{ok("a"), bad("b")}, Degraded, 50, []string{"b"}},
		{"single check fails", []verdict{bad("a")}, Unhealthy, 0, []string{"a"}},
		{"critical fails alone", []verdict{crit(bad("gw")), ok("a"), ok("b")}, Critical, 50, []string{"gw"}},
		{"critical fails with high score", []verdict{crit(bad("gw")), heavy(ok("a"), 10)}, Critical, 100 * 10.0 / 12, []string{"gw"}},
		{"critical passes, other fails", []verdict{crit(ok("gw")), bad("a")}, Degraded, 100 * 2.0 / 3, []string{"a"}},
		{"critical weighs double", []verdict{crit(ok("gw")), bad("a"), bad("b")}, Degraded, 50, []string{"a", "b"}},
		{"heavy failing check", []verdict{heavy(bad("db"), 3), ok("a"), ok("b")}, Unhealthy, 40, []string{"db"}},
		{"heavy passing check", []verdict{heavy(ok("db"), 3), bad("a"), bad("b")}, Degraded, 60, []string{"a", "b"}},
		{"all fail", []verdict{bad("a"), bad("b")}, Unhealthy, 0, []string{"a", "b"}},
		{"all fail with a critical", []verdict{bad("a"), crit(bad("b"))}, Critical, 0, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			score := scoreOf(tt.in, DefaultCriticalWeight)
			if math.Abs(score-tt.wantScore) > 1e-9 {
				t.Errorf("score = %v, want %v", score, tt.wantScore)
			}
			status, failing := statusOf(tt.in, score, DefaultUnhealthyBelow)
			if status != tt.wantStatus {
				t.Errorf("status = %s, want %s", status, tt.wantStatus)
			}
			if !slices.Equal(failing, tt.wantFailing) {
				t.Errorf("failing = %v, want %v", failing, tt.wantFailing)
			}
		})
	}
}

func TestStabilityTrendReliability(t *testing.T) {
	tests := []struct {
		name      string
		scores    []float64
		stability float64
		slope     float64
		trend     Trend
	}{
		{"empty", nil, 100, 0, Stable},
		{"one score", []float64{40}, 100, 0, Stable},
		{"two scores fall hard but are no trend", []float64{100, 0}, 0, -100, Stable},
		{"flat", []float64{80, 80, 80, 80}, 100, 0, Stable},
		{"alternating extremes", []float64{0, 100, 0, 100}, 0, 20, Improving},
		{"steady rise", []float64{10, 20, 30, 40, 50}, 100 - 2*math.Sqrt(200), 10, Improving},
		{"steady fall", []float64{50, 40, 30, 20, 10}, 100 - 2*math.Sqrt(200), -10, Degrading},
		{"inside dead band", []float64{80, 80.5, 81, 81.5}, 100 - 2*math.Sqrt(0.3125), 0.5, Stable},
		{"just outside dead band", []float64{80, 81.5, 83}, 100 - 2*math.Sqrt(1.5), 1.5, Improving},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stabilityOf(tt.scores); math.Abs(got-tt.stability) > 1e-9 {
				t.Errorf("stability = %v, want %v", got, tt.stability)
			}
			if got := slopeOf(tt.scores); math.Abs(got-tt.slope) > 1e-9 {
				t.Errorf("slope = %v, want %v", got, tt.slope)
			}
			if got := trendOf(tt.scores, DefaultDeadBand); got != tt.trend {
				t.Errorf("trend = %s, want %s", got, tt.trend)
			}
		})
	}

	for _, tt := range []struct {
		passed, runs int
		want         float64
	}{{0, 0, 100}, {3, 4, 75}, {0, 5, 0}, {7, 7, 100}} {
		if got := reliabilityOf(tt.passed, tt.runs); got != tt.want {
			t.Errorf("reliabilityOf(%d, %d) = %v, want %v", tt.passed, tt.runs, got, tt.want)
		}
	}
}

func TestStatusAndTrendText(t *testing.T) {
	for _, tt := range []struct {
		s    Status
		want string
	}{{Unknown, "UNKNOWN"}, {Healthy, "HEALTHY"}, {Degraded, "DEGRADED"}, {Unhealthy, "UNHEALTHY"}, {Critical, "CRITICAL"}, {Status(9), "Status(9)"}} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Status(%d).String() = %q, want %q", uint8(tt.s), got, tt.want)
		}
	}
	for _, tt := range []struct {
		tr   Trend
		want string
	}{{Stable, "stable"}, {Improving, "improving"}, {Degrading, "degrading"}, {Trend(7), "Trend(7)"}} {
		if got := tt.tr.String(); got != tt.want {
			t.Errorf("Trend(%d).String() = %q, want %q", uint8(tt.tr), got, tt.want)
		}
	}

	b, err := json.Marshal(struct {
		S Status `json:"s"`
		T Trend  `json:"t"`
	}{Critical, Degrading})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"s":"CRITICAL","t":"degrading"}` {
		t.Fatalf("JSON = %s", b)
	}
	var back struct {
		S Status `json:"s"`
		T Trend  `json:"t"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.S != Critical || back.T != Degrading {
		t.Fatalf("round trip = %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"s":"FINE"}`), &back); err == nil {
		t.Fatal("unknown status name accepted")
	}
	if err := json.Unmarshal([]byte(`{"t":"sideways"}`), &back); err == nil {
		t.Fatal("unknown trend name accepted")
	}
}
