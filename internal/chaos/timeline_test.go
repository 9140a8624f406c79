package chaos

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

// lineFeed hands every line written to it to a timeline, as the run's log
// sink does.
type lineFeed struct{ tl *timeline }

func (l lineFeed) Write(p []byte) (int, error) {
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) > 0 {
			l.tl.logLine(line)
		}
	}
	return len(p), nil
}

// The timeline reads the recovery engine's own skip lines, written by a
// real Engine through hclog as lifeline logs them: a skip at a cap is
// recorded with its strategy and time, a skip that kept a resumable
// session is counted apart, anything else only goes into the timeline.
func TestTimelineReadsRecoverySkips(t *testing.T) {
	tl := newTimeline(100)
	clk := clock.NewFake(at(1000))
	log := hclog.New(&hclog.LoggerOptions{Name: "shard0", Output: lineFeed{tl}, Level: hclog.Debug,
		TimeFn: func() time.Time { return clk.Now() }, TimeFormat: time.RFC3339Nano})
	failing := recovery.ConnectionFunc(func(context.Context, conn.RecoverMode, string) error { return errors.New("dial refused") })
	e := recovery.New(recovery.Settings{Clock: clk, Logger: log, MaxStrategyAttemptsPerWindow: 1, Connection: failing})
	f := recovery.Failure{Shard: 2, Error: policy.ErrorInfo{Kind: "close", CloseCode: 4000, Source: "conn", Message: "closed"}}
	// resume and reconnect fail once and are at their cap: reidentify is
	// held back to keep the session.
	if _, err := e.Handle(context.Background(), f); !errors.Is(err, recovery.ErrSessionKept) {
		t.Fatalf("first failure: %v", err)
	}
	// A second later, the same failure: the same three skips.
	clk.Advance(time.Second)
	if _, err := e.Handle(context.Background(), f); !errors.Is(err, recovery.ErrSessionKept) {
		t.Fatalf("second failure: %v", err)
	}

	c, ok := tl.skippedAtCap(2, at(1000), at(1000))
	if !ok || c.strategy != "resume" || !c.at.Equal(at(1000)) || !strings.Contains(c.reason, "1 failed attempts on shard 2") {
		t.Fatalf("first cap skip %+v (%v); all: %+v", c, ok, tl.capSkips)
	}
	if _, ok := tl.skippedAtCap(2, at(1001), at(5000)); !ok {
		t.Fatalf("no cap skip of the second failure: %+v", tl.capSkips)
	}
	if _, ok := tl.skippedAtCap(1, at(0), at(5000)); ok {
		t.Fatal("a cap skip of shard 2 counted for shard 1")
	}
	capped, kept := tl.skipCounts()
	// Each failure: resume and reconnect at their caps, reidentify kept.
	if capped != 4 || kept != 2 {
		t.Fatalf("skip counts: %d at a cap, %d kept; want 4 and 2", capped, kept)
	}
	got := tl.between(2, at(0), at(5000))
	for _, want := range []string{"recovery skipped resume: resume: 1 failed attempts", "recovery skipped reidentify: reidentify: " + recovery.ErrSessionKept.Error()} {
		if !strings.Contains(got, want) {
			t.Fatalf("timeline lacks %q:\n%s", want, got)
		}
	}
	tl.logLine([]byte(`2026-11-27T12:00:09.000Z [INFO]  shard0.lifeline: something else` + "\n"))
	if c2, k2 := tl.skipCounts(); c2 != capped || k2 != kept {
		t.Fatal("an unrelated line counted")
	}
}

// A loss on a resumable path that a cap preceded fails the run like any
// other, its detail naming the shard, the strategy capped, when and why;
// a loss without a cap before it stays in Lost.
func TestSeparateCappedFailsWithTheCap(t *testing.T) {
	tl := newTimeline(100)
	tl.logLine([]byte(`2026-11-27T12:00:01.500Z [WARN]  shard0.recovery: recovery strategy skipped: shard=1 strategy=reconnect reason="reconnect: 10 failed attempts on shard 1 within 5m0s: strategy attempt cap for the window reached"` + "\n"))
	r := &run{timeline: tl}
	f := LossFigures{
		Lost:    7,
		Details: []string{"shard 1 session a: 4 dispatches after seq 2 lost", "shard 0 session b: 3 dispatches after seq 9 lost"},
		Spans: []LossSpan{
			{Shard: 1, Session: "a", Count: 4, Disconnected: at(1200), NextSession: at(2000)},
			{Shard: 0, Session: "b", Count: 3, Disconnected: at(1200), NextSession: at(2000)},
		},
	}
	r.separateCapped(&f)
	if f.Lost != 3 || f.Capped != 4 || len(f.Details) != 2 || len(f.Spans) != 2 {
		t.Fatalf("figures %+v", f)
	}
	for _, want := range []string{"shard 1 session a", "skipped reconnect on shard 1 at its cap at 12:00:01.500",
		"strategy attempt cap for the window reached", "new session began at 12:00:02.000", "a cap cost a resumable session"} {
		if !strings.Contains(f.Details[0], want) {
			t.Fatalf("detail %q lacks %q", f.Details[0], want)
		}
	}
	if strings.Contains(f.Details[1], "cap") {
		t.Fatalf("a loss without a cap blamed on one: %q", f.Details[1])
	}
}
