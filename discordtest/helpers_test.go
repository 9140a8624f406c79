package discordtest

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ioTimeout bounds every wait on the network in tests. It is a safety net
// against hangs, never a timing assertion.
const ioTimeout = 10 * time.Second

func newTestServer(t testing.TB, opts Options) *Server {
	t.Helper()
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// evt is a decoded gateway frame as a client sees it.
type evt struct {
	Op     int             `json:"op"`
	D      json.RawMessage `json:"d"`
	S      *int64          `json:"s"`
	T      *string         `json:"t"`
	binary bool
}

func (e evt) typ() string {
	if e.T == nil {
		return ""
	}
	return *e.T
}

func (e evt) seq() int64 {
	if e.S == nil {
		return 0
	}
	return *e.S
}

// rawClient is a bare gateway client for precise protocol tests. A
// goroutine reads the connection, so waiting for a frame that does not
// come leaves the connection usable.
type rawClient struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan rawFrame
	err    error // the read error that ended the connection
}

type rawFrame struct {
	mt   int
	data []byte
	err  error
}

type timeoutError struct{}

func (timeoutError) Error() string { return "no frame within the wait" }
func (timeoutError) Timeout() bool { return true }

func dialRaw(t testing.TB, srv *Server, path, query string) *rawClient {
	t.Helper()
	c, err := tryDial(srv, path, query)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { _ = c.ws.Close() })
	c.t = t
	return c
}

func tryDial(srv *Server, path, query string) (*rawClient, error) {
	if query == "" {
		query = "v=10&encoding=json"
	}
	u := strings.TrimSuffix(srv.GatewayURL(), "/gateway") + path + "?" + query
	d := srv.Dialer()
	d.HandshakeTimeout = ioTimeout
	ws, resp, err := d.Dial(u, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	c := &rawClient{ws: ws, frames: make(chan rawFrame, 256)}
	go func() {
		for {
			mt, data, err := ws.ReadMessage()
			c.frames <- rawFrame{mt: mt, data: data, err: err}
			if err != nil {
				return
			}
		}
	}()
	return c, nil
}

// nextRaw returns the next frame as read.
func (c *rawClient) nextRaw(timeout time.Duration) (int, []byte, error) {
	if c.err != nil {
		return 0, nil, c.err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case f := <-c.frames:
		if f.err != nil {
			c.err = f.err
		}
		return f.mt, f.data, f.err
	case <-t.C:
		return 0, nil, timeoutError{}
	}
}

func (c *rawClient) send(op int, d any) {
	c.t.Helper()
	b, err := json.Marshal(map[string]any{"op": op, "d": d})
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *rawClient) sendRaw(b []byte) {
	c.t.Helper()
	_ = c.ws.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads one frame, inflating zlib-compressed binary frames.
func (c *rawClient) next(timeout time.Duration) (evt, error) {
	mt, data, err := c.nextRaw(timeout)
	if err != nil {
		return evt{}, err
	}
	var e evt
	if mt == websocket.BinaryMessage {
		zr, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return evt{}, err
		}
		data, err = io.ReadAll(zr)
		if err != nil {
			return evt{}, err
		}
		e.binary = true
	}
	if err := json.Unmarshal(data, &e); err != nil {
		return evt{}, err
	}
	return e, nil
}

func (c *rawClient) read() evt {
	c.t.Helper()
	e, err := c.next(ioTimeout)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return e
}

// expect reads frames until one with op (and type, for dispatches)
// arrives, skipping heartbeat ACKs and other dispatches.
func (c *rawClient) expect(op int, typ string) evt {
	c.t.Helper()
	for i := 0; i < 1000; i++ {
		e := c.read()
		if e.Op == op && (typ == "" || e.typ() == typ) {
			return e
		}
	}
	c.t.Fatalf("no op %d %s within 1000 frames", op, typ)
	return evt{}
}

// expectClose reads until the server's close frame and returns its code.
func (c *rawClient) expectClose() int {
	c.t.Helper()
	for i := 0; i < 1000; i++ {
		_, err := c.next(ioTimeout)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
	c.t.Fatal("no close within 1000 frames")
	return 0
}

// expectNoFrame asserts that nothing arrives within d (the connection
// stays open and silent).
func (c *rawClient) expectNoFrame(d time.Duration) {
	c.t.Helper()
	e, err := c.next(d)
	if err == nil {
		c.t.Fatalf("got op %d %s, want silence", e.Op, e.typ())
	}
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("connection ended (%v), want it open and silent", err)
	}
}

func identifyPayload(token string, shard [2]int, intents int64, compress bool) map[string]any {
	return map[string]any{
		"token": token, "intents": intents, "shard": shard, "compress": compress,
		"properties": map[string]string{"os": "linux", "browser": "discordtest", "device": "discordtest"},
	}
}

// hello reads HELLO and returns the heartbeat interval in ms.
func (c *rawClient) hello() int64 {
	c.t.Helper()
	e := c.read()
	if e.Op != OpHello {
		c.t.Fatalf("first frame op %d, want HELLO", e.Op)
	}
	var h helloData
	if err := json.Unmarshal(e.D, &h); err != nil {
		c.t.Fatal(err)
	}
	return h.HeartbeatInterval
}

type readyData struct {
	SessionID        string  `json:"session_id"`
	ResumeGatewayURL string  `json:"resume_gateway_url"`
	Shard            [2]int  `json:"shard"`
	User             User    `json:"user"`
	Guilds           []Guild `json:"guilds"`
	V                int     `json:"v"`
}

// identify reads HELLO, identifies as shard and returns READY.
func (c *rawClient) identify(srv *Server, shard [2]int) (readyData, evt) {
	c.t.Helper()
	c.hello()
	c.send(OpIdentify, identifyPayload(srv.Token(), shard, IntentGuilds|IntentGuildMessages, false))
	e := c.expect(OpDispatch, "READY")
	var r readyData
	if err := json.Unmarshal(e.D, &r); err != nil {
		c.t.Fatal(err)
	}
	return r, e
}

// waitFor polls cond until it holds, failing after ioTimeout. It waits on
// work the server does in its own goroutines; it asserts no timing.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func getJSON(t testing.TB, c *http.Client, url, auth string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: decode %q: %v", url, body, err)
		}
	}
	return resp
}

// inflateStream decodes a zlib-stream transport: one zlib context, each
// message ending in a sync flush.
func inflateStream(t testing.TB, stream []byte) []evt {
	t.Helper()
	zr, err := zlib.NewReader(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(zr)
	var out []evt
	for i := 0; i < 1000; i++ {
		var e evt
		if err := dec.Decode(&e); err != nil {
			break
		}
		out = append(out, e)
	}
	return out
}
