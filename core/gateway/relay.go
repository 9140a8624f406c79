package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-bot/lifeline/core/clock"
)

// DefaultRelayInterval is the heartbeat interval the relay's HELLO gives
// discordgo: Discord's own, so a bot sees familiar numbers.
const DefaultRelayInterval = 41250 * time.Millisecond

// RelayOptions configures a Relay. The zero value is valid.
type RelayOptions struct {
	// Clock delays the relay's heartbeat ACKs. Default: clock.Real.
	Clock clock.Clock
	// HeartbeatInterval is what HELLO tells discordgo. Default:
	// DefaultRelayInterval.
	HeartbeatInterval time.Duration
	// Forward receives every frame discordgo sends that is not HELLO's
	// answer, a heartbeat, IDENTIFY or RESUME: presence updates, voice
	// state updates, guild member requests. Default: dropped.
	Forward func(frame []byte)
	// OnAttach is called when discordgo has received READY (attached true)
	// and when its connection ends (attached false).
	OnAttach func(attached bool)
}

// ErrRelayClosed is returned by Deliver after Close.
var ErrRelayClosed = errors.New("gateway: relay closed")

// Relay is the gateway a discordgo Session connects to (see the package
// doc). Point the Session at it with Dialer; feed it with SetReady and
// Deliver. Safe for concurrent use.
type Relay struct {
	opts RelayOptions
	up   *websocket.Upgrader

	mu       sync.Mutex
	ready    []byte        // the READY dispatch to answer IDENTIFY with
	readyCh  chan struct{} // closed once ready is set
	down     *downConn     // the attached downstream, if any
	attachCh chan struct{} // closed while down is attached
	closed   bool
	closedCh chan struct{}
	wg       sync.WaitGroup
	rtt      atomic.Int64 // last upstream heartbeat round trip, ns
}

// NewRelay returns a Relay ready to accept a Session.
func NewRelay(opts RelayOptions) *Relay {
	opts.Clock = clock.Or(opts.Clock)
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultRelayInterval
	}
	if opts.Forward == nil {
		opts.Forward = func([]byte) {}
	}
	if opts.OnAttach == nil {
		opts.OnAttach = func(bool) {}
	}
	return &Relay{
		opts:     opts,
		up:       &websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		readyCh:  make(chan struct{}),
		attachCh: make(chan struct{}),
		closedCh: make(chan struct{}),
	}
}

// Dialer returns a websocket.Dialer for Session.Dialer: whatever URL the
// Session dials, it reaches this relay over an in-memory pipe.
func (r *Relay) Dialer() *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   func(ctx context.Context, _, _ string) (net.Conn, error) { return r.dial(ctx) },
		HandshakeTimeout: 10 * time.Second,
	}
}

func (r *Relay) dial(ctx context.Context) (net.Conn, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrRelayClosed
	}
	r.wg.Add(1)
	r.mu.Unlock()
	client, server := net.Pipe()
	d := &downConn{relay: r}
	go func() {
		defer r.wg.Done()
		d.serve(server)
	}()
	return clientConn{Conn: client, ended: &d.ended}, nil
}

// SetLatency tells the relay the upstream heartbeat round trip; the relay
// delays its ACKs by as much, so discordgo's HeartbeatLatency stays
// meaningful to a bot that shows it.
func (r *Relay) SetLatency(rtt time.Duration) { r.rtt.Store(int64(rtt)) }

// SetReady records a READY dispatch (raw frame). If discordgo is attached,
// it receives it at once, as a new session; otherwise it gets it in answer
// to its IDENTIFY.
func (r *Relay) SetReady(ctx context.Context, raw []byte) error {
	r.mu.Lock()
	first := r.ready == nil
	r.ready = raw
	if first {
		close(r.readyCh)
	}
	d := r.down
	attached := isClosed(r.attachCh)
	r.mu.Unlock()
	if d != nil && attached {
		return d.write(raw)
	}
	return nil
}

// Deliver hands one dispatch (raw frame) to discordgo, waiting while no
// Session is attached. It returns ctx's error if ctx ends first, and
// always once ctx is done.
func (r *Relay) Deliver(ctx context.Context, raw []byte) error {
	for {
		// Once ctx is done, every later Deliver fails too: a caller that
		// saw one failure can rely on nothing after it getting through,
		// so its sequence numbers stay gap-free.
		if err := ctx.Err(); err != nil {
			return err
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return ErrRelayClosed
		}
		ch := r.attachCh
		r.mu.Unlock()
		select {
		case <-ch:
			r.mu.Lock()
			d := r.down
			attached := d != nil && isClosed(r.attachCh)
			r.mu.Unlock()
			if !attached {
				continue // detached again before we got to write
			}
			if err := d.write(raw); err == nil {
				return nil
			}
			// The Session's connection ended under us: wait for the next.
			d.detach()
		case <-ctx.Done():
			return ctx.Err()
		case <-r.closedCh:
			return ErrRelayClosed
		}
	}
}

// Attached reports whether a Session has received READY and is connected.
func (r *Relay) Attached() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return isClosed(r.attachCh)
}

// Close ends the downstream connection and waits for the relay's
// goroutines. Deliver returns ErrRelayClosed afterwards.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	r.closed = true
	close(r.closedCh)
	d := r.down
	r.mu.Unlock()
	if d != nil {
		d.close()
	}
	r.wg.Wait()
	return nil
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// downConn is one connection from discordgo to the relay.
type downConn struct {
	relay   *Relay
	ws      *websocket.Conn
	writeMu sync.Mutex
	ended   atomic.Bool
	once    sync.Once
}

func (d *downConn) serve(nc net.Conn) {
	defer nc.Close()
	r := d.relay
	brw := bufio.NewReadWriter(bufio.NewReaderSize(nc, 1024), bufio.NewWriterSize(nc, 1024))
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(brw.Reader)
	if err != nil {
		return
	}
	_ = nc.SetReadDeadline(time.Time{})
	ws, err := r.up.Upgrade(&hijackWriter{conn: nc, brw: brw}, req, nil)
	if err != nil {
		return
	}
	d.ws = ws

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	old := r.down
	r.down = d
	r.mu.Unlock()
	if old != nil {
		old.close() // one Session, one live connection
	}
	defer d.detach()

	ms := strconv.FormatInt(r.opts.HeartbeatInterval.Milliseconds(), 10)
	if d.write(encode(OpHello, []byte(`{"heartbeat_interval":`+ms+`}`))) != nil {
		return
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		p, err := DecodePayload(data)
		if err != nil {
			continue // discordgo never sends these; nothing to forward
		}
		switch p.Op {
		case OpHeartbeat:
			d.ack()
		case OpIdentify:
			if !d.answerIdentify() {
				return
			}
		case OpResume:
			// The relay keeps no downstream session to resume: make
			// discordgo IDENTIFY, which it does at once on op 9.
			if d.write(encode(OpInvalidSession, []byte("false"))) != nil {
				return
			}
		default:
			r.opts.Forward(data)
		}
	}
}

// answerIdentify waits for the READY lifeline received upstream, sends it
// and marks this connection attached. It reports false if the relay or the
// connection ended first.
func (d *downConn) answerIdentify() bool {
	r := d.relay
	select {
	case <-r.readyCh:
	case <-r.closedCh:
		return false
	}
	r.mu.Lock()
	ready := r.ready
	r.mu.Unlock()
	if d.write(ready) != nil {
		return false
	}
	r.mu.Lock()
	if r.down != d || r.closed {
		r.mu.Unlock()
		return false
	}
	if !isClosed(r.attachCh) {
		close(r.attachCh)
	}
	r.mu.Unlock()
	r.opts.OnAttach(true)
	return true
}

// ack answers discordgo's heartbeat. It never writes on the reader's
// goroutine: discordgo's Close stops its own reader and then writes a
// close frame that only the relay's reader can take off the pipe, so an
// ACK write blocking the reader would deadlock both. The write runs on a
// goroutine of its own, which ends when the write does or, at the latest,
// when serve closes the pipe.
func (d *downConn) ack() {
	rtt := time.Duration(d.relay.rtt.Load())
	if rtt <= 0 {
		d.relay.wg.Add(1) // serve's own count keeps the group above zero
		go func() {
			defer d.relay.wg.Done()
			_ = d.write(encode(OpHeartbeatACK, nil))
		}()
		return
	}
	d.relay.opts.Clock.AfterFunc(rtt, func() { _ = d.write(encode(OpHeartbeatACK, nil)) })
}

func (d *downConn) write(frame []byte) error {
	if d.ended.Load() {
		return net.ErrClosed
	}
	d.writeMu.Lock()
	defer d.writeMu.Unlock()
	return d.ws.WriteMessage(websocket.TextMessage, frame)
}

// detach marks the connection gone: Deliver waits for the next one.
func (d *downConn) detach() {
	r := d.relay
	r.mu.Lock()
	was := false
	if r.down == d {
		r.down = nil
		if isClosed(r.attachCh) {
			r.attachCh = make(chan struct{})
			was = true
		}
	}
	r.mu.Unlock()
	d.close()
	if was {
		r.opts.OnAttach(false)
	}
}

func (d *downConn) close() {
	d.once.Do(func() {
		d.ended.Store(true)
		if d.ws != nil {
			d.ws.Close()
		}
	})
}

// Transport wraps next so that discordgo's "GET /gateway" (which Open calls
// to learn where to dial) is answered by the relay itself: the Session
// dials the relay whatever the URL, so asking Discord would only add a REST
// round trip, and a REST outage could then block a local reconnect.
func (r *Relay) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return gatewayAnswerer{next: next}
}

type gatewayAnswerer struct{ next http.RoundTripper }

func (g gatewayAnswerer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && isGatewayPath(req.URL.Path) {
		body := `{"url":"ws://lifeline-relay"}`
		return &http.Response{
			StatusCode:    http.StatusOK,
			Status:        "200 OK",
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        http.Header{"Content-Type": []string{"application/json"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       req,
		}, nil
	}
	return g.next.RoundTrip(req)
}

// isGatewayPath matches /api/gateway and /api/vN/gateway exactly (not
// /gateway/bot, which carries the session-start budget lifeline needs).
func isGatewayPath(p string) bool {
	if !strings.HasPrefix(p, "/api/") || !strings.HasSuffix(p, "/gateway") {
		return false
	}
	mid := strings.TrimSuffix(strings.TrimPrefix(p, "/api/"), "gateway")
	return mid == "" || (len(mid) >= 3 && mid[0] == 'v' && mid[len(mid)-1] == '/' && isDigits(mid[1:len(mid)-1]))
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
