package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-bot/lifeline/core/clock"
)

// Defaults for Options.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultZombieFactor     = 1.4
	DefaultWriteTimeout     = 10 * time.Second
	// DefaultMaxMessageSize is Options.MaxMessageSize's default, the
	// same bound as the Node.js ws library's maxPayload.
	DefaultMaxMessageSize = 100 << 20
	// ResumableCloseCode is sent when lifeline closes a connection whose
	// session it means to RESUME: any code but 1000/1001 keeps it alive.
	ResumableCloseCode = 4000
)

// Options configures a Conn. Only URL is required.
type Options struct {
	// URL is the gateway to dial, with its query, e.g.
	// "wss://gateway.discord.gg/?v=9&encoding=json". Required.
	URL string
	// Dialer dials the WebSocket. Default: a fresh websocket.Dialer (never
	// websocket.DefaultDialer, so no state is shared between sessions). A
	// Dialer that sets neither WriteBufferSize nor WriteBufferPool is used
	// with lifeline's shared write buffer pool, so an idle connection holds
	// no write buffer (the Dialer given is copied, never changed).
	Dialer *websocket.Dialer
	// Header is sent with the upgrade request. Default: none.
	Header http.Header
	// Clock times heartbeats, zombie detection and handshake deadlines.
	// Default: clock.Real.
	Clock clock.Clock
	// HandshakeTimeout bounds the wait for HELLO after dialling and for
	// READY or RESUMED after IDENTIFY or RESUME. Default: 10s.
	HandshakeTimeout time.Duration
	// ZombieFactor: the connection is a zombie when no ACK arrived for
	// ZombieFactor heartbeat intervals. Default: 1.4 (discordgo alone: 5):
	// the ACK of the heartbeat after the last one answered gets 0.4 of an
	// interval (16.5s on Discord) to arrive, and detection as Discord
	// sees it, frames' flight included, stays within 1.5 intervals. No
	// zombie is declared while an IDENTIFY waits for its READY: ending the
	// connection then would lose the session Discord may have made, and
	// HandshakeTimeout bounds that wait.
	ZombieFactor float64
	// WriteTimeout bounds each write to the socket. Default: 10s.
	WriteTimeout time.Duration
	// MaxMessageSize bounds one message read from Discord, in bytes: a
	// larger one ends the connection as a protocol error (it resumes, like
	// any other), so a broken or hostile server cannot make the bot buffer
	// without end. Default: 100 MiB (DefaultMaxMessageSize); negative: no
	// bound. Discord's largest messages, a big guild's GUILD_CREATE, run
	// to a few megabytes.
	MaxMessageSize int64
	// Jitter returns a number in [0, 1) that delays the first heartbeat by
	// that share of the interval, as Discord asks. Default: math/rand/v2.
	Jitter func() float64
	// Observer receives what happens on the wire. Default: none.
	Observer Observer
}

func (o *Options) defaults() {
	o.Clock = clock.Or(o.Clock)
	if o.Dialer == nil {
		o.Dialer = &websocket.Dialer{HandshakeTimeout: DefaultHandshakeTimeout}
	}
	if o.Dialer.WriteBufferPool == nil && o.Dialer.WriteBufferSize == 0 {
		d := *o.Dialer
		d.WriteBufferPool = writeBuffers
		o.Dialer = &d
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.ZombieFactor <= 0 {
		o.ZombieFactor = DefaultZombieFactor
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
}

// Handshake says how a connection starts its session: IDENTIFY with the
// given d, or RESUME an existing session.
type Handshake struct {
	// Identify is the JSON d of op 2 (it holds the token). Used when Resume
	// is nil.
	Identify json.RawMessage
	// Resume, when set, makes the connection RESUME this session.
	Resume *ResumeState
	// BeforeIdentify, when set, is called after HELLO and before IDENTIFY
	// is sent: the identify queue waits here, so the spacing Discord
	// enforces is measured at the moment IDENTIFY leaves. Heartbeats run
	// while it waits. An error ends the connection with EndIdentifyBlocked.
	BeforeIdentify func(ctx context.Context) error
}

// ResumeState is what a RESUME needs. Token is a secret: ResumeState never
// prints it.
type ResumeState struct {
	Token     string
	SessionID string
	Seq       int64
	URL       string // resume_gateway_url from READY; empty to reuse the gateway URL
}

// String omits the token.
func (r ResumeState) String() string {
	return fmt.Sprintf("session %s at seq %d", r.SessionID, r.Seq)
}

// Handler receives every dispatch (op 0), READY and RESUMED included, in
// the order Discord sent them. It runs on Run's goroutine, which reads the
// socket: blocking it applies back-pressure to the socket (heartbeats go on
// meanwhile, from timers), and it must return when ctx is done.
type Handler func(ctx context.Context, p Payload, raw []byte)

// Conn is one upstream connection to a Discord gateway. Make it with
// NewConn, start it with Run; Send and Close may be called from other
// goroutines while Run runs. A Conn is used once.
//
// Run reads the socket on its caller's goroutine and starts no other that
// lives as long as the connection: heartbeats, zombie detection and the
// handshake deadline run on timers (see session), so an idle shard costs
// one parked goroutine here, not two.
type Conn struct {
	opts Options

	mu      sync.Mutex
	ws      *websocket.Conn
	sess    *session // the running connection's state machine, while Run runs
	ready   bool
	closing bool
	started bool

	writeMu sync.Mutex
	bg      sync.WaitGroup // helper goroutines Run waits for
	lastSeq atomic.Int64   // last dispatch sequence handled, for heartbeats
}

// NewConn returns an unconnected Conn.
func NewConn(opts Options) *Conn {
	opts.defaults()
	return &Conn{opts: opts}
}

// ErrNotReady is returned by Send when the connection has not reached
// READY or RESUMED, or has ended.
var ErrNotReady = errors.New("gateway: connection not ready")

// ErrUsed is returned by Run when the Conn already ran.
var ErrUsed = errors.New("gateway: Conn already used")

// Send writes one client frame (presence, voice state, member request...)
// once the session is READY.
func (c *Conn) Send(frame []byte) error {
	c.mu.Lock()
	ws, ready := c.ws, c.ready && !c.closing
	c.mu.Unlock()
	if !ready {
		return ErrNotReady
	}
	return c.write(ws, frame)
}

// Close asks Run to end, closing the socket with code (use
// ResumableCloseCode to keep the session resumable, 1000 to end it). It
// does not wait for Run to return.
func (c *Conn) Close(code int) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		s.finish(End{Reason: EndStopped, sentCode: code})
	}
}

func (c *Conn) write(ws *websocket.Conn, frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	return ws.WriteMessage(websocket.TextMessage, frame)
}

// Run dials, performs the handshake and serves the connection until it
// ends, then closes the socket and returns why. It reads the socket on the
// caller's goroutine, and returns only after every goroutine it started
// has stopped.
func (c *Conn) Run(ctx context.Context, hs Handshake, handle Handler) End {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return End{Reason: EndDialFailed, Err: ErrUsed}
	}
	c.started = true
	c.mu.Unlock()

	o := &c.opts
	url := o.URL
	if hs.Resume != nil && hs.Resume.URL != "" {
		url = resumeURL(hs.Resume.URL, o.URL)
	}
	dialCtx, cancelDial := context.WithTimeout(ctx, o.HandshakeTimeout)
	ws, resp, err := o.Dialer.DialContext(dialCtx, url, o.Header)
	cancelDial()
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return End{Reason: EndStopped, Err: ctx.Err()}
		}
		return End{Reason: EndDialFailed, Err: fmt.Errorf("gateway: dial: %w", err)}
	}
	if o.MaxMessageSize > 0 {
		ws.SetReadLimit(o.MaxMessageSize)
	}
	o.Observer.Observe(Observation{Kind: ObsConnected, Time: o.Clock.Now()})

	runCtx, cancel := context.WithCancel(ctx)
	s := &session{c: c, ws: ws, hs: hs, ctx: runCtx, cancel: cancel, ackedLast: true}
	if hs.Resume != nil {
		s.seq = hs.Resume.Seq
	}
	c.mu.Lock()
	c.ws = ws
	c.sess = s
	closing := c.closing
	c.mu.Unlock()
	stopWatch := context.AfterFunc(ctx, func() { s.finish(s.withCode(End{Reason: EndStopped, Err: ctx.Err()})) })

	if closing {
		s.finish(s.withCode(End{Reason: EndStopped}))
	} else {
		s.evMu.Lock()
		s.arm(&s.handshake, o.HandshakeTimeout, s.onHandshakeTimeout)
		s.evMu.Unlock()
		s.read(handle)
	}

	// Tear down: no event acts from here on; tell the server why (best
	// effort, bounded), drop the socket, and wait for the helpers so no
	// goroutine outlives Run.
	stopWatch()
	s.evMu.Lock()
	s.stopped = true
	s.disarm(&s.handshake)
	s.disarm(&s.beat)
	s.disarm(&s.zombie)
	readied, sent := s.readied, s.handshakeSent
	s.evMu.Unlock()
	s.endMu.Lock()
	end := s.end
	s.endMu.Unlock()
	end.Ready, end.HandshakeSent = readied, sent
	if code := end.sentCode; code != 0 {
		c.writeMu.Lock()
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		o.Observer.Observe(Observation{Kind: ObsCloseSent, Time: o.Clock.Now(), CloseCode: code})
	}
	cancel()
	ws.Close()
	c.bg.Wait()
	c.mu.Lock()
	c.ready = false
	c.closing = true
	c.sess = nil
	c.mu.Unlock()
	return end
}

// resumeURL puts the gateway URL's query (version, encoding) on the
// resume_gateway_url, which Discord sends without one. A resume URL that
// does not parse falls back to the gateway URL.
func resumeURL(resume, gateway string) string {
	r, err := url.Parse(resume)
	if err != nil || r.Host == "" {
		return gateway
	}
	if r.RawQuery == "" {
		if g, err := url.Parse(gateway); err == nil {
			r.RawQuery = g.RawQuery
		}
	}
	if r.Path == "" {
		r.Path = "/"
	}
	return r.String()
}

// session is the state machine of one connection. Three kinds of event
// drive it, each under evMu so they happen one at a time: the frames Run's
// reader takes off the socket (read), the timers (handshake deadline,
// heartbeat, zombie check; each a clock.AfterFunc whose callback runs
// briefly on a goroutine of its own), and the identify queue's answer.
// What ends the connection (any event, Close, the context) goes through
// finish: the first cause wins, and finish wakes the reader, which is
// blocked reading the socket or delivering a dispatch, so Run can tear
// down.
type session struct {
	c      *Conn
	ws     *websocket.Conn
	hs     Handshake
	ctx    context.Context // cancelled by finish: delivery and the identify wait stop
	cancel context.CancelFunc

	endMu sync.Mutex
	ended bool
	end   End

	evMu      sync.Mutex
	stopped   bool // Run is tearing down: events do nothing
	interval  time.Duration
	seq       int64
	helloed   bool
	readied   bool
	lastAck   time.Time
	sentAt    time.Time
	ackedLast bool // no heartbeat outstanding
	// handshakeSent: IDENTIFY or RESUME went out; identifying: it was an
	// IDENTIFY, whose READY the zombie check waits for.
	handshakeSent, identifying bool

	handshake, beat, zombie timer
}

// timer is one of a session's timers. gen tells a callback that fired
// while the timer was being re-armed or stopped (it waited for evMu
// meanwhile) that it is stale.
type timer struct {
	t   clock.Timer
	gen uint64
}

// arm (re)starts a's countdown: fn runs under evMu after d, unless a is
// armed again or disarmed first, or the session has ended. evMu is held.
func (s *session) arm(a *timer, d time.Duration, fn func()) {
	s.disarm(a)
	g := a.gen
	a.t = s.c.opts.Clock.AfterFunc(d, func() {
		s.evMu.Lock()
		defer s.evMu.Unlock()
		if a.gen != g || !s.live() {
			return
		}
		a.t = nil
		fn()
	})
}

// disarm stops a; a callback already on its way finds itself stale. evMu
// is held.
func (s *session) disarm(a *timer) {
	if a.t != nil {
		a.t.Stop()
		a.t = nil
	}
	a.gen++
}

// live reports whether events still act: the session has not ended and
// Run is not tearing down. evMu is held.
func (s *session) live() bool {
	return !s.stopped && !s.isEnded()
}

func (s *session) isEnded() bool {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	return s.ended
}

// finish ends the session with e unless it has ended already, and wakes
// the reader: the context it delivers under is cancelled and the socket's
// read deadline passes at once.
func (s *session) finish(e End) {
	s.endMu.Lock()
	if s.ended {
		s.endMu.Unlock()
		return
	}
	s.ended, s.end = true, e
	s.endMu.Unlock()
	s.cancel()
	_ = s.ws.NetConn().SetReadDeadline(time.Unix(1, 0))
}

// withCode closes the socket with the resumable code unless e says
// otherwise or the socket is gone already.
func (s *session) withCode(e End) End {
	if e.sentCode == 0 && e.Reason != EndClosed && e.Reason != EndReadError {
		e.sentCode = ResumableCloseCode
	}
	return e
}

func (s *session) zombieAfter() time.Duration {
	return time.Duration(s.c.opts.ZombieFactor * float64(s.interval))
}

// read is Run's reader: it takes frames off the socket until the session
// ends, hands every dispatch to handle and every other payload to the
// state machine.
func (s *session) read(handle Handler) {
	c, o := s.c, &s.c.opts
	for {
		mt, data, err := s.ws.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) {
			o.Observer.Observe(Observation{Kind: ObsMalformed, Time: o.Clock.Now(), Err: "message over MaxMessageSize"})
			s.finish(End{Reason: EndProtocol, Err: fmt.Errorf("gateway: a message over %d bytes (Options.MaxMessageSize): %w", o.MaxMessageSize, err)})
			return
		}
		if err != nil {
			s.finish(classifyReadError(err, false))
			return
		}
		now := o.Clock.Now()
		if mt != websocket.TextMessage {
			o.Observer.Observe(Observation{Kind: ObsMalformed, Time: now, Err: "binary frame (compression is not requested)"})
			continue
		}
		p, err := DecodePayload(data)
		if err != nil {
			o.Observer.Observe(Observation{Kind: ObsMalformed, Time: now, Err: err.Error()})
			continue
		}
		o.Observer.Observe(Observation{Kind: ObsReceived, Time: now, Op: p.Op, Seq: p.Seq(), Type: p.T, Size: len(data)})
		if p.Op != OpDispatch {
			s.evMu.Lock()
			if s.live() {
				s.control(p, now)
			}
			s.evMu.Unlock()
			continue
		}
		if s.isEnded() {
			return // the connection is ending: what follows will be replayed
		}
		handle(s.ctx, p, data)
		c.lastSeq.Store(p.Seq())
		if p.T == "READY" || p.T == "RESUMED" {
			var info readyInfo
			if p.T == "READY" {
				_ = json.Unmarshal(p.D, &info)
			}
			s.evMu.Lock()
			if s.live() {
				s.onReady(p, info)
			}
			s.evMu.Unlock()
		}
	}
}

// onReady marks the session READY (or RESUMED). evMu is held.
func (s *session) onReady(p Payload, info readyInfo) {
	c, o := s.c, &s.c.opts
	s.readied = true
	s.disarm(&s.handshake)
	c.mu.Lock()
	c.ready = true
	c.mu.Unlock()
	if p.S != nil {
		s.seq = *p.S
	}
	o.Observer.Observe(Observation{Kind: ObsReady, Time: o.Clock.Now(), Type: p.T, SessionID: info.SessionID,
		ResumeURL: info.ResumeGatewayURL, Seq: s.seq})
}

// sendHandshake sends IDENTIFY or RESUME and starts the READY deadline.
// evMu is held.
func (s *session) sendHandshake() error {
	c, o := s.c, &s.c.opts
	var frame []byte
	op := OpIdentify
	if r := s.hs.Resume; r != nil {
		d, _ := json.Marshal(resumeData{Token: r.Token, SessionID: r.SessionID, Seq: r.Seq})
		frame, op = encode(OpResume, d), OpResume
	} else {
		frame = encode(OpIdentify, s.hs.Identify)
	}
	// A connection sends one handshake: drop what holds the token rather
	// than keep it for the connection's life.
	s.hs.Identify, s.hs.Resume = nil, nil
	// Marked before the write: a write that fails half-way may still have
	// reached Discord.
	s.handshakeSent, s.identifying = true, op == OpIdentify
	if err := c.write(s.ws, frame); err != nil {
		return err
	}
	o.Observer.Observe(Observation{Kind: ObsSent, Time: o.Clock.Now(), Op: op})
	s.arm(&s.handshake, o.HandshakeTimeout, s.onHandshakeTimeout)
	return nil
}

// sendHeartbeat sends op 1 with the last sequence handled. evMu is held.
func (s *session) sendHeartbeat() error {
	c, o := s.c, &s.c.opts
	// sentAt keeps the oldest unanswered heartbeat: a second beat sent
	// while one is outstanding must not hide how long Discord has been
	// silent.
	if s.ackedLast {
		s.sentAt = o.Clock.Now()
	}
	s.ackedLast = false
	if q := c.lastSeq.Load(); q > s.seq {
		s.seq = q
	}
	o.Observer.Observe(Observation{Kind: ObsHeartbeatSent, Time: s.sentAt, Seq: s.seq})
	return c.write(s.ws, heartbeatFrame(s.seq))
}

// heartbeat sends one heartbeat, ending the session if the write fails.
// evMu is held.
func (s *session) heartbeat() bool {
	if err := s.sendHeartbeat(); err != nil {
		s.finish(End{Reason: EndReadError, Err: fmt.Errorf("gateway: heartbeat: %w", err)})
		return false
	}
	return true
}

func (s *session) onHandshakeTimeout() {
	stage := "HELLO"
	if s.helloed {
		stage = "READY or RESUMED"
	}
	s.finish(s.withCode(End{Reason: EndHandshakeTimeout, Err: fmt.Errorf("gateway: no %s within %s", stage, s.c.opts.HandshakeTimeout)}))
}

func (s *session) onBeat() {
	if s.heartbeat() {
		s.arm(&s.beat, s.interval, s.onBeat)
	}
}

func (s *session) onZombie() {
	clk := s.c.opts.Clock
	// A zombie needs evidence: a heartbeat that Discord has had time to
	// answer. If this process stalled (GC, an overloaded machine) and never
	// sent one, blaming the connection would throw away a healthy session.
	grace := s.zombieAfter() - s.interval
	if grace <= 0 {
		grace = s.interval / 2
	}
	if s.identifying && !s.readied {
		// An IDENTIFY waits for its READY: Discord may have made the
		// session already, and a connection ended now loses it (its id
		// comes in READY, so it cannot be resumed) and the session start
		// it cost. The handshake deadline bounds this wait; the zombie
		// check resumes once READY is in. Heartbeats go on meanwhile.
		s.arm(&s.zombie, grace, s.onZombie)
		return
	}
	if s.ackedLast {
		if s.heartbeat() {
			s.arm(&s.beat, s.interval, s.onBeat)
			s.arm(&s.zombie, grace, s.onZombie)
		}
		return
	}
	if out := clk.Since(s.sentAt); out < grace {
		s.arm(&s.zombie, grace-out, s.onZombie)
		return
	}
	age := clk.Since(s.lastAck)
	s.finish(s.withCode(End{Reason: EndZombie,
		Err: fmt.Errorf("gateway: no heartbeat ACK for %s (interval %s)", age.Round(time.Millisecond), s.interval)}))
}

// onIdentifyGo is the identify queue's answer: IDENTIFY may go, or err
// says why not. evMu is held.
func (s *session) onIdentifyGo(err error) {
	if err != nil {
		s.finish(s.withCode(End{Reason: EndIdentifyBlocked, Err: err}))
		return
	}
	if err := s.sendHandshake(); err != nil {
		s.finish(End{Reason: EndReadError, Err: fmt.Errorf("gateway: handshake write: %w", err)})
	}
}

// control acts on a payload that is not a dispatch. evMu is held.
func (s *session) control(p Payload, now time.Time) {
	c, o := s.c, &s.c.opts
	switch p.Op {
	case OpHello:
		if s.helloed {
			return
		}
		var h hello
		if err := json.Unmarshal(p.D, &h); err != nil || h.HeartbeatInterval <= 0 {
			s.finish(s.withCode(End{Reason: EndProtocol, Err: errors.New("gateway: HELLO without a valid heartbeat_interval")}))
			return
		}
		s.helloed = true
		s.interval = time.Duration(h.HeartbeatInterval * float64(time.Millisecond))
		o.Observer.Observe(Observation{Kind: ObsHello, Time: now, Interval: s.interval})
		s.lastAck = now
		s.arm(&s.beat, time.Duration(o.Jitter()*float64(s.interval)), s.onBeat)
		s.arm(&s.zombie, s.zombieAfter(), s.onZombie)
		if s.hs.Resume == nil && s.hs.BeforeIdentify != nil {
			s.disarm(&s.handshake) // the READY deadline starts when IDENTIFY leaves
			c.bg.Add(1)
			go func() {
				defer c.bg.Done()
				err := s.hs.BeforeIdentify(s.ctx)
				s.evMu.Lock()
				defer s.evMu.Unlock()
				if s.live() {
					s.onIdentifyGo(err)
				}
			}()
			return
		}
		if err := s.sendHandshake(); err != nil {
			s.finish(End{Reason: EndReadError, Err: fmt.Errorf("gateway: handshake write: %w", err)})
		}

	case OpHeartbeatACK:
		s.lastAck = now
		obs := Observation{Kind: ObsAck, Time: now}
		if !s.ackedLast {
			obs.RTT = now.Sub(s.sentAt)
		}
		s.ackedLast = true
		s.arm(&s.zombie, s.zombieAfter(), s.onZombie)
		// Observed last: whoever sees the ACK sees it processed.
		o.Observer.Observe(obs)

	case OpHeartbeat:
		s.heartbeat()

	case OpReconnect:
		s.finish(s.withCode(End{Reason: EndReconnect}))

	case OpInvalidSession:
		var resumable bool
		_ = json.Unmarshal(p.D, &resumable)
		e := End{Reason: EndInvalidSession, Resumable: resumable}
		if !resumable && s.handshakeSent {
			e.sentCode = 1000 // the session is gone anyway
		}
		s.finish(s.withCode(e))

	default:
		o.Observer.Observe(Observation{Kind: ObsMalformed, Time: now, Op: p.Op, Err: fmt.Sprintf("unexpected opcode %d", p.Op)})
	}
}

func classifyReadError(err error, readied bool) End {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		return End{Reason: EndClosed, CloseCode: ce.Code, CloseText: ce.Text, Ready: readied,
			Err: fmt.Errorf("gateway: closed by Discord with %d", ce.Code)}
	}
	return End{Reason: EndReadError, Ready: readied, Err: fmt.Errorf("gateway: connection lost: %w", err)}
}
