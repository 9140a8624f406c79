package gateway

import (
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// TestUpstreamWriteBufferPool: a Conn dials with the shared write buffer
// pool unless its Dialer chose a write buffer itself, and never changes
// the Dialer it was given (a shard manager shares one between shards).
func TestUpstreamWriteBufferPool(t *testing.T) {
	own := &sync.Pool{}
	for _, c := range []struct {
		name     string
		dialer   *websocket.Dialer
		wantPool bool // the shared pool, on a copy
	}{
		{"default", nil, true},
		{"given, no buffer settings", &websocket.Dialer{HandshakeTimeout: 3}, true},
		{"given a write buffer size", &websocket.Dialer{WriteBufferSize: 8192}, false},
		{"given a pool", &websocket.Dialer{WriteBufferPool: own}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var before websocket.Dialer
			if c.dialer != nil {
				before = *c.dialer
			}
			conn := NewConn(Options{URL: "ws://127.0.0.1:1/", Dialer: c.dialer})
			got := conn.opts.Dialer
			if c.wantPool {
				if got.WriteBufferPool != writeBuffers || got == c.dialer {
					t.Fatalf("pool %v on the given Dialer %v; want the shared pool on a copy", got.WriteBufferPool, got == c.dialer)
				}
				if c.dialer != nil && got.HandshakeTimeout != c.dialer.HandshakeTimeout {
					t.Fatal("the copy lost the Dialer's settings")
				}
			} else if got != c.dialer {
				t.Fatal("a Dialer with its own write buffer settings was replaced")
			}
			if c.dialer != nil && (c.dialer.WriteBufferPool != before.WriteBufferPool || c.dialer.WriteBufferSize != before.WriteBufferSize) {
				t.Fatal("the given Dialer was changed")
			}
		})
	}
}
