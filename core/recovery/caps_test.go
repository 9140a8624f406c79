package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

// scriptConn is a Connection whose answer to the n-th call (from 1) of a
// mode is script(mode, n); it records the modes asked for.
type scriptConn struct {
	mu     sync.Mutex
	script func(mode conn.RecoverMode, n int) error
	calls  map[conn.RecoverMode]int
	modes  []string
}

func newScriptConn(script func(conn.RecoverMode, int) error) *scriptConn {
	return &scriptConn{script: script, calls: map[conn.RecoverMode]int{}}
}

func (s *scriptConn) Recover(_ context.Context, mode conn.RecoverMode, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[mode]++
	s.modes = append(s.modes, mode.String())
	if s.script == nil {
		return nil
	}
	return s.script(mode, s.calls[mode])
}

func (s *scriptConn) asked(mode string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.modes {
		if m == mode {
			n++
		}
	}
	return n
}

// failing returns a script under which the modes listed fail every time
// and the others succeed.
func failing(modes ...conn.RecoverMode) func(conn.RecoverMode, int) error {
	return func(m conn.RecoverMode, _ int) error {
		for _, f := range modes {
			if m == f {
				return fmt.Errorf("%s: %w", m, errBoom)
			}
		}
		return nil
	}
}

// summary renders what Handle did in order: "resume#1 ok",
// "resume#2 fail", "resume cap" (ErrStrategyCap), "resume window"
// (ErrWindowCap), "reidentify kept" (ErrSessionKept), "x unavailable".
// Attempts and skips are merged by their order in the Engine's error and
// report: skips happen between attempts, so they are placed by the
// ExhaustedError's order when there is one, else after the attempts.
func summary(rep recovery.Report) string {
	var out []string
	skips := rep.Skipped
	attempts := rep.Attempts
	// Walk the plan: each strategy's attempts, then its skip.
	for _, name := range rep.Plan {
		for len(attempts) > 0 && attempts[0].Strategy == name {
			a := attempts[0]
			attempts = attempts[1:]
			res := "ok"
			if a.Err != nil {
				res = "fail"
			}
			out = append(out, fmt.Sprintf("%s#%d %s", a.Strategy, a.Number, res))
		}
		if len(skips) > 0 && skips[0].Strategy == name {
			out = append(out, name+" "+skipKind(skips[0].Reason))
			skips = skips[1:]
		}
	}
	return strings.Join(out, ", ")
}

func skipKind(err error) string {
	switch {
	case errors.Is(err, recovery.ErrSessionKept):
		return "kept"
	case errors.Is(err, recovery.ErrWindowCap):
		return "window"
	case errors.Is(err, recovery.ErrStrategyCap):
		return "cap"
	case errors.Is(err, recovery.ErrUnavailable):
		return "unavailable"
	}
	return "skipped(" + err.Error() + ")"
}

// times repeats s n times.
func times(n int, s string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// The window caps count failed attempts only: a success is taken back
// out. Each case handles `failures` failures of shard 0, `gap` apart on
// the fake clock, and compares what each Handle did.
func TestCapsCountFailedAttemptsOnly(t *testing.T) {
	const flakyThenGood = `
recovery "flaky" {
  priority = 1
  use = "p.flaky"
  max_attempts = 1
}
recovery "good" {
  priority = 2
  use = "p.good"
  max_attempts = 1
}
plugin "p" { path = "./p" }
`
	cases := []struct {
		name     string
		settings recovery.Settings
		policy   string // "" for the default rules
		script   func(conn.RecoverMode, int) error
		failures int
		gap      time.Duration
		want     []string // summary of each Handle
	}{
		{
			// The soak's case: with successes counted, the 11th failure
			// skipped resume and reconnect went after it; later
			// reidentify threw the session away.
			name:     "a connection that drops often but resumes every time is never capped",
			failures: 40,
			gap:      time.Second,
			want:     times(40, "resume#1 ok"),
		},
		{
			name: "resume failing once per failure spends one of its ten, not two",
			script: func(m conn.RecoverMode, n int) error {
				if m == conn.RecoverResume && n%2 == 1 {
					return errBoom
				}
				return nil
			},
			failures: 12,
			gap:      time.Second,
			// The 10th failure's first resume is the 10th failed one in
			// the window: its second is skipped and reconnect (which
			// keeps the session) recovers, as it does from then on.
			// Counting successes, the cap came at the 6th failure.
			want: concat(times(9, "resume#1 fail, resume#2 ok"),
				[]string{"resume#1 fail, resume cap, reconnect#1 ok", "resume cap, reconnect#1 ok", "resume cap, reconnect#1 ok"}),
		},
		{
			name:     "a strategy that keeps failing is still capped, per strategy",
			settings: recovery.Settings{MaxStrategyAttemptsPerWindow: 3, Window: time.Minute},
			policy:   flakyThenGood,
			failures: 6,
			gap:      time.Second,
			want: concat(times(3, "flaky#1 fail, good#1 ok"),
				times(3, "flaky cap, good#1 ok")),
		},
		{
			name:     "the strategy cap's window slides: failures older than Window no longer count",
			settings: recovery.Settings{MaxStrategyAttemptsPerWindow: 2, Window: time.Minute},
			policy:   flakyThenGood,
			failures: 5,
			gap:      25 * time.Second,
			// t=0, 25s: flaky fails (2 in the window); t=50s: capped;
			// t=75s: the t=0 failure has left: flaky runs again; t=100s:
			// t=25s has left too, t=75s remains: it runs.
			want: []string{"flaky#1 fail, good#1 ok", "flaky#1 fail, good#1 ok", "flaky cap, good#1 ok",
				"flaky#1 fail, good#1 ok", "flaky#1 fail, good#1 ok"},
		},
		{
			name:     "a failing loop meets the shard's window cap",
			settings: recovery.Settings{MaxAttemptsPerWindow: 4, Window: time.Minute},
			policy: `
recovery "flaky" {
  priority = 1
  use = "p.flaky"
  max_attempts = 3
}
recovery "good" {
  priority = 2
  use = "p.flaky"
  max_attempts = 3
}
plugin "p" { path = "./p" }
`,
			failures: 3,
			gap:      time.Second,
			want:     []string{"flaky#1 fail, flaky#2 fail, flaky#3 fail, good#1 fail, good window", "flaky window", "flaky window"},
		},
		{
			name:     "successes never meet the shard's window cap",
			settings: recovery.Settings{MaxAttemptsPerWindow: 2, Window: time.Minute},
			policy: `
recovery "good" {
  use = "p.good"
}
plugin "p" { path = "./p" }
`,
			failures: 10,
			gap:      time.Second,
			want:     times(10, "good#1 ok"),
		},
		{
			name:     "the shard's window cap counts only the failures among its attempts",
			settings: recovery.Settings{MaxAttemptsPerWindow: 3, Window: time.Minute},
			policy:   flakyThenGood,
			failures: 4,
			gap:      time.Second,
			// Three failures of flaky fill the cap, good's successes
			// add nothing (counting them, the second failure's flaky
			// attempt was the third and good was skipped there); at the
			// cap even good, which never failed, is skipped.
			want: []string{"flaky#1 fail, good#1 ok", "flaky#1 fail, good#1 ok", "flaky#1 fail, good window", "flaky window"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFake()
			s := tc.settings
			s.Clock = clk
			sc := newScriptConn(tc.script)
			s.Connection = sc
			rec := &recorder{}
			s.Events = rec
			e := recovery.New(s)
			tr := &tracker{}
			_ = e.Register("p.flaky", tr.strategy("flaky", errBoom))
			_ = e.Register("p.good", tr.strategy("good", nil))
			if tc.policy != "" {
				if err := e.SetPolicy(mustPolicy(t, tc.policy)); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			var attempts, ok, skipped, unrecovered int
			for i := 0; i < tc.failures; i++ {
				rep, err := e.Handle(context.Background(), closeFailure(4000))
				if (err == nil) != rep.Recovered {
					t.Fatalf("failure %d: err %v but Recovered=%v", i, err, rep.Recovered)
				}
				got = append(got, summary(rep))
				attempts += len(rep.Attempts)
				for _, a := range rep.Attempts {
					if a.Err == nil {
						ok++
					}
				}
				skipped += len(rep.Skipped)
				if !rep.Recovered {
					unrecovered++
				}
				clk.Advance(tc.gap)
			}
			equal(t, "handles", got, tc.want)

			// Stats, events and reports agree: every attempt (refunded
			// or not) counts and has its two events; each success is
			// refunded; skips publish nothing.
			st := e.Stats()
			want := recovery.Stats{Failures: uint64(tc.failures), Recovered: uint64(tc.failures - unrecovered),
				Unrecovered: uint64(unrecovered), Attempts: uint64(attempts), Refunded: uint64(ok), Skipped: uint64(skipped)}
			if st != want {
				t.Fatalf("stats %+v, want %+v", st, want)
			}
			var attempted, completed, errs int
			for _, ev := range rec.events() {
				switch d := ev.Data.(type) {
				case events.Recovery:
					if d.Completed {
						completed++
					} else {
						attempted++
					}
				case events.Error:
					errs++
				}
			}
			if attempted != attempts || completed != attempts || errs != unrecovered {
				t.Fatalf("events: %d attempted, %d completed, %d errors; want %d, %d, %d",
					attempted, completed, errs, attempts, attempts, unrecovered)
			}
		})
	}
}

// A cap must not cost a session that can still resume: once a strategy
// keeping the session (resume, reconnect) is skipped at its cap for a
// failure a resume strategy applies to, reidentify and restart_client are
// skipped too and the failure goes back to the caller (the connection
// loop, which resumes). Each case handles its failures in order on shard
// 0 and checks the last Handle.
func TestCapsNeverCostAResumableSession(t *testing.T) {
	zombie := recovery.Failure{Error: policy.ErrorInfo{Kind: "zombie", Source: "conn", Message: "no ACK"}}
	cases := []struct {
		name        string
		strategyCap int
		script      func(conn.RecoverMode, int) error
		failures    []recovery.Failure
		want        string // summary of the last Handle
		wantErr     []error
		identifies  int // reidentify and restart_client asked of the connection, over all failures
	}{
		{
			name:        "resume and reconnect at their caps: reidentify is kept back",
			strategyCap: 2,
			script:      failing(conn.RecoverResume, conn.RecoverReconnect),
			failures:    []recovery.Failure{closeFailure(4000)},
			want:        "resume#1 fail, resume#2 fail, resume cap, reconnect#1 fail, reconnect#2 fail, reconnect cap, reidentify kept",
			wantErr:     []error{recovery.ErrExhausted, recovery.ErrSessionKept, recovery.ErrStrategyCap},
		},
		{
			name:        "resume at its cap falls through to reconnect, which keeps the session",
			strategyCap: 2,
			script:      failing(conn.RecoverResume),
			failures:    []recovery.Failure{closeFailure(4000), closeFailure(1006)},
			want:        "resume cap, reconnect#1 ok",
		},
		{
			name:        "resume at its cap and reconnect failing its max_attempts: still no reidentify",
			strategyCap: 3,
			script: func(m conn.RecoverMode, n int) error {
				switch {
				case m == conn.RecoverResume, m == conn.RecoverReconnect && n > 1:
					return errBoom
				}
				return nil
			},
			// First: resume fails 3 times (its cap), reconnect recovers.
			// Second: resume capped, reconnect fails 3 times.
			failures: []recovery.Failure{closeFailure(4000), closeFailure(4000)},
			want:     "resume cap, reconnect#1 fail, reconnect#2 fail, reconnect#3 fail, reidentify kept",
			wantErr:  []error{recovery.ErrExhausted, recovery.ErrSessionKept},
		},
		{
			name:        "a zombie: restart_client is kept back too",
			strategyCap: 1,
			script:      failing(conn.RecoverResume, conn.RecoverReconnect),
			failures:    []recovery.Failure{zombie},
			want:        "resume#1 fail, resume cap, reconnect#1 fail, reconnect cap, reidentify kept, restart_client kept",
			wantErr:     []error{recovery.ErrExhausted, recovery.ErrSessionKept},
		},
		{
			name:        "a session that cannot resume (4009) still goes to reidentify after reconnect's cap",
			strategyCap: 2,
			script:      failing(conn.RecoverReconnect),
			failures:    []recovery.Failure{closeFailure(4009)},
			want:        "reconnect#1 fail, reconnect#2 fail, reconnect cap, reidentify#1 ok",
			identifies:  1,
		},
		{
			name:        "without a cap, the policy's own order still reaches reidentify",
			strategyCap: 10,
			script:      failing(conn.RecoverResume, conn.RecoverReconnect),
			failures:    []recovery.Failure{closeFailure(4000)},
			want:        "resume#1 fail, resume#2 fail, resume#3 fail, reconnect#1 fail, reconnect#2 fail, reconnect#3 fail, reidentify#1 ok",
			identifies:  1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFake()
			sc := newScriptConn(tc.script)
			e := recovery.New(recovery.Settings{Clock: clk, Connection: sc, MaxStrategyAttemptsPerWindow: tc.strategyCap})
			var rep recovery.Report
			var err error
			for _, f := range tc.failures {
				rep, err = e.Handle(context.Background(), f)
				clk.Advance(time.Second)
			}
			if got := summary(rep); got != tc.want {
				t.Fatalf("last Handle:\n got  %s\n want %s", got, tc.want)
			}
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("err %v, want recovered", err)
			}
			for _, w := range tc.wantErr {
				if !errors.Is(err, w) {
					t.Fatalf("err %v, want it to wrap %v", err, w)
				}
			}
			if n := sc.asked("reidentify") + sc.asked("restart_client"); n != tc.identifies {
				t.Fatalf("the connection was asked for a new session %d times, want %d", n, tc.identifies)
			}
			for _, s := range rep.Skipped {
				if errors.Is(s.Reason, recovery.ErrSessionKept) && !strings.Contains(s.Reason.Error(), "was skipped at its cap") {
					t.Fatalf("skip reason %q does not say which cap", s.Reason)
				}
			}
		})
	}
}

// ConnPlanner hands a failure whose session-keeping strategies are capped
// back to the connection loop (nil: the loop's own choice, a RESUME),
// instead of ending the connection or asking for a new session.
func TestPlannerHandsCappedResumableFailureBack(t *testing.T) {
	e := recovery.New(recovery.Settings{Clock: newFake(), MaxStrategyAttemptsPerWindow: 1})
	p := e.ConnPlanner(3)
	var modes []string
	try := func(_ context.Context, m conn.RecoverMode) error {
		modes = append(modes, m.String())
		if m == conn.RecoverReidentify {
			return nil
		}
		return errBoom
	}
	failure := events.Error{Source: "conn", Kind: "close", CloseCode: 4000, Message: "gateway closed with 4000"}
	for i := 0; i < 3; i++ {
		if err := p.Plan(context.Background(), failure, try); err != nil {
			t.Fatalf("plan %d: %v, want the failure handed back", i, err)
		}
	}
	equal(t, "tries", modes, []string{"resume", "reconnect"})
}
