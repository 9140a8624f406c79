package shard

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/conn"
)

// AddShard starts shard id on a running Dynamic manager and returns once
// its connection is launched, without waiting for READY (the shard comes up
// in the background; its state and events say how it goes). With resume
// set and valid, the shard's first attempt RESUMEs that session instead of
// IDENTIFYing (conn.Config.Resume); otherwise it IDENTIFYs through the
// shared identify queue. The handlers given to AddHandler are added to the
// shard's Session before it connects.
//
// It fails with ErrNotDynamic, ErrNotRunning, ErrStopped, ErrNoSuchShard
// (an ID outside the shard count) or ErrShardRunning (wrapped).
func (m *Manager) AddShard(ctx context.Context, id int, resume *conn.SavedSession) error {
	if !m.cfg.Dynamic {
		return fmt.Errorf("shard: add shard %d: %w", id, ErrNotDynamic)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("shard: add shard %d: %w", id, err)
	}
	m.mu.Lock()
	if err := m.runningLocked(); err != nil {
		m.mu.Unlock()
		return fmt.Errorf("shard: add shard %d: %w", id, err)
	}
	gw, queue, pc, count := m.gw, m.queue, m.pacer, m.count
	if id < 0 || id >= count {
		m.mu.Unlock()
		return fmt.Errorf("shard: add shard %d: %w (the bot has %d shards)", id, ErrNoSuchShard, count)
	}
	if _, ok := m.indexOf(id); ok || m.adding[id] {
		m.mu.Unlock()
		return fmt.Errorf("shard: add shard %d: %w", id, ErrShardRunning)
	}
	if m.adding == nil {
		m.adding = map[int]bool{}
	}
	m.adding[id] = true
	m.mu.Unlock()

	var r *conn.SavedSession
	if resume != nil && resume.Valid() {
		cp := *resume
		r = &cp
	}
	s, err := m.newShard(id, count, gw, queue, pc, r)

	m.mu.Lock()
	delete(m.adding, id)
	if err == nil {
		err = m.runningLocked()
		if err != nil {
			_ = s.conn.Stop(context.Background()) // never started: returns at once
		}
	}
	if err != nil {
		m.mu.Unlock()
		return fmt.Errorf("shard: add shard %d: %w", id, err)
	}
	for _, e := range m.handlers {
		e.removes[s] = s.Session().AddHandler(e.h)
	}
	i, _ := m.indexOf(id)
	// Copy-on-write (see Manager.shards): slices.Insert would shift the
	// elements of a slice a reader may hold.
	next := make([]*Shard, 0, len(m.shards)+1)
	next = append(append(append(next, m.shards[:i]...), s), m.shards[i:]...)
	m.shards = next
	// Counted under the lock Stop takes to mark the manager stopped: Stop
	// waits for this launch before it stops the shards it lists.
	m.launches.Add(1)
	startCtx, cancel := context.WithCancel(m.life)
	s.launched = make(chan struct{})
	s.cancelStart = cancel
	m.mu.Unlock()

	how := "IDENTIFY"
	if r != nil {
		how = "RESUME"
	}
	m.log.Info("shard added", "shard", id, "of", count, "first", how)
	go func() {
		defer m.launches.Done()
		defer close(s.launched)
		defer cancel()
		if err := s.conn.Start(startCtx); err != nil && startCtx.Err() == nil {
			m.log.Error("shard did not start", "shard", id, "error", err)
		}
	}()
	return nil
}

// RemoveShard stops shard id of a running Dynamic manager, closing its
// connection resumably (close code 4000), and returns its session as a
// next owner needs it to RESUME (ok false when the shard had no resumable
// session: never READY, or its session had ended). It returns once the
// connection to Discord has ended (the bot's discordgo Session is closed
// in the background; Stop waits for that), or with ctx's error (the shard
// is then out of the manager's list and stops on its own).
//
// It fails with ErrNotDynamic, ErrNotRunning, ErrStopped or ErrNoSuchShard
// (wrapped).
func (m *Manager) RemoveShard(ctx context.Context, id int) (saved conn.SavedSession, ok bool, err error) {
	if !m.cfg.Dynamic {
		return conn.SavedSession{}, false, fmt.Errorf("shard: remove shard %d: %w", id, ErrNotDynamic)
	}
	m.mu.Lock()
	if err := m.runningLocked(); err != nil {
		m.mu.Unlock()
		return conn.SavedSession{}, false, fmt.Errorf("shard: remove shard %d: %w", id, err)
	}
	i, found := m.indexOf(id)
	if !found {
		m.mu.Unlock()
		return conn.SavedSession{}, false, fmt.Errorf("shard: remove shard %d: %w", id, ErrNoSuchShard)
	}
	s := m.shards[i]
	// Copy-on-write (see Manager.shards): slices.Delete would shift and
	// zero the elements of a slice a reader may hold.
	m.shards = slices.Concat(m.shards[:i], m.shards[i+1:])
	for _, e := range m.handlers {
		if r := e.removes[s]; r != nil {
			r()
			delete(e.removes, s)
		}
	}
	m.launches.Add(1) // Stop waits for this removal too
	m.mu.Unlock()
	defer m.launches.Done()

	began := m.clk.Now()
	// The connection to Discord has ended once Done is closed: nothing is
	// delivered after that, so the session can go to the next owner.
	// Closing the bot's discordgo Session takes a second more (discordgo
	// sleeps in Close); it finishes in the background and Stop waits for
	// it, so a handover does not wait for it.
	//
	// A shard still being launched (AddShard's Start has not returned) has
	// its start cancelled first, and the connection is stopped only once
	// that Start has returned: a Stop that ran before Start had begun
	// found nothing to stop, and the connection Start then brought up ran
	// on, out of the list, with nobody to stop it (two live connections
	// for one shard once its next owner RESUMEs it).
	if s.launched != nil {
		s.cancelStart()
	}
	stopped := make(chan error, 1)
	m.closing.Add(1)
	go func() {
		defer m.closing.Done()
		if s.launched != nil {
			<-s.launched // bounded: Start returns once its ctx is cancelled
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeCloseTimeout)
		defer cancel()
		stopped <- s.conn.Stop(sctx)
	}()
	select {
	case <-s.conn.Done():
	case err := <-stopped:
		if err != nil {
			return conn.SavedSession{}, false, fmt.Errorf("shard: remove shard %d: %w", id, err)
		}
	case <-ctx.Done():
		return conn.SavedSession{}, false, fmt.Errorf("shard: remove shard %d: %w", id, ctx.Err())
	}
	saved, ok = s.conn.SavedSession()
	m.log.Info("shard removed", "shard", id, "resumable", ok, "took", m.clk.Since(began))
	return saved, ok, nil
}

// removeCloseTimeout bounds the background close of a removed shard's
// discordgo Session.
const removeCloseTimeout = 30 * time.Second

// SavedSessions returns the resumable session of every shard the manager
// runs now, by shard ID (shards without one are left out): what a fleet
// stores regularly, so that the shards of a process that dies without
// handing them over are RESUMEd by their next owners.
func (m *Manager) SavedSessions() map[int]conn.SavedSession {
	out := map[int]conn.SavedSession{}
	for _, s := range m.Shards() {
		if saved, ok := s.conn.SavedSession(); ok {
			out[s.id] = saved
		}
	}
	return out
}

// runningLocked returns why shards cannot be added or removed now, nil
// when they can. Called with m.mu held.
func (m *Manager) runningLocked() error {
	switch m.state {
	case running:
		return nil
	case stopped:
		return ErrStopped
	}
	return ErrNotRunning
}

// holdGate is the reconnect gate of a manager with Config.Holds: an attempt
// first waits until the process holds the shard, then in the inner gate.
type holdGate struct {
	inner conn.ReconnectGate
	holds func(shard int) bool
	clk   clock.Clock
	poll  time.Duration
}

func (g holdGate) Wait(ctx context.Context, shard int, resume bool) error {
	for !g.holds(shard) {
		t := g.clk.NewTimer(g.poll)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if g.inner == nil {
		return nil
	}
	return g.inner.Wait(ctx, shard, resume)
}
