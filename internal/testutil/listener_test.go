package testutil_test

import (
	"net"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/internal/testutil"
)

// TestAcceptingListener: the address is on loopback, and a connection to it
// is accepted (then closed by the listener: a read ends).
func TestAcceptingListener(t *testing.T) {
	addr := testutil.AcceptingListener(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("address %q is not on 127.0.0.1", addr)
	}
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read data from a listener that only closes")
		}
		c.Close()
	}
}
