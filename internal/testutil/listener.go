package testutil

import (
	"net"
	"testing"
)

// AcceptingListener listens on a loopback TCP port, accepts every
// connection and closes it at once: a target a TCP probe can reach. It
// returns the "127.0.0.1:PORT" address; the listener closes, and its accept
// loop ends, when the test does.
func AcceptingListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}
