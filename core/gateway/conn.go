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
	// sees it, frames' flight included, stays within 1.5 intervals.
	ZombieFactor float64
	// WriteTimeout bounds each write to the socket. Default: 10s.
	WriteTimeout time.Duration
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
// the order Discord sent them. It runs on the connection's reader goroutine:
// blocking it applies back-pressure to the socket, and it must return when
// ctx is done.
type Handler func(ctx context.Context, p Payload, raw []byte)

// Conn is one upstream connection to a Discord gateway. Make it with
// NewConn, start it with Run; Send and Close may be called from other
// goroutines while Run runs. A Conn is used once.
type Conn struct {
	opts Options

	mu      sync.Mutex
	ws      *websocket.Conn
	ready   bool
	closing bool
	closeCh chan int // Close's code reaches Run here
	started bool

	writeMu sync.Mutex
	bg      sync.WaitGroup // helper goroutines Run waits for
	lastSeq atomic.Int64   // last dispatch sequence handled, for heartbeats
}

// NewConn returns an unconnected Conn.
func NewConn(opts Options) *Conn {
	opts.defaults()
	return &Conn{opts: opts, closeCh: make(chan int, 1)}
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
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	c.closeCh <- code
}

func (c *Conn) write(ws *websocket.Conn, frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	return ws.WriteMessage(websocket.TextMessage, frame)
}

// ctrl is a non-dispatch payload (or the reader's end) handed from the
// reader goroutine to Run's loop.
type ctrl struct {
	p          Payload
	ready      bool // READY or RESUMED was just delivered
	resumedURL string
	sessionID  string
	err        error // the reader stopped
}

// Run dials, performs the handshake and serves the connection until it
// ends, then closes the socket and returns why. It returns only after its
// goroutines have stopped.
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
	o.Observer.Observe(Observation{Kind: ObsConnected, Time: o.Clock.Now()})

	c.mu.Lock()
	c.ws = ws
	closing := c.closing
	c.mu.Unlock()

	runCtx, cancel := context.WithCancel(ctx)
	ctrlCh := make(chan ctrl, 16)
	readerDone := make(chan struct{})
	go c.read(runCtx, ws, handle, ctrlCh, readerDone)

	end := c.loop(runCtx, ws, hs, ctrlCh, closing)

	// Tear down: tell the server why (best effort, bounded), drop the
	// socket, and wait for the reader so no goroutine outlives Run.
	code := end.sentCode
	if code != 0 {
		c.writeMu.Lock()
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		o.Observer.Observe(Observation{Kind: ObsCloseSent, Time: o.Clock.Now(), CloseCode: code})
	}
	cancel()
	ws.Close()
	<-readerDone
	c.bg.Wait()
	c.mu.Lock()
	c.ready = false
	c.closing = true
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

func (c *Conn) read(ctx context.Context, ws *websocket.Conn, handle Handler, out chan<- ctrl, done chan<- struct{}) {
	defer close(done)
	o := &c.opts
	send := func(m ctrl) bool {
		select {
		case out <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			send(ctrl{err: err})
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
			if !send(ctrl{p: p}) {
				return
			}
			continue
		}
		if ctx.Err() != nil {
			return // the connection is ending: what follows will be replayed
		}
		handle(ctx, p, data)
		c.lastSeq.Store(p.Seq())
		if p.T == "READY" || p.T == "RESUMED" {
			m := ctrl{p: p, ready: true}
			if p.T == "READY" {
				var info readyInfo
				if err := json.Unmarshal(p.D, &info); err == nil {
					m.sessionID, m.resumedURL = info.SessionID, info.ResumeGatewayURL
				}
			}
			if !send(m) {
				return
			}
		}
	}
}

// loop is Run's state machine for one connection.
func (c *Conn) loop(ctx context.Context, ws *websocket.Conn, hs Handshake, in <-chan ctrl, closing bool) End {
	o := &c.opts
	clk := o.Clock
	end := func(e End) End {
		if e.sentCode == 0 && e.Reason != EndClosed && e.Reason != EndReadError {
			e.sentCode = ResumableCloseCode
		}
		return e
	}
	if closing {
		return end(End{Reason: EndStopped})
	}

	var (
		interval  time.Duration
		seq       int64
		helloed   bool
		readied   bool
		lastAck   time.Time
		sentAt    time.Time
		ackedLast = true // no heartbeat outstanding
	)
	if hs.Resume != nil {
		seq = hs.Resume.Seq
	}

	handshake := clk.NewTimer(o.HandshakeTimeout)
	defer handshake.Stop()
	// Heartbeat and zombie timers start stopped; HELLO arms them.
	beat := clk.NewTimer(time.Hour)
	beat.Stop()
	defer beat.Stop()
	zombie := clk.NewTimer(time.Hour)
	zombie.Stop()
	defer zombie.Stop()
	zombieAfter := func() time.Duration { return time.Duration(o.ZombieFactor * float64(interval)) }

	identifyGo := make(chan error, 1)
	sendHandshake := func() error {
		var frame []byte
		op := OpIdentify
		if hs.Resume != nil {
			d, _ := json.Marshal(resumeData{Token: hs.Resume.Token, SessionID: hs.Resume.SessionID, Seq: hs.Resume.Seq})
			frame, op = encode(OpResume, d), OpResume
		} else {
			frame = encode(OpIdentify, hs.Identify)
		}
		if err := c.write(ws, frame); err != nil {
			return err
		}
		o.Observer.Observe(Observation{Kind: ObsSent, Time: clk.Now(), Op: op})
		handshake.Reset(o.HandshakeTimeout)
		return nil
	}

	sendHeartbeat := func() error {
		// sentAt keeps the oldest unanswered heartbeat: a second beat
		// sent while one is outstanding must not hide how long Discord
		// has been silent.
		if ackedLast {
			sentAt = clk.Now()
		}
		ackedLast = false
		if s := c.lastSeq.Load(); s > seq {
			seq = s
		}
		o.Observer.Observe(Observation{Kind: ObsHeartbeatSent, Time: sentAt, Seq: seq})
		return c.write(ws, heartbeatFrame(seq))
	}

	for {
		select {
		case <-ctx.Done():
			return end(End{Reason: EndStopped, Err: ctx.Err(), Ready: readied})

		case code := <-c.closeCh:
			return End{Reason: EndStopped, Ready: readied, sentCode: code}

		case <-handshake.C():
			stage := "HELLO"
			if helloed {
				stage = "READY or RESUMED"
			}
			return end(End{Reason: EndHandshakeTimeout, Err: fmt.Errorf("gateway: no %s within %s", stage, o.HandshakeTimeout)})

		case err := <-identifyGo:
			if err != nil {
				return end(End{Reason: EndIdentifyBlocked, Err: err})
			}
			if err := sendHandshake(); err != nil {
				return End{Reason: EndReadError, Err: fmt.Errorf("gateway: handshake write: %w", err)}
			}

		case <-beat.C():
			if err := sendHeartbeat(); err != nil {
				return End{Reason: EndReadError, Err: fmt.Errorf("gateway: heartbeat: %w", err), Ready: readied}
			}
			beat.Reset(interval)

		case <-zombie.C():
			// A zombie needs evidence: a heartbeat that Discord has had
			// time to answer. If this process stalled (GC, an overloaded
			// machine) and never sent one, blaming the connection would
			// throw away a healthy session.
			grace := zombieAfter() - interval
			if grace <= 0 {
				grace = interval / 2
			}
			if ackedLast {
				if err := sendHeartbeat(); err != nil {
					return End{Reason: EndReadError, Err: fmt.Errorf("gateway: heartbeat: %w", err), Ready: readied}
				}
				beat.Reset(interval)
				zombie.Reset(grace)
				continue
			}
			if out := clk.Since(sentAt); out < grace {
				zombie.Reset(grace - out)
				continue
			}
			age := clk.Since(lastAck)
			return end(End{Reason: EndZombie, Ready: readied,
				Err: fmt.Errorf("gateway: no heartbeat ACK for %s (interval %s)", age.Round(time.Millisecond), interval)})

		case m := <-in:
			if m.err != nil {
				return classifyReadError(m.err, readied)
			}
			now := clk.Now()
			if m.ready {
				readied = true
				handshake.Stop()
				c.mu.Lock()
				c.ready = true
				c.mu.Unlock()
				if m.p.S != nil {
					seq = *m.p.S
				}
				o.Observer.Observe(Observation{Kind: ObsReady, Time: now, Type: m.p.T, SessionID: m.sessionID, ResumeURL: m.resumedURL, Seq: seq})
				continue
			}
			switch m.p.Op {
			case OpHello:
				if helloed {
					continue
				}
				var h hello
				if err := json.Unmarshal(m.p.D, &h); err != nil || h.HeartbeatInterval <= 0 {
					return end(End{Reason: EndProtocol, Err: errors.New("gateway: HELLO without a valid heartbeat_interval")})
				}
				helloed = true
				interval = time.Duration(h.HeartbeatInterval * float64(time.Millisecond))
				o.Observer.Observe(Observation{Kind: ObsHello, Time: now, Interval: interval})
				lastAck = now
				beat.Reset(time.Duration(o.Jitter() * float64(interval)))
				zombie.Reset(zombieAfter())
				if hs.Resume == nil && hs.BeforeIdentify != nil {
					handshake.Stop() // the READY deadline starts when IDENTIFY leaves
					c.bg.Add(1)
					go func() {
						defer c.bg.Done()
						err := hs.BeforeIdentify(ctx)
						select {
						case identifyGo <- err:
						case <-ctx.Done():
						}
					}()
					continue
				}
				if err := sendHandshake(); err != nil {
					return End{Reason: EndReadError, Err: fmt.Errorf("gateway: handshake write: %w", err)}
				}

			case OpHeartbeatACK:
				lastAck = now
				obs := Observation{Kind: ObsAck, Time: now}
				if !ackedLast {
					obs.RTT = now.Sub(sentAt)
				}
				ackedLast = true
				zombie.Reset(zombieAfter())
				// Observed last: whoever sees the ACK sees it processed.
				o.Observer.Observe(obs)

			case OpHeartbeat:
				if err := sendHeartbeat(); err != nil {
					return End{Reason: EndReadError, Err: fmt.Errorf("gateway: heartbeat: %w", err), Ready: readied}
				}

			case OpReconnect:
				return end(End{Reason: EndReconnect, Ready: readied})

			case OpInvalidSession:
				var resumable bool
				_ = json.Unmarshal(m.p.D, &resumable)
				e := End{Reason: EndInvalidSession, Resumable: resumable, Ready: readied}
				if !resumable {
					e.sentCode = 1000 // the session is gone anyway
				}
				return end(e)

			default:
				o.Observer.Observe(Observation{Kind: ObsMalformed, Time: now, Op: m.p.Op, Err: fmt.Sprintf("unexpected opcode %d", m.p.Op)})
			}
		}
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
