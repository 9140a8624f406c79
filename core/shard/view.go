package shard

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Condition is one shard's health in a word, as the aggregate counts it.
type Condition uint8

const (
	// Starting: the shard has never been READY and has not failed.
	Starting Condition = iota
	// Healthy: none of the rules below applies.
	Healthy
	// Degraded: the health monitor says DEGRADED, or the breaker is
	// HALF_OPEN (the shard is proving itself after failures).
	Degraded
	// Unhealthy: the shard is FAILED; or it was READY before and is not
	// now (it is reconnecting and delivers no events); or its breaker is
	// OPEN; or the health monitor says UNHEALTHY or CRITICAL.
	Unhealthy
)

// String returns "STARTING", "HEALTHY", "DEGRADED" or "UNHEALTHY".
func (c Condition) String() string {
	switch c {
	case Starting:
		return "STARTING"
	case Healthy:
		return "HEALTHY"
	case Degraded:
		return "DEGRADED"
	case Unhealthy:
		return "UNHEALTHY"
	}
	return fmt.Sprintf("Condition(%d)", uint8(c))
}

// MarshalText renders the condition as its name (for JSON).
func (c Condition) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Classify decides a shard's Condition from its connection state, whether
// it was ever READY, and its Snapshot (breaker and health verdict), by the
// rules the Condition constants state, first match wins: Unhealthy,
// Starting, Degraded, Healthy.
func Classify(state conn.State, everReady bool, s *metrics.Snapshot) Condition {
	switch {
	case state == conn.Failed,
		everReady && state != conn.Ready && state != conn.Stopped,
		s.Breaker.State == "OPEN",
		s.Health.Status == "UNHEALTHY", s.Health.Status == "CRITICAL":
		return Unhealthy
	case !everReady:
		return Starting
	case s.Health.Status == "DEGRADED", s.Breaker.State == "HALF_OPEN":
		return Degraded
	}
	return Healthy
}

// ShardView is one shard as a diagnostics page and the policy see it.
type ShardView struct {
	// ID is the shard's ID.
	ID int `json:"id"`
	// State is the connection state, e.g. "READY".
	State string `json:"state"`
	// Condition is the shard's health in a word (see Classify).
	Condition Condition `json:"condition"`
	// WasReady is true once the shard has been READY.
	WasReady bool `json:"was_ready"`
	// Error is the error that made the shard FAILED, if any.
	Error string `json:"error,omitempty"`
	// Connection holds the session id, sequence and dropped-send
	// counters.
	Connection conn.Stats `json:"connection"`
	// Snapshot is the shard's metrics: latency, last close code, resumes,
	// identifies, reconnects, breaker and health.
	Snapshot metrics.Snapshot `json:"snapshot"`
}

// Aggregate is the process-wide summary of its shards. Its embedded
// metrics.Shards is the part a policy conditions on to act on the process
// rather than one shard (for instance: degrade when more than 20% of
// shards are unhealthy), the `shards.*` variables, which the process
// Snapshot carries as Snapshot.Shards: the counts by Condition, the
// ratios, the worst ACK age and latencies, the worst error rate and the
// lowest health score, each documented there. The fields below add what
// a diagnostics page shows besides.
type Aggregate struct {
	metrics.Shards
	// Count is the bot's shard count (Total is the shards this process
	// runs).
	Count int `json:"count"`
	// WorstAckShard is the shard of WorstAckAge, the connected shard that
	// has waited longest for a HEARTBEAT_ACK (-1 when none is connected);
	// WorstLatencyShard that of WorstLatency (-1 when no shard has one).
	WorstAckShard     int `json:"worst_ack_shard"`
	WorstLatencyShard int `json:"worst_latency_shard"`
	// ErrorRate pools the shards' windows: their failures over their
	// operations (MaxErrorRate is the worst single shard's rate).
	ErrorRate float64 `json:"error_rate"`
	// Reconnects, Resumes, Identifies and Dispatches are the shards'
	// counters added up.
	Reconnects uint64 `json:"reconnects"`
	Resumes    uint64 `json:"resumes"`
	Identifies uint64 `json:"identifies"`
	Dispatches uint64 `json:"dispatches"`
}

// Summarize computes the Aggregate of shard views; count is the bot's
// shard count. It reads only the views, so a caller can summarize any
// subset. This is the one place the shards are summed up: the process
// Snapshot's Shards (the policy's `shards.*`) is the result's
// metrics.Shards.
func Summarize(count int, shards []ShardView) Aggregate {
	a := Aggregate{Shards: metrics.Shards{Total: len(shards)}, Count: count, WorstAckShard: -1, WorstLatencyShard: -1}
	if len(shards) > 0 {
		a.MinHealthScore = 100 // lowered below by each shard with a verdict
	}
	var latSum time.Duration
	var latN int
	var failures, operations uint64
	for i := range shards {
		v := &shards[i]
		s := &v.Snapshot
		switch v.Condition {
		case Starting:
			a.Starting++
		case Healthy:
			a.Healthy++
		case Degraded:
			a.Degraded++
		case Unhealthy:
			a.Unhealthy++
		}
		switch {
		case v.State == conn.Ready.String():
			a.Ready++
		case v.State == conn.Failed.String():
			a.Failed++
		case v.WasReady && v.State != conn.Stopped.String():
			a.Reconnecting++
		}
		if s.Breaker.State == "OPEN" {
			a.BreakersOpen++
		}
		if s.Gateway.Connected && (a.WorstAckShard < 0 || s.Gateway.LastAckAge > a.WorstAckAge) {
			a.WorstAckAge, a.WorstAckShard = s.Gateway.LastAckAge, v.ID
		}
		if l := s.Latency.Heartbeat; l > 0 {
			latSum += l
			latN++
			if l > a.WorstLatency {
				a.WorstLatency, a.WorstLatencyShard = l, v.ID
			}
		}
		failures += s.Errors.InWindow
		operations += s.Errors.Operations
		a.MaxErrorRate = max(a.MaxErrorRate, s.Errors.Rate)
		if st := s.Health.Status; st != "" && st != "UNKNOWN" {
			a.MinHealthScore = min(a.MinHealthScore, s.Health.Score)
		}
		a.Reconnects += s.Gateway.Reconnects
		a.Resumes += s.Gateway.Resumes
		a.Identifies += s.Gateway.Identifies
		a.Dispatches += s.Gateway.Dispatches
	}
	if latN > 0 {
		a.MeanLatency = latSum / time.Duration(latN)
	}
	if operations > 0 {
		a.ErrorRate = float64(failures) / float64(operations)
	}
	if a.Total > 0 {
		n := float64(a.Total)
		a.ReadyRatio = float64(a.Ready) / n
		a.UnhealthyRatio = float64(a.Unhealthy) / n
		a.DegradedRatio = float64(a.Degraded+a.Unhealthy) / n
	}
	return a
}

// View is the whole process's shards at one moment: each shard's view,
// the aggregate over them, the shared REST transport's figures and the
// shared queue and gate.
type View struct {
	// Time is when the view was built (the manager's clock).
	Time time.Time `json:"time"`
	// Range is the shards this process runs, out of Aggregate.Count.
	Range Range `json:"range"`
	// Shards holds one view per shard, in ID order.
	Shards []ShardView `json:"shards"`
	// Aggregate summarizes Shards.
	Aggregate Aggregate `json:"aggregate"`
	// Process is the Snapshot of the process Recorder (Manager.Recorder):
	// the shared REST transport's figures and the errors of REST and every
	// shard pooled; its gateway part is empty. Snapshot merges it with
	// the shards.
	Process metrics.Snapshot `json:"process"`
	// Gate is the reconnect gate's counters (zero when replaced).
	Gate GateStats `json:"gate"`
	// SessionStartsRemaining is the identify budget left and
	// SessionStartsResetAt when it resets; -1 when the queue cannot tell.
	SessionStartsRemaining int       `json:"session_starts_remaining"`
	SessionStartsResetAt   time.Time `json:"session_starts_reset_at,omitempty"`
}

// View builds the view now. It runs no health check (Tick does); it costs
// one Snapshot per shard.
func (m *Manager) View() View {
	m.mu.Lock()
	shards, rng, count := m.shards, m.rng, m.count
	m.mu.Unlock()
	v := View{Time: m.clk.Now(), Range: rng, Shards: make([]ShardView, len(shards)), SessionStartsRemaining: -1}
	for i, s := range shards {
		snap := s.Snapshot()
		st := s.conn.State()
		was := s.everReady.Load() || st == conn.Ready // the event may trail the state
		sv := ShardView{ID: s.id, State: st.String(), Condition: Classify(st, was, &snap), WasReady: was,
			Connection: s.conn.Stats(), Snapshot: snap}
		if err := s.conn.Err(); err != nil {
			sv.Error = err.Error()
		}
		v.Shards[i] = sv
	}
	v.Aggregate = Summarize(count, v.Shards)
	v.Process = m.procRec.Build()
	if m.gate != nil {
		v.Gate = m.gate.Stats()
	}
	if rem, reset, ok := m.SessionStarts(); ok {
		v.SessionStartsRemaining, v.SessionStartsResetAt = rem, reset
	}
	return v
}

// tickParallelism bounds how many shards' health checks Tick runs at once.
const tickParallelism = 32

// Tick runs the health checks that are due on the monitor of every shard
// that has been READY (at most tickParallelism shards at a time), then
// builds the View. A shard still starting is not judged: its checks would
// fail on the handshake and the verdict last a whole interval. The
// owner's tick loop calls it (the orchestrator's, once per tick); the
// manager has no loop of its own.
func (m *Manager) Tick(ctx context.Context) View {
	shards := m.Shards()
	sem := make(chan struct{}, tickParallelism)
	var wg sync.WaitGroup
	for _, s := range shards {
		if s.mon == nil || !(s.everReady.Load() || s.conn.State() == conn.Ready) {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := s.mon.RunDue(ctx); err != nil && ctx.Err() == nil {
				m.log.Debug("health checks", "shard", s.id, "error", err)
			}
		}()
	}
	wg.Wait()
	return m.View()
}

// breakerRank orders breaker states from best to worst.
func breakerRank(state string) int {
	switch state {
	case "OPEN":
		return 2
	case "HALF_OPEN":
		return 1
	}
	return 0
}

// Snapshot merges the view into the process Snapshot: what the policy of
// a process running these shards evaluates, and what its health checks
// judge. The rules (docs/policy.md states them for policy authors):
//
//   - Time, Uptime, Errors, REST, the REST latency quantiles, Health and
//     Degradation are the process Recorder's (Process): errors pool REST
//     and every shard, in the order they happened;
//   - Shard is {ID: the range's first shard, Count: the bot's count};
//   - Latency.Heartbeat and HeartbeatAvg are the means over the shards
//     that have one;
//   - Gateway.Connected holds when every shard is connected;
//     Gateway.LastAckAge is the worst among connected shards; State,
//     HeartbeatInterval, Sequence and LastCloseCode are those of the
//     shard furthest from READY (the first shard not READY, else the
//     first shard); DownFor is the longest any shard has been down (a
//     shard in its first handshake is not down: its DownFor is 0),
//     leaving out the shards that ended for good (FAILED) while any other
//     shard runs: a dead shard's outage never ends, and it would make
//     every brief trouble of the others look a minute old (with every
//     shard FAILED, it is the longest of theirs);
//     Connections and the counters (reconnects, resumes, identifies,
//     dispatches) are added up;
//   - Breaker.State is the worst shard's (OPEN, then HALF_OPEN, then
//     CLOSED), its failures and rejections added up;
//   - Shards is the Aggregate's metrics.Shards.
//
// So a process running one shard gets that shard's figures, REST and the
// pooled errors added: exactly what a single connection reports. With no
// shard (before Start) the gateway and breaker parts are the process
// Recorder's.
func (v *View) Snapshot() metrics.Snapshot {
	s := v.Process
	s.Shard = metrics.ShardInfo{ID: v.Range.First, Count: max(v.Aggregate.Count, 1)}
	s.Shards = v.Aggregate.Shards
	if len(v.Shards) == 0 {
		return s
	}
	rep := &v.Shards[0]
	for i := range v.Shards {
		if v.Shards[i].State != conn.Ready.String() {
			rep = &v.Shards[i]
			break
		}
	}
	g := metrics.Gateway{
		State:             rep.Snapshot.Gateway.State,
		Connected:         true,
		HeartbeatInterval: rep.Snapshot.Gateway.HeartbeatInterval,
		LastAckAge:        v.Aggregate.WorstAckAge,
		Sequence:          rep.Snapshot.Gateway.Sequence,
		LastCloseCode:     rep.Snapshot.Gateway.LastCloseCode,
	}
	var br metrics.BreakerView
	var avgSum time.Duration
	var avgN int
	var failedDownFor time.Duration
	allFailed := true
	for i := range v.Shards {
		sh := &v.Shards[i].Snapshot
		g.Connected = g.Connected && sh.Gateway.Connected
		if v.Shards[i].State == conn.Failed.String() {
			failedDownFor = max(failedDownFor, sh.Gateway.DownFor)
		} else {
			allFailed = false
			g.DownFor = max(g.DownFor, sh.Gateway.DownFor)
		}
		g.Connections += sh.Gateway.Connections
		g.Reconnects += sh.Gateway.Reconnects
		g.Resumes += sh.Gateway.Resumes
		g.Identifies += sh.Gateway.Identifies
		g.Dispatches += sh.Gateway.Dispatches
		if i == 0 || breakerRank(sh.Breaker.State) > breakerRank(br.State) {
			br.State = sh.Breaker.State
		}
		br.Failures += sh.Breaker.Failures
		br.Rejections += sh.Breaker.Rejections
		if a := sh.Latency.HeartbeatAvg; a > 0 {
			avgSum += a
			avgN++
		}
	}
	if allFailed {
		g.DownFor = failedDownFor
	}
	s.Gateway = g
	s.Breaker = br
	s.Latency.Heartbeat = v.Aggregate.MeanLatency
	s.Latency.HeartbeatAvg = 0
	if avgN > 0 {
		s.Latency.HeartbeatAvg = avgSum / time.Duration(avgN)
	}
	return s
}
