package conn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/clock"
)

const (
	helloJSON = `{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["gw-test"]}}`
	readyJSON = `{"t":"READY","s":1,"op":0,"d":{"v":10,"user":{"id":"1","username":"bot"},"guilds":[{"id":"2","unavailable":true}],` +
		`"session_id":"0123456789abcdef","resume_gateway_url":"wss://resume.gateway.test","shard":[0,1],"_trace":["x"]}}`
	identifyJSON = `{"op":2,"d":{"token":"Bot SECRET.TOKEN.VALUE","properties":{"os":"linux","browser":"lifeline"},` +
		`"compress":false,"large_threshold":250,"intents":513}}`
)

// wsServer starts an httptest server on 127.0.0.1 that upgrades every
// request and runs handler; the upgrader's small write buffer makes
// gorilla fragment long messages written through NextWriter.
func wsServer(t *testing.T, tlsOn bool, handler func(c *websocket.Conn)) *httptest.Server {
	t.Helper()
	up := websocket.Upgrader{WriteBufferSize: 64}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		handler(c)
	})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the TLS failure test makes the server complain
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(srv *httptest.Server) string {
	return strings.Replace(strings.Replace(srv.URL, "https://", "wss://", 1), "http://", "ws://", 1)
}

// writeFragmented writes msg as a text message through NextWriter in
// pieces, so it leaves as several frames.
func writeFragmented(c *websocket.Conn, msg string) error {
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	for len(msg) > 0 {
		n := min(50, len(msg))
		if _, err := io.WriteString(w, msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return w.Close()
}

// TestTapGorillaSession drives a whole gateway exchange between a real
// gorilla server and a gorilla client dialed through the tap, both ways,
// with fragmentation, an interleaved ping, a close code and its echo.
func TestTapGorillaSession(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		name := "ws"
		if tlsOn {
			name = "wss"
		}
		t.Run(name, func(t *testing.T) {
			serverErr := make(chan error, 1)
			srv := wsServer(t, tlsOn, func(c *websocket.Conn) {
				serverErr <- func() error {
					if err := c.WriteMessage(websocket.TextMessage, []byte(helloJSON)); err != nil {
						return err
					}
					if _, m, err := c.ReadMessage(); err != nil || string(m) != identifyJSON {
						return errors.New("server: identify not received intact")
					}
					if err := writeFragmented(c, readyJSON); err != nil {
						return err
					}
					if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(5*time.Second)); err != nil {
						return err
					}
					if err := c.WriteMessage(websocket.TextMessage, []byte(`{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"content":"hi"}}`)); err != nil {
						return err
					}
					if _, m, err := c.ReadMessage(); err != nil || string(m) != `{"op":1,"d":2}` {
						return errors.New("server: heartbeat not received intact")
					}
					for _, m := range []string{`{"t":null,"s":null,"op":11,"d":null}`, `{"t":null,"s":null,"op":7,"d":null}`} {
						if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
							return err
						}
					}
					if err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye")); err != nil {
						return err
					}
					// Wait for the client's close echo.
					_, _, err := c.ReadMessage()
					var ce *websocket.CloseError
					if !errors.As(err, &ce) || ce.Code != 4000 {
						return errors.New("server: no close echo")
					}
					return nil
				}()
			})

			rec := &recorder{}
			settings := TapSettings{Observer: rec, Clock: clock.NewFake(time.Time{}), ObserveFrames: true}
			if tlsOn {
				settings.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
			}
			tap := NewTap(settings)
			d := tap.Dialer()
			d.WriteBufferSize = 64 // fragment the client's IDENTIFY too
			c, resp, err := d.Dial(wsURL(srv)+"/?v=9&encoding=json", nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			resp.Body.Close()
			mustRead := func(want string) {
				t.Helper()
				_, m, err := c.ReadMessage()
				if err != nil || string(m) != want {
					t.Fatalf("client read %q, %v; want %q", m, err, want)
				}
			}
			mustRead(helloJSON)
			if err := c.WriteMessage(websocket.TextMessage, []byte(identifyJSON)); err != nil {
				t.Fatal(err)
			}
			mustRead(readyJSON)
			mustRead(`{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"content":"hi"}}`)
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":1,"d":2}`)); err != nil {
				t.Fatal(err)
			}
			mustRead(`{"t":null,"s":null,"op":11,"d":null}`)
			mustRead(`{"t":null,"s":null,"op":7,"d":null}`)
			_, _, err = c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4000 || ce.Text != "bye" {
				t.Fatalf("client read %v, want close 4000", err)
			}
			if err := <-serverErr; err != nil {
				t.Fatal(err)
			}
			c.Close()

			obs := rec.all()
			got := lines(obs, KindFrame, KindDial)
			want := []string{
				"received upgrade status=101",
				"received hello interval=41.25s",
				"sent identify shard=none intents=Guilds|GuildMessages compress=false",
				"received dispatch s=1 t=READY",
				"received ready session=0123456789abcdef resume_url=wss://resume.gateway.test",
				"received dispatch s=2 t=MESSAGE_CREATE",
				"sent heartbeat seq=2",
				"received heartbeat-ack latency=0s",
				"received reconnect",
				`received close code=4000 reason="bye"`,
				`sent close code=4000 reason=""`,
				"sent conn-end",
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			var contRecv, contSent, pings, pongs int
			for _, o := range obs {
				if o.Kind != KindFrame {
					continue
				}
				switch {
				case o.Frame.Opcode == OpContinuation && o.Dir == Received:
					contRecv++
				case o.Frame.Opcode == OpContinuation && o.Dir == Sent:
					contSent++
				case o.Frame.Opcode == OpPing && o.Dir == Received:
					pings++
				case o.Frame.Opcode == OpPong && o.Dir == Sent && o.Frame.Masked:
					pongs++
				}
				if o.Dir == Sent && !o.Frame.Masked {
					t.Errorf("client frame not masked: %v", o)
				}
			}
			if contRecv == 0 || contSent == 0 || pings != 1 || pongs != 1 {
				t.Errorf("frames: %d received continuations, %d sent, %d pings, %d pongs", contRecv, contSent, pings, pongs)
			}
			for _, o := range obs {
				if o.Conn != 1 {
					t.Errorf("observation on conn %d, want 1: %v", o.Conn, o)
				}
				if strings.Contains(o.String(), "SECRET") {
					t.Errorf("token in observation %v", o)
				}
			}
			st := tap.Stats()
			if st.Conns != 1 || st.Malformed != [3]uint64{} || st.Messages[Received] != 5 || st.Messages[Sent] != 2 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestTapDroppedConnection: the server vanishes without a close frame; the
// tap reports the read error as the end of the connection.
func TestTapDroppedConnection(t *testing.T) {
	srv := wsServer(t, false, func(c *websocket.Conn) {
		c.WriteMessage(websocket.TextMessage, []byte(helloJSON))
		c.NetConn().Close()
	})
	rec := &recorder{}
	tap := NewTap(TapSettings{Observer: rec})
	c, _, err := tap.Dialer().Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.ReadMessage(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("read after the drop succeeded")
	}
	got := lines(rec.all(), KindDial, KindUpgrade)
	if len(got) != 2 || got[0] != "received hello interval=41.25s" || !strings.HasPrefix(got[1], "received conn-end: ") {
		t.Errorf("got %q", got)
	}
}

// TestTapMalformedFromServer: a server writes bytes gorilla rejects; the
// tap reports them, and the client sees exactly the error it would see
// without the tap.
func TestTapMalformedFromServer(t *testing.T) {
	raw := cat(
		text("plain words, not JSON", false),
		encodeFrame(wf{fin: true, op: 0x3, payload: []byte("reserved")}),
	)
	srv := wsServer(t, false, func(c *websocket.Conn) {
		c.NetConn().Write(raw)
		c.ReadMessage() // hold the connection until the client goes
	})
	readAll := func(d *websocket.Dialer) (msgs []string, finalErr string) {
		c, _, err := d.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range 5 {
			_, m, err := c.ReadMessage()
			if err != nil {
				return msgs, err.Error()
			}
			msgs = append(msgs, string(m))
		}
		return msgs, ""
	}
	rec := &recorder{}
	tapped, tappedErr := readAll(NewTap(TapSettings{Observer: rec}).Dialer())
	plain, plainErr := readAll(&websocket.Dialer{})
	if strings.Join(tapped, "|") != strings.Join(plain, "|") || tappedErr != plainErr {
		t.Errorf("tapped client saw %q, %q; plain client %q, %q", tapped, tappedErr, plain, plainErr)
	}
	var errs []string
	for _, o := range rec.all() {
		if o.Kind == KindMalformed {
			errs = append(errs, o.Err.Error())
		}
	}
	if len(errs) != 2 || !strings.Contains(errs[0], "not a JSON object") || !strings.Contains(errs[1], "reserved data opcode") {
		t.Errorf("malformed reports %q", errs)
	}
}

func TestTapDialError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	rec := &recorder{}
	tap := NewTap(TapSettings{Observer: rec})
	if _, _, err := tap.Dialer().Dial("ws://"+addr, nil); err == nil {
		t.Fatal("dial succeeded")
	}
	obs := rec.all()
	if len(obs) != 1 || obs[0].Kind != KindDialError || obs[0].Addr != addr || obs[0].Err == nil || obs[0].Conn != 1 {
		t.Errorf("got %v", obs)
	}
	if st := tap.Stats(); st.DialErrors != 1 || st.Conns != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestTapTLSHandshakeError(t *testing.T) {
	srv := wsServer(t, true, func(c *websocket.Conn) {})
	rec := &recorder{}
	tap := NewTap(TapSettings{Observer: rec}) // system roots: the test CA is unknown
	if _, _, err := tap.Dialer().Dial(wsURL(srv), nil); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Fatalf("dial error %v, want a TLS handshake error", err)
	}
	if obs := rec.all(); len(obs) != 1 || obs[0].Kind != KindDialError {
		t.Errorf("got %v", obs)
	}
}

// TestTapPassesBytesUnchanged pushes byte streams (valid frames, garbage,
// and a mix) through tapped connections both ways and compares them with
// what went in.
func TestTapPassesBytesUnchanged(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	garbage := make([]byte, 20000)
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	streams := map[string][]byte{
		"frames":  cat(text(helloJSON, false), text(readyJSON, true), encodeFrame(wf{fin: true, op: OpClose, payload: closePayload(4009, "")})),
		"garbage": garbage,
		"mixed":   cat([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"), text(helloJSON, false), garbage),
	}
	for name, in := range streams {
		for _, dir := range []Direction{Sent, Received} {
			t.Run(name+"/"+dir.String(), func(t *testing.T) {
				tap := NewTap(TapSettings{Observer: &recorder{}})
				a, b := net.Pipe()
				defer a.Close()
				defer b.Close()
				tc := tap.WrapConn(a)
				var (
					writer io.Writer = b
					reader io.Reader = tc
				)
				if dir == Sent {
					writer, reader = tc, b
				}
				wrote := make(chan struct{})
				go func() {
					defer close(wrote)
					for rest := in; len(rest) > 0; {
						n := min(1+r.IntN(3000), len(rest))
						if _, err := writer.Write(rest[:n]); err != nil {
							return
						}
						rest = rest[n:]
					}
				}()
				got := make([]byte, len(in))
				if _, err := io.ReadFull(reader, got); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, in) {
					t.Fatal("bytes changed on the way through the tap")
				}
				<-wrote
				if st := tap.Stats(); st.Bytes[dir] != uint64(len(in)) {
					t.Errorf("Stats.Bytes[%s] = %d, want %d", dir, st.Bytes[dir], len(in))
				}
			})
		}
	}
}

// TestTapConnSerials: each dial gets the next serial number, so an
// observer can tell connections apart.
func TestTapConnSerials(t *testing.T) {
	srv := wsServer(t, false, func(c *websocket.Conn) {
		c.WriteMessage(websocket.TextMessage, []byte(helloJSON))
		c.ReadMessage()
	})
	rec := &recorder{}
	tap := NewTap(TapSettings{Observer: rec})
	for range 3 {
		c, _, err := tap.Dialer().Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.ReadMessage()
		c.Close()
	}
	var hellos []uint64
	for _, o := range rec.all() {
		if o.Kind == KindHello {
			hellos = append(hellos, o.Conn)
		}
	}
	if len(hellos) != 3 || hellos[0] != 1 || hellos[1] != 2 || hellos[2] != 3 {
		t.Errorf("hello conn serials %v", hellos)
	}
}

func TestTapCustomDialContext(t *testing.T) {
	srv := wsServer(t, false, func(c *websocket.Conn) { c.WriteMessage(websocket.TextMessage, []byte(helloJSON)) })
	var dialed []string
	var mu sync.Mutex
	tap := NewTap(TapSettings{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, addr)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, network, strings.TrimPrefix(srv.URL, "http://"))
	}})
	c, _, err := tap.Dialer().Dial("ws://gateway.discord.test/?v=9", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(dialed) != 1 || dialed[0] != "gateway.discord.test:80" {
		t.Errorf("dialed %v", dialed)
	}
}

func TestAsyncObserver(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var got []Observation
	var mu sync.Mutex
	next := ObserverFunc(func(o Observation) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		mu.Lock()
		got = append(got, o)
		mu.Unlock()
	})
	a := NewAsyncObserver(next, 2)
	a.Observe(Observation{Seq: 0})
	<-entered // the goroutine holds observation 0 and blocks
	for i := int64(1); i < 10; i++ {
		a.Observe(Observation{Seq: i}) // 1 and 2 queue; 3..9 drop
	}
	if a.Dropped() != 7 {
		t.Errorf("Dropped() = %d, want 7", a.Dropped())
	}
	close(release)
	a.Close()
	a.Close() // idempotent
	a.Observe(Observation{Seq: 99})
	if a.Dropped() != 8 {
		t.Errorf("Dropped() after Close = %d, want 8", a.Dropped())
	}
	if len(got) != 3 || got[0].Seq != 0 || got[1].Seq != 1 || got[2].Seq != 2 {
		t.Errorf("delivered %v", got)
	}
}

func TestMultiObserver(t *testing.T) {
	a, b := &recorder{}, &recorder{}
	m := MultiObserver{a, nil, b}
	m.Observe(Observation{Kind: KindHello})
	if len(a.all()) != 1 || len(b.all()) != 1 {
		t.Error("not delivered to every observer")
	}
}
