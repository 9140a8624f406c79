package breaker

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUse hammers one breaker from several goroutines with mixed
// outcomes while another goroutine moves the clock, updates settings and
// forces states. It runs in rounds so that time moves while calls are made.
// Under -race it finds unsynchronised access; afterwards every call is
// accounted for exactly once.
func TestConcurrentUse(t *testing.T) {
	const rounds, workers, calls = 60, 8, 20
	h := newHarness(t, Settings{FailureThreshold: 4, MonitoringPeriod: 10 * time.Second,
		OpenTimeout: time.Second, HalfOpenMaxCalls: 2, RecoveryThreshold: 2})
	l, _ := listen(h.b)

	var mu sync.Mutex
	attempts, rejected := 0, 0
	rngs := make([]*rand.Rand, workers)
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(uint64(w), 7))
	}
	for round := range rounds {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rngs[w]
				for i := range calls {
					var err error
					outcome := rng.IntN(10)
					if i%2 == 0 {
						err = h.b.Execute(h.ctx, func(context.Context) error { return result(outcome) })
					} else {
						done, aerr := h.b.Allow()
						if aerr == nil {
							done(result(outcome))
						}
						err = aerr
					}
					mu.Lock()
					attempts++
					if errors.Is(err, ErrOpen) || errors.Is(err, ErrTooManyProbes) {
						rejected++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.clk.Advance(400 * time.Millisecond)
			h.b.Update(Settings{FailureThreshold: 3 + round%3, MonitoringPeriod: time.Duration(5+round%10) * time.Second,
				OpenTimeout: time.Duration(1+round%2) * time.Second, HalfOpenMaxCalls: 1 + round%3, RecoveryThreshold: 1 + round%2})
			switch round % 20 {
			case 10:
				h.b.ForceOpen()
			case 12:
				h.b.ForceClose()
			}
			_ = h.b.State()
			_ = h.b.Metrics()
		}()
		wg.Wait()
	}

	m := h.b.Metrics()
	if got := m.Calls + m.Rejections; got != uint64(attempts) || m.Rejections != uint64(rejected) {
		t.Fatalf("accounted %d calls + %d rejections, want %d attempts with %d rejections (%+v)",
			m.Calls, m.Rejections, attempts, rejected, m)
	}
	if m.ProbesInFlight != 0 {
		t.Fatalf("probe slots leaked: %+v", m)
	}
	// Every transition reached the listener, in publish order.
	path := h.rec.path()
	got := l.take(t, len(path))
	for i := range path {
		if got[i] != path[i] {
			t.Fatalf("transition %d: listener %s, publisher %s", i, got[i], path[i])
		}
	}
	// The published path is a valid walk of the state machine, and the
	// run went through every state.
	seen := map[string]bool{}
	for i, step := range path {
		from, to, _ := strings.Cut(step, ">")
		seen[to] = true
		if i == 0 {
			continue
		}
		if _, prevTo, _ := strings.Cut(path[i-1], ">"); from != prevTo {
			t.Fatalf("transition %d (%s) does not start where %s ended", i, step, path[i-1])
		}
	}
	t.Logf("%d attempts, %d rejected, %d transitions", attempts, rejected, len(path))
	if !seen["OPEN"] || !seen["HALF_OPEN"] || !seen["CLOSED"] {
		t.Fatalf("the run did not visit every state: %v", path)
	}
}

func result(outcome int) error {
	switch {
	case outcome < 8:
		return nil
	case outcome < 9:
		return errDown
	}
	return context.Canceled
}
