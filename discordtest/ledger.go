package discordtest

import (
	"encoding/json"
	"sort"
	"sync"
	"time"
)

// Direction says which way a gateway frame went.
type Direction int

const (
	// Sent is a frame the fake sent to the client.
	Sent Direction = iota
	// Received is a frame the client sent to the fake.
	Received
)

// String returns "sent" or "received".
func (d Direction) String() string {
	if d == Sent {
		return "sent"
	}
	return "received"
}

// CloseKind says how a gateway connection ended.
type CloseKind string

// How a connection ended.
const (
	// ClosedByServer: the fake sent a close frame (CloseCode holds it).
	ClosedByServer CloseKind = "server_close"
	// DroppedByServer: the fake cut the TCP connection without a close
	// frame (the drop fault, an outage, Close).
	DroppedByServer CloseKind = "server_drop"
	// ClosedByClient: the client sent a close frame (CloseCode holds it).
	ClosedByClient CloseKind = "client_close"
	// LostByClient: the connection ended without any close frame from
	// either side (the client vanished, or a write failed).
	LostByClient CloseKind = "client_lost"
)

// Frame is one gateway frame in the ledger. Tokens in IDENTIFY and
// RESUME payloads are replaced by "[redacted]".
type Frame struct {
	// At is when the fake wrote the frame, or when a received frame
	// arrived (see the package doc's Time scale section).
	At time.Time
	// ArrivedAfter, for a received frame whose arrival time is uncertain
	// (read with bytes the client sent later, whose kernel time At may
	// be), is the earliest it can have arrived: it arrived between
	// ArrivedAfter and At. Zero when At is exact.
	ArrivedAfter time.Time
	Dir          Direction
	Op           int
	Seq          int64  // the dispatch sequence; 0 when the frame has none
	Type         string // the dispatch name; "" when the frame has none
	Replay       bool   // a dispatch sent again by a RESUME
	Binary       bool   // sent zlib-compressed in a binary frame
	Payload      json.RawMessage
}

// ConnRecord is everything the ledger knows about one gateway connection.
type ConnRecord struct {
	ID         int64
	Path       string // "/gateway" or "/resume" (the resume_gateway_url)
	Query      string
	RemoteAddr string
	OpenedAt   time.Time
	// Shard is [shard_id, num_shards] once the connection identified or
	// resumed; Shard[1] is 0 before that.
	Shard [2]int
	// SessionIDs lists the sessions the connection carried, in order
	// (several when op 9 made the client identify again on it).
	SessionIDs []string
	Closed     bool
	ClosedAt   time.Time
	CloseKind  CloseKind
	CloseCode  int // the close frame's code; 0 when there was none
	Frames     []Frame
}

// Delivery is one write of a dispatch on a connection.
type Delivery struct {
	ConnID int64
	At     time.Time
	Replay bool
}

// DispatchRecord is one dispatch of a session: its sequence, name, when
// the fake generated it, and every connection it was written on.
type DispatchRecord struct {
	Seq        int64
	Type       string
	At         time.Time
	Deliveries []Delivery
}

// AckVia says how a client acknowledged a sequence.
type AckVia string

// How a client acknowledged a sequence.
const (
	AckHeartbeat AckVia = "heartbeat"
	AckResume    AckVia = "resume"
)

// AckRecord is a sequence number the client reported (heartbeat d or
// RESUME seq).
type AckRecord struct {
	At     time.Time
	ConnID int64
	Seq    int64
	Via    AckVia
}

// ResumeRecord is one accepted RESUME.
type ResumeRecord struct {
	At      time.Time
	ConnID  int64
	Path    string
	FromSeq int64
	// Replayed lists the sequences queued for replay, in order.
	Replayed []int64
}

// SessionRecord is everything the ledger knows about one gateway session.
type SessionRecord struct {
	ID          string
	Shard       [2]int
	CreatedAt   time.Time
	Dispatches  []DispatchRecord // index i holds sequence i+1
	Acks        []AckRecord
	Resumes     []ResumeRecord
	Connections []int64
	Ended       bool
	EndedAt     time.Time
	EndReason   string
	// Unreplayable lists sequences a RESUME asked for that the replay
	// buffer no longer held.
	Unreplayable []int64
}

// MaxAcked returns the highest sequence the client acknowledged.
func (r SessionRecord) MaxAcked() int64 {
	var m int64
	for _, a := range r.Acks {
		if a.Seq > m {
			m = a.Seq
		}
	}
	return m
}

// IdentifyOutcome says what the fake did with an IDENTIFY.
type IdentifyOutcome string

// What the fake did with an IDENTIFY.
const (
	IdentifyAccepted          IdentifyOutcome = "accepted"
	IdentifyRateLimited       IdentifyOutcome = "rate_limited"       // op 9: bucket used in this window
	IdentifyShed              IdentifyOutcome = "shed"               // op 9: the shed_identify fault
	IdentifyBudgetExceeded    IdentifyOutcome = "budget_exceeded"    // 4004 for all: token reset
	IdentifyBadToken          IdentifyOutcome = "bad_token"          // 4004
	IdentifyInvalidShard      IdentifyOutcome = "invalid_shard"      // 4010
	IdentifyShardingRequired  IdentifyOutcome = "sharding_required"  // 4011
	IdentifyInvalidIntents    IdentifyOutcome = "invalid_intents"    // 4013
	IdentifyDisallowedIntents IdentifyOutcome = "disallowed_intents" // 4014
)

// IdentifyRecord is one IDENTIFY the fake received.
type IdentifyRecord struct {
	// At is when the IDENTIFY arrived, the time the identify window is
	// checked with.
	At time.Time
	// ArrivedAfter is set when At is uncertain (see Frame.ArrivedAfter):
	// the IDENTIFY arrived between ArrivedAfter and At, and the identify
	// window is checked with the arrival inside those bounds most
	// favourable to the client. Zero when At is exact.
	ArrivedAfter time.Time
	ConnID       int64
	Shard        [2]int
	Bucket       int // shard_id % max_concurrency
	Outcome      IdentifyOutcome
	// SessionID is the new session's ID when Outcome is IdentifyAccepted.
	SessionID string
}

// ViolationKind names a limit or rule a client broke.
type ViolationKind string

// Limits and rules a client can break.
const (
	ViolationIdentifyConcurrency ViolationKind = "identify_concurrency"
	ViolationSessionStartBudget  ViolationKind = "session_start_budget"
	ViolationSendLimit           ViolationKind = "gateway_send_limit"
	ViolationHeartbeatTimeout    ViolationKind = "heartbeat_timeout"
	ViolationProtocol            ViolationKind = "protocol"
	ViolationRESTBucket          ViolationKind = "rest_bucket_limit"
	ViolationRESTGlobal          ViolationKind = "rest_global_limit"
	ViolationInvalidRequests     ViolationKind = "invalid_requests"
)

// Violation is one broken limit or rule.
type Violation struct {
	At        time.Time
	Kind      ViolationKind
	ConnID    int64 // 0 for REST
	SessionID string
	Shard     int // -1 when unknown or REST
	Detail    string
}

// RESTRecord is one REST request.
type RESTRecord struct {
	At     time.Time
	Method string
	Path   string
	Status int
	Bucket string
	// Cause says why a request failed when the fake caused it: "fault:…"
	// for an injected fault, "bucket", "global", "ban", "auth".
	Cause string
}

// Ledger records everything the fake sent and received. It is safe for
// concurrent use; every accessor returns copies.
type Ledger struct {
	mu         sync.Mutex
	conns      map[int64]*ConnRecord
	connOrder  []int64
	sessions   map[string]*SessionRecord
	sessOrder  []string
	identifies []IdentifyRecord
	violations []Violation
	rest       []RESTRecord
	refusals   []RefusedRecord
}

// RefusedRecord is one gateway connection an outage refused or
// black-holed.
type RefusedRecord struct {
	At         time.Time
	RemoteAddr string
	Mode       OutageMode
}

func newLedger() *Ledger {
	return &Ledger{conns: map[int64]*ConnRecord{}, sessions: map[string]*SessionRecord{}}
}

// ---- recording (package-internal) ----

func (l *Ledger) openConn(rec ConnRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := rec
	l.conns[rec.ID] = &r
	l.connOrder = append(l.connOrder, rec.ID)
}

func (l *Ledger) closeConn(id int64, at time.Time, kind CloseKind, code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.conns[id]; c != nil && !c.Closed {
		c.Closed, c.ClosedAt, c.CloseKind, c.CloseCode = true, at, kind, code
	}
}

func (l *Ledger) frame(id int64, f Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.conns[id]; c != nil {
		c.Frames = append(c.Frames, f)
	}
}

// sentDispatch records a written dispatch frame on the connection and
// as a delivery of the session's dispatch.
func (l *Ledger) sentDispatch(connID int64, sessionID string, f Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.conns[connID]; c != nil {
		c.Frames = append(c.Frames, f)
	}
	if s := l.sessions[sessionID]; s != nil && f.Seq >= 1 && int(f.Seq) <= len(s.Dispatches) {
		d := &s.Dispatches[f.Seq-1]
		d.Deliveries = append(d.Deliveries, Delivery{ConnID: connID, At: f.At, Replay: f.Replay})
	}
}

func (l *Ledger) bindConn(connID int64, sessionID string, shard [2]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.conns[connID]; c != nil {
		c.Shard = shard
		c.SessionIDs = append(c.SessionIDs, sessionID)
	}
	if s := l.sessions[sessionID]; s != nil {
		s.Connections = append(s.Connections, connID)
	}
}

func (l *Ledger) newSession(id string, shard [2]int, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessions[id] = &SessionRecord{ID: id, Shard: shard, CreatedAt: at}
	l.sessOrder = append(l.sessOrder, id)
}

func (l *Ledger) dispatch(sessionID string, seq int64, typ string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sessions[sessionID]; s != nil {
		s.Dispatches = append(s.Dispatches, DispatchRecord{Seq: seq, Type: typ, At: at})
	}
}

func (l *Ledger) ack(sessionID string, a AckRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sessions[sessionID]; s != nil {
		s.Acks = append(s.Acks, a)
	}
}

func (l *Ledger) resume(sessionID string, r ResumeRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sessions[sessionID]; s != nil {
		s.Resumes = append(s.Resumes, r)
	}
}

func (l *Ledger) unreplayable(sessionID string, seqs []int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sessions[sessionID]; s != nil {
		s.Unreplayable = append(s.Unreplayable, seqs...)
	}
}

func (l *Ledger) endSession(sessionID string, at time.Time, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.sessions[sessionID]; s != nil && !s.Ended {
		s.Ended, s.EndedAt, s.EndReason = true, at, reason
	}
}

func (l *Ledger) identify(r IdentifyRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.identifies = append(l.identifies, r)
}

func (l *Ledger) violation(v Violation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.violations = append(l.violations, v)
}

func (l *Ledger) restRequest(r RESTRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rest = append(l.rest, r)
}

func (l *Ledger) refused(r RefusedRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refusals = append(l.refusals, r)
}

// ---- reading ----

// Refused returns the gateway connections outages refused or black-holed.
func (l *Ledger) Refused() []RefusedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]RefusedRecord(nil), l.refusals...)
}

func copyConn(c *ConnRecord) ConnRecord {
	out := *c
	out.SessionIDs = append([]string(nil), c.SessionIDs...)
	out.Frames = append([]Frame(nil), c.Frames...)
	return out
}

func copySession(s *SessionRecord) SessionRecord {
	out := *s
	out.Dispatches = make([]DispatchRecord, len(s.Dispatches))
	for i, d := range s.Dispatches {
		d.Deliveries = append([]Delivery(nil), d.Deliveries...)
		out.Dispatches[i] = d
	}
	out.Acks = append([]AckRecord(nil), s.Acks...)
	out.Resumes = make([]ResumeRecord, len(s.Resumes))
	for i, r := range s.Resumes {
		r.Replayed = append([]int64(nil), r.Replayed...)
		out.Resumes[i] = r
	}
	out.Connections = append([]int64(nil), s.Connections...)
	out.Unreplayable = append([]int64(nil), s.Unreplayable...)
	return out
}

// Connections returns every gateway connection, in the order they opened.
func (l *Ledger) Connections() []ConnRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ConnRecord, 0, len(l.connOrder))
	for _, id := range l.connOrder {
		out = append(out, copyConn(l.conns[id]))
	}
	return out
}

// Connection returns one connection's record.
func (l *Ledger) Connection(id int64) (ConnRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.conns[id]
	if !ok {
		return ConnRecord{}, false
	}
	return copyConn(c), true
}

// Sessions returns every session, in the order they were created.
func (l *Ledger) Sessions() []SessionRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]SessionRecord, 0, len(l.sessOrder))
	for _, id := range l.sessOrder {
		out = append(out, copySession(l.sessions[id]))
	}
	return out
}

// Session returns one session's record.
func (l *Ledger) Session(id string) (SessionRecord, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.sessions[id]
	if !ok {
		return SessionRecord{}, false
	}
	return copySession(s), true
}

// Identifies returns every IDENTIFY, in order.
func (l *Ledger) Identifies() []IdentifyRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]IdentifyRecord(nil), l.identifies...)
}

// MaxIdentifiesPerWindow returns, for each identify bucket, the largest
// number of accepted IDENTIFYs inside any span of the given length. A
// client that respects max_concurrency scores at most 1 per bucket for the
// server's IdentifyWindow. An IDENTIFY whose arrival is uncertain
// (ArrivedAfter) counts with another only if every arrival its bounds
// allow is within the span of it, as the identify check judges.
func (l *Ledger) MaxIdentifiesPerWindow(window time.Duration) map[int]int {
	byBucket := map[int][]span{}
	for _, r := range l.Identifies() {
		if r.Outcome != IdentifyAccepted {
			continue
		}
		s := exactly(r.At)
		if !r.ArrivedAfter.IsZero() && r.ArrivedAfter.Before(r.At) {
			s.after = r.ArrivedAfter
		}
		byBucket[r.Bucket] = append(byBucket[r.Bucket], s)
	}
	out := map[int]int{}
	for b, ss := range byBucket {
		sort.Slice(ss, func(i, j int) bool { return ss[i].at.Before(ss[j].at) })
		best := 0
		for hi := range ss {
			// Those before hi that arrived within the span of it, however
			// their bounds lie, also arrived within the span of each
			// other (they all lie in the span that ends at hi's latest).
			n := 1
			for j := range hi {
				if farthest(ss[j], ss[hi]) < window {
					n++
				}
			}
			best = max(best, n)
		}
		out[b] = best
	}
	return out
}

// IdentifyWindow counts the IDENTIFYs of one fixed window.
type IdentifyWindow struct {
	Start time.Time
	// Accepted counts accepted IDENTIFYs per bucket; Rejected counts the
	// others (rate-limited, shed, refused) per bucket.
	Accepted map[int]int
	Rejected map[int]int
}

// IdentifyWindows groups every IDENTIFY into consecutive windows of the
// given length, starting at the first IDENTIFY; windows without any are
// left out.
func (l *Ledger) IdentifyWindows(window time.Duration) []IdentifyWindow {
	ids := l.Identifies()
	if len(ids) == 0 || window <= 0 {
		return nil
	}
	start := ids[0].At
	byIndex := map[int64]*IdentifyWindow{}
	var order []int64
	for _, r := range ids {
		i := int64(r.At.Sub(start) / window)
		w := byIndex[i]
		if w == nil {
			w = &IdentifyWindow{Start: start.Add(time.Duration(i) * window), Accepted: map[int]int{}, Rejected: map[int]int{}}
			byIndex[i] = w
			order = append(order, i)
		}
		if r.Outcome == IdentifyAccepted {
			w.Accepted[r.Bucket]++
		} else {
			w.Rejected[r.Bucket]++
		}
	}
	sort.Slice(order, func(a, b int) bool { return order[a] < order[b] })
	out := make([]IdentifyWindow, 0, len(order))
	for _, i := range order {
		out = append(out, *byIndex[i])
	}
	return out
}

// Violations returns every broken limit or rule, in order. A well-behaved
// client leaves it empty.
func (l *Ledger) Violations() []Violation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Violation(nil), l.violations...)
}

// REST returns every REST request, in order.
func (l *Ledger) REST() []RESTRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]RESTRecord(nil), l.rest...)
}

// Lost returns the sequences of a session that the client can no longer
// get: those above the highest sequence it acknowledged (heartbeat d or
// RESUME seq) once the session ended (invalidated, expired, closed with
// 1000/1001, timed out), and those a RESUME asked for that the replay
// buffer had already dropped. A live or still-resumable session loses
// nothing yet: see Unacknowledged for what is in flight.
func (l *Ledger) Lost(sessionID string) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[sessionID]
	if s == nil {
		return nil
	}
	set := map[int64]bool{}
	for _, q := range s.Unreplayable {
		set[q] = true
	}
	if s.Ended {
		acked := s.MaxAcked()
		for _, d := range s.Dispatches {
			if d.Seq > acked {
				set[d.Seq] = true
			}
		}
	}
	return sortedSeqs(set)
}

// Unacknowledged returns the sequences of a session above the highest one
// the client acknowledged so far.
func (l *Ledger) Unacknowledged(sessionID string) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[sessionID]
	if s == nil {
		return nil
	}
	acked := s.MaxAcked()
	var out []int64
	for _, d := range s.Dispatches {
		if d.Seq > acked {
			out = append(out, d.Seq)
		}
	}
	return out
}

// Undelivered returns the sequences of a session never written on any
// connection.
func (l *Ledger) Undelivered(sessionID string) []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[sessionID]
	if s == nil {
		return nil
	}
	var out []int64
	for _, d := range s.Dispatches {
		if len(d.Deliveries) == 0 {
			out = append(out, d.Seq)
		}
	}
	return out
}

// ConnectionsPerShard counts, per shard ID, the connections that
// identified or resumed as that shard.
func (l *Ledger) ConnectionsPerShard() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int]int{}
	for _, c := range l.conns {
		if c.Shard[1] > 0 {
			out[c.Shard[0]]++
		}
	}
	return out
}

func sortedSeqs(set map[int64]bool) []int64 {
	if len(set) == 0 {
		return nil
	}
	out := make([]int64, 0, len(set))
	for q := range set {
		out = append(out, q)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
