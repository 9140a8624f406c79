package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
)

// LocalSettings configures a Local coordinator. The zero value is valid:
// one shard, Discord's default budget.
type LocalSettings struct {
	// ShardCount is the bot's shard count. Default: 1.
	ShardCount int
	// Shards is the shards this process runs. Default: nil, every shard
	// from 0 to ShardCount-1.
	Shards []int
	// Limit is the session-start budget /gateway/bot reported. Default:
	// Discord's (1000 a day, max_concurrency 1).
	Limit conn.SessionStartLimit
	// Identify tunes the identify queue (window, margin, day, low-budget
	// warning). Its Clock defaults to Clock.
	Identify conn.IdentifyQueueOptions
	// Process is this process's ID in views. Default: "local".
	Process string
	// Clock times the queue. Default: clock.Real.
	Clock clock.Clock
}

// Local is the coordinator of a process that runs its shards alone, the
// default: the identify queue is a conn.LocalIdentifyQueue, ownership is
// fixed (every shard of Shards), the resume store and the health board live
// in memory. It starts no goroutine and needs no network.
type Local struct {
	process string
	shards  []int
	queue   *conn.LocalIdentifyQueue
	resume  kvResume
	own     *localOwnership
	health  *localHealth
}

// NewLocal returns a Local coordinator.
func NewLocal(s LocalSettings) (*Local, error) {
	if s.ShardCount <= 0 {
		s.ShardCount = 1
	}
	if s.Process == "" {
		s.Process = "local"
	}
	shards := slices.Clone(s.Shards)
	if shards == nil {
		for i := range s.ShardCount {
			shards = append(shards, i)
		}
	}
	slices.Sort(shards)
	shards = slices.Compact(shards)
	for _, id := range shards {
		if id < 0 || id >= s.ShardCount {
			return nil, fmt.Errorf("coord: local: shard %d is outside 0..%d", id, s.ShardCount-1)
		}
	}
	if s.Identify.Clock == nil {
		s.Identify.Clock = s.Clock
	}
	kv, err := NewMemoryStore(s.Clock).Bucket(context.Background(), "resume", 0)
	if err != nil {
		return nil, err
	}
	l := &Local{
		process: s.Process,
		shards:  shards,
		queue:   conn.NewLocalIdentifyQueue(s.Limit, s.Identify),
		resume:  kvResume{kv: kv},
		health:  &localHealth{process: s.Process, count: s.ShardCount},
	}
	l.own = &localOwnership{shards: shards, count: s.ShardCount, process: s.Process, leave: make(chan struct{})}
	l.health.own = l.own
	return l, nil
}

// Identify implements Coordinator.
func (l *Local) Identify() IdentifyQueue { return l.queue }

// Ownership implements Coordinator.
func (l *Local) Ownership() Ownership { return l.own }

// Resume implements Coordinator.
func (l *Local) Resume() ResumeStore { return l.resume }

// Health implements Coordinator.
func (l *Local) Health() HealthBoard { return l.health }

// Close implements Coordinator; a Local holds nothing to release.
func (l *Local) Close() error { return nil }

type localOwnership struct {
	shards  []int
	count   int
	process string

	mu        sync.Mutex
	running   []int
	started   bool
	h         ShardHandler
	leave     chan struct{}
	leaveOnce sync.Once
	done      chan struct{}
}

// Run starts every shard of the process, then waits.
func (o *localOwnership) Run(ctx context.Context, h ShardHandler) error {
	o.mu.Lock()
	if o.started {
		o.mu.Unlock()
		return errors.New("coord: local: Run called twice")
	}
	o.started, o.h, o.done = true, h, make(chan struct{})
	o.mu.Unlock()
	defer close(o.done)
	for _, id := range o.shards {
		select {
		case <-o.leave:
			return nil
		default:
		}
		if err := h.StartShard(ctx, id); err != nil {
			return fmt.Errorf("coord: local: start shard %d: %w", id, err)
		}
		o.mu.Lock()
		o.running = append(o.running, id)
		o.mu.Unlock()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-o.leave:
		return nil
	}
}

// Leave stops every running shard, then ends Run.
func (o *localOwnership) Leave(ctx context.Context) error {
	o.mu.Lock()
	if !o.started {
		o.mu.Unlock()
		return ErrNotStarted
	}
	h, done := o.h, o.done
	o.mu.Unlock()
	o.leaveOnce.Do(func() { close(o.leave) })
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	var errs []error
	for {
		o.mu.Lock()
		if len(o.running) == 0 {
			o.mu.Unlock()
			return errors.Join(errs...)
		}
		id := o.running[0]
		o.running = o.running[1:]
		o.mu.Unlock()
		if err := h.StopShard(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("coord: local: stop shard %d: %w", id, err))
		}
	}
}

func (o *localOwnership) Owned() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := slices.Clone(o.running)
	slices.Sort(out)
	return out
}

func (o *localOwnership) Holds(shard int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Contains(o.running, shard)
}

func (o *localOwnership) Assignments(context.Context) ([]string, error) {
	out := make([]string, o.count)
	for _, id := range o.shards {
		out[id] = o.process
	}
	return out, nil
}

type localHealth struct {
	process string
	count   int
	own     *localOwnership

	mu sync.Mutex
	h  ProcessHealth
}

func (l *localHealth) Publish(h ProcessHealth) {
	l.mu.Lock()
	l.h = h
	l.mu.Unlock()
}

func (l *localHealth) View(context.Context) (FleetView, error) {
	l.mu.Lock()
	h := l.h
	l.mu.Unlock()
	p := ProcessView{ID: l.process, Leader: true, Owned: l.own.Owned(), Health: h}
	return summarize(l.count, l.process, []ProcessView{p}), nil
}

// summarize builds a FleetView from the live processes' views.
func summarize(count int, leader string, procs []ProcessView) FleetView {
	v := FleetView{Processes: len(procs), List: procs, Leader: leader, Shards: count}
	for _, p := range procs {
		v.Owned += len(p.Owned)
		v.Ready += p.Health.Ready
		v.Unhealthy += p.Health.Unhealthy
		v.WorstAckAge = max(v.WorstAckAge, p.Health.WorstAckAge)
		if p.Health.Degradation != "" && p.Health.Degradation != "normal" {
			v.Degraded++
		}
	}
	if count > 0 {
		orphans := max(count-v.Owned, 0)
		v.UnhealthyRatio = float64(min(v.Unhealthy+orphans, count)) / float64(count)
	}
	return v
}
