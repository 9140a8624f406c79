package orchestrator_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/orchestrator"
	"github.com/lifeline-bot/lifeline/core/telemetry"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// telemetryPolicy: fast health checks, a breaker that trips on two failed
// attempts, and a degradation level the policy asks for while the gateway
// is down.
const telemetryPolicy = `
connection {
  max_reconnect_attempts = 0 # never give up during an outage
}
health {
  interval = "1s"
  timeout  = "500ms"
  retries  = 0
  check "gateway" {
    type      = "gateway"
    threshold = "2s"
    critical  = true
  }
  check "latency" {
    type      = "latency"
    threshold = "%s"
  }
}
circuit_breaker {
  failure_threshold   = 2
  recovery_threshold  = 2
  open_timeout        = "100ms"
  half_open_max_calls = 1
  monitoring_period   = "10s"
  max_open_timeout    = "300ms"
}
degradation {
  recovery_delay = "100ms"
  level "minimal" {
    when    = "!gateway.connected"
    actions = ["disable_analytics"]
  }
  recover {
    when = "gateway.connected"
  }
}
`

// writePolicy writes body to dir/policy.hcl the way editors do (a new file
// renamed over the old one) and returns the path.
func writePolicy(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "policy.hcl")
	tmp := filepath.Join(dir, ".policy.hcl.tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// telemetrySystem is a system with a policy file and its Handler served on
// 127.0.0.1.
func telemetrySystem(t *testing.T, latencyThreshold string, fo discordtest.Options) (*system, *httptest.Server, string) {
	t.Helper()
	dir := t.TempDir()
	path := writePolicy(t, dir, fmt.Sprintf(telemetryPolicy, latencyThreshold))
	s := newSystemWith(t, fo, func(c *orchestrator.Config) {
		c.PolicyFile = path
		c.PolicyDebounce = 20 * time.Millisecond
	})
	h := s.o.Handler(telemetry.HandlerOptions{})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return s, srv, dir
}

// families scrapes /metrics, lints the exposition with promlint and
// parses it.
func families(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of family name whose labels include
// want (the shard label is checked on every series): a counter's or
// gauge's value, a histogram's sample count. ok is false when there is no
// such series.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) (v float64, ok bool) {
	t.Helper()
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["shard"] != "0" {
			t.Fatalf("%s%v: shard label %q, want 0", name, labels, labels["shard"])
		}
		if !hasLabels(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// sum adds the values of every series of name whose labels include want.
func sum(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var total float64
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		if hasLabels(m, want) {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// hasLabels reports whether the series has every label of want, with its
// value.
func hasLabels(m *dto.Metric, want map[string]string) bool {
	for k, w := range want {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == w }) {
			return false
		}
	}
	return true
}

type lbl = map[string]string

// check is one expectation on a scrape.
type check struct {
	name   string
	labels lbl
	test   func(float64) bool
	want   string
}

func eq(v float64) func(float64) bool { return func(x float64) bool { return x == v } }
func atLeast(v float64) func(float64) bool {
	return func(x float64) bool { return x >= v }
}

func (s *system) scrapeUntil(base, what string, checks []check) map[string]*dto.MetricFamily {
	s.t.Helper()
	var fams map[string]*dto.MetricFamily
	var failing []string
	for i := 0; i < 600; i++ {
		fams = families(s.t, base)
		failing = failing[:0]
		for _, c := range checks {
			v, ok := value(s.t, fams, c.name, c.labels)
			if !ok || !c.test(v) {
				failing = append(failing, fmt.Sprintf("%s%v = %v (present %t), want %s", c.name, c.labels, v, ok, c.want))
			}
		}
		if len(failing) == 0 {
			return fams
		}
		time.Sleep(25 * time.Millisecond)
	}
	var dump []string
	for name, f := range fams {
		if strings.HasPrefix(name, "lifeline_gateway_") || strings.HasPrefix(name, "lifeline_recoveries") || strings.HasPrefix(name, "lifeline_errors") {
			for _, m := range f.Metric {
				dump = append(dump, fmt.Sprintf("%s %v %v", name, m.Label, m.GetCounter().GetValue()+m.GetGauge().GetValue()))
			}
		}
	}
	sort.Strings(dump)
	s.t.Fatalf("%s: never scraped the expected values:\n  %s\nscraped:\n  %s", what, strings.Join(failing, "\n  "), strings.Join(dump, "\n  "))
	return nil
}

func (s *system) restGet(path string) int {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, discordgo.EndpointAPI+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bot "+s.srv.Token())
	resp, err := s.o.Session().Client.Do(req)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitRecovered waits for the conn error of kind (none when ""), then for
// a successful recovery and READY.
func (s *system) waitRecovered(what, kind string) {
	s.t.Helper()
	if kind != "" {
		s.waitEvent(what+": conn error "+kind, func(e events.Event) bool {
			d, ok := e.Data.(events.Error)
			return ok && d.Source == "conn" && d.Kind == kind
		})
	}
	s.waitEvent(what+": recovery completed", func(e events.Event) bool {
		d, ok := e.Data.(events.Recovery)
		return ok && d.Completed && d.Success
	})
	s.eventually(what+": READY again", func() bool { return s.o.Diagnostics().State == "READY" })
}

// TestMetricsThroughAFaultScenario scrapes /metrics while the fake Discord
// injects faults (op 7, a close code, a zombie connection, REST errors and
// a rate-limit storm, an outage that trips the breaker), and checks that
// every family carries the values the scenario implies; each scrape passes
// promlint. The degradation engine and the plugin host are not wired into
// the orchestrator yet, so their events are published on the bus as they
// publish them.
func TestMetricsThroughAFaultScenario(t *testing.T) {
	s, web, dir := telemetrySystem(t, "1s", discordtest.Options{})
	s.start()
	defer s.stop()
	base := web.URL

	// Connected: the first IDENTIFY, the gateway breaker closed, generation 1.
	s.scrapeUntil(base, "connected", []check{
		{"lifeline_connection_state", lbl{"state": "READY"}, eq(1), "1"},
		{"lifeline_connection_state", lbl{"state": "RECONNECTING"}, eq(0), "0"},
		{"lifeline_gateway_connected", nil, eq(1), "1"},
		{"lifeline_gateway_identifies_total", lbl{"cause": "start"}, eq(1), "1"},
		{"lifeline_breaker_state", lbl{"breaker": "gateway", "state": "CLOSED"}, eq(1), "1"},
		{"lifeline_breaker_state", lbl{"breaker": "gateway", "state": "OPEN"}, eq(0), "0"},
		{"lifeline_health_status", lbl{"status": "HEALTHY"}, eq(1), "1"},
		{"lifeline_health_score", nil, eq(100), "100"},
		{"lifeline_health_check_passing", lbl{"check": "gateway"}, eq(1), "1"},
		{"lifeline_degradation_level", nil, eq(0), "0"},
		{"lifeline_policy_generation", nil, eq(1), "1"},
		{"lifeline_gateway_heartbeat_rtt_seconds", nil, atLeast(1), ">= 1 observation"},
		{"lifeline_rest_requests_total", lbl{"class": "2xx"}, atLeast(1), ">= 1 (GET /gateway/bot)"},
		{"lifeline_rest_request_duration_seconds", nil, atLeast(1), ">= 1 observation"},
		{"lifeline_gateway_session_starts_remaining", nil, eq(999), "999"},
		{"lifeline_uptime_seconds", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"lifeline_events_published_total", nil, atLeast(1), ">= 1"},
	})

	// REST: two 503s, then a 429 storm.
	if err := s.srv.RESTErrors(1, 503, time.Minute); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if code := s.restGet("users/@me"); code != 503 {
			t.Fatalf("GET under RESTErrors: %d, want 503", code)
		}
	}
	s.srv.ClearFaults()
	if err := s.srv.RESTRateLimitStorm(false, 50*time.Millisecond, time.Minute); err != nil {
		t.Fatal(err)
	}
	if code := s.restGet("users/@me"); code != 429 {
		t.Fatalf("GET in a rate-limit storm: %d, want 429", code)
	}
	s.srv.ClearFaults()

	// op 7: lifeline resumes.
	if err := s.srv.SendReconnect(); err != nil {
		t.Fatal(err)
	}
	s.waitRecovered("op 7", "reconnect_requested")
	// Discord closes with 4000: lifeline resumes.
	if err := s.srv.CloseConnections(4000); err != nil {
		t.Fatal(err)
	}
	s.waitRecovered("close 4000", "close")
	// A zombie: lifeline closes (resumably) and resumes.
	if err := s.srv.StallACKs(time.Hour); err != nil {
		t.Fatal(err)
	}
	s.waitRecovered("zombie", "zombie")
	s.srv.ClearFaults()

	s.scrapeUntil(base, "after op 7, close 4000, a zombie and REST faults", []check{
		{"lifeline_gateway_reconnects_total", lbl{"cause": "reconnect_requested"}, eq(1), "1"},
		{"lifeline_gateway_resumes_total", lbl{"cause": "reconnect_requested"}, eq(1), "1"},
		{"lifeline_gateway_reconnects_total", lbl{"cause": "close"}, eq(1), "1"},
		{"lifeline_gateway_resumes_total", lbl{"cause": "close"}, eq(1), "1"},
		{"lifeline_gateway_reconnects_total", lbl{"cause": "zombie"}, atLeast(1), ">= 1"},
		{"lifeline_gateway_resumes_total", lbl{"cause": "zombie"}, atLeast(1), ">= 1"},
		{"lifeline_gateway_close_codes_total", lbl{"code": "4000", "by": "discord"}, eq(1), "1"},
		{"lifeline_gateway_close_codes_total", lbl{"by": "lifeline"}, atLeast(1), ">= 1 (the zombie's close)"},
		{"lifeline_errors_total", lbl{"source": "conn", "kind": "close"}, eq(1), "1"},
		{"lifeline_errors_total", lbl{"source": "conn", "kind": "zombie"}, atLeast(1), ">= 1"},
		// At least: core/conn does not record RESUMED's sequence number, so
		// a RESUME after a RESUME gets the old RESUMED replayed and reports
		// a second success.
		{"lifeline_recoveries_total", lbl{"strategy": "resume", "result": "success"}, atLeast(3), ">= 3"},
		{"lifeline_rest_requests_total", lbl{"class": "5xx"}, eq(2), "2"},
		{"lifeline_rest_requests_total", lbl{"class": "4xx"}, eq(1), "1 (the 429)"},
		{"lifeline_rest_rate_limited_total", lbl{"scope": "shared"}, eq(1), "1 (the storm answers with scope shared)"},
		{"lifeline_connection_state_changes_total", lbl{"state": "RESUMING"}, atLeast(3), ">= 3"},
		{"lifeline_gateway_identifies_total", lbl{"cause": "start"}, eq(1), "still 1"},
	})

	// An outage: the connection is lost, dials fail, the breaker opens,
	// the policy asks for MINIMAL; scraped while it lasts.
	if err := s.srv.Outage(discordtest.OutageRefuse, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	s.scrapeUntil(base, "during the outage", []check{
		{"lifeline_connection_state", lbl{"state": "READY"}, eq(0), "0"},
		{"lifeline_gateway_connected", nil, eq(0), "0"},
		{"lifeline_degradation_level", nil, eq(1), "1 (MINIMAL)"},
		{"lifeline_breaker_transitions_total", lbl{"breaker": "gateway", "from": "CLOSED", "to": "OPEN"}, eq(1), "1"},
		{"lifeline_gateway_reconnects_total", lbl{"cause": "connection_lost"}, eq(1), "1"},
		{"lifeline_gateway_reconnects_total", lbl{"cause": "dial_failed"}, atLeast(1), ">= 1"},
		{"lifeline_health_check_passing", lbl{"check": "gateway"}, eq(0), "0"},
		{"lifeline_health_status", lbl{"status": "CRITICAL"}, eq(1), "1"},
		{"lifeline_health_score", nil, func(v float64) bool { return v < 100 }, "< 100"},
	})
	s.waitRecovered("outage", "")
	s.scrapeUntil(base, "after the outage", []check{
		{"lifeline_connection_state", lbl{"state": "READY"}, eq(1), "1"},
		{"lifeline_breaker_transitions_total", lbl{"breaker": "gateway", "from": "HALF_OPEN", "to": "CLOSED"}, atLeast(1), ">= 1"},
		{"lifeline_breaker_state", lbl{"breaker": "gateway", "state": "CLOSED"}, eq(1), "1"},
		{"lifeline_breaker_rejections_total", lbl{"breaker": "gateway"}, atLeast(1), ">= 1"},
		{"lifeline_degradation_level", nil, eq(0), "0"},
		{"lifeline_health_status_changes_total", lbl{"status": "CRITICAL"}, atLeast(1), ">= 1"},
	})

	// Policy reloads: a valid edit, then a broken one.
	writePolicy(t, dir, fmt.Sprintf(telemetryPolicy, "2s"))
	s.waitEvent("POLICY_RELOADED", func(e events.Event) bool { return e.Type == events.PolicyReloaded })
	writePolicy(t, dir, "health {\n  interval = 12\n}\n")
	s.waitEvent("POLICY_RELOAD_FAILED", func(e events.Event) bool { return e.Type == events.PolicyReloadFailed })

	// What the degradation engine and the plugin host publish.
	now := time.Now()
	bus := s.o.Events()
	bus.Publish(events.New(now, events.Degradation{Activated: true, From: "NONE", To: "MINIMAL", Actions: []string{"disable_analytics", "reduce_logging_level"}}))
	bus.Publish(events.New(now, events.Degradation{From: "MINIMAL", To: "NONE", Actions: []string{"reduce_logging_level"}}))
	bus.Publish(events.New(now, events.Plugin{Name: "pgping", PID: 42}))
	bus.Publish(events.New(now, events.Error{Source: "plugin/pgping", Kind: "timeout", Message: "check db: deadline exceeded"}))
	bus.Publish(events.New(now, events.Plugin{Exited: true, Name: "pgping", Reason: "crashed", Restart: true}))
	bus.Publish(events.New(now, events.PluginLogs{Name: "pgping", Dropped: 250}))
	s.o.Telemetry().ObservePluginCall("pgping", "check", nil)
	s.o.Telemetry().ObservePluginCall("pgping", "check", errors.New("deadline exceeded"))

	fams := s.scrapeUntil(base, "after reloads, degradation and plugin events", []check{
		{"lifeline_policy_reloads_total", lbl{"result": "success"}, eq(1), "1"},
		{"lifeline_policy_reloads_total", lbl{"result": "failure"}, eq(1), "1"},
		{"lifeline_policy_generation", nil, eq(2), "2"},
		{"lifeline_policy_last_reload_success_timestamp_seconds", nil,
			func(v float64) bool { return v > float64(now.Add(-time.Minute).Unix()) && v <= float64(now.Unix()+1) }, "about now"},
		// The real degradation engine may have moved during the outage
		// too; the synthetic pair above adds one each.
		{"lifeline_degradation_changes_total", lbl{"direction": "activated"}, atLeast(1), ">= 1"},
		{"lifeline_degradation_changes_total", lbl{"direction": "deactivated"}, atLeast(1), ">= 1"},
		{"lifeline_degradation_action_active", lbl{"action": "disable_analytics"}, eq(1), "1"},
		{"lifeline_degradation_action_active", lbl{"action": "reduce_logging_level"}, eq(0), "0"},
		{"lifeline_plugin_starts_total", lbl{"plugin": "pgping"}, eq(1), "1"},
		{"lifeline_plugin_exits_total", lbl{"plugin": "pgping", "restart": "true"}, eq(1), "1"},
		{"lifeline_plugin_failures_total", lbl{"plugin": "pgping", "kind": "timeout"}, eq(1), "1"},
		{"lifeline_plugin_log_lines_dropped_total", lbl{"plugin": "pgping"}, eq(250), "250"},
		{"lifeline_plugin_calls_total", lbl{"plugin": "pgping", "kind": "check", "result": "success"}, eq(1), "1"},
		{"lifeline_plugin_calls_total", lbl{"plugin": "pgping", "kind": "check", "result": "failure"}, eq(1), "1"},
		{"lifeline_errors_total", lbl{"source": "plugin/pgping", "kind": "timeout"}, eq(1), "1"},
		{"lifeline_gateway_dispatches_total", nil, atLeast(1), ">= 1"},
		{"lifeline_events_dropped_total", nil, eq(0), "0"},
		{"lifeline_error_ratio", nil, func(v float64) bool { return v >= 0 && v <= 1 }, "in [0, 1]"},
		{"lifeline_gateway_heartbeat_ack_age_seconds", nil, func(v float64) bool { return v >= 0 }, ">= 0"},
	})
	// Every family is documented in docs/operations.md, and it documents
	// nothing else. lifeline_plugin_state is read from the plugin host, so
	// it needs a real plugin process: TestSystemRunsPolicyPlugins checks
	// it is served.
	checkDocumented(t, fams, "lifeline_plugin_state")
	// The counts of reconnects by cause add up to the Recorder's count. The
	// scrape and the Snapshot are two reads of a live system: one more
	// RESUME can land between them (it failed once so, 5 against 6), so
	// they are read again until they agree; a session start missing from
	// the causes never agrees.
	var got, want float64
	for i := 0; i < 200; i++ {
		got = sum(fams, "lifeline_gateway_identifies_total", nil) + sum(fams, "lifeline_gateway_resumes_total", nil)
		snap := s.o.Snapshot()
		if want = float64(snap.Gateway.Identifies + snap.Gateway.Resumes); got == want {
			break
		}
		time.Sleep(25 * time.Millisecond)
		fams = families(t, base)
	}
	if got != want {
		t.Errorf("IDENTIFYs + RESUMEs by cause = %v, the Recorder counted %v", got, want)
	}
}

// checkDocumented compares the scraped families with the metrics table of
// docs/operations.md.
func checkDocumented(t *testing.T, fams map[string]*dto.MetricFamily, servedElsewhere ...string) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `lifeline_") {
			continue
		}
		name := strings.Trim(strings.Fields(strings.TrimPrefix(line, "| "))[0], "`")
		documented[name] = true
	}
	var missing, extra []string
	for name := range fams {
		if strings.HasPrefix(name, "lifeline_") && !documented[name] {
			missing = append(missing, name)
		}
	}
	for name := range documented {
		if fams[name] == nil && !slices.Contains(servedElsewhere, name) {
			extra = append(extra, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("families not in docs/operations.md's table: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("docs/operations.md documents families /metrics does not serve: %v", extra)
	}
}

// TestHealthFollowsTheState checks /health's verdict and HTTP status as
// the state changes: pass (200) when READY and healthy, warn (200) while a
// non-critical check fails (slow heartbeat ACKs), fail (503) during an
// outage, pass again after; /readyz and /livez follow.
func TestHealthFollowsTheState(t *testing.T) {
	s, web, _ := telemetrySystem(t, "150ms", discordtest.Options{HeartbeatInterval: time.Second, HeartbeatTimeout: 5 * time.Second})
	s.start()
	defer s.stop()

	get := func(path string) (int, []byte, http.Header) {
		t.Helper()
		resp, err := http.Get(web.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b, resp.Header
	}
	health := func(want telemetry.Verdict, code int, cond func(telemetry.HealthReport) bool) telemetry.HealthReport {
		t.Helper()
		var rep telemetry.HealthReport
		var last string
		for i := 0; i < 600; i++ {
			got, body, hdr := get("/health")
			if ct := hdr.Get("Content-Type"); ct != "application/health+json" {
				t.Fatalf("/health Content-Type %q", ct)
			}
			rep = telemetry.HealthReport{}
			if err := json.Unmarshal(body, &rep); err != nil {
				t.Fatalf("/health body: %v\n%s", err, body)
			}
			if rep.Status == want && (cond == nil || cond(rep)) {
				if got != code {
					t.Fatalf("/health %s answered HTTP %d, want %d", want, got, code)
				}
				return rep
			}
			last = string(body)
			time.Sleep(25 * time.Millisecond)
		}
		t.Fatalf("/health never said %s; last:\n%s", want, last)
		return rep
	}

	rep := health(telemetry.Pass, 200, func(r telemetry.HealthReport) bool { return len(r.Checks["health:latency"]) == 1 })
	for _, key := range []string{"gateway:connection", "health:score", "health:gateway", "health:latency", "circuitBreaker:state", "degradation:level"} {
		if len(rep.Checks[key]) != 1 || rep.Checks[key][0].Status != telemetry.Pass {
			t.Errorf("pass report: check %s = %+v", key, rep.Checks[key])
		}
	}
	if code, body, _ := get("/readyz"); code != 200 || !strings.HasPrefix(string(body), "ready") {
		t.Fatalf("/readyz when READY: %d %s", code, body)
	}
	if code, body, _ := get("/livez"); code != 200 {
		t.Fatalf("/livez: %d %s", code, body)
	}

	// ACKs 400ms late: the latency check (150ms, not critical) fails.
	if err := s.srv.DelayACKs(400*time.Millisecond, time.Hour); err != nil {
		t.Fatal(err)
	}
	rep = health(telemetry.Warn, 200, func(r telemetry.HealthReport) bool {
		return len(r.Checks["health:latency"]) == 1 && r.Checks["health:latency"][0].Status == telemetry.Warn
	})
	if c := rep.Checks["gateway:connection"][0]; c.Status != telemetry.Pass || c.ObservedValue != "READY" {
		t.Errorf("warn report: connection %+v, want pass READY", c)
	}
	if !strings.Contains(rep.Output, "health:latency") {
		t.Errorf("warn report output %q does not name the failing check", rep.Output)
	}
	s.srv.ClearFaults()
	health(telemetry.Pass, 200, nil)

	if err := s.srv.Outage(discordtest.OutageRefuse, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.srv.DropConnections(); err != nil {
		t.Fatal(err)
	}
	rep = health(telemetry.Fail, 503, nil)
	if rep.Output == "" {
		t.Error("fail report without output")
	}
	for i := 0; ; i++ {
		code, body, _ := get("/readyz")
		if code == 503 && strings.HasPrefix(string(body), "not ready") {
			break
		}
		if i == 400 {
			t.Fatalf("/readyz during the outage: %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body, _ := get("/livez"); code != 200 {
		t.Fatalf("/livez during an outage (recovering, not FAILED): %d %s", code, body)
	}
	s.waitRecovered("outage", "")
	health(telemetry.Pass, 200, nil)
}

// TestDebugAndReloadEndpoints checks /debug/lifeline (summary, diagnostics
// and recent events) and POST /-/reload (200 with the new generation,
// "unchanged" for the same content, 422 with located diagnostics).
func TestDebugAndReloadEndpoints(t *testing.T) {
	s, web, dir := telemetrySystem(t, "1s", discordtest.Options{})
	s.start()
	defer s.stop()

	var d struct {
		Summary      telemetry.Summary       `json:"summary"`
		Diagnostics  map[string]any          `json:"diagnostics"`
		RecentEvents []telemetry.EventRecord `json:"recent_events"`
		Samples      []telemetry.Sample      `json:"samples"`
	}
	readyEvent := func() bool {
		for _, e := range d.RecentEvents {
			if e.Type == "STATE_CHANGED" && strings.Contains(e.Summary, "READY") {
				return true
			}
		}
		return false
	}
	// The state is read at once, the events arrive through the bus's
	// queue: both are waited for, the event may follow the state.
	s.eventually("debug shows READY, its STATE_CHANGED, events and samples", func() bool {
		resp, err := http.Get(web.URL + "/debug/lifeline?samples=all")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		d.RecentEvents, d.Samples = nil, nil
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		return d.Summary.State == "READY" && d.Summary.Ready && d.Diagnostics["state"] == "READY" &&
			readyEvent() && len(d.Samples) > 0 && d.Summary.Policy.Generation == 1
	})
	if d.Summary.Policy.Path == "" || d.Summary.Verdict == "" || d.Summary.Health == "" {
		t.Errorf("summary lacks fields: %+v", d.Summary)
	}

	post := func() (int, telemetry.ReloadResponse) {
		t.Helper()
		resp, err := http.Post(web.URL+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r telemetry.ReloadResponse
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, r
	}
	if code, r := post(); code != 200 || r.Status != "unchanged" || r.Generation != 1 {
		t.Fatalf("reload of the same file: %d %+v", code, r)
	}
	writePolicy(t, dir, fmt.Sprintf(telemetryPolicy, "3s"))
	code, r := post()
	if code != 200 || r.Generation < 2 || r.Status == "failed" {
		// The watcher may have reloaded the edit first: then this POST
		// found it unchanged at generation 2.
		t.Fatalf("reload of an edit: %d %+v", code, r)
	}
	writePolicy(t, dir, "health {\n  interval = \"soon\"\n}\n")
	code, r = post()
	if code != http.StatusUnprocessableEntity || r.Status != "failed" || len(r.Diagnostics) == 0 ||
		!strings.Contains(r.Diagnostics[0], "policy.hcl:2") || r.Generation != 2 {
		t.Fatalf("reload of a broken file: %d %+v", code, r)
	}
	if got := s.o.Policy().Health.Checks; len(got) != 2 {
		t.Fatalf("a broken reload changed the policy in force: %+v", got)
	}
	if resp, err := http.Get(web.URL + "/-/reload"); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /-/reload: %d, want 405", resp.StatusCode)
	}
}
