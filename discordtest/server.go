package discordtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// Server is a fake Discord: REST and gateway on one loopback port, with
// fault injection and a ledger. Create it with NewServer and stop it with
// Close. All methods are safe for concurrent use.
type Server struct {
	cfg    config
	clk    clock.Clock
	log    hclog.Logger
	ledger *Ledger
	faults faultSet
	// realClock: clk is clock.Real, so the kernel's receive times (wall
	// clock) can time client frames (see arrival.go).
	realClock bool

	ln        net.Listener
	hs        *http.Server
	base      string // http://127.0.0.1:port
	wsBase    string // ws://127.0.0.1:port
	transport *http.Transport
	upgrader  websocket.Upgrader

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // every goroutine the server starts

	nextConnID atomic.Int64
	msgCounter atomic.Int64

	mu       sync.Mutex
	closed   bool
	conns    map[int64]*gwConn
	held     map[net.Conn]struct{} // black-holed connections
	sessions map[string]*session
	// token and session-start budget
	revoked      bool
	budgetLeft   int
	budgetReset  time.Time              // zero until the first IDENTIFY of a period
	identifySeen map[int][]seenIdentify // bucket -> latest accepted IDENTIFYs
	guilds       []Guild
	channels     map[string]Guild
	messages     map[string]*Message
	rng          *rand.Rand
	faultTimers  []clock.Timer

	rest restLimiter
}

// NewServer starts a fake Discord on opts.Addr (127.0.0.1, a random port,
// by default).
func NewServer(opts Options) (*Server, error) {
	cfg, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("discordtest: listen address %q: %w", cfg.Addr, err)
	}
	if !cfg.AllowNonLoopback {
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("discordtest: listen address %q: %w", cfg.Addr, ErrNotLoopback)
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("discordtest: listen on %s: %w", cfg.Addr, err)
	}
	s := &Server{
		cfg:          cfg,
		clk:          cfg.Clock,
		log:          cfg.Logger,
		realClock:    isRealClock(cfg.Clock),
		ledger:       newLedger(),
		ln:           ln,
		done:         make(chan struct{}),
		conns:        map[int64]*gwConn{},
		held:         map[net.Conn]struct{}{},
		sessions:     map[string]*session{},
		budgetLeft:   cfg.SessionStartTotal,
		identifySeen: map[int][]seenIdentify{},
		guilds:       makeGuilds(cfg.Guilds),
		channels:     map[string]Guild{},
		messages:     map[string]*Message{},
		rng:          rand.New(rand.NewSource(cfg.Seed)),
	}
	for _, g := range s.guilds {
		s.channels[g.ChannelID] = g
	}
	s.rest.init()
	addr := ln.Addr().String()
	s.base = "http://" + addr
	s.wsBase = "ws://" + addr
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      func(*http.Request) bool { return true },
	}
	s.transport = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	s.hs = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	// Connections are accepted as ones that can tell when a frame
	// arrived (see arrival.go); set up before the address is handed out.
	served := stampListener(ln)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.hs.Serve(served); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "error", err)
		}
	}()
	if cfg.DispatchInterval > 0 {
		s.wg.Add(1)
		go s.generateDispatches()
	}
	s.log.Info("fake discord listening", "rest", s.RESTURL(), "gateway", s.GatewayURL())
	return s, nil
}

// URL returns the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.base }

// RESTURL returns the REST base URL, http://127.0.0.1:PORT/api/v10.
func (s *Server) RESTURL() string { return s.base + "/api/v10" }

// GatewayURL returns the gateway URL that /gateway returns,
// ws://127.0.0.1:PORT/gateway. Clients append "?v=10&encoding=json".
func (s *Server) GatewayURL() string { return s.wsBase + "/gateway" }

// ResumeURL returns the resume_gateway_url READY carries,
// ws://127.0.0.1:PORT/resume. RESUME works on either URL; the ledger
// records which one a connection used.
func (s *Server) ResumeURL() string { return s.wsBase + "/resume" }

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Token returns the token the server accepts.
func (s *Server) Token() string { return s.cfg.Token }

// Ledger returns the server's record of everything it sent and received.
func (s *Server) Ledger() *Ledger { return s.ledger }

// HeartbeatInterval returns the interval HELLO announces.
func (s *Server) HeartbeatInterval() time.Duration { return s.cfg.HeartbeatInterval }

// IdentifyWindow returns the identify rate-limit window in force.
func (s *Server) IdentifyWindow() time.Duration { return s.cfg.IdentifyWindow }

// Scale returns Options.Scale (1 when unset).
func (s *Server) Scale() float64 { return s.cfg.Scale }

// Guilds returns the guilds the bot is in.
func (s *Server) Guilds() []Guild { return append([]Guild(nil), s.guilds...) }

// Transport returns an http.RoundTripper that sends every request, whatever
// its host (discord.com included), to this server, keeping path and query.
// Give it to a client through its own http.Client, for instance
// discordgo's Session.Client, so no package variable changes.
func (s *Server) Transport() http.RoundTripper {
	return &rewriteTransport{host: s.ln.Addr().String(), base: s.transport}
}

// Client returns a new http.Client using Transport.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: s.Transport(), Timeout: 30 * time.Second}
}

// Dialer returns a new websocket.Dialer for the gateway (one per client,
// so no shared default is touched).
func (s *Server) Dialer() *websocket.Dialer {
	return &websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: nil}
}

type rewriteTransport struct {
	host string
	base http.RoundTripper
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	u := *req.URL
	u.Scheme, u.Host = "http", t.host
	r.URL, r.Host = &u, t.host
	return t.base.RoundTrip(r)
}

// Close stops the server: it drops every gateway connection, fails
// requests in flight, and waits for its goroutines to end. It is safe to
// call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*gwConn, 0, len(s.conns))
		for _, c := range s.conns {
			conns = append(conns, c)
		}
		held := make([]net.Conn, 0, len(s.held))
		for c := range s.held {
			held = append(held, c)
		}
		s.mu.Unlock()
		close(s.done)
		s.stopFaultTimers()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.hs.Shutdown(ctx)
		cancel()
		_ = s.hs.Close()
		for _, c := range conns {
			c.teardown(DroppedByServer, 0)
		}
		for _, c := range held {
			_ = c.Close()
		}
		s.mu.Lock()
		sessions := make([]*session, 0, len(s.sessions))
		for _, ss := range s.sessions {
			sessions = append(sessions, ss)
		}
		s.mu.Unlock()
		for _, ss := range sessions {
			ss.stopTimer()
		}
		s.transport.CloseIdleConnections()
		s.wg.Wait()
		s.log.Info("fake discord stopped")
	})
	return nil
}

func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// ServeHTTP routes REST under /api/v9 and /api/v10 and the gateway at
// /gateway, /resume and / (WebSocket upgrades).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == "/gateway" || p == "/gateway/":
		s.serveGateway(w, r, "/gateway")
	case p == "/resume" || p == "/resume/":
		s.serveGateway(w, r, "/resume")
	case p == "/" && websocket.IsWebSocketUpgrade(r):
		s.serveGateway(w, r, "/gateway")
	case len(p) >= 5 && p[:5] == "/api/":
		s.serveREST(w, r)
	case p == "/":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "discordtest fake Discord\nREST: %s\ngateway: %s\n", s.RESTURL(), s.GatewayURL())
	default:
		http.NotFound(w, r)
	}
}

// wait blocks for d on the server's clock; it reports false when the
// server closed or ctx ended first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := s.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-s.done:
		return false
	case <-ctx.Done():
		return false
	}
}

// newSessionID returns 32 hex digits, like Discord's session IDs.
func (s *Server) newSessionID() string {
	s.mu.Lock()
	n := s.rng.Int63()
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(strconv.FormatInt(n, 10) + s.base))
	return hex.EncodeToString(sum[:16])
}

func (s *Server) nextMessageID() string {
	n := s.msgCounter.Add(1)
	return snowflake(snowflakeTime(s.clk.Now()), n)
}

// tokenOK reports whether a gateway token matches (with or without the
// "Bot " prefix) and has not been revoked.
func (s *Server) tokenOK(tok string) bool {
	if len(tok) > 4 && tok[:4] == "Bot " {
		tok = tok[4:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.revoked && tok == s.cfg.Token
}

// ResetSessionStartLimit refills the session-start budget and, if
// exhausting it revoked the token, makes the token work again (on Discord
// this takes a new token).
func (s *Server) ResetSessionStartLimit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = false
	s.budgetLeft = s.cfg.SessionStartTotal
	s.budgetReset = time.Time{}
}

// sessionStartLimit returns total, remaining, reset_after as /gateway/bot
// reports them.
func (s *Server) sessionStartLimit() (total, remaining int, resetAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshBudgetLocked(s.clk.Now())
	resetAfter = s.cfg.SessionStartReset
	if !s.budgetReset.IsZero() {
		resetAfter = s.budgetReset.Sub(s.clk.Now())
	}
	return s.cfg.SessionStartTotal, s.budgetLeft, resetAfter
}

func (s *Server) refreshBudgetLocked(now time.Time) {
	if !s.budgetReset.IsZero() && !now.Before(s.budgetReset) {
		s.budgetLeft = s.cfg.SessionStartTotal
		s.budgetReset = time.Time{}
	}
}

// liveConns returns the open connections a per-shard fault applies to.
func (s *Server) connsFor(shards []int) []*gwConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*gwConn
	for _, c := range s.conns {
		if shards == nil {
			out = append(out, c)
			continue
		}
		sh := c.shardID()
		for _, want := range shards {
			if sh == want {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// sessionsFor returns the sessions (not ended) of the given shards (nil:
// all).
func (s *Server) sessionsFor(shards []int) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, ss := range s.sessions {
		if ss.isEnded() {
			continue
		}
		if shards == nil {
			out = append(out, ss)
			continue
		}
		for _, want := range shards {
			if ss.shard[0] == want {
				out = append(out, ss)
				break
			}
		}
	}
	return out
}

// generateDispatches sends a MESSAGE_CREATE to every session at
// DispatchInterval.
func (s *Server) generateDispatches() {
	defer s.wg.Done()
	t := s.clk.NewTicker(s.cfg.DispatchInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C():
			for _, ss := range s.sessionsFor(nil) {
				ss.emitGeneratedMessage()
			}
		}
	}
}

// EmitMessage posts a message by a fake user in channelID and sends
// MESSAGE_CREATE to every session whose shard holds the channel's guild.
// It returns the message.
func (s *Server) EmitMessage(channelID, content string) (Message, error) {
	if s.isClosed() {
		return Message{}, ErrClosed
	}
	s.mu.Lock()
	g, ok := s.channels[channelID]
	s.mu.Unlock()
	if !ok {
		return Message{}, fmt.Errorf("discordtest: emit message in %s: %w", channelID, ErrUnknownChannel)
	}
	m := s.newMessage(g, channelID, content, fakeUser)
	s.dispatchToGuild(g, "MESSAGE_CREATE", m)
	return m, nil
}

// Dispatch sends a dispatch of type eventType with data d to every session
// of shard (all sessions when shard is negative). It returns how many
// sessions got it.
func (s *Server) Dispatch(shard int, eventType string, d any) (int, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	var shards []int
	if shard >= 0 {
		shards = []int{shard}
	}
	n := 0
	for _, ss := range s.sessionsFor(shards) {
		if ss.dispatch(eventType, d) > 0 {
			n++
		}
	}
	return n, nil
}

func (s *Server) dispatchToGuild(g Guild, typ string, d any) {
	for _, ss := range s.sessionsFor(nil) {
		if g.ShardID(ss.shard[1]) == ss.shard[0] {
			ss.dispatch(typ, d)
		}
	}
}

var fakeUser = User{ID: "2000000000000000002", Username: "discordtest-user", Discriminator: "0"}

func (s *Server) botUser() User {
	return User{ID: s.cfg.BotUserID, Username: s.cfg.BotUsername, Discriminator: "0", Bot: true}
}

func (s *Server) newMessage(g Guild, channelID, content string, author User) Message {
	return Message{
		ID:        s.nextMessageID(),
		ChannelID: channelID,
		GuildID:   g.ID,
		Author:    author,
		Content:   content,
		Timestamp: s.clk.Now().UTC().Format(time.RFC3339Nano),
	}
}

// ActiveConnections returns how many gateway connections are open.
func (s *Server) ActiveConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Session describes a live or resumable session, as Sessions returns it.
type Session struct {
	ID        string
	Shard     [2]int
	Seq       int64 // the last sequence sent
	Connected bool
	ConnID    int64 // the connection carrying it; 0 when disconnected
}

// Sessions returns the sessions that have not ended.
func (s *Server) Sessions() []Session {
	var out []Session
	for _, ss := range s.sessionsFor(nil) {
		out = append(out, ss.info())
	}
	return out
}
