package chaos

import (
	"net"
	"strings"
	"testing"
)

// newFDs names the descriptors a leak report lists: new numbers and
// numbers reused for another target.
func TestNewFDs(t *testing.T) {
	before := map[string]string{"0": "/dev/null", "3": "socket:[1]", "4": "pipe:[7]"}
	after := map[string]string{"0": "/dev/null", "3": "socket:[9]", "5": "anon_inode:[eventpoll]"}
	got := strings.Join(newFDs(before, after), ", ")
	if want := "3 -> socket:[9], 5 -> anon_inode:[eventpoll]"; got != want {
		t.Fatalf("newFDs = %q, want %q", got, want)
	}
}

// A TCP socket this process holds is described with its addresses and
// state, read from /proc/self/net.
func TestTCPSocketDescribed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	before := fdTargets()
	if before == nil {
		t.Skip("no /proc/self/fd")
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := strings.Join(newFDs(before, fdTargets()), ", ")
	want := "127.0.0.1:" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:") + " ESTABLISHED"
	if !strings.Contains(got, "socket:[") || !strings.Contains(got, c.LocalAddr().String()+" -> "+want) {
		t.Fatalf("new descriptors %q, want the client socket %s -> %s", got, c.LocalAddr(), want)
	}
	if got := procAddr("0100007F:1F90"); got != "127.0.0.1:8080" {
		t.Fatalf("procAddr = %q", got)
	}
}

func TestUnixSocketDescribed(t *testing.T) {
	path := t.TempDir() + "/s"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skip("no unix sockets:", err)
	}
	defer ln.Close()
	before := fdTargets()
	if before == nil {
		t.Skip("no /proc/self/fd")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := strings.Join(newFDs(before, fdTargets()), ", "); !strings.Contains(got, "(unix stream ") {
		t.Fatalf("new descriptors %q, want a unix stream socket", got)
	}
}
