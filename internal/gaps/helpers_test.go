package gaps

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// waitLimit bounds every wait for something discordgo or the fake should
// do soon; it is far above what they need, so that a loaded machine never
// trips it. A test that waits this long has failed.
const waitLimit = 20 * time.Second

// newFake starts a fake Discord closed at the end of the test, and dumps
// its ledger if the test fails.
func newFake(t *testing.T, o discordtest.Options) *discordtest.Server {
	t.Helper()
	srv, err := discordtest.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(dumpLedger(srv))
		}
		srv.Close()
	})
	return srv
}

// newSession returns a plain discordgo v0.29.0 Session pointed at srv
// through its own http.Client and websocket.Dialer (no discordgo package
// variable changes), with discordgo's own reconnect left on, as New sets
// it: the configuration these tests document.
func newSession(t *testing.T, srv *discordtest.Server) *discordgo.Session {
	t.Helper()
	s, err := discordgo.New("Bot " + srv.Token())
	if err != nil {
		t.Fatal(err)
	}
	s.Client = srv.Client()
	s.Dialer = srv.Dialer()
	s.LogLevel = -1 // discordgo logs with the log package; the ledger tells the story
	if !s.ShouldReconnectOnError {
		t.Fatal("discordgo.New no longer turns its own reconnect on")
	}
	return s
}

// eventually polls cond every few milliseconds until it holds, failing the
// test after waitLimit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// frames returns the frames of one connection that went in dir with op.
func frames(srv *discordtest.Server, connID int64, dir discordtest.Direction, op int) []discordtest.Frame {
	c, _ := srv.Ledger().Connection(connID)
	var out []discordtest.Frame
	for _, f := range c.Frames {
		if f.Dir == dir && f.Op == op {
			out = append(out, f)
		}
	}
	return out
}

// afterHeartbeat returns once the client has sent a heartbeat on connID
// that the ledger had not recorded when the call began. Faults injected
// right after it find discordgo's heartbeat goroutine idle for most of an
// interval, away from the stale-heartbeat race TestStaleHeartbeatGoroutine
// shows.
func afterHeartbeat(t *testing.T, srv *discordtest.Server, connID int64) {
	t.Helper()
	before := len(frames(srv, connID, discordtest.Received, discordtest.OpHeartbeat))
	eventually(t, "a fresh heartbeat", func() bool {
		return len(frames(srv, connID, discordtest.Received, discordtest.OpHeartbeat)) > before
	})
}

// connsAfter returns the ledger's connections with an ID above id.
func connsAfter(srv *discordtest.Server, id int64) []discordtest.ConnRecord {
	var out []discordtest.ConnRecord
	for _, c := range srv.Ledger().Connections() {
		if c.ID > id {
			out = append(out, c)
		}
	}
	return out
}

// dumpLedger summarises the fake's ledger for a failure message.
func dumpLedger(srv *discordtest.Server) string {
	var b strings.Builder
	l := srv.Ledger()
	for _, c := range l.Connections() {
		fmt.Fprintf(&b, "conn %d %s sessions %v closed=%v %s %d\n", c.ID, c.Path, c.SessionIDs, c.Closed, c.CloseKind, c.CloseCode)
		for _, f := range c.Frames {
			fmt.Fprintf(&b, "  %s %s op %d s=%d %s\n", f.At.Format("15:04:05.000"), f.Dir, f.Op, f.Seq, f.Type)
		}
	}
	for _, s := range l.Sessions() {
		fmt.Fprintf(&b, "session %s conns %v ended=%v %q resumes %d\n", s.ID, s.Connections, s.Ended, s.EndReason, len(s.Resumes))
	}
	for _, r := range l.Identifies() {
		fmt.Fprintf(&b, "identify conn %d %s %s\n", r.ConnID, r.Outcome, r.SessionID)
	}
	for _, v := range l.Violations() {
		fmt.Fprintf(&b, "violation %+v\n", v)
	}
	return b.String()
}

// intervals expresses d in heartbeat intervals, for the logs.
func intervals(d, interval time.Duration) float64 { return float64(d) / float64(interval) }

// eventLog collects what a bot's handlers receive, in arrival order.
type eventLog struct {
	mu  sync.Mutex
	evs []any
}

func newEventLog(s *discordgo.Session) *eventLog {
	l := &eventLog{}
	s.AddHandler(func(_ *discordgo.Session, e any) {
		l.mu.Lock()
		l.evs = append(l.evs, e)
		l.mu.Unlock()
	})
	return l
}

// count returns how many received events match.
func (l *eventLog) count(match func(any) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.evs {
		if match(e) {
			n++
		}
	}
	return n
}

// since returns the events received after the first n.
func (l *eventLog) since(n int) []any {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > len(l.evs) {
		n = len(l.evs)
	}
	return append([]any(nil), l.evs[n:]...)
}

func (l *eventLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

// waitFor waits until at least n received events match.
func (l *eventLog) waitFor(t *testing.T, what string, n int, match func(any) bool) {
	t.Helper()
	eventually(t, what, func() bool { return l.count(match) >= n })
}

func isReady(e any) bool      { _, ok := e.(*discordgo.Ready); return ok }
func isResumed(e any) bool    { _, ok := e.(*discordgo.Resumed); return ok }
func isDisconnect(e any) bool { _, ok := e.(*discordgo.Disconnect); return ok }
func isConnect(e any) bool    { _, ok := e.(*discordgo.Connect); return ok }

// messages returns the contents of the MESSAGE_CREATEs received.
func (l *eventLog) messages() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		if m, ok := e.(*discordgo.MessageCreate); ok {
			out = append(out, m.Content)
		}
	}
	return out
}

// --- goroutine stacks ------------------------------------------------------

// goroutineStacks returns the stack of every goroutine in the process,
// one string per goroutine, header line first ("goroutine 7 [select]:").
func goroutineStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitReason returns the bracketed state of a goroutine's header line,
// such as "select" or "sync.RWMutex.Lock".
func waitReason(stack string) string {
	head, _, _ := strings.Cut(stack, "\n")
	i, j := strings.Index(head, "["), strings.LastIndex(head, "]")
	if i < 0 || j < i {
		return ""
	}
	reason, _, _ := strings.Cut(head[i+1:j], ",") // drop ", 2 minutes"
	return reason
}

// waitsForWriteLock reports whether a goroutine is parked in
// sync.(*RWMutex).Lock (on the mutex's writer semaphore, or on its inner
// Mutex when another writer holds that).
func waitsForWriteLock(stack string) bool {
	r := waitReason(stack)
	return (r == "sync.RWMutex.Lock" || r == "sync.Mutex.Lock") && strings.Contains(stack, "sync.(*RWMutex).Lock(")
}

// waitsForReadLock reports whether a goroutine is parked in
// sync.(*RWMutex).RLock.
func waitsForReadLock(stack string) bool {
	return waitReason(stack) == "sync.RWMutex.RLock" && strings.Contains(stack, "sync.(*RWMutex).RLock(")
}

// inFunc reports whether a goroutine's stack has a frame of the discordgo
// Session method name.
func inFunc(stack, method string) bool {
	return strings.Contains(stack, "github.com/bwmarrin/discordgo.(*Session)."+method+"(")
}

// countGoroutines counts the goroutines whose stack matches.
func countGoroutines(match func(string) bool) int {
	n := 0
	for _, g := range goroutineStacks() {
		if match(g) {
			n++
		}
	}
	return n
}

// findGoroutines returns the stacks that match.
func findGoroutines(match func(string) bool) []string {
	var out []string
	for _, g := range goroutineStacks() {
		if match(g) {
			out = append(out, g)
		}
	}
	return out
}

// --- scripted gateway ------------------------------------------------------

// scripted is a tiny Discord on 127.0.0.1 for situations the fake cannot
// stage: GET /api/v9/gateway names its own WebSocket URL, and each
// WebSocket connection is handed to play with its index (0 for the first).
// It records every op each connection received and the close code it
// sent.
type scripted struct {
	srv  *httptest.Server
	rest *http.Transport
	play func(n int, c *scriptConn)
	// release is closed when the test ends: every connection still open
	// is cut, so the scripts return.
	release chan struct{}

	mu    sync.Mutex
	conns []*scriptConn
}

// scriptConn is one connection of the scripted gateway.
type scriptConn struct {
	ws *websocket.Conn

	mu          sync.Mutex
	ops         []int
	closeCode   int // the close code the script sent
	clientClose int // the close code the client sent; 0 if none
	accepted    bool
	ended       bool
}

func newScripted(t *testing.T, play func(n int, c *scriptConn)) *scripted {
	t.Helper()
	g := &scripted{play: play, release: make(chan struct{}), rest: &http.Transport{}}
	up := websocket.Upgrader{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v9/gateway" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"url": "ws" + strings.TrimPrefix(g.srv.URL, "http") + "/gateway"})
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		c := &scriptConn{ws: ws}
		// When the test ends, cut the connection so a script blocked in a
		// read returns and Close can finish.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-g.release:
				_ = ws.NetConn().Close()
			case <-stop:
			}
		}()
		g.mu.Lock()
		n := len(g.conns)
		g.conns = append(g.conns, c)
		g.mu.Unlock()
		g.play(n, c)
		c.mu.Lock()
		c.ended = true
		c.mu.Unlock()
	}))
	t.Cleanup(func() {
		close(g.release)
		g.srv.CloseClientConnections()
		g.srv.Close()
		g.rest.CloseIdleConnections()
	})
	return g
}

// session returns a plain discordgo Session pointed at the scripted
// gateway through its own http.Client and Dialer.
func (g *scripted) session(t *testing.T) *discordgo.Session {
	t.Helper()
	s, err := discordgo.New("Bot scripted-token")
	if err != nil {
		t.Fatal(err)
	}
	s.Client = &http.Client{Timeout: 10 * time.Second, Transport: hostRewrite{host: strings.TrimPrefix(g.srv.URL, "http://"), next: g.rest}}
	s.Dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	s.LogLevel = -1
	return s
}

// connections returns a snapshot of every connection's record so far.
func (g *scripted) connections() []connSummary {
	g.mu.Lock()
	conns := append([]*scriptConn(nil), g.conns...)
	g.mu.Unlock()
	out := make([]connSummary, len(conns))
	for i, c := range conns {
		c.mu.Lock()
		out[i] = connSummary{ops: append([]int(nil), c.ops...), closeCode: c.closeCode, clientClose: c.clientClose,
			accepted: c.accepted, ended: c.ended}
		c.mu.Unlock()
	}
	return out
}

// connSummary is what the scripted gateway knows about one connection.
type connSummary struct {
	ops         []int // ops the client sent, in order
	closeCode   int   // the close code the script sent; 0 if none
	clientClose int   // the close code the client sent; 0 if none
	accepted    bool  // the script let the client in (markAccepted)
	ended       bool  // the script returned
}

func (c connSummary) has(op int) bool {
	for _, o := range c.ops {
		if o == op {
			return true
		}
	}
	return false
}

// markAccepted records that the script let the client in for good.
func (c *scriptConn) markAccepted() {
	c.mu.Lock()
	c.accepted = true
	c.mu.Unlock()
}

// send writes one text frame.
func (c *scriptConn) send(payload string) {
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(payload))
}

// hello sends op 10 with the heartbeat interval in milliseconds.
func (c *scriptConn) hello(ms int) {
	c.send(fmt.Sprintf(`{"op":10,"d":{"heartbeat_interval":%d}}`, ms))
}

// next reads one frame and records its op (-2 when it is not JSON); ok is
// false when the connection ended, recording the client's close code if
// it sent one.
func (c *scriptConn) next() (op int, ok bool) {
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			c.mu.Lock()
			c.clientClose = ce.Code
			c.mu.Unlock()
		}
		return 0, false
	}
	var p struct {
		Op int `json:"op"`
	}
	if json.Unmarshal(data, &p) != nil {
		p.Op = -2
	}
	c.mu.Lock()
	c.ops = append(c.ops, p.Op)
	c.mu.Unlock()
	return p.Op, true
}

// readOp reads frames until one that is not a heartbeat (heartbeats get
// their ACK) and returns its op; -1 when the connection ended.
func (c *scriptConn) readOp() int {
	for {
		op, ok := c.next()
		switch {
		case !ok:
			return -1
		case op == discordtest.OpHeartbeat:
			c.send(`{"op":11}`)
		default:
			return op
		}
	}
}

// awaitHeartbeat reads until the client's heartbeat, which it ACKs; false
// when the connection ended first. discordgo sends one as soon as a
// connection is up: a script that closes only after it finds discordgo's
// heartbeat goroutine idle for a whole interval, away from the
// stale-heartbeat race (see TestStaleHeartbeatReopensClosedSession).
func (c *scriptConn) awaitHeartbeat() bool {
	for {
		op, ok := c.next()
		if !ok {
			return false
		}
		if op == discordtest.OpHeartbeat {
			c.send(`{"op":11}`)
			return true
		}
	}
}

// closeWith sends a close frame with code and waits briefly for the
// client's answer, as Discord does.
func (c *scriptConn) closeWith(code int) {
	c.mu.Lock()
	c.closeCode = code
	c.mu.Unlock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
	_ = c.ws.SetReadDeadline(time.Now().Add(time.Second))
	for {
		if _, _, err := c.ws.ReadMessage(); err != nil {
			return
		}
	}
}

// hold keeps the connection open, answering heartbeats, until the client
// leaves or the test ends.
func (c *scriptConn) hold() {
	for c.readOp() != -1 {
	}
}

// hostRewrite sends every request, whatever its host (discord.com
// included), to one plain-HTTP host on 127.0.0.1.
type hostRewrite struct {
	host string
	next http.RoundTripper
}

func (h hostRewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme = "http"
	r.URL.Host = h.host
	r.Host = h.host
	return h.next.RoundTrip(r)
}
