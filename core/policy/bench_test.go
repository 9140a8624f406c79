package policy

import (
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
)

// The benchmarks evaluate policies/default.hcl against a healthy snapshot
// (every level condition is evaluated, none holds: the common case and
// the slowest one), side by side with a hand-written Go function doing the
// same comparisons and with the same policy forced onto expr's VM;
// policy-critical evaluates a snapshot at CRITICAL, the most levels the
// bottom-up ladder of decide tries.
// "policy" is the figure docs/benchmarks.md reports (bench/internal/report
// reads these names).

func loadDefault(b *testing.B) *Policy {
	b.Helper()
	p, err := Load("../../policies/default.hcl", testOptions())
	if err != nil {
		b.Fatal(err)
	}
	return p
}

var sinkDecision Decision
var sinkLevel Level
var sinkBool bool

// handWritten is the default policy's degradation logic as plain Go.
func handWritten(s *metrics.Snapshot) (Level, bool) {
	hb, rate, c := s.Latency.Heartbeat, s.Errors.Rate, s.Errors.Consecutive
	level := None
	switch {
	case hb > 8*time.Second || rate > 0.8 || c >= 40:
		level = Critical
	case hb > 4*time.Second || rate > 0.4 || c >= 20:
		level = Severe
	case hb > 2*time.Second || rate > 0.2 || c >= 10:
		level = Moderate
	case hb > time.Second || rate > 0.1 || c >= 5:
		level = Minimal
	}
	return level, hb < 500*time.Millisecond && rate < 0.05 && float64(c) < 2.5
}

func BenchmarkEvaluateDefault(b *testing.B) {
	p, s := loadDefault(b), snap(nil)
	b.Run("policy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkDecision = p.Evaluate(s)
		}
	})
	b.Run("evaluator", func(b *testing.B) {
		e := p.NewEvaluator()
		b.ReportAllocs()
		for b.Loop() {
			sinkDecision = e.Evaluate(s)
		}
	})
	b.Run("policy-critical", func(b *testing.B) {
		// The other end: every level's condition holds, so the ladder
		// (decide) climbs all of them before the Decision is known.
		bad := snap(func(s *metrics.Snapshot) { s.Errors.Rate = 0.95 })
		b.ReportAllocs()
		for b.Loop() {
			sinkDecision = p.Evaluate(bad)
		}
	})
	b.Run("expr-vm", func(b *testing.B) {
		e := vmOnly(loadDefault(b)).NewEvaluator()
		b.ReportAllocs()
		for b.Loop() {
			sinkDecision = e.Evaluate(s)
		}
	})
	b.Run("hand-written-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkLevel, sinkBool = handWritten(s)
		}
	})
	b.Run("env-fill-only", func(b *testing.B) {
		var e Env
		b.ReportAllocs()
		for b.Loop() {
			e.Fill(s)
		}
		sinkBool = e.Gateway.Connected
	})
}

func BenchmarkChooseRecoveryDefault(b *testing.B) {
	p, s := loadDefault(b), snap(nil)
	info := ErrorInfo{Kind: "close", CloseCode: 1006, Message: "websocket: close 1006 (abnormal closure)"}
	e := p.NewEvaluator()
	var dst []RecoveryRule
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = e.AppendRecovery(dst[:0], info, s)
	}
}

func BenchmarkDecodeDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		loadDefault(b)
	}
}
