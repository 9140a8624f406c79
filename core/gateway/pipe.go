package gateway

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// pipeAddr names both ends of an in-memory relay connection.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "lifeline-relay" }
func (pipeAddr) String() string  { return "lifeline-relay" }

// clientConn is discordgo's end of the in-memory pipe. Once the relay has
// ended the connection, writes are swallowed instead of failing: discordgo
// v0.29.0 answers a failed heartbeat write by closing the Session, which
// after a quick re-Open would hit the *new* connection (its stale heartbeat
// goroutine problem). Reads still fail, so discordgo's reader stops.
type clientConn struct {
	net.Conn
	ended *atomic.Bool
}

func (c clientConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && c.ended.Load() {
		return len(b), nil
	}
	return n, err
}

func (c clientConn) LocalAddr() net.Addr  { return pipeAddr{} }
func (c clientConn) RemoteAddr() net.Addr { return pipeAddr{} }

// hijackWriter is the minimal http.ResponseWriter + http.Hijacker that
// websocket.Upgrader needs to upgrade a connection served without an
// http.Server (no listener, no accept goroutine per relay).
type hijackWriter struct {
	conn   net.Conn
	brw    *bufio.ReadWriter
	header http.Header
	status int
}

func (w *hijackWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

func (w *hijackWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	_ = w.conn.SetWriteDeadline(time.Now().Add(time.Second))
	resp := &http.Response{StatusCode: status, ProtoMajor: 1, ProtoMinor: 1, Header: w.Header()}
	_ = resp.Write(w.conn)
}

func (w *hijackWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return len(b), nil // bodies of refusals carry nothing worth sending
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status != 0 {
		return nil, nil, errors.New("gateway: response already written")
	}
	w.status = http.StatusSwitchingProtocols
	return w.conn, w.brw, nil
}
