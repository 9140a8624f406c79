package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
)

func snap(mod func(*metrics.Snapshot)) *metrics.Snapshot {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &metrics.Snapshot{
		Time:    t0.Add(time.Hour),
		Uptime:  time.Hour,
		Latency: metrics.Latency{Heartbeat: 120 * time.Millisecond, HeartbeatAvg: 110 * time.Millisecond, RESTP50: 80 * time.Millisecond, RESTP95: 200 * time.Millisecond, RESTP99: 400 * time.Millisecond},
		Errors:  metrics.Errors{Rate: 0.01, InWindow: 2, Consecutive: 0, Total: 40, Window: 5 * time.Minute},
		Gateway: metrics.Gateway{State: "READY", Connected: true, HeartbeatInterval: 41250 * time.Millisecond, LastAckAge: 3 * time.Second,
			Sequence: 1234, Reconnects: 1, Resumes: 1, Identifies: 2, LastCloseCode: 1006, Dispatches: 5000},
		REST:        metrics.REST{Requests: 300, RateLimited: 1, ServerErrors: 2, Failures: 0},
		Breaker:     metrics.BreakerView{State: "CLOSED", Failures: 1, Rejections: 0},
		Health:      metrics.HealthView{Score: 97, Status: "HEALTHY", Trend: "stable"},
		Degradation: metrics.DegradationView{Level: "NONE", Since: t0},
		Shard:       metrics.ShardInfo{ID: 0, Count: 1},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func TestEnvFillUnits(t *testing.T) {
	var e Env
	e.Fill(snap(nil))
	if e.Latency.Heartbeat != 120 || e.Gateway.HeartbeatInterval != 41250 || e.Errors.Window != 300000 {
		t.Errorf("durations are not milliseconds: %+v %+v", e.Latency, e.Gateway)
	}
	if e.Degradation.Age != float64(time.Hour/time.Millisecond) || e.Uptime != 3.6e6 {
		t.Errorf("degradation.age = %v, uptime = %v; want 1h in ms", e.Degradation.Age, e.Uptime)
	}
	var d Env
	d.Fill(snap(func(s *metrics.Snapshot) {
		s.Gateway.Connected, s.Gateway.LastAckAge, s.Gateway.DownFor = false, 0, 90*time.Second
	}))
	if d.Gateway.DownFor != 90000 {
		t.Errorf("gateway.down_for = %v, want 90000 (90s in ms)", d.Gateway.DownFor)
	}
	var z Env
	z.Fill(&metrics.Snapshot{})
	if z.Degradation.Level != "NONE" || z.Degradation.Age != 0 {
		t.Errorf("zero snapshot: level %q age %v", z.Degradation.Level, z.Degradation.Age)
	}
}

func TestEvaluateDefault(t *testing.T) {
	p := Default()
	all := func(l Level) []string {
		var out []string
		for x := Minimal; x <= l; x++ {
			out = append(out, defaultLevelActions[x]...)
		}
		return out
	}
	tests := []struct {
		name    string
		mod     func(*metrics.Snapshot)
		level   Level
		recover bool
		reason  string
	}{
		{"healthy", nil, None, true, "no level condition holds"},
		{"slow heartbeat", func(s *metrics.Snapshot) { s.Latency.Heartbeat = 1500 * time.Millisecond }, Minimal, false, `level "minimal"`},
		{"hysteresis band", func(s *metrics.Snapshot) { s.Latency.Heartbeat = 700 * time.Millisecond }, None, false, "no level"},
		{"error burst", func(s *metrics.Snapshot) { s.Errors.Rate = 0.3 }, Moderate, false, `level "moderate"`},
		{"failure streak", func(s *metrics.Snapshot) { s.Errors.Consecutive = 20 }, Severe, false, `level "severe"`},
		{"outage", func(s *metrics.Snapshot) { s.Errors.Rate = 0.95; s.Errors.Consecutive = 50 }, Critical, false, `level "critical"`},
		{"boundary is strict", func(s *metrics.Snapshot) { s.Latency.Heartbeat = time.Second }, None, false, "no level"},
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
			if want := all(tt.level); !reflect.DeepEqual(d.Actions, want) {
				t.Errorf("actions %v, want %v", d.Actions, want)
			}
		})
	}
}

func TestEvaluateDisabledAndSparseLevels(t *testing.T) {
	p, err := LoadSource("p.hcl", []byte(`degradation { enabled = false }`), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Evaluate(snap(func(s *metrics.Snapshot) { s.Errors.Rate = 1 })); d.Level != None || !d.Recover {
		t.Errorf("disabled degradation decided %+v", d)
	}
	p, err = Load("testdata/valid/levels_only.hcl", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	d := p.Evaluate(snap(func(s *metrics.Snapshot) { s.Errors.Rate = 0.9 }))
	if d.Level != Moderate || !reflect.DeepEqual(d.Actions, []string{"disable_analytics", "increase_timeouts"}) {
		t.Errorf("only moderate is declared; got %+v", d)
	}
	if !strings.Contains(d.Reason, "levels_only.hcl:8") {
		t.Errorf("reason %q does not name the file and line", d.Reason)
	}
}

func TestChooseRecovery(t *testing.T) {
	p := Default()
	names := func(rs []RecoveryRule) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Name)
		}
		return out
	}
	tests := []struct {
		name string
		err  ErrorInfo
		mod  func(*metrics.Snapshot)
		want []string
	}{
		{"abnormal close resumes first", ErrorInfo{Kind: "close", CloseCode: 1006}, nil, []string{"resume", "reconnect", "reidentify"}},
		{"session timed out cannot resume", ErrorInfo{Kind: "close", CloseCode: 4009}, nil, []string{"reconnect", "reidentify"}},
		{"authentication failed is fatal", ErrorInfo{Kind: "close", CloseCode: 4004}, nil, nil},
		{"fatal flag", ErrorInfo{Kind: "dial", Fatal: true}, nil, nil},
		{"zombie restarts the client last", ErrorInfo{Kind: "zombie"}, nil, []string{"resume", "reconnect", "reidentify", "restart_client"}},
		{"streak restarts the client", ErrorInfo{Kind: "dial"}, func(s *metrics.Snapshot) { s.Errors.Consecutive = 3 }, []string{"resume", "reconnect", "reidentify", "restart_client"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.ChooseRecovery(tt.err, snap(tt.mod))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Errorf("got %v, want %v", names(got), tt.want)
			}
		})
	}

	full, err := Load("testdata/valid/full.hcl", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	got, err := full.ChooseRecovery(ErrorInfo{Kind: "dial", Message: "read: ECONNRESET"}, snap(func(s *metrics.Snapshot) { s.Errors.Consecutive = 4 }))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"restart_client", "failover", "resume"}; !reflect.DeepEqual(names(got), want) {
		t.Errorf("full.hcl: got %v, want %v (priority order; resume has no condition)", names(got), want)
	}
	if got[1].Use != "pgping.failover" || got[2].Priority != DefaultRecoveryPriority || got[2].MaxAttempts != 3 {
		t.Errorf("rule fields: %+v", got)
	}
}

// TestConditionsCannotSeeErrorInLevels also checks the error variables do
// not leak from one recovery evaluation into a pooled evaluator's later
// degradation evaluation.
func TestEvaluatorPoolResetsError(t *testing.T) {
	p := Default()
	if _, err := p.ChooseRecovery(ErrorInfo{Kind: "zombie", Message: "x"}, snap(nil)); err != nil {
		t.Fatal(err)
	}
	e := p.evaluator()
	if e.env.Error != (ErrorInfo{}) {
		t.Errorf("pooled evaluator kept error %+v", e.env.Error)
	}
}

func TestEvaluateConcurrent(t *testing.T) {
	p := Default()
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 200; i++ {
				rate := float64((i+g)%10) / 10
				d := p.Evaluate(snap(func(s *metrics.Snapshot) { s.Errors.Rate = rate }))
				want := None
				switch {
				case rate > 0.8:
					want = Critical
				case rate > 0.4:
					want = Severe
				case rate > 0.2:
					want = Moderate
				case rate > 0.1:
					want = Minimal
				}
				if d.Level != want {
					t.Errorf("rate %v: level %s, want %s", rate, d.Level, want)
					return
				}
			}
		}(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

func TestEvaluateAllocs(t *testing.T) {
	p, err := Load("../../policies/default.hcl", testOptions())
	if err != nil {
		t.Fatal(err)
	}
	s := snap(nil)
	e := p.NewEvaluator()
	if n := testing.AllocsPerRun(100, func() { e.Evaluate(s) }); n != 0 {
		t.Errorf("Evaluator.Evaluate allocates %v times", n)
	}
	var dst []RecoveryRule
	info := ErrorInfo{Kind: "close", CloseCode: 1006}
	if n := testing.AllocsPerRun(100, func() { dst, _ = e.AppendRecovery(dst[:0], info, s) }); n != 0 {
		t.Errorf("AppendRecovery allocates %v times", n)
	}
}

func TestVariablesDocumented(t *testing.T) {
	for _, v := range Variables() {
		if v.Unit == "" || v.Doc == "" {
			t.Errorf("variable %s lacks unit or doc", v.Name)
		}
		if strings.HasPrefix(v.Name, "error.") != v.RecoveryOnly {
			t.Errorf("variable %s: RecoveryOnly = %v", v.Name, v.RecoveryOnly)
		}
	}
}

// differentialExprs cover every construct the native evaluator handles,
// and some it leaves to the VM.
var differentialExprs = []string{
	"latency.heartbeat > 1000 || errors.rate > 0.1 || errors.consecutive >= 5",
	"latency.heartbeat < 500 && errors.rate < 0.05 && errors.consecutive < 2.5",
	"errors.consecutive == 3 || errors.consecutive != 4 && errors.total <= 10",
	"errors.consecutive == 3.0 || latency.heartbeat == 1000",
	"latency.heartbeat > duration('1.5s') and not gateway.connected",
	"gateway.state == 'READY' && breaker.state != 'OPEN'",
	"gateway.state < breaker.state || gateway.state >= 'M'",
	"error.close_code in [4004, 4010, 4011] || error.kind in ['zombie', 'timeout']",
	"error.close_code not in [1000, 1001, 4007, 4009]",
	"errors.consecutive in [1, 2.0, 3]",
	"error.message contains 'ECONNRESET' || error.message startsWith 'i/o' || error.message endsWith 'out'",
	"error.message matches '^read: [A-Z]+$'",
	"(errors.in_window + errors.consecutive) * 2 - errors.total > 10",
	"errors.in_window / 4 > 2",
	"latency.heartbeat / gateway.heartbeat_interval > 0.5",
	"gateway.last_ack_age / (gateway.heartbeat_interval + 1) >= 1.5",
	"!gateway.connected && gateway.down_for > duration('1m') || gateway.down_for < gateway.last_ack_age",
	"-errors.consecutive < -3 || +latency.heartbeat > 100",
	"errors.consecutive ** 2 > 100",
	"(gateway.connected ? latency.heartbeat : gateway.last_ack_age) > 1000",
	"(health.score > 50 ? 'ok' : 'bad') == 'ok'",
	"(errors.rate > 0.5 ? 1 : 2) == 1",
	"len(gateway.state) > 4 && lower(gateway.state) == 'ready' || upper(health.trend) == 'STABLE'",
	"trim(' ' + error.kind + ' ') == 'zombie'",
	"!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014] && (error.kind in ['timeout', 'zombie'] || errors.consecutive >= 3)",
	"shard.id == shard.count - 1 && uptime > 1000 && degradation.age > 0 && degradation.level == 'NONE'",
	"rest.rate_limited + rest.server_errors + rest.failures > rest.requests / 10",
	"gateway.sequence > 0 && gateway.reconnects + gateway.resumes + gateway.identifies + gateway.dispatches + gateway.last_close_code > 0",
	"latency.heartbeat_avg + latency.rest_p50 + latency.rest_p95 + latency.rest_p99 > errors.window / 1000",
	"breaker.failures + breaker.rejections > 3 && error.source == 'conn'",
	"errors.consecutive in 1..5",
	"true && !false",
	"abs(errors.consecutive - 10) > 3 || max(latency.heartbeat, 5.0, -errors.rate) > 800 || round(errors.rate * 10) >= 3",
	"min(errors.consecutive, 3, rest.requests) == 3 || floor(errors.rate * 4) + ceil(health.score / 7) > 10",
	"errors.consecutive % 3 == 0 || errors.total % -7 == -2",
	// Outside the native subset: must still agree (through the VM).
	"max(latency.heartbeat, 5) > 800 || errors.consecutive % (shard.count + 1) == 0",
}

func TestConditionLimits(t *testing.T) {
	big := strings.Repeat("errors.rate > 0.1 || ", 200) + "true"
	_, errs := compileCondition(big, false, 0)
	if len(errs) != 1 || errs[0].summary != "Condition too large" {
		t.Errorf("a %d-node condition: %+v", 600, errs)
	}
	for _, src := range []string{"now() > 0", "filter([1], # > 0) == [1]", "duration(error.message) > 0", "date('2020') > 0", "env('X') == ''"} {
		if _, errs := compileCondition(src, true, 0); len(errs) == 0 {
			t.Errorf("%q compiled; only documented functions may be called", src)
		}
	}
	for _, src := range []string{"", "  "} {
		if _, errs := compileCondition(src, true, 0); len(errs) != 1 || errs[0].summary != "Empty condition" {
			t.Errorf("%q: %+v", src, errs)
		}
	}
}
