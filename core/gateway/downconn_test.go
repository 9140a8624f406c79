package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// rawClient speaks WebSocket to the relay byte by byte, so the tests can
// write what gorilla/websocket would never write (split frames, unmasked
// frames, a request that is no upgrade) and read exactly what the relay
// queued.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dialRaw connects to r without upgrading.
func dialRaw(t *testing.T, r *Relay) *rawClient {
	t.Helper()
	c, err := r.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

// upgradeRaw connects to r, upgrades with RFC 6455's sample key, checks
// the 101 and its accept key, and reads HELLO.
func upgradeRaw(t *testing.T, r *Relay) *rawClient {
	t.Helper()
	rc := dialRaw(t, r)
	rc.write([]byte("GET / HTTP/1.1\r\nHost: lifeline-relay\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("upgrade answered %d, accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	if p := rc.readPayload(); p.Op != OpHello {
		t.Fatalf("first frame op %d, want HELLO", p.Op)
	}
	return rc
}

func (rc *rawClient) write(b []byte) {
	rc.t.Helper()
	if n, err := rc.c.Write(b); err != nil || n != len(b) {
		rc.t.Fatalf("write: %d of %d bytes, %v", n, len(b), err)
	}
}

// clientFrame is a masked client frame.
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var f []byte
	switch n := len(payload); {
	case n < 126:
		f = []byte{b0, 0x80 | byte(n)}
	case n <= 0xFFFF:
		f = binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(n))
	default:
		f = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	key := []byte{0x37, 0xfa, 0x21, 0x3d}
	f = append(f, key...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

// readFrame reads one server frame, checking it is whole and unmasked.
func (rc *rawClient) readFrame() (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(rc.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		rc.t.Fatalf("server frame header % x: want FIN set and no mask", h)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(rc.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(rc.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0F, payload, nil
}

// readPayload reads one text frame and decodes it.
func (rc *rawClient) readPayload() Payload {
	rc.t.Helper()
	op, b, err := rc.readFrame()
	if err != nil || op != wsText {
		rc.t.Fatalf("read: op %d, %v", op, err)
	}
	p, err := DecodePayload(b)
	if err != nil {
		rc.t.Fatalf("decode %q: %v", b, err)
	}
	return p
}

// expectEnd reads until the relay's side ends, returning what close code
// came on the way (0 for none).
func (rc *rawClient) expectEnd() int {
	rc.t.Helper()
	code := 0
	for range 16 {
		op, b, err := rc.readFrame()
		if errors.Is(err, io.EOF) {
			return code
		}
		if err != nil {
			rc.t.Fatalf("read: %v, want EOF", err)
		}
		if op == wsClose && len(b) >= 2 {
			code = int(binary.BigEndian.Uint16(b))
		}
	}
	rc.t.Fatal("no EOF after 16 frames")
	return 0
}

// identify IDENTIFYs and reads the READY it is answered with.
func (rc *rawClient) identify() {
	rc.t.Helper()
	rc.write(clientFrame(true, wsText, encode(OpIdentify, []byte(`{"token":"t"}`))))
	if p := rc.readPayload(); p.Op != OpDispatch || p.T != "READY" {
		rc.t.Fatalf("IDENTIFY answered with op %d %q", p.Op, p.T)
	}
}

// queued reports how many frames wait in the relay's current connection.
func queued(r *Relay) int {
	r.mu.Lock()
	d := r.down
	r.mu.Unlock()
	if d == nil {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.out) - d.head
}

// waitFor polls cond, bounded in count; the relay has no goroutine to
// wait for, only the test's own.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 5000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestRelayRefusesWhatIsNoUpgrade(t *testing.T) {
	for name, req := range map[string]string{
		"plain GET":   "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST":        "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"old version": "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\nSec-WebSocket-Version: 8\r\n\r\n",
		"no key":      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"not HTTP":    "hello relay\r\n\r\n",
		"endless":     "GET / HTTP/1.1\r\nX: " + strings.Repeat("y", maxRequestHeader),
	} {
		t.Run(name, func(t *testing.T) {
			r := NewRelay(RelayOptions{})
			defer r.Close()
			rc := dialRaw(t, r)
			rc.write([]byte(req))
			resp, err := http.ReadResponse(rc.br, nil)
			if err != nil || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("answered %v, %v; want 400", resp, err)
			}
			if _, err := rc.br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the 400: %v, want EOF", err)
			}
			if r.Attached() || queued(r) != 0 {
				t.Fatal("a refused connection is the relay's")
			}
		})
	}
}

// TestRelayParsesWhateverTheWritesCut feeds the relay its bytes one at a
// time and a message in three frames with a ping between them: each unit
// is acted on once it is whole, whatever the writes' boundaries.
func TestRelayParsesWhateverTheWritesCut(t *testing.T) {
	fwd := make(chan []byte, 4)
	r := NewRelay(RelayOptions{Forward: func(f []byte) { fwd <- f }})
	defer r.Close()
	if err := r.SetReady(context.Background(), readyFrame("abc", 1)); err != nil {
		t.Fatal(err)
	}
	rc := upgradeRaw(t, r)
	rc.identify()
	if !r.Attached() {
		t.Fatal("not attached after READY")
	}

	big := encode(OpRequestGuildMembers, []byte(`{"guild_id":"1","user_ids":["`+strings.Repeat("7", 70000)+`"]}`))
	var stream []byte
	stream = append(stream, clientFrame(false, wsText, big[:100])...)
	stream = append(stream, clientFrame(true, wsPing, []byte("are you there"))...)
	stream = append(stream, clientFrame(false, wsContinuation, big[100:300])...)
	stream = append(stream, clientFrame(true, wsContinuation, big[300:])...)
	stream = append(stream, clientFrame(true, wsText, encode(OpHeartbeat, []byte("1")))...)
	stream = append(stream, clientFrame(true, wsPong, nil)...)
	stream = append(stream, clientFrame(true, wsBinary, encode(OpPresenceUpdate, []byte(`{"status":"idle"}`)))...)
	for i := 0; i < len(stream); {
		n := 1 + i%7
		if i > 1000 && i < len(stream)-1000 {
			n = 4096 // the middle of the big frame in larger steps
		}
		n = min(n, len(stream)-i)
		rc.write(stream[i : i+n])
		i += n
	}
	if op, b, err := rc.readFrame(); err != nil || op != wsPong || string(b) != "are you there" {
		t.Fatalf("ping answered with op %d %q (%v)", op, b, err)
	}
	if p := rc.readPayload(); p.Op != OpHeartbeatACK {
		t.Fatalf("heartbeat answered with op %d", p.Op)
	}
	if got := <-fwd; !bytes.Equal(got, big) {
		t.Fatalf("forwarded %d bytes, want the %d of the fragmented message", len(got), len(big))
	}
	if got := <-fwd; !strings.Contains(string(got), "idle") {
		t.Fatalf("forwarded %q, want the presence update", got)
	}
	if len(fwd) != 0 {
		t.Fatal("forwarded more than was sent")
	}
	// Everything parsed: the connection keeps no parse buffer.
	r.mu.Lock()
	d := r.down
	r.mu.Unlock()
	d.inMu.Lock()
	defer d.inMu.Unlock()
	if d.in != nil || d.msg != nil {
		t.Fatalf("kept %d input and %d message bytes after parsing everything", cap(d.in), cap(d.msg))
	}
}

func TestRelayProtocolErrorsEndTheConnection(t *testing.T) {
	for name, f := range map[string][]byte{
		"unmasked":                   {0x81, 0x02, '{', '}'},
		"reserved bit":               func() []byte { b := clientFrame(true, wsText, []byte("{}")); b[0] |= 0x40; return b }(),
		"continuation without start": clientFrame(true, wsContinuation, []byte("x")),
		"text inside a message":      append(clientFrame(false, wsText, []byte("{")), clientFrame(true, wsText, []byte("{}"))...),
		"fragmented ping":            clientFrame(false, wsPing, nil),
		"unknown opcode":             clientFrame(true, 0x3, nil),
		"huge frame":                 {0x82, 0xFF, 0x7F, 0, 0, 0, 0, 0, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			attached := make(chan bool, 2)
			r := NewRelay(RelayOptions{OnAttach: func(a bool) { attached <- a }})
			defer r.Close()
			_ = r.SetReady(context.Background(), readyFrame("abc", 1))
			rc := upgradeRaw(t, r)
			rc.identify()
			rc.write(f)
			if code := rc.expectEnd(); code != 1002 {
				t.Fatalf("closed with %d, want 1002", code)
			}
			if r.Attached() || !<-attached || <-attached {
				t.Fatal("the relay still counts the connection attached")
			}
			// Writes after the end are swallowed, not failed.
			if n, err := rc.c.Write(clientFrame(true, wsText, encode(OpHeartbeat, nil))); err != nil || n == 0 {
				t.Fatalf("write after the end: %d, %v", n, err)
			}
		})
	}
}

func TestRelayAnswersACloseFrame(t *testing.T) {
	attached := make(chan bool, 2)
	r := NewRelay(RelayOptions{OnAttach: func(a bool) { attached <- a }})
	defer r.Close()
	_ = r.SetReady(context.Background(), readyFrame("abc", 1))
	rc := upgradeRaw(t, r)
	rc.identify()
	rc.write(clientFrame(true, wsClose, websocket.FormatCloseMessage(4000, "bye")))
	if code := rc.expectEnd(); code != 4000 {
		t.Fatalf("answered with %d, want 4000 back", code)
	}
	if !<-attached || <-attached || r.Attached() {
		t.Fatal("a closed connection is still attached")
	}
}

// TestRelayIdentifyBeforeReady: the Session can IDENTIFY before lifeline
// has READY; the relay answers when SetReady brings it.
func TestRelayIdentifyBeforeReady(t *testing.T) {
	r := NewRelay(RelayOptions{})
	defer r.Close()
	rc := upgradeRaw(t, r)
	rc.write(clientFrame(true, wsText, encode(OpIdentify, []byte(`{"token":"t"}`))))
	if r.Attached() || queued(r) != 0 {
		t.Fatal("answered IDENTIFY without a READY")
	}
	if err := r.SetReady(context.Background(), readyFrame("late", 1)); err != nil {
		t.Fatal(err)
	}
	p := rc.readPayload()
	if p.T != "READY" || !strings.Contains(string(p.D), "late") || !r.Attached() {
		t.Fatalf("got op %d %q, attached %v", p.Op, p.T, r.Attached())
	}
}

// TestRelayDeliversToOneConnectionOnly: a dispatch queued for a Session
// that goes away unread (or part-read) is taken back and reaches the next
// connection whole; the first never gets it.
func TestRelayDeliversToOneConnectionOnly(t *testing.T) {
	for _, partRead := range []bool{false, true} {
		name := "unread"
		if partRead {
			name = "part-read"
		}
		t.Run(name, func(t *testing.T) {
			r := NewRelay(RelayOptions{})
			defer r.Close()
			_ = r.SetReady(context.Background(), readyFrame("abc", 1))
			first := upgradeRaw(t, r)
			first.identify()

			msg := messageFrame(2, strings.Repeat("m", 300))
			done := make(chan error, 1)
			go func() { done <- r.Deliver(context.Background(), msg) }()
			waitFor(t, "the dispatch queued", func() bool { return queued(r) == 1 })
			if partRead {
				// Straight from the connection: first.br would take
				// the whole frame into its buffer.
				var b [5]byte
				if first.br.Buffered() != 0 {
					t.Fatal("bytes left in the client's buffer")
				}
				if _, err := io.ReadFull(first.c, b[:]); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				t.Fatalf("Deliver returned %v before the Session read the dispatch", err)
			default:
			}
			_ = first.c.Close()
			if _, err := first.c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after Close: %v", err)
			}

			second := upgradeRaw(t, r)
			second.identify()
			if p := second.readPayload(); p.T != "MESSAGE_CREATE" || p.Seq() != 2 {
				t.Fatalf("second connection got op %d %q seq %d", p.Op, p.T, p.Seq())
			}
			if err := <-done; err != nil {
				t.Fatalf("Deliver: %v", err)
			}
		})
	}
}

func TestRelayReadDeadline(t *testing.T) {
	r := NewRelay(RelayOptions{})
	defer r.Close()
	rc := upgradeRaw(t, r)
	buf := make([]byte, 8)
	if err := rc.c.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	var ne net.Error
	if err := rc.c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.c.Read(buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read waiting past the deadline: %v, want a timeout", err)
	}
	// Cleared, a read waits for data again.
	if err := rc.c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	rc.write(clientFrame(true, wsText, encode(OpHeartbeat, []byte("1"))))
	if p := rc.readPayload(); p.Op != OpHeartbeatACK {
		t.Fatalf("op %d, want the ACK", p.Op)
	}
}

// TestRelayCloseEndsTheSession: after Relay.Close the Session reads EOF
// and its writes are swallowed; no goroutine of the relay's remains to
// wait for.
func TestRelayCloseEndsTheSession(t *testing.T) {
	r := NewRelay(RelayOptions{})
	_ = r.SetReady(context.Background(), readyFrame("abc", 1))
	rc := upgradeRaw(t, r)
	rc.identify()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if code := rc.expectEnd(); code != 0 {
		t.Fatalf("close code %d on Relay.Close", code)
	}
	if _, err := rc.c.Write(clientFrame(true, wsText, encode(OpHeartbeat, nil))); err != nil {
		t.Fatalf("write after Relay.Close: %v", err)
	}
	if _, err := r.dial(context.Background()); !errors.Is(err, ErrRelayClosed) {
		t.Fatalf("dial after Close: %v", err)
	}
}

// TestRelayConcurrentTraffic runs heartbeats, bot sends and dispatches at
// once through a gorilla/websocket client (under -race).
func TestRelayConcurrentTraffic(t *testing.T) {
	var fwdMu sync.Mutex
	forwarded := 0
	r := NewRelay(RelayOptions{Forward: func([]byte) { fwdMu.Lock(); forwarded++; fwdMu.Unlock() }})
	defer r.Close()
	_ = r.SetReady(context.Background(), readyFrame("abc", 1))
	d := r.Dialer()
	d.WriteBufferPool, d.WriteBufferSize = nil, 64 // bot sends split into frames
	ws, _, err := d.Dial("ws://lifeline-relay/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var wmu sync.Mutex
	send := func(b []byte) error { wmu.Lock(); defer wmu.Unlock(); return ws.WriteMessage(websocket.TextMessage, b) }
	if _, _, err := ws.ReadMessage(); err != nil { // HELLO
		t.Fatal(err)
	}
	if err := send(encode(OpIdentify, []byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			if err := r.Deliver(context.Background(), messageFrame(int64(i+2), "m")); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for range n {
			if err := send(encode(OpHeartbeat, []byte("1"))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for range n {
			if err := send(encode(OpPresenceUpdate, []byte(`{"status":"`+strings.Repeat("x", 100)+`"}`))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	acks, seq := 0, int64(1)
	for acks < n || seq < n+1 {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		p, err := DecodePayload(b)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case p.Op == OpHeartbeatACK:
			acks++
		case p.T == "MESSAGE_CREATE":
			if p.Seq() != seq+1 {
				t.Fatalf("seq %d after %d", p.Seq(), seq)
			}
			seq = p.Seq()
		}
	}
	wg.Wait()
	fwdMu.Lock()
	defer fwdMu.Unlock()
	if forwarded != n {
		t.Fatalf("forwarded %d bot sends, want %d", forwarded, n)
	}
}
