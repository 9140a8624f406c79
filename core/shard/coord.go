package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/coord"
)

// CoordHandler makes a Dynamic Manager the coord.ShardHandler of a fleet
// (or of a Local coordinator): the coordinator decides which shards this
// process runs, the Manager runs them, and the resume store carries each
// shard's session from one owner to the next.
//
//   - StartShard loads the shard's ResumeState and AddShards it with that
//     session, so the shard RESUMEs where its previous owner left off (a
//     handover or a restart costs no IDENTIFY while the session is
//     resumable); without a state, or when Discord refuses the RESUME, it
//     IDENTIFYs through the identify queue.
//   - StopShard RemoveShards it (close code 4000, the session stays
//     resumable) and then saves its session, so that the next owner,
//     which gets the shard only after StopShard returns, finds it. A
//     shard this process no longer Holds (taken by another process after
//     this one's lease expired) is stopped without saving.
//   - SaveAll stores the session of every running shard: the owner's
//     orchestrator calls it regularly, so a process killed without a
//     handover still leaves its shards resumable (from a sequence at most
//     one save old: the next owner may then deliver a few dispatches
//     this process delivered already, never fewer).
//
// Its fields must be set before use and not changed after.
type CoordHandler struct {
	// Manager runs the shards; it must be Dynamic and started.
	Manager *Manager
	// Resume stores the shards' sessions (a Coordinator's Resume()).
	Resume coord.ResumeStore
	// Process is this process's ID, recorded with each saved state.
	Process string
	// Holds, when set, says whether this process still owns a shard (a
	// coordinator's Ownership().Holds). A shard is saved only while it
	// does: a shard stopped because another process took it (this
	// process's lease had expired) must not overwrite the new owner's
	// session with this one's. Default: nil, always save.
	Holds func(shard int) bool

	mu    sync.Mutex
	saved map[int]conn.SavedSession // the last state saved per shard
	// locks serializes, per shard, a StopShard and SaveAll's save, so a
	// regular save never lands after the handover's (which would give
	// the next owner an older sequence, or an older session than its own).
	locks map[int]*sync.Mutex
}

func (h *CoordHandler) lock(id int) func() {
	h.mu.Lock()
	if h.locks == nil {
		h.locks = map[int]*sync.Mutex{}
	}
	l := h.locks[id]
	if l == nil {
		l = &sync.Mutex{}
		h.locks[id] = l
	}
	h.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// StartShard implements coord.ShardHandler.
func (h *CoordHandler) StartShard(ctx context.Context, id int) error {
	var resume *conn.SavedSession
	st, ok, err := h.Resume.Load(ctx, id)
	switch {
	case err != nil:
		// Without the store the shard can still IDENTIFY (the identify
		// queue waits for the store itself): a missing state only costs
		// a session start.
		h.Manager.log.Warn("no resume state: the shard will IDENTIFY", "shard", id, "error", err)
	case ok && st.SessionID != "":
		resume = &conn.SavedSession{SessionID: st.SessionID, Sequence: st.Sequence, ResumeURL: st.ResumeURL, User: st.User}
	}
	return h.Manager.AddShard(ctx, id, resume)
}

// StopShard implements coord.ShardHandler.
func (h *CoordHandler) StopShard(ctx context.Context, id int) error {
	defer h.lock(id)()
	saved, ok, err := h.Manager.RemoveShard(ctx, id)
	if errors.Is(err, ErrNoSuchShard) {
		return nil // never started, or already stopped: nothing to hand over
	}
	if err != nil {
		return err
	}
	if h.Holds != nil && !h.Holds(id) {
		// Lost to another process, not handed over: its state is the new
		// owner's to write.
		h.forget(id)
		return nil
	}
	if !ok {
		// No resumable session: make sure the next owner does not try an
		// older one of this shard first.
		if err := h.Resume.Delete(ctx, id); err != nil {
			return fmt.Errorf("shard: stop shard %d: %w", id, err)
		}
		h.forget(id)
		return nil
	}
	if err := h.save(ctx, id, saved); err != nil {
		return fmt.Errorf("shard: stop shard %d: %w", id, err)
	}
	h.forget(id)
	return nil
}

// SaveAll stores the session of every shard the manager runs whose
// session or sequence changed since the last save, and returns how many
// it saved. It stops at the first store error.
func (h *CoordHandler) SaveAll(ctx context.Context) (int, error) {
	n := 0
	for _, sh := range h.Manager.Shards() {
		saved, err := h.saveOne(ctx, sh.id)
		if err != nil {
			return n, err
		}
		if saved {
			n++
		}
	}
	return n, nil
}

// saveOne saves shard id's session if the manager still runs it and it
// changed since the last save.
func (h *CoordHandler) saveOne(ctx context.Context, id int) (bool, error) {
	defer h.lock(id)()
	sh := h.Manager.Shard(id)
	if sh == nil {
		return false, nil // stopped meanwhile: StopShard saved it
	}
	if h.Holds != nil && !h.Holds(id) {
		return false, nil
	}
	s, ok := sh.conn.SavedSession()
	if !ok {
		return false, nil
	}
	h.mu.Lock()
	last, had := h.saved[id]
	h.mu.Unlock()
	if had && last.SessionID == s.SessionID && last.Sequence == s.Sequence && last.ResumeURL == s.ResumeURL {
		return false, nil
	}
	if err := h.save(ctx, id, s); err != nil {
		return false, fmt.Errorf("shard: save the session of shard %d: %w", id, err)
	}
	return true, nil
}

func (h *CoordHandler) save(ctx context.Context, id int, s conn.SavedSession) error {
	st := coord.ResumeState{Shard: id, SessionID: s.SessionID, Sequence: s.Sequence, ResumeURL: s.ResumeURL,
		User: s.User, Process: h.Process, SavedAt: h.Manager.clk.Now().UTC()}
	if err := h.Resume.Save(ctx, st); err != nil {
		return err
	}
	h.mu.Lock()
	if h.saved == nil {
		h.saved = map[int]conn.SavedSession{}
	}
	h.saved[id] = s
	h.mu.Unlock()
	return nil
}

func (h *CoordHandler) forget(id int) {
	h.mu.Lock()
	delete(h.saved, id)
	h.mu.Unlock()
}

var _ coord.ShardHandler = (*CoordHandler)(nil)
