package chaos

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
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
	capSkips map[int][]time.Time    // the recovery engine skipping a strategy at its cap, by shard
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
	return &timeline{keep: keep, ring: map[int][]timelineEntry{}, attempts: map[int][]attemptEntry{}, capSkips: map[int][]time.Time{}}
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

// skipLine matches the recovery engine's log line for a skipped strategy:
// its time, shard, strategy and reason.
var skipLine = regexp.MustCompile(`^(\S+) \[WARN\] +\S+: recovery strategy skipped: shard=(\d+) strategy=(\S+) reason="?(.*?)"?\n?$`)

// logLine takes one log line; the recovery engine's skips go into the
// shard's timeline (a skip at a cap also into capSkips).
func (tl *timeline) logLine(line []byte) {
	if !bytes.Contains(line, []byte("recovery strategy skipped")) {
		return
	}
	m := skipLine.FindSubmatch(line)
	if m == nil {
		return
	}
	at, err := time.Parse(time.RFC3339Nano, string(m[1]))
	if err != nil {
		return
	}
	shard, _ := strconv.Atoi(string(m[2]))
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.ring[shard] = append(tl.ring[shard], timelineEntry{at: at,
		text: fmt.Sprintf("recovery skipped %s: %s", m[3], m[4])})
	if bytes.Contains(m[4], []byte("attempt cap")) {
		tl.capSkips[shard] = append(tl.capSkips[shard], at)
	}
}

// skippedAtCap reports whether the recovery engine skipped a strategy of
// the shard at its cap between from and to.
func (tl *timeline) skippedAtCap(shard int, from, to time.Time) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, at := range tl.capSkips[shard] {
		if !at.Before(from) && !at.After(to) {
			return true
		}
	}
	return false
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
