package discordtest

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// bufItem is one dispatch kept for sending and replay.
type bufItem struct {
	seq  int64
	typ  string
	data []byte
}

// session is one gateway session: its sequence, the dispatches kept for
// RESUME, and the connection carrying it, if any.
type session struct {
	srv       *Server
	id        string
	shard     [2]int
	guilds    []Guild
	createdAt time.Time

	// mu guards the fields below. Lock order: Server.mu, then
	// session.mu, then the gwConn locks.
	mu          sync.Mutex
	seq         int64
	buf         []bufItem // contiguous sequences, oldest first
	conn        *gwConn
	sentUpTo    int64 // highest sequence queued on conn
	replayUntil int64 // sequences up to this one are replays on conn
	acked       int64
	ended       bool
	expired     bool
	detachedAt  time.Time
	expiry      clock.Timer
	nextGuild   int
}

func newSession(srv *Server, id string, shard [2]int, guilds []Guild) *session {
	return &session{srv: srv, id: id, shard: shard, guilds: guilds, createdAt: srv.clk.Now()}
}

func (ss *session) isEnded() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.ended
}

func (ss *session) info() Session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := Session{ID: ss.id, Shard: ss.shard, Seq: ss.seq, Connected: ss.conn != nil}
	if ss.conn != nil {
		out.ConnID = ss.conn.id
	}
	return out
}

// dispatch assigns the next sequence to a dispatch, keeps it for replay,
// and queues it on the session's connection unless dispatches are stalled.
// It returns the sequence, or 0 when the session has ended.
func (ss *session) dispatch(typ string, d any) int64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.dispatchLocked(typ, d)
}

func (ss *session) dispatchLocked(typ string, d any) int64 {
	if ss.ended {
		return 0
	}
	ss.seq++
	seq := ss.seq
	t := typ
	data, err := json.Marshal(outPayload{Op: OpDispatch, D: d, S: &seq, T: &t})
	if err != nil {
		// Only the fake's own payload types reach here; they always
		// marshal. Keep the sequence contiguous with a null payload.
		data, _ = json.Marshal(outPayload{Op: OpDispatch, S: &seq, T: &t})
	}
	now := ss.srv.clk.Now()
	ss.srv.ledger.dispatch(ss.id, seq, typ, now)
	ss.buf = append(ss.buf, bufItem{seq: seq, typ: typ, data: data})
	if over := len(ss.buf) - ss.srv.cfg.ReplayBuffer; over > 0 {
		var unsent []int64
		for _, it := range ss.buf[:over] {
			if it.seq > ss.sentUpTo {
				unsent = append(unsent, it.seq)
			}
		}
		if len(unsent) > 0 {
			ss.srv.ledger.unreplayable(ss.id, unsent)
			ss.sentUpTo = unsent[len(unsent)-1]
		}
		ss.buf = append([]bufItem(nil), ss.buf[over:]...)
	}
	ss.flushLocked()
	return seq
}

// flushLocked queues every kept dispatch above sentUpTo on the connection,
// in order, unless dispatches of this shard are stalled.
func (ss *session) flushLocked() {
	c := ss.conn
	if c == nil || len(ss.buf) == 0 {
		return
	}
	if _, stalled := ss.srv.faults.find(FaultStallDispatches, ss.shard[0], ss.srv.clk.Now()); stalled {
		return
	}
	start := ss.sentUpTo + 1 - ss.buf[0].seq
	if start < 0 {
		start = 0
	}
	for i := start; i < int64(len(ss.buf)); i++ {
		it := ss.buf[i]
		c.enqueue(outItem{
			data: it.data, op: OpDispatch, seq: it.seq, typ: it.typ,
			replay: it.seq <= ss.replayUntil, sessionID: ss.id,
		})
		ss.sentUpTo = it.seq
	}
}

func (ss *session) flush() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.flushLocked()
}

// ack records a sequence the client reported.
func (ss *session) ack(seq int64, connID int64, via AckVia) {
	ss.mu.Lock()
	if seq > ss.acked {
		ss.acked = seq
	}
	ss.mu.Unlock()
	ss.srv.ledger.ack(ss.id, AckRecord{At: ss.srv.clk.Now(), ConnID: connID, Seq: seq, Via: via})
}

// detach unbinds c from the session, which stays resumable for
// SessionExpiry.
func (ss *session) detach(c *gwConn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.conn != c || ss.ended {
		return
	}
	ss.conn = nil
	ss.detachedAt = ss.srv.clk.Now()
	if ss.expiry != nil {
		ss.expiry.Stop()
		ss.expiry = nil
	}
	if !ss.srv.isClosed() {
		ss.expiry = ss.srv.clk.AfterFunc(ss.srv.cfg.SessionExpiry, ss.expire)
	}
}

func (ss *session) expire() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.conn != nil || ss.ended {
		return
	}
	ss.expired = true
	ss.endLocked("expired")
}

// stopTimer stops the expiry timer (on Close).
func (ss *session) stopTimer() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.expiry != nil {
		ss.expiry.Stop()
		ss.expiry = nil
	}
}

// end ends the session for good (op 9 d=false, 4009, a 1000 close...).
func (ss *session) end(reason string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.endLocked(reason)
}

func (ss *session) endLocked(reason string) {
	if ss.ended {
		return
	}
	ss.ended = true
	ss.conn = nil
	if ss.expiry != nil {
		ss.expiry.Stop()
	}
	ss.srv.ledger.endSession(ss.id, ss.srv.clk.Now(), reason)
}

// resumeResult says how a RESUME went.
type resumeResult int

const (
	resumeOK resumeResult = iota
	resumeInvalid
	resumeExpired
	resumeBadSeq
)

// resume binds c to the session, replays what the client missed after
// fromSeq, then sends RESUMED. A connection still bound is returned so the
// caller can drop it.
func (ss *session) resume(c *gwConn, fromSeq int64) (resumeResult, *gwConn) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.srv.clk.Now()
	if !ss.ended && ss.conn == nil && !ss.detachedAt.IsZero() && now.Sub(ss.detachedAt) >= ss.srv.cfg.SessionExpiry {
		ss.expired = true
		ss.endLocked("expired")
	}
	switch {
	case ss.expired:
		return resumeExpired, nil
	case ss.ended:
		return resumeInvalid, nil
	case fromSeq < 0 || fromSeq > ss.seq:
		return resumeBadSeq, nil
	}
	if len(ss.buf) > 0 && fromSeq < ss.seq && fromSeq+1 < ss.buf[0].seq {
		var gap []int64
		for q := fromSeq + 1; q < ss.buf[0].seq; q++ {
			gap = append(gap, q)
		}
		ss.srv.ledger.unreplayable(ss.id, gap)
		ss.endLocked("replay buffer overrun")
		return resumeInvalid, nil
	}
	old := ss.conn
	if ss.expiry != nil {
		ss.expiry.Stop()
		ss.expiry = nil
	}
	ss.conn = c
	ss.sentUpTo = fromSeq
	ss.replayUntil = ss.seq
	if fromSeq > ss.acked {
		ss.acked = fromSeq
	}
	var replayed []int64
	for q := fromSeq + 1; q <= ss.seq; q++ {
		replayed = append(replayed, q)
	}
	ss.srv.ledger.ack(ss.id, AckRecord{At: now, ConnID: c.id, Seq: fromSeq, Via: AckResume})
	ss.srv.ledger.resume(ss.id, ResumeRecord{At: now, ConnID: c.id, Path: c.path, FromSeq: fromSeq, Replayed: replayed})
	ss.flushLocked()
	ss.dispatchLocked("RESUMED", map[string]any{"_trace": []string{"discordtest"}})
	if old == c {
		old = nil
	}
	return resumeOK, old
}

// emitGeneratedMessage sends a MESSAGE_CREATE in the session's next guild.
func (ss *session) emitGeneratedMessage() {
	ss.mu.Lock()
	if len(ss.guilds) == 0 || ss.ended {
		ss.mu.Unlock()
		return
	}
	g := ss.guilds[ss.nextGuild%len(ss.guilds)]
	ss.nextGuild++
	ss.mu.Unlock()
	m := ss.srv.newMessage(g, g.ChannelID, "generated message", fakeUser)
	ss.dispatch("MESSAGE_CREATE", m)
}
