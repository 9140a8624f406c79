package policy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
)

func ExampleDecode() {
	src := []byte(`
degradation {
  recovery_delay = "30s"
  level "moderate" {
    when    = "errors.rate > 0.1 || errors.consecutive >= 3"
    actions = ["disable_analytics", "increase_timeouts"]
  }
  recover { when = "errors.rate < 0.05 && health.score >= 80" }
}
`)
	p, diags := policy.Decode("policy.hcl", src, policy.Options{})
	if diags.HasErrors() {
		fmt.Println(diags)
		return
	}
	for _, l := range p.Degradation.Levels {
		fmt.Println(l.Level, l.When.Expr, l.Actions)
	}
	fmt.Println("recover when", p.Degradation.Recover.Expr)
	fmt.Println("intents", p.Connection.Intents, "mask", p.Connection.IntentMask())
	// Output:
	// MODERATE errors.rate > 0.1 || errors.consecutive >= 3 [disable_analytics increase_timeouts]
	// recover when errors.rate < 0.05 && health.score >= 80
	// intents [Guilds GuildMessages] mask 513
}

func ExamplePolicy_Evaluate() {
	p := policy.Default()
	s := &metrics.Snapshot{
		Latency: metrics.Latency{Heartbeat: 2500 * time.Millisecond},
		Errors:  metrics.Errors{Rate: 0.02},
	}
	d := p.Evaluate(s)
	fmt.Println(d.Level, d.Actions)
	fmt.Println(d.Reason)
	fmt.Println("recover:", d.Recover)
	// Output:
	// MODERATE [reduce_logging_level disable_analytics increase_timeouts disable_non_critical_features]
	// level "moderate" (thresholds): latency.heartbeat > 2000 || errors.rate > 0.2 || errors.consecutive >= 10
	// recover: false
}

func ExamplePolicy_ChooseRecovery() {
	p := policy.Default()
	rules, err := p.ChooseRecovery(policy.ErrorInfo{Kind: "close", CloseCode: 4009, Message: "session timed out"}, &metrics.Snapshot{})
	if err != nil {
		fmt.Println(err)
	}
	for _, r := range rules {
		fmt.Println(r.Priority, r.Use, r.MaxAttempts)
	}
	// Output:
	// 20 reconnect 3
	// 30 reidentify 2
}

func ExampleWriteDiagnostics() {
	src := []byte(`degradation {
  level "minimal" {
    when = "errors.rat > 0.1"
  }
  recover { when = "errors.rate < 0.05" }
}
`)
	_, diags := policy.Decode("policy.hcl", src, policy.Options{})
	_ = policy.WriteDiagnostics(os.Stdout, diags, map[string][]byte{"policy.hcl": src}, false)
	// Output:
	// Error: Unknown name in condition
	//
	//   on policy.hcl line 3, in degradation.level "minimal":
	//    3:     when = "errors.rat > 0.1"
	//                          ^^^
	//
	// errors has no variable "rat". Did you mean "rate"?
}

func ExampleWatcher() {
	dir, _ := os.MkdirTemp("", "policy-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "policy.hcl")
	_ = os.WriteFile(path, []byte(`circuit_breaker { failure_threshold = 5 }`), 0o644)

	w, err := policy.NewWatcher(policy.WatcherOptions{Path: path})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	w.OnReload(func(old, new *policy.Generation) {
		fmt.Println("breaker threshold", old.Policy.CircuitBreaker.FailureThreshold, "->", new.Policy.CircuitBreaker.FailureThreshold)
	})
	// Start() would watch the directory; Reload is what SIGHUP does.
	_ = os.WriteFile(path, []byte(`circuit_breaker { failure_threshold = 8 }`), 0o644)
	g, _ := w.Reload()
	fmt.Println("generation", g.Number)

	_ = os.WriteFile(path, []byte(`circuit_breaker { failure_threshold = 0 }`), 0o644)
	g, err = w.Reload()
	fmt.Println("generation", g.Number, "error:", err != nil)
	// Output:
	// breaker threshold 5 -> 8
	// generation 2
	// generation 2 error: true
}
