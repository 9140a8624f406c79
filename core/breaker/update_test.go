package breaker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestUpdateLive changes settings on a live breaker in each state. Every
// case checks the documented effect, that counters are untouched, that the
// listener registered before Update still hears later transitions, and that
// the wiring (name, classifier, publisher) is kept.
func TestUpdateLive(t *testing.T) {
	const s = time.Second
	base := Settings{FailureThreshold: 5, MonitoringPeriod: 64 * s, OpenTimeout: 10 * s,
		HalfOpenMaxCalls: 1, RecoveryThreshold: 1, Backoff: Backoff{Jitter: -1}}
	with := func(f func(*Settings)) Settings { c := base; f(&c); return c }

	tests := []struct {
		name   string
		start  Settings
		setup  func(h *harness)
		update Settings
		check  func(h *harness)
	}{
		{
			name:   "closed: higher threshold needs more failures",
			start:  with(func(c *Settings) { c.FailureThreshold = 3 }),
			setup:  func(h *harness) { h.fail(); h.fail() },
			update: with(func(c *Settings) { c.FailureThreshold = 5 }),
			check: func(h *harness) {
				h.wantState(StateClosed)
				h.fail()
				h.fail()
				h.wantState(StateClosed)
				if m := h.b.Metrics(); m.FailuresInWindow != 4 {
					h.t.Fatalf("window lost failures across Update: %+v", m)
				}
				h.fail()
				h.wantState(StateOpen)
			},
		},
		{
			name:   "closed: threshold lowered below the window count opens at once",
			setup:  func(h *harness) { h.fail(); h.fail(); h.fail() },
			update: with(func(c *Settings) { c.FailureThreshold = 2 }),
			check: func(h *harness) {
				h.wantState(StateOpen)
				if ev := h.rec.last(h.t); !strings.HasPrefix(ev.Reason, "settings updated: 3 failures") {
					h.t.Fatalf("reason %q", ev.Reason)
				}
			},
		},
		{
			name:   "closed: threshold lowered to the window count opens at once",
			setup:  func(h *harness) { h.fail(); h.fail() },
			update: with(func(c *Settings) { c.FailureThreshold = 2 }),
			check:  func(h *harness) { h.wantState(StateOpen) },
		},
		{
			name:   "closed: threshold lowered above the window count waits for the next failure",
			setup:  func(h *harness) { h.fail() },
			update: with(func(c *Settings) { c.FailureThreshold = 2 }),
			check: func(h *harness) {
				h.wantState(StateClosed)
				h.fail()
				h.wantState(StateOpen)
			},
		},
		{
			name:   "closed: longer period keeps failures counting longer",
			setup:  func(h *harness) { h.fail(); h.clk.Advance(40 * s) },
			update: with(func(c *Settings) { c.MonitoringPeriod = 128 * s }),
			check: func(h *harness) {
				h.clk.Advance(40 * s) // 80s old: beyond the old period, within the new
				if m := h.b.Metrics(); m.FailuresInWindow != 1 {
					h.t.Fatalf("FailuresInWindow %d, want 1", m.FailuresInWindow)
				}
			},
		},
		{
			name:   "closed: shorter period drops old failures",
			setup:  func(h *harness) { h.fail(); h.clk.Advance(40 * s); h.fail() },
			update: with(func(c *Settings) { c.MonitoringPeriod = 32 * s }),
			check: func(h *harness) {
				if m := h.b.Metrics(); m.FailuresInWindow != 1 {
					h.t.Fatalf("FailuresInWindow %d, want 1", m.FailuresInWindow)
				}
			},
		},
		{
			name:   "closed: reset timeout applies at once",
			setup:  func(h *harness) { h.fail(); h.fail(); h.clk.Advance(30 * s) },
			update: with(func(c *Settings) { c.ResetTimeout = 20 * s }),
			check: func(h *harness) {
				if m := h.b.Metrics(); m.FailuresInWindow != 0 {
					h.t.Fatalf("FailuresInWindow %d, want 0", m.FailuresInWindow)
				}
			},
		},
		{
			name:   "open: longer timeout extends the current open period",
			setup:  func(h *harness) { h.trip(); h.clk.Advance(5 * s) },
			update: with(func(c *Settings) { c.OpenTimeout = 30 * s }),
			check: func(h *harness) {
				if m := h.b.Metrics(); m.OpenTimeout != 30*s {
					h.t.Fatalf("OpenTimeout %v, want 30s", m.OpenTimeout)
				}
				h.clk.Advance(10 * s) // 15s since the trip: past the old timeout
				h.wantState(StateOpen)
				if err := h.ok(); !errors.Is(err, ErrOpen) {
					h.t.Fatalf("call after the old timeout: %v", err)
				}
				h.clk.Advance(15 * s) // 30s since the trip
				h.wantState(StateHalfOpen)
			},
		},
		{
			name:   "open: shorter timeout that already elapsed goes half-open at once",
			start:  with(func(c *Settings) { c.OpenTimeout = 60 * s }),
			setup:  func(h *harness) { h.trip(); h.clk.Advance(20 * s) },
			update: with(func(c *Settings) { c.OpenTimeout = 10 * s }),
			check: func(h *harness) {
				h.wantState(StateHalfOpen)
				if m := h.b.Metrics(); m.TimeInState != 10*s {
					h.t.Fatalf("HALF_OPEN should date from the new deadline: %+v", m)
				}
			},
		},
		{
			name: "open: backoff level and jitter draw are kept",
			setup: func(h *harness) {
				h.trip()
				h.expire()
				h.fail() // re-open 1: 20s
			},
			update: with(func(c *Settings) { c.OpenTimeout = 5 * s; c.Backoff.Multiplier = 3 }),
			check: func(h *harness) {
				if m := h.b.Metrics(); m.OpenTimeout != 15*s || m.Reopens != 1 {
					h.t.Fatalf("want the level-1 period recomputed to 15s: %+v", m)
				}
			},
		},
		{
			name:   "open: forced stays forced",
			setup:  func(h *harness) { h.b.ForceOpen() },
			update: with(func(c *Settings) { c.OpenTimeout = s }),
			check: func(h *harness) {
				h.clk.Advance(time.Hour)
				h.wantState(StateOpen)
				if m := h.b.Metrics(); !m.Forced {
					h.t.Fatalf("Update unforced the circuit: %+v", m)
				}
			},
		},
		{
			name:  "half-open: recovery threshold lowered to the successes so far closes at once",
			start: with(func(c *Settings) { c.HalfOpenMaxCalls = 3; c.RecoveryThreshold = 3 }),
			setup: func(h *harness) {
				h.trip()
				h.expire()
				h.ok()
			},
			update: with(func(c *Settings) { c.HalfOpenMaxCalls = 3; c.RecoveryThreshold = 1 }),
			check:  func(h *harness) { h.wantState(StateClosed) },
		},
		{
			name:  "half-open: recovery threshold raised needs more probes",
			start: with(func(c *Settings) { c.HalfOpenMaxCalls = 3; c.RecoveryThreshold = 2 }),
			setup: func(h *harness) {
				h.trip()
				h.expire()
				h.ok()
			},
			update: with(func(c *Settings) { c.HalfOpenMaxCalls = 3; c.RecoveryThreshold = 3 }),
			check: func(h *harness) {
				h.ok()
				h.wantState(StateHalfOpen)
				h.ok()
				h.wantState(StateClosed)
			},
		},
		{
			name: "half-open: more probe slots admit more at once",
			setup: func(h *harness) {
				h.trip()
				h.expire()
				if _, err := h.b.Allow(); err != nil {
					h.t.Fatal(err)
				}
			},
			update: with(func(c *Settings) { c.HalfOpenMaxCalls = 2; c.RecoveryThreshold = 2 }),
			check: func(h *harness) {
				if _, err := h.b.Allow(); err != nil {
					h.t.Fatalf("second probe after raising the limit: %v", err)
				}
				if _, err := h.b.Allow(); !errors.Is(err, ErrTooManyProbes) {
					h.t.Fatalf("third probe: %v", err)
				}
			},
		},
		{
			name:  "half-open: fewer probe slots let running probes finish",
			start: with(func(c *Settings) { c.HalfOpenMaxCalls = 3; c.RecoveryThreshold = 3 }),
			setup: func(h *harness) {
				h.trip()
				h.expire()
				for range 3 {
					done, err := h.b.Allow()
					if err != nil {
						h.t.Fatal(err)
					}
					h.t.Cleanup(func() { done(nil) })
				}
			},
			update: with(func(c *Settings) { c.HalfOpenMaxCalls = 1; c.RecoveryThreshold = 3 }),
			check: func(h *harness) {
				if _, err := h.b.Allow(); !errors.Is(err, ErrTooManyProbes) {
					h.t.Fatalf("probe over the new limit: %v", err)
				}
				if m := h.b.Metrics(); m.ProbesInFlight != 3 {
					h.t.Fatalf("running probes were dropped: %+v", m)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := tt.start
			if start.FailureThreshold == 0 { // not given: the base settings
				start = base
			}
			start.Name = "live"
			start.IsFailure = func(err error) bool { return !errors.Is(err, errIgnoredInUpdate) }
			h := newHarness(t, start)
			l, _ := listen(h.b)
			// Some traffic of every kind, so every counter is non-zero.
			h.ok()
			h.returning(errIgnoredInUpdate)
			tt.setup(h)
			before := h.b.Metrics()
			if before.State == StateOpen {
				h.ok() // a rejection
				before = h.b.Metrics()
			}
			beforePath := len(h.rec.path())
			for range beforePath {
				l.next(t)
			}

			upd := tt.update
			upd.Name = "renamed-by-update"                   // ignored by Update
			upd.IsFailure = func(error) bool { return true } // ignored by Update
			h.b.Update(upd)

			after := h.b.Metrics()
			if after.Successes != before.Successes || after.Failures != before.Failures ||
				after.Ignored != before.Ignored || after.Rejections != before.Rejections ||
				after.StateChanges < before.StateChanges {
				t.Fatalf("Update changed counters:\nbefore %+v\nafter  %+v", before, after)
			}
			tt.check(h)

			// The wiring is the one New set.
			if h.b.Name() != "live" {
				t.Fatalf("Update renamed the breaker to %q", h.b.Name())
			}
			// The listener from before the Update hears what happened
			// since, in the order the publisher saw it.
			path := h.rec.path()[beforePath:]
			if got := l.take(t, len(path)); strings.Join(got, " ") != strings.Join(path, " ") {
				t.Fatalf("listener saw %v, publisher %v", got, path)
			}
			if h.b.State() == StateClosed {
				h.b.ForceOpen()
			} else {
				h.b.ForceClose()
			}
			if tr := l.next(t); tr.Breaker != "live" || !strings.HasPrefix(tr.Reason, "forced") {
				t.Fatalf("listener after Update got %+v", tr)
			}
			if ev := h.rec.last(t); ev.Breaker != "live" {
				t.Fatalf("publisher after Update got %+v", ev)
			}
		})
	}
}

var errIgnoredInUpdate = errors.New("test: ignored by the classifier")

// TestUpdateKeepsClassifier checks the classifier given to New survives an
// Update whose Settings has none.
func TestUpdateKeepsClassifier(t *testing.T) {
	h := newHarness(t, Settings{FailureThreshold: 1,
		IsFailure: func(err error) bool { return !errors.Is(err, errIgnoredInUpdate) }})
	h.b.Update(Settings{FailureThreshold: 1})
	h.returning(errIgnoredInUpdate)
	h.wantState(StateClosed)
	h.returning(context.DeadlineExceeded)
	h.wantState(StateOpen)
}
