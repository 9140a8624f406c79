package conn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// Direction says which way a frame went, seen from the client (the bot).
type Direction uint8

const (
	// Sent is client to server: what discordgo wrote.
	Sent Direction = iota + 1
	// Received is server to client: what Discord (or the fake) wrote.
	Received
)

// String returns "sent" or "received".
func (d Direction) String() string {
	switch d {
	case Sent:
		return "sent"
	case Received:
		return "received"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Kind says what an Observation reports.
type Kind uint8

// The observation kinds. Payload kinds (KindHello to KindOp) come from a
// complete text message decoded as a gateway payload; each such message
// gives exactly one of them, except READY and RESUMED, which give
// KindDispatch followed by KindReady or KindResumed.
const (
	// KindDial: a TCP connection (and, for wss://, its TLS session) is up.
	// Addr is the dialed host:port.
	KindDial Kind = iota + 1
	// KindDialError: dialing or the TLS handshake failed. Addr and Err.
	KindDialError
	// KindUpgrade: the server answered the WebSocket upgrade. Status is
	// its HTTP status (101 on success; anything else ends the parsing).
	KindUpgrade
	// KindFrame: one frame header, only with TapSettings.ObserveFrames.
	// Frame holds it.
	KindFrame
	// KindHello: op 10 received. HeartbeatInterval holds d.heartbeat_interval.
	KindHello
	// KindHeartbeat: op 1. Sent: a heartbeat, with Seq/HasSeq from its d
	// (the last sequence the client saw; HasSeq false for null).
	// Received: the server asks for a heartbeat now.
	KindHeartbeat
	// KindHeartbeatAck: op 11 received. Latency is the time since the
	// last heartbeat sent on this connection (0 if none was sent).
	KindHeartbeatAck
	// KindDispatch: op 0. Seq (HasSeq) and Type.
	KindDispatch
	// KindReady: the READY dispatch, right after its KindDispatch.
	// SessionID, ResumeGatewayURL, and Shard when READY carries one.
	KindReady
	// KindResumed: the RESUMED dispatch, right after its KindDispatch.
	KindResumed
	// KindReconnect: op 7 received (Discord asks the client to reconnect
	// and resume).
	KindReconnect
	// KindInvalidSession: op 9 received. Resumable is its d.
	KindInvalidSession
	// KindIdentify: op 2 sent. Shard (HasShard), Intents, Compress. The
	// token is never read into the tap.
	KindIdentify
	// KindResume: op 6 sent. SessionID and Seq. The token is never read.
	KindResume
	// KindOp: any other opcode (3, 4, 8, or one lifeline does not know).
	KindOp
	// KindBinary: a complete binary message (zlib-compressed payloads when
	// discordgo's Identify.Compress is on); Length is its size. Not decoded.
	KindBinary
	// KindClose: a close frame. CloseCode (1005 when the frame has none)
	// and CloseReason; Dir says who sent it.
	KindClose
	// KindMalformed: bytes the tap could not parse as a frame or a gateway
	// payload. Err says what and where (never the payload's content). The
	// bytes still passed through unchanged.
	KindMalformed
	// KindConnEnd: the connection ended: the first read or write error
	// (Err, Dir says which side) or a local Close (Err nil, Dir Sent).
	// Reported once per connection.
	KindConnEnd

	numKinds // keep last
)

var kindNames = [numKinds]string{
	KindDial:           "dial",
	KindDialError:      "dial-error",
	KindUpgrade:        "upgrade",
	KindFrame:          "frame",
	KindHello:          "hello",
	KindHeartbeat:      "heartbeat",
	KindHeartbeatAck:   "heartbeat-ack",
	KindDispatch:       "dispatch",
	KindReady:          "ready",
	KindResumed:        "resumed",
	KindReconnect:      "reconnect",
	KindInvalidSession: "invalid-session",
	KindIdentify:       "identify",
	KindResume:         "resume",
	KindOp:             "op",
	KindBinary:         "binary",
	KindClose:          "close",
	KindMalformed:      "malformed",
	KindConnEnd:        "conn-end",
}

// String returns the kind's name, e.g. "heartbeat-ack".
func (k Kind) String() string {
	if k > 0 && k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Gateway opcodes the tap decodes (Discord's "Opcodes and Status Codes").
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opResume         = 6
	opReconnect      = 7
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatAck   = 11
)

// Observation is one thing the tap saw on a gateway connection. Only the
// fields its Kind documents are set. It never holds the token.
type Observation struct {
	Kind Kind
	Dir  Direction
	// Conn numbers the tap's connections from 1, in dial order, so an
	// observer can ignore a connection it has already given up on (for
	// instance the old one a stale discordgo goroutine still writes to).
	Conn uint64
	// Time is when the tap saw it, from TapSettings.Clock.
	Time time.Time

	// Op is the gateway opcode of payload kinds.
	Op int
	// Seq is a sequence number: the dispatch's s, the heartbeat's d, the
	// RESUME's seq. HasSeq is false when absent or null.
	Seq    int64
	HasSeq bool
	// Type is a dispatch's event name, e.g. "MESSAGE_CREATE".
	Type string

	HeartbeatInterval time.Duration
	Latency           time.Duration

	SessionID        string
	ResumeGatewayURL string
	Resumable        bool

	Shard    [2]int
	HasShard bool
	Intents  discordgo.Intent
	Compress bool

	CloseCode   int
	CloseReason string

	Status int
	// Length is the payload size in bytes of a message (KindBinary and
	// payload kinds).
	Length int64
	Addr   string
	Frame  Frame
	Err    error
}

// String gives a short, human-readable line, e.g.
// "conn 2 received dispatch s=5 t=MESSAGE_CREATE".
func (o Observation) String() string {
	head := fmt.Sprintf("conn %d %s %s", o.Conn, o.Dir, o.Kind)
	switch o.Kind {
	case KindDial:
		if o.Addr == "" {
			return head
		}
		return fmt.Sprintf("%s %s", head, o.Addr)
	case KindDialError:
		return fmt.Sprintf("%s %s: %v", head, o.Addr, o.Err)
	case KindUpgrade:
		return fmt.Sprintf("%s status=%d", head, o.Status)
	case KindFrame:
		return fmt.Sprintf("%s %s fin=%v len=%d", head, o.Frame.Opcode, o.Frame.Fin, o.Frame.Length)
	case KindHello:
		return fmt.Sprintf("%s interval=%v", head, o.HeartbeatInterval)
	case KindHeartbeat, KindResume:
		if o.HasSeq {
			return fmt.Sprintf("%s seq=%d", head, o.Seq)
		}
		return head + " seq=null"
	case KindHeartbeatAck:
		return fmt.Sprintf("%s latency=%v", head, o.Latency)
	case KindDispatch:
		return fmt.Sprintf("%s s=%d t=%s", head, o.Seq, o.Type)
	case KindReady:
		return fmt.Sprintf("%s session=%s resume_url=%s", head, o.SessionID, o.ResumeGatewayURL)
	case KindInvalidSession:
		return fmt.Sprintf("%s resumable=%v", head, o.Resumable)
	case KindIdentify:
		shard := "none"
		if o.HasShard {
			shard = fmt.Sprint(o.Shard)
		}
		return fmt.Sprintf("%s shard=%s intents=%s compress=%v", head, shard, FormatIntents(o.Intents), o.Compress)
	case KindOp:
		return fmt.Sprintf("%s op=%d", head, o.Op)
	case KindBinary:
		return fmt.Sprintf("%s len=%d", head, o.Length)
	case KindClose:
		return fmt.Sprintf("%s code=%d reason=%q", head, o.CloseCode, o.CloseReason)
	case KindMalformed, KindConnEnd:
		if o.Err != nil {
			return fmt.Sprintf("%s: %v", head, o.Err)
		}
	}
	return head
}

// Observer receives the tap's observations. Observe is called
// synchronously on the goroutine reading or writing the connection, in
// the order the bytes passed, and concurrently for the two directions: it
// must be safe for concurrent use and must return quickly (count, store,
// or hand off). It must not write to the observed connection (a write
// from inside the write path's callback would deadlock). An Observer that
// may block should be wrapped in an AsyncObserver.
type Observer interface {
	Observe(Observation)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Observation)

// Observe calls f(o).
func (f ObserverFunc) Observe(o Observation) { f(o) }

// TapSettings configures a Tap. The zero value is valid: it observes
// nothing but still counts, and dials with a plain net.Dialer.
type TapSettings struct {
	// Observer receives every observation. Default: none (Stats only).
	Observer Observer
	// Clock stamps observations and heartbeat latencies. Default:
	// clock.Real.
	Clock clock.Clock
	// ObserveFrames reports every frame header as KindFrame. Default:
	// false (frames are counted in Stats only).
	ObserveFrames bool
	// DialContext makes the TCP connection. Default: a net.Dialer's.
	// Tests and chaos injection replace it.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLSConfig is cloned for wss:// connections; ServerName defaults to
	// the dialed host. Default: an empty config (system roots).
	TLSConfig *tls.Config
	// HandshakeTimeout bounds dial, TLS and the WebSocket upgrade (a
	// network deadline, so it runs on the wall clock). Default: 20s.
	HandshakeTimeout time.Duration
}

// TapStats counts what a Tap saw over all its connections.
type TapStats struct {
	// Conns counts connections dialed successfully; DialErrors failed
	// dials.
	Conns, DialErrors uint64
	// Per direction, indexed by Direction (index 0 is unused).
	Bytes, Frames, Messages, Binary, Malformed [3]uint64
}

// Tap makes WebSocket dialers whose connections it observes. Give each
// discordgo Session the *websocket.Dialer from Dialer: every frame the
// Session sends or receives is parsed as it passes, and what it means is
// reported to the Observer. The tap sits above TLS (it does the TLS
// handshake itself in NetDialTLSContext and wraps the *tls.Conn), so it
// sees plaintext frames for wss:// as well as ws://. It never changes,
// delays or holds back bytes; a malformed frame or payload is reported
// and passed on. A Tap is safe for concurrent use.
type Tap struct {
	obs       Observer
	clock     clock.Clock
	frames    bool
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	tlsConfig *tls.Config
	timeout   time.Duration

	conns      atomic.Uint64 // serial numbers handed out
	okConns    atomic.Uint64
	dialErrors atomic.Uint64
	bytes      [3]atomic.Uint64
	nframes    [3]atomic.Uint64
	messages   [3]atomic.Uint64
	binary     [3]atomic.Uint64
	malformed  [3]atomic.Uint64
}

// NewTap returns a Tap.
func NewTap(s TapSettings) *Tap {
	t := &Tap{obs: s.Observer, clock: clock.Or(s.Clock), frames: s.ObserveFrames,
		dial: s.DialContext, tlsConfig: s.TLSConfig, timeout: s.HandshakeTimeout}
	if t.dial == nil {
		var d net.Dialer
		t.dial = d.DialContext
	}
	if t.timeout <= 0 {
		t.timeout = 20 * time.Second
	}
	return t
}

// Dialer returns a new *websocket.Dialer whose connections the tap
// observes: one per discordgo Session, never websocket.DefaultDialer. It
// uses no proxy (a CONNECT exchange would sit between the tap and the
// frames) and no permessage-deflate (compressed frames could not be
// read).
func (t *Tap) Dialer() *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:    t.dialPlain,
		NetDialTLSContext: t.dialTLS,
		HandshakeTimeout:  t.timeout,
	}
}

// Stats returns the counters so far.
func (t *Tap) Stats() TapStats {
	s := TapStats{Conns: t.okConns.Load(), DialErrors: t.dialErrors.Load()}
	for d := Sent; d <= Received; d++ {
		s.Bytes[d] = t.bytes[d].Load()
		s.Frames[d] = t.nframes[d].Load()
		s.Messages[d] = t.messages[d].Load()
		s.Binary[d] = t.binary[d].Load()
		s.Malformed[d] = t.malformed[d].Load()
	}
	return s
}

func (t *Tap) dialPlain(ctx context.Context, network, addr string) (net.Conn, error) {
	id := t.conns.Add(1)
	c, err := t.dial(ctx, network, addr)
	if err != nil {
		t.dialFailed(id, addr, err)
		return nil, err
	}
	return t.wrap(id, addr, c, false), nil
}

func (t *Tap) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	id := t.conns.Add(1)
	raw, err := t.dial(ctx, network, addr)
	if err != nil {
		t.dialFailed(id, addr, err)
		return nil, err
	}
	var cfg *tls.Config
	if t.tlsConfig != nil {
		cfg = t.tlsConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		host, _, splitErr := net.SplitHostPort(addr)
		if splitErr != nil {
			host = addr
		}
		cfg.ServerName = host
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		err = fmt.Errorf("conn: TLS handshake with %s: %w", addr, err)
		t.dialFailed(id, addr, err)
		return nil, err
	}
	return t.wrap(id, addr, tc, false), nil
}

func (t *Tap) dialFailed(id uint64, addr string, err error) {
	t.dialErrors.Add(1)
	if t.obs != nil {
		t.obs.Observe(Observation{Kind: KindDialError, Dir: Sent, Conn: id, Time: t.clock.Now(), Addr: addr, Err: err})
	}
}

// WrapConn observes c as a client-side gateway connection whose first
// bytes each way are the HTTP upgrade, as if the tap had dialed it. Use it
// when something else makes the connection.
func (t *Tap) WrapConn(c net.Conn) net.Conn {
	addr := ""
	if ra := c.RemoteAddr(); ra != nil {
		addr = ra.String()
	}
	return t.wrap(t.conns.Add(1), addr, c, false)
}

// wrapFrames observes c from its first frame (no HTTP upgrade). Tests and
// fuzzing use it.
func (t *Tap) wrapFrames(c net.Conn) *tappedConn {
	return t.wrap(t.conns.Add(1), "", c, true)
}

func (t *Tap) wrap(id uint64, addr string, c net.Conn, skipHTTP bool) *tappedConn {
	t.okConns.Add(1)
	tc := &tappedConn{Conn: c, tap: t, id: id}
	tc.rd.s = newStream(Received, tc, skipHTTP)
	tc.wr.s = newStream(Sent, tc, skipHTTP)
	tc.tcache = make(map[string]string)
	if t.obs != nil {
		t.obs.Observe(Observation{Kind: KindDial, Dir: Sent, Conn: id, Time: t.clock.Now(), Addr: addr})
	}
	return tc
}

// tappedConn passes bytes through unchanged and feeds a copy of what
// passed to one stream parser per direction.
type tappedConn struct {
	net.Conn
	tap *Tap
	id  uint64

	rd, wr struct {
		mu sync.Mutex
		s  *stream
	}

	lastHeartbeat atomic.Int64 // UnixNano of the last heartbeat sent; 0 if none
	ended         atomic.Bool

	tmu    sync.Mutex
	tcache map[string]string // interned dispatch names
}

// Read reads from the connection and parses what it got.
func (c *tappedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.tap.bytes[Received].Add(uint64(n))
		c.rd.mu.Lock()
		c.rd.s.feed(b[:n])
		c.rd.mu.Unlock()
	}
	if err != nil {
		c.end(Received, err)
	}
	return n, err
}

// Write writes to the connection and parses what was written.
func (c *tappedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.tap.bytes[Sent].Add(uint64(n))
		c.wr.mu.Lock()
		c.wr.s.feed(b[:n])
		c.wr.mu.Unlock()
	}
	if err != nil {
		c.end(Sent, err)
	}
	return n, err
}

// Close closes the connection.
func (c *tappedConn) Close() error {
	c.end(Sent, nil)
	return c.Conn.Close()
}

// NetConn returns the wrapped connection.
func (c *tappedConn) NetConn() net.Conn { return c.Conn }

func (c *tappedConn) end(d Direction, err error) {
	if c.ended.Swap(true) {
		return
	}
	c.emit(Observation{Kind: KindConnEnd, Dir: d, Err: err})
}

func (c *tappedConn) emit(o Observation) {
	if c.tap.obs == nil {
		return
	}
	o.Conn = c.id
	o.Time = c.tap.clock.Now()
	c.tap.obs.Observe(o)
}

// frameSink implementation.

func (c *tappedConn) upgrade(d Direction, status int) {
	c.emit(Observation{Kind: KindUpgrade, Dir: d, Status: status})
}

func (c *tappedConn) frame(d Direction, f Frame) {
	c.tap.nframes[d].Add(1)
	if c.tap.frames {
		c.emit(Observation{Kind: KindFrame, Dir: d, Frame: f})
	}
}

func (c *tappedConn) binaryMessage(d Direction, length int64) {
	c.tap.binary[d].Add(1)
	c.emit(Observation{Kind: KindBinary, Dir: d, Length: length})
}

func (c *tappedConn) closeFrame(d Direction, code int, reason string) {
	c.emit(Observation{Kind: KindClose, Dir: d, CloseCode: code, CloseReason: reason})
}

func (c *tappedConn) malformed(d Direction, err error) {
	c.tap.malformed[d].Add(1)
	c.emit(Observation{Kind: KindMalformed, Dir: d, Err: err})
}

// errNoOp is reported for a text message without an integer "op".
var errNoOp = fmt.Errorf("%w: no integer \"op\"", errMalformedPayload)

func (c *tappedConn) message(d Direction, r *scanResult, length int64) {
	c.tap.messages[d].Add(1)
	if r.fieldErrs > 0 {
		c.malformed(d, fmt.Errorf("%s: %w: %d field(s) with an unexpected value, the first %s",
			d, errMalformedPayload, r.fieldErrs, fieldName(r.firstFieldErrField)))
	}
	if !r.hasOp {
		c.malformed(d, fmt.Errorf("%s: %w", d, errNoOp))
		return
	}
	o := Observation{Dir: d, Op: int(r.op), Length: length}
	switch {
	case r.op == opDispatch && d == Received:
		o.Kind = KindDispatch
		o.Seq, o.HasSeq = r.s, r.hasS
		o.Type = c.intern(r.t)
		c.emit(o)
		switch o.Type {
		case "READY":
			o.Kind = KindReady
			o.SessionID, _ = unquoteJSON(r.sessionID, r.sessionIDEscaped)
			o.ResumeGatewayURL, _ = unquoteJSON(r.resumeURL, r.resumeURLEscaped)
			o.Shard, o.HasShard = r.shard, r.hasShard
			c.emit(o)
		case "RESUMED":
			o.Kind = KindResumed
			c.emit(o)
		}
		return
	case r.op == opHeartbeat:
		o.Kind = KindHeartbeat
		o.Seq, o.HasSeq = r.dInt, r.hasDInt
		if d == Sent {
			c.lastHeartbeat.Store(c.tap.clock.Now().UnixNano())
		}
	case r.op == opHeartbeatAck && d == Received:
		o.Kind = KindHeartbeatAck
		if last := c.lastHeartbeat.Load(); last != 0 {
			o.Latency = time.Duration(c.tap.clock.Now().UnixNano() - last)
		}
	case r.op == opHello && d == Received:
		o.Kind = KindHello
		o.HeartbeatInterval = time.Duration(r.heartbeatMS * float64(time.Millisecond))
	case r.op == opReconnect && d == Received:
		o.Kind = KindReconnect
	case r.op == opInvalidSession && d == Received:
		o.Kind = KindInvalidSession
		o.Resumable = r.hasDBool && r.dBool
	case r.op == opIdentify && d == Sent:
		o.Kind = KindIdentify
		o.Shard, o.HasShard = r.shard, r.hasShard
		o.Intents = discordgo.Intent(r.intents)
		o.Compress = r.compress
	case r.op == opResume && d == Sent:
		o.Kind = KindResume
		o.SessionID, _ = unquoteJSON(r.sessionID, r.sessionIDEscaped)
		o.Seq, o.HasSeq = r.seq, r.hasSeq
	default:
		o.Kind = KindOp
	}
	c.emit(o)
}

// intern returns the dispatch name as a string, allocating only the first
// time a connection sees a name (up to 512 distinct names).
func (c *tappedConn) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	c.tmu.Lock()
	defer c.tmu.Unlock()
	if s, ok := c.tcache[string(b)]; ok {
		return s
	}
	s, ok := unquoteJSON(b, hasBackslash(b))
	if !ok {
		return ""
	}
	if len(c.tcache) < 512 {
		c.tcache[string(b)] = s
	}
	return s
}

func fieldName(f scanField) string {
	switch f {
	case fieldOp:
		return "op"
	case fieldS:
		return "s"
	case fieldT:
		return "t"
	case fieldD:
		return "d"
	case fieldHeartbeatInterval:
		return "d.heartbeat_interval"
	case fieldSessionID:
		return "d.session_id"
	case fieldResumeURL:
		return "d.resume_gateway_url"
	case fieldSeq:
		return "d.seq"
	case fieldIntents:
		return "d.intents"
	case fieldShard:
		return "d.shard"
	case fieldCompress:
		return "d.compress"
	}
	return "?"
}
