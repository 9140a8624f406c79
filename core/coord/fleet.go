package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
)

// The buckets a Fleet opens in its Store. natscoord prefixes them
// ("lifeline_members").
const (
	// BucketMembers holds one heartbeat key per live process
	// ("proc.<id>") and the leader key; its TTL is LeaseTTL.
	BucketMembers = "members"
	// BucketSlots holds one key per identify bucket taken in the current
	// window ("bucket.<n>"); its TTL is Window + Margin.
	BucketSlots = "slots"
	// BucketState holds the plan, the shard → owner keys ("owner.<id>")
	// and the shared session-start budget; nothing expires.
	BucketState = "state"
	// BucketResume holds each shard's ResumeState ("shard.<id>").
	BucketResume = "resume"
)

// Settings configures a Fleet. Every process of a fleet must use the same
// ShardCount, LeaseTTL, Window and Margin (the buckets' TTLs are checked:
// Store.Bucket fails with ErrBucketConfig on a mismatch).
type Settings struct {
	// Process is this process's ID, unique in the fleet: letters,
	// digits, '-', '_' and '='. Default: the host name and 6 random hex
	// digits ("bot-7f9c-a41b02").
	Process string
	// ShardCount is the bot's total shard count. Required (> 0).
	ShardCount int
	// Limit is the session-start budget /gateway/bot reported; it seeds
	// the shared budget when the fleet has none yet (see SyncBudget).
	// Default: Discord's (1000 a day, max_concurrency 1).
	Limit conn.SessionStartLimit
	// Window is how long an identify bucket stays taken after an
	// IDENTIFY. Default: 5s, Discord's.
	Window time.Duration
	// Margin is added to Window, as conn.LocalIdentifyQueue does.
	// Default: conn.DefaultIdentifyMargin(Window) (Window/20, at least
	// conn.MinIdentifyMargin).
	Margin time.Duration
	// Day is how long the budget lasts once reset. Default: 24h.
	Day time.Duration
	// LeaseTTL is how long a process's heartbeat lives: a process that
	// stops heartbeating loses its shards LeaseTTL after its last
	// heartbeat. Default: 10s.
	LeaseTTL time.Duration
	// Interval is the heartbeat and reconcile period. Default:
	// LeaseTTL/10, at most 1s.
	Interval time.Duration
	// Settle is how long the first leader of a fresh fleet (no plan in
	// the store yet) waits before writing the first plan, so processes
	// started together each start their own share instead of one
	// process starting every shard and handing most over. Default:
	// LeaseTTL/2.
	Settle time.Duration
	// PollInterval is how often a shard waiting for a taken identify
	// bucket tries again. Default: Margin.
	PollInterval time.Duration
	// RetryInterval is how long a call waits after the store failed
	// before trying again. Default: Interval.
	RetryInterval time.Duration
	// StopTimeout bounds ShardHandler.StopShard during a handover.
	// Default: 30s.
	StopTimeout time.Duration
	// CallTimeout bounds one store call. Default: 5s. A heartbeat's
	// calls are also abandoned after LeaseTTL/4, so that a call the
	// store never answers cannot outlast the lease.
	CallTimeout time.Duration
	// StopOnLeaseLoss makes the process stop its shards when its lease
	// has expired (it could not heartbeat for LeaseTTL): no shard then
	// runs twice when only this process lost the store, at the price of
	// stopping every shard when the store is down for everyone.
	// Default: false, shards keep running and only reconnects wait (see
	// Ownership.Holds).
	StopOnLeaseLoss bool
	// OnUnavailable is called (outside any lock) when a store call fails
	// after the store was reachable; OnAvailable when a call succeeds
	// again. Default: nothing (an ERROR_OCCURRED event and a log line are
	// always emitted).
	OnUnavailable func(err error)
	// OnAvailable: see OnUnavailable.
	OnAvailable func()
	// Clock times heartbeats, polls and the lease. Default: clock.Real.
	// (Bucket TTLs are measured by the store: on NATS, by the server.)
	Clock clock.Clock
	// Events receives ERROR_OCCURRED events (store unreachable, shard
	// lost, handover failures). Default: none.
	Events events.Publisher
	// Logger receives the fleet's logs. Default: hclog's null logger.
	Logger hclog.Logger
}

// Stats are the fleet's counters, for metrics and diagnostics.
type Stats struct {
	// Process is this process's ID.
	Process string `json:"process"`
	// Leader is true while this process is the leader.
	Leader bool `json:"leader"`
	// LeaseValid is true while this process's heartbeat is current.
	LeaseValid bool `json:"lease_valid"`
	// Owned is how many shards this process runs.
	Owned int `json:"owned"`
	// Unavailable is true while the store is unreachable; Since when.
	Unavailable bool      `json:"unavailable"`
	Since       time.Time `json:"since,omitzero"`
	// Outages counts the times the store became unreachable;
	// StoreErrors every failed store call.
	Outages     uint64 `json:"outages"`
	StoreErrors uint64 `json:"store_errors"`
	// IdentifyWaiting is how many shards wait in the identify queue now;
	// IdentifySlots how many slots this process took; IdentifyBusy how
	// many tries found the bucket taken.
	IdentifyWaiting int64  `json:"identify_waiting"`
	IdentifySlots   uint64 `json:"identify_slots"`
	IdentifyBusy    uint64 `json:"identify_busy"`
	// Acquired, Released and Lost count shards taken, handed over, and
	// lost to another process (this one's lease had expired).
	Acquired uint64 `json:"acquired"`
	Released uint64 `json:"released"`
	Lost     uint64 `json:"lost"`
}

// Fleet is the coordinator of one process in a fleet sharing a Store.
type Fleet struct {
	s        Settings
	clk      clock.Clock
	log      hclog.Logger
	pub      events.Publisher
	instance string // random per NewFleet: tells this run from an earlier one with the same ID

	members, slots, state KV
	resume                kvResume

	queue  *fleetQueue
	member *member
	health *fleetHealth

	closed atomic.Bool

	mu          sync.Mutex
	unavailable bool
	since       time.Time
	outages     uint64
	storeErrors uint64
}

// NewFleet opens the fleet's buckets in store and returns this process's
// coordinator. Nothing runs until Ownership().Run; the identify queue and
// the resume store work at once.
func NewFleet(ctx context.Context, store Store, s Settings) (*Fleet, error) {
	if store == nil {
		return nil, fmt.Errorf("coord: fleet: no store")
	}
	if s.ShardCount <= 0 {
		return nil, fmt.Errorf("coord: fleet: ShardCount must be > 0, got %d", s.ShardCount)
	}
	if s.Process == "" {
		s.Process = defaultProcessID()
	}
	if !ValidKey(s.Process) || strings.Contains(s.Process, ".") {
		return nil, fmt.Errorf("coord: fleet: process ID %q: only letters, digits, '-', '_' and '='", s.Process)
	}
	if s.Window <= 0 {
		s.Window = 5 * time.Second
	}
	if s.Margin <= 0 {
		s.Margin = conn.DefaultIdentifyMargin(s.Window)
	}
	if s.Day <= 0 {
		s.Day = 24 * time.Hour
	}
	if s.LeaseTTL <= 0 {
		s.LeaseTTL = 10 * time.Second
	}
	if s.Interval <= 0 {
		s.Interval = min(s.LeaseTTL/10, time.Second)
	}
	if s.Interval >= s.LeaseTTL/2 {
		return nil, fmt.Errorf("coord: fleet: Interval %v must be under half of LeaseTTL %v", s.Interval, s.LeaseTTL)
	}
	if s.Settle <= 0 {
		s.Settle = s.LeaseTTL / 2
	}
	if s.PollInterval <= 0 {
		s.PollInterval = s.Margin
	}
	if s.RetryInterval <= 0 {
		s.RetryInterval = s.Interval
	}
	if s.StopTimeout <= 0 {
		s.StopTimeout = 30 * time.Second
	}
	if s.CallTimeout <= 0 {
		s.CallTimeout = 5 * time.Second
	}
	if s.Limit.Total <= 0 {
		s.Limit.Total = 1000
	}
	if s.Limit.MaxConcurrency <= 0 {
		s.Limit.MaxConcurrency = 1
	}
	if s.Logger == nil {
		s.Logger = hclog.NewNullLogger()
	}
	f := &Fleet{
		s:        s,
		clk:      clock.Or(s.Clock),
		log:      s.Logger.Named("coord"),
		pub:      events.OrDiscard(s.Events),
		instance: randomHex(8),
	}
	open := func(name string, ttl time.Duration) (KV, error) {
		kv, err := store.Bucket(ctx, name, ttl)
		if err != nil {
			return nil, fmt.Errorf("coord: fleet: open bucket %s: %w", name, err)
		}
		return kv, nil
	}
	var err error
	if f.members, err = open(BucketMembers, s.LeaseTTL); err != nil {
		return nil, err
	}
	if f.slots, err = open(BucketSlots, s.Window+s.Margin); err != nil {
		return nil, err
	}
	if f.state, err = open(BucketState, 0); err != nil {
		return nil, err
	}
	rkv, err := open(BucketResume, 0)
	if err != nil {
		return nil, err
	}
	f.resume = kvResume{kv: rkv}
	if err := f.checkShardCount(ctx); err != nil {
		return nil, err
	}
	f.queue = newFleetQueue(f)
	f.member = newMember(f)
	f.health = &fleetHealth{f: f}
	return f, nil
}

// shardsKey is the state bucket's key holding the fleet's shard count.
const shardsKey = "shards"

// checkShardCount records the fleet's shard count when the fleet has none
// yet, and otherwise refuses a process that was given another count
// (ErrShardCount): two processes planning different counts would each run
// shards the other does not know of. A fleet changes its count by
// deleting the state bucket's "shards" key while no process runs (a
// re-shard is a restart of the whole fleet).
func (f *Fleet) checkShardCount(ctx context.Context) error {
	want := strconv.Itoa(f.s.ShardCount)
	err := f.call(ctx, func(ctx context.Context) error {
		_, err := f.state.Create(ctx, shardsKey, []byte(want))
		return err
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrExists) {
		return fmt.Errorf("coord: fleet: record the shard count: %w", err)
	}
	var e Entry
	err = f.call(ctx, func(ctx context.Context) error {
		var err error
		e, err = f.state.Get(ctx, shardsKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("coord: fleet: read the shard count: %w", err)
	}
	if string(e.Value) != want {
		return fmt.Errorf("coord: fleet: the fleet runs %s shards and this process was given %d (every process needs the same count; to change it, stop every process and delete the %q key of the state bucket): %w",
			e.Value, f.s.ShardCount, shardsKey, ErrShardCount)
	}
	return nil
}

// Process returns this process's ID.
func (f *Fleet) Process() string { return f.s.Process }

// Identify implements Coordinator.
func (f *Fleet) Identify() IdentifyQueue { return f.queue }

// Ownership implements Coordinator.
func (f *Fleet) Ownership() Ownership { return f.member }

// Resume implements Coordinator.
func (f *Fleet) Resume() ResumeStore { return f.resume }

// Health implements Coordinator.
func (f *Fleet) Health() HealthBoard { return f.health }

// Close implements Coordinator: later calls fail with ErrClosed. It does
// not hand shards over (Leave does) and does not close the Store.
func (f *Fleet) Close() error {
	f.closed.Store(true)
	return nil
}

// Stats returns the fleet's counters.
func (f *Fleet) Stats() Stats {
	f.mu.Lock()
	st := Stats{
		Process:     f.s.Process,
		Unavailable: f.unavailable,
		Since:       f.since,
		Outages:     f.outages,
		StoreErrors: f.storeErrors,
	}
	f.mu.Unlock()
	f.queue.stats(&st)
	f.member.stats(&st)
	return st
}

// call runs one store operation with CallTimeout and keeps the
// reachability state: a failure wrapping ErrUnavailable starts an outage
// (an event, a log line and OnUnavailable), any answer from the store ends
// it. ErrNotFound, ErrExists and ErrConflict are answers.
func (f *Fleet) call(ctx context.Context, op func(ctx context.Context) error) error {
	return f.callFor(ctx, 0, op)
}

// callFor is call with the operation also abandoned after d on the
// fleet's clock (d <= 0: CallTimeout only), which then counts as the store
// not answering. The heartbeat uses it: a request that was on the wire
// when the connection broke is never answered (the NATS client does not
// send it again once reconnected; a leader-key call made 30 ms before the
// server stopped returned after the whole 5s CallTimeout, long after the
// client was back), and waiting that long can outlast the lease the
// heartbeat keeps.
func (f *Fleet) callFor(ctx context.Context, d time.Duration, op func(ctx context.Context) error) error {
	if f.closed.Load() {
		return ErrClosed
	}
	cctx, cancel := context.WithTimeout(ctx, f.s.CallTimeout)
	if d > 0 {
		t := f.clk.AfterFunc(d, cancel)
		defer t.Stop()
	}
	err := op(cctx)
	cancel()
	switch {
	case err == nil, isAnswer(err):
		f.reachable()
	case ctx.Err() != nil:
		// The caller gave up: says nothing about the store.
		return ctx.Err()
	default:
		if !isUnavailable(err) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		f.unreachable(err)
	}
	return err
}

func isAnswer(err error) bool {
	return errorsIsAny(err, ErrNotFound, ErrExists, ErrConflict)
}

func isUnavailable(err error) bool { return errorsIsAny(err, ErrUnavailable) }

func (f *Fleet) reachable() {
	f.mu.Lock()
	was := f.unavailable
	f.unavailable = false
	since := f.since
	f.mu.Unlock()
	if !was {
		return
	}
	f.log.Info("coordination store reachable again", "down_for", f.clk.Since(since).String())
	if f.s.OnAvailable != nil {
		f.s.OnAvailable()
	}
}

func (f *Fleet) unreachable(err error) {
	f.mu.Lock()
	f.storeErrors++
	was := f.unavailable
	if !was {
		f.unavailable = true
		f.since = f.clk.Now()
		f.outages++
	}
	f.mu.Unlock()
	if was {
		return
	}
	f.log.Warn("coordination store unreachable: no IDENTIFY until it is back; running shards go on", "error", err)
	f.pub.Publish(events.New(f.clk.Now(), events.Error{
		Source:  "coord",
		Kind:    "unavailable",
		Message: "coordination store unreachable: " + err.Error(),
	}))
	if f.s.OnUnavailable != nil {
		f.s.OnUnavailable(err)
	}
}

// sleep waits d on the clock, or until ctx ends.
func (f *Fleet) sleep(ctx context.Context, d time.Duration) error {
	t := f.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func defaultProcessID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "lifeline"
	}
	var b strings.Builder
	for _, r := range host {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String() + "-" + randomHex(3)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
