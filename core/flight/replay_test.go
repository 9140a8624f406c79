package flight_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/policy"
)

const testPolicy = `
degradation {
  recovery_delay = "%s"
  level "moderate" {
    when    = "errors.rate > 0.1"
    actions = ["disable_analytics", "increase_timeouts"]
  }
  level "critical" {
    when    = "errors.consecutive >= 10"
    actions = ["enable_read_only_mode"]
  }
  recover {
    when = "errors.rate < 0.05"
  }
}
`

func mustPolicy(t testing.TB, name, delay string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadSource(name, fmt.Appendf(nil, testPolicy, delay), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// incident: 3 quiet ticks, 3 ticks of 20% errors, 3 at 8% (below the
// level, above recover), then 16 at 1%; one tick a second.
func incident() *flight.Recording {
	var rec flight.Recording
	for i := range 25 {
		at := t0.Add(time.Duration(i) * time.Second)
		rate := 0.0
		switch {
		case i >= 3 && i < 6:
			rate = 0.2
		case i >= 6 && i < 9:
			rate = 0.08
		case i >= 9:
			rate = 0.01
		}
		rec.Lines = append(rec.Lines, flight.Line{Time: at, Snapshot: snap(at, rate, 0)})
	}
	return &rec
}

func TestReplayHysteresisAndRecoveryDelay(t *testing.T) {
	tests := []struct {
		delay        string
		up, down     int // tick indexes of the changes
		flapsAvoided int
	}{
		{"10s", 3, 19, 13}, // held 6..8 (no recover), 9..18 (delay)
		{"0s", 3, 9, 3},    // held 6..8 only
		{"2s", 3, 11, 5},
	}
	for _, tc := range tests {
		t.Run(tc.delay, func(t *testing.T) {
			tl, err := flight.Replay(incident(), mustPolicy(t, "p.hcl", tc.delay))
			if err != nil {
				t.Fatal(err)
			}
			if len(tl.Changes) != 2 || tl.Summary.Transitions != 2 {
				t.Fatalf("changes %+v", tl.Changes)
			}
			up, down := tl.Changes[0], tl.Changes[1]
			if !up.Time.Equal(t0.Add(time.Duration(tc.up)*time.Second)) || up.From != policy.None || up.To != policy.Moderate ||
				!slices.Equal(up.Applied, []string{"disable_analytics", "increase_timeouts"}) {
				t.Errorf("up: %+v", up)
			}
			if !down.Time.Equal(t0.Add(time.Duration(tc.down)*time.Second)) || down.To != policy.None ||
				!slices.Equal(down.RolledBack, []string{"increase_timeouts", "disable_analytics"}) {
				t.Errorf("down: %+v", down)
			}
			if tl.Summary.FlapsAvoided != tc.flapsAvoided {
				t.Errorf("flaps avoided %d, want %d", tl.Summary.FlapsAvoided, tc.flapsAvoided)
			}
			wantModerate := time.Duration(tc.down-tc.up) * time.Second
			if got := tl.Summary.TimeAt[policy.Moderate]; got.Level != policy.Moderate || got.Duration != wantModerate || tl.Summary.Degraded != wantModerate {
				t.Errorf("time at moderate %+v degraded %v, want %v", got, tl.Summary.Degraded, wantModerate)
			}
			if tl.Summary.MaxLevel != policy.Moderate || tl.Summary.Duration != 24*time.Second || len(tl.Ticks) != 25 {
				t.Errorf("summary %+v, %d ticks", tl.Summary, len(tl.Ticks))
			}
		})
	}
}

func TestReplayRejectsBadInput(t *testing.T) {
	p := mustPolicy(t, "p.hcl", "1s")
	if _, err := flight.Replay(incident(), nil); !errors.Is(err, flight.ErrNoPolicy) {
		t.Errorf("nil policy: %v", err)
	}
	if _, err := flight.Replay(&flight.Recording{}, p); !errors.Is(err, flight.ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	rec := incident()
	rec.Lines[5].Time = t0
	if _, err := flight.Replay(rec, p); !errors.Is(err, flight.ErrTimeBackwards) {
		t.Errorf("backwards: %v", err)
	}
}

func ExampleReplay() {
	p, err := policy.LoadSource("policy.hcl", []byte(`
degradation {
  recovery_delay = "5s"
  level "moderate" {
    when    = "errors.rate > 0.1"
    actions = ["disable_analytics"]
  }
  recover { when = "errors.rate < 0.05" }
}
`), policy.Options{})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	rec := &flight.Recording{}
	for i, rate := range []float64{0, 0.3, 0.3, 0, 0, 0, 0, 0, 0, 0} {
		l := flight.Line{Time: start.Add(time.Duration(i) * time.Second)}
		l.Snapshot.Time = l.Time
		l.Snapshot.Errors.Rate = rate
		rec.Lines = append(rec.Lines, l)
	}
	tl, err := flight.Replay(rec, p)
	if err != nil {
		panic(err)
	}
	for _, c := range tl.Changes {
		fmt.Println(c.Time.Sub(start), c.From, "->", c.To, c.Applied, c.RolledBack)
	}
	fmt.Println("flaps avoided:", tl.Summary.FlapsAvoided)
	// Output:
	// 1s NONE -> MODERATE [disable_analytics] []
	// 8s MODERATE -> NONE [] [disable_analytics]
	// flaps avoided: 5
}
