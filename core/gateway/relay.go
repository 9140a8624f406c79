package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
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

	mu       sync.Mutex
	ready    []byte        // the READY dispatch to answer IDENTIFY with
	down     *downConn     // the Session's live connection, if any
	attachCh chan struct{} // closed while down is attached
	closed   bool
	closedCh chan struct{}
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
		attachCh: make(chan struct{}),
		closedCh: make(chan struct{}),
	}
}

// writeBuffers is the write buffer pool of every websocket connection
// lifeline makes with gorilla/websocket's default write buffer size (4 KB):
// a connection takes a buffer only while it writes a message, so an idle
// one holds none.
var writeBuffers = &sync.Pool{}

// relayReadBufferSize is the read buffer of the Session's websocket
// connection to the relay. Reading from memory costs a copy, not a system
// call, so a small buffer loses nothing; a frame larger than the buffer
// is read past it, straight into the message.
const relayReadBufferSize = 1024

// Dialer returns a websocket.Dialer for Session.Dialer: whatever URL the
// Session dials, it reaches this relay over an in-memory connection. The
// Session's websocket takes its write buffer from a pool shared by every
// connection lifeline makes (it holds one only while it writes) and reads
// through a 1 KB buffer.
func (r *Relay) Dialer() *websocket.Dialer {
	return &websocket.Dialer{
		NetDialContext:   func(ctx context.Context, _, _ string) (net.Conn, error) { return r.dial(ctx) },
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   relayReadBufferSize,
		WriteBufferPool:  writeBuffers,
	}
}

func (r *Relay) dial(context.Context) (net.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrRelayClosed
	}
	return newDownConn(r), nil
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
	r.ready = raw
	d := r.down
	attached := isClosed(r.attachCh)
	if d != nil && !attached && d.identifyPending {
		// The Session IDENTIFYed before lifeline had a READY.
		d.attachLocked(raw)
		r.mu.Unlock()
		r.opts.OnAttach(true)
		return nil
	}
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

// Close ends the downstream connection (the relay runs no goroutine of
// its own). Deliver returns ErrRelayClosed afterwards.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.closedCh)
	d := r.down
	r.mu.Unlock()
	if d != nil {
		d.end()
	}
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
