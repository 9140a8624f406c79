package chaos

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// handlerLedger is what the bot's MESSAGE_CREATE handlers received, by
// message ID.
type handlerLedger struct {
	mu    sync.Mutex
	seen  map[string]int
	dups  []string
	total int
}

func newHandlerLedger() *handlerLedger { return &handlerLedger{seen: map[string]int{}} }

func (h *handlerLedger) record(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total++
	h.seen[id]++
	if h.seen[id] == 2 {
		h.dups = append(h.dups, id)
	}
}

func (h *handlerLedger) has(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[id] > 0
}

func (h *handlerLedger) counts() (total, unique int, dups []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total, len(h.seen), append([]string(nil), h.dups...)
}

// hardViolation reports whether a ledger violation breaks an invariant of
// the run. REST bucket and global limits are counted, not failed: discordgo's
// own rate limiter (not lifeline) paces REST, and the fake's windows shrink
// with its Scale below what discordgo's header arithmetic resolves.
func hardViolation(k discordtest.ViolationKind) bool {
	switch k {
	case discordtest.ViolationRESTBucket, discordtest.ViolationRESTGlobal:
		return false
	}
	return true
}

// serverEnded reports whether a session end reason is the fake Discord
// ending a session by its rules (so what the client had not acknowledged
// is gone, as on Discord), rather than the client's doing.
func serverEnded(reason string) bool {
	switch {
	case reason == "expired",
		reason == "invalid_session fault",
		reason == "all sessions invalidated",
		reason == "identify shed",
		reason == "identify rate limited",
		strings.HasPrefix(reason, "token reset"),
		strings.HasPrefix(reason, "closed with "):
		return true
	}
	return false
}

// LossFigures count the dispatches the client never acknowledged.
type LossFigures struct {
	// Lost counts dispatches lost on a path where the session could have
	// been resumed: the client gave a resumable session up, closed it with
	// 1000/1001, or stopped heartbeating; those a recovery cap preceded
	// are counted in Capped instead. Must be 0.
	Lost int `json:"lost"`
	// Excused counts dispatches Discord's rules made undeliverable: the
	// server ended the session (op 9 d=false, a session-ending close code,
	// expiry during an outage longer than the session lives).
	Excused int `json:"excused"`
	// ExcusedBy counts Excused by the session's end reason.
	ExcusedBy map[string]int `json:"excused_by,omitempty"`
	// Capped counts the dispatches of Lost's kind (lost on a resumable
	// path) that followed the recovery engine skipping a strategy at one of
	// its caps (core/recovery: failed attempts per strategy and per shard
	// within 5 minutes) before the shard's next session. Counted apart so
	// that the report names the cap, and failed like Lost: the caps count
	// failures only and never cost a session that can resume. Must be 0.
	Capped int `json:"capped"`
	// Details names each loss, Lost's and Capped's.
	Details []string `json:"details,omitempty"`
	// Spans place each loss in time, for a failure report.
	Spans []LossSpan `json:"spans,omitempty"`
}

// LossSpan is where a loss happened: the session whose dispatches were
// lost, when its last connection ended and when the shard's next session
// began (zero for the shard's last session).
type LossSpan struct {
	Shard        int       `json:"shard"`
	Session      string    `json:"session"`
	Count        int       `json:"count"`
	Disconnected time.Time `json:"disconnected"`
	NextSession  time.Time `json:"next_session,omitempty"`
}

// excuse says why the client could not have kept a session, or "" when it
// could have: the server ended it by Discord's rules before the client
// moved on, the server closed its connection with 1000/1001 (the client's
// echo of the close frame ends the session in the fake, as a client's own
// 1000/1001 would), or READY never reached the client, which therefore
// never learned the session's ID.
func excuse(s discordtest.SessionRecord, cutoff time.Time, last bool, conns map[int64]discordtest.ConnRecord) string {
	if len(s.Dispatches) == 0 || len(s.Dispatches[0].Deliveries) == 0 {
		return "READY never sent"
	}
	if !s.Ended || (!last && s.EndedAt.After(cutoff)) {
		return ""
	}
	if serverEnded(s.EndReason) {
		return s.EndReason
	}
	if strings.HasPrefix(s.EndReason, "client closed with 100") && len(s.Connections) > 0 {
		if c, ok := conns[s.Connections[len(s.Connections)-1]]; ok && c.CloseKind == discordtest.ClosedByServer {
			return fmt.Sprintf("server closed with %d, echoed by the client", c.CloseCode)
		}
	}
	return ""
}

// classifyLosses walks each shard's sessions in creation order. A
// dispatch of a session is unacknowledged when its sequence is above the
// highest the client acknowledged; it is lost when it was generated before
// the shard's next session began (later ones the new session carries too).
// Losses are excused when the client could not have kept the session
// (excuse).
func classifyLosses(sessions []discordtest.SessionRecord, connections []discordtest.ConnRecord) LossFigures {
	conns := make(map[int64]discordtest.ConnRecord, len(connections))
	for _, c := range connections {
		conns[c.ID] = c
	}
	f := LossFigures{ExcusedBy: map[string]int{}}
	byShard := map[int][]discordtest.SessionRecord{}
	for _, s := range sessions {
		byShard[s.Shard[0]] = append(byShard[s.Shard[0]], s)
	}
	shards := make([]int, 0, len(byShard))
	for k := range byShard {
		shards = append(shards, k)
	}
	sort.Ints(shards)
	for _, shard := range shards {
		list := byShard[shard]
		for i, s := range list {
			acked := s.MaxAcked()
			var cutoff time.Time
			last := i == len(list)-1
			if !last {
				cutoff = list[i+1].CreatedAt
			}
			lost := map[int64]bool{}
			for _, q := range s.Unreplayable {
				lost[q] = true
			}
			if !last || s.Ended {
				for _, d := range s.Dispatches {
					if d.Seq > acked && (last || d.At.Before(cutoff)) {
						lost[d.Seq] = true
					}
				}
			}
			if len(lost) == 0 {
				continue
			}
			if why := excuse(s, cutoff, last, conns); why != "" {
				f.Excused += len(lost)
				f.ExcusedBy[why] += len(lost)
				continue
			}
			why := "the client started a new session while this one could still resume"
			switch {
			case s.Ended && !serverEnded(s.EndReason):
				why = "session ended by the client: " + s.EndReason
			case s.Ended && last:
				why = "session ended: " + s.EndReason
			}
			f.Lost += len(lost)
			span := LossSpan{Shard: shard, Session: s.ID, Count: len(lost), NextSession: cutoff}
			if len(s.Connections) > 0 {
				span.Disconnected = conns[s.Connections[len(s.Connections)-1]].ClosedAt
			}
			f.Spans = append(f.Spans, span)
			f.Details = append(f.Details, fmt.Sprintf("shard %d session %s: %d dispatches after seq %d lost (%s; seqs %v)",
				shard, s.ID, len(lost), acked, why, firstSeqs(lost, 8)))
		}
	}
	return f
}

func firstSeqs(set map[int64]bool, n int) []int64 {
	out := make([]int64, 0, len(set))
	for q := range set {
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// ackedMessages returns, for every session, the IDs of the MESSAGE_CREATE
// dispatches the client acknowledged, read from the frames the fake wrote
// (a frame's session is told apart by the READY that starts each session
// on a connection).
func ackedMessages(l *discordtest.Ledger) (map[string]string, error) {
	maxAcked := map[string]int64{}
	for _, s := range l.Sessions() {
		maxAcked[s.ID] = s.MaxAcked()
	}
	out := map[string]string{} // message ID -> "session/seq"
	for _, c := range l.Connections() {
		cur := -1
		for _, fr := range c.Frames {
			if fr.Dir != discordtest.Sent || fr.Op != discordtest.OpDispatch {
				continue
			}
			if fr.Type == "READY" || cur < 0 {
				cur++
			}
			if fr.Type != "MESSAGE_CREATE" || cur >= len(c.SessionIDs) {
				continue
			}
			sid := c.SessionIDs[cur]
			if fr.Seq > maxAcked[sid] {
				continue
			}
			var p struct {
				D struct {
					ID string `json:"id"`
				} `json:"d"`
			}
			if err := json.Unmarshal(fr.Payload, &p); err != nil || p.D.ID == "" {
				return nil, fmt.Errorf("chaos: connection %d: MESSAGE_CREATE seq %d without a message id: %v", c.ID, fr.Seq, err)
			}
			out[p.D.ID] = fmt.Sprintf("%s/%d", sid, fr.Seq)
		}
	}
	return out, nil
}

// envelope checks each shard's reconnect attempts against the backoff the
// policy configures, from the STATE_CHANGED and breaker events of its
// connection (the loop publishes a state change only when the state
// changes, so a second wait in a row, which only the breaker imposes, is
// not announced):
//
//   - every wait announced (BACKING_OFF) is at most max(max_reconnect_delay,
//     the invalid-session delay's upper bound), and a wait the circuit
//     breaker imposes is at least reconnect_delay;
//   - while the gateway breaker has stayed CLOSED since the shard was last
//     READY, the k-th wait announced (k from 0) is at most
//     max(min(max_reconnect_delay, reconnect_delay × multiplier^k), the
//     invalid-session delay's upper bound): each announcement is then exactly
//     one step of the loop's backoff, which restarts from 0 at READY;
//   - the next attempt (CONNECTING) starts no sooner than the wait
//     announced (1ms for the announcement's rounding), and, while the
//     breaker stays CLOSED, no later than the wait plus Slack (scheduling
//     on a loaded machine).
type envelope struct {
	backoff       *conn.Backoff
	reconnect     time.Duration
	maxDelay      time.Duration
	invalidHi     time.Duration
	slack         time.Duration
	mu            sync.Mutex
	shards        map[int]*shardEnvelope
	checked       int
	exact         int
	maxLate       time.Duration
	violations    []string
	maxViolations int
}

type shardEnvelope struct {
	recent        []string // the last state changes, for a violation's message
	streak        int
	clean         bool // the breaker stayed CLOSED since READY
	breakerClosed bool
	pendingAt     time.Time
	pendingWait   time.Duration
	pending       bool
	pendingClean  bool // the breaker stayed CLOSED since the announcement
}

func newEnvelope(reconnect, maxDelay time.Duration, mult float64, invalidHi, slack time.Duration) *envelope {
	return &envelope{
		backoff:   conn.NewBackoff(conn.BackoffSettings{Base: reconnect, Max: maxDelay, Multiplier: mult}),
		reconnect: reconnect, maxDelay: maxDelay, invalidHi: invalidHi, slack: slack,
		shards: map[int]*shardEnvelope{}, maxViolations: 50,
	}
}

func (e *envelope) violate(format string, args ...any) {
	if len(e.violations) < e.maxViolations {
		e.violations = append(e.violations, fmt.Sprintf(format, args...))
	}
}

func (e *envelope) shard(n int) *shardEnvelope {
	s := e.shards[n]
	if s == nil {
		s = &shardEnvelope{clean: true, breakerClosed: true}
		e.shards[n] = s
	}
	return s
}

// breaker takes one transition of a shard's gateway breaker.
func (e *envelope) breaker(shard int, to string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.shard(shard)
	s.breakerClosed = to == "CLOSED"
	if !s.breakerClosed {
		s.clean, s.pendingClean = false, false
	}
}

// observe takes one STATE_CHANGED of a shard, in publication order.
func (e *envelope) observe(shard int, at time.Time, to, cause string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.shard(shard)
	s.recent = append(s.recent, fmt.Sprintf("%s %s (%s)", at.Format("15:04:05.000"), to, cause))
	if len(s.recent) > 8 {
		s.recent = s.recent[1:]
	}
	switch to {
	case conn.Ready.String():
		s.streak, s.pending, s.clean = 0, false, s.breakerClosed
	case conn.BackingOff.String():
		wait, breaker, ok := parseWait(cause)
		if !ok {
			e.violate("shard %d: BACKING_OFF without a wait: %q", shard, cause)
			return
		}
		e.checked++
		hi := max(e.maxDelay, e.invalidHi)
		if s.clean && !breaker {
			e.exact++
			hi = max(e.backoff.Ceiling(s.streak), e.invalidHi)
		}
		if breaker {
			hi = max(hi, e.reconnect)
			if wait < e.reconnect-time.Millisecond {
				e.violate("shard %d: breaker wait %v below reconnect_delay %v", shard, wait, e.reconnect)
			}
		}
		if wait > hi+time.Millisecond {
			e.violate("shard %d: wait %d since READY is %v, above the envelope's %v; last states: %s",
				shard, s.streak, wait, hi, strings.Join(s.recent, "; "))
		}
		s.streak++
		s.pending, s.pendingAt, s.pendingWait, s.pendingClean = true, at, wait, s.breakerClosed && !breaker
	case conn.Connecting.String():
		if !s.pending {
			return
		}
		s.pending = false
		gap := at.Sub(s.pendingAt)
		if gap < s.pendingWait-time.Millisecond {
			e.violate("shard %d: attempt %v after announcing a wait of %v (too soon); last states: %s",
				shard, gap, s.pendingWait, strings.Join(s.recent, "; "))
		}
		if !s.pendingClean {
			return // the breaker may have held the attempt back, unannounced
		}
		late := gap - s.pendingWait
		e.maxLate = max(e.maxLate, late)
		if late > e.slack {
			e.violate("shard %d: attempt %v after announcing a wait of %v (late by %v); last states: %s",
				shard, gap, s.pendingWait, late, strings.Join(s.recent, "; "))
		}
	}
}

// parseWait reads the wait from a BACKING_OFF cause: "waiting 1.2s before
// attempt 3 [(mode)]" or "circuit breaker: ...; next try in 1.2s".
func parseWait(cause string) (wait time.Duration, breaker, ok bool) {
	var s string
	switch {
	case strings.HasPrefix(cause, "waiting "):
		s = strings.TrimPrefix(cause, "waiting ")
		s, _, _ = strings.Cut(s, " ")
	case strings.Contains(cause, "next try in "):
		_, s, _ = strings.Cut(cause, "next try in ")
		s, _, _ = strings.Cut(s, " ")
		breaker = true
	default:
		return 0, false, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, false, false
	}
	return d, breaker, true
}

// EnvelopeFigures summarise the backoff checks.
type EnvelopeFigures struct {
	// Waits counts the BACKING_OFF waits checked; Exact those checked
	// against their own step's ceiling (the breaker CLOSED since READY).
	Waits int `json:"waits"`
	Exact int `json:"exact"`
	// MaxLate is the longest an attempt came after its wait ended.
	MaxLate time.Duration `json:"max_late"`
	// Violations lists the waits outside the envelope (at most 50).
	Violations []string `json:"violations,omitempty"`
}

func (e *envelope) figures() EnvelopeFigures {
	e.mu.Lock()
	defer e.mu.Unlock()
	return EnvelopeFigures{Waits: e.checked, Exact: e.exact, MaxLate: e.maxLate, Violations: append([]string(nil), e.violations...)}
}

// describeSessions summarises the ledger's sessions and connections of a
// shard, for a failure report.
func describeSessions(l *discordtest.Ledger) string {
	var b strings.Builder
	for _, s := range l.Sessions() {
		fmt.Fprintf(&b, "session %s shard %v created %s: %d dispatches, acked %d, resumes %d, conns %v, ended %t %s %q\n",
			s.ID[:8], s.Shard, s.CreatedAt.Format("15:04:05.000"), len(s.Dispatches), s.MaxAcked(), len(s.Resumes),
			s.Connections, s.Ended, s.EndedAt.Format("15:04:05.000"), s.EndReason)
	}
	for _, c := range l.Connections() {
		ids := make([]string, len(c.SessionIDs))
		for i, id := range c.SessionIDs {
			ids[i] = id[:min(8, len(id))]
		}
		var ops []string
		for _, f := range c.Frames {
			if f.Op == discordtest.OpHeartbeat || f.Op == discordtest.OpHeartbeatACK || f.Type == "MESSAGE_CREATE" {
				continue
			}
			name := fmt.Sprintf("%s:op%d", map[discordtest.Direction]string{discordtest.Sent: ">", discordtest.Received: "<"}[f.Dir], f.Op)
			if f.Type != "" {
				name += ":" + f.Type
			}
			ops = append(ops, name)
		}
		fmt.Fprintf(&b, "conn %d %s %s opened %s closed %s %s %d sessions %v frames %v\n", c.ID, c.Path, fmt.Sprint(c.Shard),
			c.OpenedAt.Format("15:04:05.000"), c.ClosedAt.Format("15:04:05.000"), c.CloseKind, c.CloseCode, ids, ops)
	}
	return b.String()
}
