package breaker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
)

func TestStateString(t *testing.T) {
	tests := []struct {
		s    State
		want string
	}{
		{StateClosed, "CLOSED"},
		{StateOpen, "OPEN"},
		{StateHalfOpen, "HALF_OPEN"},
		{State(7), "State(7)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("State(%d).String() = %q, want %q", uint8(tt.s), got, tt.want)
		}
		if b, _ := tt.s.MarshalText(); string(b) != tt.want {
			t.Errorf("State(%d).MarshalText() = %q, want %q", uint8(tt.s), b, tt.want)
		}
	}
}

func TestZeroSettingsDefaults(t *testing.T) {
	c := resolve(Settings{})
	want := config{
		failureThreshold:  5,
		monitoringPeriod:  time.Minute,
		openTimeout:       time.Minute,
		halfOpenMaxCalls:  1,
		recoveryThreshold: 1,
		resetTimeout:      0,
		multiplier:        2,
		backoffMax:        10 * time.Minute,
		jitter:            0.1,
	}
	if c != want {
		t.Fatalf("resolve(Settings{}) = %+v, want %+v", c, want)
	}
	// A zero-valued Settings gives a working breaker on the wall clock.
	b := New(Settings{})
	if err := b.Execute(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if b.State() != StateClosed || b.Metrics().Successes != 1 {
		t.Fatalf("zero Settings breaker: %+v", b.Metrics())
	}
}

func TestSettingsNormalisation(t *testing.T) {
	tests := []struct {
		name  string
		in    Settings
		check func(config) bool
	}{
		{"negative thresholds take defaults", Settings{FailureThreshold: -1, HalfOpenMaxCalls: -2, RecoveryThreshold: -3},
			func(c config) bool {
				return c.failureThreshold == 5 && c.halfOpenMaxCalls == 1 && c.recoveryThreshold == 1
			}},
		{"multiplier below 1 means no growth", Settings{Backoff: Backoff{Multiplier: 0.5}},
			func(c config) bool { return c.multiplier == 1 }},
		{"negative multiplier means no growth", Settings{Backoff: Backoff{Multiplier: -3}},
			func(c config) bool { return c.multiplier == 1 }},
		{"max below open timeout is raised", Settings{OpenTimeout: time.Minute, Backoff: Backoff{Max: time.Second}},
			func(c config) bool { return c.backoffMax == time.Minute }},
		{"max defaults to 10x open timeout", Settings{OpenTimeout: 3 * time.Second},
			func(c config) bool { return c.backoffMax == 30*time.Second }},
		{"huge open timeout saturates the default max", Settings{OpenTimeout: 1 << 62},
			func(c config) bool { return c.backoffMax == 1<<63-1 }},
		{"negative jitter disables jitter", Settings{Backoff: Backoff{Jitter: -1}},
			func(c config) bool { return c.jitter == 0 }},
		{"jitter above 1 is 1", Settings{Backoff: Backoff{Jitter: 7}},
			func(c config) bool { return c.jitter == 1 }},
		{"negative reset timeout is off", Settings{ResetTimeout: -time.Second},
			func(c config) bool { return c.resetTimeout == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c := resolve(tt.in); !tt.check(c) {
				t.Fatalf("resolve(%+v) = %+v", tt.in, c)
			}
		})
	}
}

// TestTransitions drives every transition of the state machine and checks
// the published events and the listener agree.
func TestTransitions(t *testing.T) {
	base := Settings{FailureThreshold: 3, OpenTimeout: 10 * time.Second, Backoff: Backoff{Jitter: -1}}
	tests := []struct {
		name     string
		settings Settings
		run      func(h *harness)
		want     []string
		state    State
	}{
		{"closed stays closed below the threshold", base, func(h *harness) {
			h.fail()
			h.fail()
		}, nil, StateClosed},
		{"closed opens at the threshold", base, func(h *harness) {
			h.fail()
			h.fail()
			h.fail()
		}, []string{"CLOSED>OPEN"}, StateOpen},
		{"open rejects until the timeout", base, func(h *harness) {
			h.trip()
			h.clk.Advance(10*time.Second - time.Nanosecond)
			if err := h.ok(); !errors.Is(err, ErrOpen) {
				h.t.Fatalf("call 1ns before the timeout: %v, want ErrOpen", err)
			}
		}, []string{"CLOSED>OPEN"}, StateOpen},
		{"open goes half-open at the timeout", base, func(h *harness) {
			h.trip()
			h.clk.Advance(10 * time.Second)
		}, []string{"CLOSED>OPEN", "OPEN>HALF_OPEN"}, StateHalfOpen},
		{"half-open closes after the recovery threshold", withRecovery(base, 2, 2), func(h *harness) {
			h.trip()
			h.expire()
			h.ok()
			h.wantState(StateHalfOpen)
			h.ok()
		}, []string{"CLOSED>OPEN", "OPEN>HALF_OPEN", "HALF_OPEN>CLOSED"}, StateClosed},
		{"half-open re-opens on a failed probe", withRecovery(base, 2, 2), func(h *harness) {
			h.trip()
			h.expire()
			h.ok()
			h.fail()
		}, []string{"CLOSED>OPEN", "OPEN>HALF_OPEN", "HALF_OPEN>OPEN"}, StateOpen},
		{"ForceOpen from closed", base, func(h *harness) {
			h.b.ForceOpen()
		}, []string{"CLOSED>OPEN"}, StateOpen},
		{"ForceOpen from half-open", base, func(h *harness) {
			h.trip()
			h.expire()
			h.b.ForceOpen()
		}, []string{"CLOSED>OPEN", "OPEN>HALF_OPEN", "HALF_OPEN>OPEN"}, StateOpen},
		{"ForceClose from open", base, func(h *harness) {
			h.trip()
			h.b.ForceClose()
		}, []string{"CLOSED>OPEN", "OPEN>CLOSED"}, StateClosed},
		{"ForceClose from half-open", base, func(h *harness) {
			h.trip()
			h.expire()
			h.b.ForceClose()
		}, []string{"CLOSED>OPEN", "OPEN>HALF_OPEN", "HALF_OPEN>CLOSED"}, StateClosed},
		{"Reset from open", base, func(h *harness) {
			h.trip()
			h.b.Reset()
		}, []string{"CLOSED>OPEN", "OPEN>CLOSED"}, StateClosed},
		{"Reset from half-open", base, func(h *harness) {
			h.trip()
			h.expire()
			h.b.Reset()
		}, []string{"CLOSED>OPEN", "OPEN>HALF_OPEN", "HALF_OPEN>CLOSED"}, StateClosed},
		{"ForceClose and Reset in closed publish nothing", base, func(h *harness) {
			h.b.ForceClose()
			h.b.Reset()
		}, nil, StateClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.settings)
			l, _ := listen(h.b)
			tt.run(h)
			h.wantState(tt.state)
			h.wantPath(tt.want...)
			if got := l.take(t, len(tt.want)); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("listener saw %v, want %v", got, tt.want)
			}
			l.none(t)
			if m := h.b.Metrics(); m.StateChanges != uint64(len(tt.want)) && !strings.HasPrefix(tt.name, "Reset") {
				t.Fatalf("StateChanges = %d, want %d", m.StateChanges, len(tt.want))
			}
		})
	}
}

func withRecovery(s Settings, maxCalls, recovery int) Settings {
	s.HalfOpenMaxCalls = maxCalls
	s.RecoveryThreshold = recovery
	return s
}

// TestOpenTimerEndsOpenWithoutCalls shows the open timer moves the circuit
// to HALF_OPEN when the timeout expires even if nobody calls or asks.
func TestOpenTimerEndsOpenWithoutCalls(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 1, OpenTimeout: time.Second, Backoff: Backoff{Jitter: -1}})
	l, _ := listen(h.b)
	h.fail()
	if tr := l.next(t); tr.To != StateOpen {
		t.Fatalf("first transition %+v, want to OPEN", tr)
	}
	opened := h.clk.Now()
	h.clk.Advance(time.Second) // fires the timer in its own goroutine
	tr := l.next(t)
	if tr.From != StateOpen || tr.To != StateHalfOpen {
		t.Fatalf("timer transition %+v, want OPEN>HALF_OPEN", tr)
	}
	if !tr.At.Equal(opened.Add(time.Second)) {
		t.Fatalf("HALF_OPEN began at %v, want %v", tr.At, opened.Add(time.Second))
	}
	h.wantPath("CLOSED>OPEN", "OPEN>HALF_OPEN")
}

func TestEventsCarryTheTransition(t *testing.T) {
	h := newHarness(t, Settings{Name: "rest", FailureThreshold: 2, OpenTimeout: 5 * time.Second,
		Backoff: Backoff{Jitter: -1}})
	start := h.clk.Now()
	h.fail()
	h.clk.Advance(time.Second)
	h.fail()
	h.clk.Advance(7 * time.Second)
	h.ok()
	h.b.ForceOpen()

	evs := h.rec.all()
	want := []struct {
		from, to string
		at       time.Time
		timeout  time.Duration
		reason   string
	}{
		{"CLOSED", "OPEN", start.Add(time.Second), 5 * time.Second, "2 failures within 1m0s reached the threshold of 2"},
		{"OPEN", "HALF_OPEN", start.Add(6 * time.Second), 0, "open timeout of 5s elapsed"},
		{"HALF_OPEN", "CLOSED", start.Add(8 * time.Second), 0, "1 successful probe reached the recovery threshold"},
		{"CLOSED", "OPEN", start.Add(8 * time.Second), 0, "forced open"},
	}
	if len(evs) != len(want) {
		t.Fatalf("published %d events (%v), want %d", len(evs), h.rec.path(), len(want))
	}
	for i, w := range want {
		e := evs[i]
		if e.Type != events.CircuitBreakerTriggered || e.Shard != events.NoShard {
			t.Errorf("event %d: type %v shard %d", i, e.Type, e.Shard)
		}
		d := e.Data.(events.BreakerTransition)
		if d.Breaker != "rest" || d.From != w.from || d.To != w.to || d.OpenTimeout != w.timeout || d.Reason != w.reason {
			t.Errorf("event %d = %+v, want %s>%s timeout %v reason %q", i, d, w.from, w.to, w.timeout, w.reason)
		}
		if !e.Time.Equal(w.at) {
			t.Errorf("event %d at %v, want %v", i, e.Time, w.at)
		}
	}
}

func TestRejectionErrors(t *testing.T) {
	h := newHarness(t, Settings{Name: "gateway", FailureThreshold: 1, HalfOpenMaxCalls: 1})
	h.fail()
	err := h.ok()
	if !errors.Is(err, ErrOpen) || errors.Is(err, ErrTooManyProbes) {
		t.Fatalf("open rejection %v: want ErrOpen only", err)
	}
	if got, want := err.Error(), `breaker "gateway": circuit open`; got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	h.expire()
	done, err := h.b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.b.Allow()
	if !errors.Is(err, ErrTooManyProbes) || errors.Is(err, ErrOpen) {
		t.Fatalf("probe rejection %v: want ErrTooManyProbes only", err)
	}
	if !strings.HasPrefix(err.Error(), `breaker "gateway": `) {
		t.Fatalf("message %q does not name the breaker", err)
	}
	done(nil)
	if m := h.b.Metrics(); m.Rejections != 2 {
		t.Fatalf("Rejections = %d, want 2", m.Rejections)
	}
	unnamed := New(Settings{})
	unnamed.ForceOpen()
	if got := unnamed.Execute(context.Background(), nil).Error(); got != "breaker: circuit open" {
		t.Fatalf("unnamed message %q", got)
	}
}

// TestHalfOpenProbeLimitConcurrent sends many goroutines at a HALF_OPEN
// circuit at once while the admitted probes block: exactly
// HalfOpenMaxCalls run, the rest are rejected.
func TestHalfOpenProbeLimitConcurrent(t *testing.T) {
	const maxCalls, callers = 3, 40
	h := newHarness(t, Settings{FailureThreshold: 1, HalfOpenMaxCalls: maxCalls, RecoveryThreshold: maxCalls})
	h.fail()
	h.expire()

	gate := make(chan struct{})
	arrived := make(chan bool, callers) // true: admitted, false: rejected
	results := make(chan error, callers)
	for range callers {
		go func() {
			results <- h.b.Execute(h.ctx, func(context.Context) error {
				arrived <- true
				<-gate
				return nil
			})
		}()
	}
	admitted, rejected := 0, 0
	for range callers {
		select {
		case <-arrived:
			admitted++
		case err := <-results:
			if !errors.Is(err, ErrTooManyProbes) {
				t.Fatalf("rejected call returned %v, want ErrTooManyProbes", err)
			}
			rejected++
		case <-time.After(10 * time.Second):
			t.Fatalf("stuck: %d admitted, %d rejected", admitted, rejected)
		}
	}
	if admitted != maxCalls || rejected != callers-maxCalls {
		t.Fatalf("admitted %d rejected %d, want %d and %d", admitted, rejected, maxCalls, callers-maxCalls)
	}
	if m := h.b.Metrics(); m.ProbesInFlight != maxCalls || m.State != StateHalfOpen {
		t.Fatalf("while probes run: %+v", m)
	}
	close(gate)
	for range maxCalls {
		if err := <-results; err != nil {
			t.Fatalf("probe returned %v", err)
		}
	}
	h.wantState(StateClosed)
	m := h.b.Metrics()
	if m.Successes != maxCalls || m.Rejections != callers-maxCalls || m.Failures != 1 {
		t.Fatalf("after the probes: %+v", m)
	}
}

func TestClassification(t *testing.T) {
	errBad := errors.New("bad")
	errMeh := errors.New("meh")
	tests := []struct {
		name      string
		isFailure func(error) bool
		err       error
		wantFail  bool
	}{
		{"context.Canceled is ignored by default", nil, context.Canceled, false},
		{"wrapped context.Canceled is ignored", nil, fmt.Errorf("dial: %w", context.Canceled), false},
		{"context.DeadlineExceeded counts by default", nil, context.DeadlineExceeded, true},
		{"any other error counts by default", nil, errMeh, true},
		{"custom classifier counts what it accepts", func(err error) bool { return errors.Is(err, errBad) }, errBad, true},
		{"custom classifier ignores the rest", func(err error) bool { return errors.Is(err, errBad) }, errMeh, false},
		{"custom classifier may ignore deadlines", func(err error) bool {
			return DefaultIsFailure(err) && !errors.Is(err, context.DeadlineExceeded)
		}, context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Settings{FailureThreshold: 3, IsFailure: tt.isFailure})
			for range 3 {
				if err := h.returning(tt.err); err != tt.err {
					t.Fatalf("Execute returned %v, want the call's own error %v", err, tt.err)
				}
			}
			m := h.b.Metrics()
			if tt.wantFail {
				if m.State != StateOpen || m.Failures != 3 || m.Ignored != 0 {
					t.Fatalf("want 3 failures and OPEN, got %+v", m)
				}
			} else if m.State != StateClosed || m.Failures != 0 || m.Ignored != 3 || m.Calls != 3 {
				t.Fatalf("want 3 ignored and CLOSED, got %+v", m)
			}
		})
	}
}

func TestPanicCountsAsFailure(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 2, HalfOpenMaxCalls: 1})
	boom := func(context.Context) error { panic("boom") }
	call := func() (recovered any) {
		defer func() { recovered = recover() }()
		_ = h.b.Execute(h.ctx, boom)
		return nil
	}
	for i := range 2 {
		if r := call(); r != "boom" {
			t.Fatalf("panic %d: recovered %v, want the original panic value", i, r)
		}
	}
	h.wantState(StateOpen)
	h.expire()
	if r := call(); r != "boom" {
		t.Fatalf("probe panic: recovered %v", r)
	}
	// The panicking probe released its slot and re-opened the circuit.
	m := h.b.Metrics()
	if m.State != StateOpen || m.Failures != 3 || m.Reopens != 1 || m.ProbesInFlight != 0 {
		t.Fatalf("after a panicking probe: %+v", m)
	}
}

func TestIgnoredProbeFreesItsSlot(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 1, HalfOpenMaxCalls: 1, RecoveryThreshold: 1})
	h.fail()
	h.expire()
	if err := h.returning(context.Canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled probe returned %v", err)
	}
	h.wantState(StateHalfOpen)
	if err := h.ok(); err != nil {
		t.Fatalf("next probe rejected: %v", err)
	}
	h.wantState(StateClosed)
	if m := h.b.Metrics(); m.Ignored != 1 || m.Successes != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestResetTimeoutForgetsOldFailures(t *testing.T) {
	tests := []struct {
		name  string
		reset time.Duration
		run   func(h *harness)
		want  State
		inWin uint64
	}{
		{"quiet time forgets", time.Minute, func(h *harness) {
			h.fail()
			h.fail()
			h.clk.Advance(time.Minute)
			h.fail()
		}, StateClosed, 1},
		{"quiet time not reached", time.Minute, func(h *harness) {
			h.fail()
			h.fail()
			h.clk.Advance(time.Minute - time.Nanosecond)
			h.fail()
		}, StateOpen, 3},
		{"each failure restarts the quiet time", time.Minute, func(h *harness) {
			h.fail()
			h.clk.Advance(50 * time.Second)
			h.fail()
			h.clk.Advance(50 * time.Second)
			h.fail()
		}, StateOpen, 3},
		{"successes do not end the quiet time", time.Minute, func(h *harness) {
			h.fail()
			h.fail()
			h.clk.Advance(30 * time.Second)
			h.ok()
			h.clk.Advance(30 * time.Second)
			h.fail()
		}, StateClosed, 1},
		{"off by default", 0, func(h *harness) {
			h.fail()
			h.fail()
			h.clk.Advance(time.Minute)
			h.fail()
		}, StateOpen, 3},
		{"metrics forget too", time.Minute, func(h *harness) {
			h.fail()
			h.fail()
			h.clk.Advance(time.Minute)
		}, StateClosed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Settings{FailureThreshold: 3, MonitoringPeriod: 10 * time.Minute, ResetTimeout: tt.reset})
			tt.run(h)
			m := h.b.Metrics()
			if m.State != tt.want || m.FailuresInWindow != tt.inWin {
				t.Fatalf("state %v with %d failures in window, want %v with %d", m.State, m.FailuresInWindow, tt.want, tt.inWin)
			}
		})
	}
}

// TestWindowSlides shows failures older than MonitoringPeriod stop counting
// while recent ones keep counting.
func TestWindowSlides(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 3, MonitoringPeriod: 64 * time.Second})
	h.fail() // t=0
	h.clk.Advance(30 * time.Second)
	h.fail() // t=30
	h.clk.Advance(34 * time.Second)
	h.fail() // t=64: the t=0 failure is a full period old and no longer counts
	h.wantState(StateClosed)
	if m := h.b.Metrics(); m.FailuresInWindow != 2 {
		t.Fatalf("FailuresInWindow = %d, want 2", m.FailuresInWindow)
	}
	h.clk.Advance(time.Second)
	h.fail() // t=65: 30, 64 and 65 are within the period
	h.wantState(StateOpen)

	// A fixed-interval counter would have forgotten all at t=64; a window
	// that never slides would have opened at t=64. Neither happened.
	h.wantPath("CLOSED>OPEN")
}

func TestManualControl(t *testing.T) {
	t.Run("ForceOpen holds until ForceClose", func(t *testing.T) {
		h := newHarness(t, Settings{OpenTimeout: time.Second})
		h.b.ForceOpen()
		h.clk.Advance(24 * time.Hour)
		h.wantState(StateOpen)
		if err := h.ok(); !errors.Is(err, ErrOpen) {
			t.Fatalf("forced open let a call through: %v", err)
		}
		if _, err := h.b.Allow(); !errors.Is(err, ErrOpen) {
			t.Fatalf("forced open Allow: %v", err)
		}
		if m := h.b.Metrics(); !m.Forced || m.OpenTimeout != 0 {
			t.Fatalf("forced metrics %+v", m)
		}
		h.b.ForceClose()
		h.wantState(StateClosed)
		if err := h.ok(); err != nil {
			t.Fatal(err)
		}
		if m := h.b.Metrics(); m.Forced || m.Rejections != 2 || m.Successes != 1 {
			t.Fatalf("after ForceClose %+v", m)
		}
	})
	t.Run("ForceOpen holds until Reset", func(t *testing.T) {
		h := newHarness(t, Settings{OpenTimeout: time.Second})
		h.b.ForceOpen()
		h.clk.Advance(time.Hour)
		h.wantState(StateOpen)
		h.b.Reset()
		h.wantState(StateClosed)
	})
	t.Run("ForceOpen on an open circuit cancels its timeout", func(t *testing.T) {
		h := newHarness(t, Settings{FailureThreshold: 1, OpenTimeout: time.Second})
		h.fail()
		h.b.ForceOpen()
		h.clk.Advance(time.Hour)
		h.wantState(StateOpen)
		h.wantPath("CLOSED>OPEN")
	})
	t.Run("ForceClose forgets failures and backoff but keeps counters", func(t *testing.T) {
		h := newHarness(t, Settings{FailureThreshold: 3, Backoff: Backoff{Jitter: -1}})
		h.fail()
		h.fail()
		h.b.ForceClose()
		h.fail()
		h.wantState(StateClosed)
		if m := h.b.Metrics(); m.FailuresInWindow != 1 || m.Failures != 3 {
			t.Fatalf("metrics %+v", m)
		}
		h.fail()
		h.fail()
		h.expire()
		h.fail() // re-open: backoff level 1
		h.b.ForceClose()
		h.trip()
		if m := h.b.Metrics(); m.Reopens != 0 || m.OpenTimeout != DefaultOpenTimeout {
			t.Fatalf("ForceClose kept the backoff: %+v", m)
		}
	})
	t.Run("Reset zeroes counters and keeps settings and listeners", func(t *testing.T) {
		h := newHarness(t, Settings{FailureThreshold: 2, OpenTimeout: 7 * time.Second, Backoff: Backoff{Jitter: -1}})
		l, _ := listen(h.b)
		h.ok()
		h.returning(context.Canceled)
		h.trip()
		h.ok()
		h.b.Reset()
		if got := l.take(t, 2); fmt.Sprint(got) != "[CLOSED>OPEN OPEN>CLOSED]" {
			t.Fatalf("listener saw %v", got)
		}
		m := h.b.Metrics()
		if m != (Metrics{State: StateClosed, Since: m.Since, OpenTimeout: 7 * time.Second}) {
			t.Fatalf("after Reset: %+v", m)
		}
		h.trip()
		if tr := l.next(t); tr.To != StateOpen || tr.OpenTimeout != 7*time.Second {
			t.Fatalf("after Reset the listener saw %+v", tr)
		}
	})
}

func TestAllow(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		h := newHarness(t, Settings{FailureThreshold: 2})
		for _, err := range []error{nil, errDown, context.Canceled, errDown} {
			done, aerr := h.b.Allow()
			if aerr != nil {
				t.Fatal(aerr)
			}
			done(err)
		}
		m := h.b.Metrics()
		if m.State != StateOpen || m.Successes != 1 || m.Failures != 2 || m.Ignored != 1 {
			t.Fatalf("metrics %+v", m)
		}
		done, err := h.b.Allow()
		if done != nil || !errors.Is(err, ErrOpen) {
			t.Fatalf("Allow on OPEN = %v, %v", done != nil, err)
		}
	})
	t.Run("probe done counts once", func(t *testing.T) {
		h := newHarness(t, Settings{FailureThreshold: 1, HalfOpenMaxCalls: 2, RecoveryThreshold: 2})
		h.fail()
		h.expire()
		done, err := h.b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		done(nil)
		done(errDown)
		m := h.b.Metrics()
		if m.State != StateHalfOpen || m.ProbeSuccesses != 1 || m.ProbesInFlight != 0 || m.Successes != 1 {
			t.Fatalf("metrics %+v", m)
		}
	})
	t.Run("done from an older generation does not touch the new state", func(t *testing.T) {
		h := newHarness(t, Settings{FailureThreshold: 2})
		slow, err := h.b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		h.trip()
		h.b.ForceClose()
		slow(errDown) // began before the trip
		m := h.b.Metrics()
		if m.State != StateClosed || m.FailuresInWindow != 0 || m.Failures != 3 {
			t.Fatalf("stale failure touched the window: %+v", m)
		}
	})
	t.Run("stale probe after ForceOpen", func(t *testing.T) {
		h := newHarness(t, Settings{FailureThreshold: 1})
		h.fail()
		h.expire()
		done, err := h.b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		h.b.ForceOpen()
		done(errDown)
		m := h.b.Metrics()
		if m.State != StateOpen || !m.Forced || m.Reopens != 0 {
			t.Fatalf("stale probe re-opened a forced circuit: %+v", m)
		}
	})
}

// TestExecuteStaleClosedFailure shows a slow call that began in CLOSED and
// fails after the circuit tripped does not count toward the next window.
func TestExecuteStaleClosedFailure(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 2})
	started := make(chan struct{})
	release := make(chan struct{})
	result := make(chan error)
	go func() {
		result <- h.b.Execute(h.ctx, func(context.Context) error {
			close(started)
			<-release
			return errDown
		})
	}()
	<-started
	h.trip()
	h.b.ForceClose()
	close(release)
	if err := <-result; !errors.Is(err, errDown) {
		t.Fatal(err)
	}
	if m := h.b.Metrics(); m.FailuresInWindow != 0 || m.Failures != 3 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestListeners(t *testing.T) {
	t.Run("reentrant listener", func(t *testing.T) {
		h := newHarness(t, Settings{FailureThreshold: 1})
		seen := make(chan State, 8)
		h.b.OnStateChange(func(tr Transition) {
			// Calling back into the breaker from a listener must not
			// deadlock, and may itself cause a transition.
			seen <- h.b.State()
			_ = h.b.Metrics()
			if tr.To == StateOpen {
				h.b.ForceClose()
			}
		})
		h.fail()
		if s := <-seen; s != StateOpen {
			t.Fatalf("listener saw state %v first", s)
		}
		if s := <-seen; s != StateClosed {
			t.Fatalf("listener saw state %v second", s)
		}
		h.wantPath("CLOSED>OPEN", "OPEN>CLOSED")
	})
	t.Run("panicking listener is counted and others still run", func(t *testing.T) {
		h := newHarness(t, Settings{})
		h.b.OnStateChange(func(Transition) { panic("listener bug") })
		l, _ := listen(h.b)
		h.b.ForceOpen()
		l.next(t)
		if m := h.b.Metrics(); m.ListenerPanics != 1 {
			t.Fatalf("ListenerPanics = %d", m.ListenerPanics)
		}
	})
	t.Run("removed listener hears nothing", func(t *testing.T) {
		h := newHarness(t, Settings{})
		l, remove := listen(h.b)
		other, _ := listen(h.b)
		remove()
		remove()
		h.b.ForceOpen()
		other.next(t)
		l.none(t)
	})
	t.Run("nil listener panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("OnStateChange(nil) did not panic")
			}
		}()
		New(Settings{}).OnStateChange(nil)
	})
}

func TestMetricsTimeInState(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 1, OpenTimeout: time.Minute, Backoff: Backoff{Jitter: -1}})
	h.clk.Advance(3 * time.Second)
	if m := h.b.Metrics(); m.TimeInState != 3*time.Second || m.OpenTimeout != time.Minute {
		t.Fatalf("closed: %+v", m)
	}
	h.fail()
	h.clk.Advance(20 * time.Second)
	if m := h.b.Metrics(); m.TimeInState != 20*time.Second || m.OpenTimeout != time.Minute {
		t.Fatalf("open: %+v", m)
	}
	h.clk.Advance(50 * time.Second) // the open period ended 10s ago
	m := h.b.Metrics()
	if m.State != StateHalfOpen || m.TimeInState != 10*time.Second || m.OpenTimeout != 2*time.Minute {
		t.Fatalf("half-open: %+v", m)
	}
}

// TestStaleProbeFromEarlierRound shows a probe admitted in one HALF_OPEN
// round that finishes in a later round neither frees a slot nor counts as a
// success there.
func TestStaleProbeFromEarlierRound(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 1, HalfOpenMaxCalls: 2, RecoveryThreshold: 1,
		OpenTimeout: time.Second, Backoff: Backoff{Jitter: -1}})
	h.fail()
	h.expire()
	slow, err := h.b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	h.fail() // the other probe fails: OPEN again
	h.expire()
	current, err := h.b.Allow() // a probe of the new round
	if err != nil {
		t.Fatal(err)
	}
	slow(nil)
	m := h.b.Metrics()
	if m.State != StateHalfOpen || m.ProbeSuccesses != 0 || m.ProbesInFlight != 1 {
		t.Fatalf("stale probe changed the new round: %+v", m)
	}
	current(nil)
	h.wantState(StateClosed)
}

// TestOpenTimerFollowsUpdate shows that after Update lengthens the open
// period, the timer (not a call) ends it at the new time, and the timer
// armed for the old time does nothing.
func TestOpenTimerFollowsUpdate(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 1, OpenTimeout: 10 * time.Second, Backoff: Backoff{Jitter: -1}})
	l, _ := listen(h.b)
	start := h.clk.Now()
	h.fail()
	l.next(t)
	h.b.mu.Lock()
	oldSeq := h.b.timerSeq
	h.b.mu.Unlock()

	h.clk.Advance(5 * time.Second)
	h.b.Update(Settings{FailureThreshold: 1, OpenTimeout: 30 * time.Second, Backoff: Backoff{Jitter: -1}})
	h.b.timerFired(oldSeq) // the old timer's callback, arriving late
	h.wantState(StateOpen)

	h.clk.Advance(25 * time.Second) // the new timer fires in its own goroutine
	tr := l.next(t)
	if tr.To != StateHalfOpen || !tr.At.Equal(start.Add(30*time.Second)) {
		t.Fatalf("timer transition %+v, want HALF_OPEN at +30s", tr)
	}
}
