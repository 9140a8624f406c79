package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/health"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// dir holds bin/worker-heartbeat, built once, where policy.hcl's relative
// path finds it.
var dir string

func TestMain(m *testing.M) {
	var err error
	dir, err = os.MkdirTemp("", "custom-health-checks")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "worker-heartbeat"), ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestPluginResultReachesHealthScoreAndPolicy runs the example as lifeline
// does: the policy names the plugin, the host starts the real binary, the
// health monitor runs its check beside the built-in ones, and the score it
// computes decides the policy's degradation level.
func TestPluginResultReachesHealthScoreAndPolicy(t *testing.T) {
	heartbeat := filepath.Join(t.TempDir(), "worker.heartbeat")
	pol, err := policy.Load("policy.hcl", policy.Options{LookupEnv: func(name string) (string, bool) {
		if name == "WORKER_HEARTBEAT" {
			return heartbeat, true
		}
		return "", false
	}})
	if err != nil {
		t.Fatal(err)
	}

	host := pluginhost.New(pluginhost.Options{BaseDir: dir})
	defer host.Stop()
	specs := pluginhost.SpecsFromPolicy(pol)
	if err := host.Reconcile(context.Background(), specs); err != nil {
		t.Fatal(err)
	}

	// The connection is healthy: only the worker can fail.
	conn := metrics.Snapshot{Latency: metrics.Latency{Heartbeat: 40 * time.Millisecond},
		Gateway: metrics.Gateway{Connected: true, HeartbeatInterval: 41 * time.Second, LastAckAge: time.Second}}
	mon := health.NewMonitor(health.Options{Source: func() metrics.Snapshot { return conn }, Retries: -1})
	for _, c := range pol.Health.Checks {
		var checker health.Checker
		switch c.Type {
		case policy.CheckLatency:
			checker, err = health.NewLatencyCheck(health.LatencyConfig{Threshold: c.Threshold.Duration})
		case policy.CheckGateway:
			checker, err = health.NewGatewayCheck(health.GatewayConfig{MaxAckAge: c.Threshold.Duration})
		default:
			spec := specs[0]
			checker = host.Checker(spec.Name, spec.Checks[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := mon.Add(c.Name, checker, health.CheckConfig{Critical: c.Critical}); err != nil {
			t.Fatal(err)
		}
	}

	// level runs one health round and evaluates the policy on its verdict.
	level := func() (health.Evaluation, policy.Decision) {
		ev, err := mon.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		snap := conn
		snap.Health = mon.View()
		return ev, pol.Evaluate(&snap)
	}
	worker := func(ev health.Evaluation) health.Result {
		for _, r := range ev.Results {
			if r.Name == "worker" {
				return r
			}
		}
		t.Fatalf("no worker result in %+v", ev.Results)
		return health.Result{}
	}

	// A fresh heartbeat: everything passes, no degradation.
	if err := os.WriteFile(heartbeat, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ev, dec := level()
	if r := worker(ev); !r.Passed || r.Unit != "s" || r.Threshold != 30 || !strings.HasPrefix(r.Message, "last heartbeat") {
		t.Fatalf("worker result = %+v", r)
	}
	if ev.Score != 100 || ev.Status != health.Healthy || dec.Level != policy.None {
		t.Fatalf("healthy: score %v status %v level %v", ev.Score, ev.Status, dec.Level)
	}

	// The worker stalls: its heartbeat is five minutes old. Its failure
	// costs a quarter of the score (the critical gateway check weighs 2),
	// which the policy turns into the minimal level.
	old := time.Now().Add(-5 * time.Minute)
	if err := os.Chtimes(heartbeat, old, old); err != nil {
		t.Fatal(err)
	}
	ev, dec = level()
	if r := worker(ev); r.Passed || r.Value < 299 || !strings.Contains(r.Message, "last heartbeat 5m0s ago") {
		t.Fatalf("stale worker result = %+v", r)
	}
	if ev.Score != 75 || ev.Status != health.Degraded || strings.Join(ev.Failing, ",") != "worker" {
		t.Fatalf("stale: score %v status %v failing %v", ev.Score, ev.Status, ev.Failing)
	}
	if dec.Level != policy.Minimal || !strings.Contains(dec.Reason, "health.score < 80") {
		t.Fatalf("decision = %+v", dec)
	}

	// No heartbeat file at all: the check's error is the message.
	if err := os.Remove(heartbeat); err != nil {
		t.Fatal(err)
	}
	ev, _ = level()
	if r := worker(ev); r.Passed || !strings.Contains(r.Message, "no heartbeat") {
		t.Fatalf("missing worker result = %+v", r)
	}
}
