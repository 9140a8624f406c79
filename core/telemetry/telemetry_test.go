package telemetry_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/breaker"
	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// stub is a Source whose Status a test sets.
type stub struct {
	mu      sync.Mutex
	status  telemetry.Status
	shards  []telemetry.ShardStatus
	reload  telemetry.Reload
	err     error
	reloads int
}

// ShardStatuses makes the stub a ShardSource; with no shards set it
// serves no lifeline_shard_* series.
func (s *stub) ShardStatuses() []telemetry.ShardStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shards
}

func (s *stub) Status() telemetry.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *stub) set(fn func(*telemetry.Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.status)
}

func (s *stub) Diagnostics() any {
	st := s.Status()
	return map[string]any{"state": st.State}
}

func (s *stub) ReloadPolicy() (telemetry.Reload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloads++
	return s.reload, s.err
}

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// healthy is a READY, HEALTHY status with two checks.
func healthy() telemetry.Status {
	return telemetry.Status{
		Time: t0, Uptime: time.Minute, Shard: 0, ShardCount: 1, State: "READY", SessionStartsRemaining: 997,
		Snapshot: metrics.Snapshot{Time: t0, Gateway: metrics.Gateway{Connected: true, Dispatches: 12},
			Latency: metrics.Latency{Heartbeat: 40 * time.Millisecond, RESTP95: 80 * time.Millisecond}},
		Health: health.Diagnostics{Time: t0, Status: health.Healthy, Score: 100, Checks: []health.CheckState{
			{Name: "gateway", Config: health.CheckConfig{Critical: true}, Last: &health.Result{Name: "gateway", Passed: true, Value: 1, Unit: "s", Time: t0}},
			{Name: "latency", Last: &health.Result{Name: "latency", Passed: true, Value: 0.04, Threshold: 1, Unit: "s", Time: t0}},
		}},
		Breaker:     breaker.Metrics{State: breaker.StateClosed},
		Degradation: telemetry.Degradation{Level: "NONE"},
		Policy:      telemetry.PolicyInfo{Path: "policy.hcl", Generation: 1},
	}
}

func newTelemetry(t *testing.T, src *stub, clk clock.Clock) *telemetry.Telemetry {
	t.Helper()
	tel := telemetry.New(telemetry.Options{Source: src, Clock: clk, SampleInterval: time.Second})
	t.Cleanup(tel.Close)
	return tel
}

func serve(t *testing.T, h *telemetry.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return srv
}

func get(t *testing.T, url, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func TestAssess(t *testing.T) {
	failingCheck := func(critical bool) func(*telemetry.Status) {
		return func(s *telemetry.Status) {
			s.Health.Status, s.Health.Score, s.Health.Failing = health.Degraded, 66.67, []string{"latency"}
			c := &s.Health.Checks[1]
			c.Config.Critical = critical
			c.Last = &health.Result{Name: "latency", Passed: false, Value: 2.5, Threshold: 1, Unit: "s", Message: "heartbeat latency 2.5s above 1s", Time: t0}
		}
	}
	tests := []struct {
		name   string
		mutate func(*telemetry.Status)
		want   telemetry.Verdict
		code   int
		check  string // a check whose verdict is the overall one
	}{
		{"ready and healthy", func(*telemetry.Status) {}, telemetry.Pass, 200, "gateway:connection"},
		{"no check ran yet", func(s *telemetry.Status) { s.Health = health.Diagnostics{Status: health.Unknown} }, telemetry.Pass, 200, "health:score"},
		{"resuming", func(s *telemetry.Status) { s.State = "RESUMING" }, telemetry.Warn, 200, "gateway:connection"},
		{"backing off", func(s *telemetry.Status) { s.State = "BACKING_OFF" }, telemetry.Warn, 200, "gateway:connection"},
		{"a check fails", failingCheck(false), telemetry.Warn, 200, "health:latency"},
		{"a critical check fails", failingCheck(true), telemetry.Fail, 503, "health:latency"},
		{"unhealthy", func(s *telemetry.Status) { s.Health.Status = health.Unhealthy }, telemetry.Fail, 503, "health:score"},
		{"critical", func(s *telemetry.Status) { s.Health.Status = health.Critical }, telemetry.Fail, 503, "health:score"},
		{"breaker open", func(s *telemetry.Status) { s.Breaker.State = breaker.StateOpen }, telemetry.Warn, 200, "circuitBreaker:state"},
		{"breaker half-open", func(s *telemetry.Status) { s.Breaker.State = breaker.StateHalfOpen }, telemetry.Warn, 200, "circuitBreaker:state"},
		{"degraded on purpose", func(s *telemetry.Status) {
			s.Degradation = telemetry.Degradation{Level: "SEVERE", Reason: "errors.rate > 0.4"}
		}, telemetry.Warn, 200, "degradation:level"},
		{"failed", func(s *telemetry.Status) { s.State, s.Error = "FAILED", "authentication failed (4004)" }, telemetry.Fail, 503, "gateway:connection"},
		{"stopped", func(s *telemetry.Status) { s.State = "STOPPED" }, telemetry.Fail, 503, "gateway:connection"},
		{"not started", func(s *telemetry.Status) { s.State = "DISCONNECTED" }, telemetry.Fail, 503, "gateway:connection"},
		{"worst wins", func(s *telemetry.Status) { s.State = "RESUMING"; s.Health.Status = health.Critical }, telemetry.Fail, 503, "health:score"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy()
			tt.mutate(&s)
			r := telemetry.Assess(s)
			if r.Status != tt.want || r.Status.HTTPStatus() != tt.code {
				t.Fatalf("Assess = %s (HTTP %d), want %s (HTTP %d)\n%+v", r.Status, r.Status.HTTPStatus(), tt.want, tt.code, r)
			}
			if c := r.Checks[tt.check]; len(c) != 1 || c[0].Status != tt.want {
				t.Fatalf("check %s = %+v, want %s", tt.check, c, tt.want)
			}
			if tt.want != telemetry.Pass && r.Output == "" {
				t.Fatalf("a %s report without output", tt.want)
			}
			if tt.want == telemetry.Pass && r.Output != "" {
				t.Fatalf("a pass report with output %q", r.Output)
			}
		})
	}
}

// ExampleAssess shows the verdict /health gives a connection that is
// resuming.
func ExampleAssess() {
	r := telemetry.Assess(telemetry.Status{State: "RESUMING", Health: health.Diagnostics{Status: health.Healthy, Score: 100}})
	fmt.Println(r.Status, r.Status.HTTPStatus())
	fmt.Println(r.Output)
	// Output:
	// warn 200
	// gateway:connection: recovering: the gateway connection is RESUMING
}

func TestRoutesAndHealthStatusCodes(t *testing.T) {
	src := &stub{status: healthy()}
	tel := newTelemetry(t, src, clock.NewFake(t0))
	srv := serve(t, tel.Handler(telemetry.HandlerOptions{}))

	code, hdr, body := get(t, srv.URL+"/health", "")
	if code != 200 || hdr.Get("Content-Type") != "application/health+json" {
		t.Fatalf("/health: %d %q", code, hdr.Get("Content-Type"))
	}
	var rep telemetry.HealthReport
	if err := json.Unmarshal(body, &rep); err != nil || rep.Status != telemetry.Pass || len(rep.Checks) != 6 {
		t.Fatalf("/health body (%v): %s", err, body)
	}
	if code, _, body := get(t, srv.URL+"/readyz", ""); code != 200 || string(body) != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, _, body := get(t, srv.URL+"/livez", ""); code != 200 || string(body) != "ok\n" {
		t.Fatalf("/livez: %d %q", code, body)
	}

	src.set(func(s *telemetry.Status) { s.State = "RECONNECTING" })
	if code, _, _ := get(t, srv.URL+"/health", ""); code != 200 {
		t.Fatalf("/health while recovering: %d, want 200 (warn)", code)
	}
	if code, _, body := get(t, srv.URL+"/readyz", ""); code != 503 || string(body) != "not ready: gateway RECONNECTING\n" {
		t.Fatalf("/readyz while reconnecting: %d %q", code, body)
	}

	src.set(func(s *telemetry.Status) {
		s.State, s.Error = "FAILED", "gateway closed with 4004: authentication failed"
	})
	if code, _, _ := get(t, srv.URL+"/health", ""); code != 503 {
		t.Fatalf("/health when FAILED: %d, want 503", code)
	}
	if code, _, body := get(t, srv.URL+"/livez", ""); code != 503 || !strings.Contains(string(body), "FAILED") {
		t.Fatalf("/livez when FAILED: %d %q", code, body)
	}

	// A stuck tick: the snapshot is older than StaleAfter (30s).
	src.set(func(s *telemetry.Status) { s.State, s.Error, s.Time = "READY", "", t0.Add(31*time.Second) })
	if code, _, body := get(t, srv.URL+"/livez", ""); code != 503 || !strings.Contains(string(body), "no tick for 31s") {
		t.Fatalf("/livez with a stale tick: %d %q", code, body)
	}

	code, hdr, body = get(t, srv.URL+"/", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte(`id="plot-score"`)) {
		t.Fatalf("/: %d %q", code, hdr.Get("Content-Type"))
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Fatalf("dashboard CSP %q", csp)
	}
	// Nothing in the page refers to another origin.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).Find(body); m != nil {
		t.Fatalf("the dashboard refers to another origin: %s", m)
	}
	if code, _, _ := get(t, srv.URL+"/nope", ""); code != 404 {
		t.Fatalf("/nope: %d", code)
	}
}

func TestBearerToken(t *testing.T) {
	const token = "s3cret-operator-token"
	src := &stub{status: healthy()}
	tel := newTelemetry(t, src, clock.NewFake(t0))
	tests := []struct {
		open  bool
		path  string
		token string
		want  int
	}{
		{false, "/metrics", "", 401},
		{false, "/metrics", "wrong", 401},
		{false, "/metrics", token + "x", 401},
		{false, "/metrics", token, 200},
		{false, "/health", "", 401},
		{false, "/debug/lifeline", "", 401},
		{false, "/debug/lifeline", token, 200},
		{false, "/livez", "", 401},
		{false, "/readyz", "", 401},
		{false, "/", "", 200}, // the page holds no data
		{true, "/livez", "", 200},
		{true, "/readyz", "", 200},
		{true, "/health", "", 401},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("open=%t%s%s", tt.open, tt.path, map[bool]string{true: "+token"}[tt.token != ""]), func(t *testing.T) {
			srv := serve(t, tel.Handler(telemetry.HandlerOptions{BearerToken: token, OpenProbes: tt.open}))
			code, hdr, body := get(t, srv.URL+tt.path, tt.token)
			if code != tt.want {
				t.Fatalf("%s: %d, want %d", tt.path, code, tt.want)
			}
			if code == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if bytes.Contains(body, []byte(token)) {
				t.Fatal("the response carries the token")
			}
		})
	}
	// POST /-/reload needs it too.
	srv := serve(t, tel.Handler(telemetry.HandlerOptions{BearerToken: token}))
	resp, err := http.Post(srv.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || src.reloads != 0 {
		t.Fatalf("POST /-/reload without a token: %d, %d reloads", resp.StatusCode, src.reloads)
	}
}

func TestListen(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "[::1]": true, "localhost": true, "LocalHost": true,
		"": false, "0.0.0.0": false, "::": false, "192.168.1.10": false, "example.com": false,
	} {
		if got := telemetry.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %t, want %t", host, got, want)
		}
	}
	for _, addr := range []string{":0", "0.0.0.0:0", "192.0.2.1:8484"} {
		if _, err := telemetry.Listen(addr, ""); !errors.Is(err, telemetry.ErrTokenRequired) {
			t.Errorf("Listen(%q) without a token: %v, want ErrTokenRequired", addr, err)
		}
	}
	if _, err := telemetry.Listen("8484", ""); err == nil || errors.Is(err, telemetry.ErrTokenRequired) {
		t.Errorf("Listen(\"8484\"): %v, want an address error", err)
	}
	ln, err := telemetry.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

// TestServeAndShutdownEndsStreams: Shutdown returns while an /events
// stream is open (it ends the stream) and leaves no goroutine behind.
func TestServeAndShutdownEndsStreams(t *testing.T) {
	src := &stub{status: healthy()}
	tel := newTelemetry(t, src, clock.Real{})
	ln, err := telemetry.Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	s := telemetry.Serve(ln, tel.Handler(telemetry.HandlerOptions{}))
	resp, err := http.Get(s.URL() + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != "retry: 2000\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- s.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown waited on the open event stream")
	}
	if _, err := io.Copy(io.Discard, r); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream end: %v", err)
	}
}

// TestEventStream: events and samples arrive as server-sent events as they
// happen; closing the Telemetry ends the stream.
func TestEventStream(t *testing.T) {
	src := &stub{status: healthy()}
	clk := clock.NewFake(t0)
	tel := newTelemetry(t, src, clk)
	srv := serve(t, tel.Handler(telemetry.HandlerOptions{}))
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() (kind, data string) {
		t.Helper()
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "event: "):
				kind = l[7:]
			case strings.HasPrefix(l, "data: "):
				data = l[6:]
			case l == "" && kind != "":
				return kind, data
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return "", ""
	}
	// The stream is subscribed once its first lines arrived.
	for sc.Scan() && sc.Text() != "" {
	}
	tel.ObserveEvent(events.ForShard(t0, 0, events.StateChange{From: "READY", To: "RECONNECTING", Cause: "zombie"}))
	if kind, data := next(); kind != "event" || !strings.Contains(data, `"type":"STATE_CHANGED"`) || !strings.Contains(data, "READY -\\u003e RECONNECTING") {
		t.Fatalf("event message %s %s", kind, data)
	}
	src.set(func(s *telemetry.Status) { s.State = "RECONNECTING"; s.Health.Score = 50 })
	if !tel.Sample() {
		t.Fatal("the first Sample was not taken")
	}
	kind, data := next()
	var smp telemetry.Sample
	if err := json.Unmarshal([]byte(data), &smp); kind != "sample" || err != nil || smp.State != "RECONNECTING" || smp.Score != 50 || smp.Verdict != telemetry.Warn {
		t.Fatalf("sample message %s %s (%v)", kind, data, err)
	}
	// Too soon for another sample; then a second later there is one.
	if tel.Sample() {
		t.Fatal("a Sample within the interval was taken")
	}
	clk.Advance(time.Second)
	if !tel.Sample() {
		t.Fatal("a Sample an interval later was not taken")
	}
	tel.Close()
	for sc.Scan() {
	}
}

// TestFeedsAreBounded: the recent events and samples are the last ones, in
// order, however many came.
func TestFeedsAreBounded(t *testing.T) {
	src := &stub{status: healthy()}
	clk := clock.NewFake(t0)
	tel := telemetry.New(telemetry.Options{Source: src, Clock: clk, EventHistory: 5, SampleHistory: 3, SampleInterval: time.Second})
	defer tel.Close()
	for i := 0; i < 12; i++ {
		tel.ObserveEvent(events.New(t0.Add(time.Duration(i)*time.Second), events.Error{Source: "conn", Kind: "close", Message: fmt.Sprint(i)}))
		src.set(func(s *telemetry.Status) { s.Time = clk.Now(); s.Health.Score = float64(i) })
		tel.Sample()
		clk.Advance(time.Second)
	}
	srv := serve(t, tel.Handler(telemetry.HandlerOptions{}))
	var d struct {
		RecentEvents []telemetry.EventRecord `json:"recent_events"`
		Samples      []telemetry.Sample      `json:"samples"`
	}
	tests := []struct {
		query   string
		samples []float64
	}{
		{"", nil},
		{"?samples=all", []float64{9, 10, 11}},
		{"?samples=0", []float64{9, 10, 11}},
		{"?samples=2", []float64{10, 11}},
		{"?samples=50", []float64{9, 10, 11}},
	}
	for _, tt := range tests {
		code, _, body := get(t, srv.URL+"/debug/lifeline"+tt.query, "")
		d.RecentEvents, d.Samples = nil, nil
		if err := json.Unmarshal(body, &d); code != 200 || err != nil {
			t.Fatalf("%s: %d %v", tt.query, code, err)
		}
		var msgs []string
		for _, e := range d.RecentEvents {
			var data events.Error
			if err := json.Unmarshal(e.Data, &data); err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, data.Message)
		}
		if strings.Join(msgs, ",") != "7,8,9,10,11" {
			t.Fatalf("recent events %v, want the last 5 in order", msgs)
		}
		var scores []float64
		for _, s := range d.Samples {
			scores = append(scores, s.Score)
		}
		if fmt.Sprint(scores) != fmt.Sprint(tt.samples) {
			t.Fatalf("%s: samples %v, want %v", tt.query, scores, tt.samples)
		}
	}
	if code, _, _ := get(t, srv.URL+"/debug/lifeline?samples=many", ""); code != 400 {
		t.Fatalf("samples=many: %d, want 400", code)
	}
}

func TestReload(t *testing.T) {
	diag := &policy.DiagnosticsError{Diagnostics: hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unsupported argument",
		Detail:  `An argument named "intervl" is not expected here.`,
		Subject: &hcl.Range{Filename: "policy.hcl", Start: hcl.Pos{Line: 3, Column: 3}, End: hcl.Pos{Line: 3, Column: 10}}}}}
	tests := []struct {
		name   string
		reload telemetry.Reload
		err    error
		code   int
		status string
		check  func(telemetry.ReloadResponse) bool
	}{
		{"new generation", telemetry.Reload{Path: "p.hcl", Previous: 1, Generation: 2, Changed: true}, nil, 200, "reloaded",
			func(r telemetry.ReloadResponse) bool { return r.Generation == 2 && r.Previous == 1 }},
		{"same content", telemetry.Reload{Path: "p.hcl", Previous: 2, Generation: 2}, nil, 200, "unchanged",
			func(r telemetry.ReloadResponse) bool { return r.Generation == 2 }},
		{"invalid file", telemetry.Reload{Path: "p.hcl", Previous: 2, Generation: 2}, fmt.Errorf("orchestrator: %w", diag), 422, "failed",
			func(r telemetry.ReloadResponse) bool {
				return len(r.Diagnostics) == 1 && strings.HasPrefix(r.Diagnostics[0], "policy.hcl:3:3") && r.Generation == 2
			}},
		{"no file", telemetry.Reload{}, fmt.Errorf("orchestrator: %w", telemetry.ErrNoPolicyFile), 409, "failed",
			func(r telemetry.ReloadResponse) bool { return strings.Contains(r.Error, "no policy file") }},
		{"other error", telemetry.Reload{}, errors.New("watcher closed"), 500, "failed",
			func(r telemetry.ReloadResponse) bool { return r.Error == "watcher closed" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &stub{status: healthy(), reload: tt.reload, err: tt.err}
			srv := serve(t, newTelemetry(t, src, clock.NewFake(t0)).Handler(telemetry.HandlerOptions{}))
			resp, err := http.Post(srv.URL+"/-/reload", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var r telemetry.ReloadResponse
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.code || r.Status != tt.status || !tt.check(r) {
				t.Fatalf("%d %+v, want %d %s", resp.StatusCode, r, tt.code, tt.status)
			}
		})
	}
}

// scrape returns the exposition of h's /metrics after promlint found no
// problem in it.
func scrape(t *testing.T, srv *httptest.Server) map[string]*dto.MetricFamily {
	t.Helper()
	code, _, body := get(t, srv.URL+"/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func series(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		if h := m.GetHistogram(); h != nil {
			return float64(h.GetSampleCount()), true
		}
		return m.GetCounter().GetValue() + m.GetGauge().GetValue(), true
	}
	return 0, false
}

// TestCausesFromTheStateMachine feeds the events of a start, an op 7, a
// lost connection with a failed dial, and a requested re-identify, and
// checks the causes the counters carry.
func TestCausesFromTheStateMachine(t *testing.T) {
	src := &stub{status: healthy()}
	tel := newTelemetry(t, src, clock.NewFake(t0))
	srv := serve(t, tel.Handler(telemetry.HandlerOptions{}))
	state := func(to string) { tel.ObserveEvent(events.ForShard(t0, 0, events.StateChange{To: to})) }
	connErr := func(kind string, code int) {
		tel.ObserveEvent(events.ForShard(t0, 0, events.Error{Source: "conn", Kind: kind, CloseCode: code}))
	}
	state("CONNECTING")
	state("IDENTIFYING")
	state("READY")
	connErr("reconnect_requested", 0)
	state("RECONNECTING")
	state("CONNECTING")
	state("RESUMING")
	state("READY")
	connErr("connection_lost", 0)
	state("RECONNECTING")
	state("CONNECTING")
	connErr("dial_failed", 0)
	state("BACKING_OFF")
	state("CONNECTING")
	state("RESUMING")
	state("READY")
	connErr("close", 4009)
	state("RECONNECTING")
	state("CONNECTING")
	state("IDENTIFYING")
	state("READY")
	state("RECONNECTING") // a recovery asked for: no error before it
	state("CONNECTING")
	state("IDENTIFYING")
	state("READY")

	fams := scrape(t, srv)
	for _, c := range []struct {
		name, cause string
		want        float64
	}{
		{"lifeline_gateway_identifies_total", "start", 1},
		{"lifeline_gateway_reconnects_total", "reconnect_requested", 1},
		{"lifeline_gateway_resumes_total", "reconnect_requested", 1},
		{"lifeline_gateway_reconnects_total", "connection_lost", 1},
		{"lifeline_gateway_reconnects_total", "dial_failed", 1},
		{"lifeline_gateway_resumes_total", "dial_failed", 1},
		{"lifeline_gateway_reconnects_total", "close", 1},
		{"lifeline_gateway_identifies_total", "close", 1},
		{"lifeline_gateway_reconnects_total", "requested", 1},
		{"lifeline_gateway_identifies_total", "requested", 1},
	} {
		if got, _ := series(fams, c.name, "cause", c.cause); got != c.want {
			t.Errorf("%s{cause=%q} = %v, want %v", c.name, c.cause, got, c.want)
		}
	}
	if _, ok := series(fams, "lifeline_gateway_reconnects_total", "cause", "start"); ok {
		t.Error("the first attempt counted as a reconnect")
	}
	if got, _ := series(fams, "lifeline_gateway_close_codes_total", "code", "4009", "by", "discord"); got != 1 {
		t.Errorf("close code 4009 by discord = %v", got)
	}
	if got, _ := series(fams, "lifeline_connection_state_changes_total", "state", "READY"); got != 5 {
		t.Errorf("state changes to READY = %v, want 5", got)
	}
}

// TestRESTAndWireObservations: status classes, 429 scopes, latencies.
func TestRESTAndWireObservations(t *testing.T) {
	src := &stub{status: healthy()}
	tel := newTelemetry(t, src, clock.NewFake(t0))
	srv := serve(t, tel.Handler(telemetry.HandlerOptions{}))
	for _, r := range []conn.RESTResult{
		{Status: 200, Latency: 20 * time.Millisecond},
		{Status: 204, Latency: 30 * time.Millisecond},
		{Status: 404, Latency: 10 * time.Millisecond},
		{Status: 429, Latency: 5 * time.Millisecond, RateLimit: &conn.RateLimit{Scope: "user"}},
		{Status: 429, Latency: 5 * time.Millisecond, RateLimit: &conn.RateLimit{Global: true}},
		{Status: 429, Latency: 5 * time.Millisecond, RateLimit: &conn.RateLimit{Cloudflare: true}},
		{Status: 429, Latency: 5 * time.Millisecond},
		{Status: 502, Latency: 3 * time.Second},
		{Err: errors.New("connection refused")},
	} {
		tel.ObserveREST(r)
	}
	tel.ObserveHeartbeatRTT(45 * time.Millisecond)
	tel.ObserveHeartbeatRTT(0) // not an answer to a heartbeat: ignored
	tel.ObserveCloseSent(4000)
	tel.ObserveCloseSent(0)
	fams := scrape(t, srv)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"lifeline_rest_requests_total", []string{"class", "2xx"}, 2},
		{"lifeline_rest_requests_total", []string{"class", "4xx"}, 5},
		{"lifeline_rest_requests_total", []string{"class", "5xx"}, 1},
		{"lifeline_rest_requests_total", []string{"class", "error"}, 1},
		{"lifeline_rest_rate_limited_total", []string{"scope", "user"}, 1},
		{"lifeline_rest_rate_limited_total", []string{"scope", "global"}, 1},
		{"lifeline_rest_rate_limited_total", []string{"scope", "cloudflare"}, 1},
		{"lifeline_rest_rate_limited_total", []string{"scope", "unknown"}, 1},
		{"lifeline_rest_request_duration_seconds", nil, 8},
		{"lifeline_gateway_heartbeat_rtt_seconds", nil, 1},
		{"lifeline_gateway_close_codes_total", []string{"code", "4000", "by", "lifeline"}, 1},
	} {
		if got, _ := series(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// The 3s REST request falls in the 5s bucket, not below.
	h := fams["lifeline_rest_request_duration_seconds"].Metric[0].GetHistogram()
	for _, b := range h.Bucket {
		if b.GetUpperBound() == 2.5 && b.GetCumulativeCount() != 7 || b.GetUpperBound() == 5 && b.GetCumulativeCount() != 8 {
			t.Errorf("bucket le=%v holds %d", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}
}

// everyFamily feeds tel so that every family it defines has a series.
func everyFamily(tel *telemetry.Telemetry) {
	for _, d := range []events.Data{
		events.StateChange{From: "DISCONNECTED", To: "CONNECTING"},
		events.StateChange{From: "CONNECTING", To: "IDENTIFYING"},
		events.StateChange{From: "IDENTIFYING", To: "READY"},
		events.Error{Source: "conn", Kind: "close", CloseCode: 4000},
		events.StateChange{From: "READY", To: "CONNECTING"},
		events.StateChange{From: "CONNECTING", To: "RESUMING"},
		events.HealthChange{From: "HEALTHY", To: "DEGRADED"},
		events.BreakerTransition{Breaker: "gateway", From: "CLOSED", To: "OPEN"},
		events.BreakerTransition{Breaker: "plugin/pgping", From: "CLOSED", To: "OPEN"},
		events.Recovery{Completed: true, Strategy: "resume", Success: true},
		events.Degradation{Activated: true, From: "NONE", To: "MINIMAL", Actions: []string{"disable_analytics"}},
		events.PolicyReload{Path: "p.hcl", FromGeneration: 1, ToGeneration: 2},
		events.Plugin{Name: "pgping"},
		events.Plugin{Name: "pgping", Exited: true},
		events.Error{Source: "plugin/pgping", Kind: "timeout"},
		events.PluginLogs{Name: "pgping", Dropped: 1234},
	} {
		tel.ObserveEvent(events.New(t0, d))
	}
	tel.ObserveREST(conn.RESTResult{Status: 429, Latency: time.Millisecond})
	tel.ObserveHeartbeatRTT(time.Millisecond)
	tel.ObserveCloseSent(4000)
	tel.ObservePluginCall("pgping", "check", nil)
}

// TestEveryFamilyLintedDocumentedAndOnTheDashboard: with every family
// present, the exposition passes promlint, docs/operations.md documents
// exactly these families, and the Grafana dashboard uses only them.
func TestEveryFamilyLintedDocumentedAndOnTheDashboard(t *testing.T) {
	src := &stub{status: healthy(), shards: []telemetry.ShardStatus{{ID: 0, State: "READY", Condition: "HEALTHY",
		Connected: true, Breaker: "CLOSED", HealthScore: 100, Identifies: 1}}}
	src.status.Plugins = []pluginhost.Status{{Name: "pgping", State: pluginhost.Running, PID: 4242}}
	tel := newTelemetry(t, src, clock.NewFake(t0))
	everyFamily(tel)
	fams := scrape(t, newServer(t, tel))
	var names []string
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !strings.HasPrefix(n, "lifeline_") {
			t.Errorf("family %s lacks the lifeline_ prefix", n)
		}
		for _, m := range fams[n].Metric {
			if v, ok := labelValue(m, "shard"); !ok || v != "0" {
				t.Errorf("%s: shard label %q", n, v)
			}
		}
		if fams[n].GetHelp() == "" {
			t.Errorf("%s has no help", n)
		}
	}

	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(lifeline_[a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for _, n := range names {
		if !documented[n] {
			t.Errorf("docs/operations.md does not document %s", n)
		}
		delete(documented, n)
	}
	for n := range documented {
		t.Errorf("docs/operations.md documents %s, which is not served", n)
	}

	dash, err := os.ReadFile(filepath.Join("..", "..", "examples", "grafana", "lifeline.json"))
	if err != nil {
		t.Fatal(err)
	}
	var board struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dash, &board); err != nil {
		t.Fatalf("examples/grafana/lifeline.json: %v", err)
	}
	used := map[string]bool{}
	metricRef := regexp.MustCompile(`lifeline_[a-z_]+`)
	for _, p := range board.Panels {
		for _, tg := range p.Targets {
			for _, ref := range metricRef.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(ref, "_bucket"), "_sum"), "_count")
				if fams[base] == nil && fams[ref] == nil {
					t.Errorf("panel %q uses %s, which /metrics does not serve", p.Title, ref)
				}
				used[base] = true
			}
		}
	}
	if len(used) < 20 {
		t.Errorf("the dashboard uses %d families; it should show most of them", len(used))
	}
}

func newServer(t *testing.T, tel *telemetry.Telemetry) *httptest.Server {
	return serve(t, tel.Handler(telemetry.HandlerOptions{}))
}

func labelValue(m *dto.Metric, name string) (string, bool) {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}

// TestRegistriesArePrivate: two Telemetry instances register the same
// families without conflict, and nothing lands in the global registry.
func TestRegistriesArePrivate(t *testing.T) {
	a := telemetry.New(telemetry.Options{Source: &stub{status: healthy()}, Shard: 0})
	b := telemetry.New(telemetry.Options{Source: &stub{status: healthy()}, Shard: 1})
	defer a.Close()
	defer b.Close()
	fa, err := a.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	fb, err := b.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fa) == 0 || len(fa) != len(fb) {
		t.Fatalf("%d and %d families", len(fa), len(fb))
	}
	if v, _ := labelValue(fb[0].Metric[0], "shard"); v != "1" {
		t.Fatalf("shard label of the second instance: %q", v)
	}
}

// ExampleTelemetry_Handler mounts the operator's surface under a prefix of
// a bot's own server. (A lifeline bot gets the same Handler from
// bot.Handler; Source is then the running system.)
func ExampleTelemetry_Handler() {
	tel := telemetry.New(telemetry.Options{Source: &stub{status: healthy()}})
	defer tel.Close()
	h := tel.Handler(telemetry.HandlerOptions{})
	defer h.Close()

	mux := http.NewServeMux()
	mux.Handle("/lifeline/", http.StripPrefix("/lifeline", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, path := range []string{"/lifeline/readyz", "/lifeline/health"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		fmt.Println(path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Output:
	// /lifeline/readyz 200 text/plain; charset=utf-8
	// /lifeline/health 200 application/health+json
}

// ExampleListen shows the loopback rule: any other address needs a bearer
// token.
func ExampleListen() {
	_, err := telemetry.Listen("0.0.0.0:8484", "")
	fmt.Println(errors.Is(err, telemetry.ErrTokenRequired))
	ln, err := telemetry.Listen("127.0.0.1:0", "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	fmt.Println(telemetry.IsLoopback(strings.Split(ln.Addr().String(), ":")[0]))
	// Output:
	// true
	// true
}

// TestPluginLogDropsAreCounted: lifeline_plugin_log_lines_dropped_total
// adds up the lines each PLUGIN_LOGS_DROPPED reports, per plugin.
func TestPluginLogDropsAreCounted(t *testing.T) {
	tel := newTelemetry(t, &stub{status: healthy()}, clock.NewFake(t0))
	for _, d := range []events.PluginLogs{{Name: "flood", Dropped: 1234}, {Name: "flood", Dropped: 6}, {Name: "quiet", Dropped: 1}} {
		tel.ObserveEvent(events.New(t0, d))
	}
	fams := scrape(t, serve(t, tel.Handler(telemetry.HandlerOptions{})))
	for plugin, want := range map[string]float64{"flood": 1240, "quiet": 1} {
		if got, _ := series(fams, "lifeline_plugin_log_lines_dropped_total", "plugin", plugin); got != want {
			t.Errorf("lifeline_plugin_log_lines_dropped_total{plugin=%q} = %v, want %v", plugin, got, want)
		}
	}
}

// TestKnownSeriesStartAtZero: the label values known in advance (reload
// results, REST status classes, 429 scopes) and a started plugin's exits
// and dropped log lines are exported at 0 before anything happened, so an
// alert's increase() sees the first failed reload, 5xx, Cloudflare ban or
// plugin exit (a series born at 1 shows no increase).
func TestKnownSeriesStartAtZero(t *testing.T) {
	tel := newTelemetry(t, &stub{status: healthy()}, clock.NewFake(t0))
	tel.ObserveEvent(events.New(t0, events.Plugin{Name: "pgping"}))
	fams := scrape(t, serve(t, tel.Handler(telemetry.HandlerOptions{})))
	for _, tt := range []struct {
		name   string
		labels []string
	}{
		{"lifeline_policy_reloads_total", []string{"result", "success"}},
		{"lifeline_policy_reloads_total", []string{"result", "failure"}},
		{"lifeline_rest_requests_total", []string{"class", "5xx"}},
		{"lifeline_rest_requests_total", []string{"class", "error"}},
		{"lifeline_rest_rate_limited_total", []string{"scope", "cloudflare"}},
		{"lifeline_rest_rate_limited_total", []string{"scope", "global"}},
		{"lifeline_plugin_exits_total", []string{"plugin", "pgping", "restart", "true"}},
		{"lifeline_plugin_exits_total", []string{"plugin", "pgping", "restart", "false"}},
		{"lifeline_plugin_log_lines_dropped_total", []string{"plugin", "pgping"}},
	} {
		if v, ok := series(fams, tt.name, tt.labels...); !ok || v != 0 {
			t.Errorf("%s%v = %v (present %v), want 0", tt.name, tt.labels, v, ok)
		}
	}
}

// TestPluginStates: each plugin the Source reports is on /metrics as
// lifeline_plugin_state (1 for its state, 0 for the others) and in the
// Summary with its restarts, last exit and retry time, which `lifeline
// status` prints.
func TestPluginStates(t *testing.T) {
	retry := t0.Add(10 * time.Minute)
	src := &stub{status: healthy()}
	src.set(func(s *telemetry.Status) {
		s.Plugins = []pluginhost.Status{
			{Name: "db", State: pluginhost.Failed, Restarts: 5, LastExit: "exit status 2", Retry: retry},
			{Name: "web", State: pluginhost.Running, PID: 4242},
		}
	})
	tel := newTelemetry(t, src, clock.NewFake(t0))
	fams := scrape(t, serve(t, tel.Handler(telemetry.HandlerOptions{})))
	for _, tt := range []struct {
		plugin, state string
		want          float64
	}{
		{"db", "FAILED", 1}, {"db", "RUNNING", 0}, {"db", "STARTING", 0},
		{"web", "RUNNING", 1}, {"web", "FAILED", 0},
	} {
		if v, ok := series(fams, "lifeline_plugin_state", "plugin", tt.plugin, "state", tt.state); !ok || v != tt.want {
			t.Errorf("lifeline_plugin_state{plugin=%q,state=%q} = %v (present %v), want %v", tt.plugin, tt.state, v, ok, tt.want)
		}
	}
	want := []telemetry.PluginSummary{
		{Name: "db", State: "FAILED", Restarts: 5, LastExit: "exit status 2", Retry: retry},
		{Name: "web", State: "RUNNING", PID: 4242},
	}
	if got := tel.Summary().Plugins; !reflect.DeepEqual(got, want) {
		t.Fatalf("summary plugins %+v, want %+v", got, want)
	}
}
