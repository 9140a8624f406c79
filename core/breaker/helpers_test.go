package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
)

var errDown = errors.New("test: dependency down")

// recorder is an events.Publisher that keeps every event.
type recorder struct {
	mu  sync.Mutex
	evs []events.Event
}

func (r *recorder) Publish(e events.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

func (r *recorder) all() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.evs...)
}

// path renders the transitions published so far as "FROM>TO" strings.
func (r *recorder) path() []string {
	var out []string
	for _, e := range r.all() {
		d, ok := e.Data.(events.BreakerTransition)
		if !ok {
			out = append(out, "not a BreakerTransition: "+e.String())
			continue
		}
		out = append(out, d.From+">"+d.To)
	}
	return out
}

func (r *recorder) last(t *testing.T) events.BreakerTransition {
	t.Helper()
	evs := r.all()
	if len(evs) == 0 {
		t.Fatal("no event published")
	}
	return evs[len(evs)-1].Data.(events.BreakerTransition)
}

// listenerLog collects the transitions an OnStateChange listener receives,
// without ever blocking the listener. Listener calls may come from another
// goroutine (see OnStateChange), so tests wait for them, with a generous
// real-time guard that only matters when something is broken.
type listenerLog struct {
	mu     sync.Mutex
	got    []Transition
	read   int
	signal chan struct{}
}

func listen(b *Breaker) (*listenerLog, func()) {
	l := &listenerLog{signal: make(chan struct{}, 1)}
	remove := b.OnStateChange(func(t Transition) {
		l.mu.Lock()
		l.got = append(l.got, t)
		l.mu.Unlock()
		select {
		case l.signal <- struct{}{}:
		default:
		}
	})
	return l, remove
}

func (l *listenerLog) next(t *testing.T) Transition {
	t.Helper()
	guard := time.NewTimer(5 * time.Second)
	defer guard.Stop()
	for {
		l.mu.Lock()
		if l.read < len(l.got) {
			tr := l.got[l.read]
			l.read++
			l.mu.Unlock()
			return tr
		}
		l.mu.Unlock()
		select {
		case <-l.signal:
		case <-guard.C:
			t.Fatal("listener: no transition delivered within 5s")
		}
	}
}

// take returns the next n transitions as "FROM>TO" strings.
func (l *listenerLog) take(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for range n {
		tr := l.next(t)
		out = append(out, tr.From.String()+">"+tr.To.String())
	}
	return out
}

// none checks that no transition is waiting.
func (l *listenerLog) none(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.read < len(l.got) {
		tr := l.got[l.read]
		t.Fatalf("unexpected transition %s>%s (%s)", tr.From, tr.To, tr.Reason)
	}
}

// harness is a Breaker on a fake clock with a recording publisher.
type harness struct {
	t   *testing.T
	b   *Breaker
	clk *clock.Fake
	rec *recorder
	ctx context.Context
}

// newHarness makes a breaker from s with a Fake clock and a recorder; a nil
// Rand becomes the constant 0.5, which makes jitter exactly zero.
func newHarness(t *testing.T, s Settings) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(time.Time{}), rec: &recorder{}, ctx: context.Background()}
	s.Clock = h.clk
	s.Events = h.rec
	if s.Rand == nil {
		s.Rand = func() float64 { return 0.5 }
	}
	if s.Name == "" {
		s.Name = "test"
	}
	h.b = New(s)
	return h
}

func (h *harness) ok() error { return h.b.Execute(h.ctx, func(context.Context) error { return nil }) }
func (h *harness) fail() error {
	return h.b.Execute(h.ctx, func(context.Context) error { return errDown })
}

func (h *harness) returning(err error) error {
	return h.b.Execute(h.ctx, func(context.Context) error { return err })
}

// trip fails calls until the circuit opens, failing the test if it takes
// more than FailureThreshold calls.
func (h *harness) trip() {
	h.t.Helper()
	for range h.b.cfg.failureThreshold {
		if err := h.fail(); !errors.Is(err, errDown) {
			h.t.Fatalf("trip: call returned %v, want errDown", err)
		}
	}
	h.wantState(StateOpen)
}

// expire moves the clock to the end of the current open period.
func (h *harness) expire() {
	h.t.Helper()
	m := h.b.Metrics()
	if m.State != StateOpen || m.Forced {
		h.t.Fatalf("expire: state %v forced=%v, want an automatic OPEN", m.State, m.Forced)
	}
	h.clk.Advance(m.OpenTimeout - m.TimeInState)
	h.wantState(StateHalfOpen)
}

func (h *harness) wantState(want State) {
	h.t.Helper()
	if got := h.b.State(); got != want {
		h.t.Fatalf("state = %v, want %v (metrics %+v)", got, want, h.b.Metrics())
	}
}

func (h *harness) wantPath(want ...string) {
	h.t.Helper()
	if got := h.rec.path(); fmt.Sprint(got) != fmt.Sprint(want) {
		h.t.Fatalf("published transitions = %v, want %v", got, want)
	}
}
