package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/coord"
	"github.com/lifeline-bot/lifeline/core/degrade"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/shard"
)

// This file is the orchestrator's side of a fleet: a policy with a
// `coordination "nats"` block makes the process one of several lifeline
// processes running one bot (core/coord). The hooks elsewhere are one call
// each: fleetManagerConfig in newManager, startFleet in Start, stopFleet in
// Stop, fillFleet in tick, fleetDiagnostics in Diagnostics and
// fleetGatherers in Handler. Without the block none of them does anything
// but fillFleet, which describes the process as a fleet of one.

// fleetStopTimeout bounds the graceful leave at Stop (the handover of every
// shard): a fleet that cannot be reached is left to its lease.
const fleetStopTimeout = 30 * time.Second

// fleetPart is a process's membership of a fleet.
type fleetPart struct {
	o *Orchestrator
	c policy.Coordination

	queue lateQueue
	fleet atomic.Pointer[coord.Fleet]
	h     atomic.Pointer[shard.CoordHandler]

	closer  io.Closer
	runDone chan struct{} // closed when Ownership().Run has returned
	runErr  error
	loops   sync.WaitGroup
	cancel  context.CancelFunc
	state   atomic.Pointer[fleetState]

	saves, saveErrors atomic.Uint64
	// saveNow asks the refresh loop to save the sessions at once: a
	// shard has just become READY (a new session a killed process must
	// leave behind).
	saveNow chan struct{}
}

// fleetState is the fleet as the last refresh read it.
type fleetState struct {
	view coord.FleetView
	at   time.Time
	err  string // why the last refresh failed ("" when it did not)
	ok   bool   // a view was read at least once
}

// Fleet returns this process's fleet coordinator, nil without a
// coordination block or before Start has joined the fleet. Its
// Ownership().Owned() is the shards this process runs, Stats() the
// fleet's counters and Health().View the whole fleet.
func (o *Orchestrator) Fleet() *coord.Fleet {
	if o.fleet == nil {
		return nil
	}
	return o.fleet.fleet.Load()
}

// fleetManagerConfig makes the shard manager of a process with a
// coordination block Dynamic: the fleet gives it its shards, its IDENTIFYs
// go through the fleet's identify queue (bound at Start, once the fleet is
// joined), and its reconnects wait while the process does not hold the
// shard. It fails when the process was also given a shard range.
func (o *Orchestrator) fleetManagerConfig(sc *shard.Config) error {
	c := o.cfg.Policy.Coordination
	if c == nil {
		return nil
	}
	if o.plan.rng != nil {
		return fmt.Errorf("%w: the policy's coordination block lets the fleet give this process its shards; ShardRange and ShardID cannot be set with it", ErrShardConfig)
	}
	fp := &fleetPart{o: o, c: *c, runDone: make(chan struct{}), saveNow: make(chan struct{}, 1)}
	fp.queue.ready = make(chan struct{})
	o.fleet = fp
	sc.Dynamic = true
	sc.Range = nil
	sc.IdentifyQueue = &fp.queue
	sc.Holds = fp.holds
	sc.HoldPoll = min(fp.interval()/2, 250*time.Millisecond)
	return nil
}

// holds is the manager's Config.Holds: only a shard this process holds
// under a valid lease may reconnect.
func (fp *fleetPart) holds(id int) bool {
	f := fp.fleet.Load()
	return f != nil && f.Ownership().Holds(id)
}

// interval is the fleet's heartbeat and reconcile period (coord's default
// when the policy leaves it out).
func (fp *fleetPart) interval() time.Duration {
	if fp.c.Interval > 0 {
		return fp.c.Interval
	}
	return min(fp.c.LeaseTTL/10, time.Second)
}

// startFleet joins the fleet once the manager knows the shard count and the
// session-start budget, and returns when this process's share of the
// shards is READY (or with ctx's error). A no-op without a coordination
// block.
func (o *Orchestrator) startFleet(ctx context.Context) error {
	if o.fleet == nil {
		return nil
	}
	return o.fleet.start(ctx)
}

func (fp *fleetPart) start(ctx context.Context) error {
	o := fp.o
	gw := o.mgr.Gateway()
	count := o.mgr.Count()
	if gw == nil || count <= 0 {
		return errors.New("orchestrator: fleet: the shard manager has no gateway or shard count")
	}
	fp.queue.before.Store(&budgetSeen{remaining: gw.Limit.Remaining, resetAt: o.clk.Now().Add(gw.Limit.ResetAfter)})
	store, closer, err := coord.OpenBackend(ctx, fp.c.Kind, coord.BackendConfig{
		URL: fp.c.URL, BucketPrefix: fp.c.BucketPrefix, Replicas: fp.c.Replicas, Memory: fp.c.Memory,
		Credentials: fp.c.Credentials, Name: fp.c.ProcessID, Logger: o.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("orchestrator: fleet: %w", err)
	}
	fp.closer = closer
	window := o.cfg.IdentifyWindow
	if window <= 0 {
		window = 5 * time.Second
	}
	settings := coord.Settings{
		Process:         fp.c.ProcessID,
		ShardCount:      count,
		Limit:           gw.Limit,
		Window:          window,
		LeaseTTL:        fp.c.LeaseTTL,
		Interval:        fp.c.Interval,
		StopOnLeaseLoss: fp.c.StopOnLeaseLoss,
		Clock:           o.clk,
		Events:          o.bus,
		Logger:          o.cfg.Logger,
		OnUnavailable: func(err error) {
			o.log.Warn("fleet coordination store unreachable: running shards continue, no shard moves and no IDENTIFY happens until it is back", "error", err)
		},
		OnAvailable: func() { o.log.Info("fleet coordination store reachable again") },
	}
	// The buckets are opened now: while NATS cannot be reached the process
	// waits, as the identify queue would.
	var f *coord.Fleet
	for {
		f, err = coord.NewFleet(ctx, store, settings)
		if err == nil {
			break
		}
		if !errors.Is(err, coord.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			closer.Close()
			return fmt.Errorf("orchestrator: fleet: %w", err)
		}
		o.log.Warn("cannot open the fleet's buckets yet; retrying", "error", err)
		if err := sleepCtx(ctx, o, fp.interval()); err != nil {
			closer.Close()
			return fmt.Errorf("orchestrator: fleet: %w", err)
		}
	}
	if err := f.SyncBudget(ctx, gw.Limit); err != nil {
		o.log.Warn("could not merge /gateway/bot's session-start budget into the fleet's", "error", err)
	}
	h := &shard.CoordHandler{Manager: o.mgr, Resume: f.Resume(), Process: f.Process(), Holds: f.Ownership().Holds}
	fp.fleet.Store(f)
	fp.h.Store(h)
	fp.queue.set(f.Identify())
	o.log.Info("joining the fleet", "process", f.Process(), "shards", count, "bucket_prefix", fp.c.BucketPrefix,
		"lease_ttl", fp.c.LeaseTTL)

	o.mu.Lock()
	runCtx := o.runCtx
	o.mu.Unlock()
	if runCtx == nil {
		runCtx = context.Background()
	}
	loopCtx, cancel := context.WithCancel(runCtx)
	fp.cancel = cancel
	go func() {
		defer close(fp.runDone)
		fp.runErr = f.Ownership().Run(runCtx, h)
		if fp.runErr != nil && runCtx.Err() == nil {
			o.log.Error("left the fleet unexpectedly", "error", fp.runErr)
		}
	}()
	// A shard's session is saved as soon as it is READY, not only at the
	// next regular save: a process killed right after its shards came up
	// leaves them resumable too.
	sub := o.bus.Subscribe(events.StateChanged, func(e events.Event) {
		if d, ok := e.Data.(events.StateChange); ok && d.To == conn.Ready.String() && e.Shard >= 0 {
			select {
			case fp.saveNow <- struct{}{}:
			default:
			}
		}
	})
	o.mu.Lock()
	o.subs = append(o.subs, sub)
	o.mu.Unlock()
	fp.loops.Add(1)
	go fp.refreshLoop(loopCtx)
	return fp.waitShare(ctx)
}

// waitShare returns once the fleet's plan gives this process its shards
// and every one of them runs here and is READY, reporting progress as
// Config.OnShardProgress does for a single process.
func (fp *fleetPart) waitShare(ctx context.Context) error {
	o := fp.o
	f := fp.fleet.Load()
	began := o.clk.Now()
	reported := 0
	for {
		plan, err := f.Ownership().Assignments(ctx)
		if err == nil && planIncludes(plan, f.Process()) {
			var mine []int
			for id, p := range plan {
				if p == f.Process() {
					mine = append(mine, id)
				}
			}
			ready := 0
			for _, id := range mine {
				if s := o.mgr.Shard(id); s != nil && s.State() == conn.Ready {
					ready++
					if ready > reported && o.cfg.OnShardProgress != nil {
						o.cfg.OnShardProgress(ShardProgress{Shard: id, Ready: ready, Total: len(mine), Elapsed: o.clk.Since(began)})
					}
				}
			}
			reported = max(reported, ready)
			if ready == len(mine) && slices.Equal(mine, f.Ownership().Owned()) {
				o.log.Info("the fleet's share of this process is READY", "shards", len(mine), "of", len(plan),
					"took", o.clk.Since(began))
				return nil
			}
		}
		select {
		case <-fp.runDone:
			if fp.runErr != nil {
				return fmt.Errorf("orchestrator: fleet: %w", fp.runErr)
			}
			return errors.New("orchestrator: fleet: left the fleet during Start")
		default:
		}
		if err := sleepCtx(ctx, o, fp.interval()); err != nil {
			return fmt.Errorf("orchestrator: fleet: waiting for this process's shards: %w", err)
		}
	}
}

// planIncludes reports whether plan assigns every shard and accounts for
// process: it gives it shards, or every shard has an owner of its own (a
// fleet with more processes than shards leaves some without any).
func planIncludes(plan []string, process string) bool {
	if len(plan) == 0 || slices.Contains(plan, "") {
		return false
	}
	if slices.Contains(plan, process) {
		return true
	}
	owners := map[string]bool{}
	for _, p := range plan {
		owners[p] = true
	}
	return len(owners) == len(plan)
}

// refreshLoop reads the fleet's view every interval (so the tick never
// waits on the network) and saves the running shards' sessions every
// SaveInterval.
func (fp *fleetPart) refreshLoop(ctx context.Context) {
	defer fp.loops.Done()
	o := fp.o
	f := fp.fleet.Load()
	h := fp.h.Load()
	t := o.clk.NewTicker(fp.interval())
	defer t.Stop()
	lastSave := o.clk.Now()
	for {
		cctx, cancel := context.WithTimeout(ctx, max(fp.interval(), time.Second))
		v, err := f.Health().View(cctx)
		cancel()
		st := &fleetState{view: v, at: o.clk.Now(), ok: err == nil}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st.err = err.Error()
			if prev := fp.state.Load(); prev != nil && prev.ok {
				st.view, st.ok = prev.view, true // the last known figures
			}
		}
		fp.state.Store(st)
		if o.clk.Since(lastSave) >= fp.c.SaveInterval {
			lastSave = o.clk.Now()
			fp.saveAll(ctx, h)
		}
		for wait := true; wait; {
			select {
			case <-ctx.Done():
				return
			case <-fp.saveNow:
				fp.saveAll(ctx, h)
			case <-t.C():
				wait = false
			}
		}
	}
}

// saveAll saves the sessions that changed since their last save.
func (fp *fleetPart) saveAll(ctx context.Context, h *shard.CoordHandler) {
	sctx, cancel := context.WithTimeout(ctx, max(fp.c.SaveInterval, time.Second))
	n, err := h.SaveAll(sctx)
	cancel()
	fp.saves.Add(uint64(n))
	if err != nil && ctx.Err() == nil {
		fp.saveErrors.Add(1)
		fp.o.log.Debug("saving the shards' sessions failed; will try again", "error", err)
	}
}

// stopFleet leaves the fleet gracefully before the manager stops: every
// shard is handed over at once (stopped with 4000, its session saved) so
// the other processes RESUME them, then the coordinator and its connection
// are closed. A no-op without a coordination block.
func (o *Orchestrator) stopFleet(ctx context.Context) {
	fp := o.fleet
	if fp == nil {
		return
	}
	f := fp.fleet.Load()
	if f == nil {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, fleetStopTimeout)
	began := o.clk.Now()
	owned := len(f.Ownership().Owned())
	if err := f.Ownership().Leave(lctx); err != nil {
		o.log.Warn("could not hand every shard over; the rest stop with the process and move when its lease expires",
			"error", err, "still_owned", len(f.Ownership().Owned()))
	} else {
		o.log.Info("left the fleet", "handed_over", owned, "took", o.clk.Since(began))
	}
	cancel()
	if fp.cancel != nil {
		fp.cancel()
	}
	select {
	case <-fp.runDone:
	case <-ctx.Done():
	}
	fp.loops.Wait()
	f.Close()
	if fp.closer != nil {
		fp.closer.Close()
	}
}

// fillFleet sets the tick's Snapshot.Fleet and publishes this process's
// health for the next heartbeat. Without a coordination block the process
// is a fleet of one: its own shards' figures.
func (o *Orchestrator) fillFleet(v *shard.View, s *metrics.Snapshot) {
	a := &v.Aggregate
	level := o.eng.deg.Level()
	degraded := 0
	if level != degrade.None {
		degraded = 1
	}
	fp := o.fleet
	var f *coord.Fleet
	if fp != nil {
		f = fp.fleet.Load()
	}
	if f == nil {
		s.Fleet = metrics.Fleet{Coordinated: fp != nil, Available: fp == nil, Processes: 1, Shards: a.Total, Owned: a.Total,
			Ready: a.Ready, Unhealthy: a.Unhealthy, UnhealthyRatio: a.UnhealthyRatio, WorstAckAge: a.WorstAckAge, Degraded: degraded}
		return
	}
	deg := ""
	if level != degrade.None {
		deg = strings.ToLower(level.String())
	}
	score := a.MinHealthScore
	if a.Total == 0 {
		score = 100 // no shard here: none in poor health (shards.min_health_score is 0 then)
	}
	f.Health().Publish(coord.ProcessHealth{Shards: a.Total, Ready: a.Ready, Unhealthy: a.Unhealthy,
		WorstAckAge: a.WorstAckAge, Degradation: deg, HealthScore: score})
	st := fp.state.Load()
	if st == nil || !st.ok {
		// No view yet: this process alone, as far as it knows.
		s.Fleet = metrics.Fleet{Coordinated: true, Available: st == nil || st.err == "", Processes: 1, Shards: max(o.mgr.Count(), 1),
			Owned: a.Total, Ready: a.Ready, Unhealthy: a.Unhealthy, WorstAckAge: a.WorstAckAge, Degraded: degraded}
		s.Fleet.UnhealthyRatio = unhealthyRatio(s.Fleet)
		return
	}
	fv := &st.view
	s.Fleet = metrics.Fleet{Coordinated: true, Available: st.err == "", Processes: fv.Processes, Shards: fv.Shards,
		Owned: fv.Owned, Ready: fv.Ready, Unhealthy: fv.Unhealthy, UnhealthyRatio: fv.UnhealthyRatio,
		WorstAckAge: fv.WorstAckAge, Degraded: fv.Degraded}
}

// unhealthyRatio is metrics.Fleet's formula.
func unhealthyRatio(f metrics.Fleet) float64 {
	if f.Shards <= 0 {
		return 0
	}
	return float64(min(f.Unhealthy+f.Shards-f.Owned, f.Shards)) / float64(f.Shards)
}

// FleetDiagnostics is the fleet as one process sees it, for the
// diagnostics page and `lifeline status`: which process owns which shards,
// who leads, and this process's coordination counters.
type FleetDiagnostics struct {
	// Process is this process's ID; Kind and BucketPrefix the
	// coordination block's.
	Process      string `json:"process"`
	Kind         string `json:"kind"`
	BucketPrefix string `json:"bucket_prefix"`
	// Owned is the shards this process runs.
	Owned []int `json:"owned"`
	// Stats are this process's coordination counters (lease, leader,
	// store outages, identify slots, shards acquired, released, lost).
	Stats coord.Stats `json:"stats"`
	// View is the whole fleet as last read: each process with the shards
	// it owns and its health, the leader, and the fleet's figures.
	View coord.FleetView `json:"view"`
	// ViewAt is when View was read; ViewError why the last read failed
	// ("" when it did not: View is then current).
	ViewAt    time.Time `json:"view_at,omitzero"`
	ViewError string    `json:"view_error,omitempty"`
	// ResumeSaves counts shard sessions saved by the regular save;
	// ResumeSaveErrors the saves that failed.
	ResumeSaves      uint64 `json:"resume_saves"`
	ResumeSaveErrors uint64 `json:"resume_save_errors"`
}

// fleetDiagnostics returns the fleet's diagnostics, nil without a
// coordination block or before the fleet is joined.
func (o *Orchestrator) fleetDiagnostics() *FleetDiagnostics {
	fp := o.fleet
	if fp == nil {
		return nil
	}
	f := fp.fleet.Load()
	if f == nil {
		return nil
	}
	d := &FleetDiagnostics{Process: f.Process(), Kind: fp.c.Kind, BucketPrefix: fp.c.BucketPrefix,
		Owned: f.Ownership().Owned(), Stats: f.Stats(), ResumeSaves: fp.saves.Load(), ResumeSaveErrors: fp.saveErrors.Load()}
	if st := fp.state.Load(); st != nil {
		d.View, d.ViewAt, d.ViewError = st.view, st.at, st.err
	}
	return d
}

// lateQueue is the shard manager's identify queue in a fleet: the fleet's
// queue, which exists only once Start has joined the fleet. Until then
// Wait waits (a Dynamic manager starts no shard before that anyway).
type lateQueue struct {
	ready chan struct{}
	once  sync.Once
	q     atomic.Pointer[coordQueue]
	// before is what /gateway/bot said, reported until the fleet's
	// budget can be read.
	before atomic.Pointer[budgetSeen]
}

type budgetSeen struct {
	remaining int
	resetAt   time.Time
}

type coordQueue struct{ coord.IdentifyQueue }

func (l *lateQueue) set(q coord.IdentifyQueue) {
	l.q.Store(&coordQueue{q})
	l.once.Do(func() { close(l.ready) })
}

// Wait implements conn.IdentifyQueue.
func (l *lateQueue) Wait(ctx context.Context, shard int) error {
	select {
	case <-l.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.q.Load().Wait(ctx, shard)
}

// Remaining is the fleet's budget; before the fleet is joined, what
// /gateway/bot said.
func (l *lateQueue) Remaining() (int, time.Time) {
	if q := l.q.Load(); q != nil {
		return q.Remaining()
	}
	if b := l.before.Load(); b != nil {
		return b.remaining, b.resetAt
	}
	return 0, time.Time{}
}

// CheckBudget is the fleet's budget check (nil before the fleet is joined:
// a Dynamic manager checks nothing at Start).
func (l *lateQueue) CheckBudget(n int) error {
	if q := l.q.Load(); q != nil {
		return q.CheckBudget(n)
	}
	return nil
}

var _ conn.IdentifyQueue = (*lateQueue)(nil)

// sleepCtx waits d on the orchestrator's clock, or returns ctx's error.
func sleepCtx(ctx context.Context, o *Orchestrator, d time.Duration) error {
	t := o.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// noteCoordinationChange warns when a new policy's coordination block
// differs from the one the process started with: it is read at start only
// (joining another fleet, or leaving one, takes a restart).
func (o *Orchestrator) noteCoordinationChange(p *policy.Policy) {
	cur := o.cfg.Policy.Coordination
	if coordinationEqual(cur, p.Coordination) {
		return
	}
	o.log.Warn("the policy's coordination block changed; it takes effect at the next start, the process keeps its current coordination",
		"running", coordinationSummary(cur), "in_file", coordinationSummary(p.Coordination))
}

func coordinationEqual(a, b *policy.Coordination) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	return x.Kind == y.Kind && x.URL == y.URL && x.BucketPrefix == y.BucketPrefix && x.ProcessID == y.ProcessID &&
		x.LeaseTTL == y.LeaseTTL && x.Interval == y.Interval && x.Replicas == y.Replicas && x.Memory == y.Memory &&
		x.Credentials == y.Credentials && x.StopOnLeaseLoss == y.StopOnLeaseLoss && x.SaveInterval == y.SaveInterval
}

func coordinationSummary(c *policy.Coordination) string {
	if c == nil {
		return "none (in-process)"
	}
	return fmt.Sprintf("%s %s prefix %s", c.Kind, c.URL, c.BucketPrefix)
}
