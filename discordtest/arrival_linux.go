//go:build linux

package discordtest

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// setStamping asks the kernel to attach receive times (SO_TIMESTAMPNS,
// wall clock, nanoseconds) to what fd receives.
func setStamping(fd uintptr) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
}

// stamping keeps one socket asking for receive times while any fake
// server of the process is open. The kernel stamps incoming packets only
// while some socket wants it, and switches stamping on a moment after the
// first socket asks: holding it from the server's start, not from its
// first connection, keeps a server's first frames stamped. The socket is
// closed with the last server, so a process that closes its servers
// holds no descriptor of theirs (the chaos tests count them); frames the
// kernel did not stamp are timed when read.
var stamping struct {
	mu    sync.Mutex
	users int
	fd    int // -1 when no socket is held
}

// holdStamping takes a hold on kernel stamping; release gives it back.
func holdStamping() (release func()) {
	stamping.mu.Lock()
	defer stamping.mu.Unlock()
	if stamping.users == 0 {
		stamping.fd = -1
		if fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0); err == nil {
			if setStamping(uintptr(fd)) == nil {
				stamping.fd = fd
			} else {
				_ = syscall.Close(fd)
			}
		}
	}
	stamping.users++
	var once sync.Once
	return func() {
		once.Do(func() {
			stamping.mu.Lock()
			defer stamping.mu.Unlock()
			stamping.users--
			if stamping.users == 0 && stamping.fd >= 0 {
				_ = syscall.Close(stamping.fd)
				stamping.fd = -1
			}
		})
	}
}

// stampListener returns a listener whose Accept returns *arrivalConn, and
// switches the kernel's stamping on now, well before the first frame.
// Called before the server's address is handed out.
func stampListener(ln net.Listener) net.Listener {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return ln
	}
	return &arrivalListener{TCPListener: tl, release: holdStamping()}
}

// arrivalListener wraps each accepted TCP connection in an arrivalConn
// and holds kernel stamping until it is closed.
type arrivalListener struct {
	*net.TCPListener
	release func()
}

// Close implements net.Listener and gives back the stamping hold.
func (l *arrivalListener) Close() error {
	err := l.TCPListener.Close()
	l.release()
	return err
}

// Accept implements net.Listener.
func (l *arrivalListener) Accept() (net.Conn, error) {
	tc, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return tc, nil
	}
	return &arrivalConn{TCPConn: tc, raw: raw}, nil
}

// arrivalConn is an accepted connection whose reads, once tracked, use
// recvmsg and keep the kernel's receive time of the bytes they return.
// Before track (the HTTP request and the WebSocket upgrade) it reads as a
// plain *net.TCPConn. Only the connection's reader goroutine reads it.
type arrivalConn struct {
	*net.TCPConn
	raw      syscall.RawConn
	tracking atomic.Bool
	// last is the kernel's receive time of the latest bytes read, in Unix
	// nanoseconds on the wall clock; 0 when the kernel gave none.
	last atomic.Int64

	// ends finds the data messages' last bytes in what Read returns; the
	// reader goroutine alone feeds it.
	ends frameEnds
	// mu guards pending: the times of the messages read and not yet
	// asked for by messageArrival, in order.
	mu      sync.Mutex
	pending []messageStamp
}

// messageStamp is the kernel's receive time of the read that returned a
// data message's last byte (Unix nanoseconds, 0 for none), and whether
// that byte was the last the read returned, the read not filling its
// buffer: then no later byte's time can be in it.
type messageStamp struct {
	ns  int64
	own bool
}

// track turns the socket's receive times on; when that fails the
// connection goes on reading as a plain TCP connection (frames timed when
// read).
func (c *arrivalConn) track() {
	var serr error
	if err := c.raw.Control(func(fd uintptr) { serr = setStamping(fd) }); err != nil || serr != nil {
		return
	}
	c.tracking.Store(true)
}

func (c *arrivalConn) lastArrival() (time.Time, bool) {
	ns := c.last.Load()
	if ns == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

func (c *arrivalConn) messageArrival() (time.Time, bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return time.Time{}, false, false
	}
	m := c.pending[0]
	c.pending = c.pending[:copy(c.pending, c.pending[1:])]
	if m.ns == 0 {
		return time.Time{}, false, false
	}
	return time.Unix(0, m.ns), m.own, true
}

// Read implements net.Conn. While tracking, it reads with recvmsg and
// records the receive time the kernel attached (for TCP, that of the last
// segment whose bytes it returned), and for each data message whose last
// byte it returned, that time and whether it is the message's own.
func (c *arrivalConn) Read(p []byte) (int, error) {
	if !c.tracking.Load() || len(p) == 0 {
		return c.TCPConn.Read(p)
	}
	var (
		oob     [64]byte
		n, oobn int
		recvErr error
	)
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			n, oobn, _, _, recvErr = syscall.Recvmsg(int(fd), p, oob[:], 0)
			if recvErr != syscall.EINTR {
				break
			}
		}
		// false: nothing to read yet, wait for the socket to be readable.
		return recvErr != syscall.EAGAIN
	})
	if err == nil && recvErr != nil {
		err = os.NewSyscallError("recvmsg", recvErr)
	}
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if n == 0 {
		return 0, io.EOF
	}
	var stamp int64 // 0 unless the kernel attached a receive time
	if msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for _, m := range msgs {
			if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
				sec := int64(binary.NativeEndian.Uint64(m.Data[0:8]))
				nsec := int64(binary.NativeEndian.Uint64(m.Data[8:16]))
				stamp = sec*int64(time.Second) + nsec
			}
		}
	}
	c.last.Store(stamp)
	c.ends.feed(p[:n], func(end int) {
		c.mu.Lock()
		c.pending = append(c.pending, messageStamp{ns: stamp, own: end == n && n < len(p)})
		c.mu.Unlock()
	})
	return n, nil
}
