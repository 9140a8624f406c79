package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
)

const incidentFile = "testdata/policytest/rolling-outage.jsonl"

// writeIncident synthesises the rolling-outage recording (go test -update
// rewrites it) through the flight recorder with a fake clock, one tick a
// second for five minutes:
//
//	  0-30s  quiet: connected, heartbeat 80ms
//	 30-40s  latency spike: heartbeat 1.2s          (mark "fault" at 30s)
//	 40-60s  error burst: 12% errors, 4 in a row
//	 60-90s  gateway down: 40% errors, breaker OPEN (close 1006 at 60s)
//	 90-120s flapping: errors 2.5% and 4% alternately (mark "fault cleared" at 90s)
//	120-300s quiet, errors 1% until 180s
func writeIncident(path string) error {
	start := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	old, _ := filepath.Glob(path + "*") // Open would rotate an old recording
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	rec, err := flight.Open(flight.Settings{Path: path, Clock: clk})
	if err != nil {
		return err
	}
	for i := 0; i <= 300; i++ {
		now := clk.Now()
		var s metrics.Snapshot
		s.Time, s.Uptime = now, time.Duration(i+600)*time.Second
		s.Latency.Heartbeat = 80 * time.Millisecond
		s.Gateway = metrics.Gateway{State: "READY", Connected: true, HeartbeatInterval: 41250 * time.Millisecond, LastAckAge: time.Duration(i%41) * time.Second}
		s.Health = metrics.HealthView{Score: 100, Status: "HEALTHY", Trend: "stable"}
		s.Breaker.State = "CLOSED"
		switch {
		case i >= 30 && i < 40:
			s.Latency.Heartbeat = 1200 * time.Millisecond
			s.Health = metrics.HealthView{Score: 80, Status: "DEGRADED", Trend: "degrading"}
		case i >= 40 && i < 60:
			s.Errors.Rate, s.Errors.Consecutive = 0.12, 4
			s.Health = metrics.HealthView{Score: 70, Status: "DEGRADED", Trend: "degrading"}
		case i >= 60 && i < 90:
			s.Errors.Rate, s.Errors.Consecutive = 0.4, uint64(5+i-60)
			s.Gateway.State, s.Gateway.Connected, s.Gateway.LastAckAge, s.Gateway.LastCloseCode = "BACKING_OFF", false, 0, 1006
			s.Breaker.State = "OPEN"
			s.Health = metrics.HealthView{Score: 20, Status: "CRITICAL", Trend: "degrading"}
		case i >= 90 && i < 120:
			s.Errors.Rate = 0.025
			if i%2 == 1 {
				s.Errors.Rate = 0.04
			}
			s.Health = metrics.HealthView{Score: 85, Status: "HEALTHY", Trend: "improving"}
		case i >= 120 && i < 180:
			s.Errors.Rate = 0.01
			s.Health = metrics.HealthView{Score: 95, Status: "HEALTHY", Trend: "improving"}
		}
		switch i {
		case 30:
			rec.Mark("fault")
		case 60:
			rec.Event(events.ForShard(now, 0, events.Error{Source: "conn", Kind: "connection_lost", Message: "websocket: close 1006 (abnormal closure)", CloseCode: 1006}))
		case 75:
			rec.Event(events.ForShard(now, 0, events.Error{Source: "conn", Kind: "dial_failed", Message: "dial tcp: connection refused"}))
		case 90:
			rec.Mark("fault cleared")
		}
		if err := rec.Tick(s, policy.Decision{}, policy.None); err != nil {
			return err
		}
		clk.Advance(time.Second)
	}
	return rec.Close()
}

// TestPolicyTestGolden runs `policy test` over the rolling-outage incident
// and compares each transcript with its golden file.
func TestPolicyTestGolden(t *testing.T) {
	if *update {
		if err := writeIncident(incidentFile); err != nil {
			t.Fatal(err)
		}
	}
	medium, large := "../../policies/medium.hcl", "../../policies/large.hcl"
	// A shipped incident, recorded live (testdata/incidents/README.md).
	storm, stormTests := "../../testdata/incidents/rate-limit-storm.jsonl", "testdata/policytest/rate-limit-storm.test.hcl"
	tests := []struct {
		golden string
		args   []string
		code   int
	}{
		{"timeline", []string{"policy", "test", medium, "--trace", incidentFile}, 0},
		{"compare", []string{"policy", "test", medium, "--trace", incidentFile, "--compare", large}, 0},
		{"tests-pass", []string{"policy", "test", medium, "--trace", incidentFile, "--tests", "testdata/policytest/pass.test.hcl"}, 0},
		{"tests-fail", []string{"policy", "test", large, "--trace", incidentFile, "--tests", "testdata/policytest/fail.test.hcl"}, 1},
		{"incident-compare", []string{"policy", "test", medium, "--trace", storm, "--compare", large}, 0},
		{"incident-tests-pass", []string{"policy", "test", medium, "--trace", storm, "--tests", stormTests}, 0},
		{"incident-tests-fail", []string{"policy", "test", large, "--trace", storm, "--tests", stormTests}, 1},
		{"no-trace", []string{"policy", "test", medium}, 2},
		{"corrupt", []string{"policy", "test", medium, "--trace", "testdata/policytest/corrupt.jsonl"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			code, stdout, stderr := runPolicy(tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, stderr)
			}
			golden(t, filepath.Join("testdata/policytest", tc.golden+".golden"), transcript(tc.args, code, stdout, stderr))
		})
	}
}

// TestPolicyTestJSON: --json gives the timeline and the failures as data.
func TestPolicyTestJSON(t *testing.T) {
	code, stdout, stderr := runPolicy("policy", "test", "../../policies/large.hcl", "--trace", incidentFile,
		"--tests", "testdata/policytest/fail.test.hcl", "--compare", "../../policies/medium.hcl", "--json")
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var rep struct {
		Lines    int             `json:"lines"`
		Timeline flight.Timeline `json:"timeline"`
		Compare  flight.Timeline `json:"compare"`
		Failures []flight.Failure
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 301 || len(rep.Timeline.Ticks) != 301 || rep.Timeline.Summary.Transitions == 0 ||
		rep.Compare.Policy != "../../policies/medium.hcl" || len(rep.Failures) == 0 || rep.Failures[0].Values == "" {
		t.Fatalf("report: lines %d, %d ticks, summary %+v, compare %q, failures %+v",
			rep.Lines, len(rep.Timeline.Ticks), rep.Timeline.Summary, rep.Compare.Policy, rep.Failures)
	}
}

// TestPolicyTestFindsTheTestFileNextToThePolicy: POLICY.test.hcl is used
// when --tests is not given.
func TestPolicyTestFindsTheTestFileNextToThePolicy(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "bot.hcl")
	src, err := os.ReadFile("../../policies/medium.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pol, src, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := "assert \"never critical\" {\n  level = \"critical\"\n  never = true\n}\nassert \"never degraded\" {\n  level = \"> none\"\n  never = true\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "bot.test.hcl"), []byte(tests), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runPolicy("policy", "test", pol, "--trace", incidentFile)
	if code != 1 || !strings.Contains(stderr, `FAIL "never degraded"`) || strings.Contains(stderr, `"never critical"`) {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}
