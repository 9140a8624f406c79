package discordtest

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// Wall-clock network timeouts (I/O deadlines are not scaled).
const (
	writeTimeout = 10 * time.Second
	// closeGrace is how long the fake waits for the client's close frame
	// after sending its own before cutting the TCP connection.
	closeGrace = 2 * time.Second
	// maxQueue bounds a connection's unsent frames; a client that reads
	// nothing while this many pile up is cut off with 4000.
	maxQueue = 50000
)

// outItem is one frame queued for a connection.
type outItem struct {
	data      []byte
	op        int
	seq       int64
	typ       string
	replay    bool
	sessionID string
}

type closeRequest struct {
	code   int
	reason string
}

// gwConn is one gateway WebSocket connection.
type gwConn struct {
	id      int64
	srv     *Server
	ws      *websocket.Conn
	path    string
	version int
	zstream bool

	// qmu guards the outgoing queue.
	qmu      sync.Mutex
	queue    []outItem
	closeReq *closeRequest
	closing  bool
	// closeCode is the code the fake closed the connection with (0
	// before closeWith).
	closeCode int
	dead      bool
	wake      chan struct{}

	done     chan struct{}
	downOnce sync.Once

	// mu guards the identity of the connection.
	mu       sync.Mutex
	shard    [2]int
	hasShard bool
	sess     *session
	compress bool
	hb       clock.Timer

	// stamps tells when the bytes of a frame reached the socket; nil
	// when the connection cannot (see arrival.go).
	stamps arrivalSource

	// reader-goroutine state
	sendTimes []time.Time // the earliest arrival of each recent frame
	// lastAfter is the earliest the last message can have arrived (at
	// first, when the upgrade request came): a message's lower bound
	// when the kernel's time may be later bytes' (see arrival.go).
	lastAfter time.Time
}

func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request, path string) {
	requested := s.clk.Now() // no frame of the connection can come before
	if s.isClosed() {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	if a, ok := s.faults.find(FaultOutage, allShards, s.clk.Now()); ok {
		s.outageConn(w, r, a)
		return
	}
	q := r.URL.Query()
	version, closeCode, closeReason := 10, 0, ""
	if v := q.Get("v"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil || n < 6 || n > 10:
			closeCode, closeReason = CloseInvalidAPIVersion, "Invalid API version."
		case n < 9:
			closeCode, closeReason = CloseInvalidAPIVersion, "Invalid API version: v"+v+" is deprecated."
		default:
			version = n
		}
	}
	if e := q.Get("encoding"); closeCode == 0 && e != "" && e != "json" {
		closeCode, closeReason = CloseDecodeError, "Only encoding=json is supported by discordtest."
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("gateway upgrade failed", "error", err)
		return
	}
	stamps, _ := ws.NetConn().(arrivalSource)
	if stamps != nil {
		stamps.track()
	}
	c := &gwConn{
		stamps:  stamps,
		id:      s.nextConnID.Add(1),
		srv:     s,
		ws:      ws,
		path:    path,
		version: version,
		zstream: q.Get("compress") == "zlib-stream",
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),

		lastAfter: requested,
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.conns[c.id] = c
	s.wg.Add(1) // under s.mu, so Close's Wait never races this Add
	s.mu.Unlock()
	s.ledger.openConn(ConnRecord{
		ID: c.id, Path: path, Query: r.URL.RawQuery, RemoteAddr: r.RemoteAddr, OpenedAt: s.clk.Now(),
	})
	go c.writeLoop()
	switch {
	case closeCode != 0:
		c.closeWith(closeCode, closeReason)
	case s.helloWithheld():
		s.log.Debug("HELLO withheld", "conn", c.id)
	default:
		c.sendOp(OpHello, helloData{HeartbeatInterval: s.heartbeatMillis()})
		if s.cfg.HeartbeatTimeout > 0 {
			c.mu.Lock()
			c.hb = s.clk.AfterFunc(s.cfg.HeartbeatTimeout, c.heartbeatExpired)
			c.mu.Unlock()
		}
	}
	c.readLoop()
}

func (s *Server) heartbeatMillis() int64 {
	ms := s.cfg.HeartbeatInterval.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return ms
}

func (s *Server) helloWithheld() bool {
	_, ok := s.faults.find(FaultWithholdHello, allShards, s.clk.Now())
	return ok
}

// outageConn refuses (TCP reset) or black-holes a new connection.
func (s *Server) outageConn(w http.ResponseWriter, r *http.Request, a activeFault) {
	mode := a.Mode
	if mode == "" {
		mode = OutageRefuse
	}
	s.ledger.refused(RefusedRecord{At: s.clk.Now(), RemoteAddr: r.RemoteAddr, Mode: mode})
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "outage", http.StatusServiceUnavailable)
		return
	}
	nc, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if mode == OutageRefuse {
		if tc, ok := nc.(interface{ SetLinger(int) error }); ok {
			_ = tc.SetLinger(0) // reset, not FIN (*net.TCPConn, or an arrivalConn holding one)
		}
		_ = nc.Close()
		return
	}
	release := s.faults.blackholeChan()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.held[nc] = struct{}{}
	s.mu.Unlock()
	if release != nil {
		select {
		case <-release:
		case <-s.done:
		}
	}
	s.mu.Lock()
	delete(s.held, nc)
	s.mu.Unlock()
	_ = nc.Close()
}

func (c *gwConn) shardID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasShard {
		return noShard
	}
	return c.shard[0]
}

func (c *gwConn) session() *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

// enqueue queues a frame; it is a no-op once the connection is closing.
func (c *gwConn) enqueue(it outItem) {
	c.qmu.Lock()
	if c.closing || c.dead {
		c.qmu.Unlock()
		return
	}
	if len(c.queue) >= maxQueue {
		c.qmu.Unlock()
		c.srv.log.Warn("client too slow, closing", "conn", c.id)
		c.closeWith(CloseUnknownError, "Client too slow.")
		return
	}
	c.queue = append(c.queue, it)
	c.qmu.Unlock()
	c.signal()
}

func (c *gwConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sendOp queues a non-dispatch frame.
func (c *gwConn) sendOp(op int, d any) {
	data, err := json.Marshal(outPayload{Op: op, D: d})
	if err != nil {
		c.srv.log.Error("marshal op", "op", op, "error", err)
		return
	}
	c.enqueue(outItem{data: data, op: op})
}

// closeWith sends a close frame with code ahead of anything queued, then
// cuts the connection once the client answers or closeGrace passes.
func (c *gwConn) closeWith(code int, reason string) {
	if sessionEndingCode(code) {
		if sess := c.session(); sess != nil {
			sess.end("closed with " + strconv.Itoa(code))
		}
	}
	c.qmu.Lock()
	if c.closing || c.dead {
		c.qmu.Unlock()
		return
	}
	c.closing = true
	c.closeCode = code
	c.closeReq = &closeRequest{code: code, reason: reason}
	c.queue = nil
	c.qmu.Unlock()
	c.signal()
}

// sessionEndingCode reports whether a close code tells the client to
// start a new session (Discord: 4004, 4007, 4009, 4010-4014), so the fake
// ends the session it closes.
func sessionEndingCode(code int) bool {
	switch code {
	case CloseAuthenticationFailed, CloseInvalidSeq, CloseSessionTimedOut, CloseInvalidShard,
		CloseShardingRequired, CloseInvalidAPIVersion, CloseInvalidIntents, CloseDisallowedIntents:
		return true
	}
	return false
}

func (c *gwConn) isClosing() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.closing || c.dead
}

// teardown ends the connection for good: the TCP connection closes, the
// session (if any) is detached or ended, and the ledger records how.
func (c *gwConn) teardown(kind CloseKind, code int) {
	c.downOnce.Do(func() {
		c.qmu.Lock()
		c.dead = true
		c.queue = nil
		c.qmu.Unlock()
		close(c.done)
		_ = c.ws.NetConn().Close()
		c.mu.Lock()
		if c.hb != nil {
			c.hb.Stop()
		}
		sess := c.sess
		c.mu.Unlock()
		c.srv.ledger.closeConn(c.id, c.srv.clk.Now(), kind, code)
		if sess != nil {
			if kind == ClosedByClient && (code == websocket.CloseNormalClosure || code == websocket.CloseGoingAway) {
				sess.end("client closed with " + strconv.Itoa(code))
			} else {
				sess.detach(c)
			}
		}
		c.srv.mu.Lock()
		delete(c.srv.conns, c.id)
		c.srv.mu.Unlock()
	})
}

// writeLoop is the connection's only writer.
func (c *gwConn) writeLoop() {
	defer c.srv.wg.Done()
	var zbuf bytes.Buffer
	var zw *zlib.Writer
	for {
		c.qmu.Lock()
		for len(c.queue) == 0 && c.closeReq == nil && !c.dead {
			c.qmu.Unlock()
			select {
			case <-c.wake:
			case <-c.done:
				return
			}
			c.qmu.Lock()
		}
		if c.dead {
			c.qmu.Unlock()
			return
		}
		if cr := c.closeReq; cr != nil {
			c.closeReq = nil
			c.qmu.Unlock()
			c.writeClose(cr)
			return
		}
		it := c.queue[0]
		c.queue[0] = outItem{}
		c.queue = c.queue[1:]
		c.qmu.Unlock()

		if d := c.srv.faults.delay(c.srv.clk.Now(), FaultLatencySpike); d > 0 {
			t := c.srv.clk.NewTimer(d)
			select {
			case <-t.C():
			case <-c.done:
				t.Stop()
				return
			}
		}
		c.mu.Lock()
		compress := c.compress && it.op != OpHello
		c.mu.Unlock()
		msgType, data := websocket.TextMessage, it.data
		switch {
		case c.zstream:
			if zw == nil {
				zw = zlib.NewWriter(&zbuf)
			}
			zbuf.Reset()
			_, _ = zw.Write(it.data)
			_ = zw.Flush()
			msgType, data = websocket.BinaryMessage, append([]byte(nil), zbuf.Bytes()...)
		case compress:
			var b bytes.Buffer
			w := zlib.NewWriter(&b)
			_, _ = w.Write(it.data)
			_ = w.Close()
			msgType, data = websocket.BinaryMessage, b.Bytes()
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := c.ws.WriteMessage(msgType, data); err != nil {
			c.teardown(LostByClient, 0)
			return
		}
		f := Frame{
			At: c.srv.clk.Now(), Dir: Sent, Op: it.op, Seq: it.seq, Type: it.typ,
			Replay: it.replay, Binary: msgType == websocket.BinaryMessage, Payload: it.data,
		}
		if it.op == OpDispatch {
			c.srv.ledger.sentDispatch(c.id, it.sessionID, f)
		} else {
			c.srv.ledger.frame(c.id, f)
		}
	}
}

func (c *gwConn) writeClose(cr *closeRequest) {
	// Record first: the client's echo may be read before WriteControl
	// returns.
	c.srv.ledger.closeConn(c.id, c.srv.clk.Now(), ClosedByServer, cr.code)
	msg := websocket.FormatCloseMessage(cr.code, cr.reason)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeTimeout))
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	case <-c.srv.done:
	}
	c.teardown(ClosedByServer, cr.code)
}

// readLoop reads the client's frames until the connection ends.
func (c *gwConn) readLoop() {
	c.ws.SetReadLimit(1 << 20)
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.teardown(ClosedByClient, ce.Code)
			} else {
				c.teardown(LostByClient, 0)
			}
			return
		}
		// Timed before anything else (see arrival.go).
		at := c.arrival()
		if c.isClosing() {
			c.resumeAfterClose(mt, data)
			continue
		}
		c.handle(mt, data, at)
	}
}

// resumeAfterClose handles a frame read once the fake had decided to
// close the connection: it is not acted on, but a RESUME the client sent
// before it got a close code that ends sessions (4009 on a connection
// closed as its RESUME crossed the close) tells the client that the
// session it named is over, so the fake ends that session too, as if the
// close had answered the RESUME. Otherwise the session would stay
// resumable in the fake while the client, rightly, starts a new one.
func (c *gwConn) resumeAfterClose(mt int, data []byte) {
	c.qmu.Lock()
	code := c.closeCode
	c.qmu.Unlock()
	if mt != websocket.TextMessage || !sessionEndingCode(code) {
		return
	}
	var p payload
	if json.Unmarshal(data, &p) != nil || p.Op != OpResume {
		return
	}
	var rd resumeData
	if json.Unmarshal(p.D, &rd) != nil || !c.srv.tokenOK(rd.Token) {
		return
	}
	c.srv.mu.Lock()
	sess := c.srv.sessions[rd.SessionID]
	c.srv.mu.Unlock()
	if sess != nil {
		sess.end("closed with " + strconv.Itoa(code) + " as its RESUME arrived")
	}
}

// protocolError records a violation and closes with code.
func (c *gwConn) protocolError(code int, reason, detail string) {
	c.srv.ledger.violation(Violation{
		At: c.srv.clk.Now(), Kind: ViolationProtocol, ConnID: c.id, SessionID: c.sessionID(),
		Shard: c.shardID(), Detail: fmt.Sprintf("%d %s: %s", code, reason, detail),
	})
	c.closeWith(code, reason)
}

func (c *gwConn) sessionID() string {
	if s := c.session(); s != nil {
		return s.id
	}
	return ""
}

// handle processes one client frame that arrived within at.
func (c *gwConn) handle(mt int, data []byte, at span) {
	s := c.srv
	now := at.at
	if mt != websocket.TextMessage {
		s.ledger.frame(c.id, Frame{At: now, ArrivedAfter: after(at), Dir: Received, Op: -1, Binary: true})
		c.protocolError(CloseDecodeError, "Error while decoding payload.", "binary frame on a json connection")
		return
	}
	var p payload
	decodeErr := json.Unmarshal(data, &p)
	rec := Frame{At: now, ArrivedAfter: after(at), Dir: Received, Op: p.Op}
	if decodeErr == nil {
		rec.Payload = redactToken(p.Op, data)
	} else {
		rec.Op = -1
	}
	s.ledger.frame(c.id, rec)

	// The send limit counts every frame, heartbeats included: those that
	// arrived within the window before this one, however late their
	// arrival times may be (see arrival.go).
	window := s.cfg.SendLimitWindow
	kept := c.sendTimes[:0]
	for _, t := range c.sendTimes {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	c.sendTimes = append(kept, at.after)
	if len(c.sendTimes) > s.cfg.SendLimit {
		s.ledger.violation(Violation{
			At: now, Kind: ViolationSendLimit, ConnID: c.id, SessionID: c.sessionID(), Shard: c.shardID(),
			Detail: fmt.Sprintf("%d frames within %v (limit %d)", len(c.sendTimes), window, s.cfg.SendLimit),
		})
		c.closeWith(CloseRateLimited, "You are being rate limited.")
		return
	}
	if len(data) > maxPayloadBytes {
		c.protocolError(CloseDecodeError, "Error while decoding payload.", fmt.Sprintf("payload of %d bytes exceeds %d", len(data), maxPayloadBytes))
		return
	}
	if decodeErr != nil {
		c.protocolError(CloseDecodeError, "Error while decoding payload.", decodeErr.Error())
		return
	}
	authed := c.session() != nil
	switch p.Op {
	case OpHeartbeat:
		c.handleHeartbeat(p.D)
	case OpIdentify:
		if authed {
			c.protocolError(CloseAlreadyAuthenticated, "Already authenticated.", "IDENTIFY on an authenticated connection")
			return
		}
		c.handleIdentify(p.D, at)
	case OpResume:
		if authed {
			c.protocolError(CloseAlreadyAuthenticated, "Already authenticated.", "RESUME on an authenticated connection")
			return
		}
		c.handleResume(p.D)
	case OpPresenceUpdate, OpVoiceStateUpdate, OpRequestGuildMembers:
		if !authed {
			c.protocolError(CloseNotAuthenticated, "Not authenticated.", fmt.Sprintf("op %d before IDENTIFY", p.Op))
		}
	default:
		c.protocolError(CloseUnknownOpcode, "Unknown opcode.", fmt.Sprintf("op %d", p.Op))
	}
}

// redactToken returns the frame with d.token replaced, for IDENTIFY and
// RESUME; other frames unchanged.
func redactToken(op int, data []byte) json.RawMessage {
	if op != OpIdentify && op != OpResume {
		return append(json.RawMessage(nil), data...)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil
	}
	if d, ok := m["d"].(map[string]any); ok {
		if _, has := d["token"]; has {
			d["token"] = "[redacted]"
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return out
}

func (c *gwConn) handleHeartbeat(raw json.RawMessage) {
	s := c.srv
	var d *int64
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &d); err != nil {
			c.protocolError(CloseDecodeError, "Error while decoding payload.", "heartbeat d: "+err.Error())
			return
		}
	}
	c.mu.Lock()
	if c.hb != nil {
		c.hb.Reset(s.cfg.HeartbeatTimeout)
	}
	sess := c.sess
	shard := noShard
	if c.hasShard {
		shard = c.shard[0]
	}
	c.mu.Unlock()
	if sess != nil && d != nil {
		sess.ack(*d, c.id, AckHeartbeat)
	}
	now := s.clk.Now()
	if _, ok := s.faults.find(FaultStallACKs, shard, now); ok {
		return
	}
	if a, ok := s.faults.find(FaultDelayACKs, shard, now); ok {
		s.clk.AfterFunc(a.Delay, func() { c.sendOp(OpHeartbeatACK, nil) })
		return
	}
	c.sendOp(OpHeartbeatACK, nil)
}

func (c *gwConn) heartbeatExpired() {
	s := c.srv
	if c.isClosing() {
		return
	}
	s.ledger.violation(Violation{
		At: s.clk.Now(), Kind: ViolationHeartbeatTimeout, ConnID: c.id, SessionID: c.sessionID(), Shard: c.shardID(),
		Detail: fmt.Sprintf("no heartbeat within %v", s.cfg.HeartbeatTimeout),
	})
	if sess := c.session(); sess != nil {
		sess.end("heartbeat timeout")
	}
	c.closeWith(CloseSessionTimedOut, "Session timed out.")
}

// invalidSession sends op 9; with resumable false the session ends, and
// either way the connection may IDENTIFY (or RESUME) again.
func (c *gwConn) invalidSession(resumable bool, reason string) {
	c.mu.Lock()
	sess := c.sess
	c.sess = nil
	c.mu.Unlock()
	if sess != nil {
		if resumable {
			sess.detach(c)
		} else {
			sess.end(reason)
		}
	}
	c.sendOp(OpInvalidSession, resumable)
}

func (c *gwConn) bind(sess *session, shard [2]int, compress bool) {
	c.mu.Lock()
	c.sess = sess
	c.shard = shard
	c.hasShard = true
	c.compress = compress
	c.mu.Unlock()
	c.srv.ledger.bindConn(c.id, sess.id, shard)
}

// handleIdentify handles an IDENTIFY that arrived within at; the
// identify window is checked against arrival times.
func (c *gwConn) handleIdentify(raw json.RawMessage, at span) {
	s := c.srv
	now := at.at
	var id identifyData
	if err := json.Unmarshal(raw, &id); err != nil {
		c.protocolError(CloseDecodeError, "Error while decoding payload.", "identify: "+err.Error())
		return
	}
	shard := [2]int{0, 1}
	if id.Shard != nil {
		shard = *id.Shard
	}
	bucket := 0
	if shard[0] >= 0 {
		bucket = shard[0] % s.cfg.MaxConcurrency
	}
	record := func(o IdentifyOutcome, sessionID string) {
		s.ledger.identify(IdentifyRecord{At: now, ArrivedAfter: after(at), ConnID: c.id, Shard: shard, Bucket: bucket, Outcome: o, SessionID: sessionID})
	}
	if !s.tokenOK(id.Token) {
		record(IdentifyBadToken, "")
		c.closeWith(CloseAuthenticationFailed, "Authentication failed.")
		return
	}
	if shard[1] < 1 || shard[0] < 0 || shard[0] >= shard[1] {
		record(IdentifyInvalidShard, "")
		c.closeWith(CloseInvalidShard, "Invalid shard.")
		return
	}
	guilds := guildsForShard(s.guilds, shard)
	if len(guilds) > s.cfg.MaxGuildsPerShard {
		record(IdentifyShardingRequired, "")
		c.closeWith(CloseShardingRequired, "Sharding required.")
		return
	}
	if id.Intents == nil || *id.Intents < 0 || *id.Intents&^IntentsKnown != 0 {
		record(IdentifyInvalidIntents, "")
		c.closeWith(CloseInvalidIntents, "Invalid intent(s).")
		return
	}
	if *id.Intents&IntentsPrivileged&^s.cfg.PrivilegedIntents != 0 {
		record(IdentifyDisallowedIntents, "")
		c.closeWith(CloseDisallowedIntents, "Disallowed intent(s).")
		return
	}
	if _, ok := s.faults.find(FaultShedIdentify, allShards, now); ok {
		record(IdentifyShed, "")
		c.invalidSession(false, "identify shed")
		return
	}

	s.mu.Lock()
	if near, gap, ok := nearestIdentify(s.identifySeen[bucket], at); ok && gap < s.cfg.IdentifyWindow {
		s.mu.Unlock()
		record(IdentifyRateLimited, "")
		s.ledger.violation(Violation{
			At: now, Kind: ViolationIdentifyConcurrency, ConnID: c.id, Shard: shard[0],
			Detail: fmt.Sprintf("bucket %d identified %v apart from this IDENTIFY (window %v; the other: conn %d, shard %d%s)",
				bucket, gap, s.cfg.IdentifyWindow, near.conn, near.shard, uncertainty(near.span, at)),
		})
		c.invalidSession(false, "identify rate limited")
		return
	}
	s.refreshBudgetLocked(now)
	if s.budgetLeft <= 0 {
		s.revoked = true
		s.mu.Unlock()
		record(IdentifyBudgetExceeded, "")
		s.ledger.violation(Violation{
			At: now, Kind: ViolationSessionStartBudget, ConnID: c.id, Shard: shard[0],
			Detail: fmt.Sprintf("session-start budget of %d spent; token reset", s.cfg.SessionStartTotal),
		})
		s.revokeToken()
		return
	}
	s.budgetLeft--
	if s.budgetReset.IsZero() {
		s.budgetReset = now.Add(s.cfg.SessionStartReset)
	}
	s.identifySeen[bucket] = rememberIdentify(s.identifySeen[bucket], seenIdentify{span: at, conn: c.id, shard: shard[0]})
	sid := ""
	for sid == "" || s.sessions[sid] != nil {
		s.mu.Unlock()
		sid = s.newSessionID()
		s.mu.Lock()
	}
	sess := newSession(s, sid, shard, guilds)
	s.sessions[sid] = sess
	s.mu.Unlock()

	record(IdentifyAccepted, sid)
	s.ledger.newSession(sid, shard, now)
	sess.mu.Lock()
	sess.conn = c
	c.bind(sess, shard, id.Compress)
	unavailable := make([]map[string]any, len(guilds))
	for i, g := range guilds {
		unavailable[i] = map[string]any{"id": g.ID, "unavailable": true}
	}
	sess.dispatchLocked("READY", map[string]any{
		"v":                  c.version,
		"user":               s.botUser(),
		"guilds":             unavailable,
		"session_id":         sid,
		"resume_gateway_url": s.ResumeURL(),
		"shard":              shard,
		"application":        map[string]any{"id": s.cfg.BotUserID, "flags": 0},
		"private_channels":   []any{},
		"_trace":             []string{"discordtest"},
	})
	for _, g := range guilds {
		sess.dispatchLocked("GUILD_CREATE", guildCreateData(g, now))
	}
	sess.mu.Unlock()
	c.detachIfDead(sess)
}

// detachIfDead covers a teardown that ran between the session taking c
// and c recording the session: the session must not stay bound to a dead
// connection.
func (c *gwConn) detachIfDead(sess *session) {
	c.qmu.Lock()
	dead := c.dead
	c.qmu.Unlock()
	if dead {
		sess.detach(c)
	}
}

// revokeToken ends every session and closes every connection with 4004,
// as Discord does when the session-start budget is exceeded.
func (s *Server) revokeToken() {
	for _, ss := range s.sessionsFor(nil) {
		ss.end("token reset: session-start budget exceeded")
	}
	for _, c := range s.connsFor(nil) {
		c.closeWith(CloseAuthenticationFailed, "Authentication failed.")
	}
}

func (c *gwConn) handleResume(raw json.RawMessage) {
	s := c.srv
	var rd resumeData
	if err := json.Unmarshal(raw, &rd); err != nil {
		c.protocolError(CloseDecodeError, "Error while decoding payload.", "resume: "+err.Error())
		return
	}
	if !s.tokenOK(rd.Token) {
		c.closeWith(CloseAuthenticationFailed, "Authentication failed.")
		return
	}
	s.mu.Lock()
	sess := s.sessions[rd.SessionID]
	s.mu.Unlock()
	if sess == nil {
		c.sendOp(OpInvalidSession, false)
		return
	}
	if rd.Seq == nil {
		c.protocolError(CloseInvalidSeq, "Invalid seq.", "RESUME without seq")
		return
	}
	res, old := sess.resume(c, *rd.Seq)
	switch res {
	case resumeOK:
		c.bind(sess, sess.shard, false)
		c.detachIfDead(sess)
		if old != nil {
			old.teardown(DroppedByServer, 0)
		}
	case resumeExpired:
		c.closeWith(CloseSessionTimedOut, "Session timed out.")
	case resumeBadSeq:
		c.protocolError(CloseInvalidSeq, "Invalid seq.", fmt.Sprintf("RESUME seq %d for session at %d", *rd.Seq, sess.info().Seq))
	case resumeInvalid:
		c.sendOp(OpInvalidSession, false)
	}
}

// after is a ledger's ArrivedAfter for a frame that arrived within at:
// zero when the arrival is exact.
func after(at span) time.Time {
	if at.after.Equal(at.at) {
		return time.Time{}
	}
	return at.after
}

// uncertainty says, for a violation's detail, which of two IDENTIFYs had
// an uncertain arrival (the gap is then the largest their bounds allow).
func uncertainty(other, this span) string {
	out := ""
	if d := other.at.Sub(other.after); d > 0 {
		out += fmt.Sprintf("; the other arrived up to %v before its time", d)
	}
	if d := this.at.Sub(this.after); d > 0 {
		out += fmt.Sprintf("; this one arrived up to %v before its time", d)
	}
	return out
}
