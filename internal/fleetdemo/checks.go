package fleetdemo

import (
	"fmt"
	"sort"
	"time"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// The fleet's rules, read from the fake Discord's ledger: what Discord
// itself would see of the fleet, whatever the processes believe.

// OpenConnections counts, per shard, the gateway connections that are
// open and identified or resumed as that shard.
func OpenConnections(srv *discordtest.Server) map[int]int {
	out := map[int]int{}
	for _, c := range srv.Ledger().Connections() {
		if !c.Closed && c.Shard[1] != 0 {
			out[c.Shard[0]]++
		}
	}
	return out
}

// Overlap is a shard that had two gateway connections open at once.
type Overlap struct {
	Shard       int
	First, Next int64 // connection IDs
	By          time.Duration
}

func (o Overlap) String() string {
	return fmt.Sprintf("shard %d: connection %d opened %s before connection %d closed", o.Shard, o.Next, o.By, o.First)
}

// Overlaps lists every time a shard had two gateway connections open at
// once: the ledger's proof that no shard ran in two processes.
func Overlaps(srv *discordtest.Server) []Overlap {
	byShard := map[int][]discordtest.ConnRecord{}
	for _, c := range srv.Ledger().Connections() {
		if c.Shard[1] != 0 {
			byShard[c.Shard[0]] = append(byShard[c.Shard[0]], c)
		}
	}
	var out []Overlap
	for id, cs := range byShard {
		sort.Slice(cs, func(i, j int) bool { return cs[i].OpenedAt.Before(cs[j].OpenedAt) })
		for i := 1; i < len(cs); i++ {
			prev, next := cs[i-1], cs[i]
			switch {
			case !prev.Closed:
				out = append(out, Overlap{Shard: id, First: prev.ID, Next: next.ID, By: -1})
			case prev.ClosedAt.After(next.OpenedAt):
				out = append(out, Overlap{Shard: id, First: prev.ID, Next: next.ID, By: prev.ClosedAt.Sub(next.OpenedAt)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Shard < out[j].Shard })
	return out
}

// Tally is what the ledger shows of a phase of the story.
type Tally struct {
	// Identifies and Resumes count IDENTIFYs and RESUMEs received.
	Identifies, Resumes int
	// Violations are the limits and rules the fleet broke.
	Violations []discordtest.Violation
}

// Mark is a position in the ledger, to count what happened after it.
type Mark struct {
	identifies int
	resumeAt   map[int64]bool // connections seen so far
	violations int
}

// MarkNow returns the ledger's current position.
func MarkNow(srv *discordtest.Server) Mark {
	m := Mark{identifies: len(srv.Ledger().Identifies()), resumeAt: map[int64]bool{}, violations: len(srv.Ledger().Violations())}
	for _, c := range srv.Ledger().Connections() {
		m.resumeAt[c.ID] = true
	}
	return m
}

// Since tallies what the ledger recorded after m.
func Since(srv *discordtest.Server, m Mark) Tally {
	l := srv.Ledger()
	t := Tally{Identifies: len(l.Identifies()) - m.identifies}
	for _, c := range l.Connections() {
		if m.resumeAt[c.ID] {
			continue
		}
		for _, f := range c.Frames {
			if f.Dir == discordtest.Received && f.Op == 6 {
				t.Resumes++
			}
		}
	}
	if v := l.Violations(); len(v) > m.violations {
		t.Violations = v[m.violations:]
	}
	return t
}

// ResumedAt returns, per shard, when the first RESUME of a connection
// opened after m was received.
func ResumedAt(srv *discordtest.Server, m Mark) map[int]time.Time {
	out := map[int]time.Time{}
	for _, c := range srv.Ledger().Connections() {
		if m.resumeAt[c.ID] {
			continue
		}
		for _, f := range c.Frames {
			if f.Dir == discordtest.Received && f.Op == 6 {
				if t, ok := out[c.Shard[0]]; !ok || f.At.Before(t) {
					out[c.Shard[0]] = f.At
				}
				break
			}
		}
	}
	return out
}

// Lost returns, per session, the dispatches the bot can no longer get
// (discordtest.Ledger.Lost): none when no dispatch was lost.
func Lost(srv *discordtest.Server) map[string][]int64 {
	out := map[string][]int64{}
	for _, s := range srv.Ledger().Sessions() {
		if lost := srv.Ledger().Lost(s.ID); len(lost) > 0 {
			out[s.ID] = lost
		}
	}
	return out
}

// Undelivered returns, per live session, the dispatches never written on
// any connection (a shard nobody resumed).
func Undelivered(srv *discordtest.Server) map[string][]int64 {
	out := map[string][]int64{}
	for _, s := range srv.Ledger().Sessions() {
		if s.Ended {
			continue
		}
		if u := srv.Ledger().Undelivered(s.ID); len(u) > 0 {
			out[s.ID] = u
		}
	}
	return out
}

// HandoverGaps returns, for each shard whose connection changed after m,
// the longest time it had no connection: from one connection's close to
// the RESUME (or IDENTIFY) of the next. A handover costs about one fleet
// interval and a RESUME; a killed process's shards wait for its lease.
func HandoverGaps(srv *discordtest.Server, m Mark) map[int]time.Duration {
	byShard := map[int][]discordtest.ConnRecord{}
	for _, c := range srv.Ledger().Connections() {
		if c.Shard[1] != 0 {
			byShard[c.Shard[0]] = append(byShard[c.Shard[0]], c)
		}
	}
	out := map[int]time.Duration{}
	for id, cs := range byShard {
		sort.Slice(cs, func(i, j int) bool { return cs[i].OpenedAt.Before(cs[j].OpenedAt) })
		for i := 1; i < len(cs); i++ {
			next := cs[i]
			if m.resumeAt[next.ID] || !cs[i-1].Closed {
				continue
			}
			var at time.Time
			for _, f := range next.Frames {
				if f.Dir == discordtest.Received && (f.Op == 6 || f.Op == 2) {
					at = f.At
					break
				}
			}
			if at.IsZero() {
				continue
			}
			if gap := at.Sub(cs[i-1].ClosedAt); gap > out[id] {
				out[id] = gap
			}
		}
	}
	return out
}
