package conn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// recorder is an Observer that keeps every observation.
type recorder struct {
	mu  sync.Mutex
	obs []Observation
}

func (r *recorder) Observe(o Observation) {
	r.mu.Lock()
	r.obs = append(r.obs, o)
	r.mu.Unlock()
}

func (r *recorder) all() []Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Observation(nil), r.obs...)
}

// lines renders observations without the "conn N " prefix, skipping the
// kinds in skip.
func lines(obs []Observation, skip ...Kind) []string {
	var out []string
next:
	for _, o := range obs {
		for _, k := range skip {
			if o.Kind == k {
				continue next
			}
		}
		s := o.String()
		if i := strings.Index(s, " "); i >= 0 {
			if j := strings.Index(s[i+1:], " "); j >= 0 {
				s = s[i+1+j+1:]
			}
		}
		out = append(out, s)
	}
	return out
}

// wf describes a frame for encodeFrame.
type wf struct {
	fin     bool
	rsv     uint8
	op      Opcode
	payload []byte
	mask    bool
	lenForm int // 0: minimal; 126 or 127: force that length encoding
}

// encodeFrame writes f as RFC 6455 bytes; masked frames use a key derived
// from the payload length so different frames get different keys.
func encodeFrame(f wf) []byte {
	var b []byte
	b0 := byte(f.op) & 0x0F
	if f.fin {
		b0 |= 0x80
	}
	b0 |= (f.rsv & 0x7) << 4
	b = append(b, b0)
	var m byte
	if f.mask {
		m = 0x80
	}
	n := len(f.payload)
	switch {
	case f.lenForm == 127 || (f.lenForm == 0 && n > 0xFFFF):
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	case f.lenForm == 126 || (f.lenForm == 0 && n > 125):
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|byte(n))
	}
	p := append([]byte(nil), f.payload...)
	if f.mask {
		key := [4]byte{0x37, 0xfa, byte(n), byte(n >> 8)}
		b = append(b, key[:]...)
		for i := range p {
			p[i] ^= key[i%4]
		}
	}
	return append(b, p...)
}

func text(s string, mask bool) []byte {
	return encodeFrame(wf{fin: true, op: OpText, payload: []byte(s), mask: mask})
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// nopConn is a net.Conn for taps fed directly by tests.
type nopConn struct{ net.Conn }

func (nopConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// chunkings splits b in several ways, including one byte at a time.
func chunkings(b []byte) map[string][][]byte {
	out := map[string][][]byte{"whole": {b}}
	var ones, threes [][]byte
	for i := range b {
		ones = append(ones, b[i:i+1])
	}
	for i := 0; i < len(b); i += 3 {
		threes = append(threes, b[i:min(i+3, len(b))])
	}
	out["bytes"], out["threes"] = ones, threes
	r := rand.New(rand.NewPCG(7, uint64(len(b))))
	var rnd [][]byte
	for rest := b; len(rest) > 0; {
		n := min(1+r.IntN(40), len(rest))
		rnd, rest = append(rnd, rest[:n]), rest[n:]
	}
	out["random"] = rnd
	return out
}

// feedStream feeds chunks to one direction of a fresh tapped connection
// that starts at the frames, and returns the observations.
func feedStream(dir Direction, chunks [][]byte, frames, http bool) ([]Observation, *Tap) {
	rec := &recorder{}
	tap := NewTap(TapSettings{Observer: rec, Clock: clock.NewFake(time.Time{}), ObserveFrames: frames})
	var tc *tappedConn
	if http {
		tc = tap.WrapConn(nopConn{}).(*tappedConn)
	} else {
		tc = tap.wrapFrames(nopConn{})
	}
	s := tc.rd.s
	if dir == Sent {
		s = tc.wr.s
	}
	for _, c := range chunks {
		s.feed(c)
	}
	return rec.all(), tap
}

func TestStreamFrames(t *testing.T) {
	big := `{"t":"GUILD_CREATE","s":7,"op":0,"d":{"x":"` + strings.Repeat("a", 70000) + `"}}`
	mid := `{"t":"MESSAGE_CREATE","s":8,"op":0,"d":{"content":"` + strings.Repeat("b", 300) + `"}}`
	frag := `{"t":"TYPING_START","s":9,"op":0,"d":{}}`
	identify := `{"op":2,"d":{"token":"Bot SECRET-TOKEN","properties":{"os":"linux"},"compress":false,"large_threshold":250,"shard":[1,4],"intents":33281}}`
	tests := []struct {
		name   string
		dir    Direction
		in     []byte
		frames bool
		http   bool
		want   []string
	}{
		{"hello", Received, text(`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}`, false), false, false,
			[]string{"received hello interval=41.25s"}},
		{"16-bit length", Received, text(mid, false), true, false,
			[]string{"received frame text fin=true len=" + fmt.Sprint(len(mid)), "received dispatch s=8 t=MESSAGE_CREATE"}},
		{"forced 16-bit length for a small payload", Received,
			encodeFrame(wf{fin: true, op: OpText, payload: []byte(`{"op":11}`), lenForm: 126}), false, false,
			[]string{"received heartbeat-ack latency=0s"}},
		{"64-bit length", Received, text(big, false), true, false,
			[]string{"received frame text fin=true len=" + fmt.Sprint(len(big)), "received dispatch s=7 t=GUILD_CREATE"}},
		{"fragmented with control frames interleaved", Received, cat(
			encodeFrame(wf{op: OpText, payload: []byte(frag[:10])}),
			encodeFrame(wf{fin: true, op: OpPing, payload: []byte("p")}),
			encodeFrame(wf{op: OpContinuation, payload: []byte(frag[10:20])}),
			encodeFrame(wf{fin: true, op: OpPong}),
			encodeFrame(wf{fin: true, op: OpContinuation, payload: []byte(frag[20:])}),
		), true, false, []string{
			"received frame text fin=false len=10",
			"received frame ping fin=true len=1",
			"received frame continuation fin=false len=10",
			"received frame pong fin=true len=0",
			fmt.Sprintf("received frame continuation fin=true len=%d", len(frag)-20),
			"received dispatch s=9 t=TYPING_START",
		}},
		{"masked client frames", Sent, cat(text(`{"op":1,"d":null}`, true), text(`{"op":1,"d":17}`, true), text(identify, true)), false, false,
			[]string{"sent heartbeat seq=null", "sent heartbeat seq=17",
				"sent identify shard=[1 4] intents=Guilds|GuildMessages|MessageContent compress=false"}},
		{"masked fragmented long client message", Sent, cat(
			encodeFrame(wf{op: OpText, mask: true, payload: []byte(`{"op":6,"d":{"token":"` + strings.Repeat("S", 1500))}),
			encodeFrame(wf{fin: true, op: OpContinuation, mask: true, payload: []byte(`","session_id":"abc","seq":77}}`)}),
		), false, false, []string{"sent resume seq=77"}},
		{"ready and resumed", Received, cat(
			text(`{"t":"READY","s":1,"op":0,"d":{"v":10,"session_id":"sess-1","resume_gateway_url":"wss://resume.example","shard":[0,1]}}`, false),
			text(`{"t":"RESUMED","s":5,"op":0,"d":{}}`, false),
		), false, false, []string{"received dispatch s=1 t=READY", "received ready session=sess-1 resume_url=wss://resume.example",
			"received dispatch s=5 t=RESUMED", "received resumed"}},
		{"reconnect and invalid session", Received, cat(
			text(`{"op":7,"d":null}`, false), text(`{"op":9,"d":true}`, false), text(`{"op":9,"d":false}`, false),
			text(`{"op":1,"d":null}`, false),
		), false, false, []string{"received reconnect", "received invalid-session resumable=true",
			"received invalid-session resumable=false", "received heartbeat seq=null"}},
		{"other ops", Sent, cat(text(`{"op":3,"d":{"status":"online"}}`, true), text(`{"op":99}`, true)), false, false,
			[]string{"sent op op=3", "sent op op=99"}},
		{"close with code and reason", Received,
			encodeFrame(wf{fin: true, op: OpClose, payload: closePayload(4004, "Authentication failed.")}), false, false,
			[]string{`received close code=4004 reason="Authentication failed."`}},
		{"close sent masked", Sent, encodeFrame(wf{fin: true, op: OpClose, mask: true, payload: closePayload(1000, "")}), false, false,
			[]string{`sent close code=1000 reason=""`}},
		{"close without code", Received, encodeFrame(wf{fin: true, op: OpClose}), false, false,
			[]string{`received close code=1005 reason=""`}},
		{"binary fragmented", Received, cat(
			encodeFrame(wf{op: OpBinary, payload: []byte{0x78, 0x9c, 1}}),
			encodeFrame(wf{fin: true, op: OpContinuation, payload: []byte{2, 3}}),
		), false, false, []string{"received binary len=5"}},
		{"upgrade then frames", Received, cat(
			[]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
			text(`{"op":10,"d":{"heartbeat_interval":1000}}`, false),
		), false, true, []string{"received upgrade status=101", "received hello interval=1s"}},
		{"upgrade request then frames", Sent, cat(
			[]byte("GET /?v=9&encoding=json HTTP/1.1\r\nHost: x\r\n\r\n"),
			text(`{"op":1,"d":3}`, true),
		), false, true, []string{"sent heartbeat seq=3"}},
		{"upgrade refused", Received, cat(
			[]byte("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 20\r\n\r\n"),
			text(`{"op":10,"d":{"heartbeat_interval":1000}}`, false),
		), false, true, []string{"received upgrade status=429"}},
	}
	for _, tt := range tests {
		for how, chunks := range chunkings(tt.in) {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				obs, _ := feedStream(tt.dir, chunks, tt.frames, tt.http)
				got := lines(obs, KindDial)
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
				}
				for _, o := range obs {
					if strings.Contains(fmt.Sprintf("%+v", o), "SECRET") || strings.Contains(fmt.Sprintf("%+v", o), "SSSS") {
						t.Errorf("observation holds token bytes: %v", o)
					}
				}
			})
		}
	}
}

func TestStreamMalformed(t *testing.T) {
	tests := []struct {
		name string
		dir  Direction
		in   []byte
		want []string // observations other than KindMalformed, in order
		errs []string // fragments of the KindMalformed errors, in order
	}{
		{"client frame not masked", Sent, text(`{"op":1,"d":1}`, false),
			[]string{"sent heartbeat seq=1"}, []string{"client frame not masked"}},
		{"server frame masked", Received, text(`{"op":11}`, true),
			[]string{"received heartbeat-ack latency=0s"}, []string{"server frame masked"}},
		{"reserved data opcode", Received, cat(encodeFrame(wf{fin: true, op: 3, payload: []byte("xx")}), text(`{"op":11}`, false)),
			[]string{"received heartbeat-ack latency=0s"}, []string{"reserved data opcode 0x3"}},
		{"reserved control opcode", Received, cat(encodeFrame(wf{fin: true, op: 0xB}), text(`{"op":11}`, false)),
			[]string{"received heartbeat-ack latency=0s"}, []string{"reserved control opcode 0xB"}},
		{"continuation without a start", Received, cat(encodeFrame(wf{fin: true, op: OpContinuation, payload: []byte("zz")}), text(`{"op":11}`, false)),
			[]string{"received heartbeat-ack latency=0s"}, []string{"continuation frame without a message"}},
		{"new message inside a fragmented one", Received, cat(
			encodeFrame(wf{op: OpText, payload: []byte(`{"op":`)}), text(`{"op":7}`, false)),
			[]string{"received reconnect"}, []string{"new text message before the fragmented text message ended"}},
		{"control frame too long and fragmented", Received, cat(
			encodeFrame(wf{op: OpPing, payload: bytes.Repeat([]byte("p"), 200)}), text(`{"op":11}`, false)),
			[]string{"received heartbeat-ack latency=0s"}, []string{"fragmented ping frame", "ping frame payload of 200 bytes"}},
		{"RSV2 set", Received, encodeFrame(wf{fin: true, rsv: 0b010, op: OpText, payload: []byte(`{"op":11}`)}),
			[]string{"received heartbeat-ack latency=0s"}, []string{"RSV2/RSV3"}},
		{"compressed text", Received, cat(encodeFrame(wf{fin: true, rsv: 0b100, op: OpText, payload: []byte{1, 2, 3}}), text(`{"op":11}`, false)),
			[]string{"received binary len=3", "received heartbeat-ack latency=0s"}, []string{"compressed (RSV1)"}},
		{"not JSON", Received, cat(text("hello", false), text(`{"op":11}`, false)),
			[]string{"received heartbeat-ack latency=0s"}, []string{"not a JSON object"}},
		{"JSON without op", Received, text(`{"t":"X"}`, false), nil, []string{`no integer "op"`}},
		{"bad field", Received, text(`{"op":10,"d":{"heartbeat_interval":"soon"}}`, false),
			[]string{"received hello interval=0s"}, []string{"d.heartbeat_interval"}},
		{"one-byte close", Received, encodeFrame(wf{fin: true, op: OpClose, payload: []byte{3}}),
			[]string{`received close code=1005 reason=""`}, []string{"1-byte payload"}},
		{"close reason not UTF-8", Received, encodeFrame(wf{fin: true, op: OpClose, payload: closePayload(4000, "a\xffb")}),
			[]string{"received close code=4000 reason=\"a\ufffdb\""}, []string{"not valid UTF-8"}},
		{"64-bit length with top bit: framing lost", Received, cat(
			[]byte{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, text(`{"op":11}`, false)),
			nil, []string{"most significant bit set; the tap stops parsing"}},
	}
	for _, tt := range tests {
		for how, chunks := range chunkings(tt.in) {
			t.Run(tt.name+"/"+how, func(t *testing.T) {
				obs, tap := feedStream(tt.dir, chunks, false, false)
				got := lines(obs, KindMalformed, KindDial)
				if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
					t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
				}
				var errs []string
				for _, o := range obs {
					if o.Kind == KindMalformed {
						if !errors.Is(o.Err, ErrMalformedFrame) && !errors.Is(o.Err, ErrMalformedPayload) {
							t.Errorf("malformed error %v wraps neither sentinel", o.Err)
						}
						errs = append(errs, o.Err.Error())
					}
				}
				if len(errs) != len(tt.errs) {
					t.Fatalf("malformed reports %q, want %d matching %q", errs, len(tt.errs), tt.errs)
				}
				for i := range errs {
					if !strings.Contains(errs[i], tt.errs[i]) {
						t.Errorf("malformed report %q lacks %q", errs[i], tt.errs[i])
					}
				}
				if st := tap.Stats(); st.Malformed[tt.dir] != uint64(len(tt.errs)) {
					t.Errorf("Stats.Malformed = %v", st.Malformed)
				}
			})
		}
	}
}

func TestStreamHTTPHeaderTooLong(t *testing.T) {
	in := append([]byte("HTTP/1.1 101 OK\r\n"), bytes.Repeat([]byte("X-Pad: y\r\n"), maxHTTPHeader/10+1)...)
	obs, _ := feedStream(Received, [][]byte{in}, false, true)
	got := lines(obs, KindDial)
	if len(got) != 1 || !strings.Contains(got[0], "upgrade message longer than") {
		t.Errorf("got %q", got)
	}
}

func TestHeartbeatAckLatency(t *testing.T) {
	rec := &recorder{}
	fake := clock.NewFake(time.Time{})
	tap := NewTap(TapSettings{Observer: rec, Clock: fake})
	tc := tap.wrapFrames(nopConn{})
	tc.rd.s.feed(text(`{"op":11}`, false)) // ACK before any heartbeat
	tc.wr.s.feed(text(`{"op":1,"d":4}`, true))
	fake.Advance(87 * time.Millisecond)
	tc.rd.s.feed(text(`{"op":11}`, false))
	got := lines(rec.all(), KindDial)
	want := []string{"received heartbeat-ack latency=0s", "sent heartbeat seq=4", "received heartbeat-ack latency=87ms"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
	st := tap.Stats()
	if st.Messages[Sent] != 1 || st.Messages[Received] != 2 || st.Frames[Received] != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestOpcodeAndKindStrings(t *testing.T) {
	for o, want := range map[Opcode]string{OpText: "text", OpBinary: "binary", OpClose: "close", OpPing: "ping",
		OpPong: "pong", OpContinuation: "continuation", 3: "reserved(0x3)"} {
		if o.String() != want {
			t.Errorf("%d: %q", o, o.String())
		}
	}
	for k := KindDial; k < numKinds; k++ {
		if k.String() == "" || strings.HasPrefix(k.String(), "Kind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	if Kind(0).String() != "Kind(0)" || Direction(0).String() != "Direction(0)" {
		t.Error("zero values misnamed")
	}
}
