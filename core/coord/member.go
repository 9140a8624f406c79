package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/events"
)

const (
	procPrefix  = "proc."
	ownerPrefix = "owner."
	leaderKey   = "leader"
	planKey     = "plan"
)

// memberValue is the JSON of a process's heartbeat key "proc.<id>".
type memberValue struct {
	ID       string        `json:"id"`
	Instance string        `json:"instance"`
	Started  time.Time     `json:"started"`
	Leaving  bool          `json:"leaving,omitempty"`
	Owned    []int         `json:"owned"`
	Health   ProcessHealth `json:"health"`
}

// holderValue is the JSON of a shard's owner key "owner.<id>" and of the
// leader key.
type holderValue struct {
	Process  string `json:"process"`
	Instance string `json:"instance"`
}

// member is a Fleet's Ownership: the heartbeat, the leader's planning and
// the reconcile loop that starts and stops shards.
type member struct {
	f   *Fleet
	key string // proc.<id>

	// hbMu serializes heartbeats and leadMu the leader's rounds: Leave
	// runs one of each beside the loops.
	hbMu, leadMu sync.Mutex

	mu         sync.Mutex
	started    bool
	done       chan struct{}
	leaveReq   chan struct{}
	leaveOnce  sync.Once
	leaving    bool
	h          ShardHandler
	running    map[int]uint64 // shard -> owner key revision
	leaseRev   uint64
	validUntil time.Time
	leader     bool
	leaderRev  uint64
	leadSince  time.Time // when this process became leader with no plan in the store
	health     ProcessHealth
	joined     time.Time
	runErr     error
	// everValid is set once the process has held a lease; graceUntil is
	// when the grace after rejoining ends (see rejoinGrace).
	everValid  bool
	graceUntil time.Time

	acquired, released, lost uint64

	// onLoop, when set (tests), is called after each round of the
	// heartbeat loop ("heartbeat"), of the leader loop ("lead") and of
	// the reconcile loop ("reconcile") in Run.
	onLoop func(loop string)
}

func newMember(f *Fleet) *member {
	return &member{
		f:        f,
		key:      procPrefix + f.s.Process,
		running:  map[int]uint64{},
		leaveReq: make(chan struct{}),
	}
}

func (m *member) stats(st *Stats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st.Leader = m.leader
	st.LeaseValid = m.leaseValidLocked()
	st.Owned = len(m.running)
	st.Acquired, st.Released, st.Lost = m.acquired, m.released, m.lost
}

func (m *member) leaseValidLocked() bool {
	return m.leaseRev != 0 && m.f.clk.Now().Before(m.validUntil)
}

func (m *member) isRunning() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Run implements Ownership.
func (m *member) Run(ctx context.Context, h ShardHandler) error {
	if h == nil {
		return errors.New("coord: fleet: Run needs a ShardHandler")
	}
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("coord: fleet: Run called twice")
	}
	m.started, m.h, m.done, m.joined = true, h, make(chan struct{}), m.f.clk.Now()
	m.mu.Unlock()
	err := m.run(ctx)
	m.mu.Lock()
	m.runErr = err
	close(m.done)
	m.mu.Unlock()
	return err
}

func (m *member) run(ctx context.Context) error {
	f := m.f
	// Join: a valid lease first. While another live process has our ID,
	// wait for its lease to expire.
	reported := false
	for {
		err := m.heartbeat(ctx)
		if errors.Is(err, ErrDuplicateProcess) && !reported {
			reported = true
			f.log.Warn("another live process has this process ID; waiting for its lease to expire", "process", f.s.Process)
			f.pub.Publish(events.New(f.clk.Now(), events.Error{
				Source: "coord", Kind: "duplicate_process", Message: err.Error(),
			}))
		}
		if m.leaseValid() {
			break
		}
		if err := f.sleep(ctx, f.s.RetryInterval); err != nil {
			return err
		}
	}
	f.log.Info("joined the fleet", "process", f.s.Process, "shards", f.s.ShardCount)

	// The heartbeat has a loop of its own: the leader's calls (a plan
	// reads three listings) must never hold up the heartbeat that keeps
	// the lease, least of all while the store is away and a call waits
	// for an answer that will not come.
	hbCtx, stopHB := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := f.clk.NewTicker(f.s.Interval)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C():
			}
			_ = m.heartbeat(hbCtx)
			m.looped("heartbeat")
		}
	})
	wg.Go(func() {
		t := f.clk.NewTicker(f.s.Interval)
		defer t.Stop()
		for {
			m.lead(hbCtx)
			m.looped("lead")
			select {
			case <-hbCtx.Done():
				return
			case <-t.C():
			}
		}
	})
	defer func() { stopHB(); wg.Wait() }()

	t := f.clk.NewTicker(f.s.Interval)
	defer t.Stop()
	for {
		m.reconcile(ctx)
		m.looped("reconcile")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.leaveReq:
			return m.leave(ctx, stopHB, &wg)
		case <-t.C():
		}
	}
}

func (m *member) looped(loop string) {
	if m.onLoop != nil {
		m.onLoop(loop)
	}
}

// leave publishes that this process is leaving, hands every shard over,
// and removes the heartbeat (and leader) key.
func (m *member) leave(ctx context.Context, stopHB context.CancelFunc, wg *sync.WaitGroup) error {
	f := m.f
	_ = m.heartbeat(ctx) // say "leaving": the leader plans without us
	m.lead(ctx)          // if we lead, move our shards now
	for {
		m.reconcile(ctx)
		if len(m.Owned()) == 0 {
			break
		}
		if err := f.sleep(ctx, f.s.RetryInterval); err != nil {
			return err
		}
	}
	stopHB()
	wg.Wait()
	m.mu.Lock()
	rev, leader, lrev := m.leaseRev, m.leader, m.leaderRev
	m.leaseRev, m.leader = 0, false
	m.mu.Unlock()
	// Best effort: the TTLs remove both keys anyway.
	_ = f.call(ctx, func(ctx context.Context) error { return f.members.Delete(ctx, m.key, rev) })
	if leader {
		_ = f.call(ctx, func(ctx context.Context) error { return f.members.Delete(ctx, leaderKey, lrev) })
	}
	f.log.Info("left the fleet", "process", f.s.Process)
	return nil
}

// Leave implements Ownership.
func (m *member) Leave(ctx context.Context) error {
	m.mu.Lock()
	if !m.started {
		m.mu.Unlock()
		return ErrNotStarted
	}
	m.leaving = true
	done := m.done
	m.mu.Unlock()
	m.leaveOnce.Do(func() { close(m.leaveReq) })
	select {
	case <-done:
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.runErr != nil && !errors.Is(m.runErr, context.Canceled) {
			return m.runErr
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Owned implements Ownership.
func (m *member) Owned() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.running))
}

// Holds implements Ownership.
func (m *member) Holds(shard int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.running[shard]
	return ok && m.leaseValidLocked()
}

func (m *member) leaseValid() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leaseValidLocked()
}

// Assignments implements Ownership.
func (m *member) Assignments(ctx context.Context) ([]string, error) {
	p, _, err := m.readPlan(ctx)
	if err != nil {
		return nil, err
	}
	return p.Owners, nil
}

// heartbeat writes this process's key: Create to join (or rejoin after the
// lease expired), Update (refreshing the TTL) otherwise. The lease is
// valid until the send time plus 90% of LeaseTTL: the store starts the
// TTL when it receives the write, later than the send, so this process
// always considers its lease gone before the others can.
//
// Each store call of a heartbeat is abandoned after a quarter of LeaseTTL
// (heartbeatTimeout): the next heartbeat then goes out on whatever
// connection the store client has by then, in time to keep the lease.
//
// A heartbeat that succeeds after the lease ran out (before it was sent,
// or while it waited for the store, or its key had expired in the store)
// is a rejoin, and starts the grace (inGrace) from the moment it
// succeeded: LeaseTTL from then, whenever the heartbeat was sent.
func (m *member) heartbeat(ctx context.Context) error {
	m.hbMu.Lock()
	defer m.hbMu.Unlock()
	f := m.f
	m.mu.Lock()
	v := memberValue{
		ID: f.s.Process, Instance: f.instance, Started: m.joined, Leaving: m.leaving,
		Owned: slices.Sorted(maps.Keys(m.running)), Health: m.health,
	}
	rev := m.leaseRev
	lapsed := m.everValid && !m.leaseValidLocked()
	prevUntil := m.validUntil
	m.mu.Unlock()
	b, _ := json.Marshal(v)
	sent := f.clk.Now()
	expired := false // the store no longer had our key
	var nrev uint64
	var err error
	for range 3 {
		err = f.callFor(ctx, m.heartbeatTimeout(), func(ctx context.Context) error {
			var err error
			if rev == 0 {
				nrev, err = f.members.Create(ctx, m.key, b)
			} else {
				nrev, err = f.members.Update(ctx, m.key, b, rev)
			}
			return err
		})
		if err == nil || !isAnswer(err) {
			break
		}
		if errors.Is(err, ErrNotFound) {
			// Our key expired: the lease was lost. Join again.
			f.log.Warn("lease expired; rejoining", "process", f.s.Process)
			m.mu.Lock()
			m.validUntil = time.Time{}
			m.mu.Unlock()
			rev, expired = 0, true
			continue
		}
		// ErrExists or ErrConflict: the key is there, written by us (an
		// answer we did not see) or by another process with our ID; or,
		// for an Update, gone (the store reports a revision mismatch).
		var e Entry
		gerr := f.callFor(ctx, m.heartbeatTimeout(), func(ctx context.Context) error {
			var err error
			e, err = f.members.Get(ctx, m.key)
			return err
		})
		if gerr != nil {
			err = gerr
			if errors.Is(gerr, ErrNotFound) {
				rev, expired = 0, true
				continue
			}
			break
		}
		var cur memberValue
		if json.Unmarshal(e.Value, &cur) != nil || cur.Instance != f.instance {
			return fmt.Errorf("coord: fleet: process %q: %w", f.s.Process, ErrDuplicateProcess)
		}
		rev = e.Revision
	}
	if err != nil {
		return err
	}
	now := f.clk.Now()
	m.mu.Lock()
	rejoin := m.everValid && (lapsed || expired || !now.Before(prevUntil))
	m.leaseRev = nrev
	m.validUntil = sent.Add(f.s.LeaseTTL - f.s.LeaseTTL/10)
	m.everValid = true
	if rejoin {
		m.graceUntil = now.Add(f.s.LeaseTTL)
	}
	m.mu.Unlock()
	if rejoin {
		f.log.Info("lease valid again after it ran out; no shard moves for one lease while the other processes rejoin",
			"process", f.s.Process, "until", now.Add(f.s.LeaseTTL))
	}
	return nil
}

// heartbeatTimeout bounds each store call of a heartbeat: a quarter of
// LeaseTTL (CallTimeout when that is shorter), so at least three
// heartbeats are tried before the lease of the last good one runs out.
func (m *member) heartbeatTimeout() time.Duration {
	return min(m.f.s.LeaseTTL/4, m.f.s.CallTimeout)
}

// inGrace reports whether this process rejoined less than one LeaseTTL
// ago after its lease ran out. Its lease ran out because it could not
// reach the store; the others may not have reached it either, and then
// their heartbeat keys expired too although they are alive and still run
// their shards. Until each has had LeaseTTL to heartbeat again, a missing
// heartbeat proves nothing: this process neither replans the fleet as its
// leader nor takes a shard from a holder it believes dead. Shards whose
// owner key is free are still taken. The grace counts from when the
// heartbeat that rejoined succeeded, not from when it was sent: one sent
// while the store was away may be answered only seconds later.
func (m *member) inGrace() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.f.clk.Now().Before(m.graceUntil)
}

// lead takes or keeps the leader key and, while leading, plans, only
// under a valid lease and out of the grace. Both are checked again once
// the leader key's call has returned: a call made just before the store
// went away can return only when it is back (NATS buffers requests while
// it reconnects, and answers a lost one never), by which time the lease
// may have run out. This process has then not rejoined yet, and a plan
// from the members listed now would hold only those back first: every
// other process would hand its shards over to them, and get them back
// at the next plan.
func (m *member) lead(ctx context.Context) {
	m.leadMu.Lock()
	defer m.leadMu.Unlock()
	f := m.f
	if !m.leaseValid() {
		return
	}
	m.mu.Lock()
	leader, rev := m.leader, m.leaderRev
	m.mu.Unlock()
	b, _ := json.Marshal(holderValue{Process: f.s.Process, Instance: f.instance})
	var nrev uint64
	err := f.call(ctx, func(ctx context.Context) error {
		var err error
		if leader {
			nrev, err = f.members.Update(ctx, leaderKey, b, rev)
		} else {
			nrev, err = f.members.Create(ctx, leaderKey, b)
		}
		return err
	})
	switch {
	case err == nil:
		if !leader {
			f.log.Info("became the fleet's leader", "process", f.s.Process)
		}
		m.mu.Lock()
		m.leader, m.leaderRev = true, nrev
		m.mu.Unlock()
	case isAnswer(err):
		if leader {
			f.log.Warn("lost the fleet's leadership", "process", f.s.Process)
		}
		m.mu.Lock()
		m.leader, m.leadSince = false, time.Time{}
		m.mu.Unlock()
		return
	default:
		return // unreachable: keep what we believe; the TTL decides
	}
	if !m.leaseValid() {
		return // the call outlived the lease: rejoin (heartbeat) first
	}
	if m.inGrace() {
		return // the others may not have rejoined yet: keep the plan
	}
	m.replan(ctx)
}

// mayPlan reports whether this process may write a plan now: its lease
// is valid and it is out of the grace after a rejoin.
func (m *member) mayPlan() bool {
	return m.leaseValid() && !m.inGrace()
}

// readPlan returns the stored plan (an empty one when none) with its
// revision (0 when none), its Owners sized to ShardCount.
func (m *member) readPlan(ctx context.Context) (plan, uint64, error) {
	f := m.f
	var e Entry
	err := f.call(ctx, func(ctx context.Context) error {
		var err error
		e, err = f.state.Get(ctx, planKey)
		return err
	})
	var p plan
	switch {
	case err == nil:
		if err := json.Unmarshal(e.Value, &p); err != nil {
			return plan{}, 0, fmt.Errorf("coord: fleet: stored plan is not JSON: %w", err)
		}
	case errors.Is(err, ErrNotFound):
	default:
		return plan{}, 0, fmt.Errorf("coord: fleet: read plan: %w", err)
	}
	owners := make([]string, f.s.ShardCount)
	copy(owners, p.Owners)
	p.Owners = owners
	return p, e.Revision, nil
}

// listMembers returns the live processes by ID.
func (m *member) listMembers(ctx context.Context) (map[string]memberValue, error) {
	f := m.f
	var es []Entry
	err := f.call(ctx, func(ctx context.Context) error {
		var err error
		es, err = f.members.List(ctx, procPrefix)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]memberValue, len(es))
	for _, e := range es {
		var v memberValue
		if json.Unmarshal(e.Value, &v) != nil || v.ID == "" {
			continue
		}
		out[v.ID] = v
	}
	return out, nil
}

type ownerEntry struct {
	holderValue
	rev uint64
}

// listOwners returns the shard → owner keys.
func (m *member) listOwners(ctx context.Context) (map[int]ownerEntry, error) {
	f := m.f
	var es []Entry
	err := f.call(ctx, func(ctx context.Context) error {
		var err error
		es, err = f.state.List(ctx, ownerPrefix)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[int]ownerEntry, len(es))
	for _, e := range es {
		id, err := strconv.Atoi(strings.TrimPrefix(e.Key, ownerPrefix))
		if err != nil || id < 0 {
			continue
		}
		var v holderValue
		if json.Unmarshal(e.Value, &v) != nil {
			continue
		}
		out[id] = ownerEntry{holderValue: v, rev: e.Revision}
	}
	return out, nil
}

// readOwner reads shard s's owner key itself; ok is false when it has
// none (or an unreadable one, which listOwners leaves out too). A listing
// can miss a key that exists (natscoord's List explains how NATS does),
// so a key absent from one is read before this process acts on its
// absence: stopping a running shard over an owner key the listing only
// missed costs a reconnect.
func (m *member) readOwner(ctx context.Context, s int) (o ownerEntry, ok bool, err error) {
	f := m.f
	var e Entry
	err = f.call(ctx, func(ctx context.Context) error {
		var err error
		e, err = f.state.Get(ctx, ownerPrefix+strconv.Itoa(s))
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return ownerEntry{}, false, nil
	case err != nil:
		return ownerEntry{}, false, err
	}
	var v holderValue
	if json.Unmarshal(e.Value, &v) != nil {
		return ownerEntry{}, false, nil
	}
	return ownerEntry{holderValue: v, rev: e.Revision}, true, nil
}

// readMember reads process id's heartbeat key itself, for the reason
// readOwner gives: a process is planned out, or its shards taken, only
// once its heartbeat key is really gone, not because a listing missed it.
func (m *member) readMember(ctx context.Context, id string) (v memberValue, ok bool, err error) {
	f := m.f
	var e Entry
	err = f.call(ctx, func(ctx context.Context) error {
		var err error
		e, err = f.members.Get(ctx, procPrefix+id)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return memberValue{}, false, nil
	case err != nil:
		return memberValue{}, false, err
	}
	if json.Unmarshal(e.Value, &v) != nil || v.ID != id {
		return memberValue{}, false, nil
	}
	return v, true, nil
}

// replan computes the assignment from the live, non-leaving processes and
// writes it when it changed (compare-and-swap: a second leader's write
// fails rather than overwrites). It plans only from a listing that holds
// this process's own heartbeat (this run's instance): one without it was
// read after this process's key expired and before it rejoined, when the
// processes listed are only those back first. And it writes only while
// mayPlan still holds after its reads.
func (m *member) replan(ctx context.Context) {
	f := m.f
	members, err := m.listMembers(ctx)
	if err != nil {
		return
	}
	if self, ok := members[f.s.Process]; !ok || self.Instance != f.instance {
		return
	}
	prev, rev, err := m.readPlan(ctx)
	if err != nil {
		return
	}
	owners, err := m.listOwners(ctx)
	if err != nil {
		return
	}
	// A process the plan or an owner key names but the listing lacks is
	// planned out only once its heartbeat key is read and not there.
	named := map[string]bool{}
	for _, p := range prev.Owners {
		named[p] = true
	}
	for _, o := range owners {
		named[o.Process] = true
	}
	for p := range named {
		if _, ok := members[p]; ok || p == "" {
			continue
		}
		v, ok, err := m.readMember(ctx, p)
		if err != nil {
			return
		}
		if ok {
			members[p] = v
		}
	}
	var live []string
	for id, v := range members {
		if !v.Leaving {
			live = append(live, id)
		}
	}
	slices.Sort(live)
	current := slices.Clone(prev.Owners)
	for s, o := range owners {
		if s >= len(current) {
			continue
		}
		if v, ok := members[current[s]]; current[s] == "" || !ok || v.Leaving {
			if v, ok := members[o.Process]; ok && v.Instance == o.Instance {
				current[s] = o.Process
			}
		}
	}
	if rev == 0 {
		// A fresh fleet: give the other processes starting with this one
		// Settle to join, rather than starting every shard here and
		// handing most of them over at once.
		m.mu.Lock()
		if m.leadSince.IsZero() {
			m.leadSince = f.clk.Now()
		}
		early := f.clk.Since(m.leadSince) < f.s.Settle
		m.mu.Unlock()
		if early {
			return
		}
	}
	next := assign(f.s.ShardCount, current, live)
	if rev != 0 && slices.Equal(next, prev.Owners) {
		return
	}
	if !m.mayPlan() {
		return // the reads outlived the lease, or a rejoin began meanwhile
	}
	p := plan{Generation: prev.Generation + 1, Leader: f.s.Process, Owners: next}
	b, _ := json.Marshal(p)
	err = f.call(ctx, func(ctx context.Context) error {
		var err error
		if rev == 0 {
			_, err = f.state.Create(ctx, planKey, b)
		} else {
			_, err = f.state.Update(ctx, planKey, b, rev)
		}
		return err
	})
	if err == nil {
		f.log.Info("new shard plan", "generation", p.Generation, "processes", len(live))
	}
}

// reconcile makes this process run exactly the shards the plan gives it
// and it may hold: it stops shards it lost, hands over shards planned
// elsewhere (stop, then delete the owner key), and takes shards planned
// here whose owner key is free or held by a dead process (create the
// owner key, then start).
func (m *member) reconcile(ctx context.Context) {
	f := m.f
	m.mu.Lock()
	h := m.h
	m.mu.Unlock()
	if h == nil {
		return
	}
	if f.s.StopOnLeaseLoss && !m.leaseValid() {
		// Before any store call: the store is likely what we lost.
		for _, s := range m.Owned() {
			m.stopLost(ctx, h, s, "this process's lease expired (StopOnLeaseLoss)")
		}
	}
	p, _, err := m.readPlan(ctx)
	if err != nil {
		return
	}
	owners, err := m.listOwners(ctx)
	if err != nil {
		return
	}
	members, err := m.listMembers(ctx)
	if err != nil {
		return
	}
	m.mu.Lock()
	leaseOK := m.leaseValidLocked()
	leaving := m.leaving
	running := maps.Clone(m.running)
	m.mu.Unlock()

	// 1. Shards whose owner key is no longer ours: another process took
	// them after our lease expired. Stop them here, touch no key. A key
	// the listing lacks is read first (readOwner); a shard whose key
	// cannot be read is left running until the next reconcile.
	for s := range running {
		o, ok := owners[s]
		if !ok {
			var err error
			if o, ok, err = m.readOwner(ctx, s); err != nil {
				continue
			}
			if ok {
				owners[s] = o
			}
		}
		if ok && o.Process == f.s.Process && o.Instance == f.instance {
			continue
		}
		m.stopLost(ctx, h, s, "its owner key is gone or another process's")
		delete(running, s)
	}
	mine := func(s int) bool { return !leaving && s < len(p.Owners) && p.Owners[s] == f.s.Process }

	// 2. Hand over shards planned elsewhere, in parallel.
	var wg sync.WaitGroup
	for s, rev := range running {
		if mine(s) {
			continue
		}
		wg.Go(func() { m.release(ctx, h, s, rev) })
	}
	wg.Wait()

	// 3. Owner keys with our ID that we do not run: left by an earlier
	// run of this process ID, or by a start or handover that failed
	// halfway.
	for s, o := range owners {
		if o.Process != f.s.Process {
			continue
		}
		if _, ok := running[s]; ok {
			continue
		}
		if o.Instance == f.instance && mine(s) && leaseOK {
			m.start(ctx, h, s, o.rev)
			continue
		}
		if err := f.call(ctx, func(ctx context.Context) error { return f.state.Delete(ctx, ownerPrefix+strconv.Itoa(s), o.rev) }); err == nil {
			delete(owners, s)
		}
	}

	// 4. Take the shards planned here. The lease and the grace are
	// checked again before each shard: a store call above may have
	// waited out an outage.
	if !leaseOK || leaving {
		return
	}
	read := map[string]bool{} // holders whose heartbeat key was read
	for s := range f.s.ShardCount {
		if !mine(s) {
			continue
		}
		if _, ok := running[s]; ok {
			continue
		}
		if !m.leaseValid() {
			return
		}
		key := ownerPrefix + strconv.Itoa(s)
		if o, ok := owners[s]; ok {
			if v, live := members[o.Process]; live && v.Instance == o.Instance {
				continue // its holder is alive: it hands over on its own
			}
			if m.inGrace() {
				continue // its holder may be alive and not yet rejoined
			}
			if !read[o.Process] {
				// Not in the listing: read its heartbeat key before
				// believing it dead.
				v, ok, err := m.readMember(ctx, o.Process)
				if err != nil {
					continue
				}
				read[o.Process] = true
				if ok {
					members[o.Process] = v
					if v.Instance == o.Instance {
						continue
					}
				}
			}
			// The holder's lease expired: it is dead (or cut off, and
			// then it no longer reconnects the shard).
			if err := f.call(ctx, func(ctx context.Context) error { return f.state.Delete(ctx, key, o.rev) }); err != nil {
				continue
			}
			f.log.Info("taking a shard from a dead process", "shard", s, "from", o.Process)
		}
		b, _ := json.Marshal(holderValue{Process: f.s.Process, Instance: f.instance})
		var rev uint64
		err := f.call(ctx, func(ctx context.Context) error {
			var err error
			rev, err = f.state.Create(ctx, key, b)
			return err
		})
		if err != nil {
			continue
		}
		m.start(ctx, h, s, rev)
	}
}

// start runs h.StartShard for a shard whose owner key (at rev) is ours;
// on failure the key is given back.
func (m *member) start(ctx context.Context, h ShardHandler, s int, rev uint64) {
	f := m.f
	m.mu.Lock()
	m.running[s] = rev // before StartShard: its identify queue Wait checks Holds
	m.mu.Unlock()
	if err := h.StartShard(ctx, s); err != nil {
		m.mu.Lock()
		delete(m.running, s)
		m.mu.Unlock()
		f.log.Error("starting a shard failed; giving it back", "shard", s, "error", err)
		f.pub.Publish(events.ForShard(f.clk.Now(), s, events.Error{
			Source: "coord", Kind: "shard_start", Message: "start after taking ownership: " + err.Error(),
		}))
		_ = f.call(ctx, func(ctx context.Context) error { return f.state.Delete(ctx, ownerPrefix+strconv.Itoa(s), rev) })
		return
	}
	m.mu.Lock()
	m.acquired++
	m.mu.Unlock()
	f.log.Info("shard acquired", "shard", s)
}

// release stops a shard planned elsewhere, then frees its owner key.
func (m *member) release(ctx context.Context, h ShardHandler, s int, rev uint64) {
	f := m.f
	sctx, cancel := context.WithTimeout(ctx, f.s.StopTimeout)
	err := h.StopShard(sctx, s)
	cancel()
	if err != nil {
		f.log.Error("stopping a shard for handover failed; will try again", "shard", s, "error", err)
		f.pub.Publish(events.ForShard(f.clk.Now(), s, events.Error{
			Source: "coord", Kind: "handover", Message: "stop for handover: " + err.Error(),
		}))
		return
	}
	m.mu.Lock()
	delete(m.running, s)
	m.released++
	m.mu.Unlock()
	// If this fails the key stays ours; the next reconcile deletes it
	// (step 3).
	_ = f.call(ctx, func(ctx context.Context) error { return f.state.Delete(ctx, ownerPrefix+strconv.Itoa(s), rev) })
	f.log.Info("shard handed over", "shard", s)
}

// stopLost stops a shard this process no longer owns.
func (m *member) stopLost(ctx context.Context, h ShardHandler, s int, why string) {
	f := m.f
	m.mu.Lock()
	delete(m.running, s)
	m.lost++
	m.mu.Unlock()
	f.log.Warn("shard lost", "shard", s, "why", why)
	f.pub.Publish(events.ForShard(f.clk.Now(), s, events.Error{
		Source: "coord", Kind: "shard_lost", Message: "shard lost: " + why,
	}))
	sctx, cancel := context.WithTimeout(ctx, f.s.StopTimeout)
	defer cancel()
	if err := h.StopShard(sctx, s); err != nil {
		f.log.Error("stopping a lost shard failed", "shard", s, "error", err)
	}
}
