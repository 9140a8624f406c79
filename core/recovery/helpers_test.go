package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

// recorder is a synchronous events.Publisher that keeps every event.
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

// lines renders the recovery and error events compactly, one per event:
// "ATTEMPTED resume#1", "COMPLETED resume#1 ok", "COMPLETED resume#1 fail",
// "ERROR recovery_failed".
func (r *recorder) lines() []string {
	var out []string
	for _, e := range r.events() {
		switch d := e.Data.(type) {
		case events.Recovery:
			if !d.Completed {
				out = append(out, fmt.Sprintf("ATTEMPTED %s#%d", d.Strategy, d.Attempt))
			} else if d.Success {
				out = append(out, fmt.Sprintf("COMPLETED %s#%d ok", d.Strategy, d.Attempt))
			} else {
				out = append(out, fmt.Sprintf("COMPLETED %s#%d fail", d.Strategy, d.Attempt))
			}
		case events.Error:
			out = append(out, "ERROR "+d.Kind)
		}
	}
	return out
}

// fakeConn is a Connection that records the modes asked for and answers
// from a script: errs[mode] is returned (nil: success).
type fakeConn struct {
	mu     sync.Mutex
	calls  []string
	causes []string
	errs   map[conn.RecoverMode]error
}

func (f *fakeConn) Recover(_ context.Context, mode conn.RecoverMode, cause string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, mode.String())
	f.causes = append(f.causes, cause)
	return f.errs[mode]
}

func (f *fakeConn) modes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// tracker records the attempts of Go strategies, in order, across every
// strategy it made.
type tracker struct {
	mu  sync.Mutex
	log []string
}

func (t *tracker) add(s string) {
	t.mu.Lock()
	t.log = append(t.log, s)
	t.mu.Unlock()
}

func (t *tracker) got() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.log...)
}

// strategy returns a Recoverer that records "name#n" and returns err.
func (t *tracker) strategy(name string, err error) recovery.Recoverer {
	return recovery.RecovererFunc(func(_ context.Context, a recovery.Attempt) error {
		t.add(fmt.Sprintf("%s#%d", a.Strategy, a.Number))
		return err
	})
}

var errBoom = errors.New("boom")

func mustPolicy(t *testing.T, src string) *policy.Policy {
	t.Helper()
	p, err := policy.LoadSource("policy.hcl", []byte(src), policy.Options{})
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return p
}

func newFake() *clock.Fake { return clock.NewFake(time.Time{}) }

func closeFailure(code int) recovery.Failure {
	return recovery.Failure{Error: policy.ErrorInfo{Kind: "close", CloseCode: code, Source: "conn",
		Message: fmt.Sprintf("gateway closed with %d", code)}}
}

// withStreak gives f a Snapshot with n consecutive errors.
func withStreak(f recovery.Failure, n uint64) recovery.Failure {
	f.Snapshot = &metrics.Snapshot{Errors: metrics.Errors{Consecutive: n}}
	return f
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}
