package conn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/gateway"
)

// DefaultGatewayURL is Discord's gateway, used until /gateway/bot says
// otherwise.
const DefaultGatewayURL = "wss://gateway.discord.gg"

// Guard admits or refuses a connection attempt: the circuit breaker.
// done reports the attempt's outcome (nil for success).
type Guard interface {
	Allow() (done func(error), err error)
}

// Config configures a Connection. Token is required; every other field
// has a default.
type Config struct {
	// Token is the bot token, without the "Bot " prefix. It is a secret:
	// lifeline never logs, prints or exports it.
	Token string
	// Intents for IDENTIFY. Default: discordgo.IntentsAllWithoutPrivileged.
	Intents discordgo.Intent
	// ShardID and ShardCount say which shard this is. Default: 0 of 1.
	ShardID, ShardCount int
	// GatewayURL is the gateway to dial, as /gateway/bot returns it (no
	// query). Default: DefaultGatewayURL.
	GatewayURL string
	// Session is the discordgo Session the bot adds its handlers to.
	// Default: a new one. lifeline sets its Dialer, its Client, and turns
	// its own reconnect and compression off; do not call its Open or Close.
	Session *discordgo.Session
	// RESTTransport carries the Session's REST calls. Default: a clone of
	// http.DefaultTransport (never the shared one).
	RESTTransport http.RoundTripper
	// GatewayDialer dials Discord. Default: a new websocket.Dialer.
	GatewayDialer *websocket.Dialer
	// Clock drives every timer. Default: clock.Real.
	Clock clock.Clock
	// Events receives STATE_CHANGED, ERROR_OCCURRED and RECOVERY_* events.
	// Default: none.
	Events events.Publisher
	// Logger. Default: hclog's null logger.
	Logger hclog.Logger
	// Observer receives every wire observation (for metrics). Default: none.
	Observer gateway.Observer
	// Breaker guards connection attempts. Default: none.
	Breaker Guard
	// Planner, when set, chooses how the connection recovers: after a
	// connection ends with an error that is not fatal, the loop publishes
	// ERROR_OCCURRED as usual and, instead of choosing resume or identify
	// and backing off by itself, runs Planner.Plan and carries out the
	// attempts it asks for. Fatal close codes, the session-start budget and
	// MaxReconnectAttempts still end the connection. Default: none (the
	// loop's own choice).
	Planner Planner
	// IdentifyQueue paces IDENTIFYs. Default: a LocalIdentifyQueue with
	// Discord's default budget (1000 a day, max_concurrency 1).
	IdentifyQueue IdentifyQueue
	// HandshakeTimeout bounds the wait for HELLO and for READY/RESUMED.
	// Default: 10s.
	HandshakeTimeout time.Duration
	// ZombieFactor: heartbeat intervals without an ACK before the
	// connection is declared a zombie. Default: 1.4.
	ZombieFactor float64
	// ReconnectDelay is the first backoff step. Default: 1s.
	ReconnectDelay time.Duration
	// BackoffMultiplier grows each further step. Default: 2.
	BackoffMultiplier float64
	// MaxReconnectDelay caps a step. Default: 5m.
	MaxReconnectDelay time.Duration
	// MaxReconnectAttempts is how many failed attempts in a row end in
	// FAILED. Default: 0, no limit.
	MaxReconnectAttempts int
	// InvalidSessionDelay is the range lifeline waits after op 9 d=false
	// before a new IDENTIFY; Discord asks for 1 to 5 seconds. Default: [1s, 5s].
	InvalidSessionDelay [2]time.Duration
	// CallTimeout bounds discordgo's Open and Close (the watchdog).
	// Default: 10s.
	CallTimeout time.Duration
	// TimeoutScale, when set, stretches HandshakeTimeout at each attempt
	// (the increase_timeouts degradation action). Default: none.
	TimeoutScale func(time.Duration) time.Duration
	// RESTTimeout bounds one REST call of the Session's http.Client.
	// Default: 20s; negative: no bound from the Client (a transport in
	// RESTTransport enforces its own, as lifeline's degrade transport
	// does, so that increase_timeouts can lengthen it).
	RESTTimeout time.Duration
	// BackoffMinShare is the share of each backoff step's ceiling that the
	// wait is at least (BackoffSettings.MinShare). Default (0): 0.5, equal
	// jitter, so a short outage cannot pile up failures by drawing short
	// waits; negative: full jitter (waits from 0).
	BackoffMinShare float64
	// Rand returns numbers in [0, 1) for jitter. Default: math/rand/v2.
	Rand func() float64
	// ReconnectGate, when set, is waited on before every connection
	// attempt after the first (see ReconnectGate). Default: none, each
	// attempt goes as soon as its backoff allows.
	ReconnectGate ReconnectGate
	// Resume, when set and Valid, is a session opened elsewhere (another
	// process of a fleet, or this process before a restart): the first
	// attempt RESUMEs it instead of IDENTIFYing, and the bot's Session is
	// given a READY made from it (see SavedSession). When Discord says the
	// session is gone, the connection IDENTIFYs through the identify
	// queue as usual. Default: nil, the first attempt IDENTIFYs.
	Resume *SavedSession
}

func (c *Config) defaults() error {
	if c.Token == "" {
		return errors.New("conn: no token: set DISCORD_TOKEN or Config.Token")
	}
	if c.Intents == 0 {
		c.Intents = discordgo.IntentsAllWithoutPrivileged
	}
	if c.ShardCount <= 0 {
		c.ShardCount = 1
	}
	if c.ShardID < 0 || c.ShardID >= c.ShardCount {
		return fmt.Errorf("conn: shard %d out of range [0, %d)", c.ShardID, c.ShardCount)
	}
	if c.GatewayURL == "" {
		c.GatewayURL = DefaultGatewayURL
	}
	if c.RESTTransport == nil {
		c.RESTTransport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if c.GatewayDialer == nil {
		c.GatewayDialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment}
	}
	c.Clock = clock.Or(c.Clock)
	c.Events = events.OrDiscard(c.Events)
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Observer == nil {
		c.Observer = gateway.ObserverFunc(func(gateway.Observation) {})
	}
	if c.IdentifyQueue == nil {
		c.IdentifyQueue = NewLocalIdentifyQueue(SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: 24 * time.Hour, MaxConcurrency: 1}, IdentifyQueueOptions{Clock: c.Clock})
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = gateway.DefaultHandshakeTimeout
	}
	if c.ZombieFactor <= 0 {
		c.ZombieFactor = gateway.DefaultZombieFactor
	}
	if c.ReconnectDelay <= 0 {
		c.ReconnectDelay = time.Second
	}
	if c.BackoffMultiplier < 1 {
		c.BackoffMultiplier = 2
	}
	if c.MaxReconnectDelay <= 0 {
		c.MaxReconnectDelay = 5 * time.Minute
	}
	if c.BackoffMinShare == 0 {
		c.BackoffMinShare = 0.5
	}
	if c.InvalidSessionDelay[1] <= 0 {
		c.InvalidSessionDelay = [2]time.Duration{time.Second, 5 * time.Second}
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 10 * time.Second
	}
	if c.RESTTimeout == 0 {
		c.RESTTimeout = 20 * time.Second
	}
	if c.RESTTimeout < 0 {
		c.RESTTimeout = 0
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return nil
}

// Connection is one managed gateway connection (one shard): it owns the
// upstream connection to Discord, the relay the discordgo Session sees,
// and the recovery loop between them.
type Connection struct {
	cfg        Config
	gatewayURL string // GatewayURL with the version and encoding query
	sess       *discordgo.Session
	relay      *gateway.Relay
	log        hclog.Logger

	state    atomic.Int32
	stateMu  sync.Mutex // orders state changes and their events
	readyCh  chan struct{}
	readyOne sync.Once

	mu         sync.Mutex
	session    *sessionInfo // nil until the first READY
	current    *gateway.Conn
	pending    [][]byte // bot sends waiting for a live connection
	dropped    uint64   // bot sends dropped because pending was full
	dupes      uint64   // replayed dispatches already delivered
	fatal      error
	recover    chan recoverRequest
	tries      chan tryRequest
	backoff    *Backoff
	watchdog   *Watchdog
	cancel     context.CancelFunc
	done       chan struct{}
	started    bool
	stopping   atomic.Bool
	downstream sync.WaitGroup
}

// sessionInfo is what a RESUME needs, learned from READY and dispatches.
type sessionInfo struct {
	id        string
	resumeURL string
	seq       int64
	user      json.RawMessage // READY's user object, for SavedSession
}

// New prepares a Connection; nothing connects until Start.
func New(cfg Config) (*Connection, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	gw, err := gatewayURL(cfg.GatewayURL)
	if err != nil {
		return nil, err
	}
	c := &Connection{
		cfg:        cfg,
		gatewayURL: gw,
		log:        cfg.Logger.Named("conn").With("shard", cfg.ShardID),
		readyCh:    make(chan struct{}),
		recover:    make(chan recoverRequest, 1),
		tries:      make(chan tryRequest),
		done:       make(chan struct{}),
		backoff: NewBackoff(BackoffSettings{Base: cfg.ReconnectDelay, Max: cfg.MaxReconnectDelay,
			Multiplier: cfg.BackoffMultiplier, MinShare: cfg.BackoffMinShare, Rand: cfg.Rand}),
	}
	c.watchdog = NewWatchdog(WatchdogSettings{Clock: cfg.Clock, Timeout: cfg.CallTimeout,
		OnAbandon: func(name string, cause error) {
			c.log.Error("discordgo call abandoned by the watchdog", "call", name, "cause", cause)
		}})
	c.relay = gateway.NewRelay(gateway.RelayOptions{
		Clock:    cfg.Clock,
		Forward:  c.forward,
		OnAttach: c.onAttach,
	})
	s := cfg.Session
	if s == nil {
		s, err = discordgo.New("Bot " + cfg.Token)
		if err != nil {
			return nil, fmt.Errorf("conn: %w", err)
		}
	}
	s.Token = "Bot " + cfg.Token
	s.ShouldReconnectOnError = false
	s.Compress = false
	s.Identify.Intents = cfg.Intents
	s.ShardID, s.ShardCount = cfg.ShardID, cfg.ShardCount
	s.Dialer = c.relay.Dialer()
	s.Client = &http.Client{Transport: c.relay.Transport(cfg.RESTTransport), Timeout: cfg.RESTTimeout}
	c.sess = s
	return c, nil
}

// Session returns the discordgo Session the bot adds handlers to and makes
// REST calls with. It stays the same Session for the Connection's life.
func (c *Connection) Session() *discordgo.Session { return c.sess }

// State returns the current state.
func (c *Connection) State() State { return State(c.state.Load()) }

// Err returns the error that made the connection FAILED, or nil.
func (c *Connection) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

// Done is closed when the connection has stopped for good (FAILED or
// STOPPED).
func (c *Connection) Done() <-chan struct{} { return c.done }

// Stats are counters a diagnostics page shows.
type Stats struct {
	DroppedSends      uint64 `json:"dropped_sends"`
	DuplicatesDropped uint64 `json:"duplicates_dropped"`
	SessionID         string `json:"session_id,omitempty"`
	Sequence          int64  `json:"sequence"`
	// ResumeURL is READY's resume_gateway_url ("" before READY).
	ResumeURL string `json:"resume_url,omitempty"`
}

// Stats returns the connection's counters.
func (c *Connection) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{DroppedSends: c.dropped, DuplicatesDropped: c.dupes}
	if c.session != nil {
		st.SessionID, st.Sequence, st.ResumeURL = c.session.id, c.session.seq, c.session.resumeURL
	}
	return st
}

// Start connects and returns once the Session has received READY, or with
// the error that stopped it (a fatal close code, the session-start budget)
// or ctx's error. The connection keeps running (and recovering) after Start
// returns, until Stop.
func (c *Connection) Start(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("conn: already started")
	}
	c.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.mu.Unlock()

	if r := c.cfg.Resume; r != nil && r.Valid() {
		if err := c.startFromSaved(*r); err != nil {
			cancel()
			c.stopping.Store(true)
			c.setState(Stopped, "could not start from the saved session")
			close(c.done)
			c.relay.Close()
			return err
		}
	}
	go c.run(runCtx)

	select {
	case <-c.readyCh:
	case <-c.done:
		if err := c.Err(); err != nil {
			return err
		}
		return errors.New("conn: stopped before READY")
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := c.openSession(); err != nil {
		return err
	}
	return nil
}

// openSession attaches the discordgo Session to the relay, under the
// watchdog: Open reaches only the in-process relay, so it returns fast or
// not at all.
func (c *Connection) openSession() error {
	err := c.watchdog.Run(context.Background(), "discordgo session open", 0, c.sess.Open)
	if errors.Is(err, discordgo.ErrWSAlreadyOpen) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("conn: attach discordgo session: %w", err)
	}
	return nil
}

// Stop closes the connection so that its session stays resumable (close
// code 4000), detaches the Session, and waits for every goroutine lifeline
// started. It returns ctx's error if that takes longer than ctx allows.
func (c *Connection) Stop(ctx context.Context) error {
	c.mu.Lock()
	started := c.started
	cancel := c.cancel
	c.mu.Unlock()
	if !c.stopping.CompareAndSwap(false, true) {
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !started {
		c.setState(Stopped, "stopped before start")
		close(c.done)
		return c.relay.Close()
	}
	cancel()
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	var err error
	if c.relay.Attached() {
		err = c.watchdog.Run(ctx, "discordgo session close", 0, c.sess.Close)
	}
	c.relay.Close()
	return err
}

// setState moves to s and publishes STATE_CHANGED.
func (c *Connection) setState(s State, cause string) {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	old := State(c.state.Swap(int32(s)))
	if old == s {
		return
	}
	c.log.Debug("state", "from", old, "to", s, "cause", cause)
	c.cfg.Events.Publish(events.ForShard(c.cfg.Clock.Now(), c.cfg.ShardID,
		events.StateChange{From: old.String(), To: s.String(), Cause: cause}))
}

func (c *Connection) publishError(kind, msg string, code int, fatal bool) {
	c.cfg.Events.Publish(events.ForShard(c.cfg.Clock.Now(), c.cfg.ShardID,
		events.Error{Source: "conn", Kind: kind, Message: msg, CloseCode: code, Fatal: fatal}))
}

// identifyPayload is IDENTIFY's d: the Session's Identify settings (so a
// bot's presence and properties apply) with lifeline's token, intents and
// shard, and compression off so frames stay plain JSON.
func (c *Connection) identifyPayload() (json.RawMessage, error) {
	id := c.sess.Identify
	id.Token = c.cfg.Token
	id.Intents = c.cfg.Intents
	id.Compress = false
	if id.LargeThreshold == 0 {
		id.LargeThreshold = 250
	}
	if id.Properties.OS == "" {
		id.Properties.OS = runtime.GOOS
	}
	if id.Properties.Browser == "" || id.Properties.Browser == "DiscordGo v"+discordgo.VERSION {
		id.Properties.Browser = "lifeline"
	}
	if id.Properties.Device == "" || id.Properties.Device == "DiscordGo v"+discordgo.VERSION {
		id.Properties.Device = "lifeline"
	}
	shard := [2]int{c.cfg.ShardID, c.cfg.ShardCount}
	id.Shard = &shard
	return json.Marshal(id)
}

// forward sends a bot frame upstream, or keeps it (bounded) until the
// session is live again.
func (c *Connection) forward(frame []byte) {
	c.mu.Lock()
	cur := c.current
	c.mu.Unlock()
	if cur != nil && cur.Send(frame) == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	const maxPending = 128
	if len(c.pending) >= maxPending {
		c.pending = c.pending[1:]
		c.dropped++
	}
	c.pending = append(c.pending, frame)
}

func (c *Connection) flushPending(cur *gateway.Conn) {
	c.mu.Lock()
	p := c.pending
	c.pending = nil
	c.mu.Unlock()
	for i, f := range p {
		if cur.Send(f) != nil {
			c.mu.Lock()
			c.pending = append(p[i:], c.pending...)
			c.mu.Unlock()
			return
		}
	}
}

// onAttach re-attaches discordgo when its relay connection ends while the
// connection is running (a Session closed behind lifeline's back).
func (c *Connection) onAttach(attached bool) {
	if attached || c.stopping.Load() {
		return
	}
	select {
	case <-c.readyCh:
	default:
		return
	}
	c.log.Warn("discordgo session detached from the relay; re-attaching")
	c.downstream.Add(1)
	go func() {
		defer c.downstream.Done()
		t := c.cfg.Clock.NewTimer(100 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C():
		case <-c.done:
			return
		}
		if c.stopping.Load() {
			return
		}
		if err := c.openSession(); err != nil {
			c.publishError("session", err.Error(), 0, false)
		}
	}()
}

// onDispatch runs on the upstream reader: it keeps the resume state and
// hands each dispatch to the Session exactly once, in order.
func (c *Connection) onDispatch(ctx context.Context, p gateway.Payload, raw []byte) {
	seq := p.Seq()
	switch p.T {
	case "READY":
		var r struct {
			SessionID        string          `json:"session_id"`
			ResumeGatewayURL string          `json:"resume_gateway_url"`
			User             json.RawMessage `json:"user"`
		}
		_ = json.Unmarshal(p.D, &r)
		c.mu.Lock()
		c.session = &sessionInfo{id: r.SessionID, resumeURL: r.ResumeGatewayURL, seq: seq, user: r.User}
		c.mu.Unlock()
		if err := c.relay.SetReady(ctx, raw); err != nil {
			c.log.Warn("READY not delivered to the session", "error", err)
		}
		return
	}
	// Everything else, RESUMED included, counts in the sequence: RESUMED
	// carries one, and a RESUME that asked from before it would have it
	// replayed (a second RESUMED for the bot, a second recovery).
	c.mu.Lock()
	if c.session != nil && seq != 0 && seq <= c.session.seq {
		c.dupes++
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if err := c.relay.Deliver(ctx, raw); err != nil {
		// Not delivered (the connection is ending): the sequence stays
		// where it was, so the RESUME asks Discord to replay this one.
		return
	}
	c.mu.Lock()
	if c.session != nil && seq > c.session.seq {
		c.session.seq = seq
	}
	c.mu.Unlock()
}

// observe drives the state machine from what the wire shows, then passes
// the observation on.
func (c *Connection) observe(o gateway.Observation) {
	switch o.Kind {
	case gateway.ObsSent:
		if o.Op == gateway.OpIdentify {
			c.setState(Identifying, "IDENTIFY sent")
		} else if o.Op == gateway.OpResume {
			c.setState(Resuming, "RESUME sent")
		}
	case gateway.ObsAck:
		if o.RTT > 0 {
			c.relay.SetLatency(o.RTT)
		}
	}
	c.cfg.Observer.Observe(o)
}

// recoverRequest is a recovery asked for from outside the loop (a policy
// strategy, a plugin): end the current connection and start the next one
// the given way.
type recoverRequest struct {
	mode  RecoverMode
	cause string
}

// RecoverMode is how Recover restarts the connection.
type RecoverMode int

const (
	// RecoverResume closes with a resumable code and RESUMEs.
	RecoverResume RecoverMode = iota + 1
	// RecoverReconnect closes and reconnects, resuming when it can.
	RecoverReconnect
	// RecoverReidentify drops the session and IDENTIFYs anew.
	RecoverReidentify
	// RecoverRestart restarts the client: it closes the discordgo
	// Session (under the watchdog; lifeline opens it again against the
	// relay, so its handlers stay attached) and IDENTIFYs anew. The bot's
	// handlers see a Disconnect, a Connect and a new READY.
	RecoverRestart
)

func (m RecoverMode) String() string {
	switch m {
	case RecoverResume:
		return "resume"
	case RecoverReconnect:
		return "reconnect"
	case RecoverReidentify:
		return "reidentify"
	case RecoverRestart:
		return "restart_client"
	}
	return fmt.Sprintf("RecoverMode(%d)", int(m))
}

// Recover ends the current connection and starts the next one as mode
// says. It returns at once; the outcome shows as RECOVERY_* events.
func (c *Connection) Recover(mode RecoverMode, cause string) error {
	if c.State().Terminal() {
		return errors.New("conn: connection is not running")
	}
	select {
	case c.recover <- recoverRequest{mode: mode, cause: cause}:
	default: // one is already pending
	}
	c.mu.Lock()
	cur := c.current
	c.mu.Unlock()
	if cur != nil {
		code := gateway.ResumableCloseCode
		if mode == RecoverReidentify || mode == RecoverRestart {
			code = websocket.CloseNormalClosure
		}
		cur.Close(code)
	}
	if mode == RecoverRestart {
		c.closeSessionForRestart()
	}
	return nil
}

// closeSessionForRestart closes the discordgo Session for restart_client.
func (c *Connection) closeSessionForRestart() {
	if c.relay.Attached() {
		// Closing detaches the Session from the relay; onAttach opens it
		// again once the new session is READY.
		c.downstream.Add(1)
		go func() {
			defer c.downstream.Done()
			if err := c.watchdog.Run(context.Background(), "discordgo session close", 0, c.sess.Close); err != nil {
				c.publishError("session", err.Error(), 0, false)
			}
		}()
	}
}

func (c *Connection) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := c.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// gatewayURL adds the API version and JSON encoding to a gateway URL as
// /gateway/bot returns it, keeping any path it has.
func gatewayURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return "", fmt.Errorf("conn: gateway URL %q: want ws:// or wss:// with a host", base)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	q := u.Query()
	q.Set("v", discordgo.APIVersion)
	q.Set("encoding", "json")
	u.RawQuery = q.Encode()
	return u.String(), nil
}
