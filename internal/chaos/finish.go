package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/goleak"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/flight"
	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// recovered reports whether every shard is READY, at level NONE, and its
// plugins run.
func (r *run) recovered() (bool, string) {
	for _, m := range r.members {
		shards := m.lf.Shards()
		if len(shards) != m.count {
			return false, fmt.Sprintf("%d shards run, want %d", len(shards), m.count)
		}
		for _, sh := range shards {
			if st := sh.State(); st != conn.Ready {
				return false, fmt.Sprintf("shard %d is %s", sh.ID(), st)
			}
		}
		if lv := m.lf.Degradation().Level(); lv != policy.None {
			return false, fmt.Sprintf("shard %d is at level %s", m.shard, lv)
		}
		for _, s := range m.lf.Plugins().Status() {
			if s.State != pluginhost.Running {
				return false, fmt.Sprintf("plugin %s is %s after %d restarts in a row (last exit %q, last error %q); plugin events: %s",
					s.Name, s.State, s.Restarts, s.LastExit, s.LastError, r.pluginEvents())
			}
		}
	}
	return true, ""
}

// recover puts the base policy back and waits, within the policy's bound,
// for every shard to be READY at level NONE with its plugins running.
func (r *run) recover() {
	faultsEnd := time.Now()
	r.mu.Lock()
	restore := r.disk != r.base
	reload := r.loaded != r.base
	r.mu.Unlock()
	if restore {
		before := make([]*policy.Policy, len(r.members))
		for i, m := range r.members {
			before[i] = m.lf.Policy()
		}
		if err := r.writePolicy(r.base); err != nil {
			r.fail("restore the base policy: %v", err)
		}
		if reload {
			for i, m := range r.members {
				if !waitFor(context.Background(), 10*time.Second, func() bool { return m.lf.Policy() != before[i] }) {
					r.fail("shard %d: the base policy written back was not put in force", m.shard)
				}
			}
			r.mu.Lock()
			r.loaded = r.base
			r.mu.Unlock()
		}
	}
	why := ""
	ok := waitFor(context.Background(), r.rep.RecoveryBound, func() bool {
		var done bool
		done, why = r.recovered()
		return done
	})
	r.rep.RecoveryTime = time.Since(faultsEnd)
	if !ok {
		r.fail("not recovered %v after the last fault (bound %v): %s", r.rep.RecoveryTime.Round(time.Millisecond), r.rep.RecoveryBound, why)
		return
	}
	r.cfg.Logf("chaos: %v: recovered in %v: every shard READY, level NONE, plugins running", r.since(), r.rep.RecoveryTime.Round(time.Millisecond))
}

// settleAndCheck sends a last burst of messages, waits until they reached
// the handler and the client acknowledged everything, then checks the
// ledger.
func (r *run) settleAndCheck() {
	l := r.srv.Ledger()
	if !r.failed() {
		var want []string
		for i, g := range r.srv.Guilds() {
			for k := 0; k < 3; k++ {
				msg, err := r.srv.EmitMessage(g.ChannelID, fmt.Sprintf("final %d.%d", i, k))
				if err != nil {
					r.fail("emit: %v", err)
					break
				}
				want = append(want, msg.ID)
			}
		}
		if !waitFor(context.Background(), 15*time.Second, func() bool {
			for _, id := range want {
				if !r.handled.has(id) {
					return false
				}
			}
			return true
		}) {
			r.fail("the last burst of %d messages did not all reach the handler", len(want))
		}
		if !waitFor(context.Background(), 15*time.Second, func() bool {
			for _, c := range r.connections() {
				if len(l.Unacknowledged(c.Stats().SessionID)) > 0 {
					return false
				}
			}
			return true
		}) {
			r.fail("the client never acknowledged every dispatch of its live sessions")
		}
		// The handlers run in their own goroutines: let them finish.
		last := -1
		waitFor(context.Background(), 5*time.Second, func() bool {
			total, _, _ := r.handled.counts()
			stable := total == last
			last = total
			time.Sleep(100 * time.Millisecond)
			return stable
		})
	}

	sessions := l.Sessions()
	r.rep.Loss = classifyLosses(sessions, l.Connections())
	r.separateCapped(&r.rep.Loss)
	r.rep.RecoveryCapSkips, r.rep.RecoverySessionKept = r.timeline.skipCounts()
	if len(r.rep.Loss.Details) > 0 {
		r.rep.Ledger = describeSessions(l) + "\nwhat the client did around each loss:\n" + r.timeline.explain(r.rep.Loss.Spans)
	}
	for _, d := range r.rep.Loss.Details {
		r.fail("dispatch loss: %s", d)
	}
	for _, s := range sessions {
		r.rep.Dispatches += len(s.Dispatches)
		r.rep.Resumes += len(s.Resumes)
	}
	for _, id := range l.Identifies() {
		if id.Outcome == discordtest.IdentifyAccepted {
			r.rep.Identifies++
		}
	}
	r.rep.Connections = len(l.Connections())
	acked, err := ackedMessages(l)
	if err != nil {
		r.fail("%v", err)
	}
	r.rep.AckedMessages = len(acked)
	var missing []string
	for id, where := range acked {
		if !r.handled.has(id) {
			missing = append(missing, id+" ("+where+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		r.fail("%d acknowledged MESSAGE_CREATEs never reached the handler, e.g. %v", len(missing), missing[:min(8, len(missing))])
	}
	total, _, dups := r.handled.counts()
	r.rep.MessagesHandled, r.rep.Duplicates = total, dups
	if len(dups) > 0 {
		r.fail("%d messages delivered to the handler more than once, e.g. %v", len(dups), dups[:min(8, len(dups))])
	}
	r.rep.Violations = map[string]int{}
	for _, v := range l.Violations() {
		r.rep.Violations[string(v.Kind)]++
		if hardViolation(v.Kind) {
			r.fail("ledger violation %s on shard %d: %s", v.Kind, v.Shard, v.Detail)
		}
	}
	r.rep.Envelope = r.env.figures()
	for _, v := range r.rep.Envelope.Violations {
		r.fail("backoff envelope: %s", v)
	}
	r.scrape(context.Background())
	r.checkPluginEnvs()
}

// separateCapped moves the losses that followed a skip of the recovery
// engine at one of its caps (its log line, between the session's last
// connection and the next session) from Lost to Capped, and says in their
// detail which strategy was capped on which shard, when, and why. Both
// fail the run: the caps count failed attempts only and never cost a
// session that can resume (core/recovery's ErrSessionKept), so a cap
// behind a loss on a resumable path is a bug.
func (r *run) separateCapped(f *LossFigures) {
	for i, sp := range f.Spans {
		if sp.NextSession.IsZero() {
			continue
		}
		c, ok := r.timeline.skippedAtCap(sp.Shard, sp.Disconnected.Add(-time.Second), sp.NextSession)
		if !ok {
			continue
		}
		f.Capped += sp.Count
		f.Lost -= sp.Count
		f.Details[i] = fmt.Sprintf("%s; the recovery engine had skipped %s on shard %d at its cap at %s (%s), then a new session began at %s: a cap cost a resumable session",
			f.Details[i], c.strategy, sp.Shard, c.at.Format("15:04:05.000"), c.reason, sp.NextSession.Format("15:04:05.000"))
	}
}

// finish stops everything, then checks for leaked goroutines, files and
// processes, and fills the report.
func (r *run) finish(leakBase goleak.Option) {
	var pids []int
	for _, m := range r.members {
		for _, s := range m.lf.Plugins().Status() {
			if s.PID > 0 {
				pids = append(pids, s.PID)
			}
		}
	}
	for _, c := range r.connections() {
		if c.Err() != nil {
			r.scan.ScanString("errors", c.Err().Error())
		}
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		r.teardown()
	}()
	select {
	case <-stopped:
	case <-time.After(60 * time.Second):
		r.rep.GoroutineDump = goroutineDump()
		r.fail("Stop did not return within 60s: goroutines dumped")
		<-stopped
	}
	for _, pid := range pids {
		if processAlive(pid) {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !zombie(b) {
				r.fail("plugin process %d still running after Stop", pid)
			}
		}
	}
	r.scanFlight()

	// Goroutines: everything started since the run began must be gone
	// (discordgo's Close sleeps a second in a goroutine of its own; http
	// connections close when the server does). Retried for a while.
	var leakErr error
	waitFor(context.Background(), 15*time.Second, func() bool {
		leakErr = goleak.Find(leakBase)
		return leakErr == nil
	})
	if leakErr != nil {
		r.fail("goroutines left after Stop: %v", leakErr)
	}
	waitFor(context.Background(), 10*time.Second, func() bool {
		r.rep.FDsAfter = openFDs()
		return r.rep.FDsAfter <= r.rep.FDsBefore
	})
	if r.rep.FDsAfter > r.rep.FDsBefore {
		r.fail("open files: %d before the run, %d after Stop; new: %s", r.rep.FDsBefore, r.rep.FDsAfter,
			strings.Join(newFDs(r.fdsBefore, fdTargets()), ", "))
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Heap = summariseHeap(r.samples, r.warmup())
	r.rep.Heap.Growth = siteGrowth(r.firstSites, r.lastSites, 12)
	if !r.rep.Heap.flat(r.cfg.HeapSlackMB) {
		r.failures = append(r.failures, fmt.Sprintf("memory or goroutines grew: heap %.1f -> %.1f MB, goroutines %d -> %d",
			r.rep.Heap.FirstMB, r.rep.Heap.LastMB, r.rep.Heap.GoroutinesFirst, r.rep.Heap.GoroutinesLast))
	}
	r.rep.Events = r.events
	r.rep.Recoveries, r.rep.RecoveryFailures = r.recov, r.recovFail
	r.rep.Levels, r.rep.MaxLevel = r.levels, r.maxLevel.String()
	r.rep.PluginStarts = r.starts
	r.rep.MessagesEmitted = r.emitted
	r.rep.REST = r.rest
	for _, m := range r.members {
		r.rep.PolicyReloads += int(m.reloads.Load())
		r.rep.PolicyReloadFailures += int(m.refused.Load())
		r.rep.EventsDropped += m.lf.Events().Stats().Dropped
	}
	if r.rep.EventsDropped > 0 {
		r.failures = append(r.failures, fmt.Sprintf("the event buses dropped %d events", r.rep.EventsDropped))
	}
	r.rep.LogLines = r.logs.Lines()
	r.rep.Scanned = r.scan.Scanned()
	r.rep.SecretHits = r.scan.Hits()
	for _, h := range r.rep.SecretHits {
		r.failures = append(r.failures, "secret found in "+h)
	}
	r.rep.Elapsed = time.Since(r.start)
	r.rep.Failures = append(r.rep.Failures, r.failures...)
	if !r.rep.OK() {
		r.rep.LogTail = r.logs.Tail()
	}
}

// zombie reports whether /proc/PID/stat says the process has exited and
// waits to be reaped (by a process that is not ours).
func zombie(stat []byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' && i+2 < len(stat) {
			return stat[i+2] == 'Z'
		}
	}
	return false
}

// teardown stops the systems, their HTTP servers and recorders, and the
// fake Discord.
func (r *run) teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	for _, m := range r.members {
		if m.lf == nil {
			continue
		}
		if err := m.lf.Stop(ctx); err != nil {
			r.scan.ScanString("errors", err.Error())
			r.fail("shard %d: Stop: %v", m.shard, err)
		}
		if m.http != nil {
			if err := m.http.Shutdown(ctx); err != nil {
				r.fail("shard %d: HTTP shutdown: %v", m.shard, err)
			}
		}
		if err := m.rec.Close(); err != nil && !errors.Is(err, flight.ErrClosed) {
			r.fail("shard %d: flight recorder: %v", m.shard, err)
		}
	}
	if r.srv != nil {
		r.srv.Close()
	}
}

// scanFlight searches the flight recordings (every rotated file) for the
// secrets.
func (r *run) scanFlight() {
	for _, m := range r.members {
		files, _ := filepath.Glob(m.flightPath + "*")
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				r.fail("read flight recording: %v", err)
				continue
			}
			r.scan.Scan("flight recording", b)
		}
	}
}
