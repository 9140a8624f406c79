package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pipeAddr names both ends of an in-memory relay connection.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "lifeline-relay" }
func (pipeAddr) String() string  { return "lifeline-relay" }

// WebSocket frame opcodes (RFC 6455, section 5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// Limits on what discordgo may write to the relay.
const (
	// maxRequestHeader bounds the upgrade request: discordgo's is a few
	// hundred bytes.
	maxRequestHeader = 16 << 10
	// maxClientFrame bounds one client frame's declared length; a client
	// frame is buffered until it is whole, so a larger one is refused
	// rather than waited for.
	maxClientFrame = 1 << 30
)

// downConn is one connection from discordgo to the relay, and the net.Conn
// the Session's websocket.Dialer gets from Relay.Dialer: an in-memory
// WebSocket server with no goroutine of its own.
//
// What discordgo writes (its HTTP upgrade request, then masked WebSocket
// frames, possibly split across writes and messages split across frames)
// is parsed and answered inside its Write, on discordgo's own goroutine: a
// heartbeat is acknowledged, IDENTIFY answered with the READY lifeline
// received upstream, RESUME refused with op 9, a ping answered, a close
// frame answered and the connection ended, anything else forwarded
// upstream. Answers are queued without waiting for discordgo to read them,
// so a Session that has stopped reading (its Close stops its reader before
// it writes the close frame) can always write.
//
// What the relay sends discordgo waits in a queue that Read drains. The
// dispatches (Deliver, and SetReady's READY of a new session) wait until
// discordgo has read them whole, which is the back-pressure the upstream
// reader feels, and are taken back if the connection ends first: a
// dispatch reaches exactly one connection or none, and Deliver then hands
// it to the next one.
type downConn struct {
	relay *Relay

	// Client to relay. inMu serialises Write (gorilla/websocket already
	// writes one frame at a time) and guards the parser.
	inMu     sync.Mutex
	in       []byte // bytes written and not parsed yet
	msg      []byte // the payload so far of a message split into frames
	msgOp    byte   // that message's opcode; 0 when none is in progress
	upgraded bool   // the upgrade request was answered with 101

	// identifyPending: IDENTIFY arrived before the relay had a READY to
	// answer it with; SetReady answers it. Guarded by relay.mu.
	identifyPending bool

	// Relay to client. mu guards everything below; cond wakes Read, and
	// writers waiting for their frame to be read.
	mu           sync.Mutex
	cond         sync.Cond
	out          []outFrame // the queue: out[head:]
	head         int
	lastID       uint64 // id of the last frame queued with a waiting writer
	readID       uint64 // id of the last such frame discordgo has read whole
	ended        bool   // the relay sends nothing more; Read drains the queue then reports EOF
	clientClosed bool   // discordgo closed its end
	deadline     time.Time
	timer        *time.Timer // wakes Read at deadline
}

// outFrame is one server frame (or, before the upgrade, an HTTP response)
// waiting for discordgo to read it.
type outFrame struct {
	hdr  [10]byte
	nh   int    // header bytes in hdr
	data []byte // the payload, read in place
	off  int    // bytes of hdr[:nh] and data read so far
	id   uint64 // non-zero: a writer waits until the frame is read whole
}

func (f *outFrame) size() int { return f.nh + len(f.data) }

func newDownConn(r *Relay) *downConn {
	d := &downConn{relay: r}
	d.cond.L = &d.mu
	return d
}

// Read gives discordgo the queued frames, waiting while there are none.
func (d *downConn) Read(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.head == len(d.out) {
		switch {
		case d.clientClosed:
			return 0, net.ErrClosed
		case d.ended:
			return 0, io.EOF
		case !d.deadline.IsZero() && !time.Now().Before(d.deadline):
			return 0, os.ErrDeadlineExceeded
		}
		d.cond.Wait()
	}
	if d.clientClosed {
		return 0, net.ErrClosed
	}
	n := 0
	for n < len(p) && d.head < len(d.out) {
		f := &d.out[d.head]
		if f.off < f.nh {
			c := copy(p[n:], f.hdr[f.off:f.nh])
			n += c
			f.off += c
			continue
		}
		c := copy(p[n:], f.data[f.off-f.nh:])
		n += c
		f.off += c
		if f.off == f.size() {
			if f.id != 0 {
				d.readID = f.id
				d.cond.Broadcast()
			}
			d.pop()
		}
	}
	return n, nil
}

// pop drops the frame at the head of the queue. d.mu is held.
func (d *downConn) pop() {
	d.out[d.head] = outFrame{}
	d.head++
	if d.head == len(d.out) {
		d.out, d.head = d.out[:0], 0
	}
}

// queue appends a frame. With wait it returns once discordgo has read the
// frame whole, or net.ErrClosed if the connection ended first (the frame
// is then taken back); without, as soon as the frame is queued.
func (d *downConn) queue(f outFrame, wait bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return net.ErrClosed
	}
	if wait {
		d.lastID++
		f.id = d.lastID
	}
	d.out = append(d.out, f)
	d.cond.Broadcast()
	if !wait {
		return nil
	}
	for d.readID < f.id && !d.ended {
		d.cond.Wait()
	}
	if d.readID < f.id {
		return net.ErrClosed
	}
	return nil
}

// frame builds a server frame (FIN set, unmasked) around payload.
func frame(op byte, payload []byte) outFrame {
	f := outFrame{data: payload}
	f.hdr[0] = 0x80 | op
	switch n := len(payload); {
	case n < 126:
		f.hdr[1], f.nh = byte(n), 2
	case n <= 0xFFFF:
		f.hdr[1] = 126
		binary.BigEndian.PutUint16(f.hdr[2:], uint16(n))
		f.nh = 4
	default:
		f.hdr[1] = 127
		binary.BigEndian.PutUint64(f.hdr[2:], uint64(n))
		f.nh = 10
	}
	return f
}

// write sends one text frame and waits until discordgo has read it.
func (d *downConn) write(payload []byte) error {
	return d.queue(frame(wsText, payload), true)
}

// post queues one frame without waiting; after the end it is dropped.
func (d *downConn) post(op byte, payload []byte) {
	_ = d.queue(frame(op, payload), false)
}

// end stops the relay's side: nothing more is queued, the frames writers
// wait for are taken back (all of the queue if discordgo is part-way
// through a frame: it will see the frame cut short), and Read reports EOF
// once the rest is read.
func (d *downConn) end() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ended {
		return
	}
	d.ended = true
	q := d.out[d.head:]
	if len(q) > 0 && q[0].off > 0 {
		q = q[:0]
	} else {
		keep := q[:0]
		for _, f := range q {
			if f.id == 0 {
				keep = append(keep, f)
			}
		}
		clear(q[len(keep):])
		q = keep
	}
	d.out, d.head = q, 0
	d.cond.Broadcast()
}

// Write takes what discordgo's websocket writes and acts on every
// complete request, frame and message in it. Once the relay has ended the
// connection, writes are swallowed instead of failing: discordgo v0.29.0
// answers a failed heartbeat write by closing the Session, which after a
// quick re-Open would hit the *new* connection (its stale heartbeat
// goroutine problem). Reads still fail, so discordgo's reader stops.
func (d *downConn) Write(p []byte) (int, error) {
	d.inMu.Lock()
	defer d.inMu.Unlock()
	d.mu.Lock()
	ended := d.ended
	d.mu.Unlock()
	if ended {
		return len(p), nil
	}
	d.in = append(d.in, p...)
	rest := d.parse(d.in)
	switch {
	case len(rest) == len(d.in):
	case len(rest) > 0:
		d.in = append(d.in[:0], rest...)
	default:
		// Parsed whole (the usual case: gorilla/websocket writes a frame
		// at a time): an idle connection keeps no buffer.
		d.in = nil
	}
	return len(p), nil
}

// parse acts on every complete unit at the start of b and returns what is
// left (an incomplete unit, or nothing once the connection has ended).
func (d *downConn) parse(b []byte) []byte {
	for {
		if !d.upgraded {
			i := bytes.Index(b, []byte("\r\n\r\n"))
			if i < 0 {
				if len(b) > maxRequestHeader {
					d.refuse()
					return nil
				}
				return b
			}
			if !d.upgrade(b[:i+4]) {
				return nil
			}
			b = b[i+4:]
			continue
		}
		if len(b) < 2 {
			return b
		}
		fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0F
		masked, n, h := b[1]&0x80 != 0, uint64(b[1]&0x7F), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return b
			}
			n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			if len(b) < 10 {
				return b
			}
			n, h = binary.BigEndian.Uint64(b[2:]), 10
		}
		if !masked || rsv != 0 || n > maxClientFrame {
			// Client frames are masked, and compression is never
			// negotiated.
			d.fail(1002)
			return nil
		}
		end := h + 4 + int(n)
		if len(b) < end {
			return b
		}
		payload := b[h+4 : end]
		key := b[h : h+4]
		for i := range payload {
			payload[i] ^= key[i&3]
		}
		b = b[end:]
		if !d.onFrame(fin, op, payload) {
			return nil
		}
	}
}

// onFrame acts on one client frame; payload is only valid during the
// call. It reports false once the connection has ended.
func (d *downConn) onFrame(fin bool, op byte, payload []byte) bool {
	switch op {
	case wsClose:
		if !fin || len(payload) > 125 || len(payload) == 1 {
			d.fail(1002)
			return false
		}
		// Answer with the same code, as a WebSocket server does, then
		// stop: discordgo is closing this Session.
		var reply []byte
		if len(payload) >= 2 {
			reply = append(reply, payload[:2]...)
		}
		d.post(wsClose, reply)
		d.detach()
		return false
	case wsPing:
		if !fin || len(payload) > 125 {
			d.fail(1002)
			return false
		}
		d.post(wsPong, bytes.Clone(payload))
	case wsPong:
	case wsText, wsBinary:
		if d.msgOp != 0 {
			d.fail(1002)
			return false
		}
		if !fin {
			d.msgOp, d.msg = op, append([]byte(nil), payload...)
			return true
		}
		d.onMessage(bytes.Clone(payload))
	case wsContinuation:
		if d.msgOp == 0 {
			d.fail(1002)
			return false
		}
		d.msg = append(d.msg, payload...)
		if fin {
			msg := d.msg
			d.msg, d.msgOp = nil, 0
			d.onMessage(msg)
		}
	default:
		d.fail(1002)
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.ended
}

// onMessage acts on one message from discordgo (data is its own).
func (d *downConn) onMessage(data []byte) {
	p, err := DecodePayload(data)
	if err != nil {
		return // discordgo never sends these; nothing to forward
	}
	switch p.Op {
	case OpHeartbeat:
		d.ack()
	case OpIdentify:
		d.answerIdentify()
	case OpResume:
		// The relay keeps no downstream session to resume: make
		// discordgo IDENTIFY, which it does at once on op 9.
		d.post(wsText, encode(OpInvalidSession, []byte("false")))
	default:
		d.relay.opts.Forward(data)
	}
}

// fail closes the connection with a WebSocket close code after a protocol
// error.
func (d *downConn) fail(code int) {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], uint16(code))
	d.post(wsClose, b[:])
	d.detach()
}

// upgrade answers the upgrade request with 101, attaches the connection
// to the relay and sends HELLO. It reports false if it refused the request
// or the relay is closed.
func (d *downConn) upgrade(head []byte) bool {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	key := ""
	if err == nil {
		key = req.Header.Get("Sec-Websocket-Key")
	}
	if err != nil || req.Method != http.MethodGet || key == "" ||
		!hasToken(req.Header, "Connection", "upgrade") || !hasToken(req.Header, "Upgrade", "websocket") ||
		req.Header.Get("Sec-Websocket-Version") != "13" {
		d.refuse()
		return false
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
	_ = d.queue(outFrame{data: []byte(resp)}, false)
	d.upgraded = true

	r := d.relay
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		d.end()
		return false
	}
	old := r.down
	r.down = d
	r.mu.Unlock()
	if old != nil {
		old.end() // one Session, one live connection
	}
	ms := strconv.FormatInt(r.opts.HeartbeatInterval.Milliseconds(), 10)
	d.post(wsText, encode(OpHello, []byte(`{"heartbeat_interval":`+ms+`}`)))
	return true
}

// refuse answers a request that is not a WebSocket upgrade with 400 and
// ends the connection.
func (d *downConn) refuse() {
	_ = d.queue(outFrame{data: []byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")}, false)
	d.end()
}

// hasToken reports whether the comma-separated header name lists token
// (ASCII case-insensitive).
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// answerIdentify answers IDENTIFY with the READY lifeline received
// upstream and marks the connection attached; without a READY yet,
// SetReady answers it when one comes.
func (d *downConn) answerIdentify() {
	r := d.relay
	r.mu.Lock()
	if r.down != d || r.closed {
		r.mu.Unlock()
		return
	}
	if r.ready == nil {
		d.identifyPending = true
		r.mu.Unlock()
		return
	}
	d.attachLocked(r.ready)
	r.mu.Unlock()
	r.opts.OnAttach(true)
}

// attachLocked queues READY and marks the connection attached; relay.mu is
// held. The caller calls OnAttach(true) once it has let go of the lock.
func (d *downConn) attachLocked(ready []byte) {
	r := d.relay
	d.identifyPending = false
	d.post(wsText, ready)
	if !isClosed(r.attachCh) {
		close(r.attachCh)
	}
}

// ack answers discordgo's heartbeat, after the upstream round trip if one
// is known (so the Session's HeartbeatLatency stays meaningful).
func (d *downConn) ack() {
	if rtt := time.Duration(d.relay.rtt.Load()); rtt > 0 {
		d.relay.opts.Clock.AfterFunc(rtt, func() { d.post(wsText, encode(OpHeartbeatACK, nil)) })
		return
	}
	d.post(wsText, encode(OpHeartbeatACK, nil))
}

// detach ends the connection and, if it was the relay's attached one,
// marks the relay detached: Deliver waits for the next.
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
	d.end()
	if was {
		r.opts.OnAttach(false)
	}
}

// Close is discordgo closing its end: the relay detaches it.
func (d *downConn) Close() error {
	d.mu.Lock()
	if d.clientClosed {
		d.mu.Unlock()
		return net.ErrClosed
	}
	d.clientClosed = true
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.cond.Broadcast()
	d.mu.Unlock()
	d.detach()
	return nil
}

func (d *downConn) LocalAddr() net.Addr  { return pipeAddr{} }
func (d *downConn) RemoteAddr() net.Addr { return pipeAddr{} }

// SetDeadline sets the read deadline; see SetWriteDeadline.
func (d *downConn) SetDeadline(t time.Time) error { return d.SetReadDeadline(t) }

// SetReadDeadline makes a Read waiting past t fail with
// os.ErrDeadlineExceeded (gorilla/websocket bounds its handshake so).
func (d *downConn) SetReadDeadline(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.clientClosed {
		return net.ErrClosed
	}
	d.deadline = t
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if !t.IsZero() {
		d.timer = time.AfterFunc(time.Until(t), func() {
			d.mu.Lock()
			d.cond.Broadcast()
			d.mu.Unlock()
		})
	}
	return nil
}

// SetWriteDeadline does nothing: a Write never waits for the relay's
// reader, only for the relay's answer (at most an upstream send, which
// has its own bound).
func (d *downConn) SetWriteDeadline(time.Time) error { return nil }
