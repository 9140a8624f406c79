package health

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// duration is a time.Duration written as a string ("1.5s") in JSON.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// historyFile is a recorded history: the checks a monitor had and, step by
// step, what their Snapshot said (or, for "script" checks, what they
// returned). Fields a step leaves out keep their previous value.
type historyFile struct {
	Description string `json:"description"`
	Options     struct {
		HistorySize    int      `json:"history_size"`
		Window         int      `json:"window"`
		DeadBand       float64  `json:"dead_band"`
		CriticalWeight float64  `json:"critical_weight"`
		UnhealthyBelow float64  `json:"unhealthy_below"`
		Heartbeat      duration `json:"heartbeat_interval"`
		Step           duration `json:"step"`
	} `json:"options"`
	Checks []struct {
		Name      string   `json:"name"`
		Type      string   `json:"type"` // latency, gateway, error_rate, script
		Critical  bool     `json:"critical"`
		Weight    float64  `json:"weight"`
		Threshold *float64 `json:"threshold"` // seconds for latency and gateway, ratio for error_rate
	} `json:"checks"`
	Steps []struct {
		Note      string          `json:"note"`
		Latency   *duration       `json:"latency"`
		Connected *bool           `json:"connected"`
		State     *string         `json:"state"`
		AckAge    *duration       `json:"ack_age"`
		ErrorRate *float64        `json:"error_rate"`
		Script    map[string]bool `json:"script"`
	} `json:"steps"`
}

// scripted is a Checker whose verdict the test sets.
type scripted struct {
	mu   sync.Mutex
	pass bool
}

func (s *scripted) set(pass bool) { s.mu.Lock(); s.pass = pass; s.mu.Unlock() }

func (s *scripted) Check(context.Context, metrics.Snapshot) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pass {
		return Result{Passed: true, Message: "scripted pass"}
	}
	return Result{Message: "scripted failure"}
}

// recorder is a Publisher that keeps what it is given.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Publish(e events.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, e)
	r.mu.Unlock()
}

func (r *recorder) events() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// TestRecordedHistories replays every testdata/histories/*.json through a
// monitor with the built-in checks and compares status, score, stability,
// reliability, trend and the HEALTH_CHANGED events of every step with the
// .golden file next to it. Run with -update to rewrite the golden files.
func TestRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories found")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			got := replay(t, file)
			compareGolden(t, strings.TrimSuffix(file, ".json")+".golden", got)
		})
	}
}

func replay(t *testing.T, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var h historyFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		t.Fatalf("%s: %v", file, err)
	}

	clk := clock.NewFake(time.Time{})
	start := clk.Now()
	var snap metrics.Snapshot
	snap.Gateway.HeartbeatInterval = time.Duration(h.Options.Heartbeat)
	snap.Gateway.Connections = 1 // every history starts after the first READY
	pub := &recorder{}
	m := NewMonitor(Options{
		Clock: clk, Events: pub,
		Source:         func() metrics.Snapshot { s := snap; s.Time = clk.Now(); return s },
		HistorySize:    h.Options.HistorySize,
		Window:         h.Options.Window,
		DeadBand:       h.Options.DeadBand,
		CriticalWeight: h.Options.CriticalWeight,
		UnhealthyBelow: h.Options.UnhealthyBelow,
	})
	scripts := map[string]*scripted{}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# %s\n", h.Description)
	for _, c := range h.Checks {
		var chk Checker
		var thr string
		switch c.Type {
		case "latency":
			cfg := LatencyConfig{}
			if c.Threshold != nil {
				cfg.Threshold = time.Duration(*c.Threshold * float64(time.Second))
			}
			lc, err := NewLatencyCheck(cfg)
			if err != nil {
				t.Fatal(err)
			}
			chk, thr = lc, lc.Config().Threshold.String()
		case "gateway":
			cfg := GatewayConfig{}
			if c.Threshold != nil {
				cfg.MaxAckAge = time.Duration(*c.Threshold * float64(time.Second))
			}
			gc, err := NewGatewayCheck(cfg)
			if err != nil {
				t.Fatal(err)
			}
			chk, thr = gc, gc.MaxAckAge(snap).String()
		case "error_rate":
			cfg := ErrorRateConfig{}
			if c.Threshold != nil {
				cfg.Threshold = *c.Threshold
			}
			ec, err := NewErrorRateCheck(cfg)
			if err != nil {
				t.Fatal(err)
			}
			chk, thr = ec, fmt.Sprint(ec.Config().Threshold)
		case "script":
			s := &scripted{pass: true}
			scripts[c.Name] = s
			chk, thr = s, "-"
		default:
			t.Fatalf("%s: check %q: unknown type %q", file, c.Name, c.Type)
		}
		if err := m.Add(c.Name, chk, CheckConfig{Critical: c.Critical, Weight: c.Weight}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "# check %s: type=%s threshold=%s critical=%v weight=%g\n", c.Name, c.Type, thr, c.Critical, m.weightOf(CheckConfig{Weight: c.Weight}))
	}
	fmt.Fprintf(&out, "%-4s %-6s %-9s %6s %6s %6s %-9s %s\n", "step", "time", "status", "score", "stab", "rel", "trend", "results")

	step := time.Duration(h.Options.Step)
	if step <= 0 {
		step = DefaultInterval
	}
	seen := 0
	for i, s := range h.Steps {
		if i > 0 {
			clk.Advance(step)
		}
		if s.Latency != nil {
			snap.Latency.Heartbeat = time.Duration(*s.Latency)
		}
		if s.Connected != nil {
			snap.Gateway.Connected = *s.Connected
		}
		if s.State != nil {
			snap.Gateway.State = *s.State
		}
		if s.AckAge != nil {
			snap.Gateway.LastAckAge = time.Duration(*s.AckAge)
		}
		if s.ErrorRate != nil {
			snap.Errors.Rate = *s.ErrorRate
		}
		for name, pass := range s.Script {
			sc, ok := scripts[name]
			if !ok {
				t.Fatalf("%s: step %d: no script check %q", file, i+1, name)
			}
			sc.set(pass)
		}
		ev, err := m.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var res []string
		for _, r := range ev.Results {
			mark := "ok"
			if !r.Passed {
				mark = "FAIL"
			}
			res = append(res, r.Name+"="+mark)
		}
		fmt.Fprintf(&out, "%-4d %-6s %-9s %6.2f %6.2f %6.2f %-9s %s", i+1, "+"+ev.Time.Sub(start).String(), ev.Status, ev.Score, ev.Stability, ev.Reliability, ev.Trend, strings.Join(res, " "))
		if s.Note != "" {
			fmt.Fprintf(&out, "  # %s", s.Note)
		}
		out.WriteByte('\n')
		evs := pub.events()
		for _, e := range evs[seen:] {
			d := e.Data.(events.HealthChange)
			fmt.Fprintf(&out, "     event %s shard=%d %s -> %s score=%.2f failing=%v\n", e.Type, e.Shard, d.From, d.To, d.Score, d.Failing)
		}
		seen = len(evs)
	}
	hist := m.History()
	fmt.Fprintf(&out, "# history: %d evaluations kept of %d\n", len(hist), len(h.Steps))
	return out.Bytes()
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test -update to accept it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// scoresFile is a set of recorded score sequences for the stability and
// trend formulas on their own.
type scoresFile struct {
	DeadBand  float64 `json:"dead_band"`
	Sequences []struct {
		Name   string    `json:"name"`
		Scores []float64 `json:"scores"`
	} `json:"sequences"`
}

// TestRecordedScoreSequences applies stability, slope and trend to the score
// sequences in testdata/scores.json and compares with testdata/scores.golden.
func TestRecordedScoreSequences(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "scores.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f scoresFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Sequences) == 0 {
		t.Fatal("no sequences")
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "%-28s %4s %8s %8s %9s %8s\n", "sequence", "n", "mean", "stab", "slope", "trend")
	for _, s := range f.Sequences {
		mean := 0.0
		for _, v := range s.Scores {
			mean += v
		}
		if len(s.Scores) > 0 {
			mean /= float64(len(s.Scores))
		}
		// Round before printing so a tiny negative never prints as -0.000.
		slope := math.Round(slopeOf(s.Scores)*1000)/1000 + 0
		fmt.Fprintf(&out, "%-28s %4d %8.3f %8.3f %9.3f %8s\n", s.Name, len(s.Scores), mean, stabilityOf(s.Scores), slope, trendOf(s.Scores, f.DeadBand))
	}
	compareGolden(t, filepath.Join("testdata", "scores.golden"), out.Bytes())
}
