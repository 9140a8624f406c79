package chaos

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
)

// timeline keeps, per shard, the last events that explain a connection's
// path (state changes, errors, recoveries, breaker transitions), so that a
// failure report can show what the client did around a loss.
type timeline struct {
	mu       sync.Mutex
	keep     int
	ring     map[int][]timelineEntry
	attempts map[int][]attemptEntry // RECOVERY_ATTEMPTED by shard, the last recoveryWindow*2
}

type attemptEntry struct {
	at       time.Time
	strategy string
}

// The recovery engine's caps as lifeline runs it (core/recovery's
// Settings defaults, which the orchestrator keeps): at most
// recoveryStrategyCap attempts of one strategy on one shard within
// recoveryWindow, successful attempts included.
const (
	recoveryWindow      = 5 * time.Minute
	recoveryStrategyCap = 10
)

type timelineEntry struct {
	at   time.Time
	text string
}

func newTimeline(keep int) *timeline {
	return &timeline{keep: keep, ring: map[int][]timelineEntry{}, attempts: map[int][]attemptEntry{}}
}

// add records e for shard when it is one of the kinds that explain a path.
func (tl *timeline) add(shard int, e events.Event) {
	switch e.Type {
	case events.StateChanged, events.ErrorOccurred, events.RecoveryAttempted, events.RecoveryCompleted,
		events.CircuitBreakerTriggered:
	default:
		return
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if d, ok := e.Data.(events.Recovery); ok && !d.Completed {
		a := append(tl.attempts[shard], attemptEntry{at: e.Time, strategy: d.Strategy})
		for len(a) > 0 && e.Time.Sub(a[0].at) > 2*recoveryWindow {
			a = a[1:]
		}
		tl.attempts[shard] = a
	}
	r := append(tl.ring[shard], timelineEntry{at: e.Time, text: e.String()})
	if len(r) > tl.keep {
		r = r[len(r)-tl.keep:]
	}
	tl.ring[shard] = r
}

// between returns a shard's entries from from to to, one per line.
func (tl *timeline) between(shard int, from, to time.Time) string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, e := range tl.ring[shard] {
		if !e.at.Before(from) && !e.at.After(to) {
			fmt.Fprintf(&b, "    %s %s\n", e.at.Format("15:04:05.000"), e.text)
		}
	}
	return b.String()
}

// explain renders, for each loss span, the shard's timeline around it.
func (tl *timeline) explain(spans []LossSpan) string {
	sort.Slice(spans, func(i, j int) bool { return spans[i].Disconnected.Before(spans[j].Disconnected) })
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "shard %d session %s: last connection ended %s, next session %s:\n", s.Shard, s.Session,
			s.Disconnected.Format("15:04:05.000"), s.NextSession.Format("15:04:05.000"))
		b.WriteString(tl.between(s.Shard, s.Disconnected.Add(-2*time.Second), s.NextSession.Add(time.Second)))
	}
	return b.String()
}

// capped reports whether, at t, the shard's resume and reconnect
// strategies had both reached the recovery engine's cap: recoveryStrategyCap
// attempts within the recoveryWindow before t.
func (tl *timeline) capped(shard int, t time.Time) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	n := map[string]int{}
	for _, a := range tl.attempts[shard] {
		if !a.at.After(t) && t.Sub(a.at) <= recoveryWindow {
			n[a.strategy]++
		}
	}
	return n["resume"] >= recoveryStrategyCap && n["reconnect"] >= recoveryStrategyCap
}
