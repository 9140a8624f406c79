package chaos

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/lifeline-bot/lifeline/policies"
)

// durationAttr matches a line that sets an attribute to a duration string,
// `  name = "30s"  # comment`.
var durationAttr = regexp.MustCompile(`^(\s*[a-z_]+\s*=\s*)"([0-9.]+(?:ms|s|m|h))"(.*)$`)

// minDuration is the least value the policy language accepts for the
// duration attributes that have one (core/policy's ranges).
var minDuration = map[string]time.Duration{
	"interval":          time.Second,
	"monitoring_period": time.Second,
	"reset_timeout":     time.Second,
	"open_timeout":      100 * time.Millisecond,
	"max_open_timeout":  100 * time.Millisecond,
	"timeout":           10 * time.Millisecond,
}

// ScaledDefaultPolicy returns policies/default.hcl with every duration
// divided by scale, so that the default policy's timers, windows and delays
// run at the speed of a fake Discord of the same Scale; a result below the
// least value the policy language accepts for its attribute (the health
// interval's 1s, for one) is raised to it. The latency check's threshold
// and the conditions' millisecond thresholds are left alone: they compare
// measured latencies, which a faster clock does not shorten.
func ScaledDefaultPolicy(scale float64) ([]byte, error) {
	if !(scale >= 1) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("chaos: scale %v: want a finite number >= 1", scale)
	}
	src, err := policies.FS.ReadFile("default.hcl")
	if err != nil {
		return nil, fmt.Errorf("chaos: read the default policy: %w", err)
	}
	var out bytes.Buffer
	inLatency := false
	for _, line := range strings.Split(string(src), "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, `check "latency"`):
			inLatency = true
		case inLatency && trim == "}":
			inLatency = false
		}
		if m := durationAttr.FindStringSubmatch(line); m != nil && !inLatency {
			d, err := time.ParseDuration(m[2])
			if err != nil {
				return nil, fmt.Errorf("chaos: default policy duration %q: %w", m[2], err)
			}
			v := time.Duration(float64(d) / scale)
			name := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(m[1]), "="))
			v = max(v, minDuration[name])
			line = m[1] + `"` + formatDuration(v) + `"` + m[3]
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// formatDuration writes d in whole milliseconds (at least 1ms), a form
// every HCL duration attribute accepts.
func formatDuration(d time.Duration) string {
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return fmt.Sprintf("%dms", ms)
}

// pluginBlock adds a health check served by the tcpprobe plugin (probing
// address) to a policy, and declares the plugin at path.
func pluginBlock(src []byte, pluginPath, address string) []byte {
	check := fmt.Sprintf(`health {
  # chaos: a real plugin process, probing the fake Discord's port.
  check "fake_tcp" {
    plugin = "tcpprobe"
    config = { address = %q, timeout = "2s" }
  }
`, address)
	s := strings.Replace(string(src), "health {\n", check, 1)
	s += fmt.Sprintf("\n\nplugin \"tcpprobe\" {\n  path = %q\n}\n", pluginPath)
	return []byte(s)
}

// A policyEdit turns the chaos policy into another file: a valid variant
// the running system must put in force, or an invalid one it must refuse
// while keeping the policy it runs.
type policyEdit struct {
	Name  string
	Valid bool
	apply func(base string) string
}

// replaceOnce replaces the first old in s, and panics when old is absent:
// the edits are written against the shipped default policy, and a test
// keeps them applicable.
func replaceOnce(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic(fmt.Sprintf("chaos: policy edit: %q not found", old))
	}
	return strings.Replace(s, old, new, 1)
}

// policyEdits are the edits the schedule picks from. Valid edits change
// thresholds an operator would tune; invalid ones are the mistakes an
// operator makes (a syntax error, a typo in a condition, a function that does
// not exist, a plugin or action that is not declared, a file cut short).
var policyEdits = []policyEdit{
	{"raise minimal latency threshold", true, func(s string) string {
		return replaceOnce(s, "latency.heartbeat > 1000", "latency.heartbeat > 1500")
	}},
	{"raise error_rate check threshold", true, func(s string) string {
		return replaceOnce(s, "threshold = 0.1\n", "threshold = 0.15\n")
	}},
	{"stricter recover condition", true, func(s string) string {
		return replaceOnce(s, "errors.rate < 0.05", "errors.rate < 0.04")
	}},
	{"syntax error", false, func(s string) string {
		return s + "\ndegradation {\n  level \"broken\" {\n"
	}},
	{"unknown variable in a condition", false, func(s string) string {
		return replaceOnce(s, "errors.rate > 0.1", "errors.rat > 0.1")
	}},
	{"function outside the documented set", false, func(s string) string {
		return replaceOnce(s, "errors.rate > 0.1", `errors.rate > 0.1 || exec("true") != nil`)
	}},
	{"undeclared plugin", false, func(s string) string {
		return replaceOnce(s, `plugin = "tcpprobe"`, `plugin = "not_declared"`)
	}},
	{"unknown action", false, func(s string) string {
		return replaceOnce(s, `actions = ["reduce_logging_level", "disable_analytics"]`,
			`actions = ["reduce_logging_level", "launch_missiles"]`)
	}},
	{"file cut short", false, func(s string) string {
		// Cut inside a block label, as a crash mid-write would.
		i := strings.Index(s, `recovery "resume"`)
		if i < 0 {
			panic("chaos: policy edit: no resume rule to cut")
		}
		return s[:i+len(`recovery "re`)]
	}},
}
