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
	"github.com/lifeline-bot/lifeline/core/recovery"
)

// timeline keeps, per shard, the last events that explain a connection's
// path (state changes, errors, recoveries, breaker transitions), so that a
// failure report can show what the client did around a loss.
type timeline struct {
	mu       sync.Mutex
	keep     int
	ring     map[int][]timelineEntry
	capSkips map[int][]capSkip // the recovery engine skipping a strategy at a cap, by shard
	kept     int               // skips of a strategy that would have ended a resumable session
}

// capSkip is one "recovery strategy skipped" log line of the recovery
// engine whose reason is one of its caps (ErrStrategyCap, ErrWindowCap).
type capSkip struct {
	at       time.Time
	strategy string
	reason   string
}

type timelineEntry struct {
	at   time.Time
	text string
}

func newTimeline(keep int) *timeline {
	return &timeline{keep: keep, ring: map[int][]timelineEntry{}, capSkips: map[int][]capSkip{}}
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

// What the recovery engine's skip reasons say: at a cap, or to keep a
// resumable session.
var (
	capReasons = [][]byte{[]byte(recovery.ErrStrategyCap.Error()), []byte(recovery.ErrWindowCap.Error())}
	keptReason = []byte(recovery.ErrSessionKept.Error())
)

// logLine takes one log line; the recovery engine's skips go into the
// shard's timeline, a skip at a cap also into capSkips.
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
	if bytes.Contains(m[4], keptReason) {
		tl.kept++
		return
	}
	for _, c := range capReasons {
		if bytes.Contains(m[4], c) {
			tl.capSkips[shard] = append(tl.capSkips[shard], capSkip{at: at, strategy: string(m[3]), reason: string(m[4])})
			return
		}
	}
}

// skippedAtCap returns the first skip of a strategy of the shard at a cap
// of the recovery engine between from and to.
func (tl *timeline) skippedAtCap(shard int, from, to time.Time) (capSkip, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, c := range tl.capSkips[shard] {
		if !c.at.Before(from) && !c.at.After(to) {
			return c, true
		}
	}
	return capSkip{}, false
}

// skipCounts returns how many strategies the recovery engine skipped at a
// cap, and how many it skipped to keep a resumable session.
func (tl *timeline) skipCounts() (capped, kept int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, c := range tl.capSkips {
		capped += len(c)
	}
	return capped, tl.kept
}
