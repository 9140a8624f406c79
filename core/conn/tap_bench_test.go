package conn

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// countObserver counts observations, the least an observer can do.
type countObserver struct {
	mu sync.Mutex
	n  int
}

func (c *countObserver) Observe(Observation) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

var benchPayloads = map[string]struct {
	dir   Direction
	frame []byte
}{
	"ack-received":         {Received, text(`{"t":null,"s":null,"op":11,"d":null}`, false)},
	"heartbeat-sent":       {Sent, text(`{"op":1,"d":12345}`, true)},
	"dispatch-300B":        {Received, text(`{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"`+strings.Repeat("x", 220)+`"}}`, false)},
	"dispatch-64KiB":       {Received, text(`{"t":"GUILD_CREATE","s":42,"op":0,"d":{"members":"`+strings.Repeat("m", 64<<10)+`"}}`, false)},
	"ready-with-fields":    {Received, text(readyJSON, false)},
	"identify-sent-masked": {Sent, text(identifyJSON, true)},
}

// BenchmarkTapFeed measures the parser's cost per frame (one message per
// frame), with an observer that only counts.
func BenchmarkTapFeed(b *testing.B) {
	for name, p := range benchPayloads {
		for _, frames := range []bool{false, true} {
			bn := name
			if frames {
				bn += "/frames"
			}
			b.Run(bn, func(b *testing.B) {
				tap := NewTap(TapSettings{Observer: &countObserver{}, ObserveFrames: frames})
				tc := tap.wrapFrames(nopConn{})
				s := tc.rd.s
				if p.dir == Sent {
					s = tc.wr.s
				}
				b.SetBytes(int64(len(p.frame)))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					s.feed(p.frame)
				}
			})
		}
	}
}

// memConn plays a WebSocket server from memory: it answers the upgrade
// request written to it, then serves the same frames forever; writes are
// discarded. It lets gorilla's read path be measured without a network.
type memConn struct {
	net.Conn
	mu       sync.Mutex
	req      bytes.Buffer
	resp     []byte
	frames   []byte
	pos      int
	upgraded bool
}

var wsKeyRE = regexp.MustCompile(`(?i)Sec-WebSocket-Key: *([^\r\n]+)`)

func (m *memConn) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.upgraded {
		m.req.Write(b)
		if k := wsKeyRE.FindSubmatch(m.req.Bytes()); k != nil && bytes.Contains(m.req.Bytes(), []byte("\r\n\r\n")) {
			h := sha1.Sum([]byte(string(k[1]) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			m.resp = []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n")
			m.upgraded = true
		}
	}
	return len(b), nil
}

func (m *memConn) Read(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.resp) > 0 {
		n := copy(b, m.resp)
		m.resp = m.resp[n:]
		return n, nil
	}
	if !m.upgraded {
		return 0, io.ErrNoProgress
	}
	n := copy(b, m.frames[m.pos:])
	m.pos = (m.pos + n) % len(m.frames)
	return n, nil
}

func (m *memConn) Close() error                     { return nil }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// BenchmarkGorillaRead compares gorilla's ReadMessage on a plain dialer
// with the same on a tap dialer: the tap's overhead as a client sees it.
func BenchmarkGorillaRead(b *testing.B) {
	msg := text(`{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"`+strings.Repeat("x", 220)+`","id":"1"}}`, false)
	frames := bytes.Repeat(msg, 64)
	dialMem := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return &memConn{frames: frames}, nil
	}
	dialers := map[string]*websocket.Dialer{
		"plain":  {NetDialContext: dialMem},
		"tapped": NewTap(TapSettings{Observer: &countObserver{}, DialContext: dialMem}).Dialer(),
	}
	for _, name := range []string{"plain", "tapped"} {
		b.Run(name, func(b *testing.B) {
			c, _, err := dialers[name].Dial("ws://gateway.test/", nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScanner measures the payload scanner alone.
func BenchmarkScanner(b *testing.B) {
	payloads := map[string]string{
		"dispatch-300B":  `{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"` + strings.Repeat("x", 220) + `"}}`,
		"dispatch-64KiB": `{"t":"GUILD_CREATE","s":42,"op":0,"d":{"members":"` + strings.Repeat("m", 64<<10) + `"}}`,
		"ready":          readyJSON,
	}
	for name, p := range payloads {
		payload := []byte(p)
		b.Run(name, func(b *testing.B) {
			var s scanner
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for range b.N {
				s.reset()
				s.feed(payload)
				if _, err := s.finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
